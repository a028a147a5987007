//! The writer thread: executes queued file operations and group-commits them.
//!
//! One loop iteration is one batch: take everything queued, write it (one
//! `pwrite` per contiguous run), `fdatasync` once, then tell the notifier the
//! last appended entry is durable. Callers never wait for a sync; appends that
//! arrive during one are coalesced into the next batch.

use std::mem;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use ferraft::{FlushNotifier, LogId, LogIndex};

use crate::error::{io_error, WalError};
use crate::file_system::FsFile;
use crate::fsutil::{sync_dir, TEMP_SUFFIX};
use crate::queue::{Op, Shared};
use crate::record::mark_write_start;
use crate::segment::{encode_header, file_name};
use crate::spare::SpareSegments;
use crate::stepped::PlantedBug;

/// How long a changed committed log id may stay unsaved. `save_committed` is
/// lazy by contract; this bounds how far behind it is after a process crash.
/// It is written without a sync of its own: a `META` sync here took the
/// writer ~0.2-0.3 ms (more with other logs syncing) every 200 ms, in the
/// way of the next batch.
pub(crate) const COMMITTED_PERSIST_INTERVAL: Duration = Duration::from_millis(200);

/// Parks the writer in `shared` and, unless the store is stepped by its
/// caller, starts the thread that runs its batches. The writer lives in
/// `shared` (not on the thread) so an idle writer's batch can also be run by
/// the appender itself (see [`Shared::run_batch_here`]).
pub(crate) fn spawn(shared: Arc<Shared>, spares: Option<SpareSegments>) -> Result<Option<JoinHandle<()>>, WalError> {
    *shared.lock_writer() = Some(Writer::new(shared.clone(), spares));
    if shared.io.stepped {
        return Ok(None);
    }
    let dir = shared.dir.clone();
    let thread_shared = shared.clone();
    match std::thread::Builder::new().name("ferraft-wal-writer".into()).spawn(move || run(thread_shared)) {
        Ok(handle) => Ok(Some(handle)),
        Err(error) => {
            // the writer holds `shared`: a cycle unless taken out
            shared.lock_writer().take();
            Err(io_error("starting the writer thread for", &dir)(error))
        }
    }
}

/// The writer thread: waits for work, then runs a batch under the writer's
/// lock; exits once the store closes with nothing left, or after a failure.
fn run(shared: Arc<Shared>) {
    let _guard = ExitGuard(shared.clone());
    while wait_for_work(&shared) {
        let mut slot = shared.lock_writer();
        let Some(writer) = slot.as_mut() else { return };
        if shared.failure.get().is_some() {
            return;
        }
        if writer.take_batch() {
            if let Err(error) = writer.execute_batch() {
                writer.fail(error);
                return;
            }
        }
    }
    // (a guard held by the tail expression would outlive `_guard`, which locks too)
    let mut slot = shared.lock_writer();
    if let Some(writer) = slot.as_mut().filter(|_| shared.failure.get().is_none()) {
        if let Err(error) = writer.persist_committed(Duration::ZERO) {
            writer.fail(error);
        }
    }
    drop(slot);
}

/// Waits until work is queued; false once closing with nothing left. Saves
/// a lazily-committed log id while idle.
fn wait_for_work(shared: &Shared) -> bool {
    let mut queue = shared.lock_queue();
    while queue.ops.is_empty() {
        // (an inline batch on the appender's thread may have failed)
        if queue.closing || shared.failure.get().is_some() {
            return false;
        }
        queue = shared.work.wait_timeout(queue, COMMITTED_PERSIST_INTERVAL).map_or_else(|p| p.into_inner().0, |r| r.0);
        if queue.ops.is_empty() {
            drop(queue);
            if let Some(writer) = shared.lock_writer().as_mut() {
                if let Err(error) = writer.persist_committed(COMMITTED_PERSIST_INTERVAL) {
                    writer.fail(error);
                    return false;
                }
            }
            queue = shared.lock_queue();
        }
    }
    true
}

/// The open segment being written.
struct ActiveSegment {
    first_index: LogIndex,
    file: Box<dyn FsFile>,
    path: PathBuf,
    /// Written since the last sync (the next write's first record is
    /// marked as a write start when not).
    dirty: bool,
}

/// The writer's state between batches.
pub(crate) struct Writer {
    shared: Arc<Shared>,
    /// The batch being executed; swapped with the queue's each round.
    buf: Vec<u8>,
    ops: Vec<Op>,
    active: Option<ActiveSegment>,
    barriers: Vec<SyncSender<Result<(), Arc<WalError>>>>,
    flush_points: Vec<(LogId, FlushNotifier)>,
    /// The notifier of the last batch with appends: told of a failure that
    /// no append waits for (a purge's, the committed id's), which the node
    /// would otherwise hear of only at its next append.
    last_notifier: Option<FlushNotifier>,
    spares: Option<SpareSegments>,
}

/// Marks the writer gone however the thread ends (even by a panic in a
/// notifier), so callers get an error instead of waiting forever.
struct ExitGuard(Arc<Shared>);

impl Drop for ExitGuard {
    fn drop(&mut self) {
        // the writer holds the shared state: a cycle unless taken out
        drop(self.0.lock_writer().take());
        self.0.writer_gone.store(true, Ordering::Release);
        let mut queue = self.0.lock_queue();
        // a barrier queued after a failure (an inline batch's, on another
        // thread) would wait forever: its sender dropped, it hears the failure
        queue.ops.clear();
        self.0.room.notify_all();
    }
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").field("queued_ops", &self.ops.len()).finish()
    }
}

impl Writer {
    fn new(shared: Arc<Shared>, spares: Option<SpareSegments>) -> Self {
        let (buf, ops, barriers, flush_points) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        Self { shared, buf, ops, active: None, barriers, flush_points, last_notifier: None, spares }
    }

    /// One batch of a stepped writer: everything queued, at once; a lazily
    /// committed log id is saved with every step (a simulator has no clock
    /// the 200 ms could be measured on).
    pub(crate) fn step(&mut self) -> Result<(), WalError> {
        self.shared.check_writer()?;
        let result = if self.take_batch() { self.execute_batch() } else { self.persist_committed(Duration::ZERO) };
        if let Err(error) = result {
            // recorded as the store's failure: later calls are refused
            self.fail(error);
            return self.shared.check_writer();
        }
        Ok(())
    }

    /// Takes everything queued, without waiting; false if nothing was.
    fn take_batch(&mut self) -> bool {
        let shared = self.shared.clone();
        let mut queue = shared.lock_queue();
        if queue.ops.is_empty() {
            return false;
        }
        mem::swap(&mut queue.buf, &mut self.buf);
        mem::swap(&mut queue.ops, &mut self.ops);
        mem::swap(&mut queue.flush_points, &mut self.flush_points);
        drop(queue);
        shared.room.notify_all();
        if let Some((_, notifier)) = self.flush_points.last() {
            self.last_notifier = Some(notifier.clone());
        }
        true
    }

    /// Runs the queued batch on the calling thread, for an appender that
    /// will report it durable itself (`AppendDurability::Durable`): the
    /// batch's flush points are dropped unreported. Their last one is the
    /// caller's append, and `flushed(x)` covers every entry before `x`.
    pub(crate) fn run_batch_here(&mut self) -> Result<(), WalError> {
        self.shared.check_writer()?;
        if !self.take_batch() {
            return Ok(());
        }
        self.flush_points.clear();
        if self.shared.io.bug == Some(PlantedBug::InlineDurableWithoutSync) {
            // the batch is left queued for the next step, as if handed off
            let shared = self.shared.clone();
            let mut queue = shared.lock_queue();
            std::mem::swap(&mut queue.buf, &mut self.buf);
            std::mem::swap(&mut queue.ops, &mut self.ops);
            return Ok(());
        }
        if let Err(error) = self.execute_batch() {
            // recorded as the store's failure: this and later calls are refused
            self.fail(error);
            return self.shared.check_writer();
        }
        Ok(())
    }

    /// Writes and syncs one batch, then reports it durable.
    fn execute_batch(&mut self) -> Result<(), WalError> {
        let mut ops = mem::take(&mut self.ops);
        let mut result = Ok(());
        for op in ops.drain(..) {
            match op {
                // After a failure keep the barriers, so `fail` answers them.
                Op::Barrier(reply) if result.is_err() => self.barriers.push(reply),
                op if result.is_ok() => result = self.execute(op),
                _ => {}
            }
        }
        self.ops = ops;
        result?;
        if self.shared.io.bug == Some(PlantedBug::ReportBeforeSync) {
            self.report_flushed();
        }
        self.sync_active()?;
        self.report_flushed();
        for barrier in self.barriers.drain(..) {
            let _ = barrier.send(Ok(()));
        }
        self.buf.clear();
        // A burst can grow the buffer far beyond the steady state; give it back.
        if self.buf.capacity() > 4 * crate::queue::MAX_QUEUED_BYTES {
            self.buf.shrink_to(crate::queue::MAX_QUEUED_BYTES);
        }
        self.persist_committed(self.committed_age())
    }

    /// Tells the notifier the batch's last append is durable.
    fn report_flushed(&mut self) {
        if let Some((log_id, notifier)) = self.flush_points.last() {
            notifier.flushed(*log_id);
        }
        self.flush_points.clear();
    }

    /// How long a changed committed log id may wait: a stepped writer saves
    /// it with each step.
    fn committed_age(&self) -> Duration {
        if self.shared.io.stepped {
            Duration::ZERO
        } else {
            COMMITTED_PERSIST_INTERVAL
        }
    }

    fn execute(&mut self, op: Op) -> Result<(), WalError> {
        match op {
            Op::Create { segment } => self.create_segment(segment),
            Op::Write { segment, offset, start, end } => {
                self.activate(segment)?;
                let active = self.active.as_mut().expect("just activated");
                if !active.dirty {
                    // recovery's landmark: what comes before this was synced
                    mark_write_start(&mut self.buf[start..end]);
                }
                active.file.write_all_at(&self.buf[start..end], offset).map_err(io_error("writing", &active.path))?;
                active.dirty = true;
                if let Some(spares) = self.spares.as_mut() {
                    spares.note_written(offset + (end - start) as u64);
                }
                Ok(())
            }
            Op::Cut { segment, len } => {
                self.activate(segment)?;
                let sync = self.shared.sync;
                let active = self.active.as_mut().expect("just activated");
                active.file.set_len(len).map_err(io_error("truncating", &active.path))?;
                if sync {
                    active.file.sync_data().map_err(io_error("syncing", &active.path))?;
                }
                active.dirty = false;
                Ok(())
            }
            Op::Delete { segment, sync_dir: must_sync } => {
                if self.active.as_ref().is_some_and(|a| a.first_index == segment) {
                    self.active = None;
                }
                let path = self.shared.dir.join(file_name(segment));
                match self.shared.io.fs.remove_file(&path) {
                    Ok(()) => {}
                    Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                    Err(error) => return Err(io_error("deleting", &path)(error)),
                }
                if must_sync && self.shared.sync {
                    sync_dir(&*self.shared.io.fs, &self.shared.dir)?;
                }
                Ok(())
            }
            Op::PersistMeta => self.shared.lock_meta().persist(),
            Op::Barrier(reply) => {
                self.barriers.push(reply);
                Ok(())
            }
        }
    }

    /// Makes `segment` the open segment, syncing the previous one first so a
    /// segment is always complete on disk before a later one has data.
    fn activate(&mut self, segment: LogIndex) -> Result<(), WalError> {
        if self.active.as_ref().is_none_or(|a| a.first_index != segment) {
            self.sync_active()?;
            let path = self.shared.dir.join(file_name(segment));
            let file = self.shared.io.fs.open(&path).map_err(io_error("opening", &path))?;
            self.active = Some(ActiveSegment { first_index: segment, file, path, dirty: false });
        }
        Ok(())
    }

    /// Creates a segment holding only its header (then zeros, if made from a
    /// spare): written to a temporary name, synced, renamed, directory synced,
    /// so a segment file that exists always has an intact header and a bad
    /// header always means corruption.
    fn create_segment(&mut self, segment: LogIndex) -> Result<(), WalError> {
        self.sync_active()?;
        let (dir, fs) = (&self.shared.dir, &*self.shared.io.fs);
        let path = dir.join(file_name(segment));
        let temp = dir.join(format!("{}{TEMP_SUFFIX}", file_name(segment)));
        let file = match self.spares.as_mut().and_then(|spares| spares.take(&temp)) {
            Some(file) => file,
            None => fs.create(&temp).map_err(io_error("creating", &temp))?,
        };
        file.write_all_at(&encode_header(segment), 0).map_err(io_error("writing", &temp))?;
        if self.shared.sync {
            file.sync_all().map_err(io_error("syncing", &temp))?;
        }
        fs.rename(&temp, &path).map_err(io_error("renaming into place", &path))?;
        if self.shared.sync {
            sync_dir(fs, dir)?;
        }
        self.active = Some(ActiveSegment { first_index: segment, file, path, dirty: false });
        Ok(())
    }

    fn sync_active(&mut self) -> Result<(), WalError> {
        if let Some(active) = self.active.as_mut().filter(|a| a.dirty) {
            if self.shared.sync {
                active.file.sync_data().map_err(io_error("syncing", &active.path))?;
            }
            active.dirty = false;
        }
        Ok(())
    }

    /// Writes a changed committed log id, unsynced, if it has waited at
    /// least `age` (durable with the next vote or purge, or at the next open).
    fn persist_committed(&self, age: Duration) -> Result<(), WalError> {
        let mut meta = self.shared.lock_meta();
        if meta.committed_dirty() && meta.last_persist().elapsed() >= age {
            meta.save_unsynced()?;
        }
        Ok(())
    }

    /// Records the failure, answers everyone waiting, and drops queued work:
    /// after a failed write or sync nothing later may be reported durable.
    fn fail(&mut self, error: WalError) {
        tracing::error!(%error, dir = %self.shared.dir.display(), "WAL writer stopped");
        let failure = self.shared.failure.get_or_init(|| Arc::new(error)).clone();
        for barrier in self.barriers.drain(..) {
            let _ = barrier.send(Err(failure.clone()));
        }
        let mut queue = self.shared.lock_queue();
        for op in queue.ops.drain(..) {
            if let Op::Barrier(reply) = op {
                let _ = reply.send(Err(failure.clone()));
            }
        }
        // the appends waiting for a sync will never be durable: say so now,
        // not at the store's next append (there may be none); with none
        // waiting, the store is refused from now on all the same
        let waiting = self.flush_points.first().or(queue.flush_points.first()).map(|(_, notifier)| notifier.clone());
        let waiting = waiting.or_else(|| self.last_notifier.take());
        queue.flush_points.clear();
        self.flush_points.clear();
        drop(queue);
        if let Some(notifier) = waiting {
            notifier.failed(WalError::WriterFailed(failure).into_storage("syncing appends to the WAL"));
        }
    }
}
