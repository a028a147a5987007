//! The three numbers Raft is full of, as types that cannot be mixed up.
//!
//! A node id, a term and a log index are each a `u64` on the wire and on disk
//! (`#[serde(transparent)]`: the bytes are the plain number's), and each prints
//! as the plain number. In code they are distinct: none converts into another,
//! and each has only the arithmetic Raft does with it.
//!
//! ```compile_fail
//! use ferraft::{LogIndex, Term};
//!
//! fn truncate_after(index: LogIndex) -> LogIndex {
//!     index
//! }
//! truncate_after(Term(3)); // a term is not a position in the log
//! ```

use std::fmt;
use std::ops::{Add, AddAssign, Sub};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Declares a newtype over `u64` that serializes, parses and prints as the
/// plain number, so that logs, error texts and stored data read as before.
macro_rules! plain_number {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub u64);

        impl From<u64> for $name {
            fn from(raw: u64) -> Self {
                Self(raw)
            }
        }

        impl FromStr for $name {
            type Err = std::num::ParseIntError;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                text.parse().map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        /// The plain number, as `Display`: ids in `{:?}` output read as before.
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    };
}

plain_number! {
    /// A node's id, unique within a cluster and never reused for another machine's data.
    NodeId
}

plain_number! {
    /// A Raft term.
    Term
}

plain_number! {
    /// A position in the replicated log; index 0 is "before the first entry".
    LogIndex
}

impl Term {
    /// The term after this one: what a new election campaigns in.
    pub fn next(self) -> Self {
        Self(self.0 + 1)
    }
}

impl LogIndex {
    /// The position after this one.
    pub fn next(self) -> Self {
        Self(self.0 + 1)
    }

    /// The position before this one. Index 0 has none: asking is a bug, caught
    /// like a `u64` underflow (a panic in debug builds).
    pub fn prev(self) -> Self {
        Self(self.0 - 1)
    }

    /// The position after this one, or this one at the end of the number range.
    pub fn saturating_next(self) -> Self {
        Self(self.0.saturating_add(1))
    }

    /// The position before this one, or 0 when this is 0.
    pub fn saturating_prev(self) -> Self {
        Self(self.0.saturating_sub(1))
    }

    /// The position before this one; `None` for 0.
    pub fn checked_prev(self) -> Option<Self> {
        self.0.checked_sub(1).map(Self)
    }

    /// How many entries lie after `earlier` up to this position; `None`
    /// when `earlier` is after it.
    pub fn checked_sub(self, earlier: LogIndex) -> Option<u64> {
        self.0.checked_sub(earlier.0)
    }

    /// How many entries lie after `earlier` up to this position; 0 when
    /// `earlier` is not before it.
    pub fn saturating_sub(self, earlier: LogIndex) -> u64 {
        self.0.saturating_sub(earlier.0)
    }

    /// The position `count` entries back, or 0 when there are fewer.
    pub fn saturating_back(self, count: u64) -> Self {
        Self(self.0.saturating_sub(count))
    }

    /// Every position from this one to `last`, both included; none when
    /// `last` is before this one.
    pub fn through(self, last: LogIndex) -> impl Iterator<Item = LogIndex> {
        (self.0..=last.0).map(LogIndex)
    }

    /// Every position from this one up to `end`, excluded (ranges of a
    /// newtype cannot be iterated on stable Rust).
    pub fn until(self, end: LogIndex) -> impl Iterator<Item = LogIndex> {
        (self.0..end.0).map(LogIndex)
    }
}

/// The position `count` entries further.
impl Add<u64> for LogIndex {
    type Output = LogIndex;

    fn add(self, count: u64) -> LogIndex {
        LogIndex(self.0 + count)
    }
}

/// Moves the position `count` entries further.
impl AddAssign<u64> for LogIndex {
    fn add_assign(&mut self, count: u64) {
        self.0 += count;
    }
}

/// The position `count` entries back; like `u64` subtraction, going below 0
/// is a bug (a panic in debug builds).
impl Sub<u64> for LogIndex {
    type Output = LogIndex;

    fn sub(self, count: u64) -> LogIndex {
        LogIndex(self.0 - count)
    }
}

/// The number of entries from `earlier` (excluded) to this position
/// (included); `earlier` must not be after it.
impl Sub for LogIndex {
    type Output = u64;

    fn sub(self, earlier: LogIndex) -> u64 {
        self.0 - earlier.0
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn ids_print_as_the_plain_number() {
        assert_eq!(format!("{} {:?} {:>3}", NodeId(5), Term(7), LogIndex(9)), "5 7   9");
        assert_eq!(format!("{:?}", Some(LogIndex(4))), "Some(4)");
    }

    #[test]
    fn ids_encode_as_the_plain_number_in_postcard_and_json() {
        let raw: (u64, u64, u64) = (5, 300, 70_000);
        let typed = (NodeId(5), Term(300), LogIndex(70_000));
        let raw_bytes = postcard::to_allocvec(&raw).unwrap();
        assert_eq!(postcard::to_allocvec(&typed).unwrap(), raw_bytes);
        assert_eq!(postcard::from_bytes::<(NodeId, Term, LogIndex)>(&raw_bytes).unwrap(), typed);
        assert_eq!(serde_json::to_string(&typed).unwrap(), "[5,300,70000]");
        assert_eq!(serde_json::from_str::<(NodeId, Term, LogIndex)>("[5,300,70000]").unwrap(), typed);
    }

    #[test]
    fn node_ids_are_json_map_keys_as_before() {
        let raw: BTreeMap<u64, &str> = [(2, "b"), (10, "a")].into();
        let typed: BTreeMap<NodeId, &str> = [(NodeId(2), "b"), (NodeId(10), "a")].into();
        let json = serde_json::to_string(&raw).unwrap();
        assert_eq!(serde_json::to_string(&typed).unwrap(), json);
        assert_eq!(serde_json::from_str::<BTreeMap<NodeId, &str>>(&json).unwrap(), typed);
    }

    #[test]
    fn index_arithmetic_counts_entries() {
        assert_eq!(LogIndex(4).next(), LogIndex(5));
        assert_eq!(LogIndex(4).prev(), LogIndex(3));
        assert_eq!(LogIndex(0).saturating_prev(), LogIndex(0));
        assert_eq!(LogIndex(u64::MAX).saturating_next(), LogIndex(u64::MAX));
        assert_eq!(LogIndex(0).checked_prev(), None);
        assert_eq!(LogIndex(3).checked_sub(LogIndex(4)), None);
        assert_eq!(LogIndex(4) + 3, LogIndex(7));
        assert_eq!(LogIndex(7) - LogIndex(4), 3);
        assert_eq!(LogIndex(7) - 4, LogIndex(3));
        assert_eq!(LogIndex(4).saturating_sub(LogIndex(7)), 0);
        assert_eq!(LogIndex(4).saturating_back(7), LogIndex(0));
        assert_eq!(Term(2).next(), Term(3));
        assert_eq!(LogIndex(2).through(LogIndex(4)).collect::<Vec<_>>(), [LogIndex(2), LogIndex(3), LogIndex(4)]);
        assert_eq!(LogIndex(2).through(LogIndex(1)).count(), 0);
        assert_eq!(LogIndex(2).until(LogIndex(4)).collect::<Vec<_>>(), [LogIndex(2), LogIndex(3)]);
    }
}
