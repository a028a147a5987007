//! A periodic snapshot built off the host: the state machine's point-in-time
//! copy is taken on the host, its encoding and the store's staging write run
//! wherever the [`JobSpawner`](super::JobSpawner) puts them (a blocking thread under tokio,
//! a scheduled event in the simulator), and the result comes back to
//! [`NodeHost::snapshot_built`](super::NodeHost::snapshot_built).

use crate::snapshot::{Snapshot, SnapshotMeta};
use crate::state_machine::SnapshotJob;
use crate::storage::{StageSnapshot, StorageError};

/// The work of one snapshot, ready to run on any thread.
pub struct SnapshotTask<N> {
    pub(crate) meta: SnapshotMeta<N>,
    pub(crate) job: SnapshotJob,
    pub(crate) stager: Option<StageSnapshot<N>>,
}

impl<N> std::fmt::Debug for SnapshotTask<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotTask").field("staged", &self.stager.is_some()).finish_non_exhaustive()
    }
}

impl<N> SnapshotTask<N> {
    /// Encodes the state and, when the store stages snapshots, writes it to
    /// the staging place.
    pub fn run(self) -> SnapshotBuilt<N> {
        let Self { meta, job, stager } = self;
        let staged = stager.is_some();
        let result = job().and_then(|data| {
            let snapshot = Snapshot { meta, data };
            stager.map_or(Ok(()), |stage| stage(&snapshot)).map(|()| snapshot)
        });
        SnapshotBuilt { result, staged }
    }
}

/// What a [`SnapshotTask`] produced, for the host to make current.
#[derive(Debug)]
pub struct SnapshotBuilt<N> {
    pub(crate) result: Result<Snapshot<N>, StorageError>,
    /// Written to the store's staging place (made current by a rename).
    pub(crate) staged: bool,
}
