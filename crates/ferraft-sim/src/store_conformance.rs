//! The simulator's store keeps the same LogStore rules as `MemLogStore` and
//! the WAL: the library's conformance suite, run on [`SimStore`] over a
//! [`SimDisk`]. The simulator's part is played here: each append is synced
//! at once and reported flushed, and reopening a directory crashes its disk
//! first (unsynced data is lost) and opens a new store over it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ferraft::testing::conformance::{self, TestData};
use ferraft::{
    AppendDurability, BasicNode, ClusterId, Entry, FlushNotifier, LogId, LogIndex, LogState, LogStore, Snapshot,
    StorageError, Vote,
};

use crate::disk::SimDisk;
use crate::host_parts::SimStore;
use crate::journal::Journal;

type Disk = Arc<Mutex<SimDisk<TestData>>>;

/// A [`SimStore`] whose appends the "simulator" syncs at once.
struct SyncedSimStore {
    store: SimStore<TestData>,
    disk: Disk,
}

impl LogStore<TestData, BasicNode> for SyncedSimStore {
    fn read_state(&mut self) -> Result<LogState<TestData, BasicNode>, StorageError> {
        self.store.read_state()
    }

    fn append(
        &mut self,
        entries: &[Entry<TestData, BasicNode>],
        notifier: &FlushNotifier,
    ) -> Result<AppendDurability, StorageError> {
        let durability = self.store.append(entries, notifier)?;
        let synced = self.disk.lock().expect("single-threaded").fsync(false);
        if let (AppendDurability::Pending, Some(last)) = (durability, synced) {
            notifier.flushed(last);
        }
        Ok(durability)
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
        self.store.save_snapshot(snapshot)
    }
}

#[test]
fn the_simulated_disk_keeps_every_log_store_rule() {
    let mut disks: HashMap<PathBuf, Disk> = HashMap::new();
    conformance::run_all(&mut |dir: &Path| {
        let disk = disks.entry(dir.to_path_buf()).or_default().clone();
        disk.lock().expect("single-threaded").crash(false);
        let store = SimStore::new(disk.clone(), Journal::default());
        Ok(SyncedSimStore { store, disk })
    });
}
