//! Installing a snapshot received from a leader, off the host: the store's
//! partial copy is checked against the sender's checksum and made durable,
//! and the state machine decodes it piece by piece, wherever the
//! [`JobSpawner`](super::JobSpawner) runs jobs; a store with a
//! [`SnapshotSaver`] also makes it current there (a rename into place). The
//! host then only swaps the decoded state in
//! ([`NodeHost::snapshot_decoded`](super::NodeHost::snapshot_decoded)).

use std::any::Any;
use std::io::Read;

use crate::node::NodeId;
use crate::snapshot::{Snapshot, SnapshotMeta};
use crate::snapshot_saver::{MadeCurrent, SnapshotSaver};
use crate::snapshot_sink::PartialSnapshot;
use crate::storage::StorageError;

/// Decodes a snapshot into the state machine's install closure, type-erased
/// so the spawner need not know the state machine.
pub(crate) type Decode = Box<dyn FnOnce(&mut dyn Read) -> Result<Box<dyn Any + Send>, StorageError> + Send>;

/// A received snapshot, the state machine's (type-erased) install, and
/// what the job did to make the snapshot current (`None`: left to the host).
pub(crate) type Decoded<N> = (Snapshot<N>, Box<dyn Any + Send>, Option<MadeCurrent>);

/// The work of one install, ready to run on any thread.
pub struct InstallTask<N> {
    pub(crate) from: NodeId,
    pub(crate) seq: u64,
    pub(crate) meta: SnapshotMeta<N>,
    pub(crate) checksum: u32,
    pub(crate) partial: Box<dyn PartialSnapshot>,
    pub(crate) decode: Decode,
    pub(crate) saver: Option<Box<dyn SnapshotSaver<N>>>,
}

impl<N> std::fmt::Debug for InstallTask<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstallTask").field("from", &self.from).finish_non_exhaustive()
    }
}

impl<N: Clone> InstallTask<N> {
    /// Finishes the received bytes, decodes them and, with a saver, makes
    /// them the current snapshot: the decode comes first, so a state machine
    /// that cannot read them never leaves them current on disk.
    pub fn run(self) -> SnapshotDecoded<N> {
        let Self { from, seq, meta, checksum, partial, decode, saver } = self;
        let result = partial.finish(checksum).and_then(|finished| match finished {
            None => Ok(None),
            Some(data) => {
                let install =
                    super::job_spawner::state_machine_part("decoding a snapshot", || decode(&mut data.reader()))?;
                let snapshot = Snapshot { meta: meta.clone(), data };
                let (snapshot, made) = super::snapshot_job::made_current(saver, snapshot)?;
                Ok(Some((snapshot, install, made)))
            }
        });
        SnapshotDecoded { from, seq, meta, result }
    }
}

/// What an [`InstallTask`] produced: the snapshot's data and the state
/// machine's install closure, `None` when the bytes did not match the
/// sender's checksum (they are forgotten and asked for again).
pub struct SnapshotDecoded<N> {
    pub(crate) from: NodeId,
    pub(crate) seq: u64,
    pub(crate) meta: SnapshotMeta<N>,
    pub(crate) result: Result<Option<Decoded<N>>, StorageError>,
}

impl<N> std::fmt::Debug for SnapshotDecoded<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotDecoded").field("from", &self.from).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log_id::LogId;
    use crate::membership::{Membership, StoredMembership};
    use crate::snapshot_sink::MemorySnapshot;
    use crate::{BasicNode, LeaderId, LogIndex, Term};

    #[test]
    fn a_state_machine_that_panics_decoding_gives_an_error_not_a_lost_answer() {
        let nodes = [(NodeId(1), BasicNode::new("127.0.0.1:1"))].into_iter().collect();
        let membership = StoredMembership { log_id: None, membership: Membership::new_uniform(nodes).unwrap() };
        let meta =
            SnapshotMeta { last_log_id: Some(LogId::new(LeaderId::new(Term(1), NodeId(1)), LogIndex(9))), membership };
        let partial = Box::<MemorySnapshot>::default();
        let checksum = crate::snapshot::SnapshotData::from(Vec::new()).checksum();
        let decode: Decode = Box::new(|_| panic!("a state machine bug"));
        // without an answer the receiver would refuse every chunk, installing forever
        let decoded = InstallTask { from: NodeId(2), seq: 1, meta, checksum, partial, decode, saver: None }.run();
        assert!(decoded.result.is_err());
    }
}
