//! The roles a node plays and their per-role state.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::node::{LogIndex, NodeId};
use crate::vote::Vote;

use super::progress::Progress;
use super::reads::PendingRead;

/// The role as reported in metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServerState {
    /// Not part of a cluster yet.
    Uninitialized,
    /// Replicates but does not vote.
    Learner,
    /// A voter following a leader (or waiting for one).
    Follower,
    /// Campaigning.
    Candidate,
    /// Leading.
    Leader,
    /// Was a member and the membership in force no longer names it: it does
    /// not campaign and serves no one; re-add it (as a learner) to use it again.
    Removed,
}

/// The role with its state.
#[derive(Debug)]
pub enum Role {
    /// Following (or a learner, or uninitialized).
    Follower,
    /// Campaigning.
    Candidate(CandidateState),
    /// Leading.
    Leader(Box<LeaderState>),
}

/// A campaign in progress.
#[derive(Debug, Clone)]
pub struct CandidateState {
    /// Voters whose membership does not name this node at all.
    pub not_member_of: BTreeSet<NodeId>,
    /// True while only asking for pre-votes.
    pub pre_vote: bool,
    /// The vote asked for.
    pub vote: Vote,
    /// Who granted it.
    pub granted: BTreeSet<NodeId>,
    /// Started by a leader transfer.
    pub transfer: bool,
}

/// The leader's bookkeeping.
#[derive(Debug)]
pub struct LeaderState {
    /// Replication state per other member (voters and learners).
    pub progress: BTreeMap<NodeId, Progress>,
    /// Index of this term's first (blank) entry; reads wait for it to commit.
    pub term_start_index: LogIndex,
    /// The last entry followers were told this leader holds durably: they
    /// may commit up to it and answer writes before this leader learns it
    /// committed, so a read index is never below it.
    pub flush_told: LogIndex,
    /// Sequence number of the last message sent.
    pub seq: u64,
    /// Reads waiting for a quorum to confirm leadership.
    pub reads: VecDeque<PendingRead>,
    /// A heartbeat round is needed for newly registered reads.
    pub read_round_needed: bool,
    /// When the next heartbeat is due.
    pub next_heartbeat_ms: u64,
    /// The leader is handing over to this node until the deadline.
    pub transfer: Option<(NodeId, u64)>,
    /// A TimeoutNow went out under this leadership. Its target may get it
    /// at any time later (it was paused, the message was queued) and then
    /// campaign, and voters grant a transfer vote even right after hearing
    /// from this leader: the stickiness a lease rests on no longer holds,
    /// so this leadership serves no more lease reads (they fall back to a
    /// read index), also once the transfer gave up.
    pub lease_forfeited: bool,
    /// When leadership began.
    pub since_ms: u64,
    /// Nodes a proposed membership removed, each with the index of that entry
    /// and when it was proposed: the leader keeps replicating to them until
    /// they hold it committed (so they learn they were removed and stop
    /// campaigning), or for a bounded time.
    pub departing: BTreeMap<NodeId, (LogIndex, u64)>,
    /// Since when (and for which joint entry) a joint config that leaves by
    /// itself has waited for its new voters.
    pub joint_wait_since: Option<(LogIndex, u64)>,
}

impl LeaderState {
    /// The lowest read index that sees every write answered so far: what
    /// committed (`committed`), this term's first entry (earlier terms'
    /// entries that committed are before it), and what followers may have
    /// committed on this leader's flush notices.
    pub(crate) fn read_floor(&self, committed: LogIndex) -> LogIndex {
        committed.max(self.term_start_index).max(self.flush_told)
    }
}
