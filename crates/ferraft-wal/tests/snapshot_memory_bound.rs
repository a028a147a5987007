//! A snapshot larger than the memory bound moves through real WAL files
//! without a buffer of its size: written into a store's sink, reloaded
//! after a restart, cut into chunks, gathered by another store (restarted
//! mid-transfer, resuming without a byte sent twice), and read back. A
//! counting allocator measures the peak heap while that happens.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use ferraft::message::SnapshotChunk;
use ferraft::testing::conformance::{log_id, TestData, TestDir};
use ferraft::{
    BasicNode, LogStore, Membership, NodeId, Snapshot, SnapshotMeta, StorageError, StoredMembership, Term, Vote,
};
use ferraft_wal::{WalOptions, WalStore};

/// Counts live heap bytes and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(live, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

type Store = WalStore<TestData, BasicNode>;

/// The snapshot's size: far above the bound.
const SNAPSHOT_BYTES: u64 = 256 * 1024 * 1024;
/// What a transfer cuts: small against the snapshot.
const CHUNK_BYTES: usize = 1024 * 1024;
/// The most heap the whole path may hold at once.
const HEAP_BOUND_BYTES: usize = 24 * 1024 * 1024;

fn open(dir: &Path, node: u64) -> Store {
    WalStore::open(dir, WalOptions::new(NodeId(node), 1)).expect("open the store")
}

fn meta() -> SnapshotMeta<BasicNode> {
    let nodes = [(NodeId(1), BasicNode::new("127.0.0.1:1"))].into_iter().collect();
    let membership = StoredMembership { log_id: None, membership: Membership::new_uniform(nodes).unwrap() };
    SnapshotMeta { last_log_id: Some(log_id(1, 3)), membership, changes: Default::default() }
}

/// Deterministic bytes that do not compress away: piece `n` of the state.
fn piece(n: u64, buf: &mut [u8]) {
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for b in buf.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
}

/// A state machine's streaming writer: the state is made a piece at a time.
fn write_state(sink: &mut dyn Write) -> std::io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    for n in 0..SNAPSHOT_BYTES / buf.len() as u64 {
        piece(n, &mut buf);
        sink.write_all(&buf)?;
    }
    Ok(())
}

fn peak_since_reset() -> usize {
    PEAK.load(Ordering::Relaxed)
}

fn reset_peak() {
    PEAK.store(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
}

#[test]
fn a_snapshot_larger_than_the_memory_bound_is_saved_sent_resumed_and_read_in_bounded_memory() {
    let (leader_dir, learner_dir) = (TestDir::new("bound_leader"), TestDir::new("bound_learner"));
    let baseline = LIVE.load(Ordering::Relaxed);
    reset_peak();

    // the leader's state machine writes its snapshot into the store's sink
    let mut leader = open(leader_dir.path(), 1);
    leader.read_state().unwrap();
    let mut sink = leader.snapshot_sink(&meta()).unwrap();
    write_state(&mut sink).unwrap();
    let data = sink.finish().unwrap();
    leader.save_staged_snapshot(&Snapshot { meta: meta(), data }).unwrap();
    drop(leader);

    // after a restart the leader reads it back, and cuts chunks from it
    let mut leader = open(leader_dir.path(), 1);
    let snapshot = leader.read_state().unwrap().snapshot.expect("the saved snapshot");
    assert_eq!(snapshot.data.len(), SNAPSHOT_BYTES);
    let checksum = snapshot.data.checksum();
    let mut learner = open(learner_dir.path(), 2);
    learner.read_state().unwrap();
    let mut partial = learner.partial_snapshot(&snapshot.meta, checksum).unwrap();
    let (mut offset, mut sent, mut restarted) = (0u64, 0u64, false);
    loop {
        let chunk =
            SnapshotChunk::cut(&snapshot, offset, CHUNK_BYTES, Vote::new_committed(Term(1), NodeId(1)), 1, None)
                .unwrap();
        sent += chunk.data.len() as u64;
        partial.append(&chunk.data).unwrap();
        offset = partial.received();
        if chunk.done {
            break;
        }
        if !restarted && offset >= SNAPSHOT_BYTES / 2 {
            // the learner restarts mid-transfer; the new transfer asks where it stands
            restarted = true;
            drop(partial);
            drop(learner);
            learner = open(learner_dir.path(), 2);
            learner.read_state().unwrap();
            partial = learner.partial_snapshot(&snapshot.meta, checksum).unwrap();
            assert_eq!(partial.received(), offset, "the restarted learner resumes where it stopped");
        }
    }
    assert_eq!(sent, SNAPSHOT_BYTES, "no byte was sent twice");
    let data = partial.finish(checksum).unwrap().expect("the bytes match the leader's checksum");
    learner.save_staged_snapshot(&Snapshot { meta: snapshot.meta.clone(), data }).unwrap();
    drop(learner);

    // the learner's state machine decodes it piece by piece after a restart
    let mut learner = open(learner_dir.path(), 2);
    let installed = learner.read_state().unwrap().snapshot.expect("the installed snapshot");
    assert_eq!(installed.data.checksum(), checksum);
    let mut reader = installed.data.reader();
    let (mut expected, mut got) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    for n in 0..SNAPSHOT_BYTES / got.len() as u64 {
        reader.read_exact(&mut got).map_err(|e| StorageError::new("reading", e)).unwrap();
        piece(n, &mut expected);
        assert!(got == expected, "piece {n} differs");
    }
    assert_eq!(reader.read(&mut got).unwrap(), 0, "nothing after the state");

    let peak = peak_since_reset().saturating_sub(baseline);
    eprintln!("peak heap {peak} bytes for a {SNAPSHOT_BYTES}-byte snapshot");
    assert!(peak < HEAP_BOUND_BYTES, "peak heap {peak} bytes for a {SNAPSHOT_BYTES}-byte snapshot");
}
