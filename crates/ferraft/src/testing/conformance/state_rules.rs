//! Rules about the vote, the committed log id and the snapshot.

use std::collections::BTreeMap;
use std::path::Path;

use crate::{BasicNode, ClusterId, LogStore, Membership, Snapshot, SnapshotMeta, StorageError, StoredMembership, Vote};
use std::io::Write;

use bytes::Bytes;

use super::log_rules::{restart, start};
use super::support::{append_durably, entries, log_id, TestData, TestDir};
use crate::node::{LogIndex, NodeId, Term};

/// A vote is durable once `save_vote` returns.
pub fn vote_survives_reopen<S, F>(open: &mut F)
where
    S: LogStore<TestData, BasicNode>,
    F: FnMut(&Path) -> Result<S, StorageError>,
{
    let dir = TestDir::new("vote_survives_reopen");
    let (mut store, _) = start(open, dir.path());
    store.save_vote(&Vote::new(Term(3), NodeId(2))).expect("save vote");
    let (_store, state) = restart(open, dir.path(), store);
    assert_eq!(state.vote, Some(Vote::new(Term(3), NodeId(2))));
}

/// A cluster id is durable once `save_cluster_id` returns, and a new store has none.
pub fn cluster_id_survives_reopen<S, F>(open: &mut F)
where
    S: LogStore<TestData, BasicNode>,
    F: FnMut(&Path) -> Result<S, StorageError>,
{
    let dir = TestDir::new("cluster_id_survives_reopen");
    let (mut store, state) = start(open, dir.path());
    assert_eq!(state.cluster_id, None, "a new store belongs to no cluster");
    let cluster_id = ClusterId::new(0x0123_4567_89ab_cdef).expect("not 0");
    store.save_cluster_id(cluster_id).expect("save cluster id");
    store.save_vote(&Vote::new(Term(2), NodeId(1))).expect("save vote");
    let (_store, state) = restart(open, dir.path(), store);
    assert_eq!(state.cluster_id, Some(cluster_id));
    assert_eq!(state.vote, Some(Vote::new(Term(2), NodeId(1))));
}

/// A store that keeps an incarnation keeps it with its data across reopens,
/// and a store over other (or wiped) data has another one.
pub fn incarnation_lives_with_the_data<S, F>(open: &mut F)
where
    S: LogStore<TestData, BasicNode>,
    F: FnMut(&Path) -> Result<S, StorageError>,
{
    let dir = TestDir::new("incarnation_lives_with_the_data");
    let (store, first) = start(open, dir.path());
    let Some(incarnation) = first.incarnation else { return };
    let (store, again) = restart(open, dir.path(), store);
    assert_eq!(again.incarnation, Some(incarnation), "the same data, the same incarnation");
    drop(store);
    let other = TestDir::new("incarnation_lives_with_the_data_other");
    let (_store, other_state) = start(open, other.path());
    assert_ne!(other_state.incarnation, Some(incarnation), "other data, another incarnation");
}

/// The last saved vote is the one read back.
pub fn latest_vote_wins_after_reopen<S, F>(open: &mut F)
where
    S: LogStore<TestData, BasicNode>,
    F: FnMut(&Path) -> Result<S, StorageError>,
{
    let dir = TestDir::new("latest_vote_wins_after_reopen");
    let (mut store, _) = start(open, dir.path());
    for term in 1..=5 {
        store.save_vote(&Vote::new(Term(term), NodeId(2))).expect("save vote");
    }
    store.save_vote(&Vote::new_committed(Term(5), NodeId(2))).expect("save vote");
    let (mut store, state) = restart(open, dir.path(), store);
    assert_eq!(state.vote, Some(Vote::new_committed(Term(5), NodeId(2))));
    store.save_vote(&Vote::new(Term(6), NodeId(3))).expect("save vote");
    let (_store, state) = restart(open, dir.path(), store);
    assert_eq!(state.vote, Some(Vote::new(Term(6), NodeId(3))));
}

/// The committed log id may lag after a restart but never runs ahead.
pub fn committed_after_reopen_is_never_newer_than_saved<S, F>(open: &mut F)
where
    S: LogStore<TestData, BasicNode>,
    F: FnMut(&Path) -> Result<S, StorageError>,
{
    let dir = TestDir::new("committed_after_reopen_is_never_newer_than_saved");
    let (mut store, _) = start(open, dir.path());
    append_durably(&mut store, &entries(1, 1..=10));
    store.save_committed(Some(log_id(1, 4))).expect("save committed");
    store.save_committed(Some(log_id(1, 7))).expect("save committed");
    let (_store, state) = restart(open, dir.path(), store);
    assert!(state.committed <= Some(log_id(1, 7)), "committed {:?} is newer than saved", state.committed);
}

/// A saved snapshot is read back whole.
pub fn snapshot_survives_reopen<S, F>(open: &mut F)
where
    S: LogStore<TestData, BasicNode>,
    F: FnMut(&Path) -> Result<S, StorageError>,
{
    let dir = TestDir::new("snapshot_survives_reopen");
    let (mut store, _) = start(open, dir.path());
    append_durably(&mut store, &entries(1, 1..=10));
    let snapshot = test_snapshot(8, 100_000);
    store.save_snapshot(&snapshot).expect("save snapshot");
    store.purge(log_id(1, 8)).expect("purge");
    let (_store, state) = restart(open, dir.path(), store);
    assert_eq!(state.snapshot, Some(snapshot));
    assert_eq!(state.last_purged, Some(log_id(1, 8)));
    assert_eq!(state.entries, entries(1, 9..=10));
}

/// Saving a snapshot replaces the previous one.
pub fn newer_snapshot_replaces_older<S, F>(open: &mut F)
where
    S: LogStore<TestData, BasicNode>,
    F: FnMut(&Path) -> Result<S, StorageError>,
{
    let dir = TestDir::new("newer_snapshot_replaces_older");
    let (mut store, _) = start(open, dir.path());
    store.save_snapshot(&test_snapshot(5, 2_000)).expect("save snapshot");
    store.save_snapshot(&test_snapshot(9, 10)).expect("save snapshot");
    let (_store, state) = restart(open, dir.path(), store);
    assert_eq!(state.snapshot, Some(test_snapshot(9, 10)));
}

/// A snapshot written into a `snapshot_sink` (on another thread, as the
/// runtime does) replaces the saved one only once `save_staged_snapshot`
/// returns; a crash before leaves the old one.
pub fn staged_snapshot_replaces_the_saved_one_only_when_saved<S, F>(open: &mut F)
where
    S: LogStore<TestData, BasicNode>,
    F: FnMut(&Path) -> Result<S, StorageError>,
{
    let dir = TestDir::new("staged_snapshot");
    let (mut store, _) = start(open, dir.path());
    store.save_snapshot(&test_snapshot(5, 2_000)).expect("save snapshot");
    let newer = test_snapshot(9, 3_000);
    write_in_sink(&mut store, &newer);
    let (mut store, state) = restart(open, dir.path(), store);
    assert_eq!(state.snapshot, Some(test_snapshot(5, 2_000)), "a staged snapshot is not yet the saved one");
    let staged = write_in_sink(&mut store, &newer);
    store.save_staged_snapshot(&staged).expect("save the staged snapshot");
    let (_store, state) = restart(open, dir.path(), store);
    assert_eq!(state.snapshot, Some(newer));
}

/// Writes `snapshot`'s bytes into a sink of `store` on another thread.
fn write_in_sink<S: LogStore<TestData, BasicNode>>(
    store: &mut S,
    snapshot: &Snapshot<BasicNode>,
) -> Snapshot<BasicNode> {
    let mut sink = store.snapshot_sink(&snapshot.meta).expect("a sink");
    let bytes = snapshot.data.to_bytes().expect("test data in memory");
    let written = std::thread::spawn(move || {
        sink.write_all(&bytes).map_err(|e| StorageError::new("writing", e))?;
        sink.finish()
    });
    let data = written.join().expect("the writer runs").expect("write the snapshot");
    assert_eq!(data, snapshot.data);
    Snapshot { meta: snapshot.meta.clone(), data }
}

/// A partial snapshot resumes (or starts over, for a store that keeps none)
/// only for the same bytes; bytes that do not have the checksum the sender
/// named are refused, by `finish` or by a checked read of what it hands
/// back, and once discarded no transfer resumes onto them.
pub fn partial_snapshot_resumes_only_the_same_bytes<S, F>(open: &mut F)
where
    S: LogStore<TestData, BasicNode>,
    F: FnMut(&Path) -> Result<S, StorageError>,
{
    let dir = TestDir::new("partial_snapshot");
    let (mut store, _) = start(open, dir.path());
    let snapshot = test_snapshot(9, 3_000);
    let (meta, checksum) = (&snapshot.meta, snapshot.data.checksum());
    let bytes = snapshot.data.to_bytes().expect("test data in memory");
    let mut partial = store.partial_snapshot(meta, checksum).expect("a partial snapshot");
    assert_eq!(partial.received(), 0, "a new transfer starts empty");
    partial.append(&bytes[..1_000]).expect("append");
    drop(partial);
    let (mut store, _) = restart(open, dir.path(), store);
    let partial = store.partial_snapshot(meta, checksum).expect("a partial snapshot");
    assert!([0, 1_000].contains(&partial.received()), "resumed at {}", partial.received());
    drop(partial);
    let mut other = store.partial_snapshot(meta, checksum ^ 1).expect("a partial snapshot");
    assert_eq!(other.received(), 0, "other bytes of the same snapshot never resume these");
    other.append(&bytes).expect("append");
    let refused = match other.finish(checksum ^ 1).expect("finish") {
        None => true,
        Some(data) => !data.checked_reader().rest_matches().expect("read the bytes back"),
    };
    assert!(refused, "bytes that do not match the checksum named are refused");
    other.discard().expect("discard");
    let forgotten = store.partial_snapshot(meta, checksum ^ 1).expect("a partial snapshot");
    assert_eq!(forgotten.received(), 0, "discarded bytes are not resumed");
    drop(forgotten);
    let mut partial = store.partial_snapshot(meta, checksum).expect("a partial snapshot");
    let held = partial.received() as usize;
    partial.append(&bytes[held..]).expect("append");
    let data = partial.finish(checksum).expect("finish").expect("bytes with the named checksum");
    assert!(data.checked_reader().rest_matches().expect("read the bytes back"));
    assert_eq!(data, snapshot.data);
}

/// Log, vote and purge point survive a series of restarts with work between them.
pub fn state_survives_many_reopens<S, F>(open: &mut F)
where
    S: LogStore<TestData, BasicNode>,
    F: FnMut(&Path) -> Result<S, StorageError>,
{
    let dir = TestDir::new("state_survives_many_reopens");
    let (mut store, _) = start(open, dir.path());
    for round in 1..=5u64 {
        append_durably(&mut store, &entries(round, round * 20 - 19..=round * 20));
        store.save_vote(&Vote::new_committed(Term(round), NodeId(1))).expect("save vote");
        if round == 3 {
            store.purge(log_id(2, 30)).expect("purge");
        }
        let (reopened, state) = restart(open, dir.path(), store);
        store = reopened;
        let expected: Vec<_> = (1..=round)
            .flat_map(|term| entries(term, term * 20 - 19..=term * 20))
            .filter(|entry| round < 3 || entry.log_id.index > LogIndex(30))
            .collect();
        assert_eq!(state.entries, expected, "after round {round}");
        assert_eq!(state.vote, Some(Vote::new_committed(Term(round), NodeId(1))));
    }
}

/// A snapshot covering `last_index` with `data_bytes` of state.
fn test_snapshot(last_index: u64, data_bytes: usize) -> Snapshot<BasicNode> {
    let nodes: BTreeMap<_, _> = [(NodeId(1), BasicNode::new("127.0.0.1:7001"))].into_iter().collect();
    let membership = Membership::new_uniform(nodes).expect("one voter is a valid membership");
    Snapshot {
        meta: SnapshotMeta {
            last_log_id: Some(log_id(1, last_index)),
            membership: StoredMembership { log_id: Some(log_id(1, 1)), membership },
            changes: Default::default(),
        },
        data: Bytes::from(vec![last_index as u8; data_bytes]).into(),
    }
}
