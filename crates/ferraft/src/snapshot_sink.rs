//! Where snapshot bytes are written as they are made or received: the log
//! store supplies the place (a file in the WAL), the node writes into it
//! piece by piece, and only a finished, durable copy is made current (see
//! [`LogStore::save_staged_snapshot`](crate::LogStore::save_staged_snapshot)).

use std::io::{self, Write};

use crate::snapshot_data::SnapshotData;
use crate::storage::StorageError;

/// Takes a new snapshot's bytes as the state machine writes them, on a
/// blocking thread; see [`LogStore::snapshot_sink`](crate::LogStore::snapshot_sink).
pub trait SnapshotSink: Write + Send {
    /// Makes every byte written durable, not yet current, and hands them
    /// back as the snapshot's data.
    fn finish(self: Box<Self>) -> Result<SnapshotData, StorageError>;
}

/// A snapshot arriving from a leader in chunks; see
/// [`LogStore::partial_snapshot`](crate::LogStore::partial_snapshot). A store
/// that keeps it on disk lets a transfer cut short (leader change, lost
/// messages, a restart) resume where it stopped instead of from byte 0.
pub trait PartialSnapshot: Send {
    /// Bytes held so far: where the transfer resumes.
    fn received(&self) -> u64;

    /// Adds the next bytes, at offset [`received`](Self::received).
    fn append(&mut self, data: &[u8]) -> Result<(), StorageError>;

    /// Every byte arrived: makes them durable, not yet current, and hands
    /// them back as the snapshot's data, whose
    /// [`checksum`](SnapshotData::checksum) is the crc32c `checksum` the
    /// sender named. A store may check them here and answer `None` (and
    /// forget them) when they differ, or leave that to the install: it
    /// decodes them through [`SnapshotData::checked_reader`], the one read of
    /// a snapshot on disk, and calls [`discard`](Self::discard) when they
    /// differ. Either way bytes that differ are never installed.
    fn finish(&mut self, checksum: u32) -> Result<Option<SnapshotData>, StorageError>;

    /// The bytes [`finish`](Self::finish) handed back are not the sender's
    /// (found as the install read them): forgets them, so that no transfer
    /// resumes onto them. The default does nothing, for a store whose
    /// `finish` checks them itself.
    fn discard(self: Box<Self>) -> Result<(), StorageError> {
        Ok(())
    }
}

/// Snapshot bytes kept in memory: the default for stores that keep
/// everything in memory.
#[derive(Debug, Default)]
pub struct MemorySnapshot {
    bytes: Vec<u8>,
}

impl Write for MemorySnapshot {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl SnapshotSink for MemorySnapshot {
    fn finish(self: Box<Self>) -> Result<SnapshotData, StorageError> {
        Ok(SnapshotData::from(self.bytes))
    }
}

impl PartialSnapshot for MemorySnapshot {
    fn received(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn append(&mut self, data: &[u8]) -> Result<(), StorageError> {
        self.bytes.extend_from_slice(data);
        Ok(())
    }

    /// Checks the bytes at once: in memory that is no second read of a file.
    fn finish(&mut self, checksum: u32) -> Result<Option<SnapshotData>, StorageError> {
        let data = SnapshotData::from(std::mem::take(&mut self.bytes));
        Ok((data.checksum() == checksum).then_some(data))
    }
}
