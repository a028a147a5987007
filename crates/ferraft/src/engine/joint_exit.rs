//! When a joint config that leaves by itself is left, and for where.
//!
//! The exit to the new config is proposed once a majority of the new voters
//! is reachable and holds the joint entry: it then commits at once. When that
//! majority does not show within `joint_exit_timeout_ms`, the leader reverts
//! to the old voters instead, which needs only a majority of the old config
//! (rule 2: the old config is in the joint one, so every quorum of the revert
//! meets every quorum of the joint config). Proposing the exit to a new side
//! that cannot answer would instead leave it uncommitted, and propose-after-
//! commit would then block every later change until the new side returns.

use std::collections::BTreeMap;

use super::role::Role;
use super::Engine;
use crate::entry::AppData;
use crate::log_id::index_of;
use crate::membership::{Membership, MembershipError};
use crate::node::{LogIndex, Node};

impl<C: AppData, N: Node> Engine<C, N> {
    /// The membership to leave the committed, self-leaving joint config
    /// `joint` for, if one is due now: its exit when the new side is ready, a
    /// revert once it has not been ready for `joint_exit_timeout_ms`.
    pub(crate) fn joint_exit_due(&mut self, joint: &Membership<N>) -> Option<Result<Membership<N>, MembershipError>> {
        let joint_index = index_of(self.membership()?.log_id);
        if self.new_side_ready(joint, joint_index) {
            if let Role::Leader(leader) = &mut self.role {
                leader.joint_wait_since = None;
            }
            return Some(joint.leave_joint());
        }
        if !self.waited_out(joint_index) {
            return None;
        }
        tracing::warn!(
            node = %self.id,
            membership = %joint,
            "the new voters of the joint config did not become reachable and caught up in time: reverting to the old voters"
        );
        let nodes: Option<BTreeMap<_, _>> = self.nodes_before(joint);
        Some(joint.revert_joint(nodes))
    }

    /// A self-leaving joint config this leader holds uncommitted for longer than
    /// `joint_exit_timeout_ms`, its new voters not ready and the membership
    /// before it its old config alone: proposes the revert to that config.
    pub(crate) fn maybe_revert_uncommitted_joint(&mut self) {
        if !self.may_revert_uncommitted_joint() {
            return;
        }
        let Some(stored) = self.membership().cloned() else { return };
        let joint = stored.membership;
        let joint_index = index_of(stored.log_id);
        if !joint.leaves_automatically() {
            return;
        }
        if self.new_side_ready(&joint, joint_index) || !self.waited_out(joint_index) {
            return;
        }
        tracing::warn!(node = %self.id, membership = %joint, "the joint entry did not commit in time: reverting to the old voters");
        match joint.revert_joint(self.nodes_before(&joint)) {
            Ok(revert) => {
                self.propose_membership(revert);
                self.leader_maybe_commit();
            }
            Err(e) => tracing::error!(node = %self.id, error = %e, "cannot revert the joint config"),
        }
    }

    /// The one exception to propose-after-commit: this leader (its blank entry
    /// committed) holds an uncommitted joint `[old, new]` whose previous
    /// membership, `[old]`, is committed; reverting to `[old]` is then safe.
    pub(crate) fn may_revert_uncommitted_joint(&self) -> bool {
        let Some(leader) = self.leader_state() else { return false };
        if index_of(self.committed) < leader.term_start_index || self.membership_committed() {
            return false;
        }
        let Some(joint) = self.effective() else { return false };
        // a leader outside the old config would leave the revert held only by
        // nodes it makes non-voters, while the old voters, still in the joint
        // config, need their votes: no one could be elected (seed 7963)
        joint.configs().len() == 2
            && joint.configs()[0].contains(&self.id)
            && self.log.previous_membership().is_some_and(|p| {
                p.membership.configs() == [joint.configs()[0].clone()] && index_of(p.log_id) <= index_of(self.committed)
            })
    }

    /// Whether the joint entry at `joint_index` has waited
    /// `joint_exit_timeout_ms` on this leader (the wait starts at the first look).
    fn waited_out(&mut self, joint_index: LogIndex) -> bool {
        let now = self.now_ms;
        let timeout = self.config.joint_exit_timeout_ms;
        let Role::Leader(leader) = &mut self.role else { return false };
        let since = match leader.joint_wait_since {
            Some((index, since)) if index == joint_index => since,
            _ => {
                leader.joint_wait_since = Some((joint_index, now));
                now
            }
        };
        timeout > 0 && now >= since + timeout
    }

    /// A majority of the joint config's new voters was heard from within an
    /// election timeout and holds the joint entry.
    fn new_side_ready(&self, joint: &Membership<N>, joint_index: LogIndex) -> bool {
        let Some(leader) = self.leader_state() else { return false };
        let recent = self.now_ms.saturating_sub(self.config.election_timeout_max_ms);
        let new_side = Membership::new(vec![joint.last_config().clone()], joint.nodes().clone());
        let Ok(new_side) = new_side else { return false };
        new_side.is_quorum(|id| {
            id == self.id
                || leader
                    .progress
                    .get(&id)
                    .is_some_and(|p| p.matched_index() >= joint_index && p.last_heard_ms >= recent)
        })
    }
}
