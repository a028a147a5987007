//! Changes with a client change id: retries answered with the first call's
//! outcome, and a change's status, both read from the log so that any leader
//! gives the same answer.

use std::collections::VecDeque;

use super::membership_requests::{MembershipRequest, RequestStage};
use super::Engine;
use crate::entry::AppData;
use crate::error::ChangeMembershipError;
use crate::log_id::{index_of, LogId};
use crate::membership::{ChangeGuard, ChangeMembers, Membership, StoredMembership};
use crate::node::{LogIndex, Node};

/// Refusals remembered per change id (they leave no trace in the log).
const REMEMBERED_REFUSALS: usize = 1024;

/// Where a change with a client change id stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeStatus<N> {
    /// Accepted by this leader, waiting for its turn.
    Pending,
    /// Its entry is proposed, not yet committed.
    Proposed {
        /// The entry.
        log_id: LogId,
    },
    /// Its joint config is committed and not yet left.
    Joint {
        /// The joint membership in force.
        membership: StoredMembership<N>,
    },
    /// The config it asked for is committed.
    Committed {
        /// That membership.
        membership: StoredMembership<N>,
    },
    /// Its joint config committed, then the old voters were restored.
    RolledBack {
        /// The membership that restored them.
        membership: StoredMembership<N>,
    },
    /// Its joint config committed, then another change took the cluster elsewhere.
    Superseded {
        /// The committed membership in force.
        membership: StoredMembership<N>,
    },
    /// It was refused, or its entry was replaced by a later leader's: nothing
    /// of it took effect.
    Failed {
        /// Why.
        reason: String,
    },
    /// This node knows no change with this id (never seen, or older than the
    /// last `Config::remembered_change_ids` changes whose entries were compacted).
    Unknown,
}

/// What a call with a change id asked for: the id names this change, and a
/// repeat must ask for the same one. The precondition and `force` are not
/// part of it: they say when the change may apply, not what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AskedChange<N> {
    /// What to change.
    pub change: ChangeMembers<N>,
    /// Keep removed voters as learners.
    pub retain: bool,
}

impl<C: AppData, N: Node> Engine<C, N> {
    /// A repeated call with `change_id`: the record that answers `request_id`
    /// with the first call's outcome, or the first call's refusal, or `None`
    /// when this is the first call. `ChangeIdReused` when the first call
    /// asked for another change than `asked`.
    pub(crate) fn retry_of(
        &self,
        request_id: u64,
        change_id: &str,
        asked: &AskedChange<N>,
    ) -> Result<Option<MembershipRequest<N>>, ChangeMembershipError<N>> {
        let reused = || ChangeMembershipError::ChangeIdReused { change_id: change_id.to_string() };
        if let Some((_, first, refusal)) = self.refusal_of(change_id) {
            return Err(if first == asked { refusal.clone() } else { reused() });
        }
        let tracked = self.membership_requests.iter().find(|r| r.guard.change_id.as_deref() == Some(change_id));
        if let Some(first) = tracked {
            let same = match &first.asked {
                Some(first) => first == asked,
                // a record rebuilt from the log: judged by the log
                None => self.logged_change(change_id).is_none_or(|logged| logged.is(asked)),
            };
            if !same {
                return Err(reused());
            }
            return Ok(Some(MembershipRequest { request_id, ..first.clone() }));
        }
        let Some(logged) = self.logged_change(change_id) else { return Ok(None) };
        if !logged.is(asked) {
            return Err(reused());
        }
        let stage = logged.stage;
        let guard = ChangeGuard { change_id: Some(change_id.to_string()), expect_membership_index: None };
        Ok(Some(MembershipRequest {
            request_id,
            guard,
            stage,
            answer_by_ms: None,
            accepted_ms: self.now_ms,
            asked: None,
        }))
    }

    /// The stage of the change `change_id` as its first entry shows it.
    pub(crate) fn logged_stage(&self, change_id: &str) -> Option<RequestStage<N>> {
        self.logged_change(change_id).map(|logged| logged.stage)
    }

    /// The first entry the change `change_id` proposed, what preceded it and
    /// the stage it shows: remembered once it left the log (so first), else
    /// found in the log.
    fn logged_change(&self, change_id: &str) -> Option<LoggedChange<N>> {
        if let Some(remembered) = self.log.remembered().get(change_id) {
            let log_id = remembered.first.log_id?;
            let stage = if remembered.joint { RequestStage::Joint(log_id) } else { RequestStage::Proposed(log_id) };
            return Some(LoggedChange {
                first: remembered.first.membership.clone(),
                before: remembered.before.clone(),
                stage,
            });
        }
        let first = self.log.memberships_after(LogIndex(0)).find(|m| m.membership.change_id() == Some(change_id))?;
        let log_id = first.log_id?;
        let before = self.log.membership_before(log_id.index).cloned();
        // a joint entry is the first step of a change that leaves it after;
        // a uniform or descriptor-only entry is the whole change
        let joint = first.membership.is_joint()
            && before.as_ref().is_none_or(|before| before.configs() != first.membership.configs());
        let stage = if joint { RequestStage::Joint(log_id) } else { RequestStage::Proposed(log_id) };
        Some(LoggedChange { first: first.membership.clone(), before, stage })
    }

    /// Remembers that the call with `guard`'s change id, asking for `asked`,
    /// was refused, so a retry hears the same (and another change under the
    /// same id hears that the id is taken).
    pub(crate) fn remember_refusal(
        &mut self,
        guard: &ChangeGuard,
        asked: Option<&AskedChange<N>>,
        result: &Result<StoredMembership<N>, ChangeMembershipError<N>>,
    ) {
        let (Some(change_id), Some(asked), Err(error)) = (&guard.change_id, asked, result) else { return };
        let refusal =
            matches!(error, ChangeMembershipError::Invalid(_) | ChangeMembershipError::PreconditionFailed { .. });
        if refusal {
            if self.change_refusals.len() >= REMEMBERED_REFUSALS {
                self.change_refusals.pop_front();
            }
            self.change_refusals.push_back((change_id.clone(), asked.clone(), error.clone()));
        }
    }

    /// Whether a call under `change_id` was seen here: in flight, in the
    /// log (or remembered past it), or refused.
    pub(crate) fn knows_change_id(&self, change_id: &str) -> bool {
        self.membership_requests.iter().any(|r| r.guard.change_id.as_deref() == Some(change_id))
            || self.logged_stage(change_id).is_some()
            || self.change_refusals.iter().any(|(id, _, _)| id == change_id)
    }

    /// The refusal this node remembers for `change_id`, unless the change
    /// has since been taken after all: a refusal leaves no trace in the log,
    /// so another leader may have accepted a call under the id meanwhile,
    /// and then the log (or the request in flight) is what happened
    /// (simulator seeds 354 and 687 with change ids: "failed" was reported
    /// for a change whose entries had committed).
    fn refusal_of(&self, change_id: &str) -> Option<&(String, AskedChange<N>, ChangeMembershipError<N>)> {
        let taken = self.membership_requests.iter().any(|r| r.guard.change_id.as_deref() == Some(change_id))
            || self.logged_stage(change_id).is_some();
        if taken {
            return None;
        }
        self.change_refusals.iter().find(|(id, _, _)| id == change_id)
    }

    /// Where the change `change_id` stands, as this node's log (and, on the
    /// leader, its queue) shows it.
    pub fn change_status(&self, change_id: &str) -> ChangeStatus<N> {
        if let Some((_, _, refusal)) = self.refusal_of(change_id) {
            return ChangeStatus::Failed { reason: refusal.to_string() };
        }
        let tracked = self.membership_requests.iter().find(|r| r.guard.change_id.as_deref() == Some(change_id));
        let stage = match tracked {
            Some(r) => r.stage.clone(),
            None => match self.logged_stage(change_id) {
                Some(stage) => stage,
                None => return ChangeStatus::Unknown,
            },
        };
        let probe = MembershipRequest {
            request_id: 0,
            guard: ChangeGuard::default(),
            stage: stage.clone(),
            answer_by_ms: None,
            accepted_ms: self.now_ms,
            asked: None,
        };
        match self.outcome_of(&probe) {
            Some(Ok(membership)) => ChangeStatus::Committed { membership },
            Some(Err(ChangeMembershipError::RolledBack { membership })) => {
                ChangeStatus::RolledBack { membership: *membership }
            }
            Some(Err(ChangeMembershipError::PartiallyApplied { membership })) => {
                ChangeStatus::Superseded { membership: *membership }
            }
            Some(Err(e)) => ChangeStatus::Failed { reason: e.to_string() },
            None => match stage {
                RequestStage::Queued { .. } => ChangeStatus::Pending,
                RequestStage::Proposed(log_id) => ChangeStatus::Proposed { log_id },
                RequestStage::Joint(log_id) if log_id.index > index_of(self.committed) => {
                    ChangeStatus::Proposed { log_id }
                }
                RequestStage::Joint(log_id) => match self.stored_at(log_id) {
                    Some(membership) => ChangeStatus::Joint { membership },
                    None => ChangeStatus::Unknown,
                },
            },
        }
    }
}

/// A change's first entry, as the log or the remembered changes show it.
struct LoggedChange<N> {
    first: Membership<N>,
    /// The membership before it, if known.
    before: Option<Membership<N>>,
    stage: RequestStage<N>,
}

impl<N: Node> LoggedChange<N> {
    /// Whether the first entry is what `asked` makes of the membership
    /// before it. The entry keeps the change's id, not the request (the
    /// log's format stays the one earlier versions read), so the request is
    /// checked by what it would have proposed: exact while the membership
    /// before the entry is known (held in the log, or remembered with the
    /// change); when it is not, a repeat is taken for the same change.
    fn is(&self, asked: &AskedChange<N>) -> bool {
        let Some(before) = &self.before else { return true };
        match asked.change.next_membership(before, asked.retain) {
            Ok(next) => {
                let first = &self.first;
                next.configs() == first.configs() && next.nodes() == first.nodes() && next.exit() == first.exit()
            }
            Err(_) => false,
        }
    }
}

/// The refusals remembered by change id, with what was asked, oldest first.
pub(crate) type ChangeRefusals<N> = VecDeque<(String, AskedChange<N>, ChangeMembershipError<N>)>;
