//! Bringing back a member whose data was wiped (or whose machine was
//! replaced): the operator's path of the incarnation rule.
//!
//! A member that comes back as a new incarnation counts for nothing (see
//! [`crate::incarnation`]). It becomes useful again once membership records
//! its new incarnation, which the leader only writes for a learner: a voter
//! is first demoted (kept as learner, through a joint config if needed, all
//! committable by the other voters), then recorded. The operator promotes it
//! once it caught up, with the usual calls.

use super::Raft;
use crate::engine::ServerState;
use crate::error::{ChangeMembershipError, ForwardToLeader};
use crate::membership::{ChangeMembers, ChangeMembersError, StoredMembership};
use crate::node::{Node, NodeId};
use crate::state_machine::StateMachine;

impl<SM: StateMachine, N: Node> Raft<SM, N> {
    /// Re-adds member `id`, back with new data, as a learner of its new
    /// incarnation; returns the membership that records it. Asks the node
    /// who it is first: one that does not answer is refused with
    /// `IncarnationUnknown`; one of another cluster with `PeerRefused`. One
    /// that is its recorded self is left as it is (the membership in force
    /// is the answer). A voter is demoted to learner on the way: if it cannot
    /// then be recorded (leadership moved), the answer is `PartiallyApplied`
    /// (call again). Promote it once it caught up (`change_membership` with
    /// `AddVoterIds`, or [`Raft::add_learner_with`]'s promote rule).
    pub async fn readmit(&self, id: NodeId) -> Result<StoredMembership<N>, ChangeMembershipError<N>> {
        let (current, state, leader_id) = {
            let m = self.metrics().borrow().clone();
            (m.membership, m.state, m.current_leader)
        };
        if state != ServerState::Leader {
            let leader_node = leader_id.and_then(|l| current.as_ref().and_then(|m| m.membership.node(l).cloned()));
            return Err(ChangeMembershipError::ForwardToLeader(ForwardToLeader { leader_id, leader_node }));
        }
        let Some((current, node)) = current.and_then(|m| m.membership.node(id).cloned().map(|node| (m, node))) else {
            return Err(ChangeMembershipError::Invalid(ChangeMembersError::UnknownNode { node_id: id }));
        };
        let incarnation = self.probe_new_member(id, &node).await?;
        if incarnation == 0 {
            return Err(ChangeMembershipError::IncarnationUnknown { node_id: id });
        }
        // its recorded self (never wiped, or readmitted already): nothing to
        // do, and a healthy voter is not demoted (the record is awaited below
        // all the same: the entry that holds it may not be committed yet)
        let demoted = match current.membership.incarnation(id) != incarnation && current.membership.is_voter(id) {
            true => Some(self.change_membership(ChangeMembers::RemoveVoters([id].into()), true).await?),
            false => None,
        };
        // the leader records a learner's incarnation by itself, in the
        // demotion's last entry or in an entry of its own just after; done
        // once a committed membership records it (an entry only appended may
        // still be lost with this leader)
        let timeout = self.inner.probe_timeout * 5;
        let recorded = self
            .wait(timeout)
            .metrics(
                |m| {
                    m.membership_committed
                        && m.membership.as_ref().is_some_and(|s| s.membership.incarnation(id) == incarnation)
                },
                format!("node {id}'s incarnation {incarnation:016x} recorded and committed"),
            )
            .await;
        match (recorded, demoted) {
            (Ok(m), _) => Ok(m.membership.expect("waited for a membership")),
            (Err(_), Some(membership)) => {
                Err(ChangeMembershipError::PartiallyApplied { membership: Box::new(membership) })
            }
            (Err(_), None) => Err(ChangeMembershipError::LeadershipLost),
        }
    }
}
