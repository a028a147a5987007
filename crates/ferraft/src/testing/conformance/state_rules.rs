//! Rules about the vote, the committed log id and the snapshot.

use std::collections::BTreeMap;
use std::path::Path;

use crate::{BasicNode, ClusterId, LogStore, Membership, Snapshot, SnapshotMeta, StorageError, StoredMembership, Vote};
use bytes::Bytes;

use super::log_rules::{restart, start};
use super::support::{append_durably, entries, log_id, TestData, TestDir};

/// A vote is durable once `save_vote` returns.
pub fn vote_survives_reopen<S, F>(open: &mut F)
where
    S: LogStore<TestData, BasicNode>,
    F: FnMut(&Path) -> Result<S, StorageError>,
{
    let dir = TestDir::new("vote_survives_reopen");
    let (mut store, _) = start(open, dir.path());
    store.save_vote(&Vote::new(3, 2)).expect("save vote");
    let (_store, state) = restart(open, dir.path(), store);
    assert_eq!(state.vote, Some(Vote::new(3, 2)));
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
    store.save_vote(&Vote::new(2, 1)).expect("save vote");
    let (_store, state) = restart(open, dir.path(), store);
    assert_eq!(state.cluster_id, Some(cluster_id));
    assert_eq!(state.vote, Some(Vote::new(2, 1)));
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
        store.save_vote(&Vote::new(term, 2)).expect("save vote");
    }
    store.save_vote(&Vote::new_committed(5, 2)).expect("save vote");
    let (mut store, state) = restart(open, dir.path(), store);
    assert_eq!(state.vote, Some(Vote::new_committed(5, 2)));
    store.save_vote(&Vote::new(6, 3)).expect("save vote");
    let (_store, state) = restart(open, dir.path(), store);
    assert_eq!(state.vote, Some(Vote::new(6, 3)));
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

/// A snapshot written by a `snapshot_stager` job replaces the saved one only
/// once `save_staged_snapshot` returns; a crash before leaves the old one.
pub fn staged_snapshot_replaces_the_saved_one_only_when_saved<S, F>(open: &mut F)
where
    S: LogStore<TestData, BasicNode>,
    F: FnMut(&Path) -> Result<S, StorageError>,
{
    let dir = TestDir::new("staged_snapshot");
    let (mut store, _) = start(open, dir.path());
    store.save_snapshot(&test_snapshot(5, 2_000)).expect("save snapshot");
    if let Some(stage) = store.snapshot_stager() {
        let staged = test_snapshot(9, 3_000);
        // Staged on another thread, as the runtime does; then a crash.
        std::thread::spawn(move || stage(&staged)).join().expect("stager runs").expect("stage snapshot");
        let (reopened, state) = restart(open, dir.path(), store);
        assert_eq!(state.snapshot, Some(test_snapshot(5, 2_000)), "a staged snapshot is not yet the saved one");
        store = reopened;
    }
    let newer = test_snapshot(9, 3_000);
    if let Some(stage) = store.snapshot_stager() {
        let staged = newer.clone();
        std::thread::spawn(move || stage(&staged)).join().expect("stager runs").expect("stage snapshot");
    }
    store.save_staged_snapshot(&newer).expect("save the staged snapshot");
    let (_store, state) = restart(open, dir.path(), store);
    assert_eq!(state.snapshot, Some(newer));
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
        store.save_vote(&Vote::new_committed(round, 1)).expect("save vote");
        if round == 3 {
            store.purge(log_id(2, 30)).expect("purge");
        }
        let (reopened, state) = restart(open, dir.path(), store);
        store = reopened;
        let expected: Vec<_> = (1..=round)
            .flat_map(|term| entries(term, term * 20 - 19..=term * 20))
            .filter(|entry| round < 3 || entry.log_id.index > 30)
            .collect();
        assert_eq!(state.entries, expected, "after round {round}");
        assert_eq!(state.vote, Some(Vote::new_committed(round, 1)));
    }
}

/// A snapshot covering `last_index` with `data_bytes` of state.
fn test_snapshot(last_index: u64, data_bytes: usize) -> Snapshot<BasicNode> {
    let nodes: BTreeMap<_, _> = [(1, BasicNode::new("127.0.0.1:7001"))].into_iter().collect();
    let membership = Membership::new_uniform(nodes).expect("one voter is a valid membership");
    Snapshot {
        meta: SnapshotMeta {
            last_log_id: Some(log_id(1, last_index)),
            membership: StoredMembership { log_id: Some(log_id(1, 1)), membership },
        },
        data: Bytes::from(vec![last_index as u8; data_bytes]),
    }
}
