//! The replicated key-value state machine and the node descriptor.

use std::io::{BufReader, BufWriter, Read};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use bytes::Bytes;
use ferraft::{LogId, LogIndex, SnapshotInstall, SnapshotJob, SnapshotWriter, StateMachine, StorageError};
use serde::{Deserialize, Serialize};

use crate::watch_log::{Change, ChangeLog};
use crate::{snapshot_format, snapshot_json};

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

pub use crate::kv_map::KvMap;

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
        let mut bytes = Vec::new();
        self.snapshot_writer()(&mut bytes)?;
        Ok(Bytes::from(bytes))
    }

    fn snapshot_job(&mut self) -> SnapshotJob {
        let writer = self.snapshot_writer();
        Box::new(move || {
            let mut bytes = Vec::new();
            writer(&mut bytes)?;
            Ok(Bytes::from(bytes))
        })
    }

    /// Takes the point-in-time copy here, on the Raft task: one reference
    /// count per shard of the map, whatever its size (a full copy of 100k
    /// keys took 8–40 ms). The encoding streams on the snapshot thread.
    fn snapshot_writer(&mut self) -> SnapshotWriter {
        let copy = self.store.read().clone();
        let last_command = self.store.changes.applied();
        Box::new(move |sink| {
            let mut sink = BufWriter::with_capacity(SNAPSHOT_BUFFER_BYTES, sink);
            snapshot_format::write(&mut sink, &copy, last_command)
                .map_err(|e| StorageError::new("encoding a snapshot", e))
        })
    }

    fn restore(&mut self, data: &Bytes) -> Result<(), StorageError> {
        let (map, last_command) = decode(&mut &data[..])?;
        self.swap_in(map, last_command);
        Ok(())
    }

    /// Decodes from the reader off the Raft task; the install only swaps
    /// the map in.
    fn decode_snapshot(reader: &mut dyn Read) -> Result<SnapshotInstall<Self>, StorageError> {
        let (map, last_command) = decode(reader)?;
        Ok(Box::new(move |state_machine: &mut Self| {
            state_machine.swap_in(map, last_command);
            Ok(())
        }))
    }
}

/// The buffer between a snapshot and its sink or reader: few large writes
/// and reads, and most values copied straight out of it.
const SNAPSHOT_BUFFER_BYTES: usize = 1024 * 1024;

/// Decodes a snapshot of any format this server ever wrote: the binary one,
/// or the JSON of earlier versions (whose bare-map layout does not say which
/// command the snapshot ends with).
pub fn decode(reader: &mut dyn Read) -> Result<(KvMap, Option<LogIndex>), StorageError> {
    // read, not peeked: a reader may answer a few bytes at a time
    let mut head = Vec::with_capacity(snapshot_json::HEAD_BYTES);
    Read::take(&mut *reader, snapshot_json::HEAD_BYTES as u64)
        .read_to_end(&mut head)
        .map_err(|e| StorageError::new("reading a snapshot", e))?;
    let mut whole = BufReader::with_capacity(SNAPSHOT_BUFFER_BYTES, head.as_slice().chain(reader));
    if head.starts_with(snapshot_format::MAGIC) {
        let (map, last_command) =
            snapshot_format::read(&mut whole).map_err(|e| StorageError::new("decoding a snapshot", e))?;
        return Ok((map, Some(last_command)));
    }
    snapshot_json::read(&head, &mut whole)
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

    /// What the JSON encoder before the binary format wrote, kept to prove
    /// that its snapshots still restore.
    fn old_json_encoder(map: &KvMap, last_command: LogIndex) -> Vec<u8> {
        #[derive(Serialize)]
        struct Encoded {
            last_command: LogIndex,
            kvs: std::collections::HashMap<Arc<str>, (Arc<str>, LogIndex)>,
        }
        let kvs = map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        serde_json::to_vec(&Encoded { last_command, kvs }).unwrap()
    }

    /// Answers one byte per read: the decoder may not count on large reads.
    struct OneByteAtATime<'a>(&'a [u8]);

    impl Read for OneByteAtATime<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let Some((first, rest)) = self.0.split_first() else { return Ok(0) };
            match buf.first_mut() {
                Some(slot) => {
                    *slot = *first;
                    self.0 = rest;
                    Ok(1)
                }
                None => Ok(0),
            }
        }
    }

    fn applied(commands: &[(LogIndex, Command)]) -> KvStateMachine {
        let mut sm = KvStateMachine::default();
        for (index, command) in commands {
            sm.apply(at(*index), command);
        }
        sm
    }

    #[test]
    fn snapshots_are_written_in_the_binary_format() {
        let mut sm = applied(&[(LogIndex(1), put("a", "1"))]);
        let data = sm.snapshot().unwrap();
        assert!(data.starts_with(snapshot_format::MAGIC));
        let mut streamed = Vec::new();
        sm.snapshot_writer()(&mut streamed).unwrap();
        assert_eq!(streamed, data);
    }

    #[test]
    fn a_json_snapshot_of_the_old_encoder_still_restores_and_decodes_from_a_reader() {
        let sm = applied(&[
            (LogIndex(1), put("a", "1")),
            (LogIndex(2), put("quote\"d", "ü\n")),
            (LogIndex(3), put("b", "2")),
            (LogIndex(4), Command::Noop),
        ]);
        let old = old_json_encoder(&sm.store.read(), LogIndex(4));
        assert!(old.starts_with(b"{\"last_command\":4,"), "the layout the streaming path recognises");
        let mut restored = KvStateMachine::default();
        restored.restore(&Bytes::from(old.clone())).unwrap();
        assert_eq!(*restored.store.read(), *sm.store.read());
        let install = KvStateMachine::decode_snapshot(&mut OneByteAtATime(&old)).unwrap();
        let mut decoded = KvStateMachine::default();
        install(&mut decoded).unwrap();
        assert_eq!(*decoded.store.read(), *sm.store.read());
        assert_eq!(decoded.store.changes().since(LogIndex(4), 10, |_| true).unwrap_err().oldest_index, LogIndex(5));
    }

    #[test]
    fn a_binary_snapshot_decodes_from_a_reader_that_answers_a_byte_at_a_time() {
        let mut sm = applied(&[(LogIndex(1), put("a", "1")), (LogIndex(2), put("b", &"v".repeat(5000)))]);
        let data = sm.snapshot().unwrap();
        let install = KvStateMachine::decode_snapshot(&mut OneByteAtATime(&data)).unwrap();
        let mut other = KvStateMachine::default();
        install(&mut other).unwrap();
        assert_eq!(*other.store.read(), *sm.store.read());
    }

    #[test]
    fn bad_snapshot_bytes_are_a_storage_error_and_leave_the_state_machine_alone() {
        let mut sm = applied(&[(LogIndex(1), put("a", "1")), (LogIndex(2), put("b", "2"))]);
        let data = sm.snapshot().unwrap();
        let mut wrong_version = data.to_vec();
        wrong_version[snapshot_format::MAGIC.len()] = 9;
        let bad: [&[u8]; 5] = [&data[..data.len() - 3], &data[..20], &wrong_version, b"", b"{\"kvs\": 3}"];
        for bytes in bad {
            let mut other = applied(&[(LogIndex(1), put("kept", "x"))]);
            assert!(other.restore(&Bytes::copy_from_slice(bytes)).is_err(), "{bytes:?}");
            assert!(KvStateMachine::decode_snapshot(&mut &bytes[..]).is_err(), "{bytes:?}");
            assert_eq!(other.store.get("kept"), Some(("x".into(), LogIndex(1))));
        }
    }
}
