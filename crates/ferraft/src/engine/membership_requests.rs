//! Membership requests from the moment they are accepted until they are
//! answered, whoever leads in between.
//!
//! A request is answered by what the log shows happened to it, not by what the
//! node that accepted it is doing: a success once the config it asked for
//! committed; "nothing happened" (`ForwardToLeader`) only while nothing of it
//! was proposed, or once a committed entry replaced what was proposed; the partial
//! outcome once its joint step committed and something else followed it; and
//! "unknown" (`LeadershipLost`) only when a bound after losing leadership
//! passes before the log tells (also when its joint step committed: that joint
//! config leaves by itself, to the target or back, whoever leads).

use super::change_identity::AskedChange;
use super::{Engine, Output};
use crate::entry::AppData;
use crate::error::ChangeMembershipError;
use crate::log_id::{index_of, LogId};
use crate::membership::{ChangeGuard, ChangeMembers, StoredMembership};
use crate::node::{LogIndex, Node};

/// An accepted planned change, tracked until it is answered.
#[derive(Debug, Clone)]
pub(crate) struct MembershipRequest<N> {
    /// The caller's id for it.
    pub request_id: u64,
    /// The caller's change id and precondition.
    pub guard: ChangeGuard,
    /// How far it got.
    pub stage: RequestStage<N>,
    /// Set when this node stops leading: the request is answered by then.
    pub answer_by_ms: Option<u64>,
    /// When it was accepted: a request that waits its turn too long is refused.
    pub accepted_ms: u64,
    /// What the caller asked for, kept after it is proposed so that a repeat
    /// under its change id can be told from another change; `None` for a
    /// record rebuilt from the log.
    pub asked: Option<AskedChange<N>>,
}

/// How far a request got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RequestStage<N> {
    /// Waiting for this leader to propose it (propose-after-commit).
    Queued {
        /// What to change.
        change: ChangeMembers<N>,
        /// Keep removed voters as learners.
        retain: bool,
    },
    /// Its one entry was proposed; it is done when that entry commits.
    Proposed(LogId),
    /// Its joint entry was proposed; it is done when that joint config's exit
    /// commits, which any leader proposes by the plan recorded in the entry.
    Joint(LogId),
}

type Answer<N> = Result<StoredMembership<N>, ChangeMembershipError<N>>;

/// How long after losing leadership a request may wait for the log to tell
/// its outcome, in election timeouts.
const ANSWER_GRACE_ELECTION_TIMEOUTS: u64 = 4;

/// How long a request may wait behind others before it is proposed, and at
/// most for any answer, in election timeouts: a slow cluster under many
/// changes would otherwise grow the queue without bound and leave callers
/// waiting.
const QUEUE_BOUND_ELECTION_TIMEOUTS: u64 = 20;

impl<C: AppData, N: Node> Engine<C, N> {
    /// Answers every request whose outcome the log now shows.
    pub(crate) fn settle_membership_requests(&mut self) {
        if self.membership_requests.is_empty() {
            return;
        }
        let requests = std::mem::take(&mut self.membership_requests);
        for request in requests {
            match self.outcome_of(&request) {
                Some(result) => {
                    self.remember_refusal(&request.guard, request.asked.as_ref(), &result);
                    tracing::info!(
                        node = %self.id,
                        request = request.request_id,
                        ok = result.is_ok(),
                        "membership request answered"
                    );
                    self.output.push(Output::MembershipDone { request_id: request.request_id, result });
                }
                None => self.membership_requests.push(request),
            }
        }
    }

    /// This node stopped leading: requests it has not proposed end now (nothing
    /// of them happened); the others get a bound to learn their outcome in.
    pub(crate) fn on_membership_leadership_lost(&mut self) {
        let answer_by = self.now_ms + self.config.election_timeout_max_ms * ANSWER_GRACE_ELECTION_TIMEOUTS;
        for request in &mut self.membership_requests {
            request.answer_by_ms.get_or_insert(answer_by);
        }
        self.settle_membership_requests();
    }

    /// The answer the log gives for `request` now, if it gives one.
    pub(crate) fn outcome_of(&self, request: &MembershipRequest<N>) -> Option<Answer<N>> {
        // answered by the bound after a leader change, and at the latest by the
        // queue's bound after it was accepted, whoever leads
        let overdue = self.now_ms.saturating_sub(request.accepted_ms)
            >= self.config.election_timeout_max_ms * QUEUE_BOUND_ELECTION_TIMEOUTS;
        let expired = request.answer_by_ms.is_some_and(|by| self.now_ms >= by) || overdue;
        let committed = index_of(self.committed);
        let unknown = |index: LogIndex| {
            if self.is_leader() {
                ChangeMembershipError::NotCommittedInTime { index }
            } else {
                ChangeMembershipError::LeadershipLost
            }
        };
        match request.stage {
            RequestStage::Queued { .. } => {
                let waited_ms = self.now_ms.saturating_sub(request.accepted_ms);
                if !self.is_leader() {
                    Some(Err(ChangeMembershipError::ForwardToLeader(self.forward_to_leader())))
                } else if waited_ms >= self.config.election_timeout_max_ms * QUEUE_BOUND_ELECTION_TIMEOUTS {
                    Some(Err(ChangeMembershipError::QueuedTooLong { waited_ms }))
                } else {
                    None
                }
            }
            RequestStage::Proposed(entry) => match self.entry_fate(entry) {
                EntryFate::Gone => Some(Err(ChangeMembershipError::ForwardToLeader(self.forward_to_leader()))),
                EntryFate::Unknowable => Some(Err(ChangeMembershipError::LeadershipLost)),
                EntryFate::Undecided => expired.then(|| Err(unknown(entry.index))),
                EntryFate::Held if entry.index <= committed => {
                    Some(self.stored_at(entry).ok_or(ChangeMembershipError::LeadershipLost))
                }
                EntryFate::Held => expired.then(|| Err(unknown(entry.index))),
            },
            RequestStage::Joint(joint) => match self.entry_fate(joint) {
                EntryFate::Gone => Some(Err(ChangeMembershipError::ForwardToLeader(self.forward_to_leader()))),
                EntryFate::Unknowable => Some(Err(ChangeMembershipError::LeadershipLost)),
                EntryFate::Undecided => expired.then(|| Err(unknown(joint.index))),
                EntryFate::Held if joint.index > committed => expired.then(|| Err(unknown(joint.index))),
                EntryFate::Held => self.joint_outcome(joint, expired, unknown(joint.index)),
            },
        }
    }

    /// A committed joint entry: done when the membership that followed it (node
    /// descriptor changes aside) is its exit and committed; partial when it is
    /// something else and committed; `unknown` when the bound passed first (a
    /// joint config planned by `change_membership` leaves by itself: whoever
    /// leads proposes its exit or its revert, so until a later membership is
    /// committed here, whether the change ends done or rolled back is not known).
    fn joint_outcome(&self, joint: LogId, expired: bool, unknown: ChangeMembershipError<N>) -> Option<Answer<N>> {
        let committed = index_of(self.committed);
        let Some(joint_membership) = self.stored_at(joint) else {
            return Some(Err(self.partially_applied()));
        };
        // what followed it: remembered if it left the log too, else in the log
        let next = self.log.remembered().next_after(joint).or_else(|| {
            self.log
                .memberships_after(joint.index)
                .find(|m| m.membership.configs() != joint_membership.membership.configs())
        });
        match next {
            Some(next) if index_of(next.log_id) <= committed => {
                if joint_membership.membership.is_left_by(&next.membership) {
                    Some(Ok(next.clone()))
                } else if joint_membership.membership.is_reverted_by(&next.membership) {
                    Some(Err(ChangeMembershipError::RolledBack { membership: Box::new(next.clone()) }))
                } else {
                    Some(Err(self.partially_applied()))
                }
            }
            _ if !expired => None,
            _ if joint_membership.membership.leaves_automatically() => Some(Err(unknown)),
            _ => Some(Err(self.partially_applied())),
        }
    }

    /// The partial outcome, carrying the committed membership in force.
    fn partially_applied(&self) -> ChangeMembershipError<N> {
        let committed = index_of(self.committed);
        let membership = self.log.membership_at(committed).or(self.membership()).cloned();
        match membership {
            Some(membership) => ChangeMembershipError::PartiallyApplied { membership: Box::new(membership) },
            None => ChangeMembershipError::LeadershipLost,
        }
    }

    /// Whether the log still holds `entry`, replaced it, or can no longer tell.
    fn entry_fate(&self, entry: LogId) -> EntryFate {
        if self.log.contains(Some(entry)) {
            return EntryFate::Held;
        }
        if self.log.membership_at(entry.index).is_some_and(|m| m.log_id == Some(entry)) {
            // purged, but still the membership the log keeps (the one in
            // force, or the last committed one)
            return EntryFate::Held;
        }
        if self.log.remembered().entry(entry).is_some() {
            // it left the log, committed, remembered by its change id
            return EntryFate::Held;
        }
        if entry.index <= index_of(self.log.purged()) {
            // purged behind a snapshot: committed, but whether it was this
            // entry or one that replaced it is no longer known here
            return EntryFate::Unknowable;
        }
        if entry.index <= index_of(self.committed) {
            return EntryFate::Gone;
        }
        EntryFate::Undecided
    }

    /// The membership the entry `log_id` carries, if this log holds it (or
    /// remembers it: the first entry of a change with an id).
    pub(crate) fn stored_at(&self, log_id: LogId) -> Option<StoredMembership<N>> {
        let held = self.log.membership_at(log_id.index).filter(|m| m.log_id == Some(log_id));
        held.or_else(|| self.log.remembered().entry(log_id)).cloned()
    }
}

/// What became of a proposed entry.
enum EntryFate {
    /// The log holds it.
    Held,
    /// A committed entry holds its index: it never commits.
    Gone,
    /// Not here, its index not committed: a conflicting entry replaced it here
    /// (or the log was truncated before it), but another node may hold it and
    /// be elected and commit it, so nothing is known yet.
    Undecided,
    /// Behind the purge point without a trace.
    Unknowable,
}
