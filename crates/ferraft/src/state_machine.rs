//! The application's state machine contract.

use bytes::Bytes;

use crate::entry::AppData;
use crate::log_id::LogId;
use crate::storage::StorageError;

/// Encodes a point-in-time copy of a state machine; see [`StateMachine::snapshot_job`].
pub type SnapshotJob = Box<dyn FnOnce() -> Result<Bytes, StorageError> + Send>;

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

    /// Replaces the whole state with a snapshot's.
    fn restore(&mut self, data: &Bytes) -> Result<(), StorageError>;
}
