//! The application's state machine contract.

use std::io::{Read, Write};

use bytes::Bytes;

use crate::entry::AppData;
use crate::log_id::LogId;
use crate::storage::StorageError;

/// Encodes a point-in-time copy of a state machine; see [`StateMachine::snapshot_job`].
pub type SnapshotJob = Box<dyn FnOnce() -> Result<Bytes, StorageError> + Send>;

/// Writes a point-in-time copy of a state machine into a sink, on any
/// thread; see [`StateMachine::snapshot_writer`].
pub type SnapshotWriter = Box<dyn FnOnce(&mut dyn Write) -> Result<(), StorageError> + Send>;

/// Swaps a decoded snapshot into a state machine, on the Raft task; see
/// [`StateMachine::decode_snapshot`].
pub type SnapshotInstall<SM> = Box<dyn FnOnce(&mut SM) -> Result<(), StorageError> + Send>;

/// The replicated application: commands go in, in log order, on every node.
///
/// `apply` must be deterministic: two nodes that apply the same commands in the
/// same order must reach the same state and give the same responses. The state
/// may live in memory only: after a restart the node restores the latest
/// snapshot (kept by the [`crate::LogStore`]) and re-applies the log after it.
pub trait StateMachine: Send + 'static {
    /// What clients write.
    type Command: AppData;
    /// What a write returns to its client.
    type Response: Send + 'static;

    /// Applies one committed command.
    fn apply(&mut self, log_id: LogId, command: &Self::Command) -> Self::Response;

    /// Encodes the whole current state.
    fn snapshot(&mut self) -> Result<Bytes, StorageError>;

    /// A job that encodes the state as it is now, run on a blocking thread
    /// so the node goes on replicating and applying while a large state is
    /// encoded. Override it when a point-in-time copy is cheaper than the
    /// encoding (for example by cloning `Arc`-shared data); the default
    /// encodes at once, on the Raft task, with [`snapshot`](Self::snapshot).
    fn snapshot_job(&mut self) -> SnapshotJob {
        let data = self.snapshot();
        Box::new(move || data)
    }

    /// A job that writes the state as it is now into a sink the log store
    /// supplies (a file for the WAL), piece by piece, on a blocking thread:
    /// no buffer of the snapshot's size is needed. Taken on the Raft task,
    /// so it must only take a cheap point-in-time copy; the default wraps
    /// [`snapshot_job`](Self::snapshot_job) and writes its bytes whole.
    fn snapshot_writer(&mut self) -> SnapshotWriter {
        let job = self.snapshot_job();
        Box::new(move |sink| {
            let data = job()?;
            sink.write_all(&data).map_err(|e| StorageError::new("writing a snapshot", e))
        })
    }

    /// Replaces the whole state with a snapshot's.
    fn restore(&mut self, data: &Bytes) -> Result<(), StorageError>;

    /// Decodes a snapshot read piece by piece from `reader`, on a blocking
    /// thread, into a value the returned closure swaps into the state
    /// machine on the Raft task: that swap is the only part of an install
    /// the node waits for, so it should be cheap (a move). The default reads
    /// every byte into one buffer and calls [`restore`](Self::restore) in the
    /// swap: fine for small states.
    fn decode_snapshot(reader: &mut dyn Read) -> Result<SnapshotInstall<Self>, StorageError>
    where
        Self: Sized,
    {
        let mut all = Vec::new();
        reader.read_to_end(&mut all).map_err(|e| StorageError::new("reading a snapshot", e))?;
        let data = Bytes::from(all);
        Ok(Box::new(move |state_machine: &mut Self| state_machine.restore(&data)))
    }
}
