//! The log store contract.

use std::sync::Arc;

use crate::cluster_id::ClusterId;
use crate::entry::Entry;
use crate::incarnation::Incarnation;
use crate::log_id::LogId;
use crate::node::LogIndex;
use crate::snapshot::{Snapshot, SnapshotMeta};
use crate::snapshot_saver::SnapshotSaver;
use crate::snapshot_sink::{MemorySnapshot, PartialSnapshot, SnapshotSink};
use crate::vote::Vote;

/// A storage failure. Raft cannot continue safely after one: the node stops.
#[derive(Debug, thiserror::Error)]
#[error("storage failure while {action}: {source}")]
pub struct StorageError {
    /// What the node was doing.
    pub action: &'static str,
    /// The underlying error.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl StorageError {
    /// Wraps an error raised while doing `action`.
    pub fn new(action: &'static str, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self { action, source: source.into() }
    }
}

/// Tells the engine that the log is durable up to a log id, or that it
/// never will be.
///
/// Cheap to clone. A store calls [`FlushNotifier::flushed`] from any thread once
/// an append (and everything before it) survives a crash, and
/// [`FlushNotifier::failed`] when a pending append can no longer become
/// durable (its write or sync failed).
#[derive(Clone)]
pub struct FlushNotifier {
    notify: Arc<dyn Fn(LogId) + Send + Sync>,
    on_failure: Option<Arc<dyn Fn(StorageError) + Send + Sync>>,
}

impl FlushNotifier {
    /// Wraps the function that forwards flush events to the node.
    pub fn new(notify: impl Fn(LogId) + Send + Sync + 'static) -> Self {
        Self { notify: Arc::new(notify), on_failure: None }
    }

    /// Also forwards failures to the node, which stops at once instead of
    /// at its next append (a node with nothing more to write would wait for
    /// its pending ones forever, and look alive).
    pub fn on_failure(mut self, on_failure: impl Fn(StorageError) + Send + Sync + 'static) -> Self {
        self.on_failure = Some(Arc::new(on_failure));
        self
    }

    /// Reports that every entry up to and including `log_id` is durable.
    pub fn flushed(&self, log_id: LogId) {
        (self.notify)(log_id)
    }

    /// Reports that the pending appends will never be durable.
    pub fn failed(&self, error: StorageError) {
        if let Some(on_failure) = &self.on_failure {
            on_failure(error)
        }
    }
}

impl std::fmt::Debug for FlushNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FlushNotifier")
    }
}

/// Whether an append is durable when `append` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendDurability {
    /// Durable already; the notifier will not be called.
    Durable,
    /// The store calls the notifier later (group commit).
    Pending,
}

/// Everything a node reads back from its store when it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct LogState<C, N> {
    /// The cluster this node belongs to, once it was initialized or reached
    /// by a leader; `None` for a new node (and for a store written before
    /// cluster ids were saved: the engine then takes `Config::cluster_id`).
    pub cluster_id: Option<ClusterId>,
    /// This data's incarnation (see [`crate::incarnation`]): chosen by the
    /// store when it is first created and kept with its data. `None` for a
    /// store that keeps none: the node is then taken on trust after a wipe.
    pub incarnation: Option<Incarnation>,
    /// The last vote saved.
    pub vote: Option<Vote>,
    /// The last committed log id saved (may lag the real commit point).
    pub committed: Option<LogId>,
    /// The last entry removed by purge (covered by a snapshot).
    pub last_purged: Option<LogId>,
    /// Every entry after `last_purged`, in order.
    pub entries: Vec<Entry<C, N>>,
    /// The latest snapshot saved. A store need not read its data back to
    /// check it (1 GiB is seconds): its [`checksum`](crate::SnapshotData::checksum)
    /// must be the one recorded when it was written, and the node reads it
    /// whole through a [`checked_reader`](crate::SnapshotData::checked_reader)
    /// at startup, refusing to start on a mismatch; a follower it is sent to
    /// checks every byte against that checksum too.
    pub snapshot: Option<Snapshot<N>>,
}

impl<C, N> Default for LogState<C, N> {
    fn default() -> Self {
        Self {
            cluster_id: None,
            incarnation: None,
            vote: None,
            committed: None,
            last_purged: None,
            entries: Vec::new(),
            snapshot: None,
        }
    }
}

/// Durable storage for the log, the vote and the committed log id.
///
/// Calls arrive from one task, in order; the store must apply them in that
/// order (a truncate followed by an append means the appended entries replace
/// the truncated ones).
///
/// The durability contract: an entry reported durable (by returning
/// [`AppendDurability::Durable`] or through the notifier), a saved cluster id
/// and a saved vote survive a crash. `save_committed` may be lazy: after a crash the committed
/// log id may be older, never newer, than what was saved last.
///
/// `append` must not block on I/O for long: group commit belongs to the store.
pub trait LogStore<C, N>: Send + 'static {
    /// Reads the persisted state. Called once, before anything else.
    fn read_state(&mut self) -> Result<LogState<C, N>, StorageError>;

    /// Appends entries after the current last entry.
    fn append(&mut self, entries: &[Entry<C, N>], notifier: &FlushNotifier) -> Result<AppendDurability, StorageError>;

    /// Appends like [`append`](Self::append), for a caller with nothing
    /// better to do than wait for this sync (a follower whose acknowledgement
    /// waits for it, with no other event queued). A store whose group commit
    /// is idle may then write and sync on the calling thread and return
    /// [`AppendDurability::Durable`]: that saves the two thread wake-ups of
    /// handing the batch to its writer and hearing back. The default calls
    /// `append`.
    fn append_inline(
        &mut self,
        entries: &[Entry<C, N>],
        notifier: &FlushNotifier,
    ) -> Result<AppendDurability, StorageError> {
        self.append(entries, notifier)
    }

    /// Deletes every entry with index `>= since`. Removed entries were never
    /// committed; the append that follows makes the store durable again.
    fn truncate(&mut self, since: LogIndex) -> Result<(), StorageError>;

    /// Deletes entries up to and including `upto` (they are in a snapshot).
    fn purge(&mut self, upto: LogId) -> Result<(), StorageError>;

    /// Persists the cluster id; durable when this returns, like the vote. It is
    /// set once per node (at initialize, or by the first leader to reach it).
    fn save_cluster_id(&mut self, cluster_id: ClusterId) -> Result<(), StorageError>;

    /// Persists the vote; durable when this returns.
    fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError>;

    /// Persists the committed log id (may be lazy, see above).
    fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError>;

    /// Persists a snapshot, replacing the previous one; durable when this
    /// returns (write to a temporary file, sync, rename).
    fn save_snapshot(&mut self, snapshot: &Snapshot<N>) -> Result<(), StorageError>;

    /// Where a new snapshot's bytes go as the state machine writes them, on
    /// a blocking thread: a temporary file for a store on disk, so no buffer
    /// of the snapshot's size is needed. Created on the Raft task, so it
    /// must be cheap. The runtime then calls
    /// [`save_staged_snapshot`](Self::save_staged_snapshot) with the data it
    /// finished into. The default keeps the bytes in memory.
    fn snapshot_sink(&mut self, meta: &SnapshotMeta<N>) -> Result<Box<dyn SnapshotSink>, StorageError> {
        let _ = meta;
        Ok(Box::<MemorySnapshot>::default())
    }

    /// Where a snapshot `meta` whose bytes have the crc32c `checksum`,
    /// arriving from a leader, is gathered. A store on disk keeps it across
    /// transfers and restarts, so a new transfer of the same bytes resumes
    /// at [`PartialSnapshot::received`]; one of other bytes replaces it.
    /// The default keeps the bytes in memory and starts empty.
    fn partial_snapshot(
        &mut self,
        meta: &SnapshotMeta<N>,
        checksum: u32,
    ) -> Result<Box<dyn PartialSnapshot>, StorageError> {
        let _ = (meta, checksum);
        Ok(Box::<MemorySnapshot>::default())
    }

    /// Makes `snapshot` current, replacing the previous one; durable when
    /// this returns. Its data was finished by a [`snapshot_sink`](Self::snapshot_sink)
    /// or a [`partial_snapshot`](Self::partial_snapshot) of this store, so a
    /// store on disk can make it current by a rename instead of a copy. The
    /// default calls [`save_snapshot`](Self::save_snapshot).
    fn save_staged_snapshot(&mut self, snapshot: &Snapshot<N>) -> Result<(), StorageError> {
        self.save_snapshot(snapshot)
    }

    /// What makes snapshots finished by this store's sink or partial
    /// snapshot current from a job's thread, so a slow rename and directory
    /// sync do not stall the Raft task. Created on the Raft task (cheap),
    /// once per job. `None` (the default): the runtime calls
    /// [`save_staged_snapshot`](Self::save_staged_snapshot) on the Raft task
    /// instead, which suits stores in memory.
    fn snapshot_saver(&mut self) -> Option<Box<dyn SnapshotSaver<N>>> {
        None
    }

    /// A job that reads the entries with indexes in `range` back from the
    /// store, run on another thread: how a leader feeds a follower that lags
    /// behind the entries it keeps in memory, without a snapshot and without
    /// stalling the Raft task on disk reads. See [`ReadRange`] for what the
    /// job returns. `None` (the default): the store cannot read ranges, and
    /// such a follower gets a snapshot.
    ///
    /// The runtime only asks for committed entries, which are never
    /// truncated; a purge may run before or while the job reads.
    fn read_range(&mut self, range: std::ops::Range<LogIndex>) -> Option<ReadRange<C, N>> {
        let _ = range;
        None
    }
}

/// Reads entries back from a store, off the Raft task; see [`LogStore::read_range`].
///
/// The job returns the entries from the start of the range, in order and
/// without gaps, as far as the store holds them (it stops at the end of the
/// log). Entries purged before or while it reads are missing, never an
/// error: an empty vector means the start of the range is gone. It sees every
/// append made before the job was created, durable or not. An error means the
/// store is broken (unreadable, corrupt).
pub type ReadRange<C, N> = Box<dyn FnOnce() -> Result<Vec<Entry<C, N>>, StorageError> + Send>;
