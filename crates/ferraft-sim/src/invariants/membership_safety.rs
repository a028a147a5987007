//! Membership safety: no two disjoint quorums can both commit.
//!
//! Three checks, from the ground truth up:
//! - a leader commits an entry only when it is durable on the simulated disks
//!   of a quorum of *every* config of its membership (the simulator, not the
//!   engine's bookkeeping, says who holds it);
//! - a leader proposes a membership only after the one in force and an entry of
//!   its own term committed (propose-after-commit, initial-log rules), and the
//!   new one shares a config with the old (old-new-intersect);
//! - the memberships in the committed log form such a chain.

use std::collections::{BTreeMap, BTreeSet};

use ferraft::membership::is_quorum;
use ferraft::{LeaderId, LogId, LogIndex, NodeId};

use super::{Check, Violation};

const RULE: &str = "membership safety";

/// A membership's voter configs.
pub type Configs = Vec<BTreeSet<NodeId>>;

/// The committed membership chain.
#[derive(Debug, Default)]
pub struct MembershipSafety {
    committed: BTreeMap<LogIndex, Configs>,
}

/// Old-new-intersect: `next` keeps one config of `prev` unchanged, so every
/// quorum of `next` meets every quorum of `prev`.
pub fn may_transition(prev: &[BTreeSet<NodeId>], next: &[BTreeSet<NodeId>]) -> bool {
    next.iter().any(|c| prev.contains(c))
}

fn show(configs: &[BTreeSet<NodeId>]) -> String {
    let parts: Vec<String> = configs.iter().map(|c| format!("{c:?}")).collect();
    parts.join("+")
}

impl MembershipSafety {
    /// Leader `node` committed `log_id`; `holders` durably hold it. It must be
    /// a quorum of one of `memberships` (the leader's membership before or
    /// after the engine call in which it committed).
    pub fn observe_leader_commit(
        &self,
        node: NodeId,
        log_id: LogId,
        memberships: &[&[BTreeSet<NodeId>]],
        holders: &BTreeSet<NodeId>,
    ) -> Check {
        if memberships.iter().any(|configs| is_quorum(configs, |id| holders.contains(&id))) {
            return Ok(());
        }
        let configs: Vec<String> = memberships.iter().map(|c| show(c)).collect();
        Err(Violation {
            rule: RULE,
            detail: format!(
                "leader {node} committed {log_id}, durable only on {holders:?}: not a quorum of {}",
                configs.join(" nor ")
            ),
        })
    }

    /// Follower `node` committed `log_id` before any other node (on its
    /// leader's flush notice); `holders` durably hold it. It must be a quorum
    /// of `configs`, those in force at that entry in the follower's log.
    pub fn observe_commit_on_notice(
        &self,
        node: NodeId,
        log_id: LogId,
        configs: &[BTreeSet<NodeId>],
        holders: &BTreeSet<NodeId>,
    ) -> Check {
        if is_quorum(configs, |id| holders.contains(&id)) {
            return Ok(());
        }
        Err(Violation {
            rule: RULE,
            detail: format!(
                "follower {node} committed {log_id} on its leader's flush notice, durable only on {holders:?}: \
                 not a quorum of {}",
                show(configs)
            ),
        })
    }

    /// Leader `leader_id` appended a membership `next` at `index`, with `prev`
    /// in force before it (at `prev_index`), `last_committed` the configs of
    /// the last committed membership, and `committed` its commit point.
    ///
    /// The one exception to propose-after-commit: reverting an uncommitted
    /// joint `[a, b]` to `[a]` when `[a]` is the last committed membership
    /// (every membership in use then contains `a`).
    pub fn observe_proposal(
        &self,
        leader_id: LeaderId,
        index: LogIndex,
        next: &[BTreeSet<NodeId>],
        prev: (LogIndex, &[BTreeSet<NodeId>]),
        last_committed: Option<&[BTreeSet<NodeId>]>,
        committed: Option<LogId>,
    ) -> Check {
        let fail = |detail: String| Err(Violation { rule: RULE, detail });
        let (prev_index, prev) = prev;
        let committed_index = committed.map_or(LogIndex(0), |c| c.index);
        let reverts_uncommitted_joint =
            prev.len() == 2 && next == &prev[..1] && last_committed.is_some_and(|c| c == &prev[..1]);
        if prev_index > committed_index && !reverts_uncommitted_joint {
            return fail(format!(
                "leader {leader_id} proposed {} at {index} before the membership at {prev_index} committed \
                 (committed {committed_index})",
                show(next)
            ));
        }
        if committed.map(|c| c.leader_id) != Some(leader_id) {
            return fail(format!(
                "leader {leader_id} proposed {} at {index} before committing an entry of its own term",
                show(next)
            ));
        }
        if !may_transition(prev, next) {
            return fail(format!(
                "leader {leader_id} proposed {} at {index} after {}: no config in common",
                show(next),
                show(prev)
            ));
        }
        Ok(())
    }

    /// How many committed membership entries were seen.
    pub fn committed_count(&self) -> usize {
        self.committed.len()
    }

    /// The membership `configs` at `index` is committed.
    pub fn observe_committed(&mut self, index: LogIndex, configs: &[BTreeSet<NodeId>]) -> Check {
        if self.committed.contains_key(&index) {
            return Ok(());
        }
        let fail = |a: LogIndex, b: LogIndex| {
            Err(Violation { rule: RULE, detail: format!("committed memberships at {a} and {b} share no config") })
        };
        if let Some((prev_index, prev)) = self.committed.range(..index).next_back() {
            if !may_transition(prev, configs) {
                return fail(*prev_index, index);
            }
        }
        if let Some((next_index, next)) = self.committed.range(index + 1..).next() {
            if !may_transition(configs, next) {
                return fail(index, *next_index);
            }
        }
        self.committed.insert(index, configs.to_vec());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferraft::Term;

    fn set(ids: &[NodeId]) -> BTreeSet<NodeId> {
        ids.iter().copied().collect()
    }

    use crate::invariants::test_log_id as id;

    #[test]
    fn committing_with_a_majority_of_one_joint_config_only_is_caught() {
        let check = MembershipSafety::default();
        let joint = [set(&[NodeId(1), NodeId(2), NodeId(3)]), set(&[NodeId(3), NodeId(4), NodeId(5)])];
        check
            .observe_leader_commit(NodeId(1), id(1, 1, 5), &[&joint], &set(&[NodeId(1), NodeId(3), NodeId(4)]))
            .unwrap();
        assert!(check
            .observe_leader_commit(NodeId(1), id(1, 1, 5), &[&joint], &set(&[NodeId(1), NodeId(2), NodeId(3)]))
            .is_err());
    }

    #[test]
    fn proposing_before_the_previous_membership_commits_is_caught() {
        let check = MembershipSafety::default();
        let old = [set(&[NodeId(1), NodeId(2), NodeId(3)])];
        let joint = [set(&[NodeId(1), NodeId(2), NodeId(3)]), set(&[NodeId(1), NodeId(2), NodeId(4)])];
        let leader = LeaderId::new(Term(2), NodeId(1));
        check.observe_proposal(leader, LogIndex(6), &joint, (LogIndex(4), &old), None, Some(id(2, 1, 5))).unwrap();
        assert!(check
            .observe_proposal(leader, LogIndex(6), &joint, (LogIndex(4), &old), None, Some(id(2, 1, 3)))
            .is_err());
    }

    #[test]
    fn only_the_revert_of_an_uncommitted_joint_to_the_committed_config_may_skip_its_commit() {
        let check = MembershipSafety::default();
        let old = [set(&[NodeId(1), NodeId(2), NodeId(3)])];
        let joint = [set(&[NodeId(1), NodeId(2), NodeId(3)]), set(&[NodeId(1), NodeId(4), NodeId(5)])];
        let leader = LeaderId::new(Term(2), NodeId(1));
        // the joint entry at 6 is uncommitted (commit point 5), [old] is the last committed
        check
            .observe_proposal(leader, LogIndex(7), &old, (LogIndex(6), &joint), Some(&old), Some(id(2, 1, 5)))
            .unwrap();
        let other = [set(&[NodeId(1), NodeId(4), NodeId(5)])];
        assert!(check
            .observe_proposal(leader, LogIndex(7), &other, (LogIndex(6), &joint), Some(&old), Some(id(2, 1, 5)))
            .is_err());
        let elsewhere = [set(&[NodeId(1), NodeId(2)])];
        assert!(check
            .observe_proposal(leader, LogIndex(7), &old, (LogIndex(6), &joint), Some(&elsewhere), Some(id(2, 1, 5)))
            .is_err());
    }

    #[test]
    fn proposing_before_an_own_term_commit_is_caught() {
        let check = MembershipSafety::default();
        let old = [set(&[NodeId(1), NodeId(2), NodeId(3)])];
        let joint = [set(&[NodeId(1), NodeId(2), NodeId(3)]), set(&[NodeId(1), NodeId(2), NodeId(4)])];
        assert!(check
            .observe_proposal(
                LeaderId::new(Term(2), NodeId(1)),
                LogIndex(6),
                &joint,
                (LogIndex(4), &old),
                None,
                Some(id(1, 2, 5))
            )
            .is_err());
    }

    #[test]
    fn skipping_the_joint_step_is_caught() {
        let check = MembershipSafety::default();
        let old = [set(&[NodeId(1), NodeId(2), NodeId(3)])];
        let new = [set(&[NodeId(3), NodeId(4), NodeId(5)])];
        let leader = LeaderId::new(Term(2), NodeId(1));
        assert!(check
            .observe_proposal(leader, LogIndex(6), &new, (LogIndex(4), &old), None, Some(id(2, 1, 5)))
            .is_err());
        let mut chain = MembershipSafety::default();
        chain.observe_committed(LogIndex(1), &old).unwrap();
        assert!(chain.observe_committed(LogIndex(6), &new).is_err());
    }
}
