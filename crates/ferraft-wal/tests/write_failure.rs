//! A write or sync the disk refuses stops the WAL's writer, and the node
//! hears of it at once through its flush notifier: an append waiting for
//! that sync will never be durable, and a node with nothing more to append
//! would otherwise wait for it forever (and look alive to its operator).

use std::ffi::OsString;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use ferraft::testing::conformance::{entries, TestData, TestDir};
use ferraft::{AppendDurability, BasicNode, FlushNotifier, LogStore, NodeId};
use ferraft_wal::{FileSystem, FsFile, LockGuard, StdFileSystem, SteppedIo, WalOptions, WalStore};

/// The real file system, whose syncs fail once `broken` is set.
#[derive(Debug, Default)]
struct BreakingFs {
    broken: Arc<AtomicBool>,
}

#[derive(Debug)]
struct BreakingFile {
    file: Box<dyn FsFile>,
    broken: Arc<AtomicBool>,
}

impl BreakingFile {
    fn check(&self) -> io::Result<()> {
        match self.broken.load(Ordering::SeqCst) {
            true => Err(io::Error::other("the disk failed")),
            false => Ok(()),
        }
    }
}

impl FsFile for BreakingFile {
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
        self.check()?;
        self.file.sync_data()
    }
    fn sync_all(&self) -> io::Result<()> {
        self.check()?;
        self.file.sync_all()
    }
    fn byte_len(&self) -> io::Result<u64> {
        self.file.byte_len()
    }
}

impl BreakingFs {
    fn wrap(&self, file: io::Result<Box<dyn FsFile>>) -> io::Result<Box<dyn FsFile>> {
        Ok(Box::new(BreakingFile { file: file?, broken: self.broken.clone() }))
    }
}

impl FileSystem for BreakingFs {
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

#[test]
fn a_failed_sync_is_reported_to_the_notifier_of_the_appends_waiting_for_it() {
    let dir = TestDir::new("write_failure");
    let fs = BreakingFs::default();
    let broken = fs.broken.clone();
    let io = SteppedIo { fs: Arc::new(fs), new_incarnation: 1, planted_bug: None };
    let (mut store, stepper) =
        WalStore::<TestData, BasicNode>::open_stepped(dir.path(), WalOptions::new(NodeId(1), 1), io).unwrap();
    let flushed = Arc::new(Mutex::new(Vec::new()));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let notifier = {
        let (flushed, failures) = (flushed.clone(), failures.clone());
        FlushNotifier::new(move |log_id| flushed.lock().unwrap().push(log_id))
            .on_failure(move |error| failures.lock().unwrap().push(error.to_string()))
    };
    // a healthy disk: flushed, no failure
    assert_eq!(store.append(&entries(1, 1..=3), &notifier).unwrap(), AppendDurability::Pending);
    stepper.step().unwrap();
    assert_eq!(flushed.lock().unwrap().len(), 1);
    assert!(failures.lock().unwrap().is_empty());
    // the disk fails under the next batch's sync: the notifier hears it at
    // once, without another append
    broken.store(true, Ordering::SeqCst);
    assert_eq!(store.append(&entries(1, 4..=5), &notifier).unwrap(), AppendDurability::Pending);
    assert!(stepper.step().is_err());
    assert_eq!(flushed.lock().unwrap().len(), 1, "nothing more is durable");
    let failures = failures.lock().unwrap().clone();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(failures[0].contains("the disk failed"), "{failures:?}");
}
