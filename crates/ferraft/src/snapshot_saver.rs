//! Making a finished snapshot current off the Raft task. For a store on
//! disk that is a rename and a directory sync, 10–50 ms on a loaded disk: the
//! job that wrote (or checked) the snapshot does it, and the engine learns
//! of the snapshot only once it is durable and current, so the log behind it
//! is never purged before that.

use crate::snapshot::Snapshot;
use crate::storage::StorageError;

/// What [`SnapshotSaver::make_current`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MadeCurrent {
    /// The snapshot is the store's current one, durable.
    Saved,
    /// The store already holds a snapshot at least as new (made current by
    /// another job meanwhile): this one was let go, the current one stays.
    Covered,
}

/// Makes snapshots finished by a store's
/// [`snapshot_sink`](crate::LogStore::snapshot_sink) or
/// [`partial_snapshot`](crate::LogStore::partial_snapshot) current, from a
/// job's thread; see [`LogStore::snapshot_saver`](crate::LogStore::snapshot_saver).
pub trait SnapshotSaver<N>: Send {
    /// Makes `snapshot` the current one, durable when this returns, unless
    /// the store holds one at least as new (same or higher last index): a
    /// snapshot never replaces a newer one, whichever job finishes last.
    /// A crash at any point leaves the old snapshot or the new one.
    fn make_current(&mut self, snapshot: &Snapshot<N>) -> Result<MadeCurrent, StorageError>;
}
