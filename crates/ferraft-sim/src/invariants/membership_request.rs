//! What a caller asked of the membership, and what a success must therefore show.
//!
//! Each check here is a post-condition of the request alone ("x is a voter
//! now"), true whatever other requests ran before it, except [`Asked::unmet_retain`],
//! which compares with the membership the request started from and so is only
//! asked when that start is known (see `membership_answers`).
//!
//! A success of a voter change must name a uniform config; a node change does
//! not touch the voters, so it may be answered with a joint config in force.

use std::collections::BTreeSet;
use std::fmt;

use ferraft::{BasicNode, ChangeMembers, Membership, NodeId, StoredMembership};

type SimMembership = Membership<BasicNode>;

/// One membership request the simulator made.
#[derive(Debug, Clone)]
pub enum Asked {
    /// `change_membership`: answered later by `Output::MembershipDone`.
    Change {
        /// The change.
        change: ChangeMembers<BasicNode>,
        /// Keep removed voters as learners.
        retain: bool,
    },
    /// `prepare_membership`: enter the joint config `[expect_voters, voters]`.
    Prepare {
        /// The voters the caller saw.
        expect_voters: BTreeSet<NodeId>,
        /// The new voters.
        voters: BTreeSet<NodeId>,
        /// Old voters to keep as learners once the change is committed.
        learners: BTreeSet<NodeId>,
    },
    /// `commit_membership` of the joint config the caller saw (its index is the prepare index).
    Commit {
        /// The joint config.
        joint: StoredMembership<BasicNode>,
        /// The learners its prepare asked to keep, when one prepare made it.
        keep: Option<BTreeSet<NodeId>>,
    },
    /// `abort_membership` of the joint config the caller saw.
    Abort {
        /// The joint config.
        joint: StoredMembership<BasicNode>,
    },
}

impl fmt::Display for Asked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Asked::Change { change, retain } => write!(f, "change {change:?} retain={retain}"),
            Asked::Prepare { expect_voters, voters, learners } => {
                write!(f, "prepare {expect_voters:?} -> {voters:?} keeping {learners:?}")
            }
            Asked::Commit { joint, keep } => write!(f, "commit {} keeping {keep:?}", joint.membership),
            Asked::Abort { joint } => write!(f, "abort {}", joint.membership),
        }
    }
}

impl Asked {
    /// Whether `next`, proposed on top of `prev`, is a step this request
    /// would propose (how proposals are attributed to requests). A voter
    /// change steps into the joint `[last, goal]` or, from a config holding
    /// its goal, to the goal alone; leaving a joint config counts only when
    /// that joint config was this request's own step (`own_prev`), since an
    /// engine may also leave a joint config on its own.
    pub fn would_propose(&self, prev: &SimMembership, next: &SimMembership, own_prev: bool) -> bool {
        match self {
            // the leader records incarnations in the entry as it knows them
            // (a probed new learner's too): only configs and nodes tell
            Asked::Change { change, retain } if change.is_node_change() => change
                .next_membership(prev, *retain)
                .is_ok_and(|m| m.configs() == next.configs() && m.nodes() == next.nodes()),
            Asked::Change { change, .. } => {
                let Ok((goal, goal_nodes)) = change.goal(prev) else { return false };
                // a voter change adds no node its goal does not name
                if next.nodes().keys().any(|id| !prev.is_member(*id) && !goal_nodes.contains_key(id)) {
                    return false;
                }
                let joint_step = next.configs() == [prev.last_config().clone(), goal.clone()];
                // a goal already in force alone is answered without an entry
                let to_goal = next.configs() == [goal.clone()]
                    && prev.configs().contains(&goal)
                    && next.configs() != prev.configs();
                joint_step || (to_goal && (!prev.is_joint() || own_prev))
            }
            Asked::Prepare { expect_voters, voters, .. } => next.configs() == [expect_voters.clone(), voters.clone()],
            Asked::Commit { joint, .. } => {
                prev.configs() == joint.membership.configs()
                    && next.configs() == [joint.membership.last_config().clone()]
            }
            Asked::Abort { joint } => {
                prev.configs() == joint.membership.configs()
                    && next.configs() == [joint.membership.configs()[0].clone()]
            }
        }
    }

    /// What `got`, answered as this request's success, fails to show (`None`: all of it).
    /// A voter change must end in a uniform config; a node change does not
    /// touch the voters, so it may be answered with a joint config in force.
    pub fn unmet_by(&self, got: &SimMembership) -> Option<String> {
        let voters = got.voter_set();
        let uniform = !got.is_joint();
        match self {
            Asked::Change { change, .. } => {
                if !uniform && !change.is_node_change() {
                    return Some("a joint config".to_string());
                }
                unmet_change(change, got, &voters)
            }
            Asked::Prepare { expect_voters, voters: target, learners } => {
                if got.configs() != [expect_voters.clone(), target.clone()] {
                    return Some("another config than the prepared joint one".to_string());
                }
                let missing: BTreeSet<NodeId> = learners.iter().copied().filter(|id| !got.is_member(*id)).collect();
                (!missing.is_empty()).then(|| format!("learners {missing:?} missing"))
            }
            Asked::Commit { joint, keep } => {
                let target = joint.membership.last_config();
                if !uniform || &voters != target {
                    return Some(format!("not the uniform config {target:?}"));
                }
                let keep = keep.as_ref()?;
                let old_only: BTreeSet<NodeId> = joint.membership.configs()[0].difference(target).copied().collect();
                unmet_removal(&old_only, keep, got)
            }
            Asked::Abort { joint } => {
                let old = &joint.membership.configs()[0];
                (!uniform || &voters != old).then(|| format!("not the uniform config {old:?}"))
            }
        }
    }

    /// For a voter change that started from `base`: the voters it removed
    /// must stay as learners with `retain`, and be gone without it. Unless
    /// the request alone went from `base` to `got` (`alone`), only the voters
    /// of `base` that `RemoveVoters` without `retain` names are checked (gone).
    pub fn unmet_retain(&self, base: &SimMembership, alone: bool, got: &SimMembership) -> Option<String> {
        let Asked::Change { change, retain } = self else { return None };
        if change.is_node_change() {
            return None;
        }
        if !alone {
            let ChangeMembers::RemoveVoters(ids) = change else { return None };
            let named: BTreeSet<NodeId> = ids.intersection(&base.voter_set()).copied().collect();
            return if *retain { None } else { unmet_removal(&named, &BTreeSet::new(), got) };
        }
        let removed: BTreeSet<NodeId> = base.voter_set().difference(&got.voter_set()).copied().collect();
        let kept = if *retain { removed.clone() } else { BTreeSet::new() };
        unmet_removal(&removed, &kept, got)
    }
}

/// Of the voters `removed`, exactly those in `keep` remain (as learners).
fn unmet_removal(removed: &BTreeSet<NodeId>, keep: &BTreeSet<NodeId>, got: &SimMembership) -> Option<String> {
    let dropped: BTreeSet<NodeId> =
        removed.iter().copied().filter(|id| keep.contains(id) && !got.is_member(*id)).collect();
    let lingering: BTreeSet<NodeId> =
        removed.iter().copied().filter(|id| !keep.contains(id) && got.is_member(*id)).collect();
    match (dropped.is_empty(), lingering.is_empty()) {
        (true, true) => None,
        (false, _) => Some(format!("removed voters {dropped:?} that were to stay as learners are gone")),
        (true, false) => Some(format!("removed voters {lingering:?} are still members")),
    }
}

fn unmet_change(change: &ChangeMembers<BasicNode>, got: &SimMembership, voters: &BTreeSet<NodeId>) -> Option<String> {
    let has = |id: &NodeId, node: &BasicNode| got.node(*id) == Some(node);
    match change {
        ChangeMembers::AddVoterIds(ids) => (!ids.is_subset(voters)).then(|| format!("{ids:?} not all voters")),
        ChangeMembers::AddVoters(new) => {
            (!new.iter().all(|(id, n)| voters.contains(id) && has(id, n))).then(|| format!("{new:?} not all voters"))
        }
        ChangeMembers::RemoveVoters(ids) => (!ids.is_disjoint(voters)).then(|| format!("some of {ids:?} still voters")),
        ChangeMembers::ReplaceAllVoters(ids) => (ids != voters).then(|| format!("voters are not {ids:?}")),
        ChangeMembers::AddNodes(new) | ChangeMembers::SetNodes(new) => {
            (!new.iter().all(|(id, n)| has(id, n))).then(|| format!("{new:?} not all present as given"))
        }
        ChangeMembers::RemoveNodes(ids) => {
            ids.iter().any(|id| got.is_member(*id)).then(|| format!("some of {ids:?} still members"))
        }
        ChangeMembers::ReplaceAllNodes(new) => (got.nodes() != new).then(|| format!("nodes are not {new:?}")),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn set(ids: &[NodeId]) -> BTreeSet<NodeId> {
        ids.iter().copied().collect()
    }

    fn membership(configs: &[&[NodeId]], all: &[NodeId]) -> SimMembership {
        let nodes: BTreeMap<NodeId, BasicNode> = all.iter().map(|id| (*id, BasicNode::new(format!("n{id}")))).collect();
        Membership::new(configs.iter().map(|c| set(c)).collect(), nodes).unwrap()
    }

    fn change(change: ChangeMembers<BasicNode>, retain: bool) -> Asked {
        Asked::Change { change, retain }
    }

    #[test]
    fn a_success_that_did_not_add_the_voter_is_caught() {
        let asked = change(ChangeMembers::AddVoterIds(set(&[NodeId(4)])), false);
        assert!(asked
            .unmet_by(&membership(
                &[&[NodeId(1), NodeId(2), NodeId(3), NodeId(4)]],
                &[NodeId(1), NodeId(2), NodeId(3), NodeId(4)]
            ))
            .is_none());
        assert!(asked
            .unmet_by(&membership(&[&[NodeId(1), NodeId(2), NodeId(3)]], &[NodeId(1), NodeId(2), NodeId(3), NodeId(4)]))
            .is_some());
    }

    #[test]
    fn a_voter_change_answered_in_a_joint_config_is_caught() {
        let asked = change(ChangeMembers::AddVoterIds(set(&[NodeId(4)])), false);
        assert!(asked
            .unmet_by(&membership(
                &[&[NodeId(1), NodeId(2), NodeId(3)], &[NodeId(1), NodeId(2), NodeId(3), NodeId(4)]],
                &[NodeId(1), NodeId(2), NodeId(3), NodeId(4)]
            ))
            .is_some());
        // a node change leaves the voter configs in force as they are
        let add = change(ChangeMembers::AddNodes([(NodeId(5), BasicNode::new("n5"))].into()), false);
        assert!(add
            .unmet_by(&membership(
                &[&[NodeId(1), NodeId(2), NodeId(3)], &[NodeId(1), NodeId(2), NodeId(3), NodeId(4)]],
                &[NodeId(1), NodeId(2), NodeId(3), NodeId(4), NodeId(5)]
            ))
            .is_none());
    }

    #[test]
    fn a_removed_voter_is_kept_only_when_retained() {
        let base = membership(&[&[NodeId(1), NodeId(2), NodeId(3)]], &[NodeId(1), NodeId(2), NodeId(3)]);
        let kept = membership(&[&[NodeId(1), NodeId(2)]], &[NodeId(1), NodeId(2), NodeId(3)]);
        let gone = membership(&[&[NodeId(1), NodeId(2)]], &[NodeId(1), NodeId(2)]);
        let retained = change(ChangeMembers::RemoveVoters(set(&[NodeId(3)])), true);
        let dropped = change(ChangeMembers::RemoveVoters(set(&[NodeId(3)])), false);
        assert!(retained.unmet_retain(&base, true, &kept).is_none());
        assert!(retained.unmet_retain(&base, true, &gone).is_some());
        assert!(dropped.unmet_retain(&base, true, &gone).is_none());
        assert!(dropped.unmet_retain(&base, true, &kept).is_some());
        // with other requests in between, only named voters are checked, and only to be gone
        assert!(dropped.unmet_retain(&base, false, &kept).is_some());
        assert!(retained.unmet_retain(&base, false, &gone).is_none());
        let replaced = change(ChangeMembers::ReplaceAllVoters(set(&[NodeId(1), NodeId(2)])), false);
        assert!(replaced.unmet_retain(&base, false, &kept).is_none());
        assert!(replaced.unmet_retain(&base, true, &kept).is_some());
    }

    #[test]
    fn a_voter_that_was_no_longer_a_voter_is_not_removed_by_the_request() {
        // an earlier request left 3 as a learner: removing it again without retain is a no-op
        let base = membership(&[&[NodeId(1), NodeId(2)]], &[NodeId(1), NodeId(2), NodeId(3)]);
        let dropped = change(ChangeMembers::RemoveVoters(set(&[NodeId(3)])), false);
        assert!(dropped.unmet_retain(&base, false, &base).is_none());
        assert!(dropped.unmet_retain(&base, true, &base).is_none());
    }

    #[test]
    fn a_commit_must_keep_the_prepared_learners() {
        let joint = StoredMembership {
            log_id: None,
            membership: membership(
                &[&[NodeId(1), NodeId(2), NodeId(3)], &[NodeId(1), NodeId(2)]],
                &[NodeId(1), NodeId(2), NodeId(3)],
            ),
        };
        let keeping = Asked::Commit { joint: joint.clone(), keep: Some(set(&[NodeId(3)])) };
        assert!(keeping
            .unmet_by(&membership(&[&[NodeId(1), NodeId(2)]], &[NodeId(1), NodeId(2), NodeId(3)]))
            .is_none());
        assert!(keeping.unmet_by(&membership(&[&[NodeId(1), NodeId(2)]], &[NodeId(1), NodeId(2)])).is_some());
        let unknown = Asked::Commit { joint, keep: None };
        assert!(unknown.unmet_by(&membership(&[&[NodeId(1), NodeId(2)]], &[NodeId(1), NodeId(2)])).is_none());
    }

    #[test]
    fn proposals_are_attributed_by_what_the_request_would_propose() {
        let prev = membership(&[&[NodeId(1), NodeId(2), NodeId(3)]], &[NodeId(1), NodeId(2), NodeId(3), NodeId(4)]);
        let asked = change(ChangeMembers::AddVoterIds(set(&[NodeId(4)])), false);
        let joint = membership(
            &[&[NodeId(1), NodeId(2), NodeId(3)], &[NodeId(1), NodeId(2), NodeId(3), NodeId(4)]],
            &[NodeId(1), NodeId(2), NodeId(3), NodeId(4)],
        );
        assert!(asked.would_propose(&prev, &joint, false));
        assert!(!asked.would_propose(
            &prev,
            &membership(
                &[&[NodeId(1), NodeId(2), NodeId(3)], &[NodeId(1), NodeId(2)]],
                &[NodeId(1), NodeId(2), NodeId(3), NodeId(4)]
            ),
            false
        ));
        // leaving a joint config is this request's step only after its own joint step
        let left =
            membership(&[&[NodeId(1), NodeId(2), NodeId(3), NodeId(4)]], &[NodeId(1), NodeId(2), NodeId(3), NodeId(4)]);
        assert!(asked.would_propose(&joint, &left, true));
        assert!(!asked.would_propose(&joint, &left, false));
    }

    /// Sim seed 15238: a node change's proposal records the new learner's
    /// incarnation (the leader probed it first); it is still that request's.
    #[test]
    fn a_node_change_is_attributed_whatever_incarnations_the_leader_recorded() {
        let prev = membership(&[&[NodeId(1), NodeId(2)], &[NodeId(1), NodeId(2)]], &[NodeId(1), NodeId(2)]);
        let add = change(ChangeMembers::AddNodes([(NodeId(3), BasicNode::new("n3"))].into()), true);
        let next = membership(&[&[NodeId(1), NodeId(2)], &[NodeId(1), NodeId(2)]], &[NodeId(1), NodeId(2), NodeId(3)])
            .with_incarnations([(NodeId(3), 33)].into());
        assert!(add.would_propose(&prev, &next, false));
    }

    /// Sim seed 15238 again: a voter change never adds a node its goal does
    /// not name, so the entry adding learner 3 to the joint `[{1,2},{1,2}]`
    /// is not a step of `ReplaceAllVoters({1,2})`, though its configs fit.
    #[test]
    fn a_voter_change_is_not_attributed_an_entry_adding_another_node() {
        let prev = membership(&[&[NodeId(1), NodeId(2)], &[NodeId(1), NodeId(2)]], &[NodeId(1), NodeId(2)]);
        let replace = change(ChangeMembers::ReplaceAllVoters(set(&[NodeId(1), NodeId(2)])), true);
        assert!(!replace.would_propose(
            &prev,
            &membership(&[&[NodeId(1), NodeId(2)], &[NodeId(1), NodeId(2)]], &[NodeId(1), NodeId(2), NodeId(3)]),
            false
        ));
        assert!(replace.would_propose(
            &prev,
            &membership(&[&[NodeId(1), NodeId(2)], &[NodeId(1), NodeId(2)]], &[NodeId(1), NodeId(2)]),
            false
        ));
    }
}
