//! Snapshots written into a sink wait under a staged name until they are
//! made current. One the host drops instead (a snapshot installed from the
//! leader meanwhile already covers it) must not stay on disk until the next
//! restart: a long-running follower would pile up a full copy of its state
//! every time.

use std::fs;
use std::path::Path;

use bytes::Bytes;
use ferraft::testing::conformance::{log_id, TestData, TestDir};
use ferraft::{BasicNode, LogStore, NodeId, Snapshot, SnapshotMeta};
use ferraft_wal::{WalOptions, WalStore};

type Store = WalStore<TestData, BasicNode>;

fn open(dir: &Path) -> Store {
    let mut store = WalStore::open(dir, WalOptions::new(NodeId(1), 1)).unwrap();
    store.read_state().unwrap();
    store
}

fn meta(index: u64) -> SnapshotMeta<BasicNode> {
    let nodes = [(NodeId(1), BasicNode::new("127.0.0.1:1"))].into_iter().collect();
    let membership = ferraft::Membership::new_uniform(nodes).unwrap();
    SnapshotMeta {
        last_log_id: Some(log_id(1, index)),
        membership: ferraft::StoredMembership { log_id: None, membership },
        changes: Default::default(),
    }
}

fn staged_files(dir: &Path) -> Vec<String> {
    let names = fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned());
    names.filter(|name| name.starts_with("SNAPSHOT.staged")).collect()
}

#[test]
fn a_built_snapshot_dropped_without_being_made_current_leaves_no_file() {
    let dir = TestDir::new("staged_dropped");
    let mut store = open(dir.path());
    let mut sink = store.snapshot_sink(&meta(3)).unwrap();
    std::io::Write::write_all(&mut sink, b"state at 3").unwrap();
    let built = sink.finish().unwrap();
    assert_eq!(staged_files(dir.path()).len(), 1, "staged while it may still be made current");
    // the host found it covered by a newer snapshot and let it go
    drop(built);
    assert_eq!(staged_files(dir.path()), Vec::<String>::new(), "no copy of the state left behind");
    store.save_snapshot(&Snapshot { meta: meta(5), data: Bytes::from_static(b"state at 5").into() }).unwrap();
    assert_eq!(store.read_state().unwrap().snapshot.map(|s| s.meta), Some(meta(5)));
}

#[test]
fn a_built_snapshot_made_current_stays_after_its_data_is_dropped() {
    let dir = TestDir::new("staged_saved");
    let mut store = open(dir.path());
    let mut sink = store.snapshot_sink(&meta(3)).unwrap();
    std::io::Write::write_all(&mut sink, b"state at 3").unwrap();
    let snapshot = Snapshot { meta: meta(3), data: sink.finish().unwrap() };
    store.save_staged_snapshot(&snapshot).unwrap();
    drop(snapshot);
    drop(store);
    let mut store = open(dir.path());
    let saved = store.read_state().unwrap().snapshot.expect("saved");
    assert_eq!(saved.meta, meta(3));
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut saved.data.reader(), &mut bytes).unwrap();
    assert_eq!(bytes, b"state at 3");
}

/// Starts receiving the snapshot `meta(index)` and keeps `bytes` of it, as a
/// transfer cut short does.
fn receive_part(store: &mut Store, index: u64, bytes: &[u8]) {
    let mut partial = store.partial_snapshot(&meta(index), 7).unwrap();
    partial.append(bytes).unwrap();
    drop(partial);
}

#[test]
fn a_partial_snapshot_the_saved_state_already_covers_is_removed_on_open() {
    let dir = TestDir::new("partial_covered");
    let mut store = open(dir.path());
    receive_part(&mut store, 3, &[1u8; 4096]);
    assert!(dir.path().join("SNAPSHOT.partial").exists());
    // the node got past it another way (here a newer snapshot): no transfer
    // of that snapshot can be of use any more
    store.save_snapshot(&Snapshot { meta: meta(5), data: Bytes::from_static(b"state at 5").into() }).unwrap();
    drop(store);
    let _store = open(dir.path());
    assert!(!dir.path().join("SNAPSHOT.partial").exists(), "4 KiB of a useless transfer kept forever");
}

#[test]
fn a_partial_snapshot_past_the_saved_state_resumes_after_open() {
    let dir = TestDir::new("partial_ahead");
    let mut store = open(dir.path());
    store.save_snapshot(&Snapshot { meta: meta(5), data: Bytes::from_static(b"state at 5").into() }).unwrap();
    receive_part(&mut store, 9, &[1u8; 4096]);
    drop(store);
    let mut store = open(dir.path());
    assert_eq!(store.partial_snapshot(&meta(9), 7).unwrap().received(), 4096);
}

#[test]
fn a_partial_snapshot_claiming_more_bytes_than_its_file_holds_starts_over() {
    let dir = TestDir::new("partial_overlong");
    let mut store = open(dir.path());
    receive_part(&mut store, 9, &[1u8; 4096]);
    drop(store);
    // a flipped bit in the durable length (a real disk's rot, or a torn
    // header): the bytes it claims are not there
    let path = dir.path().join("SNAPSHOT.partial");
    let mut bytes = fs::read(&path).unwrap();
    bytes[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
    fs::write(&path, bytes).unwrap();
    let mut store = open(dir.path());
    assert_eq!(store.partial_snapshot(&meta(9), 7).unwrap().received(), 0);
}

/// Receives every byte of the snapshot `meta(index)` holding `data` and
/// checks them, as an install job does before it decodes them.
fn receive_whole(store: &mut Store, index: u64, data: &[u8]) -> (u32, ferraft::SnapshotData) {
    let checksum = ferraft::SnapshotData::from(data.to_vec()).checksum();
    let mut partial = store.partial_snapshot(&meta(index), checksum).unwrap();
    partial.append(data).unwrap();
    (checksum, partial.finish(checksum).unwrap().expect("the bytes match the sender's checksum"))
}

#[test]
fn a_received_snapshot_checked_but_not_yet_made_current_resumes_whole_after_a_restart() {
    let dir = TestDir::new("partial_checked");
    let mut store = open(dir.path());
    let data = vec![3u8; 64 * 1024];
    let (checksum, finished) = receive_whole(&mut store, 9, &data);
    // the process dies while the state machine decodes it: never made current
    drop(finished);
    drop(store);
    let mut store = open(dir.path());
    assert_eq!(store.read_state().unwrap().snapshot, None);
    let mut partial = store.partial_snapshot(&meta(9), checksum).unwrap();
    assert_eq!(partial.received(), data.len() as u64, "nothing to receive again");
    let data_back = partial.finish(checksum).unwrap().expect("still the sender's bytes");
    assert_eq!(data_back.to_bytes().unwrap(), data);
}

#[test]
fn a_byte_corrupted_on_the_receivers_disk_fails_the_checked_read_and_discarding_forgets_the_bytes() {
    let dir = TestDir::new("partial_corrupted");
    let mut store = open(dir.path());
    let data = vec![5u8; 64 * 1024];
    let checksum = ferraft::SnapshotData::from(data.clone()).checksum();
    let mut partial = store.partial_snapshot(&meta(9), checksum).unwrap();
    partial.append(&data).unwrap();
    // the disk flips a bit after the bytes were written
    let path = dir.path().join("SNAPSHOT.partial");
    let mut bytes = fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(&path, bytes).unwrap();
    // finishing does not read the data: the install's decode is its one read
    let finished = partial.finish(checksum).unwrap().expect("handed out unchecked");
    assert!(!finished.checked_reader().rest_matches().unwrap(), "the checked read finds the flipped bit");
    partial.discard().unwrap();
    drop(finished);
    drop(store);
    let mut store = open(dir.path());
    assert_eq!(store.read_state().unwrap().snapshot, None, "never made current");
    let partial = store.partial_snapshot(&meta(9), checksum).unwrap();
    assert_eq!(partial.received(), 0, "the transfer starts over instead of resuming onto bad bytes");
}

#[test]
fn a_received_snapshot_given_its_header_but_not_renamed_resumes_whole_after_a_restart() {
    let dir = TestDir::new("partial_headed");
    let mut store = open(dir.path());
    let data = vec![4u8; 64 * 1024];
    let (checksum, finished) = receive_whole(&mut store, 9, &data);
    // the rename into place fails (as if the power went right before it):
    // the file already has its snapshot header
    fs::create_dir(dir.path().join("SNAPSHOT")).unwrap();
    let mut saver = store.snapshot_saver().expect("the WAL saves off the Raft task");
    assert!(saver.make_current(&Snapshot { meta: meta(9), data: finished }).is_err());
    fs::remove_dir(dir.path().join("SNAPSHOT")).unwrap();
    drop(store);
    let mut store = open(dir.path());
    let mut partial = store.partial_snapshot(&meta(9), checksum).unwrap();
    assert_eq!(partial.received(), data.len() as u64, "nothing to receive again");
    assert!(partial.finish(checksum).unwrap().is_some());
}

#[test]
fn a_job_makes_a_snapshot_current_but_never_over_a_newer_one() {
    let dir = TestDir::new("saver_order");
    let mut store = open(dir.path());
    let built = |store: &mut Store, index: u64| {
        let mut sink = store.snapshot_sink(&meta(index)).unwrap();
        std::io::Write::write_all(&mut sink, format!("state at {index}").as_bytes()).unwrap();
        Snapshot { meta: meta(index), data: sink.finish().unwrap() }
    };
    let (older, newer) = (built(&mut store, 3), built(&mut store, 6));
    let (mut first_job, mut second_job) = (store.snapshot_saver().unwrap(), store.snapshot_saver().unwrap());
    // the newer one's job finishes first; the older one's must not replace it
    assert_eq!(first_job.make_current(&newer).unwrap(), ferraft::MadeCurrent::Saved);
    assert_eq!(second_job.make_current(&older).unwrap(), ferraft::MadeCurrent::Covered);
    drop((older, newer));
    assert_eq!(staged_files(dir.path()), Vec::<String>::new(), "the covered one's file is gone");
    drop(store);
    let mut store = open(dir.path());
    let saved = store.read_state().unwrap().snapshot.expect("saved by the job");
    assert_eq!((saved.meta, saved.data.to_bytes().unwrap()), (meta(6), Bytes::from_static(b"state at 6")));
}
