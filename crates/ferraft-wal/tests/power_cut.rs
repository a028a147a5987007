//! Power cuts between steps of a stepped store (`WalStore::open_stepped`),
//! on the real file system behind a switch that fails every later write:
//! the moments a crash test with `kill -9` rarely hits. Each test is named
//! after the state the cut leaves.

use std::ffi::OsString;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use ferraft::testing::conformance::{entries, entry, log_id, TestData, TestDir};
use ferraft::{BasicNode, FlushNotifier, LogIndex, LogStore, NodeId, Term};
use ferraft_wal::{FileSystem, FsFile, LockGuard, StdFileSystem, SteppedIo, WalOptions, WalStepper, WalStore};

type Store = WalStore<TestData, BasicNode>;

/// The real file system until [`cut`](PowerSwitch::cut): then every call
/// that would change the disk fails, so nothing queued reaches it. Or
/// [`tear_next_write`](PowerSwitch::tear_next_write): the power goes after
/// the first 8 bytes of the next write. Or
/// [`lose_first_page_of_next_write`](PowerSwitch::lose_first_page_of_next_write):
/// the page cache wrote the next write's later pages back and the power
/// went before its first page.
#[derive(Debug, Default)]
struct PowerSwitch {
    off: AtomicBool,
    tear: AtomicBool,
    lose_first_page: AtomicBool,
    /// File syncs so far.
    syncs: AtomicU64,
}

/// The page size of the out-of-order writeback [`PowerSwitch`] models.
const PAGE_BYTES: u64 = 4096;

impl PowerSwitch {
    fn cut(&self) {
        self.off.store(true, Ordering::SeqCst);
    }

    fn tear_next_write(&self) {
        self.tear.store(true, Ordering::SeqCst);
    }

    fn lose_first_page_of_next_write(&self) {
        self.lose_first_page.store(true, Ordering::SeqCst);
    }

    fn check(&self) -> io::Result<()> {
        match self.off.load(Ordering::SeqCst) {
            true => Err(io::Error::other("power cut")),
            false => Ok(()),
        }
    }
}

/// A file of [`PowerSwitch`]: writes, resizes and syncs fail once it is off.
#[derive(Debug)]
struct SwitchedFile {
    file: Box<dyn FsFile>,
    switch: Arc<PowerSwitch>,
}

impl FsFile for SwitchedFile {
    fn write_all_at(&self, data: &[u8], offset: u64) -> io::Result<()> {
        self.switch.check()?;
        if self.switch.tear.swap(false, Ordering::SeqCst) {
            self.file.write_all_at(&data[..data.len().min(8)], offset)?;
            self.switch.cut();
            return self.switch.check();
        }
        if self.switch.lose_first_page.swap(false, Ordering::SeqCst) {
            let first_page_bytes = (PAGE_BYTES - offset % PAGE_BYTES).min(data.len() as u64);
            let rest = &data[first_page_bytes as usize..];
            self.file.write_all_at(rest, offset + first_page_bytes)?;
            self.switch.cut();
            return self.switch.check();
        }
        self.file.write_all_at(data, offset)
    }
    fn read_exact_at(&self, data: &mut [u8], offset: u64) -> io::Result<()> {
        self.file.read_exact_at(data, offset)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.switch.check()?;
        self.file.set_len(len)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.switch.check()?;
        self.switch.syncs.fetch_add(1, Ordering::SeqCst);
        self.file.sync_data()
    }
    fn sync_all(&self) -> io::Result<()> {
        self.switch.check()?;
        self.switch.syncs.fetch_add(1, Ordering::SeqCst);
        self.file.sync_all()
    }
    fn byte_len(&self) -> io::Result<u64> {
        self.file.byte_len()
    }
}

#[derive(Debug)]
struct SwitchedFs(Arc<PowerSwitch>);

impl SwitchedFs {
    fn wrap(&self, file: io::Result<Box<dyn FsFile>>) -> io::Result<Box<dyn FsFile>> {
        Ok(Box::new(SwitchedFile { file: file?, switch: self.0.clone() }))
    }
}

impl FileSystem for SwitchedFs {
    fn create(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        self.0.check()?;
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
        self.0.check()?;
        StdFileSystem.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.0.check()?;
        StdFileSystem.remove_file(path)
    }
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<OsString>> {
        StdFileSystem.list_dir(dir)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.0.check()?;
        StdFileSystem.sync_dir(dir)
    }
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.0.check()?;
        StdFileSystem.create_dir_all(dir)
    }
    fn exists(&self, path: &Path) -> bool {
        StdFileSystem.exists(path)
    }
    fn try_lock(&self, path: &Path) -> io::Result<Option<LockGuard>> {
        StdFileSystem.try_lock(path)
    }
}

/// Opens a stepped store on `dir` behind a fresh switch.
fn open(dir: &Path) -> (Store, WalStepper, Arc<PowerSwitch>) {
    open_with(dir, WalOptions { segment_bytes: 4096, ..WalOptions::new(NodeId(1), 1) })
}

fn open_with(dir: &Path, options: WalOptions) -> (Store, WalStepper, Arc<PowerSwitch>) {
    let switch = Arc::new(PowerSwitch::default());
    let io = SteppedIo { fs: Arc::new(SwitchedFs(switch.clone())), new_incarnation: 1, planted_bug: None };
    let (store, stepper) = WalStore::open_stepped(dir, options, io).unwrap();
    (store, stepper, switch)
}

/// A snapshot covering entries up to `index`.
fn snapshot_at(index: u64) -> ferraft::Snapshot<BasicNode> {
    let nodes = [(NodeId(1), BasicNode::new("127.0.0.1:1"))].into_iter().collect();
    let membership = ferraft::Membership::new_uniform(nodes).unwrap();
    ferraft::Snapshot {
        meta: ferraft::SnapshotMeta {
            last_log_id: Some(log_id(1, index)),
            membership: ferraft::StoredMembership { log_id: None, membership },
            changes: Default::default(),
        },
        data: Bytes::from_static(b"state").into(),
    }
}

/// A follower installs a leader's snapshot past its log's end: the snapshot
/// is durable at once, the purge to its end is queued, and the power goes
/// before the writer gets to it. The store must come back with the snapshot
/// as its purge point, so the entry after the snapshot is the next append.
#[test]
fn a_snapshot_saved_before_its_purge_was_durable_takes_the_next_append() {
    let dir = TestDir::new("power_cut_snapshot_before_purge");
    let (mut store, stepper, switch) = open(dir.path());
    store.read_state().unwrap();
    store.append(&entries(1, 1..=10), &FlushNotifier::new(|_| {})).unwrap();
    stepper.step().unwrap();
    store.truncate(LogIndex(8)).unwrap();
    store.save_snapshot(&snapshot_at(12)).unwrap();
    store.purge(log_id(1, 12)).unwrap();
    switch.cut();
    drop((store, stepper));

    let (mut store, stepper, _) = open(dir.path());
    let state = store.read_state().unwrap();
    assert_eq!(state.snapshot.map(|s| s.meta.last_log_id), Some(Some(log_id(1, 12))));
    assert_eq!(state.last_purged, Some(log_id(1, 12)), "the snapshot covers everything up to 12");
    assert!(state.entries.is_empty(), "entries the snapshot covers are not the log: {:?}", state.entries);
    store.append(&[entry(1, 13)], &FlushNotifier::new(|_| {})).unwrap();
    stepper.step().unwrap();
    assert_eq!(store.entries(..).unwrap(), vec![entry(1, 13)]);
}

/// The first vote a new data dir saves is torn by a power cut: the store
/// must come back with the state before it (no vote), not refuse to open
/// because no metadata slot is intact.
#[test]
fn a_torn_first_metadata_save_leaves_the_initial_state() {
    let dir = TestDir::new("power_cut_first_meta_save");
    let (mut store, stepper, switch) = open(dir.path());
    store.read_state().unwrap();
    switch.tear_next_write();
    assert!(store.save_vote(&ferraft::Vote::new(Term(1), NodeId(1))).is_err());
    drop((store, stepper));

    let (mut store, _, _) = open(dir.path());
    assert_eq!(store.read_state().unwrap().vote, None);
}

/// The same cut on a later save leaves the vote saved before it.
#[test]
fn a_torn_metadata_save_leaves_the_vote_saved_before() {
    let dir = TestDir::new("power_cut_later_meta_save");
    let (mut store, stepper, switch) = open(dir.path());
    store.read_state().unwrap();
    store.save_vote(&ferraft::Vote::new(Term(1), NodeId(1))).unwrap();
    store.save_vote(&ferraft::Vote::new(Term(2), NodeId(1))).unwrap();
    switch.tear_next_write();
    assert!(store.save_vote(&ferraft::Vote::new(Term(3), NodeId(1))).is_err());
    drop((store, stepper));

    let (mut store, _, _) = open(dir.path());
    assert_eq!(store.read_state().unwrap().vote, Some(ferraft::Vote::new(Term(2), NodeId(1))));
}

/// A batch of several pages is written back out of order: its later pages
/// reached the disk, its first did not, and the power went before the sync.
/// Intact records then follow a lost one, but none of them was ever reported
/// durable: the store must open with what was synced before the batch
/// (and take appends after it), in a preallocated segment (the lost page
/// reads as zeros) and in a growing one (a hole) alike.
#[test]
fn a_batch_whose_later_pages_outlived_its_first_is_cut_after_the_synced_entries() {
    for preallocate in [false, true] {
        let dir = TestDir::new(&format!("power_cut_out_of_order_pages_{preallocate}"));
        let options = WalOptions { segment_bytes: 1 << 20, preallocate, ..WalOptions::new(NodeId(1), 1) };
        let (mut store, stepper, switch) = open_with(dir.path(), options.clone());
        store.read_state().unwrap();
        store.append(&entries(1, 1..=3), &FlushNotifier::new(|_| {})).unwrap();
        stepper.step().unwrap();
        store.append(&entries(1, 4..=400), &FlushNotifier::new(|_| {})).unwrap();
        switch.lose_first_page_of_next_write();
        assert!(stepper.step().is_err(), "the power went during the batch");
        drop((store, stepper));

        let (mut store, stepper, _) = open_with(dir.path(), options);
        let state = store.read_state().unwrap_or_else(|error| panic!("preallocate {preallocate}: {error}"));
        assert_eq!(state.entries, entries(1, 1..=3), "preallocate {preallocate}");
        store.append(&[entry(2, 4)], &FlushNotifier::new(|_| {})).unwrap();
        stepper.step().unwrap();
        assert_eq!(store.entries(LogIndex(4)..).unwrap(), vec![entry(2, 4)]);
    }
}

/// Saving a changed committed log id writes the metadata without a sync of
/// its own: that sync cost the writer ~0.2-0.3 ms every 200 ms, in the way of
/// the next batch. The contract lets the id be older after a crash.
#[test]
fn a_saved_committed_log_id_costs_no_sync() {
    let dir = TestDir::new("power-cut-committed-no-sync");
    let (mut store, stepper, switch) = open(dir.path());
    store.append(&entries(1, 1..=3), &FlushNotifier::new(|_| {})).unwrap();
    stepper.step().unwrap();
    let syncs = switch.syncs.load(Ordering::SeqCst);
    store.save_committed(Some(log_id(1, 3))).unwrap();
    stepper.step().unwrap();
    assert_eq!(switch.syncs.load(Ordering::SeqCst), syncs, "the committed log id was synced on its own");
    drop(store);
    let (mut store, _stepper, _switch) = open(dir.path());
    assert_eq!(store.read_state().unwrap().committed, Some(log_id(1, 3)), "written, if not synced");
}

/// The power goes during an inline append's batch, which also carries an
/// append handed off before it: neither is reported, the store refuses
/// every later call, and only what was synced before comes back.
#[test]
fn an_inline_batch_cut_by_the_power_reports_nothing_and_stops_the_store() {
    let dir = TestDir::new("power_cut_inline_batch");
    let (mut store, stepper, switch) = open(dir.path());
    store.read_state().unwrap();
    let told = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = told.clone();
    let notifier = FlushNotifier::new(move |log_id| sink.lock().unwrap().push(log_id));
    store.append(&entries(1, 1..=3), &notifier).unwrap();
    stepper.step().unwrap();
    store.append(&entries(1, 4..=6), &notifier).unwrap();
    switch.tear_next_write();
    assert!(store.append_inline(&entries(1, 7..=8), &notifier).is_err(), "the batch's write failed");
    assert_eq!(*told.lock().unwrap(), vec![log_id(1, 3)], "only the batch synced before is reported");
    assert!(store.append(&entries(1, 9..=9), &notifier).is_err(), "a failed store takes no appends");
    assert!(store.sync().is_err(), "nor barriers");
    assert!(stepper.step().is_err(), "nor steps");
    assert!(store.close().is_err(), "closing reports the failure");
    drop(stepper);

    let (mut store, _stepper, _) = open(dir.path());
    assert_eq!(store.read_state().unwrap().entries, entries(1, 1..=3));
}

/// The disk fails under a batch (here: the switch goes off): the writer
/// stops, and the node hears of it at once through its flush notifier. An
/// append waiting for that batch will never be durable, and a node with
/// nothing more to append would otherwise wait for it forever (and look
/// alive to its operator).
#[test]
fn a_failed_batch_is_reported_to_the_notifier_of_the_appends_waiting_for_it() {
    let dir = TestDir::new("power_cut_notifier");
    let (mut store, stepper, switch) = open(dir.path());
    store.read_state().unwrap();
    let (notifier, flushed, failures) = recording_notifier();
    store.append(&entries(1, 1..=3), &notifier).unwrap();
    stepper.step().unwrap();
    assert_eq!(*flushed.lock().unwrap(), [log_id(1, 3)]);
    assert!(failures.lock().unwrap().is_empty());
    switch.cut();
    store.append(&entries(1, 4..=5), &notifier).unwrap();
    assert!(stepper.step().is_err());
    assert_eq!(*flushed.lock().unwrap(), [log_id(1, 3)], "nothing more is durable");
    let failures = failures.lock().unwrap().clone();
    assert_eq!(failures.len(), 1, "without another append: {failures:?}");
    assert!(failures[0].contains("power cut"), "{failures:?}");
}

/// The disk fails under a batch no append waits for (a purge after a
/// snapshot, on a node with nothing more to write): the node hears of it
/// at once all the same, through the notifier of its earlier appends, not
/// at its next append (a quiet node may have none for long, and look alive).
#[test]
fn a_failed_batch_without_appends_is_reported_to_the_notifier_of_the_last_ones() {
    let dir = TestDir::new("power_cut_notifier_idle");
    let (mut store, stepper, switch) = open(dir.path());
    store.read_state().unwrap();
    let (notifier, _, failures) = recording_notifier();
    store.append(&entries(1, 1..=3), &notifier).unwrap();
    stepper.step().unwrap();
    switch.cut();
    store.purge(log_id(1, 2)).unwrap();
    assert!(stepper.step().is_err(), "the purge's batch failed");
    let failures = failures.lock().unwrap().clone();
    assert_eq!(failures.len(), 1, "with no append waiting: {failures:?}");
    assert!(failures[0].contains("power cut"), "{failures:?}");
}

/// What a notifier was told: the flushes, and the failures' messages.
type Told<T> = Arc<std::sync::Mutex<Vec<T>>>;

/// A notifier that records what it is told.
fn recording_notifier() -> (FlushNotifier, Told<ferraft::LogId>, Told<String>) {
    let (flushed, failures) = (Told::default(), Told::default());
    let notifier = {
        let (flushed, failures) = (flushed.clone(), failures.clone());
        FlushNotifier::new(move |log_id| flushed.lock().unwrap().push(log_id))
            .on_failure(move |error| failures.lock().unwrap().push(error.to_string()))
    };
    (notifier, flushed, failures)
}
