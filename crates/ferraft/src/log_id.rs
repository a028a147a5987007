//! Log positions.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::leader_id::LeaderId;
use crate::node::LogIndex;

/// The id of a log entry: who proposed it and where.
///
/// Two entries with the same log id are the same entry (log matching).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LogId {
    /// The leader that proposed the entry.
    pub leader_id: LeaderId,
    /// The entry's position.
    pub index: LogIndex,
}

impl LogId {
    /// A log id.
    pub fn new(leader_id: LeaderId, index: LogIndex) -> Self {
        Self { leader_id, index }
    }
}

impl PartialOrd for LogId {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Log ids compare by leader first, then index: the "more up to date" order of Raft.
impl Ord for LogId {
    fn cmp(&self, other: &Self) -> Ordering {
        self.leader_id.log_order(&other.leader_id).then(self.index.cmp(&other.index))
    }
}

impl fmt::Display for LogId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.leader_id, self.index)
    }
}

/// The index of an optional log id, 0 when absent.
pub fn index_of(log_id: Option<LogId>) -> LogIndex {
    log_id.map_or(LogIndex(0), |l| l.index)
}
