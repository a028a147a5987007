//! A periodic or on-demand snapshot built off the host: the state machine's
//! point-in-time copy is taken on the host, then its encoding streams into
//! the store's sink (a temporary file for the WAL) wherever the
//! [`JobSpawner`](super::JobSpawner) puts the job (a blocking thread under
//! tokio, a scheduled event in the simulator), which also makes it current
//! when the store has a [`SnapshotSaver`], and the result comes back to
//! [`NodeHost::snapshot_built`](super::NodeHost::snapshot_built).

use std::io::{BufWriter, Write};

use crate::snapshot::{Snapshot, SnapshotMeta};
use crate::snapshot_saver::{MadeCurrent, SnapshotSaver};
use crate::snapshot_sink::SnapshotSink;
use crate::state_machine::SnapshotWriter;
use crate::storage::StorageError;

/// Bytes gathered before each write to the sink: state machines may write
/// in tiny pieces, and each sink write may be a system call.
const SINK_BUFFER_BYTES: usize = 256 * 1024;

/// The work of one snapshot, ready to run on any thread.
pub struct SnapshotTask<N> {
    pub(crate) meta: SnapshotMeta<N>,
    pub(crate) writer: SnapshotWriter,
    pub(crate) sink: Box<dyn SnapshotSink>,
    pub(crate) saver: Option<Box<dyn SnapshotSaver<N>>>,
}

impl<N> std::fmt::Debug for SnapshotTask<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotTask").finish_non_exhaustive()
    }
}

impl<N> SnapshotTask<N> {
    /// Writes the state into the store's sink, makes it durable there and,
    /// with a saver, current.
    pub fn run(self) -> SnapshotBuilt<N> {
        let Self { meta, writer, mut sink, saver } = self;
        let written = {
            let mut buffered = BufWriter::with_capacity(SINK_BUFFER_BYTES, &mut sink);
            super::job_spawner::state_machine_part("encoding a snapshot", || writer(&mut buffered))
                .and_then(|()| buffered.flush().map_err(|e| StorageError::new("writing a snapshot", e)))
        };
        let result = written.and_then(|()| sink.finish()).map(|data| Snapshot { meta, data });
        let result = result.and_then(|snapshot| made_current(saver, snapshot));
        SnapshotBuilt { result }
    }
}

/// Makes `snapshot` current through `saver`, if the store has one; `None`
/// leaves that to the host.
pub(crate) fn made_current<N>(
    saver: Option<Box<dyn SnapshotSaver<N>>>,
    snapshot: Snapshot<N>,
) -> Result<(Snapshot<N>, Option<MadeCurrent>), StorageError> {
    match saver {
        Some(mut saver) => saver.make_current(&snapshot).map(|made| (snapshot, Some(made))),
        None => Ok((snapshot, None)),
    }
}

/// What a [`SnapshotTask`] produced: the snapshot and what its job did to
/// make it current (`None`: the host makes it current).
#[derive(Debug)]
pub struct SnapshotBuilt<N> {
    pub(crate) result: Result<(Snapshot<N>, Option<MadeCurrent>), StorageError>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::membership::{Membership, StoredMembership};
    use crate::snapshot_sink::MemorySnapshot;
    use crate::{BasicNode, NodeId};

    #[test]
    fn a_state_machine_that_panics_encoding_gives_an_error_not_a_lost_answer() {
        let nodes = [(NodeId(1), BasicNode::new("127.0.0.1:1"))].into_iter().collect();
        let membership = StoredMembership { log_id: None, membership: Membership::new_uniform(nodes).unwrap() };
        let meta = SnapshotMeta { last_log_id: None, membership, changes: Default::default() };
        let writer: SnapshotWriter = Box::new(|_| panic!("a state machine bug"));
        // without an answer the host would never start another snapshot
        let built = SnapshotTask { meta, writer, sink: Box::<MemorySnapshot>::default(), saver: None }.run();
        assert!(built.result.is_err());
    }
}
