//! The recent changes of the key-value map, in log order, for watchers: a
//! watch resumes from any index the history still holds, so a client that
//! reconnects (to this node or another) misses and repeats nothing.
//!
//! Every node applies the same commands at the same indexes, so every node's
//! history agrees where it overlaps.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use ferraft::LogIndex;
use tokio::sync::watch;

/// Changes kept at most.
pub const HISTORY_CHANGES: usize = 100_000;
/// Key and value bytes kept at most (values are shared with the map while
/// current, so this bounds what overwritten values keep alive).
pub const HISTORY_BYTES: usize = 64 * 1024 * 1024;

/// The floor after restoring a snapshot that does not say where it ends.
const UNKNOWN_FLOOR: LogIndex = LogIndex(u64::MAX);

/// One change of the map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The log index of the write.
    pub index: LogIndex,
    /// The key.
    pub key: Arc<str>,
    /// The new value; `None`: the key was deleted.
    pub value: Option<Arc<str>>,
}

impl Change {
    fn bytes(&self) -> usize {
        self.key.len() + self.value.as_ref().map_or(0, |v| v.len())
    }
}

/// Why changes from an index cannot be answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compacted {
    /// The first index the history holds every change from.
    pub oldest_index: LogIndex,
}

#[derive(Debug)]
struct History {
    changes: VecDeque<Change>,
    bytes: usize,
    /// Every change at an index >= this is held (or still to come).
    floor: LogIndex,
}

/// The history and a signal of its growth.
#[derive(Debug)]
pub struct ChangeLog {
    history: Mutex<History>,
    /// The index of the last command applied (a change or not).
    applied: watch::Sender<LogIndex>,
}

impl Default for ChangeLog {
    fn default() -> Self {
        let history = History { changes: VecDeque::new(), bytes: 0, floor: LogIndex(1) };
        Self { history: Mutex::new(history), applied: watch::Sender::new(LogIndex(0)) }
    }
}

impl ChangeLog {
    fn lock(&self) -> MutexGuard<'_, History> {
        self.history.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records that the command at `index` was applied, with the change it
    /// made, if any.
    pub fn record(&self, index: LogIndex, change: Option<Change>) {
        let mut h = self.lock();
        if h.floor == UNKNOWN_FLOOR {
            h.floor = index;
        }
        if let Some(change) = change {
            h.bytes += change.bytes();
            h.changes.push_back(change);
            while h.changes.len() > HISTORY_CHANGES || (h.bytes > HISTORY_BYTES && h.changes.len() > 1) {
                let Some(old) = h.changes.pop_front() else { break };
                h.bytes -= old.bytes();
                h.floor = old.index + 1;
            }
        }
        drop(h);
        self.applied.send_replace(index);
    }

    /// Forgets the history: the map was replaced by a snapshot whose last
    /// command is `last_command` (its changes are not known one by one).
    /// `None` (a snapshot of an earlier version): the history starts at the
    /// next command applied.
    pub fn reset(&self, last_command: Option<LogIndex>) {
        let mut h = self.lock();
        h.changes.clear();
        h.bytes = 0;
        h.floor = last_command.map_or(UNKNOWN_FLOOR, |last| last + 1);
        drop(h);
        self.applied.send_replace(last_command.unwrap_or(LogIndex(0)));
    }

    /// The index of the last command applied.
    pub fn applied(&self) -> LogIndex {
        *self.applied.borrow()
    }

    /// Waits for commands applied past `index`.
    pub fn subscribe(&self) -> watch::Receiver<LogIndex> {
        self.applied.subscribe()
    }

    /// The changes at `from` and after that `keep` accepts, at most `limit`
    /// of them, and the index to continue from; or why they are no longer
    /// known.
    pub fn since(
        &self,
        from: LogIndex,
        limit: usize,
        keep: impl Fn(&Change) -> bool,
    ) -> Result<(Vec<Change>, LogIndex), Compacted> {
        let h = self.lock();
        if from < h.floor {
            return Err(Compacted { oldest_index: h.floor });
        }
        let start = h.changes.partition_point(|c| c.index < from);
        let mut kept = Vec::new();
        let mut next = from;
        for change in h.changes.range(start..) {
            if kept.len() == limit {
                break;
            }
            if keep(change) {
                kept.push(change.clone());
            }
            next = change.index + 1;
        }
        Ok((kept, next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(index: LogIndex, key: &str, value: Option<&str>) -> Change {
        Change { index, key: key.into(), value: value.map(Arc::from) }
    }

    #[test]
    fn changes_come_back_from_any_index_held_in_order_and_filtered() {
        let log = ChangeLog::default();
        log.record(LogIndex(2), Some(change(LogIndex(2), "a", Some("1"))));
        log.record(LogIndex(3), None);
        log.record(LogIndex(5), Some(change(LogIndex(5), "b", None)));
        log.record(LogIndex(6), Some(change(LogIndex(6), "a", None)));
        let all = |_: &Change| true;
        assert_eq!(log.since(LogIndex(1), 10, all).unwrap().0.len(), 3);
        assert_eq!(
            log.since(LogIndex(3), 10, all).unwrap(),
            (vec![change(LogIndex(5), "b", None), change(LogIndex(6), "a", None)], LogIndex(7))
        );
        assert_eq!(log.since(LogIndex(1), 1, all).unwrap(), (vec![change(LogIndex(2), "a", Some("1"))], LogIndex(3)));
        assert_eq!(log.since(LogIndex(1), 10, |c| &*c.key == "a").unwrap().0.len(), 2);
        assert_eq!(log.since(LogIndex(3), 10, |c| &*c.key == "x").unwrap(), (vec![], LogIndex(7)));
        assert_eq!(log.since(LogIndex(7), 10, all).unwrap(), (vec![], LogIndex(7)));
        assert_eq!(log.applied(), LogIndex(6));
    }

    #[test]
    fn an_evicted_or_restored_past_is_compacted_not_skipped() {
        let log = ChangeLog::default();
        for index in LogIndex(1).through(LogIndex(HISTORY_CHANGES as u64 + 2)) {
            log.record(index, Some(change(index, "k", Some("v"))));
        }
        assert_eq!(log.since(LogIndex(2), 1, |_| true), Err(Compacted { oldest_index: LogIndex(3) }));
        assert_eq!(log.since(LogIndex(3), 1, |_| true).unwrap().0[0].index, LogIndex(3));
        log.reset(Some(LogIndex(500_000)));
        assert_eq!(log.since(LogIndex(500_000), 1, |_| true), Err(Compacted { oldest_index: LogIndex(500_001) }));
        assert_eq!(log.since(LogIndex(500_001), 1, |_| true).unwrap(), (vec![], LogIndex(500_001)));
    }
}
