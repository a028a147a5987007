//! Gathers a snapshot arriving in chunks into the store's partial snapshot
//! (a file for the WAL), so no buffer of the snapshot's size is held and a
//! transfer cut short resumes where it stopped: a chunk of the same bytes
//! (same metadata and checksum) at another offset is answered with the
//! offset held, whoever sends it.

use crate::message::SnapshotChunk;
use crate::snapshot::SnapshotMeta;
use crate::snapshot_sink::PartialSnapshot;
use crate::storage::StorageError;

/// The snapshot being received, if any, and the one being installed.
pub(crate) struct SnapshotReceiver<N> {
    current: Option<Receiving<N>>,
    /// (last log id, bytes) of the snapshot an install job is installing:
    /// its partial copy is the job's until it ends.
    pub(crate) installing: Option<(Option<crate::log_id::LogId>, u64)>,
}

/// A snapshot being received: what it is and where its bytes go.
pub(crate) struct Receiving<N> {
    pub(crate) meta: SnapshotMeta<N>,
    pub(crate) checksum: u32,
    pub(crate) partial: Box<dyn PartialSnapshot>,
}

impl<N> Default for SnapshotReceiver<N> {
    fn default() -> Self {
        Self { current: None, installing: None }
    }
}

/// What a chunk amounts to.
pub(crate) enum ChunkOutcome<N> {
    /// Continue from this offset.
    Continue(u64),
    /// Every byte arrived.
    Complete(Receiving<N>),
    /// A snapshot (last log id, bytes) is being installed: nothing is
    /// received until that ends.
    Installing(Option<crate::log_id::LogId>, u64),
}

impl<N: crate::Node> SnapshotReceiver<N> {
    /// Adds a chunk. A chunk of other bytes than those being received
    /// switches to them, through `open` (which resumes what the store kept
    /// of them); a chunk not at the offset held asks the sender to go on
    /// from there.
    pub(crate) fn accept(
        &mut self,
        chunk: SnapshotChunk<N>,
        open: impl FnOnce(&SnapshotMeta<N>, u32) -> Result<Box<dyn PartialSnapshot>, StorageError>,
    ) -> Result<ChunkOutcome<N>, StorageError> {
        if let Some((last, received)) = self.installing {
            return Ok(ChunkOutcome::Installing(last, received));
        }
        let same = |r: &Receiving<N>| r.meta == chunk.meta && r.checksum == chunk.checksum;
        if !self.current.as_ref().is_some_and(same) {
            self.current = None;
            let partial = open(&chunk.meta, chunk.checksum)?;
            self.current = Some(Receiving { meta: chunk.meta.clone(), checksum: chunk.checksum, partial });
        }
        let receiving = self.current.as_mut().expect("set above");
        let held = receiving.partial.received();
        if chunk.done && held > chunk.offset && held >= chunk.offset + chunk.data.len() as u64 {
            // holds more than the snapshot has: the checksum at the end
            // rejects the bytes and the store forgets them
            return Ok(ChunkOutcome::Complete(self.current.take().expect("set above")));
        }
        if chunk.offset != held {
            return Ok(ChunkOutcome::Continue(held));
        }
        receiving.partial.append(&chunk.data)?;
        if !chunk.done {
            return Ok(ChunkOutcome::Continue(receiving.partial.received()));
        }
        Ok(ChunkOutcome::Complete(self.current.take().expect("set above")))
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::log_id::LogId;
    use crate::membership::{Membership, StoredMembership};
    use crate::snapshot_sink::MemorySnapshot;
    use crate::vote::Vote;
    use crate::{BasicNode, LeaderId, LogIndex, NodeId, Term};

    fn meta(last: u64) -> SnapshotMeta<BasicNode> {
        let nodes = [(NodeId(1), BasicNode::new("127.0.0.1:1"))].into_iter().collect();
        let membership = StoredMembership { log_id: None, membership: Membership::new_uniform(nodes).unwrap() };
        SnapshotMeta {
            last_log_id: Some(LogId::new(LeaderId::new(Term(1), NodeId(1)), LogIndex(last))),
            membership,
            changes: Default::default(),
        }
    }

    fn chunk(leader: u64, offset: u64, data: &'static [u8], done: bool, checksum: u32) -> SnapshotChunk<BasicNode> {
        // leader n is elected in term n
        let vote = Vote::new_committed(Term(leader), NodeId(leader));
        let data = Bytes::from_static(data);
        SnapshotChunk { vote, meta: meta(9), offset, data, done, checksum, seq: 1, leader_node: None }
    }

    fn open(_: &SnapshotMeta<BasicNode>, _: u32) -> Result<Box<dyn PartialSnapshot>, StorageError> {
        Ok(Box::<MemorySnapshot>::default())
    }

    fn next(outcome: ChunkOutcome<BasicNode>) -> u64 {
        match outcome {
            ChunkOutcome::Continue(next) => next,
            ChunkOutcome::Complete(_) | ChunkOutcome::Installing(..) => panic!("not complete yet"),
        }
    }

    #[test]
    fn a_transfer_of_the_same_bytes_restarted_by_a_new_leader_resumes_where_it_stopped() {
        let mut receiver = SnapshotReceiver::default();
        assert_eq!(next(receiver.accept(chunk(1, 0, b"abcd", false, 7), open).unwrap()), 4);
        assert_eq!(next(receiver.accept(chunk(1, 4, b"efgh", false, 7), open).unwrap()), 8);
        // leader 2 starts the same snapshot's bytes from the beginning
        assert_eq!(next(receiver.accept(chunk(2, 0, b"abcd", false, 7), open).unwrap()), 8, "resumes, no byte again");
        match receiver.accept(chunk(2, 8, b"ij", true, 7), open).unwrap() {
            ChunkOutcome::Complete(receiving) => assert_eq!(receiving.partial.received(), 10),
            _ => panic!("complete expected"),
        }
    }

    #[test]
    fn other_bytes_of_the_same_snapshot_start_over() {
        let mut receiver = SnapshotReceiver::default();
        assert_eq!(next(receiver.accept(chunk(1, 0, b"abcd", false, 7), open).unwrap()), 4);
        // another leader's encoding of the same state: a mix would be corrupt
        assert_eq!(next(receiver.accept(chunk(2, 4, b"efgh", false, 8), open).unwrap()), 0);
        assert_eq!(next(receiver.accept(chunk(2, 0, b"ABCD", false, 8), open).unwrap()), 4);
    }

    #[test]
    fn a_receiver_holding_more_than_the_snapshot_has_ends_the_transfer_for_the_checksum_to_judge() {
        let mut receiver = SnapshotReceiver::default();
        assert_eq!(next(receiver.accept(chunk(1, 0, b"abcdefgh", false, 7), open).unwrap()), 8);
        assert!(matches!(receiver.accept(chunk(1, 4, b"", true, 7), open).unwrap(), ChunkOutcome::Complete(_)));
    }
}
