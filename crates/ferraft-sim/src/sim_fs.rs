//! A simulated file system: what a power cut leaves of a disk.
//!
//! In memory, one per machine. A write lands in the page cache and becomes
//! durable at the next sync of its file; a creation, rename or removal
//! becomes durable at the next directory sync.
//!
//! What a crash keeps of the rest depends on the disk's [`Writeback`],
//! drawn per disk from its seed:
//! - [`Writeback::InOrder`]: a prefix of each file's unsynced writes (how
//!   long: drawn per crash), and the first write it loses is *torn*.
//! - [`Writeback::AnyOrder`]: a real page cache writes dirty pages back in
//!   any order before an fsync, so any subset of the unsynced writes'
//!   4 KiB pages may have reached the platter (a later write present while
//!   an earlier one is lost), and one lost page is torn. A lost page reads
//!   as what was there before: zeros past the old end of the file. Half
//!   these disks lose 512-byte sectors instead of pages: what a device
//!   persists atomically is one logical block, often a sector, and it may
//!   persist the blocks of one page write in any order too. (The WAL seed
//!   set's batches are mostly shorter than a page: sectors make it meet
//!   the out-of-order case far more often.)
//!
//! A torn write or page keeps a prefix of itself, or garbage of its length
//! (which one: drawn per disk). Size changes (`set_len`) are metadata and,
//! like directory operations, survive as a prefix in both models.
//!
//! Directory operations follow their own rule in both models: they are
//! journaled metadata, and ext4's journal (like any journaling file system's)
//! commits them in the order they were made, so a crash keeps a prefix of
//! the unsynced ones, never a later rename without an earlier one. Their
//! order relative to data writes is not modelled (ext4's `data=ordered`
//! flushes a file's data before the metadata that exposes it, but only for
//! newly allocated blocks): the WAL syncs a file before renaming it.
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

/// The unit a page cache writes back.
pub const PAGE_BYTES: u64 = 4096;

/// The unit many devices persist atomically.
pub const SECTOR_BYTES: u64 = 512;

/// In what order a disk writes a file's unsynced data back before a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writeback {
    /// Write by write, in the order they were made: a crash keeps a prefix.
    InOrder,
    /// Block by block, in any order: a crash keeps any subset of the
    /// blocks of `block_bytes` (aligned in the file).
    AnyOrder {
        /// [`PAGE_BYTES`] or [`SECTOR_BYTES`].
        block_bytes: u64,
    },
}

/// What survives of an unsynced write (or page) a crash cuts.
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
    writeback: Writeback,
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
    /// Files a crash left with a page lost before a page kept (out of
    /// order), not yet counted in the run's stats.
    reordered_files: u64,
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

/// Mixed into a disk's seed for the stream [`SimDiskFs::new`] draws the
/// writeback model from, apart from the stream of crash choices.
const WRITEBACK_STREAM: u64 = 0x9e37_79b9_7f4a_7c15;

/// The write of `data` at `offset`, split where it crosses a boundary of
/// `block_bytes` blocks.
fn blocks(offset: u64, data: &[u8], block_bytes: u64) -> Vec<Change> {
    let mut pieces = Vec::new();
    let mut start = 0;
    while start < data.len() {
        let at = offset + start as u64;
        let end = (start as u64 + block_bytes - at % block_bytes).min(data.len() as u64) as usize;
        pieces.push(Change::Write { offset: at, data: data[start..end].to_vec() });
        start = end;
    }
    pieces
}

fn crashed() -> io::Error {
    io::Error::other("the machine crashed")
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{} not found", path.display()))
}

impl SimDiskFs {
    /// An empty disk whose crash choices come from `seed`; how it tears
    /// and writes back are drawn from it too. The writeback choice has a
    /// stream of its own, so an in-order disk crashes exactly as disks did
    /// before out-of-order writeback was modelled (old seeds replay).
    pub fn new(seed: u64) -> Self {
        let mut rng = SmallRng::seed_from_u64(seed ^ WRITEBACK_STREAM);
        let writeback = match rng.gen_bool(0.5) {
            false => Writeback::InOrder,
            true => Writeback::AnyOrder { block_bytes: if rng.gen_bool(0.5) { PAGE_BYTES } else { SECTOR_BYTES } },
        };
        Self::with_writeback(seed, writeback)
    }

    /// An empty disk that writes back as `writeback` says, whatever the seed.
    pub fn with_writeback(seed: u64, writeback: Writeback) -> Self {
        let mut rng = SmallRng::seed_from_u64(seed);
        let tear = if rng.gen_bool(0.5) { Tear::Prefix } else { Tear::Garbage };
        let state = FsState {
            life: 0,
            rng,
            tear,
            writeback,
            inodes: BTreeMap::new(),
            next_inode: 1,
            names: BTreeMap::new(),
            durable_names: BTreeMap::new(),
            unsynced_dir_ops: Vec::new(),
            dirs: BTreeSet::from([PathBuf::from("/")]),
            locks: BTreeSet::new(),
            crash_countdown: None,
            torn_writes: 0,
            reordered_files: 0,
        };
        Self { state: Arc::new(Mutex::new(state)) }
    }

    /// How this disk tears a write.
    pub fn tear(&self) -> Tear {
        self.lock().tear
    }

    /// How this disk writes unsynced data back.
    pub fn writeback(&self) -> Writeback {
        self.lock().writeback
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

    /// Files left by crashes since the last call with a page lost before a
    /// page kept: how often the out-of-order case was met.
    pub fn take_reordered_files(&self) -> u64 {
        std::mem::take(&mut self.lock().reordered_files)
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
            let mut content = std::mem::take(&mut inode.synced);
            let survivors = match self.writeback {
                Writeback::InOrder => self.in_order_survivors(&inode.pending),
                Writeback::AnyOrder { block_bytes } => self.any_order_survivors(&inode.pending, block_bytes),
            };
            for change in &survivors {
                change.apply(&mut content);
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

    /// What of `pending` reaches the platter, in order, on an in-order disk:
    /// a prefix, then what the tear leaves of the first write lost.
    fn in_order_survivors(&mut self, pending: &[Change]) -> Vec<Change> {
        let kept = self.rng.gen_range(0..=pending.len());
        let mut survivors = pending[..kept].to_vec();
        if let Some(Change::Write { offset, data }) = pending.get(kept) {
            survivors.extend(self.torn_write(*offset, data));
        }
        survivors
    }

    /// What of `pending` reaches the platter, in order, on an out-of-order
    /// disk: each block of each write independently (how likely: drawn per
    /// crash, so some crashes keep almost everything and some almost
    /// nothing), a prefix of the size changes, and one lost block torn.
    fn any_order_survivors(&mut self, pending: &[Change], block_bytes: u64) -> Vec<Change> {
        let keep_share: f64 = self.rng.gen();
        let size_changes = pending.iter().filter(|c| matches!(c, Change::SetLen(_))).count();
        let mut size_changes_kept = self.rng.gen_range(0..=size_changes);
        let mut survivors = Vec::new();
        let mut lost = Vec::new();
        let mut reordered = false;
        for change in pending {
            match change {
                Change::SetLen(_) if size_changes_kept > 0 => {
                    size_changes_kept -= 1;
                    survivors.push(change.clone());
                }
                Change::SetLen(_) => {}
                Change::Write { offset, data } => {
                    for block in blocks(*offset, data, block_bytes) {
                        if self.rng.gen_bool(keep_share) {
                            reordered |= !lost.is_empty();
                            survivors.push(block);
                        } else {
                            lost.push((survivors.len(), block));
                        }
                    }
                }
            }
        }
        self.reordered_files += u64::from(reordered);
        if !lost.is_empty() {
            let (position, block) = lost.swap_remove(self.rng.gen_range(0..lost.len()));
            if let Change::Write { offset, data } = block {
                // in its place among the writes: a later write over the same bytes wins
                if let Some(torn) = self.torn_write(offset, &data) {
                    survivors.insert(position, torn);
                }
            }
        }
        survivors
    }

    /// What a cut leaves of the write of `data` at `offset`, if anything.
    fn torn_write(&mut self, offset: u64, data: &[u8]) -> Option<Change> {
        let torn = self.torn(data);
        if torn.is_empty() {
            return None;
        }
        self.torn_writes += 1;
        Some(Change::Write { offset, data: torn })
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
        disk_with_dir_writing_back(seed, SimDiskFs::new(seed).writeback())
    }

    fn disk_with_dir_writing_back(seed: u64, writeback: Writeback) -> (SimDiskFs, SimFs) {
        let disk = SimDiskFs::with_writeback(seed, writeback);
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
            let (disk, fs) = disk_with_dir_writing_back(seed, Writeback::InOrder);
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
    fn both_writeback_models_are_drawn() {
        let drawn: Vec<Writeback> = (0..100).map(|seed| SimDiskFs::new(seed).writeback()).collect();
        let count = |writeback| drawn.iter().filter(|w| **w == writeback).count();
        for writeback in [
            Writeback::InOrder,
            Writeback::AnyOrder { block_bytes: PAGE_BYTES },
            Writeback::AnyOrder { block_bytes: SECTOR_BYTES },
        ] {
            assert!(count(writeback) > 10, "{} of 100 disks write back {writeback:?}", count(writeback));
        }
    }

    /// Three pages written by one write and two more: each page of the
    /// result is new, old (zeros), or torn (at most one), and some crash
    /// keeps a later page while losing an earlier one.
    #[test]
    fn out_of_order_writeback_keeps_any_subset_of_pages_and_tears_one() {
        let page = PAGE_BYTES as usize;
        let written: Vec<u8> = (0..5 * page).map(|i| (i / page) as u8 + 1).collect();
        let (mut later_without_earlier, mut torn) = (0, 0);
        for seed in 0..200 {
            let (disk, fs) = disk_with_dir_writing_back(seed, Writeback::AnyOrder { block_bytes: PAGE_BYTES });
            let file = fs.create(&path("a")).unwrap();
            file.write_all_at(b"synced", 0).unwrap();
            file.sync_data().unwrap();
            fs.sync_dir(Path::new("/d")).unwrap();
            file.write_all_at(&written[6..3 * page], 6).unwrap();
            file.write_all_at(&written[3 * page..4 * page], 3 * page as u64).unwrap();
            file.write_all_at(&written[4 * page..], 4 * page as u64).unwrap();
            disk.crash();
            let mut data = disk.boot().read(&path("a")).unwrap();
            assert_eq!(&data[..6], b"synced", "seed {seed}: synced bytes survive");
            data.resize(5 * page, 0);
            let mut kept = Vec::new();
            let mut torn_here = 0;
            for (n, content) in data.chunks(page).enumerate() {
                let start = if n == 0 { 6 } else { 0 };
                let (content, new) = (&content[start..], &written[n * page + start..(n + 1) * page]);
                if content == new {
                    kept.push(true);
                } else if content.iter().all(|b| *b == 0) {
                    kept.push(false);
                } else {
                    kept.push(false);
                    torn_here += 1;
                }
            }
            assert!(torn_here <= 1, "seed {seed}: one page torn at most, {torn_here} were");
            torn += torn_here;
            later_without_earlier += usize::from(kept.windows(2).any(|w| !w[0] && w[1]));
        }
        assert!(later_without_earlier > 50, "later pages outlive earlier ones now and then ({later_without_earlier})");
        assert!(torn > 20, "pages are torn now and then ({torn})");
    }

    #[test]
    fn a_write_splits_at_block_boundaries() {
        let page = PAGE_BYTES as usize;
        let pieces: Vec<(u64, usize)> = blocks(page as u64 - 2, &vec![7; page + 4], PAGE_BYTES)
            .into_iter()
            .map(|piece| match piece {
                Change::Write { offset, data } => (offset, data.len()),
                Change::SetLen(_) => unreachable!("pages are writes"),
            })
            .collect();
        assert_eq!(pieces, [(page as u64 - 2, 2), (page as u64, page), (2 * page as u64, 2)]);
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
