//! Log matching: two logs holding the same log id hold the same entries up to it,
//! and leader ids never decrease along a log.
//!
//! Checked incrementally: every appended entry is recorded with its payload
//! fingerprint and the log id just before it. If every node that holds log id
//! `x` agrees on `x`'s payload and predecessor, then by induction on the index
//! any two logs sharing `x` are identical up to `x`, at O(1) cost per append.

use std::collections::HashMap;

use ferraft::{LogId, LogIndex, NodeId};

use super::{Check, Violation};

const RULE: &str = "log matching";

#[derive(Debug, Clone, Copy)]
struct Seen {
    node: NodeId,
    fingerprint: u64,
    prev: Option<Option<LogId>>,
}

/// Records each log id's payload and predecessor.
#[derive(Debug, Default)]
pub struct LogMatching {
    seen: HashMap<LogId, Seen>,
}

impl LogMatching {
    /// `node` appended `log_id` with payload `fingerprint` right after `prev`
    /// (`None` when the predecessor is unknown, e.g. purged).
    pub fn observe_append(
        &mut self,
        node: NodeId,
        log_id: LogId,
        fingerprint: u64,
        prev: Option<Option<LogId>>,
    ) -> Check {
        let prev = if log_id.index == LogIndex(1) { Some(None) } else { prev };
        if let Some(Some(p)) = prev {
            if p.index + 1 != log_id.index {
                return Err(Violation {
                    rule: RULE,
                    detail: format!("node {node} appended {log_id} right after {p}: the log has a gap"),
                });
            }
            // leaders only append after entries of older (or their own) leader ids
            if p.leader_id.log_order(&log_id.leader_id) == std::cmp::Ordering::Greater {
                return Err(Violation {
                    rule: RULE,
                    detail: format!("node {node} appended {log_id} after {p}, of a newer leader"),
                });
            }
        }
        let seen = self.seen.entry(log_id).or_insert(Seen { node, fingerprint, prev });
        if seen.fingerprint != fingerprint {
            return Err(Violation {
                rule: RULE,
                detail: format!("nodes {} and {node} hold different entries under log id {log_id}", seen.node),
            });
        }
        match (seen.prev, prev) {
            (Some(a), Some(b)) if a != b => Err(Violation {
                rule: RULE,
                detail: format!(
                    "nodes {} and {node} both hold {log_id} but differ before it: {} vs {}",
                    seen.node,
                    show(a),
                    show(b)
                ),
            }),
            (None, Some(_)) => {
                seen.prev = prev;
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

fn show(log_id: Option<LogId>) -> String {
    log_id.map_or("nothing".to_string(), |l| l.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invariants::test_log_id as id;

    #[test]
    fn same_log_id_with_other_payload_is_caught() {
        let mut check = LogMatching::default();
        check.observe_append(NodeId(1), id(1, 1, 1), 10, None).unwrap();
        check.observe_append(NodeId(2), id(1, 1, 1), 10, None).unwrap();
        assert!(check.observe_append(NodeId(3), id(1, 1, 1), 11, None).is_err());
    }

    #[test]
    fn same_log_id_after_different_entries_is_caught() {
        let mut check = LogMatching::default();
        check.observe_append(NodeId(1), id(2, 1, 3), 7, Some(Some(id(1, 1, 2)))).unwrap();
        check.observe_append(NodeId(2), id(2, 1, 3), 7, None).unwrap();
        assert!(check.observe_append(NodeId(2), id(2, 1, 3), 7, Some(Some(id(2, 2, 2)))).is_err());
    }

    #[test]
    fn an_entry_of_an_older_leader_after_a_newer_one_is_caught() {
        let mut check = LogMatching::default();
        assert!(check.observe_append(NodeId(1), id(4, 3, 6), 7, Some(Some(id(5, 3, 5)))).is_err());
    }

    #[test]
    fn a_gap_is_caught() {
        let mut check = LogMatching::default();
        assert!(check.observe_append(NodeId(1), id(2, 1, 5), 7, Some(Some(id(1, 1, 3)))).is_err());
    }
}
