//! Election safety: at most one leader per term (standard leader-id mode), and
//! in either mode one leader id is only ever held by one incarnation of a node.
//!
//! The second half matters because the engine re-campaigns after a restart
//! instead of reusing its old leader id: if it ever came back as leader under
//! the same id, entries it proposed before the crash (and lost locally) could
//! be proposed again at the same indexes, breaking log matching.

use std::collections::HashMap;

use ferraft::{LeaderId, LeaderIdMode, NodeId, Term};

use super::{Check, Violation};

const RULE: &str = "election safety";

/// Records every leader seen.
#[derive(Debug, Default)]
pub struct ElectionSafety {
    mode: LeaderIdMode,
    by_term: HashMap<Term, NodeId>,
    by_leader_id: HashMap<LeaderId, u64>,
}

impl ElectionSafety {
    /// A checker for the given leader-id mode.
    pub fn new(mode: LeaderIdMode) -> Self {
        Self { mode, ..Self::default() }
    }

    /// `node` (in its `incarnation`-th life) acts as leader under `leader_id`.
    pub fn observe_leader(&mut self, node: NodeId, incarnation: u64, leader_id: LeaderId) -> Check {
        let fail = |detail: String| Err(Violation { rule: RULE, detail });
        if leader_id.node_id != node {
            return fail(format!("node {node} leads under another node's leader id {leader_id}"));
        }
        if self.mode == LeaderIdMode::Standard {
            let first = *self.by_term.entry(leader_id.term).or_insert(node);
            if first != node {
                return fail(format!("nodes {first} and {node} were both leader in term {}", leader_id.term));
            }
        }
        let first = *self.by_leader_id.entry(leader_id).or_insert(incarnation);
        if first != incarnation {
            return fail(format!(
                "node {node} led as {leader_id} before a restart (incarnation {first}) and again after it ({incarnation})"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_leaders_in_one_term_are_caught_in_standard_mode() {
        let mut check = ElectionSafety::new(LeaderIdMode::Standard);
        check.observe_leader(NodeId(1), 0, LeaderId::new(Term(3), NodeId(1))).unwrap();
        check.observe_leader(NodeId(1), 0, LeaderId::new(Term(3), NodeId(1))).unwrap();
        assert!(check.observe_leader(NodeId(2), 0, LeaderId::new(Term(3), NodeId(2))).is_err());
    }

    #[test]
    fn advanced_mode_allows_ordered_leaders_within_a_term() {
        let mut check = ElectionSafety::new(LeaderIdMode::Advanced);
        check.observe_leader(NodeId(1), 0, LeaderId::new(Term(3), NodeId(1))).unwrap();
        check.observe_leader(NodeId(2), 0, LeaderId::new(Term(3), NodeId(2))).unwrap();
    }

    #[test]
    fn reusing_a_leader_id_after_restart_is_caught() {
        let mut check = ElectionSafety::new(LeaderIdMode::Advanced);
        check.observe_leader(NodeId(1), 0, LeaderId::new(Term(3), NodeId(1))).unwrap();
        assert!(check.observe_leader(NodeId(1), 1, LeaderId::new(Term(3), NodeId(1))).is_err());
    }

    #[test]
    fn leading_under_a_foreign_leader_id_is_caught() {
        let mut check = ElectionSafety::new(LeaderIdMode::Standard);
        assert!(check.observe_leader(NodeId(1), 0, LeaderId::new(Term(3), NodeId(2))).is_err());
    }
}
