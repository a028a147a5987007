//! A change with a change id takes effect at most once.
//!
//! The id travels in the membership entries the change proposes: its first
//! entry (the target, a joint step toward it, or, for a change that found
//! nothing to do, the membership in force written again), and the exit or
//! revert of its joint step, which copies the id. So in the committed log's
//! sequence of membership entries, the entries tagged with one id form one
//! contiguous run belonging to one change: a single entry, or a joint entry
//! followed by the uniform one that leaves it. A retry (same id, any node,
//! any time later) must be answered from that run and propose nothing; an id
//! that shows up again after another change's entry was planned twice.
//!
//! Entries that only record incarnations (the configs, nodes and exit of the
//! entry before, no id; the leader writes them on its own) are skipped: they
//! belong to no change.

use std::collections::{BTreeMap, HashMap};

use ferraft::{BasicNode, LogId, Membership};

use super::{Check, CommittedNeverLost, Violation};

const RULE: &str = "change id at most once";

type SimMembership = Membership<BasicNode>;

/// Committed membership entries, by change id.
pub type Runs = BTreeMap<String, Vec<(LogId, SimMembership)>>;

/// Every membership entry appended anywhere, to read the committed ones back in log order.
#[derive(Debug, Default)]
pub struct ChangeIdOnce {
    memberships: HashMap<LogId, SimMembership>,
}

impl ChangeIdOnce {
    /// A membership entry was appended (by a leader or a follower).
    pub fn observe_append(&mut self, log_id: LogId, membership: &SimMembership) {
        self.memberships.entry(log_id).or_insert_with(|| membership.clone());
    }

    /// The committed membership entries, in log order, incarnation records left out.
    fn committed(&self, chain: &CommittedNeverLost) -> Vec<(LogId, &SimMembership)> {
        let mut committed: Vec<(LogId, &SimMembership)> =
            self.memberships.iter().filter(|(id, _)| chain.holds(**id)).map(|(id, m)| (*id, m)).collect();
        committed.sort_by_key(|(id, _)| id.index);
        let mut kept: Vec<(LogId, &SimMembership)> = Vec::with_capacity(committed.len());
        for (id, m) in committed {
            let record = kept.last().is_some_and(|(_, prev)| {
                m.change_id().is_none()
                    && m.configs() == prev.configs()
                    && m.nodes() == prev.nodes()
                    && m.exit() == prev.exit()
            });
            if !record {
                kept.push((id, m));
            }
        }
        kept
    }

    /// The committed entries tagged with each change id, in log order.
    pub fn runs(&self, chain: &CommittedNeverLost) -> Runs {
        let mut runs = Runs::new();
        for (log_id, m) in self.committed(chain) {
            if let Some(id) = m.change_id() {
                runs.entry(id.to_string()).or_default().push((log_id, m.clone()));
            }
        }
        runs
    }

    /// Each id's committed entries are one contiguous run of one change.
    pub fn check(&self, chain: &CommittedNeverLost) -> Check {
        let committed = self.committed(chain);
        // id -> (position of its first entry, position of its last entry)
        let mut seen: HashMap<&str, (usize, usize)> = HashMap::new();
        for (position, (log_id, m)) in committed.iter().enumerate() {
            let Some(id) = m.change_id() else { continue };
            let Some((first, last)) = seen.get_mut(id) else {
                seen.insert(id, (position, position));
                continue;
            };
            let fail = |why: String| {
                let shown: Vec<String> =
                    committed[*first..=position].iter().map(|(l, m)| format!("{l}: {m}")).collect();
                Err(Violation {
                    rule: RULE,
                    detail: format!(
                        "change id {id:?}: {why}; committed memberships from its first entry: [{}]",
                        shown.join(", ")
                    ),
                })
            };
            if *last + 1 != position {
                let (between, other) = &committed[*last + 1];
                return fail(format!(
                    "entry {log_id} carries it again after another change's entry {between} ({other})"
                ));
            }
            let (first_id, first_m) = &committed[*first];
            if position - *first >= 2 || !first_m.is_joint() || m.is_joint() {
                return fail(format!(
                    "entry {log_id} carries it after {first_id}, which is not a joint step this entry leaves"
                ));
            }
            *last = position;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use ferraft::{NodeId, Term};

    use super::*;
    use crate::invariants::test_log_id as id;

    fn membership(configs: &[&[u64]], change_id: Option<&str>) -> SimMembership {
        let nodes: BTreeMap<NodeId, BasicNode> =
            (1..=4).map(|n| (NodeId(n), BasicNode::new(format!("n{n}")))).collect();
        let configs = configs.iter().map(|c| c.iter().map(|n| NodeId(*n)).collect()).collect();
        Membership::new(configs, nodes).unwrap().with_change_id(change_id.map(str::to_string))
    }

    fn committed(entries: &[(u64, SimMembership)]) -> (ChangeIdOnce, CommittedNeverLost) {
        let mut once = ChangeIdOnce::default();
        let mut chain = CommittedNeverLost::default();
        for index in 1..=entries.last().map_or(0, |(i, _)| *i) {
            chain.observe_commit(NodeId(1), id(1, 1, index), Term(1)).unwrap();
        }
        for (index, m) in entries {
            once.observe_append(id(1, 1, *index), m);
        }
        (once, chain)
    }

    #[test]
    fn a_joint_step_and_its_exit_are_one_change() {
        let (once, chain) = committed(&[
            (1, membership(&[&[1, 2, 3]], None)),
            (3, membership(&[&[1, 2, 3], &[1, 2, 3, 4]], Some("a"))),
            (5, membership(&[&[1, 2, 3], &[1, 2, 3, 4]], None)),
            (6, membership(&[&[1, 2, 3, 4]], Some("a"))),
            (8, membership(&[&[1, 2, 3, 4]], Some("b"))),
        ]);
        assert!(once.check(&chain).is_ok());
        assert_eq!(once.runs(&chain)["a"].len(), 2);
    }

    #[test]
    fn an_id_planned_again_after_another_change_is_caught() {
        let (once, chain) = committed(&[
            (1, membership(&[&[1, 2, 3]], Some("a"))),
            (2, membership(&[&[1, 2]], Some("b"))),
            (3, membership(&[&[1, 2]], Some("a"))),
        ]);
        let error = once.check(&chain).unwrap_err();
        assert!(error.detail.contains("again after another change"), "{error}");
    }

    #[test]
    fn two_uniform_entries_under_one_id_are_caught() {
        let (once, chain) =
            committed(&[(1, membership(&[&[1, 2, 3]], Some("a"))), (2, membership(&[&[1, 2]], Some("a")))]);
        assert!(once.check(&chain).is_err());
    }
}
