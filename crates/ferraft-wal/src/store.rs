//! [`WalStore`]: the [`LogStore`] over a data dir.

use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use ferraft::log_id::index_of;
use ferraft::{
    AppData, AppendDurability, ClusterId, Entry, FlushNotifier, LogId, LogIndex, LogState, LogStore, Node,
    PartialSnapshot, ReadRange, Snapshot, SnapshotMeta, SnapshotSaver, SnapshotSink, StorageError, Vote,
};

use crate::error::{io_error, WalError};
use crate::fsutil::{sync_dir, DirLock};
use crate::layout::Layout;
use crate::options::{WalOptions, MIN_SEGMENT_BYTES};
use crate::queue::{Op, Shared, MAX_QUEUED_BYTES};
use crate::record::encode_record;
use crate::snapshot_saver::{self as saver, CurrentSnapshot, WalSnapshotSaver};
use crate::snapshot_stream::PartialFile;
use crate::spare::SpareSegments;
use crate::stepped::{Io, SteppedIo, WalStepper};
use crate::{range_read, recovery, snapshot_file, writer};

/// A durable Raft log in a directory: segmented, checksummed, group-committed.
///
/// All calls come from one owner (`&mut self`), as [`LogStore`] requires;
/// appends are written and synced by a background thread and reported through
/// the [`FlushNotifier`]. See the [crate docs](crate) for the on-disk format
/// and the recovery rules.
pub struct WalStore<C, N> {
    shared: Arc<Shared>,
    writer: Option<JoinHandle<()>>,
    layout: Layout,
    last_purged: Option<LogId>,
    /// The saved snapshot, shared with the jobs that make new ones current.
    snapshot: CurrentSnapshot<N>,
    /// The data's incarnation (identity file).
    incarnation: u64,
    /// Entries read at open, handed out by the first `read_state` if nothing
    /// changed since (saves reading the log twice at startup).
    recovered: Option<Vec<Entry<C, N>>>,
    /// Record end offsets of the append in progress; kept to reuse its allocation.
    record_ends: Vec<usize>,
    _lock: DirLock,
    _entries: PhantomData<fn() -> C>,
}

impl<C, N> std::fmt::Debug for WalStore<C, N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalStore").field("dir", &self.shared.dir).field("last_purged", &self.last_purged).finish()
    }
}

impl<C: AppData, N: Node> WalStore<C, N> {
    /// Opens the WAL in `dir`, creating it (and `dir`) on first use.
    ///
    /// Verifies every record and cuts a torn tail. Refuses to open, with a
    /// [`StorageError`] whose source is a [`WalError`], when the data is
    /// corrupt, belongs to another node or cluster, or is open elsewhere.
    pub fn open(dir: impl AsRef<Path>, options: WalOptions) -> Result<Self, StorageError> {
        Self::open_dir(dir.as_ref(), options, Io::threaded()).map_err(|error| error.into_storage("opening the WAL"))
    }

    /// Opens the WAL in `dir` on the file system `io.fs`, with no
    /// background thread: the returned [`WalStepper`] runs the writer. For
    /// deterministic simulation (see [`SteppedIo`]); [`open`](Self::open) otherwise.
    pub fn open_stepped(
        dir: impl AsRef<Path>,
        options: WalOptions,
        io: SteppedIo,
    ) -> Result<(Self, WalStepper), StorageError> {
        let store = Self::open_dir(dir.as_ref(), options, Io::stepped(io))
            .map_err(|error| error.into_storage("opening the WAL"))?;
        let stepper = WalStepper::new(store.shared.clone());
        Ok((store, stepper))
    }

    fn open_dir(dir: &Path, options: WalOptions, io: Io) -> Result<Self, WalError> {
        let fs = io.fs.clone();
        if options.segment_bytes < MIN_SEGMENT_BYTES {
            return Err(WalError::SegmentTooSmall { segment_bytes: options.segment_bytes, min: MIN_SEGMENT_BYTES });
        }
        if !fs.exists(dir) {
            fs.create_dir_all(dir).map_err(io_error("creating", dir))?;
            // Otherwise a power failure could take the new dir, and with it a
            // vote this node gave, away.
            if let Some(parent) = dir.parent().filter(|_| options.sync) {
                sync_dir(&*fs, if parent.as_os_str().is_empty() { Path::new(".") } else { parent })?;
            }
        }
        let lock = DirLock::acquire(&*fs, dir)?;
        let recovered = recovery::recover::<C, N>(&io, dir, &options)?;
        let last_purged = recovered.meta.state.last_purged;
        let stepped = io.stepped;
        let shared = Arc::new(Shared::new(dir.to_path_buf(), options.sync, recovered.meta, io));
        // A fresh log needs its first segment now; a reopened one, only
        // once its open segment is half full.
        let open_segment_roomy =
            recovered.segments.last().is_some_and(|last| last.len_bytes < options.segment_bytes / 2);
        let spares = match options.preallocate && options.sync {
            true => Some(SpareSegments::start(fs, dir, options.segment_bytes, !open_segment_roomy, stepped)?),
            false => None,
        };
        let writer = writer::spawn(shared.clone(), spares)?;
        Ok(Self {
            shared,
            writer,
            layout: Layout::new(recovered.segments, options.segment_bytes),
            last_purged,
            snapshot: Arc::new(Mutex::new(recovered.snapshot)),
            incarnation: recovered.incarnation,
            recovered: Some(recovered.entries),
            record_ends: Vec::new(),
            _lock: lock,
            _entries: PhantomData,
        })
    }

    /// The data dir.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// The index of the last entry, or of the purge point if the log is empty
    /// (0 for a new log).
    pub fn last_index(&self) -> LogIndex {
        self.next_index().prev()
    }

    /// The last entry removed by purge.
    pub fn last_purged(&self) -> Option<LogId> {
        self.last_purged
    }

    /// The live entries with indexes in `range` (clamped to what exists), read
    /// back from disk and checked.
    ///
    /// Waits for everything queued to be written first, so it sees every
    /// append made so far. Meant for tools and tests: Raft itself reads the
    /// log once, through `read_state`.
    pub fn entries(&mut self, range: impl RangeBounds<LogIndex>) -> Result<Vec<Entry<C, N>>, StorageError> {
        let first = match range.start_bound() {
            Bound::Included(&start) => start,
            Bound::Excluded(&start) => start.saturating_next(),
            Bound::Unbounded => LogIndex(0),
        };
        let end = match range.end_bound() {
            Bound::Included(&end) => end.saturating_next(),
            Bound::Excluded(&end) => end,
            Bound::Unbounded => LogIndex(u64::MAX),
        };
        let first = first.max(index_of(self.last_purged) + 1);
        let end = end.min(self.next_index());
        self.barrier().and_then(|()| self.read_entries(first, end)).map_err(|e| e.into_storage("reading entries"))
    }

    /// Waits until everything queued so far is durable (written, when not syncing).
    pub fn sync(&mut self) -> Result<(), StorageError> {
        self.barrier().map_err(|error| error.into_storage("syncing the WAL"))
    }

    /// Flushes what is queued, stops the writer and reports any failure.
    /// Dropping the store does the same but can only log the failure.
    pub fn close(mut self) -> Result<(), StorageError> {
        shutdown(&self.shared, &mut self.writer).map_err(|error| error.into_storage("closing the WAL"))
    }

    fn next_index(&self) -> LogIndex {
        self.layout.next_index().unwrap_or(index_of(self.last_purged) + 1)
    }

    /// Queues a barrier and waits for the writer to reach it.
    fn barrier(&mut self) -> Result<(), WalError> {
        range_read::barrier(&self.shared)
    }

    /// Reads entries `first..end` from disk, one read per segment.
    fn read_entries(&self, first: LogIndex, end: LogIndex) -> Result<Vec<Entry<C, N>>, WalError> {
        let mut entries = Vec::with_capacity(end.saturating_sub(first).min(1 << 20) as usize);
        let runs = range_read::plan(&self.layout, first, end);
        range_read::read_runs(&*self.shared.io.fs, &self.shared.dir, &runs, first, &mut entries)?;
        Ok(entries)
    }

    /// Queues `entries`; with `inline`, an idle writer's batch (this append
    /// last) runs on the calling thread and the append returns durable.
    fn append_entries(
        &mut self,
        entries: &[Entry<C, N>],
        notifier: &FlushNotifier,
        inline: bool,
    ) -> Result<AppendDurability, WalError> {
        self.shared.check_writer()?;
        let Some(last) = entries.last() else { return Ok(AppendDurability::Durable) };
        let next = self.next_index();
        for (offset, entry) in entries.iter().enumerate() {
            let expected = next + offset as u64;
            if entry.log_id.index != expected {
                return Err(WalError::NotContiguous { expected, found: entry.log_id.index });
            }
        }
        self.recovered = None;
        let mut queue = self.shared.lock_queue();
        // (a stepped writer runs only when its caller says: nothing to wait for)
        while queue.buf.len() >= MAX_QUEUED_BYTES && !self.shared.io.stepped {
            self.shared.check_writer()?;
            queue = self.shared.room.wait(queue).unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        let base = queue.buf.len();
        self.record_ends.clear();
        for entry in entries {
            if let Err(error) = encode_record(entry, &mut queue.buf) {
                queue.buf.truncate(base);
                return Err(error);
            }
            self.record_ends.push(queue.buf.len());
        }
        let mut start = base;
        for (entry, &end) in entries.iter().zip(&self.record_ends) {
            let placement = self.layout.place(entry.log_id.index, (end - start) as u64);
            if placement.create {
                queue.ops.push(Op::Create { segment: placement.segment });
            }
            queue.push_write(placement.segment, placement.offset, start, end);
            start = end;
        }
        if !self.shared.sync {
            drop(queue);
            self.shared.work.notify_one();
            return Ok(AppendDurability::Durable);
        }
        queue.flush_points.push((last.log_id, notifier.clone()));
        drop(queue);
        if inline && self.shared.run_batch_here()? {
            return Ok(AppendDurability::Durable);
        }
        self.shared.work.notify_one();
        Ok(AppendDurability::Pending)
    }

    fn truncate_since(&mut self, since: LogIndex) -> Result<(), WalError> {
        self.shared.check_writer()?;
        let last_purged = index_of(self.last_purged);
        if since <= last_purged && self.last_purged.is_some() {
            return Err(WalError::TruncatePurged { since, last_purged });
        }
        if since >= self.next_index() {
            return Ok(());
        }
        self.recovered = None;
        let plan = self.layout.truncate(since);
        let mut queue = self.shared.lock_queue();
        // Each deletion is made durable before the next step: a deleted
        // segment that came back after a crash would leave a hole in the log.
        queue.ops.extend(plan.delete.into_iter().map(|segment| Op::Delete { segment, sync_dir: true }));
        if let Some((segment, len)) = plan.cut {
            queue.ops.push(Op::Cut { segment, len });
        }
        // An append cut by this truncation must not be reported durable.
        queue.flush_points.retain(|(log_id, _)| log_id.index < since);
        drop(queue);
        self.shared.work.notify_one();
        Ok(())
    }

    fn purge_upto(&mut self, upto: LogId) -> Result<(), WalError> {
        self.shared.check_writer()?;
        if self.last_purged.is_some_and(|purged| purged.index >= upto.index) {
            return Ok(());
        }
        self.recovered = None;
        self.last_purged = Some(upto);
        self.shared.lock_meta().state.last_purged = Some(upto);
        let deleted = self.layout.purge(upto.index);
        let mut queue = self.shared.lock_queue();
        // The purge point is durable before any segment goes, so recovery
        // never sees a log that starts later than the purge point says.
        queue.ops.push(Op::PersistMeta);
        // Unsynced deletions are fine: a purged segment that comes back is
        // recognised as garbage by recovery.
        queue.ops.extend(deleted.into_iter().map(|segment| Op::Delete { segment, sync_dir: false }));
        drop(queue);
        self.shared.work.notify_one();
        Ok(())
    }
}

impl<C, N> Drop for WalStore<C, N> {
    fn drop(&mut self) {
        if let Err(error) = shutdown(&self.shared, &mut self.writer) {
            tracing::error!(%error, dir = %self.shared.dir.display(), "WAL closed with a failure");
        }
    }
}

/// Stops the writer after it drained the queue; the failure that stopped it early, if any.
fn shutdown(shared: &Shared, writer: &mut Option<JoinHandle<()>>) -> Result<(), WalError> {
    let stepped = if shared.io.stepped { shared.lock_writer().take() } else { None };
    if let Some(mut stepped) = stepped {
        // what the thread does before it exits; the writer goes with it
        // (it holds the shared state: a cycle otherwise)
        return stepped.step();
    }
    let Some(writer) = writer.take() else { return Ok(()) };
    shared.lock_queue().closing = true;
    shared.work.notify_one();
    if writer.join().is_err() {
        return Err(WalError::WriterGone);
    }
    match shared.failure.get() {
        Some(failure) => Err(WalError::WriterFailed(failure.clone())),
        None => Ok(()),
    }
}

impl<C: AppData, N: Node> LogStore<C, N> for WalStore<C, N> {
    fn read_state(&mut self) -> Result<LogState<C, N>, StorageError> {
        let entries = match self.recovered.take() {
            Some(entries) => entries,
            None => {
                let first = index_of(self.last_purged) + 1;
                self.barrier()
                    .and_then(|()| self.read_entries(first, self.next_index()))
                    .map_err(|error| error.into_storage("reading the log"))?
            }
        };
        let meta = self.shared.lock_meta().state.clone();
        Ok(LogState {
            cluster_id: meta.cluster_id,
            incarnation: ferraft::Incarnation::new(self.incarnation),
            vote: meta.vote,
            committed: meta.committed,
            last_purged: self.last_purged,
            entries,
            snapshot: saver::lock(&self.snapshot).clone(),
        })
    }

    fn append(&mut self, entries: &[Entry<C, N>], notifier: &FlushNotifier) -> Result<AppendDurability, StorageError> {
        self.append_entries(entries, notifier, false).map_err(|error| error.into_storage("appending to the WAL"))
    }

    fn append_inline(
        &mut self,
        entries: &[Entry<C, N>],
        notifier: &FlushNotifier,
    ) -> Result<AppendDurability, StorageError> {
        self.append_entries(entries, notifier, true).map_err(|error| error.into_storage("appending to the WAL"))
    }

    fn truncate(&mut self, since: LogIndex) -> Result<(), StorageError> {
        self.truncate_since(since).map_err(|error| error.into_storage("truncating the WAL"))
    }

    fn purge(&mut self, upto: LogId) -> Result<(), StorageError> {
        self.purge_upto(upto).map_err(|error| error.into_storage("purging the WAL"))
    }

    fn save_cluster_id(&mut self, cluster_id: ClusterId) -> Result<(), StorageError> {
        let mut meta = self.shared.lock_meta();
        meta.state.cluster_id = Some(cluster_id);
        meta.persist().map_err(|error| error.into_storage("saving the cluster id"))
    }

    fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let mut meta = self.shared.lock_meta();
        meta.state.vote = Some(*vote);
        meta.persist().map_err(|error| error.into_storage("saving the vote"))
    }

    fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        self.shared.save_committed(committed);
        Ok(())
    }

    fn save_snapshot(&mut self, snapshot: &Snapshot<N>) -> Result<(), StorageError> {
        let mut current = saver::lock(&self.snapshot);
        let data = snapshot_file::save(&*self.shared.io.fs, &self.shared.dir, snapshot, self.shared.sync)
            .map_err(|error| error.into_storage("saving the snapshot"))?;
        *current = Some(Snapshot { meta: snapshot.meta.clone(), data });
        Ok(())
    }

    fn snapshot_sink(&mut self, meta: &SnapshotMeta<N>) -> Result<Box<dyn SnapshotSink>, StorageError> {
        let staged = snapshot_file::staged_name();
        let sink = snapshot_file::sink(&*self.shared.io.fs, &self.shared.dir, &staged, meta, self.shared.sync)
            .map_err(|error| error.into_storage("starting a snapshot"))?;
        Ok(Box::new(sink.removed_unless_made_current(self.shared.io.fs.clone())))
    }

    fn partial_snapshot(
        &mut self,
        meta: &SnapshotMeta<N>,
        checksum: u32,
    ) -> Result<Box<dyn PartialSnapshot>, StorageError> {
        let opened = snapshot_file::encode_meta(meta).and_then(|meta| {
            PartialFile::open(self.shared.io.fs.clone(), &self.shared.dir, &meta, checksum, self.shared.sync)
        });
        Ok(Box::new(opened.map_err(|error| error.into_storage("receiving a snapshot"))?))
    }

    fn read_range(&mut self, range: std::ops::Range<LogIndex>) -> Option<ReadRange<C, N>> {
        let first = range.start.max(LogIndex(1));
        let runs = match first > index_of(self.last_purged) {
            true => range_read::plan(&self.layout, first, range.end.min(self.next_index())),
            false => Vec::new(),
        };
        Some(range_read::job(self.shared.clone(), runs, first))
    }

    fn save_staged_snapshot(&mut self, snapshot: &Snapshot<N>) -> Result<(), StorageError> {
        // written by this store's sink or partial file: a rename makes it current
        let mut current = saver::lock(&self.snapshot);
        let saved = snapshot_file::make_current(&*self.shared.io.fs, &self.shared.dir, snapshot, self.shared.sync)
            .map_err(|error| error.into_storage("saving the staged snapshot"))?;
        *current = Some(saved);
        Ok(())
    }

    fn snapshot_saver(&mut self) -> Option<Box<dyn SnapshotSaver<N>>> {
        let (fs, dir) = (self.shared.io.fs.clone(), self.shared.dir.clone());
        Some(Box::new(WalSnapshotSaver { fs, dir, sync: self.shared.sync, current: self.snapshot.clone() }))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use ferraft::testing::conformance::{entries, TestData, TestDir};
    use ferraft::{AppendDurability, BasicNode, FlushNotifier, LogStore, NodeId};

    use super::*;

    #[test]
    fn an_inline_append_is_handed_off_while_the_writer_runs_a_batch() {
        let dir = TestDir::new("inline_busy");
        let mut store = WalStore::<TestData, BasicNode>::open(dir.path(), WalOptions::new(NodeId(1), 1)).unwrap();
        store.read_state().unwrap();
        let (tx, told) = mpsc::channel();
        let notifier = FlushNotifier::new(move |log_id| tx.send(log_id).unwrap());
        let shared = store.shared.clone();
        let busy = shared.lock_writer();
        let durability = store.append_inline(&entries(1, 1..=2), &notifier).unwrap();
        assert_eq!(durability, AppendDurability::Pending, "the writer is busy: the caller must not wait for it");
        drop(busy);
        let reported = told.recv_timeout(Duration::from_secs(10)).expect("the writer reports the batch");
        assert_eq!(reported.index, ferraft::LogIndex(2));
    }

    #[test]
    fn a_barrier_queued_as_an_inline_batch_fails_is_answered() {
        // The interleaving: a range read's barrier passes `check_writer`, an
        // inline append's batch fails on the appender's thread (its `fail`
        // drains what is queued then), then the barrier is queued. The writer
        // thread wakes for it, sees the failure and exits.
        let dir = TestDir::new("inline_failed_barrier");
        let mut store = WalStore::<TestData, BasicNode>::open(dir.path(), WalOptions::new(NodeId(1), 1)).unwrap();
        store.read_state().unwrap();
        let shared = store.shared.clone();
        let busy = shared.lock_writer();
        let (tx, answered) = mpsc::channel();
        let reader = shared.clone();
        std::thread::spawn(move || tx.send(crate::range_read::barrier(&reader).is_err()).unwrap());
        while shared.lock_queue().ops.is_empty() {
            std::thread::sleep(Duration::from_millis(1));
        }
        let _ = shared.failure.set(Arc::new(WalError::WriterGone));
        drop(busy);
        let failed = answered.recv_timeout(Duration::from_secs(10)).expect("the barrier is answered, not left waiting");
        assert!(failed, "a barrier after a failure reports it");
    }
}
