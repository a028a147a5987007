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
    /// them back as the snapshot's data, or `None` (and forgets them) when
    /// they do not have the crc32c `checksum` the sender named. May read
    /// the whole snapshot.
    fn finish(self: Box<Self>, checksum: u32) -> Result<Option<SnapshotData>, StorageError>;
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

    fn finish(self: Box<Self>, checksum: u32) -> Result<Option<SnapshotData>, StorageError> {
        let data = SnapshotData::from(self.bytes);
        Ok((data.checksum() == checksum).then_some(data))
    }
}
