//! The persisted vote.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::leader_id::{LeaderId, LeaderIdMode};
use crate::node::{NodeId, Term};

/// Whom this node backs, and whether that leader was elected by a quorum.
///
/// The vote is persisted before any message that depends on it leaves the node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    /// The candidate or leader this node backs.
    pub leader_id: LeaderId,
    /// True once a quorum granted it: the holder is (or was) the leader.
    pub committed: bool,
}

impl Vote {
    /// An uncommitted vote for `node_id` in `term`.
    pub fn new(term: Term, node_id: NodeId) -> Self {
        Self { leader_id: LeaderId::new(term, node_id), committed: false }
    }

    /// A vote for an elected leader.
    pub fn new_committed(term: Term, node_id: NodeId) -> Self {
        Self { leader_id: LeaderId::new(term, node_id), committed: true }
    }

    /// The term of this vote.
    pub fn term(&self) -> Term {
        self.leader_id.term
    }

    /// Whether a node holding `self` may switch to `other`.
    ///
    /// A vote only moves forward: to a greater leader id, or from uncommitted to
    /// committed for the same leader. In standard mode two candidates of one term
    /// are incomparable, so a node grants at most one vote per term; but a
    /// candidate of a term follows that term's elected leader.
    pub fn may_advance_to(&self, other: &Vote, mode: LeaderIdMode) -> bool {
        match self.leader_id.compare(&other.leader_id, mode) {
            Some(Ordering::Less) => true,
            Some(Ordering::Equal) => other.committed >= self.committed,
            Some(Ordering::Greater) => false,
            // two candidates of one term (standard mode): a quorum granted the
            // committed one, so the other can no longer win that term
            None => other.committed && !self.committed,
        }
    }
}

impl fmt::Display for Vote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.leader_id, if self.committed { "(C)" } else { "" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_mode_one_vote_per_term_but_a_candidate_follows_the_elected_leader() {
        let mode = LeaderIdMode::Standard;
        let candidate = Vote::new(Term(2), NodeId(1));
        assert!(!candidate.may_advance_to(&Vote::new(Term(2), NodeId(2)), mode));
        assert!(candidate.may_advance_to(&Vote::new_committed(Term(2), NodeId(2)), mode));
        assert!(!Vote::new_committed(Term(2), NodeId(2)).may_advance_to(&candidate, mode));
        assert!(candidate.may_advance_to(&Vote::new(Term(3), NodeId(2)), mode));
    }

    #[test]
    fn advanced_mode_orders_leader_ids_within_a_term() {
        let mode = LeaderIdMode::Advanced;
        assert!(Vote::new(Term(2), NodeId(1)).may_advance_to(&Vote::new(Term(2), NodeId(2)), mode));
        assert!(!Vote::new(Term(2), NodeId(2)).may_advance_to(&Vote::new(Term(2), NodeId(1)), mode));
    }
}
