//! The replicated key-value state machine and the node descriptor.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use bytes::Bytes;
use ferraft::{LogId, LogIndex, SnapshotInstall, SnapshotJob, SnapshotWriter, StateMachine, StorageError};
use serde::{Deserialize, Serialize};

use crate::watch_log::{Change, ChangeLog};

/// A cluster member as the KV server describes it: where its Raft transport
/// and its HTTP API listen.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KvNode {
    /// `host:port` of the Raft transport.
    pub raft: String,
    /// `host:port` of the HTTP API.
    pub api: String,
}

impl ferraft_net::NodeAddr for KvNode {
    fn raft_addr(&self) -> &str {
        &self.raft
    }
}

/// A replicated write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Sets `key` to `value`.
    Put {
        /// The key.
        key: String,
        /// The new value, shared (encoded as a plain string): the log entry,
        /// its copies for the followers and the store, and the map all hold
        /// the one allocation instead of copying 256 bytes each.
        value: Arc<str>,
    },
    /// Removes `key`.
    Delete {
        /// The key.
        key: String,
    },
    /// Sets `key` to `value` (`None`: removes it) if its value is `expect`
    /// (`None`: if it is absent).
    Cas {
        /// The key.
        key: String,
        /// The value the key must hold, or `None` for "absent".
        expect: Option<String>,
        /// The new value, or `None` to delete.
        value: Option<String>,
    },
    /// Changes nothing: a write that only moves the log (benchmark warm-up).
    Noop,
}

/// What a write returns; `index` is the log index it was applied at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandResponse {
    /// A put was applied.
    Put {
        /// Log index of the write.
        index: LogIndex,
    },
    /// A delete was applied.
    Delete {
        /// Log index of the write.
        index: LogIndex,
        /// Whether the key existed.
        deleted: bool,
    },
    /// A compare-and-swap was applied.
    Cas {
        /// Whether the expectation held (and the new value was set).
        succeeded: bool,
        /// The value after the operation.
        current: Option<String>,
        /// Log index of the write.
        index: LogIndex,
    },
    /// A no-op was applied.
    Noop {
        /// Log index of the entry.
        index: LogIndex,
    },
}

/// The key-value map: key → (value, index of the write that last set it).
/// A hash map: point reads and writes only, and apply is the hottest code of
/// the durable benchmark (an ordered map spent ~12 µs per put comparing keys).
/// Shared strings, so the copy a snapshot takes on the Raft task is a table
/// copy with reference counts, not a copy of every key and value.
pub type KvMap = HashMap<Arc<str>, (Arc<str>, LogIndex)>;

/// The map shared between the state machine (owned by the Raft driver) and
/// the HTTP readers.
#[derive(Debug, Clone, Default)]
pub struct KvStore {
    map: Arc<RwLock<KvMap>>,
    changes: Arc<ChangeLog>,
}

impl KvStore {
    /// Reads the map.
    pub fn read(&self) -> RwLockReadGuard<'_, KvMap> {
        self.map.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, KvMap> {
        self.map.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The value and last-write index of `key`.
    pub fn get(&self, key: &str) -> Option<(String, LogIndex)> {
        self.read().get(key).map(|(value, index)| (value.to_string(), *index))
    }

    /// The recent changes, for watchers.
    pub fn changes(&self) -> &ChangeLog {
        &self.changes
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }
}

/// The state machine: applies [`Command`]s to a [`KvStore`].
#[derive(Debug, Clone, Default)]
pub struct KvStateMachine {
    store: KvStore,
}

impl KvStateMachine {
    /// A state machine over `store`; keep a clone of the store to read it.
    pub fn new(store: KvStore) -> Self {
        Self { store }
    }
}

impl StateMachine for KvStateMachine {
    type Command = Command;
    type Response = CommandResponse;

    fn apply(&mut self, log_id: LogId, command: &Command) -> CommandResponse {
        let index = log_id.index;
        let mut map = self.store.write();
        let (response, change) = match command {
            Command::Put { key, value } => {
                let change = set(&mut map, key, value.clone(), index);
                (CommandResponse::Put { index }, Some(change))
            }
            Command::Delete { key } => {
                let removed = map.remove_entry(key.as_str());
                let deleted = removed.is_some();
                (CommandResponse::Delete { index, deleted }, removed.map(|(key, _)| Change { index, key, value: None }))
            }
            Command::Cas { key, expect, value } => {
                let old = map.get(key.as_str()).map(|(v, _)| &**v);
                if old != expect.as_deref() {
                    let current = old.map(str::to_owned);
                    return self.recorded(map, index, CommandResponse::Cas { succeeded: false, current, index }, None);
                }
                let change = match value {
                    Some(value) => Some(set(&mut map, key, value.as_str().into(), index)),
                    None => map.remove_entry(key.as_str()).map(|(key, _)| Change { index, key, value: None }),
                };
                (CommandResponse::Cas { succeeded: true, current: value.clone(), index }, change)
            }
            Command::Noop => (CommandResponse::Noop { index }, None),
        };
        self.recorded(map, index, response, change)
    }

    fn snapshot(&mut self) -> Result<Bytes, StorageError> {
        encode_snapshot(&self.store.read(), self.store.changes.applied())
    }

    /// Copies the map here (a few ms for 100k keys) and encodes the copy on
    /// the snapshot thread: encoding tens of MB of JSON on the Raft task
    /// stalled the node for hundreds of milliseconds.
    fn snapshot_job(&mut self) -> SnapshotJob {
        let copy = self.store.read().clone();
        let last_command = self.store.changes.applied();
        Box::new(move || encode_snapshot(&copy, last_command))
    }

    /// Streams the copy's JSON into the store's sink on the snapshot
    /// thread: no buffer of the encoding's size.
    fn snapshot_writer(&mut self) -> SnapshotWriter {
        let copy = self.store.read().clone();
        let last_command = self.store.changes.applied();
        Box::new(move |sink| {
            serde_json::to_writer(sink, &Encoded { last_command, kvs: &copy })
                .map_err(|e| StorageError::new("encoding a snapshot", e))
        })
    }

    fn restore(&mut self, data: &Bytes) -> Result<(), StorageError> {
        let (map, last_command) = decode(data)?;
        self.swap_in(map, last_command);
        Ok(())
    }

    /// Decodes from the reader piece by piece, off the Raft task; the
    /// install only swaps the map in.
    fn decode_snapshot(reader: &mut dyn Read) -> Result<SnapshotInstall<Self>, StorageError> {
        let mut reader = BufReader::with_capacity(DECODE_BUFFER_BYTES, reader);
        let head = reader.fill_buf().map_err(|e| StorageError::new("reading a snapshot", e))?;
        let (map, last_command) = if head.starts_with(CURRENT_FORMAT_PREFIX) {
            let snapshot: SnapshotData =
                serde_json::from_reader(reader).map_err(|e| StorageError::new("decoding a snapshot", e))?;
            (snapshot.kvs, Some(snapshot.last_command))
        } else {
            let mut all = Vec::new();
            reader.read_to_end(&mut all).map_err(|e| StorageError::new("reading a snapshot", e))?;
            decode(&all)?
        };
        Ok(Box::new(move |state_machine: &mut Self| {
            state_machine.swap_in(map, last_command);
            Ok(())
        }))
    }
}

/// How a snapshot of the current format starts (serde writes fields in order).
const CURRENT_FORMAT_PREFIX: &[u8] = br#"{"last_command":"#;

/// The read buffer when decoding a snapshot.
const DECODE_BUFFER_BYTES: usize = 1024 * 1024;

/// Decodes a snapshot held whole: the current format, or the bare map of
/// earlier versions (which command it ends with is unknown).
fn decode(data: &[u8]) -> Result<(KvMap, Option<LogIndex>), StorageError> {
    match serde_json::from_slice::<SnapshotData>(data) {
        Ok(snapshot) => Ok((snapshot.kvs, Some(snapshot.last_command))),
        Err(_) => Ok((serde_json::from_slice(data).map_err(|e| StorageError::new("decoding a snapshot", e))?, None)),
    }
}

impl KvStateMachine {
    /// Replaces the map; the old one is freed on another thread (freeing
    /// millions of strings is not the Raft task's work).
    fn swap_in(&mut self, map: KvMap, last_command: Option<LogIndex>) {
        let old = std::mem::replace(&mut *self.store.write(), map);
        self.store.changes.reset(last_command);
        if old.len() > FREE_ELSEWHERE_KEYS {
            std::thread::spawn(move || drop(old));
        }
    }

    /// Records the change a command made (once the map is unlocked) and
    /// answers its response.
    fn recorded(
        &self,
        map: RwLockWriteGuard<'_, KvMap>,
        index: LogIndex,
        response: CommandResponse,
        change: Option<Change>,
    ) -> CommandResponse {
        drop(map);
        self.store.changes.record(index, change);
        response
    }
}

/// A snapshot's bytes: the map and the index of the last command applied to
/// it (where the change history of a restored node starts).
#[derive(Serialize, Deserialize)]
struct SnapshotData {
    last_command: LogIndex,
    kvs: KvMap,
}

/// Sets `key`, reusing the key's allocation when it already exists; the
/// change shares the map's strings.
fn set(map: &mut KvMap, key: &str, value: Arc<str>, index: LogIndex) -> Change {
    let key = match map.get_key_value(key) {
        Some((existing, _)) => existing.clone(),
        None => key.into(),
    };
    map.insert(key.clone(), (value.clone(), index));
    Change { index, key, value: Some(value) }
}

/// Maps larger than this are freed on another thread after a swap.
const FREE_ELSEWHERE_KEYS: usize = 10_000;

/// A snapshot as encoded (what [`SnapshotData`] decodes).
#[derive(Serialize)]
struct Encoded<'a> {
    last_command: LogIndex,
    kvs: &'a KvMap,
}

fn encode_snapshot(map: &KvMap, last_command: LogIndex) -> Result<Bytes, StorageError> {
    let bytes = serde_json::to_vec(&Encoded { last_command, kvs: map })
        .map_err(|e| StorageError::new("encoding a snapshot", e))?;
    Ok(Bytes::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferraft::{LeaderId, NodeId, Term};

    fn at(index: LogIndex) -> LogId {
        LogId::new(LeaderId::new(Term(1), NodeId(1)), index)
    }

    fn put(key: &str, value: &str) -> Command {
        Command::Put { key: key.into(), value: value.into() }
    }

    #[test]
    fn put_then_delete_reports_the_index_and_whether_the_key_existed() {
        let mut sm = KvStateMachine::default();
        assert_eq!(sm.apply(at(LogIndex(1)), &put("a", "1")), CommandResponse::Put { index: LogIndex(1) });
        assert_eq!(sm.store.get("a"), Some(("1".into(), LogIndex(1))));
        assert_eq!(
            sm.apply(at(LogIndex(2)), &Command::Delete { key: "a".into() }),
            CommandResponse::Delete { index: LogIndex(2), deleted: true }
        );
        assert_eq!(
            sm.apply(at(LogIndex(3)), &Command::Delete { key: "a".into() }),
            CommandResponse::Delete { index: LogIndex(3), deleted: false }
        );
    }

    #[test]
    fn cas_sets_only_when_the_expectation_holds() {
        let mut sm = KvStateMachine::default();
        let create = Command::Cas { key: "k".into(), expect: None, value: Some("v1".into()) };
        assert_eq!(
            sm.apply(at(LogIndex(1)), &create),
            CommandResponse::Cas { succeeded: true, current: Some("v1".into()), index: LogIndex(1) }
        );
        assert_eq!(
            sm.apply(at(LogIndex(2)), &create),
            CommandResponse::Cas { succeeded: false, current: Some("v1".into()), index: LogIndex(2) }
        );
        let delete = Command::Cas { key: "k".into(), expect: Some("v1".into()), value: None };
        assert_eq!(
            sm.apply(at(LogIndex(3)), &delete),
            CommandResponse::Cas { succeeded: true, current: None, index: LogIndex(3) }
        );
        assert!(sm.store.is_empty());
    }

    #[test]
    fn snapshot_restores_the_same_map() {
        let mut sm = KvStateMachine::default();
        sm.apply(at(LogIndex(1)), &put("a", "1"));
        sm.apply(at(LogIndex(2)), &put("b", "2"));
        let data = sm.snapshot().unwrap();
        let mut other = KvStateMachine::default();
        other.apply(at(LogIndex(1)), &put("stale", "x"));
        other.restore(&data).unwrap();
        assert_eq!(*other.store.read(), *sm.store.read());
    }

    #[test]
    fn a_restored_node_knows_the_changes_after_its_snapshot_only() {
        let mut sm = KvStateMachine::default();
        sm.apply(at(LogIndex(1)), &put("a", "1"));
        sm.apply(at(LogIndex(2)), &Command::Delete { key: "a".into() });
        let data = sm.snapshot().unwrap();
        let mut other = KvStateMachine::default();
        other.restore(&data).unwrap();
        other.apply(at(LogIndex(4)), &put("b", "2"));
        let changes = other.store.changes();
        assert_eq!(changes.since(LogIndex(2), 10, |_| true).unwrap_err().oldest_index, LogIndex(3));
        let (after, _) = changes.since(LogIndex(3), 10, |_| true).unwrap();
        assert_eq!(after.iter().map(|c| (c.index, &*c.key)).collect::<Vec<_>>(), [(LogIndex(4), "b")]);
    }

    #[test]
    fn a_bare_map_snapshot_of_earlier_versions_still_restores() {
        let mut sm = KvStateMachine::default();
        sm.restore(&Bytes::from_static(br#"{"k": ["v", 7]}"#)).unwrap();
        assert_eq!(sm.store.get("k"), Some(("v".into(), LogIndex(7))));
        sm.apply(at(LogIndex(9)), &put("x", "1"));
        assert!(sm.store.changes().since(LogIndex(8), 10, |_| true).is_err(), "what came before is unknown");
        assert_eq!(sm.store.changes().since(LogIndex(9), 10, |_| true).unwrap().0.len(), 1);
    }

    #[test]
    fn a_streamed_snapshot_decodes_from_a_reader_into_the_map_as_it_was_when_taken() {
        let mut sm = KvStateMachine::default();
        sm.apply(at(LogIndex(1)), &put("a", "1"));
        sm.apply(at(LogIndex(2)), &put("b", "2"));
        let writer = sm.snapshot_writer();
        sm.apply(at(LogIndex(3)), &put("a", "changed after"));
        let mut sink = Vec::new();
        writer(&mut sink).unwrap();
        let install = KvStateMachine::decode_snapshot(&mut &sink[..]).unwrap();
        let mut other = KvStateMachine::default();
        other.apply(at(LogIndex(1)), &put("stale", "x"));
        install(&mut other).unwrap();
        assert_eq!(other.store.get("a"), Some(("1".into(), LogIndex(1))));
        assert_eq!(other.store.get("b"), Some(("2".into(), LogIndex(2))));
        assert_eq!(other.store.get("stale"), None);
        let compacted = other.store.changes().since(LogIndex(2), 10, |_| true).unwrap_err();
        assert_eq!(compacted.oldest_index, LogIndex(3), "the history starts after the snapshot's last command");
    }

    #[test]
    fn a_bare_map_snapshot_of_earlier_versions_still_decodes_from_a_reader() {
        let install = KvStateMachine::decode_snapshot(&mut &br#"{"k": ["v", 7]}"#[..]).unwrap();
        let mut sm = KvStateMachine::default();
        install(&mut sm).unwrap();
        assert_eq!(sm.store.get("k"), Some(("v".into(), LogIndex(7))));
    }

    #[test]
    fn a_snapshot_job_encodes_the_map_as_it_was_when_taken() {
        let mut sm = KvStateMachine::default();
        sm.apply(at(LogIndex(1)), &put("a", "1"));
        let job = sm.snapshot_job();
        sm.apply(at(LogIndex(2)), &put("a", "2"));
        sm.apply(at(LogIndex(3)), &put("b", "3"));
        let mut other = KvStateMachine::default();
        other.restore(&job().unwrap()).unwrap();
        assert_eq!(other.store.get("a"), Some(("1".into(), LogIndex(1))));
        assert_eq!(other.store.len(), 1);
    }
}
