//! State machine snapshots.

use serde::{Deserialize, Serialize};

use crate::log_id::LogId;
use crate::membership::{RememberedChanges, StoredMembership};
pub use crate::snapshot_data::{CheckedReader, SnapshotData, SnapshotReader, SnapshotSource};

/// What a snapshot covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound = "N: crate::Node")]
pub struct SnapshotMeta<N> {
    /// The last entry whose effect the snapshot contains.
    pub last_log_id: Option<LogId>,
    /// The last membership at or before `last_log_id`.
    pub membership: StoredMembership<N>,
    /// The changes with a change id whose entries the snapshot covers and
    /// its log may no longer hold, so a repeat still gets the first outcome.
    #[serde(default)]
    pub changes: RememberedChanges<N>,
}

/// A complete snapshot: metadata plus the state machine's own encoding, as
/// a handle to bytes that may live in a file (see [`SnapshotData`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot<N> {
    /// What it covers.
    pub meta: SnapshotMeta<N>,
    /// The state machine's bytes.
    pub data: SnapshotData,
}
