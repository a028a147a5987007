//! Gathers a snapshot arriving in chunks into the store's partial snapshot
//! (a file for the WAL), so no buffer of the snapshot's size is held and a
//! transfer cut short resumes where it stopped: a chunk of the same bytes
//! (same last log id, membership and checksum) at another offset is
//! answered with the offset held, whoever sends it.
//!
//! Only the chunk at offset 0 carries the snapshot's remembered changes
//! (see [`SnapshotChunk::meta`]): a transfer is taken up, and the store's
//! copy opened, from that chunk alone; a later chunk of a transfer not
//! being received (this node restarted, or was receiving another) is
//! answered with offset 0. The store then resumes what it kept of these
//! bytes, opened with the same metadata, and the sender goes on from there.

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
    /// Adds a chunk. The first chunk (offset 0) of other bytes than those
    /// being received switches to them, through `open` (which resumes what
    /// the store kept of them); a later one asks for the first; a chunk not
    /// at the offset held asks the sender to go on from there.
    pub(crate) fn accept(
        &mut self,
        chunk: SnapshotChunk<N>,
        open: impl FnOnce(&SnapshotMeta<N>, u32) -> Result<Box<dyn PartialSnapshot>, StorageError>,
    ) -> Result<ChunkOutcome<N>, StorageError> {
        if let Some((last, received)) = self.installing {
            return Ok(ChunkOutcome::Installing(last, received));
        }
        let same = |r: &Receiving<N>| {
            let (held, sent) = (&r.meta, &chunk.meta);
            held.last_log_id == sent.last_log_id && held.membership == sent.membership && r.checksum == chunk.checksum
        };
        if !self.current.as_ref().is_some_and(same) {
            if chunk.offset > 0 {
                // no remembered changes in it: the chunk at 0 brings them
                return Ok(ChunkOutcome::Continue(0));
            }
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
    use crate::snapshot::Snapshot;
    use crate::snapshot_data::SnapshotData;
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

    /// A snapshot of `len` bytes whose metadata remembers `changes` changes
    /// of a three-node cluster.
    fn snapshot_remembering(changes: u64, len: usize) -> Snapshot<BasicNode> {
        let nodes: std::collections::BTreeMap<_, _> =
            (1..=3).map(|id| (NodeId(id), BasicNode::new(format!("10.0.0.{id}:7000")))).collect();
        let left: Vec<_> = (1..=changes)
            .map(|i| {
                let voters = [1, 2, 3].into_iter().filter(|id| *id != 1 + i % 3).map(NodeId).collect();
                let membership = Membership::new(vec![voters], nodes.clone()).unwrap();
                let log_id = LogId::new(LeaderId::new(Term(1), NodeId(1)), LogIndex(i));
                StoredMembership { log_id: Some(log_id), membership: membership.with_change_id(Some(format!("c-{i}"))) }
            })
            .collect();
        let mut meta = meta(changes + 1);
        meta.changes.remember_left(&left, None, usize::MAX);
        assert_eq!(meta.changes.len() as u64, changes);
        let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
        Snapshot { meta, data: SnapshotData::from(data) }
    }

    fn cut(snapshot: &Snapshot<BasicNode>, offset: u64, chunk_bytes: usize) -> SnapshotChunk<BasicNode> {
        SnapshotChunk::cut(snapshot, offset, chunk_bytes, Vote::new_committed(Term(1), NodeId(1)), 1, None).unwrap()
    }

    #[test]
    fn the_remembered_changes_travel_once_per_transfer_not_in_every_chunk() {
        const CHUNK: usize = 64 * 1024;
        let snapshot = snapshot_remembering(1_000, 3 * CHUNK);
        let record = crate::engine::entry_bytes::encoded_size(&snapshot.meta.changes);
        assert!(record > 100_000, "a full record is large: {record} bytes");
        let first = cut(&snapshot, 0, CHUNK);
        assert_eq!(first.meta, snapshot.meta, "the first chunk carries the whole metadata");
        let second = cut(&snapshot, CHUNK as u64, CHUNK);
        let overhead = crate::engine::entry_bytes::encoded_size(&second) - CHUNK as u64;
        assert!(overhead < 1_000, "a later chunk carries no record: {overhead} bytes besides its data");
        assert_eq!(second.meta.last_log_id, snapshot.meta.last_log_id);
        assert_eq!(second.meta.membership, snapshot.meta.membership);
    }

    /// What a store on disk keeps of a transfer: the metadata it was opened
    /// with, the checksum and the bytes; resumed only for the same ones.
    type Disk = std::sync::Arc<std::sync::Mutex<Option<(SnapshotMeta<BasicNode>, u32, Vec<u8>)>>>;

    struct DiskPartial(Disk);

    impl PartialSnapshot for DiskPartial {
        fn received(&self) -> u64 {
            self.0.lock().unwrap().as_ref().unwrap().2.len() as u64
        }

        fn append(&mut self, data: &[u8]) -> Result<(), StorageError> {
            self.0.lock().unwrap().as_mut().unwrap().2.extend_from_slice(data);
            Ok(())
        }

        fn finish(&mut self, _: u32) -> Result<Option<SnapshotData>, StorageError> {
            Ok(Some(SnapshotData::from(self.0.lock().unwrap().as_ref().unwrap().2.clone())))
        }
    }

    fn open_on(
        disk: &Disk,
    ) -> impl Fn(&SnapshotMeta<BasicNode>, u32) -> Result<Box<dyn PartialSnapshot>, StorageError> {
        let disk = disk.clone();
        move |meta, checksum| {
            let mut held = disk.lock().unwrap();
            if !held.as_ref().is_some_and(|(m, c, _)| m == meta && *c == checksum) {
                *held = Some((meta.clone(), checksum, Vec::new()));
            }
            Ok(Box::new(DiskPartial(disk.clone())))
        }
    }

    #[test]
    fn a_transfer_resumed_after_a_restart_still_ends_with_the_remembered_changes() {
        const CHUNK: usize = 16;
        let snapshot = snapshot_remembering(50, 5 * CHUNK);
        let checksum = snapshot.data.checksum();
        let disk = Disk::default();
        let mut receiver = SnapshotReceiver::default();
        assert_eq!(next(receiver.accept(cut(&snapshot, 0, CHUNK), open_on(&disk)).unwrap()), 16);
        assert_eq!(next(receiver.accept(cut(&snapshot, 16, CHUNK), open_on(&disk)).unwrap()), 32);
        // the receiver restarts; the leader goes on where it was
        drop(receiver);
        let mut receiver = SnapshotReceiver::default();
        let (mut offset, mut sent) = (32, Vec::new());
        let receiving = loop {
            sent.push(offset);
            assert!(sent.len() < 20, "the transfer ends: {sent:?}");
            match receiver.accept(cut(&snapshot, offset, CHUNK), open_on(&disk)).unwrap() {
                ChunkOutcome::Continue(at) => offset = at,
                ChunkOutcome::Complete(receiving) => break receiving,
                ChunkOutcome::Installing(..) => panic!("nothing installs"),
            }
        };
        assert_eq!(receiving.meta, snapshot.meta, "the record arrived with the metadata: {sent:?}");
        assert_eq!(receiving.checksum, checksum);
        assert_eq!(receiving.partial.received(), 5 * CHUNK as u64);
        assert!(!sent.contains(&16), "what the store held was not sent again: {sent:?}");
        assert_eq!(disk.lock().unwrap().as_ref().unwrap().0, snapshot.meta, "the store's copy holds the record too");
    }

    #[test]
    fn a_receiver_holding_more_than_the_snapshot_has_ends_the_transfer_for_the_checksum_to_judge() {
        let mut receiver = SnapshotReceiver::default();
        assert_eq!(next(receiver.accept(chunk(1, 0, b"abcdefgh", false, 7), open).unwrap()), 8);
        assert!(matches!(receiver.accept(chunk(1, 4, b"", true, 7), open).unwrap(), ChunkOutcome::Complete(_)));
    }
}
