//! Makes snapshots current from the job that finished them (see
//! [`ferraft::SnapshotSaver`]): a build job and an install job may finish in
//! either order, so the rename happens under one lock and never puts an
//! older snapshot over a newer one.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use ferraft::log_id::index_of;
use ferraft::{MadeCurrent, Node, Snapshot, SnapshotSaver, StorageError};

use crate::file_system::FileSystem;
use crate::snapshot_file;

/// The store's current snapshot, shared with the savers of running jobs.
pub(crate) type CurrentSnapshot<N> = Arc<Mutex<Option<Snapshot<N>>>>;

/// Locks the current snapshot; a job that panicked holding it left it whole
/// (it is replaced only after the rename succeeded).
pub(crate) fn lock<N>(current: &CurrentSnapshot<N>) -> MutexGuard<'_, Option<Snapshot<N>>> {
    current.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A [`SnapshotSaver`] over a WAL dir.
pub(crate) struct WalSnapshotSaver<N> {
    pub(crate) fs: Arc<dyn FileSystem>,
    pub(crate) dir: PathBuf,
    pub(crate) sync: bool,
    pub(crate) current: CurrentSnapshot<N>,
}

impl<N: Node> SnapshotSaver<N> for WalSnapshotSaver<N> {
    fn make_current(&mut self, snapshot: &Snapshot<N>) -> Result<MadeCurrent, StorageError> {
        let mut current = lock(&self.current);
        let held = current.as_ref().map(|c| index_of(c.meta.last_log_id));
        if held.is_some_and(|held| held >= index_of(snapshot.meta.last_log_id)) {
            return Ok(MadeCurrent::Covered);
        }
        let saved = snapshot_file::make_current(&*self.fs, &self.dir, snapshot, self.sync)
            .map_err(|error| error.into_storage("making a snapshot current"))?;
        *current = Some(saved);
        Ok(MadeCurrent::Saved)
    }
}
