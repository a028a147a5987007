//! Leader identity, in both leader-id modes.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::node::{NodeId, Term};

/// Which candidates may win within one term.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum LeaderIdMode {
    /// At most one leader per term: a node grants one vote per term (classic Raft).
    #[default]
    Standard,
    /// Leader ids are totally ordered by `(term, node_id)`: within one term a
    /// candidate with a greater node id may still win, so split votes resolve
    /// without waiting for a new term.
    Advanced,
}

/// The identity of a (would-be) leader: the term it was elected in and its node id.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LeaderId {
    /// The election term.
    pub term: Term,
    /// The node that campaigned.
    pub node_id: NodeId,
}

impl LeaderId {
    /// The leader id of `node_id` campaigning in `term`.
    pub fn new(term: Term, node_id: NodeId) -> Self {
        Self { term, node_id }
    }

    /// Orders leader ids as the given mode does.
    ///
    /// In standard mode two different candidates of one term are incomparable
    /// (`None`): neither may replace the other's granted vote.
    pub fn compare(&self, other: &LeaderId, mode: LeaderIdMode) -> Option<Ordering> {
        match mode {
            LeaderIdMode::Advanced => Some((self.term, self.node_id).cmp(&(other.term, other.node_id))),
            LeaderIdMode::Standard => match self.term.cmp(&other.term) {
                Ordering::Equal if self.node_id == other.node_id => Some(Ordering::Equal),
                Ordering::Equal => None,
                ord => Some(ord),
            },
        }
    }

    /// Log ids order by term first and leader node second, in both modes: in
    /// standard mode two leaders never share a term, so the node id never decides.
    pub fn log_order(&self, other: &LeaderId) -> Ordering {
        (self.term, self.node_id).cmp(&(other.term, other.node_id))
    }
}

impl fmt::Display for LeaderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "T{}-N{}", self.term, self.node_id)
    }
}
