//! The WAL without threads, on a file system the caller gives: how a
//! deterministic simulator runs the real store.
//!
//! In production a writer thread group-commits appends and a helper thread
//! preallocates segments, on the operating system's file system. A simulator
//! needs the same code but no thread it does not schedule, and its own file
//! system (one that loses unsynced data in a crash). Opened with
//! [`WalStore::open_stepped`](crate::WalStore::open_stepped), the store queues
//! work exactly as before, and the caller runs each batch (write, sync,
//! report) with [`WalStepper::step`] when its simulated disk gets to it; the
//! spare segment is filled inline when the writer asks for it. Anything that
//! must wait for the writer (reading back, closing) runs the step itself.

use std::sync::Arc;

use ferraft::StorageError;

use crate::file_system::{FileSystem, StdFileSystem};
use crate::queue::Shared;

/// A deliberate WAL bug, for tests that show a simulator catches it. Never
/// set outside such tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlantedBug {
    /// The writer reports a batch durable before it syncs it, so a crash
    /// between the two loses entries reported durable.
    ReportBeforeSync,
    /// Recovery takes a record's length and payload without checking its
    /// checksum, so a torn write can come back as an entry.
    TrustRecordsWithoutChecksum,
    /// An append synced inline ([`append_inline`](ferraft::LogStore::append_inline))
    /// returns durable without its batch being synced, so a crash right
    /// after loses entries a follower acknowledged.
    InlineDurableWithoutSync,
}

/// How a store opened with [`WalStore::open_stepped`](crate::WalStore::open_stepped) does its I/O.
#[derive(Debug, Clone)]
pub struct SteppedIo {
    /// The file system holding the data dir.
    pub fs: Arc<dyn FileSystem>,
    /// The incarnation a new data dir gets (a random one otherwise): a
    /// simulator draws it from its seed.
    pub new_incarnation: u64,
    /// A deliberate bug (tests only).
    pub planted_bug: Option<PlantedBug>,
}

/// What the store's parts need to know about how I/O is done.
#[derive(Debug, Clone)]
pub(crate) struct Io {
    /// The file system.
    pub fs: Arc<dyn FileSystem>,
    /// No background threads: the caller steps the writer.
    pub stepped: bool,
    /// The incarnation of a new data dir, if not random.
    pub incarnation: Option<u64>,
    /// A deliberate bug (tests only).
    pub bug: Option<PlantedBug>,
}

impl Io {
    /// Threads on the operating system's file system: production.
    pub fn threaded() -> Self {
        Self { fs: Arc::new(StdFileSystem), stepped: false, incarnation: None, bug: None }
    }

    /// Steps the caller drives, on its file system.
    pub fn stepped(io: SteppedIo) -> Self {
        Self { fs: io.fs, stepped: true, incarnation: Some(io.new_incarnation), bug: io.planted_bug }
    }
}

/// Runs the writer of a stepped store: each [`step`](Self::step) writes
/// everything queued, syncs it and reports it durable through the store's
/// flush notifier, as one round of the writer thread would.
#[derive(Debug, Clone)]
pub struct WalStepper {
    shared: Arc<Shared>,
}

impl WalStepper {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// Runs one writer batch. Fails once a file operation failed (the
    /// store is then stopped, as when the writer thread fails).
    pub fn step(&self) -> Result<(), StorageError> {
        self.shared.step().map_err(|error| error.into_storage("stepping the WAL writer"))
    }

    /// Whether work is queued for the next step.
    pub fn has_work(&self) -> bool {
        !self.shared.lock_queue().ops.is_empty()
    }
}
