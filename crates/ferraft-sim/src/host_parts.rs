//! The simulated environment of a node host: its store over the simulated
//! disk, its transport, its snapshot spawner and its reply channels. Each
//! writes what it is asked into the node's [`Journal`]; the simulator acts on
//! it after the call (schedules fsyncs, deliveries and snapshot jobs, checks
//! answers).

use std::sync::{Arc, Mutex};

use ferraft::runtime::{Answer, ChunkTask, InstallTask, JobSpawner, ReadTask, ReplyKind, SnapshotTask};
use ferraft::{
    AppData, AppendDurability, BasicNode, ClusterId, Entry, FlushNotifier, LogId, LogIndex, LogState, LogStore,
    Message, Network, ReadRange, Snapshot, StorageError, Vote,
};

use crate::disk::SimDisk;
use crate::journal::{Journal, Record};
use crate::model::Put;

/// A [`LogStore`] over a simulated disk: appends reach the page cache only
/// (durable at a simulated fsync the simulator schedules, lost in a crash),
/// or, on a disk that syncs on append, are durable when `append` returns.
pub struct SimStore<C = Put> {
    disk: Arc<Mutex<SimDisk<C>>>,
    journal: Journal<C>,
    sync_on_append: bool,
}

impl<C: Clone> SimStore<C> {
    /// A store over `disk`, journaling into `journal`.
    pub fn new(disk: Arc<Mutex<SimDisk<C>>>, journal: Journal<C>) -> Self {
        Self { disk, journal, sync_on_append: false }
    }

    /// Makes every append durable before it returns (`AppendDurability::Durable`).
    pub fn syncing_on_append(self, on: bool) -> Self {
        Self { sync_on_append: on, ..self }
    }

    fn disk(&self) -> std::sync::MutexGuard<'_, SimDisk<C>> {
        self.disk.lock().expect("single-threaded")
    }
}

impl<C: AppData> LogStore<C, BasicNode> for SimStore<C> {
    fn read_state(&mut self) -> Result<LogState<C, BasicNode>, StorageError> {
        Ok(self.disk().log_state())
    }

    fn append(&mut self, entries: &[Entry<C, BasicNode>], _: &FlushNotifier) -> Result<AppendDurability, StorageError> {
        let Some(first) = entries.first() else { return Ok(AppendDurability::Pending) };
        let mut disk = self.disk();
        let last_on_disk = disk.last_log_id();
        let prev = (index_of(last_on_disk) + 1 == first.log_id.index).then_some(last_on_disk);
        let committed = (disk.committed(), disk.membership_at(index_of(disk.committed())));
        disk.append(entries);
        let durability = if self.sync_on_append {
            disk.fsync(false);
            AppendDurability::Durable
        } else {
            AppendDurability::Pending
        };
        drop(disk);
        let synced = durability == AppendDurability::Durable;
        self.journal.push(Record::Appended { entries: entries.to_vec(), prev, committed, synced });
        Ok(durability)
    }

    fn truncate(&mut self, since: LogIndex) -> Result<(), StorageError> {
        let removed = self.disk().truncate(since);
        self.journal.push(Record::Truncated(removed));
        Ok(())
    }

    fn purge(&mut self, upto: LogId) -> Result<(), StorageError> {
        self.disk().purge(upto);
        self.journal.push(Record::Purged(upto));
        Ok(())
    }

    fn save_cluster_id(&mut self, cluster_id: ClusterId) -> Result<(), StorageError> {
        self.disk().save_cluster_id(cluster_id);
        Ok(())
    }

    fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        self.disk().save_vote(*vote);
        Ok(())
    }

    fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        self.disk().save_committed(committed);
        Ok(())
    }

    fn save_snapshot(&mut self, snapshot: &Snapshot<BasicNode>) -> Result<(), StorageError> {
        let index = index_of(snapshot.meta.last_log_id);
        self.disk().save_snapshot(snapshot.clone());
        let data = snapshot.data.to_bytes().map_err(|e| StorageError::new("reading the snapshot", e))?;
        self.journal.push(Record::SnapshotSaved { index, data });
        Ok(())
    }

    /// Reads the disk when the simulator runs the job, as a thread of the
    /// runtime would: a purge or truncation meanwhile shows in what it finds.
    fn read_range(&mut self, range: std::ops::Range<LogIndex>) -> Option<ReadRange<C, BasicNode>> {
        let disk = self.disk.clone();
        Some(Box::new(move || Ok(disk.lock().expect("single-threaded").read_range(range))))
    }
}

fn index_of(log_id: Option<LogId>) -> LogIndex {
    ferraft::log_id::index_of(log_id)
}

/// The transport: messages go to the journal; the simulator's network model
/// delivers them to the machine at the target address.
pub struct SimTransport {
    journal: Journal,
}

impl SimTransport {
    /// A transport journaling into `journal`.
    pub fn new(journal: Journal) -> Self {
        Self { journal }
    }
}

impl Network<Put, BasicNode> for SimTransport {
    fn send(&self, target: &BasicNode, message: Message<Put, BasicNode>) {
        self.journal.push(Record::Sent { message: Box::new(message), target: target.clone() });
    }
}

/// Snapshot jobs, installs and log reads go to the journal; the simulator runs each
/// later, at a time it draws, and hands the result back to the host.
pub struct SimSpawner {
    journal: Journal,
}

impl SimSpawner {
    /// A spawner journaling into `journal`.
    pub fn new(journal: Journal) -> Self {
        Self { journal }
    }
}

impl JobSpawner<Put, BasicNode> for SimSpawner {
    fn spawn_snapshot(&mut self, task: SnapshotTask<BasicNode>) {
        self.journal.push(Record::SnapshotTask(task));
    }

    fn spawn_read(&mut self, task: ReadTask<Put, BasicNode>) {
        self.journal.push(Record::ReadTask(task));
    }

    fn spawn_install(&mut self, task: InstallTask<BasicNode>) {
        self.journal.push(Record::InstallTask(task));
    }

    fn spawn_chunk_read(&mut self, task: ChunkTask<BasicNode>) {
        self.journal.push(Record::ChunkTask(task));
    }
}

/// Replies in the simulator: each answer is turned into a journal record
/// by the closure the request was made with.
#[derive(Debug, Clone, Copy, Default)]
pub struct SimReplies;

/// One reply channel of [`SimReplies`].
pub struct SimReply<T>(Box<dyn FnOnce(T)>);

impl<T> SimReply<T> {
    /// A reply that hands its answer to `f`.
    pub fn new(f: impl FnOnce(T) + 'static) -> Self {
        Self(Box::new(f))
    }
}

impl<T> Answer<T> for SimReply<T> {
    fn answer(self, value: T) {
        (self.0)(value)
    }
}

impl ReplyKind for SimReplies {
    type Reply<T: Send + 'static> = SimReply<T>;
}
