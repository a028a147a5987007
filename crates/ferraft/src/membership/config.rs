//! The membership value: configs plus node descriptors.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::log_id::LogId;
use crate::membership::{quorum, JointExit};
use crate::node::{LogIndex, NodeId};

/// Why a membership value is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MembershipError {
    /// A membership needs at least one config.
    #[error("membership has no config")]
    NoConfig,
    /// Every config needs at least one voter, or it could never form a quorum.
    #[error("config {index} of the membership has no voter")]
    EmptyConfig {
        /// Position of the empty config.
        index: usize,
    },
    /// Every voter needs a node descriptor so the leader can reach it.
    #[error("voter {node_id} has no node entry (address)")]
    VoterWithoutNode {
        /// The voter lacking a node entry.
        node_id: NodeId,
    },
}

/// Who is in the cluster: one config (uniform) or several (joint), and the node
/// descriptors of voters and learners.
///
/// Voters are the union of the configs; learners are nodes in no config. A
/// quorum is a majority of every config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound = "N: crate::Node")]
pub struct Membership<N> {
    configs: Vec<BTreeSet<NodeId>>,
    nodes: BTreeMap<NodeId, N>,
    /// How a joint membership is left; `None` for a uniform one, and for a
    /// joint one built without a plan (it waits for an explicit commit or abort).
    exit: Option<JointExit>,
    /// The client change id of the call that proposed this entry, if it gave
    /// one: any leader finds a change's outcome by it (idempotent retries).
    change_id: Option<String>,
    /// The incarnation of each member, as the leader that proposed this entry
    /// knew it (see [`crate::incarnation`]); a member missing here is not
    /// known yet and is taken on trust. Kept by the proposing leader, not by
    /// the planning functions below.
    incarnations: BTreeMap<NodeId, u64>,
}

impl<N: crate::Node> Membership<N> {
    /// Builds a membership, checking it is usable.
    pub fn new(configs: Vec<BTreeSet<NodeId>>, nodes: BTreeMap<NodeId, N>) -> Result<Self, MembershipError> {
        let membership = Self { configs, nodes, exit: None, change_id: None, incarnations: BTreeMap::new() };
        membership.validate()?;
        Ok(membership)
    }

    /// The same membership, left as `exit` says once it is joint (a uniform
    /// membership has nothing to leave and keeps no plan).
    pub fn with_exit(mut self, exit: JointExit) -> Self {
        self.exit = self.is_joint().then_some(exit);
        self
    }

    /// The same configs (and plan to leave them) with other node descriptors.
    pub fn with_nodes(&self, nodes: BTreeMap<NodeId, N>) -> Result<Self, MembershipError> {
        let next = Self {
            configs: self.configs.clone(),
            nodes,
            exit: self.exit.clone(),
            change_id: None,
            incarnations: BTreeMap::new(),
        };
        next.validate()?;
        Ok(next)
    }

    /// The same membership, tagged as proposed by the change `change_id`.
    pub fn with_change_id(mut self, change_id: Option<String>) -> Self {
        self.change_id = change_id;
        self
    }

    /// The same membership with these incarnations recorded (entries for
    /// non-members and zeros are dropped).
    pub fn with_incarnations(mut self, incarnations: BTreeMap<NodeId, u64>) -> Self {
        self.incarnations = incarnations.into_iter().filter(|(id, i)| *i != 0 && self.nodes.contains_key(id)).collect();
        self
    }

    /// The incarnation recorded for member `id`; 0 when not known.
    pub fn incarnation(&self, id: NodeId) -> u64 {
        self.incarnations.get(&id).copied().unwrap_or(0)
    }

    /// Every recorded incarnation.
    pub fn incarnations(&self) -> &BTreeMap<NodeId, u64> {
        &self.incarnations
    }

    /// The client change id of the call that proposed this entry.
    pub fn change_id(&self) -> Option<&str> {
        self.change_id.as_deref()
    }

    /// How this joint membership is to be left, if its proposer said.
    pub fn exit(&self) -> Option<&JointExit> {
        self.exit.as_ref()
    }

    /// Whether this is a joint membership that any leader leaves by itself once
    /// it is committed.
    pub fn leaves_automatically(&self) -> bool {
        self.exit.as_ref().is_some_and(|e| e.automatic)
    }

    /// A uniform membership whose voters are exactly `nodes`.
    pub fn new_uniform(nodes: BTreeMap<NodeId, N>) -> Result<Self, MembershipError> {
        let config = nodes.keys().copied().collect();
        Self::new(vec![config], nodes)
    }

    /// Re-checks the invariants; used for memberships decoded from the log.
    pub fn validate(&self) -> Result<(), MembershipError> {
        if self.configs.is_empty() {
            return Err(MembershipError::NoConfig);
        }
        if let Some(index) = self.configs.iter().position(|c| c.is_empty()) {
            return Err(MembershipError::EmptyConfig { index });
        }
        if let Some(node_id) = self.voter_ids().find(|id| !self.nodes.contains_key(id)) {
            return Err(MembershipError::VoterWithoutNode { node_id });
        }
        Ok(())
    }

    /// The configs: one when uniform, two or more when joint.
    pub fn configs(&self) -> &[BTreeSet<NodeId>] {
        &self.configs
    }

    /// Node descriptors of every voter and learner.
    pub fn nodes(&self) -> &BTreeMap<NodeId, N> {
        &self.nodes
    }

    /// The descriptor of one member.
    pub fn node(&self, id: NodeId) -> Option<&N> {
        self.nodes.get(&id)
    }

    /// True when more than one config is in force.
    pub fn is_joint(&self) -> bool {
        self.configs.len() > 1
    }

    /// Every voter: the union of the configs, ascending.
    pub fn voter_ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        let union: BTreeSet<NodeId> = self.configs.iter().flatten().copied().collect();
        union.into_iter()
    }

    /// Voters as a set.
    pub fn voter_set(&self) -> BTreeSet<NodeId> {
        self.voter_ids().collect()
    }

    /// Members that replicate but do not vote.
    pub fn learner_ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.nodes.keys().copied().filter(|id| !self.is_voter(*id))
    }

    /// Learners as a set.
    pub fn learner_set(&self) -> BTreeSet<NodeId> {
        self.learner_ids().collect()
    }

    /// Whether `id` is in some config.
    pub fn is_voter(&self, id: NodeId) -> bool {
        self.configs.iter().any(|c| c.contains(&id))
    }

    /// Whether `id` is a member at all (voter or learner).
    pub fn is_member(&self, id: NodeId) -> bool {
        self.nodes.contains_key(&id)
    }

    /// Whether the nodes for which `granted` holds form a quorum.
    pub fn is_quorum(&self, granted: impl Fn(NodeId) -> bool) -> bool {
        quorum::is_quorum(&self.configs, granted)
    }

    /// The greatest index reached by a quorum, given each voter's matched index.
    pub fn committed_index(&self, matched: impl Fn(NodeId) -> LogIndex) -> LogIndex {
        quorum::committed_index(&self.configs, matched)
    }

    /// The last config: the goal of a joint membership.
    pub fn last_config(&self) -> &BTreeSet<NodeId> {
        self.configs.last().expect("validated: at least one config")
    }

    /// The *old-new-intersect* rule, simplified: `next` holds a config identical
    /// to one of `self` (the last committed membership), so every quorum of
    /// `next` meets every quorum of `self`.
    pub fn may_transition_to(&self, next: &Membership<N>) -> bool {
        next.configs.iter().any(|c| self.configs.contains(c))
    }

    /// The next membership on the way to the uniform config `goal`.
    ///
    /// Goes to `goal` in one step when it is one of this membership's configs
    /// (safe by old-new-intersect: that includes reverting a joint config to
    /// its old side), else to the joint `[last, goal]`, which records that it
    /// leaves for `goal` by itself. Voters that leave keep their node entry, as
    /// learners, only with `retain`.
    pub fn next_toward(
        &self,
        goal: BTreeSet<NodeId>,
        nodes: BTreeMap<NodeId, N>,
        retain: bool,
    ) -> Result<Self, MembershipError> {
        let last = self.last_config().clone();
        let mut next = if self.configs.contains(&goal) {
            Self { configs: vec![goal], nodes, exit: None, change_id: None, incarnations: BTreeMap::new() }
        } else {
            let keep_as_learners = if retain { last.difference(&goal).copied().collect() } else { BTreeSet::new() };
            let exit = JointExit { automatic: true, keep_as_learners };
            Self { configs: vec![last, goal], nodes, exit: Some(exit), change_id: None, incarnations: BTreeMap::new() }
        };
        if !retain {
            let voters = next.voter_set();
            let removed: Vec<NodeId> = self.voter_ids().filter(|id| !voters.contains(id)).collect();
            for id in removed {
                next.nodes.remove(&id);
            }
        }
        next.validate()?;
        Ok(next)
    }

    /// The uniform membership that leaves this joint one for its last config,
    /// as its exit plan says: voters of the other configs leave the cluster
    /// unless the plan keeps them as learners.
    pub fn leave_joint(&self) -> Result<Self, MembershipError> {
        let last = self.last_config().clone();
        let keep = self.exit.as_ref().map(|e| &e.keep_as_learners);
        let nodes = self
            .nodes
            .iter()
            .filter(|(id, _)| last.contains(id) || !self.is_voter(**id) || keep.is_some_and(|k| k.contains(id)))
            .map(|(id, n)| (*id, n.clone()))
            .collect();
        // the exit belongs to the change that entered the joint config
        Ok(Self::new(vec![last], nodes)?.with_change_id(self.change_id.clone()))
    }

    /// The uniform membership that reverts this joint one to its first config,
    /// keeping `nodes` (the descriptors in force before the joint config, when
    /// known).
    pub fn revert_joint(&self, nodes: Option<BTreeMap<NodeId, N>>) -> Result<Self, MembershipError> {
        let old = self.configs[0].clone();
        let nodes = nodes.unwrap_or_else(|| {
            self.nodes
                .iter()
                .filter(|(id, _)| !self.is_voter(**id) || old.contains(id))
                .map(|(id, n)| (*id, n.clone()))
                .collect()
        });
        Ok(Self::new(vec![old], nodes)?.with_change_id(self.change_id.clone()))
    }

    /// Whether `next` reverts this joint membership to its first config.
    pub fn is_reverted_by(&self, next: &Membership<N>) -> bool {
        self.is_joint() && next.configs == [self.configs[0].clone()]
    }

    /// Whether `next` is the exit of this joint membership as its plan says:
    /// its last config alone, the leaving voters the plan keeps as learners
    /// still members and the others gone. Another change may leave the joint
    /// config for the same voters keeping other nodes (a removal with retain
    /// while this one removes without): that is not this change done (sim
    /// seed 7307 of the forward-heavy runs answered such a removal a success).
    pub fn is_left_by(&self, next: &Membership<N>) -> bool {
        let last = self.last_config();
        let keep = self.exit.as_ref().map(|e| &e.keep_as_learners);
        let as_planned = (self.voter_ids().filter(|id| !last.contains(id)))
            .all(|id| next.nodes.contains_key(&id) == keep.is_some_and(|k| k.contains(&id)));
        self.is_joint() && next.configs == [last.clone()] && as_planned
    }
}

impl<N: crate::Node> fmt::Display for Membership<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let configs: Vec<String> = self
            .configs
            .iter()
            .map(|c| format!("{{{}}}", c.iter().map(|id| id.to_string()).collect::<Vec<_>>().join(",")))
            .collect();
        let learners: Vec<String> = self.learner_ids().map(|id| id.to_string()).collect();
        write!(f, "[{}]", configs.join(","))?;
        if !learners.is_empty() {
            write!(f, " learners {{{}}}", learners.join(","))?;
        }
        Ok(())
    }
}

/// A membership together with the log id of the entry that carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound = "N: crate::Node")]
pub struct StoredMembership<N> {
    /// The entry that proposed it; `None` for the empty membership of a new node.
    pub log_id: Option<LogId>,
    /// The membership itself.
    pub membership: Membership<N>,
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

    #[test]
    fn empty_config_is_rejected() {
        assert_eq!(Membership::new(vec![], nodes(&[1])), Err(MembershipError::NoConfig));
        assert_eq!(
            Membership::new(vec![set(&[1]), set(&[])], nodes(&[1])),
            Err(MembershipError::EmptyConfig { index: 1 })
        );
    }

    #[test]
    fn voter_needs_node_entry() {
        assert_eq!(
            Membership::new(vec![set(&[1, 2])], nodes(&[1])),
            Err(MembershipError::VoterWithoutNode { node_id: NodeId(2) })
        );
    }

    #[test]
    fn learners_are_nodes_outside_every_config() {
        let m = Membership::new(vec![set(&[1, 2]), set(&[2, 3])], nodes(&[1, 2, 3, 4])).unwrap();
        assert_eq!(m.voter_set(), set(&[1, 2, 3]));
        assert_eq!(m.learner_set(), set(&[4]));
    }

    #[test]
    fn next_toward_goes_joint_then_uniform() {
        let c1 = Membership::new_uniform(nodes(&[1, 2, 3])).unwrap();
        let joint = c1.next_toward(set(&[3, 4, 5]), nodes(&[1, 2, 3, 4, 5]), false).unwrap();
        assert_eq!(joint.configs(), &[set(&[1, 2, 3]), set(&[3, 4, 5])]);
        assert!(c1.may_transition_to(&joint));
        let uniform = joint.leave_joint().unwrap();
        assert_eq!(uniform.configs(), &[set(&[3, 4, 5])]);
        assert_eq!(uniform.learner_set(), set(&[]));
        assert!(joint.may_transition_to(&uniform));
        assert!(!c1.may_transition_to(&uniform), "c1 -> c2 directly is unsafe");
    }

    #[test]
    fn retain_keeps_removed_voters_as_learners() {
        let c1 = Membership::new_uniform(nodes(&[1, 2, 3])).unwrap();
        let joint = c1.next_toward(set(&[3, 4, 5]), nodes(&[1, 2, 3, 4, 5]), true).unwrap();
        assert_eq!(joint.exit().unwrap().keep_as_learners, set(&[1, 2]), "the plan is in the joint entry");
        let uniform = joint.leave_joint().unwrap();
        assert_eq!(uniform.learner_set(), set(&[1, 2]));
    }

    #[test]
    fn reverting_a_joint_config_is_a_legal_transition() {
        let joint = Membership::new(vec![set(&[1]), set(&[2]), set(&[3])], nodes(&[1, 2, 3])).unwrap();
        let back = Membership::new(vec![set(&[1])], nodes(&[1, 2, 3])).unwrap();
        assert!(joint.may_transition_to(&back));
        let c3c4 = Membership::new(vec![set(&[3]), set(&[4])], nodes(&[1, 2, 3, 4])).unwrap();
        assert!(joint.may_transition_to(&c3c4));
        let c4 = Membership::new(vec![set(&[4])], nodes(&[4])).unwrap();
        assert!(c3c4.may_transition_to(&c4));
        assert!(!joint.may_transition_to(&c4));
    }

    #[test]
    fn a_joint_config_reverts_to_its_old_side_in_one_step() {
        let joint = Membership::new(vec![set(&[1, 2, 3]), set(&[3, 4, 5])], nodes(&[1, 2, 3, 4, 5])).unwrap();
        let back = joint.next_toward(set(&[1, 2, 3]), nodes(&[1, 2, 3, 4, 5]), false).unwrap();
        assert_eq!(back.configs(), &[set(&[1, 2, 3])], "[c1,c2] -> c1 directly, not through [c2,c1]");
        assert_eq!(back.learner_set(), set(&[]), "without retain the voters that leave are gone");
        assert!(joint.may_transition_to(&back));
    }

    #[test]
    fn node_changes_keep_the_exit_plan() {
        let c1 = Membership::new_uniform(nodes(&[1, 2, 3])).unwrap();
        let joint = c1.next_toward(set(&[3, 4, 5]), nodes(&[1, 2, 3, 4, 5]), true).unwrap();
        let moved = joint.with_nodes(nodes(&[1, 2, 3, 4, 5, 6])).unwrap();
        assert_eq!(moved.exit(), joint.exit());
        assert!(moved.leaves_automatically());
    }
}
