//! The hand-off between the store (caller side) and the writer thread.
//!
//! Callers encode records straight into `Queue::buf` and push the file
//! operations that place them; the writer swaps the whole queue out for an
//! empty one (keeping both buffers' capacity), executes it, syncs once, and
//! reports the batch durable. Everything that arrives while a sync is in
//! flight lands in the next batch: that is the group commit. Because every
//! mutation (append, truncate, purge) goes through this one queue, the writer
//! applies them in call order.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};

use ferraft::{FlushNotifier, LogId, LogIndex};

use crate::error::WalError;
use crate::meta::MetaFile;
use crate::stepped::Io;
use crate::writer::Writer;

/// Queued bytes above which `append` waits for the writer: bounds memory when
/// the disk cannot keep up, without blocking in the normal case.
pub(crate) const MAX_QUEUED_BYTES: usize = 64 * 1024 * 1024;

/// One file operation, executed by the writer in queue order.
#[derive(Debug)]
pub(crate) enum Op {
    /// Create segment `segment` durably, after syncing the one written so far.
    Create {
        /// First index of the new segment.
        segment: LogIndex,
    },
    /// Write `buf[start..end]` at `offset` of segment `segment`.
    Write {
        /// The target segment.
        segment: LogIndex,
        /// Byte offset in the segment file.
        offset: u64,
        /// Start in the queue buffer.
        start: usize,
        /// End in the queue buffer.
        end: usize,
    },
    /// Cut segment `segment` to `len` bytes and sync the cut, so stale records
    /// can never reappear between re-appended ones.
    Cut {
        /// The segment to cut.
        segment: LogIndex,
        /// Its new length.
        len: u64,
    },
    /// Delete segment `segment`, syncing the directory if `sync_dir`.
    Delete {
        /// The segment to delete.
        segment: LogIndex,
        /// Whether the deletion must be durable before the next operation.
        sync_dir: bool,
    },
    /// Save the metadata (it carries a new purge point) before what follows.
    PersistMeta,
    /// Answer once everything queued before it is written (and synced).
    Barrier(SyncSender<Result<(), Arc<WalError>>>),
}

/// Work waiting for the writer.
#[derive(Debug, Default)]
pub(crate) struct Queue {
    /// Encoded records referenced by `Op::Write`.
    pub buf: Vec<u8>,
    /// Operations in call order.
    pub ops: Vec<Op>,
    /// The last entry of each queued append and whom to tell once it is
    /// durable. The writer reports only the last (flushed(x) covers all
    /// before x); the others are kept so a truncation can fall back to the
    /// last append it left whole.
    pub flush_points: Vec<(LogId, FlushNotifier)>,
    /// Set when the store closes: the writer drains the queue and exits.
    pub closing: bool,
}

impl Queue {
    /// Queues a write, merging it into the previous one when both are adjacent
    /// in the buffer and in the file (consecutive appends), so a batch costs
    /// one `pwrite` per segment rather than one per call.
    pub fn push_write(&mut self, segment: LogIndex, offset: u64, start: usize, end: usize) {
        if let Some(Op::Write { segment: last_segment, offset: last_offset, start: last_start, end: last_end }) =
            self.ops.last_mut()
        {
            if *last_segment == segment
                && *last_end == start
                && *last_offset + (*last_end - *last_start) as u64 == offset
            {
                *last_end = end;
                return;
            }
        }
        self.ops.push(Op::Write { segment, offset, start, end });
    }
}

/// State shared by the store and its writer thread.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The data dir.
    pub dir: PathBuf,
    /// Whether to sync (see [`WalOptions::sync`](crate::WalOptions::sync)).
    pub sync: bool,
    /// The file system, and whether the caller steps the writer.
    pub io: Io,
    /// The writer: run by its thread, by the caller of a stepped store, or
    /// by an appender while it is idle. `None` once the thread exited.
    pub writer: Mutex<Option<Writer>>,
    /// Work for the writer.
    pub queue: Mutex<Queue>,
    /// Signals the writer that work (or closing) arrived.
    pub work: Condvar,
    /// Signals waiting appenders that the queue was emptied.
    pub room: Condvar,
    /// Vote, committed log id and purge point; written by callers and writer.
    pub meta: Mutex<MetaFile>,
    /// A committed log id not yet moved into `meta`: kept apart so
    /// `save_committed` never waits behind a metadata sync.
    pending_committed: Mutex<Option<Option<LogId>>>,
    /// The error that stopped the writer, if one did.
    pub failure: OnceLock<Arc<WalError>>,
    /// Set when the writer thread has exited, for whatever reason.
    pub writer_gone: AtomicBool,
}

impl Shared {
    /// Shared state for a store over `dir`.
    pub fn new(dir: PathBuf, sync: bool, meta: MetaFile, io: Io) -> Self {
        Self {
            dir,
            sync,
            io,
            writer: Mutex::new(None),
            queue: Mutex::new(Queue::default()),
            work: Condvar::new(),
            room: Condvar::new(),
            meta: Mutex::new(meta),
            pending_committed: Mutex::new(None),
            failure: OnceLock::new(),
            writer_gone: AtomicBool::new(false),
        }
    }

    /// Locks the queue. A panic while holding the lock leaves the queue
    /// consistent enough to report failure, so poisoning is ignored.
    pub fn lock_queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Locks the metadata file (poisoning ignored, as for the queue), with
    /// the latest committed log id moved in.
    pub fn lock_meta(&self) -> MutexGuard<'_, MetaFile> {
        let mut meta = self.meta.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(committed) = self.pending_committed.lock().unwrap_or_else(|p| p.into_inner()).take() {
            meta.set_committed(committed);
        }
        meta
    }

    /// Records a committed log id for the writer to save lazily.
    pub fn save_committed(&self, committed: Option<LogId>) {
        *self.pending_committed.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(committed);
    }

    /// Locks the writer (poisoning ignored: a batch that panicked never
    /// reported anything durable, and a later batch fails or reports only
    /// what it synced).
    pub fn lock_writer(&self) -> MutexGuard<'_, Option<Writer>> {
        self.writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs what is queued on the calling thread if the writer is idle (not
    /// running a batch on its thread); whether it did. A stepped store's
    /// writer is always idle between steps: its caller asked for the batch.
    pub fn run_batch_here(&self) -> Result<bool, WalError> {
        let mut slot = match self.writer.try_lock() {
            Ok(slot) => slot,
            Err(std::sync::TryLockError::WouldBlock) => return Ok(false),
            Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
        };
        match slot.as_mut() {
            Some(writer) => writer.run_batch_here().map(|()| true),
            None => Err(self.stopped_error()),
        }
    }

    /// Runs one batch of a stepped writer; fails if there is none (threaded,
    /// or closed).
    pub fn step(&self) -> Result<(), WalError> {
        if !self.io.stepped {
            return Err(self.stopped_error());
        }
        let mut writer = self.lock_writer();
        match writer.as_mut() {
            Some(writer) => writer.step(),
            None => Err(self.stopped_error()),
        }
    }

    /// Why the writer is not there: its failure, or that it is gone.
    pub fn stopped_error(&self) -> WalError {
        self.check_writer().err().unwrap_or(WalError::WriterGone)
    }

    /// Fails if the writer stopped: nothing queued from now on would land.
    pub fn check_writer(&self) -> Result<(), WalError> {
        if let Some(failure) = self.failure.get() {
            return Err(WalError::WriterFailed(failure.clone()));
        }
        if self.writer_gone.load(Ordering::Acquire) {
            return Err(WalError::WriterGone);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adjacent_writes_merge_into_one() {
        let mut queue = Queue::default();
        queue.push_write(LogIndex(1), 24, 0, 10);
        queue.push_write(LogIndex(1), 34, 10, 25);
        assert!(matches!(queue.ops[..], [Op::Write { segment: LogIndex(1), offset: 24, start: 0, end: 25 }]));
    }

    #[test]
    fn writes_to_another_segment_or_place_stay_apart() {
        let mut queue = Queue::default();
        queue.push_write(LogIndex(1), 24, 0, 10);
        queue.push_write(LogIndex(2), 24, 10, 20);
        queue.push_write(LogIndex(2), 60, 20, 30);
        queue.ops.push(Op::PersistMeta);
        queue.push_write(LogIndex(2), 70, 30, 40);
        assert_eq!(queue.ops.len(), 5);
    }
}
