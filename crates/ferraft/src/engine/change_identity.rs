//! Changes with a client change id: retries answered with the first call's
//! outcome, and a change's status, both read from the log so that any leader
//! gives the same answer.

use std::collections::VecDeque;

use super::membership_requests::{MembershipRequest, RequestStage};
use super::Engine;
use crate::entry::AppData;
use crate::error::ChangeMembershipError;
use crate::log_id::{index_of, LogId};
use crate::membership::{ChangeGuard, StoredMembership};
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
    /// This node knows no change with this id (never seen, or its entries were
    /// compacted into a snapshot).
    Unknown,
}

impl<C: AppData, N: Node> Engine<C, N> {
    /// A repeated call with `change_id`: the record that answers `request_id`
    /// with the first call's outcome, or the first call's refusal, or `None`
    /// when this is the first call.
    pub(crate) fn retry_of(
        &self,
        request_id: u64,
        change_id: &str,
    ) -> Result<Option<MembershipRequest<N>>, ChangeMembershipError<N>> {
        if let Some((_, refusal)) = self.change_refusals.iter().find(|(id, _)| id == change_id) {
            return Err(refusal.clone());
        }
        let tracked = self.membership_requests.iter().find(|r| r.guard.change_id.as_deref() == Some(change_id));
        if let Some(first) = tracked {
            return Ok(Some(MembershipRequest { request_id, ..first.clone() }));
        }
        let Some(stage) = self.logged_stage(change_id) else { return Ok(None) };
        let guard = ChangeGuard { change_id: Some(change_id.to_string()), expect_membership_index: None };
        Ok(Some(MembershipRequest { request_id, guard, stage, answer_by_ms: None, accepted_ms: self.now_ms }))
    }

    /// The stage of the change `change_id` as its first entry in the log shows it.
    fn logged_stage(&self, change_id: &str) -> Option<RequestStage<N>> {
        let first = self.log.memberships_after(LogIndex(0)).find(|m| m.membership.change_id() == Some(change_id))?;
        let log_id = first.log_id?;
        // a joint entry is the first step of a change that leaves it after;
        // a uniform or descriptor-only entry is the whole change
        let joint = first.membership.is_joint()
            && self
                .log
                .membership_at(log_id.index.prev())
                .is_none_or(|before| before.membership.configs() != first.membership.configs());
        Some(if joint { RequestStage::Joint(log_id) } else { RequestStage::Proposed(log_id) })
    }

    /// Remembers that the call with `guard`'s change id was refused, so a
    /// retry hears the same.
    pub(crate) fn remember_refusal(
        &mut self,
        guard: &ChangeGuard,
        result: &Result<StoredMembership<N>, ChangeMembershipError<N>>,
    ) {
        let (Some(change_id), Err(error)) = (&guard.change_id, result) else { return };
        let refusal =
            matches!(error, ChangeMembershipError::Invalid(_) | ChangeMembershipError::PreconditionFailed { .. });
        if refusal {
            if self.change_refusals.len() >= REMEMBERED_REFUSALS {
                self.change_refusals.pop_front();
            }
            self.change_refusals.push_back((change_id.clone(), error.clone()));
        }
    }

    /// Where the change `change_id` stands, as this node's log (and, on the
    /// leader, its queue) shows it.
    pub fn change_status(&self, change_id: &str) -> ChangeStatus<N> {
        if let Some((_, refusal)) = self.change_refusals.iter().find(|(id, _)| id == change_id) {
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

/// The refusals remembered by change id, oldest first.
pub(crate) type ChangeRefusals<N> = VecDeque<(String, ChangeMembershipError<N>)>;
