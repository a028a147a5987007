//! Where the host's off-task work runs: snapshot encoding and decoding, and
//! reads of the log for lagging followers. A blocking thread under tokio, a scheduled
//! event in the simulator, so the simulator runs the same jobs the runtime
//! does, at times it chooses.

use super::chunk_reader::ChunkTask;
use super::install_job::InstallTask;
use super::log_reader::ReadTask;
use super::snapshot_job::SnapshotTask;

/// Runs the host's jobs off the host. Each result must come back to the
/// host (`snapshot_built`, `entries_read`) unless the node stopped meanwhile.
pub trait JobSpawner<C, N>: Send {
    /// Starts a snapshot task.
    fn spawn_snapshot(&mut self, task: SnapshotTask<N>);
    /// Starts a read of the log for a follower.
    fn spawn_read(&mut self, task: ReadTask<C, N>);
    /// Starts the install of a snapshot received from a leader; its result
    /// goes to `snapshot_decoded`.
    fn spawn_install(&mut self, task: InstallTask<N>);
    /// Starts the read of a snapshot chunk for a node being sent a snapshot;
    /// its result goes to `snapshot_chunk_read`. Reads for one node should
    /// finish in the order they were started (one out of order is sent
    /// again, after the receiver refuses it).
    fn spawn_chunk_read(&mut self, task: ChunkTask<N>);
}

/// Runs the state machine's part of a job, a panic in it becoming an error
/// for `action`: a job that unwinds sends no result, and the host would wait
/// for it forever (no snapshot again, or a received one installing forever).
pub(crate) fn state_machine_part<T>(
    action: &'static str,
    part: impl FnOnce() -> Result<T, crate::storage::StorageError>,
) -> Result<T, crate::storage::StorageError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(part))
        .unwrap_or_else(|_| Err(crate::storage::StorageError::new(action, "the state machine panicked")))
}
