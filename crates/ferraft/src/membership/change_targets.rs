//! A change that names a node which is not a member where it must be one is
//! refused before it is proposed: removing or re-addressing node 99 of a
//! cluster without one is a mistake (a typo, the wrong cluster), and
//! answering it with success would hide it.

use super::change::{ChangeMembers, ChangeMembersError};
use super::config::Membership;
use crate::node::NodeId;

impl<N: crate::Node> ChangeMembers<N> {
    /// Fails with `UnknownNode` when the change removes (`RemoveVoters`,
    /// `RemoveNodes`) or re-addresses (`SetNodes`) a node that is not a
    /// member of `current`.
    pub fn check_targets_are_members(&self, current: &Membership<N>) -> Result<(), ChangeMembersError> {
        let targets: Box<dyn Iterator<Item = &NodeId>> = match self {
            Self::RemoveVoters(ids) | Self::RemoveNodes(ids) => Box::new(ids.iter()),
            Self::SetNodes(nodes) => Box::new(nodes.keys()),
            _ => return Ok(()),
        };
        match targets.copied().find(|id| !current.is_member(*id)) {
            Some(node_id) => Err(ChangeMembersError::UnknownNode { node_id }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;
    use crate::BasicNode;

    fn three() -> Membership<BasicNode> {
        let nodes: BTreeMap<NodeId, BasicNode> =
            [1, 2, 3].map(NodeId).map(|id| (id, BasicNode::new(format!("n{id}")))).into();
        Membership::new(vec![BTreeSet::from([1, 2].map(NodeId))], nodes).unwrap()
    }

    #[test]
    fn removing_or_readdressing_a_non_member_is_refused() {
        let unknown = Err(ChangeMembersError::UnknownNode { node_id: NodeId(99) });
        for change in [
            ChangeMembers::RemoveVoters(BTreeSet::from([2, 99].map(NodeId))),
            ChangeMembers::RemoveNodes(BTreeSet::from([99].map(NodeId))),
            ChangeMembers::SetNodes([(NodeId(99), BasicNode::new("n99"))].into()),
        ] {
            assert_eq!(change.check_targets_are_members(&three()), unknown, "{change:?}");
            assert_eq!(change.next_membership(&three(), false).map(|_| ()), unknown, "{change:?}");
        }
    }

    #[test]
    fn removing_members_passes_the_check() {
        let change = ChangeMembers::<BasicNode>::RemoveNodes(BTreeSet::from([3].map(NodeId)));
        assert_eq!(change.check_targets_are_members(&three()), Ok(()));
    }
}
