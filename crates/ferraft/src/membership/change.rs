//! The membership changes a caller can ask for.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::membership::{Membership, MembershipError};
use crate::node::NodeId;

/// A change to the cluster's membership, applied to the membership in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound = "N: crate::Node")]
pub enum ChangeMembers<N> {
    /// Promote existing learners to voters.
    AddVoterIds(BTreeSet<NodeId>),
    /// Promote existing learners to voters, updating their node descriptors.
    AddVoters(BTreeMap<NodeId, N>),
    /// Demote voters (to learners with `retain`, else out of the cluster).
    RemoveVoters(BTreeSet<NodeId>),
    /// Make exactly these members the voters.
    ReplaceAllVoters(BTreeSet<NodeId>),
    /// Add learners.
    AddNodes(BTreeMap<NodeId, N>),
    /// Update the descriptors (addresses) of existing members.
    SetNodes(BTreeMap<NodeId, N>),
    /// Remove learners.
    RemoveNodes(BTreeSet<NodeId>),
    /// Replace every node descriptor; every voter must stay.
    ReplaceAllNodes(BTreeMap<NodeId, N>),
}

/// Why a requested change cannot be applied to the current membership.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeMembersError {
    /// Voters must first be added as learners (`add_learner`) so they catch up
    /// before they count toward a quorum.
    #[error("node {node_id} is not a learner: add it with add_learner first")]
    NotLearner {
        /// The node that is not yet a member.
        node_id: NodeId,
    },
    /// The change would leave no voter.
    #[error("the change leaves no voter")]
    NoVoterLeft,
    /// Only learners can be removed as nodes; remove the voter first.
    #[error("node {node_id} is a voter: remove it with RemoveVoters first")]
    NodeIsVoter {
        /// The voter.
        node_id: NodeId,
    },
    /// The node is not a member.
    #[error("node {node_id} is not a member")]
    UnknownNode {
        /// The unknown node.
        node_id: NodeId,
    },
    /// The node is already a member with a different descriptor; use SetNodes.
    #[error("node {node_id} is already a member with another address: use SetNodes to change it")]
    NodeExists {
        /// The existing member.
        node_id: NodeId,
    },
    /// Two members would share one descriptor (address): a message meant for
    /// one would reach the other, which risks a split brain.
    #[error("node {node_id} would get the same address as node {other}")]
    DuplicateAddress {
        /// The node being changed.
        node_id: NodeId,
        /// The member that already has this address.
        other: NodeId,
    },
    /// The resulting membership is malformed.
    #[error(transparent)]
    Invalid(#[from] MembershipError),
}

impl<N: crate::Node> ChangeMembers<N> {
    /// True when only node descriptors change, not who votes.
    pub fn is_node_change(&self) -> bool {
        matches!(self, Self::AddNodes(_) | Self::SetNodes(_) | Self::RemoveNodes(_) | Self::ReplaceAllNodes(_))
    }

    /// The goal this change asks for, given the membership in force: the uniform
    /// voter config to end in, and the node descriptors.
    pub fn goal(&self, current: &Membership<N>) -> Result<(BTreeSet<NodeId>, BTreeMap<NodeId, N>), ChangeMembersError> {
        self.check_targets_are_members(current)?;
        let mut voters = current.last_config().clone();
        let mut nodes = current.nodes().clone();
        match self {
            Self::AddVoterIds(ids) => {
                require_members(current, ids.iter())?;
                voters.extend(ids);
            }
            Self::AddVoters(new) => {
                require_members(current, new.keys())?;
                for (id, node) in new {
                    nodes.insert(*id, node.clone());
                }
                voters.extend(new.keys());
            }
            Self::RemoveVoters(ids) => voters.retain(|id| !ids.contains(id)),
            Self::ReplaceAllVoters(ids) => {
                require_members(current, ids.iter())?;
                voters = ids.clone();
            }
            Self::AddNodes(new) => {
                for (id, node) in new {
                    match nodes.get(id) {
                        Some(existing) if existing != node => {
                            return Err(ChangeMembersError::NodeExists { node_id: *id })
                        }
                        _ => {
                            nodes.insert(*id, node.clone());
                        }
                    }
                }
            }
            Self::SetNodes(new) => {
                require_members(current, new.keys()).map_err(|e| match e {
                    ChangeMembersError::NotLearner { node_id } => ChangeMembersError::UnknownNode { node_id },
                    other => other,
                })?;
                for (id, node) in new {
                    nodes.insert(*id, node.clone());
                }
            }
            Self::RemoveNodes(ids) => {
                for id in ids {
                    if current.is_voter(*id) {
                        return Err(ChangeMembersError::NodeIsVoter { node_id: *id });
                    }
                    nodes.remove(id);
                }
            }
            Self::ReplaceAllNodes(new) => {
                if let Some(node_id) = current.voter_ids().find(|id| !new.contains_key(id)) {
                    return Err(ChangeMembersError::NodeIsVoter { node_id });
                }
                nodes = new.clone();
            }
        }
        if voters.is_empty() {
            return Err(ChangeMembersError::NoVoterLeft);
        }
        reject_shared_addresses(&nodes)?;
        Ok((voters, nodes))
    }

    /// The next membership to propose for this change, by the extended
    /// algorithm: the goal itself when that is safe, else a joint step.
    pub fn next_membership(&self, current: &Membership<N>, retain: bool) -> Result<Membership<N>, ChangeMembersError> {
        let (goal, nodes) = self.goal(current)?;
        if self.is_node_change() {
            return Ok(current.with_nodes(nodes)?);
        }
        Ok(current.next_toward(goal, nodes, retain)?)
    }
}

fn require_members<'a, N: crate::Node>(
    current: &Membership<N>,
    ids: impl Iterator<Item = &'a NodeId>,
) -> Result<(), ChangeMembersError> {
    for id in ids {
        if !current.is_member(*id) {
            return Err(ChangeMembersError::NotLearner { node_id: *id });
        }
    }
    Ok(())
}

fn reject_shared_addresses<N: crate::Node>(nodes: &BTreeMap<NodeId, N>) -> Result<(), ChangeMembersError> {
    for (id, node) in nodes {
        if let Some((other, _)) = nodes.iter().find(|(other, n)| *other < id && *n == node) {
            return Err(ChangeMembersError::DuplicateAddress { node_id: *id, other: *other });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BasicNode;

    fn nodes(ids: &[u64]) -> BTreeMap<NodeId, BasicNode> {
        ids.iter().map(|id| (NodeId(*id), BasicNode::new(format!("n{id}")))).collect()
    }

    fn set(ids: &[u64]) -> BTreeSet<NodeId> {
        ids.iter().copied().map(NodeId).collect()
    }

    fn uniform(voters: &[u64], all: &[u64]) -> Membership<BasicNode> {
        Membership::new(vec![set(voters)], nodes(all)).unwrap()
    }

    #[test]
    fn adding_a_voter_that_is_not_a_learner_is_refused() {
        let m = uniform(&[1, 2, 3], &[1, 2, 3]);
        let err = ChangeMembers::AddVoterIds(set(&[4])).next_membership(&m, false).unwrap_err();
        assert_eq!(err, ChangeMembersError::NotLearner { node_id: NodeId(4) });
    }

    #[test]
    fn adding_a_learner_as_voter_goes_through_a_joint_config() {
        let m = uniform(&[1, 2, 3], &[1, 2, 3, 4]);
        let next = ChangeMembers::AddVoterIds(set(&[4])).next_membership(&m, false).unwrap();
        assert_eq!(next.configs(), &[set(&[1, 2, 3]), set(&[1, 2, 3, 4])]);
    }

    #[test]
    fn removing_every_voter_is_refused() {
        let m = uniform(&[1], &[1]);
        let err = ChangeMembers::RemoveVoters(set(&[1])).next_membership(&m, false).unwrap_err();
        assert_eq!(err, ChangeMembersError::NoVoterLeft);
    }

    #[test]
    fn set_nodes_refuses_an_address_of_another_member() {
        // the brain-split example: b's address changed to one already used
        let m = uniform(&[1, 2, 3], &[1, 2, 3]);
        let change = ChangeMembers::SetNodes([(NodeId(2), BasicNode::new("n3"))].into());
        assert_eq!(
            change.next_membership(&m, false).unwrap_err(),
            ChangeMembersError::DuplicateAddress { node_id: NodeId(3), other: NodeId(2) }
        );
    }

    #[test]
    fn node_changes_keep_the_configs() {
        let joint = Membership::new(vec![set(&[1]), set(&[1, 2])], nodes(&[1, 2])).unwrap();
        let next = ChangeMembers::AddNodes(nodes(&[5])).next_membership(&joint, false).unwrap();
        assert_eq!(next.configs(), joint.configs());
        assert_eq!(next.learner_set(), set(&[5]));
    }

    #[test]
    fn removing_a_voter_as_node_is_refused() {
        let m = uniform(&[1, 2], &[1, 2, 3]);
        let err = ChangeMembers::RemoveNodes(set(&[2])).next_membership(&m, false).unwrap_err();
        assert_eq!(err, ChangeMembersError::NodeIsVoter { node_id: NodeId(2) });
        let ok = ChangeMembers::RemoveNodes(set(&[3])).next_membership(&m, false).unwrap();
        assert_eq!(ok.learner_set(), set(&[]));
    }

    #[test]
    fn add_nodes_refuses_to_overwrite_a_different_descriptor() {
        let m = uniform(&[1], &[1]);
        let change = ChangeMembers::AddNodes([(NodeId(1), BasicNode::new("elsewhere"))].into());
        assert_eq!(
            change.next_membership(&m, false).unwrap_err(),
            ChangeMembersError::NodeExists { node_id: NodeId(1) }
        );
    }
}
