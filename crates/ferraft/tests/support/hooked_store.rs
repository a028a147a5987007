//! A [`MemLogStore`] with a few calls changed by a test: [`Hooked`] passes
//! every `LogStore` call to the store, except those its [`StoreHooks`]
//! override, so a test states only what it changes.

use std::ops::Range;

use ferraft::mem::MemLogStore;
use ferraft::{
    AppendDurability, BasicNode, ClusterId, Entry, FlushNotifier, LogId, LogIndex, LogState, LogStore, ReadRange,
    Snapshot, SnapshotSaver, StorageError, Vote,
};

pub type Mem = MemLogStore<u64, BasicNode>;

/// The calls a test may change; each default passes the call on.
pub trait StoreHooks: Send + 'static {
    fn read_state(&mut self, store: &mut Mem) -> Result<LogState<u64, BasicNode>, StorageError> {
        store.read_state()
    }
    /// Runs before every append, handed off or inline.
    fn before_append(&mut self) {}
    fn append_inline(
        &mut self,
        store: &mut Mem,
        entries: &[Entry<u64, BasicNode>],
        notifier: &FlushNotifier,
    ) -> Result<AppendDurability, StorageError> {
        store.append_inline(entries, notifier)
    }
    fn save_snapshot(&mut self, store: &mut Mem, snapshot: &Snapshot<BasicNode>) -> Result<(), StorageError> {
        store.save_snapshot(snapshot)
    }
    fn snapshot_saver(&mut self, store: &mut Mem) -> Option<Box<dyn SnapshotSaver<BasicNode>>> {
        store.snapshot_saver()
    }
    fn read_range(&mut self, store: &mut Mem, range: Range<LogIndex>) -> Option<ReadRange<u64, BasicNode>> {
        store.read_range(range)
    }
}

/// `store`, with `hooks` deciding the calls they override.
pub struct Hooked<H> {
    pub store: Mem,
    pub hooks: H,
}

impl<H: StoreHooks> LogStore<u64, BasicNode> for Hooked<H> {
    fn read_state(&mut self) -> Result<LogState<u64, BasicNode>, StorageError> {
        self.hooks.read_state(&mut self.store)
    }
    fn append(
        &mut self,
        entries: &[Entry<u64, BasicNode>],
        notifier: &FlushNotifier,
    ) -> Result<AppendDurability, StorageError> {
        self.hooks.before_append();
        self.store.append(entries, notifier)
    }
    fn append_inline(
        &mut self,
        entries: &[Entry<u64, BasicNode>],
        notifier: &FlushNotifier,
    ) -> Result<AppendDurability, StorageError> {
        self.hooks.before_append();
        self.hooks.append_inline(&mut self.store, entries, notifier)
    }
    fn truncate(&mut self, since: LogIndex) -> Result<(), StorageError> {
        self.store.truncate(since)
    }
    fn purge(&mut self, upto: LogId) -> Result<(), StorageError> {
        self.store.purge(upto)
    }
    fn save_cluster_id(&mut self, cluster_id: ClusterId) -> Result<(), StorageError> {
        self.store.save_cluster_id(cluster_id)
    }
    fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        self.store.save_vote(vote)
    }
    fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        self.store.save_committed(committed)
    }
    fn save_snapshot(&mut self, snapshot: &Snapshot<BasicNode>) -> Result<(), StorageError> {
        self.hooks.save_snapshot(&mut self.store, snapshot)
    }
    fn snapshot_saver(&mut self) -> Option<Box<dyn SnapshotSaver<BasicNode>>> {
        self.hooks.snapshot_saver(&mut self.store)
    }
    fn read_range(&mut self, range: Range<LogIndex>) -> Option<ReadRange<u64, BasicNode>> {
        self.hooks.read_range(&mut self.store, range)
    }
}
