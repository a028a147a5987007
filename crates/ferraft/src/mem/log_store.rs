//! A log store in memory, shared so a test can restart a node on it.

use std::sync::{Arc, Mutex};

use crate::cluster_id::ClusterId;
use crate::entry::Entry;
use crate::incarnation::Incarnation;
use crate::log_id::LogId;
use crate::node::LogIndex;
use crate::snapshot::Snapshot;
use crate::storage::{AppendDurability, FlushNotifier, LogState, LogStore, ReadRange, StorageError};
use crate::vote::Vote;

/// An in-memory [`LogStore`]: every append is "durable" at once. Clones share
/// the same data, so a node restarted on a clone sees what was written.
#[derive(Debug, Clone)]
pub struct MemLogStore<C, N> {
    state: Arc<Mutex<LogState<C, N>>>,
}

/// The state of a new store: empty, with an incarnation of its own.
fn fresh_state<C, N>() -> LogState<C, N> {
    LogState { incarnation: Some(Incarnation::random()), ..LogState::default() }
}

impl<C, N> Default for MemLogStore<C, N> {
    fn default() -> Self {
        Self { state: Arc::new(Mutex::new(fresh_state())) }
    }
}

impl<C: Clone, N: Clone> MemLogStore<C, N> {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of everything stored.
    pub fn snapshot_state(&self) -> LogState<C, N> {
        self.lock().clone()
    }

    /// Wipes the store, as if the node's disk was replaced: a new incarnation.
    pub fn wipe(&self) {
        *self.lock() = fresh_state();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LogState<C, N>> {
        // a panic elsewhere cannot leave the state half-written: take it as is
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl<C: Clone + Send + 'static, N: Clone + Send + 'static> LogStore<C, N> for MemLogStore<C, N> {
    fn read_state(&mut self) -> Result<LogState<C, N>, StorageError> {
        Ok(self.lock().clone())
    }

    fn append(&mut self, entries: &[Entry<C, N>], _notifier: &FlushNotifier) -> Result<AppendDurability, StorageError> {
        self.lock().entries.extend_from_slice(entries);
        Ok(AppendDurability::Durable)
    }

    fn truncate(&mut self, since: LogIndex) -> Result<(), StorageError> {
        self.lock().entries.retain(|e| e.log_id.index < since);
        Ok(())
    }

    fn purge(&mut self, upto: LogId) -> Result<(), StorageError> {
        let mut state = self.lock();
        state.entries.retain(|e| e.log_id.index > upto.index);
        state.last_purged = state.last_purged.max(Some(upto));
        Ok(())
    }

    fn save_cluster_id(&mut self, cluster_id: ClusterId) -> Result<(), StorageError> {
        self.lock().cluster_id = Some(cluster_id);
        Ok(())
    }

    fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        self.lock().vote = Some(*vote);
        Ok(())
    }

    fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        self.lock().committed = committed;
        Ok(())
    }

    fn save_snapshot(&mut self, snapshot: &Snapshot<N>) -> Result<(), StorageError> {
        self.lock().snapshot = Some(snapshot.clone());
        Ok(())
    }

    fn read_range(&mut self, range: std::ops::Range<LogIndex>) -> Option<ReadRange<C, N>> {
        let store = self.clone();
        Some(Box::new(move || {
            let state = store.lock();
            // entries are contiguous: the first one's index locates the rest
            let Some(first) = state.entries.first().map(|e| e.log_id.index) else { return Ok(Vec::new()) };
            if range.start < first {
                return Ok(Vec::new());
            }
            let skip = usize::try_from(range.start - first).unwrap_or(usize::MAX);
            let take = usize::try_from(range.end.saturating_sub(range.start)).unwrap_or(usize::MAX);
            Ok(state.entries.iter().skip(skip).take(take).cloned().collect())
        }))
    }
}
