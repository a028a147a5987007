//! Which cluster a node belongs to.
//!
//! Node ids are small numbers that every cluster reuses: node 1 of one cluster
//! and node 1 of another are easy to confuse (a stale address, a data dir
//! copied to the wrong host, a node initialized on its own and then added
//! elsewhere). A cluster id, random per cluster and carried by every message,
//! makes such a mix-up a refused connection instead of one cluster's leader
//! overwriting the other's log.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Identifies one cluster. Chosen at random when the cluster is initialized
/// (or given by the operator), persisted by every member with its vote, and
/// carried in every message envelope. Never 0: on the wire, 0 stands for "no
/// cluster yet" (a node not initialized nor reached by a leader).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ClusterId(u64);

/// Why a text is not a cluster id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a cluster id: expected 1 to 16 hex digits, not all zero")]
pub struct ParseClusterIdError {
    text: String,
}

crate::nonzero_id::nonzero_id!(ClusterId, "\"no cluster\" on the wire");

/// Sixteen hex digits: the form status pages and the CLI use.
impl fmt::Display for ClusterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// Hex digits, with or without a leading `0x`.
impl FromStr for ClusterId {
    type Err = ParseClusterIdError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = || ParseClusterIdError { text: text.to_owned() };
        let digits = text.strip_prefix("0x").unwrap_or(text);
        if digits.is_empty() || digits.len() > 16 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(error());
        }
        u64::from_str_radix(digits, 16).ok().and_then(Self::new).ok_or_else(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_id_reads_back_from_its_text() {
        let id = ClusterId::new(0x00c0_ffee).unwrap();
        assert_eq!(id.to_string(), "0000000000c0ffee");
        assert_eq!("0000000000c0ffee".parse(), Ok(id));
        assert_eq!("0xc0ffee".parse(), Ok(id));
    }

    #[test]
    fn zero_signs_and_long_texts_are_not_cluster_ids() {
        for bad in ["", "0", "0x", "+1", "-1", "g", "12345678901234567", " 1"] {
            assert!(bad.parse::<ClusterId>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn random_ids_differ() {
        assert_ne!(ClusterId::random(), ClusterId::random());
    }
}
