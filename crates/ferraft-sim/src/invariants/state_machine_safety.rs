//! State machine safety: no two nodes apply different entries at one index,
//! every node applies indexes in order without gaps, and two snapshots of one
//! index hold the same state.

use std::collections::HashMap;

use ferraft::{LogId, LogIndex, NodeId};

use super::{Check, Violation};

const RULE: &str = "state machine safety";

/// What was applied where.
#[derive(Debug, Default)]
pub struct StateMachineSafety {
    applied: HashMap<LogIndex, (LogId, u64, NodeId)>,
    states: HashMap<LogIndex, (u64, NodeId)>,
    last_applied: HashMap<NodeId, LogIndex>,
}

impl StateMachineSafety {
    /// `node` applied the entry `log_id` with payload `fingerprint`.
    pub fn observe_apply(&mut self, node: NodeId, log_id: LogId, fingerprint: u64) -> Check {
        let last = self.last_applied.entry(node).or_insert(LogIndex(0));
        if log_id.index != *last + 1 {
            return Err(Violation {
                rule: RULE,
                detail: format!("node {node} applied {log_id} right after index {last}"),
            });
        }
        *last = log_id.index;
        let (first_id, first_fp, first_node) = *self.applied.entry(log_id.index).or_insert((log_id, fingerprint, node));
        if first_id != log_id || first_fp != fingerprint {
            return Err(Violation {
                rule: RULE,
                detail: format!("node {first_node} applied {first_id} but node {node} applied {log_id} at one index"),
            });
        }
        Ok(())
    }

    /// `node` saved a snapshot of its state after `index`, with `digest`
    /// (built while it applied on: its applied index stays where it is).
    pub fn observe_snapshot(&mut self, node: NodeId, index: LogIndex, digest: u64) -> Check {
        let (first, first_node) = *self.states.entry(index).or_insert((digest, node));
        if first != digest {
            return Err(Violation {
                rule: RULE,
                detail: format!("nodes {first_node} and {node} hold different states after index {index}"),
            });
        }
        Ok(())
    }

    /// `node` holds a state machine whose state after `index` has `digest`
    /// (a snapshot was built or installed, or a restart restored one).
    pub fn observe_state(&mut self, node: NodeId, index: LogIndex, digest: u64) -> Check {
        self.last_applied.insert(node, index);
        self.observe_snapshot(node, index, digest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invariants::test_log_id as id;

    #[test]
    fn applying_different_entries_at_one_index_is_caught() {
        let mut check = StateMachineSafety::default();
        check.observe_apply(NodeId(1), id(1, 1, 1), 5).unwrap();
        check.observe_apply(NodeId(2), id(1, 1, 1), 5).unwrap();
        assert!(check.observe_apply(NodeId(3), id(2, 3, 1), 6).is_err());
    }

    #[test]
    fn skipping_an_index_is_caught() {
        let mut check = StateMachineSafety::default();
        check.observe_apply(NodeId(1), id(1, 1, 1), 5).unwrap();
        assert!(check.observe_apply(NodeId(1), id(1, 1, 3), 6).is_err());
    }

    #[test]
    fn diverging_snapshots_are_caught() {
        let mut check = StateMachineSafety::default();
        check.observe_state(NodeId(1), LogIndex(10), 99).unwrap();
        check.observe_apply(NodeId(1), id(1, 1, 11), 5).unwrap();
        assert!(check.observe_state(NodeId(2), LogIndex(10), 98).is_err());
    }
}
