//! Which life of a node's data a message comes from.
//!
//! A node id names a seat in the membership, not the data behind it: a voter
//! whose disk was wiped (or whose machine was replaced) comes back under the
//! same id with an empty log. Counted as its old self it would grant votes
//! and acknowledge entries it no longer holds, and a leader lacking a
//! committed entry could be elected. An incarnation id, random per data dir
//! and written on first start, tells the two lives apart: membership records
//! each member's incarnation, and a message from another one is not counted.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One life of a node's data dir. Chosen at random when the store is first
/// created, kept for as long as its data is. Never 0: on the wire and in
/// membership records, 0 stands for "not known".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Incarnation(u64);

crate::nonzero_id::nonzero_id!(Incarnation, "\"not known\"");

/// Whether a message from (or for) incarnation `seen` may stand for the
/// recorded one: either being unknown (0) proves nothing, so it may.
pub fn incarnations_agree(recorded: u64, seen: u64) -> bool {
    recorded == 0 || seen == 0 || recorded == seen
}

/// Sixteen hex digits, like cluster ids.
impl fmt::Display for Incarnation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_is_no_incarnation() {
        assert_eq!(Incarnation::new(0), None);
        assert_eq!(Incarnation::wire(None), 0);
        assert_eq!(Incarnation::new(5).map(Incarnation::get), Some(5));
    }

    #[test]
    fn only_two_known_and_different_incarnations_disagree() {
        assert!(incarnations_agree(0, 9));
        assert!(incarnations_agree(9, 0));
        assert!(incarnations_agree(9, 9));
        assert!(!incarnations_agree(9, 10));
    }

    #[test]
    fn random_incarnations_differ() {
        assert_ne!(Incarnation::random(), Incarnation::random());
    }
}
