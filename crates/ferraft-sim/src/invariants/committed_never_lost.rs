//! Committed entries are never lost: once an entry is committed at an index, no
//! node ever commits another entry there, no leader of its term or a later one
//! makes a node truncate it away, and the cluster's final leader still holds it.
//!
//! This is the global "committed chain": for each index, the log id committed
//! there and the lowest term in which a node was seen knowing it committed
//! (leader completeness needs that term).

use std::collections::BTreeMap;

use ferraft::{LogId, LogIndex, NodeId, Term};

use super::{Check, LogView, Violation};

const RULE: &str = "committed entries never lost";

/// The committed chain.
#[derive(Debug, Default)]
pub struct CommittedNeverLost {
    chain: BTreeMap<LogIndex, (LogId, Term)>,
}

impl CommittedNeverLost {
    /// `node`, holding a vote of `term`, considers `log_id` committed.
    pub fn observe_commit(&mut self, node: NodeId, log_id: LogId, term: Term) -> Check {
        let (known, known_term) = self.chain.entry(log_id.index).or_insert((log_id, term));
        if *known != log_id {
            return Err(Violation {
                rule: RULE,
                detail: format!("node {node} committed {log_id}, but {known} was committed at that index"),
            });
        }
        *known_term = (*known_term).min(term);
        Ok(())
    }

    /// `node` deleted these entries from its log (a conflict truncation) on
    /// the word of a leader of `term`.
    ///
    /// A leader of a term older than the one an entry was known committed in
    /// may still do that, as leader completeness allows it to lack the entry
    /// (Raft §5.4 binds later terms only): its append reaches a node that
    /// never counted toward the commit (one that did holds a newer vote and
    /// refuses it), the node never knew the entry committed, and the stale
    /// leader commits nothing. Sim seed 9927 of the wiped-disk runs: a leader
    /// of term 2, cut off with check-quorum off, overwrote entry 138 on a
    /// learner still in term 1 after the leader of term 4 had committed it.
    /// A node's committed prefix is checked by `check_log`.
    pub fn observe_truncate(&mut self, node: NodeId, term: Term, removed: impl IntoIterator<Item = LogId>) -> Check {
        for log_id in removed {
            if self.chain.get(&log_id.index).is_some_and(|(known, known_term)| *known == log_id && term >= *known_term)
            {
                return Err(Violation {
                    rule: RULE,
                    detail: format!("node {node} truncated committed entry {log_id}"),
                });
            }
        }
        Ok(())
    }

    /// `node`'s log must hold every committed entry it still has in memory.
    pub fn check_log(&self, node: NodeId, log: &(impl LogView + ?Sized), upto: LogIndex) -> Check {
        let first = log.first_known_index();
        if upto < first {
            return Ok(());
        }
        for (index, (log_id, _)) in self.chain.range(first..=upto) {
            if log.log_id_at(*index) != Some(*log_id) {
                let found = log.log_id_at(*index).map_or("nothing".to_string(), |l| l.to_string());
                return Err(Violation {
                    rule: RULE,
                    detail: format!("node {node} holds {found} at index {index}, where {log_id} was committed"),
                });
            }
        }
        Ok(())
    }

    /// Whether `log_id` is known committed.
    pub fn holds(&self, log_id: LogId) -> bool {
        self.chain.get(&log_id.index).is_some_and(|(known, _)| *known == log_id)
    }

    /// The greatest committed index seen.
    pub fn last_index(&self) -> LogIndex {
        self.chain.keys().next_back().copied().unwrap_or(LogIndex(0))
    }

    /// Committed entries from `from` on: (index, log id, lowest term known committed).
    pub fn entries_from(&self, from: LogIndex) -> impl Iterator<Item = (LogIndex, LogId, Term)> + '_ {
        self.chain.range(from..).map(|(i, (l, t))| (*i, *l, *t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invariants::test_log_id as id;

    #[test]
    fn committing_another_entry_at_a_committed_index_is_caught() {
        let mut check = CommittedNeverLost::default();
        check.observe_commit(NodeId(1), id(1, 1, 4), Term(1)).unwrap();
        check.observe_commit(NodeId(2), id(1, 1, 4), Term(2)).unwrap();
        assert!(check.observe_commit(NodeId(3), id(2, 3, 4), Term(2)).is_err());
    }

    #[test]
    fn truncating_a_committed_entry_is_caught() {
        let mut check = CommittedNeverLost::default();
        check.observe_commit(NodeId(1), id(1, 1, 4), Term(1)).unwrap();
        check.observe_truncate(NodeId(2), Term(2), [id(1, 2, 4)]).unwrap();
        assert!(check.observe_truncate(NodeId(2), Term(2), [id(1, 1, 4)]).is_err());
        assert!(check.observe_truncate(NodeId(2), Term(1), [id(1, 1, 4)]).is_err(), "by a leader of its own term");
    }

    #[test]
    fn a_leader_of_an_older_term_than_the_commit_may_truncate_on_a_node_it_reaches() {
        let mut check = CommittedNeverLost::default();
        check.observe_commit(NodeId(3), id(1, 3, 138), Term(4)).unwrap();
        check.observe_truncate(NodeId(5), Term(2), [id(1, 3, 138)]).unwrap();
        assert!(check.observe_truncate(NodeId(5), Term(4), [id(1, 3, 138)]).is_err());
    }

    #[test]
    fn a_log_missing_a_committed_entry_is_caught() {
        let mut check = CommittedNeverLost::default();
        check.observe_commit(NodeId(1), id(1, 1, 1), Term(1)).unwrap();
        check.observe_commit(NodeId(1), id(1, 1, 2), Term(1)).unwrap();
        let good = [id(1, 1, 1), id(1, 1, 2), id(2, 2, 3)];
        check.check_log(NodeId(2), &good[..], LogIndex(3)).unwrap();
        let bad = [id(1, 1, 1), id(2, 2, 2)];
        assert!(check.check_log(NodeId(2), &bad[..], LogIndex(2)).is_err());
    }
}
