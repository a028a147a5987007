//! Safety checkers, one rule per file.
//!
//! Each checker is fed small observations (a node became leader, committed an
//! entry, applied one, appended one...) rather than whole engines, so that unit
//! tests can hand it a broken history and prove it notices. The simulator makes
//! the observations after every engine call.

mod answer_meaning;
mod change_id_answers;
mod change_id_once;
mod change_id_status;
mod committed_never_lost;
mod election_safety;
mod leader_completeness;
mod log_matching;
mod membership_answers;
mod membership_request;
mod membership_safety;
mod state_machine_safety;

pub use answer_meaning::{meaning, Meaning};
pub use change_id_answers::{ChangeIdAnswers, IdAsked};
pub use change_id_once::{ChangeIdOnce, Runs};
pub use change_id_status::check_status;
pub use committed_never_lost::CommittedNeverLost;
pub use election_safety::ElectionSafety;
pub use leader_completeness::LeaderCompleteness;
pub use log_matching::LogMatching;
pub use membership_answers::{AnswerTally, MembershipAnswers, RequestHandle, ANSWER_BOUND_MS};
pub use membership_request::Asked;
pub use membership_safety::MembershipSafety;
pub use state_machine_safety::StateMachineSafety;

use ferraft::engine::RaftLog;
use ferraft::{AppData, LogId, LogIndex, Node};

/// A broken safety rule: which one, and what happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The rule's name, e.g. `"election safety"`.
    pub rule: &'static str,
    /// What was observed.
    pub detail: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} violated: {}", self.rule, self.detail)
    }
}

/// What a checker returns.
pub type Check = Result<(), Violation>;

/// Read access to a node's log, so checkers work on engines and on hand-built logs.
pub trait LogView {
    /// The first index whose log id is known (the purge point counts).
    fn first_known_index(&self) -> LogIndex;
    /// The log id at `index`, if known.
    fn log_id_at(&self, index: LogIndex) -> Option<LogId>;
}

impl<C: AppData, N: Node> LogView for RaftLog<C, N> {
    fn first_known_index(&self) -> LogIndex {
        self.first_index().saturating_back(1).max(LogIndex(1))
    }

    fn log_id_at(&self, index: LogIndex) -> Option<LogId> {
        RaftLog::log_id_at(self, index)
    }
}

/// A hand-built log: `ids[i]` is the log id at index `i + 1`.
impl LogView for [LogId] {
    fn first_known_index(&self) -> LogIndex {
        LogIndex(1)
    }

    fn log_id_at(&self, index: LogIndex) -> Option<LogId> {
        index.checked_sub(LogIndex(1)).and_then(|i| self.get(i as usize)).copied()
    }
}

/// Every checker, as the simulator uses them.
#[derive(Debug, Default)]
pub struct Checkers {
    /// At most one leader per term (standard) / per leader id.
    pub election: ElectionSafety,
    /// Same log id at an index means the same entries up to there.
    pub log_matching: LogMatching,
    /// Committed entries are in every later leader's log.
    pub leader_completeness: LeaderCompleteness,
    /// No two nodes apply different entries at one index.
    pub state_machine: StateMachineSafety,
    /// A committed entry is never replaced, truncated or forgotten.
    pub committed: CommittedNeverLost,
    /// Membership rules: quorums of every config, propose-after-commit, old-new-intersect.
    pub membership: MembershipSafety,
    /// Every membership request answered, and answered truthfully.
    pub answers: MembershipAnswers,
    /// A change with a change id takes effect at most once.
    pub change_ids: ChangeIdOnce,
    /// Calls under one change id are answered as one change.
    pub id_answers: ChangeIdAnswers,
}

/// A log id for the checkers' unit tests.
#[cfg(test)]
pub(crate) fn test_log_id(term: u64, node: u64, index: u64) -> LogId {
    LogId::new(ferraft::LeaderId::new(ferraft::Term(term), ferraft::NodeId(node)), LogIndex(index))
}
