//! A simulated file system: what a power cut leaves of a disk.
//!
//! In memory, one per machine. A write lands in the page cache and becomes
//! durable at the next sync of its file; a creation, rename or removal
//! becomes durable at the next directory sync (all of them up to it, as a
//! journaling file system commits its metadata in order). A crash keeps a
//! prefix of each file's unsynced writes and of the unsynced directory
//! operations (how long: drawn per crash) and *tears* the first write it
//! loses: a prefix of it survives, or garbage of its length (which one: drawn
//! per file system, from the seed). This is the fault model the WAL claims
//! to survive (its recovery cuts a torn tail); out-of-order page writeback,
//! which it documents as refusing to open, is not simulated.
//!
//! A crash can also be scheduled [`after`](SimFs::crash_after_ops) a number
//! of operations, to cut power in the middle of a writer batch or a snapshot
//! save. Handles from before a crash fail every later call, as the dead
//! process's would.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use ferraft_wal::{FileSystem, FsFile, LockGuard};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// What survives of the first unsynced write a crash loses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tear {
    /// A prefix of it, of random length.
    Prefix,
    /// Random bytes of its full length.
    Garbage,
}

/// One machine's disk, shared by the lives of its processes.
#[derive(Debug, Clone)]
pub struct SimDiskFs {
    state: Arc<Mutex<FsState>>,
}

/// The file system as one life of a process sees it: every call fails once
/// the machine crashed.
#[derive(Debug, Clone)]
pub struct SimFs {
    state: Arc<Mutex<FsState>>,
    life: u64,
}

#[derive(Debug)]
struct FsState {
    /// Bumped by each crash: handles of earlier lives are dead.
    life: u64,
    rng: SmallRng,
    tear: Tear,
    inodes: BTreeMap<u64, Inode>,
    next_inode: u64,
    /// Files by path, as the running process sees them.
    names: BTreeMap<PathBuf, u64>,
    /// Files by path, as of the last directory sync.
    durable_names: BTreeMap<PathBuf, u64>,
    /// Directory operations since the last directory sync, in order.
    unsynced_dir_ops: Vec<DirOp>,
    /// Directories (created durably: the simulator's data dirs are few).
    dirs: BTreeSet<PathBuf>,
    locks: BTreeSet<PathBuf>,
    /// Operations left before a scheduled crash.
    crash_countdown: Option<u64>,
    /// Writes torn by crashes, not yet counted in the run's stats.
    torn_writes: u64,
}

#[derive(Debug, Default, Clone)]
struct Inode {
    /// The content after the last sync.
    synced: Vec<u8>,
    /// The content the running process sees.
    current: Vec<u8>,
    /// Changes since the last sync, in order.
    pending: Vec<Change>,
}

#[derive(Debug, Clone)]
enum Change {
    Write { offset: u64, data: Vec<u8> },
    SetLen(u64),
}

#[derive(Debug, Clone)]
enum DirOp {
    Link(PathBuf, u64),
    Unlink(PathBuf),
    Rename(PathBuf, PathBuf),
}

impl Change {
    fn apply(&self, content: &mut Vec<u8>) {
        match self {
            Change::Write { offset, data } => {
                let (start, end) = (*offset as usize, *offset as usize + data.len());
                if content.len() < end {
                    content.resize(end, 0);
                }
                content[start..end].copy_from_slice(data);
            }
            Change::SetLen(len) => content.resize(*len as usize, 0),
        }
    }
}

impl DirOp {
    fn apply(&self, names: &mut BTreeMap<PathBuf, u64>) {
        match self {
            DirOp::Link(path, inode) => {
                names.insert(path.clone(), *inode);
            }
            DirOp::Unlink(path) => {
                names.remove(path);
            }
            DirOp::Rename(from, to) => {
                if let Some(inode) = names.remove(from) {
                    names.insert(to.clone(), inode);
                }
            }
        }
    }
}

fn crashed() -> io::Error {
    io::Error::other("the machine crashed")
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{} not found", path.display()))
}

impl SimDiskFs {
    /// An empty disk whose crash choices come from `seed`; `tear` is drawn from it too.
    pub fn new(seed: u64) -> Self {
        let mut rng = SmallRng::seed_from_u64(seed);
        let tear = if rng.gen_bool(0.5) { Tear::Prefix } else { Tear::Garbage };
        let state = FsState {
            life: 0,
            rng,
            tear,
            inodes: BTreeMap::new(),
            next_inode: 1,
            names: BTreeMap::new(),
            durable_names: BTreeMap::new(),
            unsynced_dir_ops: Vec::new(),
            dirs: BTreeSet::from([PathBuf::from("/")]),
            locks: BTreeSet::new(),
            crash_countdown: None,
            torn_writes: 0,
        };
        Self { state: Arc::new(Mutex::new(state)) }
    }

    /// How this disk tears a write.
    pub fn tear(&self) -> Tear {
        self.lock().tear
    }

    /// The file system for a new life of the machine's process.
    pub fn boot(&self) -> SimFs {
        let life = self.lock().life;
        SimFs { state: self.state.clone(), life }
    }

    /// Power cut now (a no-op if a scheduled one already happened in this life).
    pub fn crash(&self) {
        self.lock().crash();
    }

    /// Power cut when `ops` more mutating operations have completed: the
    /// next one fails and the machine is down.
    pub fn crash_after_ops(&self, ops: u64) {
        self.lock().crash_countdown = Some(ops);
    }

    /// Cancels a scheduled crash that has not happened.
    pub fn disarm(&self) {
        self.lock().crash_countdown = None;
    }

    /// Whether a scheduled crash has happened since `life` began.
    pub fn crashed_since(&self, fs: &SimFs) -> bool {
        self.lock().life != fs.life
    }

    /// Writes torn by crashes since the last call.
    pub fn take_torn_writes(&self) -> u64 {
        std::mem::take(&mut self.lock().torn_writes)
    }

    fn lock(&self) -> MutexGuard<'_, FsState> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl FsState {
    fn crash(&mut self) {
        self.crash_countdown = None;
        let ids: Vec<u64> = self.inodes.keys().copied().collect();
        for id in ids {
            let mut inode = self.inodes.remove(&id).expect("listed");
            let kept = self.rng.gen_range(0..=inode.pending.len());
            let mut content = std::mem::take(&mut inode.synced);
            for change in &inode.pending[..kept] {
                change.apply(&mut content);
            }
            if let Some(Change::Write { offset, data }) = inode.pending.get(kept) {
                let torn = self.torn(data);
                if !torn.is_empty() {
                    self.torn_writes += 1;
                    Change::Write { offset: *offset, data: torn }.apply(&mut content);
                }
            }
            self.inodes.insert(id, Inode { synced: content.clone(), current: content, pending: Vec::new() });
        }
        let kept = self.rng.gen_range(0..=self.unsynced_dir_ops.len());
        for op in self.unsynced_dir_ops.drain(..kept) {
            op.apply(&mut self.durable_names);
        }
        self.unsynced_dir_ops.clear();
        self.names = self.durable_names.clone();
        let live: BTreeSet<u64> = self.names.values().copied().collect();
        self.inodes.retain(|id, _| live.contains(id));
        self.locks.clear();
        self.life += 1;
    }

    /// What reaches the platter of a write cut by the power.
    fn torn(&mut self, data: &[u8]) -> Vec<u8> {
        match self.tear {
            Tear::Prefix => data[..self.rng.gen_range(0..data.len().max(1))].to_vec(),
            Tear::Garbage => (0..data.len()).map(|_| self.rng.gen()).collect(),
        }
    }

    /// Checks `life` is current and counts down to a scheduled crash; an
    /// error if the machine is (or just went) down.
    fn mutate(&mut self, life: u64) -> io::Result<()> {
        if life != self.life {
            return Err(crashed());
        }
        match self.crash_countdown {
            Some(0) => {
                self.crash();
                Err(crashed())
            }
            Some(left) => {
                self.crash_countdown = Some(left - 1);
                Ok(())
            }
            None => Ok(()),
        }
    }

    fn read_only(&self, life: u64) -> io::Result<()> {
        if life != self.life {
            return Err(crashed());
        }
        Ok(())
    }

    fn inode(&self, path: &Path) -> io::Result<u64> {
        self.names.get(path).copied().ok_or_else(|| not_found(path))
    }

    fn change(&mut self, inode: u64, change: Change) -> io::Result<()> {
        let inode = self.inodes.get_mut(&inode).ok_or_else(crashed)?;
        change.apply(&mut inode.current);
        inode.pending.push(change);
        Ok(())
    }

    fn dir_op(&mut self, op: DirOp) {
        op.apply(&mut self.names);
        self.unsynced_dir_ops.push(op);
    }
}

impl SimFs {
    fn lock(&self) -> MutexGuard<'_, FsState> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn handle(&self, inode: u64, writable: bool) -> Box<dyn FsFile> {
        Box::new(SimFile { state: self.state.clone(), life: self.life, inode, writable })
    }
}

impl FileSystem for SimFs {
    fn create(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        let mut state = self.lock();
        state.mutate(self.life)?;
        if !path.parent().is_some_and(|dir| state.dirs.contains(dir)) {
            return Err(not_found(path));
        }
        let inode = match state.names.get(path).copied() {
            Some(inode) => {
                state.change(inode, Change::SetLen(0))?;
                inode
            }
            None => {
                let inode = state.next_inode;
                state.next_inode += 1;
                state.inodes.insert(inode, Inode::default());
                state.dir_op(DirOp::Link(path.to_path_buf(), inode));
                inode
            }
        };
        Ok(self.handle(inode, true))
    }

    fn open(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        let state = self.lock();
        state.read_only(self.life)?;
        let inode = state.inode(path)?;
        Ok(self.handle(inode, true))
    }

    fn open_read(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        let state = self.lock();
        state.read_only(self.life)?;
        let inode = state.inode(path)?;
        Ok(self.handle(inode, false))
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let state = self.lock();
        state.read_only(self.life)?;
        let inode = state.inode(path)?;
        Ok(state.inodes.get(&inode).map(|i| i.current.clone()).unwrap_or_default())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = self.lock();
        state.mutate(self.life)?;
        state.inode(from)?;
        state.dir_op(DirOp::Rename(from.to_path_buf(), to.to_path_buf()));
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut state = self.lock();
        state.mutate(self.life)?;
        state.inode(path)?;
        state.dir_op(DirOp::Unlink(path.to_path_buf()));
        Ok(())
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<OsString>> {
        let state = self.lock();
        state.read_only(self.life)?;
        if !state.dirs.contains(dir) {
            return Err(not_found(dir));
        }
        let files = state.names.keys().filter(|path| path.parent() == Some(dir));
        let dirs = state.dirs.iter().filter(|path| path.parent() == Some(dir));
        Ok(files.chain(dirs).filter_map(|path| path.file_name().map(|n| n.to_os_string())).collect())
    }

    fn sync_dir(&self, _dir: &Path) -> io::Result<()> {
        let mut state = self.lock();
        state.mutate(self.life)?;
        let ops: Vec<DirOp> = state.unsynced_dir_ops.drain(..).collect();
        for op in ops {
            op.apply(&mut state.durable_names);
        }
        Ok(())
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.lock();
        state.mutate(self.life)?;
        state.dirs.extend(dir.ancestors().map(Path::to_path_buf));
        Ok(())
    }

    fn exists(&self, path: &Path) -> bool {
        let state = self.lock();
        state.names.contains_key(path) || state.dirs.contains(path)
    }

    fn try_lock(&self, path: &Path) -> io::Result<Option<LockGuard>> {
        let mut state = self.lock();
        state.read_only(self.life)?;
        if !state.locks.insert(path.to_path_buf()) {
            return Ok(None);
        }
        Ok(Some(Box::new(SimLock { state: self.state.clone(), life: self.life, path: path.to_path_buf() })))
    }
}

/// A held lock; a crash releases every lock.
struct SimLock {
    state: Arc<Mutex<FsState>>,
    life: u64,
    path: PathBuf,
}

impl Drop for SimLock {
    fn drop(&mut self) {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if state.life == self.life {
            state.locks.remove(&self.path);
        }
    }
}

/// An open file of one life.
#[derive(Debug)]
struct SimFile {
    state: Arc<Mutex<FsState>>,
    life: u64,
    inode: u64,
    writable: bool,
}

impl SimFile {
    fn lock(&self) -> MutexGuard<'_, FsState> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn mutate(&self, change: Change) -> io::Result<()> {
        if !self.writable {
            return Err(io::Error::new(io::ErrorKind::PermissionDenied, "opened read-only"));
        }
        let mut state = self.lock();
        state.mutate(self.life)?;
        state.change(self.inode, change)
    }

    fn sync(&self) -> io::Result<()> {
        let mut state = self.lock();
        state.mutate(self.life)?;
        let inode = state.inodes.get_mut(&self.inode).ok_or_else(crashed)?;
        inode.synced = inode.current.clone();
        inode.pending.clear();
        Ok(())
    }
}

impl FsFile for SimFile {
    fn write_all_at(&self, data: &[u8], offset: u64) -> io::Result<()> {
        self.mutate(Change::Write { offset, data: data.to_vec() })
    }

    fn read_exact_at(&self, data: &mut [u8], offset: u64) -> io::Result<()> {
        let state = self.lock();
        state.read_only(self.life)?;
        let content = &state.inodes.get(&self.inode).ok_or_else(crashed)?.current;
        let end = offset as usize + data.len();
        let source = content.get(offset as usize..end).ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        data.copy_from_slice(source);
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.mutate(Change::SetLen(len))
    }

    fn sync_data(&self) -> io::Result<()> {
        self.sync()
    }

    fn sync_all(&self) -> io::Result<()> {
        self.sync()
    }

    fn byte_len(&self) -> io::Result<u64> {
        let state = self.lock();
        state.read_only(self.life)?;
        Ok(state.inodes.get(&self.inode).ok_or_else(crashed)?.current.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(name: &str) -> PathBuf {
        Path::new("/d").join(name)
    }

    fn disk_with_dir(seed: u64) -> (SimDiskFs, SimFs) {
        let disk = SimDiskFs::new(seed);
        let fs = disk.boot();
        fs.create_dir_all(Path::new("/d")).unwrap();
        (disk, fs)
    }

    #[test]
    fn synced_data_and_synced_names_survive_a_crash() {
        let (disk, fs) = disk_with_dir(1);
        let file = fs.create(&path("a")).unwrap();
        file.write_all_at(b"hello", 0).unwrap();
        file.sync_data().unwrap();
        fs.sync_dir(Path::new("/d")).unwrap();
        disk.crash();
        assert_eq!(disk.boot().read(&path("a")).unwrap(), b"hello");
    }

    #[test]
    fn a_dead_life_fails_every_call() {
        let (disk, fs) = disk_with_dir(2);
        let file = fs.create(&path("a")).unwrap();
        disk.crash();
        assert!(file.write_all_at(b"x", 0).is_err());
        assert!(fs.read(&path("a")).is_err());
    }

    #[test]
    fn unsynced_writes_keep_a_prefix_and_tear_the_first_lost_one() {
        let expected = b"aaaabbbbcccc";
        let mut torn = 0;
        for seed in 0..200 {
            let (disk, fs) = disk_with_dir(seed);
            let file = fs.create(&path("a")).unwrap();
            file.sync_data().unwrap();
            fs.sync_dir(Path::new("/d")).unwrap();
            for (n, chunk) in expected.chunks(4).enumerate() {
                file.write_all_at(chunk, n as u64 * 4).unwrap();
            }
            disk.crash();
            let data = disk.boot().read(&path("a")).unwrap();
            match disk.tear() {
                Tear::Prefix => {
                    assert!(expected.starts_with(&data), "seed {seed}: a prefix survives");
                    torn += usize::from(data.len() % 4 != 0);
                }
                Tear::Garbage => {
                    assert_eq!(data.len() % 4, 0, "seed {seed}: writes survive whole, or as garbage");
                    let good = data.len().saturating_sub(4);
                    assert_eq!(&data[..good], &expected[..good], "seed {seed}: only the last one is garbage");
                    torn += usize::from(data[good..] != expected[good..data.len()]);
                }
            }
        }
        assert!(torn > 20, "writes are torn now and then ({torn})");
    }

    #[test]
    fn a_scheduled_crash_fails_the_operation_it_lands_on() {
        let (disk, fs) = disk_with_dir(3);
        let file = fs.create(&path("a")).unwrap();
        disk.crash_after_ops(1);
        file.write_all_at(b"x", 0).unwrap();
        assert!(file.sync_data().is_err());
        assert!(disk.crashed_since(&fs));
    }

    #[test]
    fn an_unsynced_rename_may_be_lost_but_never_half_done() {
        for seed in 0..50 {
            let (disk, fs) = disk_with_dir(seed);
            let file = fs.create(&path("t")).unwrap();
            file.write_all_at(b"new", 0).unwrap();
            file.sync_all().unwrap();
            fs.sync_dir(Path::new("/d")).unwrap();
            fs.rename(&path("t"), &path("f")).unwrap();
            disk.crash();
            let fs = disk.boot();
            assert!(fs.exists(&path("t")) != fs.exists(&path("f")), "seed {seed}: one name or the other");
        }
    }
}
