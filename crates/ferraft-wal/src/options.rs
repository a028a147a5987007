//! How a WAL store is opened.

use ferraft::NodeId;

/// The default segment size: large enough that rolling (two extra syncs) is
/// rare, small enough that purging frees space in useful steps.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 * 1024 * 1024;

/// The smallest segment size accepted; tests use small segments to exercise rolling.
pub const MIN_SEGMENT_BYTES: u64 = 1024;

/// Options for [`WalStore::open`](crate::WalStore::open).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalOptions {
    /// The node this data dir belongs to; checked on every open so a node
    /// never starts on another node's log.
    pub node_id: NodeId,
    /// A tag checked like `node_id` (an application or deployment name). Not
    /// the Raft cluster id, which the node saves in `META` once it has one;
    /// but a data dir written before cluster ids were saved reports this tag
    /// as its cluster id (its node used the same value in every message).
    pub cluster_id: u64,
    /// A segment file is closed and a new one started once it reaches this
    /// size. Purge frees space in whole segments.
    pub segment_bytes: u64,
    /// Whether writes are synced to the disk.
    ///
    /// **`false` is unsafe**: nothing survives a power failure or kernel
    /// crash, and `append` reports entries durable before they even reach
    /// the OS, so a process crash loses them too. Raft's safety depends on
    /// durability; use `false` only in tests.
    pub sync: bool,
    /// Whether new segments start as full-size files of synced zeros, made
    /// ahead of need by a helper thread. Appends then overwrite existing
    /// blocks, and `fdatasync` has no file size to commit: on ext4 that cuts
    /// a sync under concurrent load by about 40%. Costs `segment_bytes` of
    /// disk per segment from its creation. Ignored when `sync` is off.
    pub preallocate: bool,
}

impl WalOptions {
    /// Durable defaults for `node_id` in `cluster_id`.
    pub fn new(node_id: NodeId, cluster_id: u64) -> Self {
        Self { node_id, cluster_id, segment_bytes: DEFAULT_SEGMENT_BYTES, sync: true, preallocate: true }
    }
}
