//! A snapshot being received, or written by the state machine, goes to the
//! disk a step at a time as it is written, not in one burst at the next
//! sync: the WAL syncs of every node on the machine share that disk (see the
//! store's `write_behind`). A store that does not sync leaves its disk alone.

use std::ffi::OsString;
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};

use ferraft::testing::conformance::{log_id, TestData, TestDir};
use ferraft::{BasicNode, LogStore, NodeId, SnapshotMeta};
use ferraft_wal::{FileSystem, FsFile, LockGuard, StdFileSystem, SteppedIo, WalOptions, WalStore};

/// Writeback asked of the partial snapshot's file: (what, offset, bytes).
type Calls = Arc<Mutex<Vec<(&'static str, u64, u64)>>>;

/// The real file system, recording the writeback asked of its files.
#[derive(Debug, Default)]
struct RecordingFs(Calls);

#[derive(Debug)]
struct RecordingFile {
    file: Box<dyn FsFile>,
    calls: Calls,
}

impl FsFile for RecordingFile {
    fn write_all_at(&self, data: &[u8], offset: u64) -> io::Result<()> {
        self.file.write_all_at(data, offset)
    }
    fn read_exact_at(&self, data: &mut [u8], offset: u64) -> io::Result<()> {
        self.file.read_exact_at(data, offset)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }
    fn sync_all(&self) -> io::Result<()> {
        self.file.sync_all()
    }
    fn byte_len(&self) -> io::Result<u64> {
        self.file.byte_len()
    }
    fn start_writeback(&self, offset: u64, len: u64) -> io::Result<()> {
        self.calls.lock().unwrap().push(("start", offset, len));
        self.file.start_writeback(offset, len)
    }
    fn wait_writeback(&self, offset: u64, len: u64) -> io::Result<()> {
        self.calls.lock().unwrap().push(("wait", offset, len));
        self.file.wait_writeback(offset, len)
    }
}

impl RecordingFs {
    fn wrap(&self, file: io::Result<Box<dyn FsFile>>) -> io::Result<Box<dyn FsFile>> {
        Ok(Box::new(RecordingFile { file: file?, calls: self.0.clone() }))
    }
}

impl FileSystem for RecordingFs {
    fn create(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        self.wrap(StdFileSystem.create(path))
    }
    fn open(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        self.wrap(StdFileSystem.open(path))
    }
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        self.wrap(StdFileSystem.open_read(path))
    }
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        StdFileSystem.read(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        StdFileSystem.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        StdFileSystem.remove_file(path)
    }
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<OsString>> {
        StdFileSystem.list_dir(dir)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        StdFileSystem.sync_dir(dir)
    }
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        StdFileSystem.create_dir_all(dir)
    }
    fn exists(&self, path: &Path) -> bool {
        StdFileSystem.exists(path)
    }
    fn try_lock(&self, path: &Path) -> io::Result<Option<LockGuard>> {
        StdFileSystem.try_lock(path)
    }
}

fn meta() -> SnapshotMeta<BasicNode> {
    let nodes = [(NodeId(1), BasicNode::new("127.0.0.1:1"))].into_iter().collect();
    let membership = ferraft::Membership::new_uniform(nodes).unwrap();
    SnapshotMeta {
        last_log_id: Some(log_id(1, 9)),
        membership: ferraft::StoredMembership { log_id: None, membership },
        changes: Default::default(),
    }
}

const MIB: u64 = 1024 * 1024;

type Store = WalStore<TestData, BasicNode>;

/// A store in `dir` whose writeback calls land in the returned list.
fn open(dir: &Path, options: WalOptions) -> (Store, ferraft_wal::WalStepper, Calls) {
    let fs = RecordingFs::default();
    let calls = fs.0.clone();
    let io = SteppedIo { fs: Arc::new(fs), new_incarnation: 1, planted_bug: None };
    let (store, stepper) = WalStore::open_stepped(dir, options, io).unwrap();
    (store, stepper, calls)
}

#[test]
fn a_received_snapshot_is_written_back_as_its_chunks_arrive_with_one_step_at_most_left_pending() {
    let dir = TestDir::new("write_behind");
    let (mut store, _stepper, calls) = open(dir.path(), WalOptions::new(NodeId(1), 1));
    let mut partial = store.partial_snapshot(&meta(), 7).unwrap();
    calls.lock().unwrap().clear();
    let chunk = vec![5u8; MIB as usize];
    let mut started = Vec::new();
    for n in 1..=4u64 {
        partial.append(&chunk).unwrap();
        let calls = std::mem::take(&mut *calls.lock().unwrap());
        let starts: Vec<_> = calls.iter().filter(|c| c.0 == "start").map(|c| (c.1, c.2)).collect();
        let waited: u64 = calls.iter().filter(|c| c.0 == "wait").map(|c| c.2).sum();
        assert_eq!(starts.len(), 1, "chunk {n}: one step started: {calls:?}");
        assert_eq!(starts[0].1, MIB);
        started.extend(starts);
        // the step before the newest is waited for: one at most stays pending
        assert_eq!(waited, if n == 1 { 0 } else { MIB }, "chunk {n}: {calls:?}");
    }
    let contiguous = started.windows(2).all(|w| w[0].0 + w[0].1 == w[1].0);
    assert!(contiguous, "the steps follow each other: {started:?}");
}

#[test]
fn a_snapshot_the_state_machine_writes_is_written_back_a_step_at_a_time() {
    let dir = TestDir::new("write_behind_sink");
    let (mut store, _stepper, calls) = open(dir.path(), WalOptions::new(NodeId(1), 1));
    let mut sink = store.snapshot_sink(&meta()).unwrap();
    calls.lock().unwrap().clear();
    let piece = vec![3u8; 64 * 1024];
    for _ in 0..3 * MIB / piece.len() as u64 {
        std::io::Write::write_all(&mut sink, &piece).unwrap();
    }
    let calls = std::mem::take(&mut *calls.lock().unwrap());
    let started: Vec<_> = calls.iter().filter(|c| c.0 == "start").map(|c| c.2).collect();
    let waited: u64 = calls.iter().filter(|c| c.0 == "wait").map(|c| c.2).sum();
    assert_eq!(started, [MIB, MIB, MIB], "each whole step once: {calls:?}");
    assert_eq!(waited, 2 * MIB, "all but the newest started step: {calls:?}");
}

#[test]
fn a_store_that_does_not_sync_asks_for_no_writeback() {
    let dir = TestDir::new("write_behind_unsynced");
    let options = WalOptions { sync: false, ..WalOptions::new(NodeId(1), 1) };
    let (mut store, _stepper, calls) = open(dir.path(), options);
    let mut partial = store.partial_snapshot(&meta(), 7).unwrap();
    partial.append(&vec![5u8; 3 * MIB as usize]).unwrap();
    let mut sink = store.snapshot_sink(&meta()).unwrap();
    std::io::Write::write_all(&mut sink, &vec![3u8; 3 * MIB as usize]).unwrap();
    assert_eq!(*calls.lock().unwrap(), []);
}
