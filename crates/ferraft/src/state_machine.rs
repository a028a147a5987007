//! The application's state machine contract.

use bytes::Bytes;

use crate::entry::AppData;
use crate::log_id::LogId;
use crate::storage::StorageError;

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

    /// Replaces the whole state with a snapshot's.
    fn restore(&mut self, data: &Bytes) -> Result<(), StorageError>;
}
