//! When a learner may become a voter, and the membership calls that check it.
//!
//! A voter that must first catch up cannot help commit: adding one to a
//! three-voter cluster makes the quorum three of four, so one slow or failed
//! old voter then stops all commits until the newcomer catches up. So a change
//! that makes a learner a voter is refused with the learner's lag unless the
//! learner is ready (or the caller forces it).

use std::collections::BTreeSet;

use super::membership_change::PreparePlan;
use super::progress::ReplicationMode;
use super::Engine;
use crate::entry::AppData;
use crate::error::ChangeMembershipError;
use crate::membership::{ChangeMembers, Membership};
use crate::node::{LogIndex, Node, NodeId};

type ChangeResult<T, N> = Result<T, ChangeMembershipError<N>>;

/// When a learner is caught up enough to vote. Besides the limits below, a
/// ready learner always has no snapshot streaming to it (any snapshot it
/// needed is installed), a log that did not go backwards, and was heard from
/// within an election timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Readiness {
    /// Most entries it may lack.
    pub max_lag_entries: u64,
    /// Most bytes it may lack.
    pub max_lag_bytes: u64,
    /// How long both limits must hold without a break before it is promoted.
    pub hold_ms: u64,
}

/// Options of a planned membership change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeOptions {
    /// Keep removed voters as learners.
    pub retain: bool,
    /// Make learners voters even when they are not caught up.
    pub force: bool,
    /// A change id (retries get the first outcome) and a precondition.
    pub guard: crate::membership::ChangeGuard,
}

impl<C: AppData, N: Node> Engine<C, N> {
    /// The rule a learner meets to be promoted by a plain (unforced) change.
    pub fn default_readiness(&self) -> Readiness {
        Readiness { max_lag_entries: self.config.promote_max_lag_entries, max_lag_bytes: u64::MAX, hold_ms: 0 }
    }

    /// Whether learner `id` meets `rule` now (ignoring `hold_ms`), on the
    /// leader; the error carries its lag.
    pub fn check_ready(&self, id: NodeId, rule: &Readiness) -> ChangeResult<(), N> {
        let leader = self.leader_state().ok_or_else(|| self.forward_to_leader())?;
        let not_ready =
            |lag_entries, lag_bytes| ChangeMembershipError::LearnerNotReady { node_id: id, lag_entries, lag_bytes };
        let Some(progress) = leader.progress.get(&id) else {
            // not replicated to at all (not a member): it lacks everything
            return Err(not_ready(self.log.last_index() - LogIndex(0), self.log.bytes_after(LogIndex(0))));
        };
        let report = self.catch_up(id).expect("leader replicates to it");
        let heard = self.now_ms < progress.last_heard_ms + self.config.election_timeout_max_ms;
        let streaming = matches!(progress.mode, ReplicationMode::Snapshot { .. });
        let ready = heard
            && !streaming
            && !progress.reverted
            && progress.matched.is_some()
            && report.lag_entries <= rule.max_lag_entries
            && report.lag_bytes <= rule.max_lag_bytes;
        if ready {
            Ok(())
        } else {
            Err(not_ready(report.lag_entries, report.lag_bytes))
        }
    }

    /// Refuses to make voters of learners in `next` that are not ready.
    fn check_new_voters_ready(&self, current: &Membership<N>, next_voters: &BTreeSet<NodeId>) -> ChangeResult<(), N> {
        let rule = self.default_readiness();
        let current_voters = current.voter_set();
        for id in next_voters.difference(&current_voters).filter(|id| **id != self.id) {
            self.check_ready(*id, &rule)?;
        }
        Ok(())
    }

    /// [`Engine::change_membership`] with options: unless `force`, a change
    /// that makes a learner a voter is refused with
    /// [`ChangeMembershipError::LearnerNotReady`] when the learner lags more
    /// than `promote_max_lag_entries`, streams a snapshot, or is silent.
    pub fn change_membership_with(
        &mut self,
        request_id: u64,
        change: ChangeMembers<N>,
        options: ChangeOptions,
    ) -> ChangeResult<(), N> {
        // a change id this node knows is answered by what it names (the
        // first outcome, or `ChangeIdReused`), whatever the learners' lag now
        let known_id = options.guard.change_id.as_deref().is_some_and(|id| self.knows_change_id(id));
        if !options.force && !known_id && self.is_leader() {
            let current = self.effective().expect("a leader has a membership");
            // a change that does not apply is refused below, with its own error
            if let Ok(next) = change.next_membership(current, options.retain) {
                self.check_new_voters_ready(current, &next.voter_set())?;
            }
        }
        self.change_membership_guarded(request_id, change, options.retain, options.guard)
    }

    /// [`Engine::prepare_membership`], refusing (unless `force`) new voters
    /// that are not ready. Readiness is checked last, once the caller's
    /// expectations and the members named are found right, so a refusal
    /// names its real reason.
    pub fn prepare_membership_with(
        &mut self,
        expect_voters: &BTreeSet<NodeId>,
        expect_learners: &BTreeSet<NodeId>,
        voters: &BTreeSet<NodeId>,
        learners: &BTreeSet<NodeId>,
        force: bool,
    ) -> ChangeResult<LogIndex, N> {
        let plan = self.plan_prepare(expect_voters, expect_learners, voters, learners)?;
        // a repeated prepare that took effect has nothing left to check
        if !force && matches!(plan, PreparePlan::Propose(_)) {
            let current = self.effective().expect("a leader has a membership");
            self.check_new_voters_ready(current, voters)?;
        }
        Ok(self.carry_out_prepare(plan))
    }

    /// Swaps voter `old` for learner `new` in one change: the voters become
    /// the same set minus `old` plus `new` (through a joint config, so no
    /// intermediate config has fewer or more voters than needed). Refused
    /// unless `new` is ready, or `force`.
    pub fn replace_voter(&mut self, request_id: u64, old: NodeId, new: NodeId, force: bool) -> ChangeResult<(), N> {
        if !self.is_leader() {
            return Err(ChangeMembershipError::ForwardToLeader(self.forward_to_leader()));
        }
        let current = self.effective().expect("a leader has a membership");
        if !current.is_voter(old) {
            return Err(ChangeMembershipError::NotVoter { node_id: old });
        }
        if !current.is_member(new) || current.is_voter(new) {
            return Err(crate::membership::ChangeMembersError::NotLearner { node_id: new }.into());
        }
        let mut voters = current.voter_set();
        voters.remove(&old);
        voters.insert(new);
        let options = ChangeOptions { retain: false, force, ..Default::default() };
        self.change_membership_with(request_id, ChangeMembers::ReplaceAllVoters(voters), options)
    }
}
