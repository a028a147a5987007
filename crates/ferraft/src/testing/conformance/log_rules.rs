//! Rules about the log itself: append, truncate, purge, and their order.

use std::path::Path;

use crate::{AppendDurability, BasicNode, Entry, EntryPayload, FlushNotifier, LogState, LogStore, StorageError};
use bytes::Bytes;

use super::support::{append_durably, blank, entries, entry, log_id, membership_entry, TestData, TestDir};
use crate::node::LogIndex;

/// Opens a store over `dir` and reads its state, as a node does at startup.
pub(super) fn start<S, F>(open: &mut F, dir: &Path) -> (S, LogState<TestData, BasicNode>)
where
    S: LogStore<TestData, BasicNode>,
    F: FnMut(&Path) -> Result<S, StorageError>,
{
    let mut store = open(dir).expect("opening the store");
    let state = store.read_state().expect("reading the state");
    (store, state)
}

/// The state a restarted node would see.
pub(super) fn restart<S, F>(open: &mut F, dir: &Path, store: S) -> (S, LogState<TestData, BasicNode>)
where
    S: LogStore<TestData, BasicNode>,
    F: FnMut(&Path) -> Result<S, StorageError>,
{
    drop(store);
    start(open, dir)
}

/// A new store has no entries, vote, committed id, purge point or snapshot
/// (only, if it keeps one, an incarnation).
pub fn new_store_reads_empty_state<S, F>(open: &mut F)
where
    S: LogStore<TestData, BasicNode>,
    F: FnMut(&Path) -> Result<S, StorageError>,
{
    let dir = TestDir::new("new_store_reads_empty_state");
    let (_store, state) = start(open, dir.path());
    assert_eq!(state, LogState { incarnation: state.incarnation, ..LogState::default() });
}

/// An append is durable at once, or the notifier reports its last log id.
pub fn append_reports_durability_of_the_last_entry<S, F>(open: &mut F)
where
    S: LogStore<TestData, BasicNode>,
    F: FnMut(&Path) -> Result<S, StorageError>,
{
    let dir = TestDir::new("append_reports_durability_of_the_last_entry");
    let (mut store, _) = start(open, dir.path());
    let (sender, reports) = std::sync::mpsc::channel();
    let notifier = FlushNotifier::new(move |log_id| {
        let _ = sender.send(log_id);
    });
    let batch = entries(1, 1..=3);
    if store.append(&batch, &notifier).expect("append") == AppendDurability::Pending {
        let reported = reports.recv_timeout(std::time::Duration::from_secs(10)).expect("a flush report");
        assert_eq!(reported, log_id(1, 3));
    }
}

/// Entries reported durable are all there, intact and in order, after a restart.
pub fn append_then_reopen_keeps_entries<S, F>(open: &mut F)
where
    S: LogStore<TestData, BasicNode>,
    F: FnMut(&Path) -> Result<S, StorageError>,
{
    let dir = TestDir::new("append_then_reopen_keeps_entries");
    let (mut store, _) = start(open, dir.path());
    append_durably(&mut store, &entries(1, 1..=10));
    let (_store, state) = restart(open, dir.path(), store);
    assert_eq!(state.entries, entries(1, 1..=10));
}

/// Many appends of varied sizes come back as one log in call order.
pub fn appends_in_many_calls_keep_order<S, F>(open: &mut F)
where
    S: LogStore<TestData, BasicNode>,
    F: FnMut(&Path) -> Result<S, StorageError>,
{
    let dir = TestDir::new("appends_in_many_calls_keep_order");
    let (mut store, _) = start(open, dir.path());
    let mut next = 1;
    for size in (0..60).map(|call| call % 7 + 1) {
        append_durably(&mut store, &entries(1, next..=next + size - 1));
        next += size;
    }
    let (_store, state) = restart(open, dir.path(), store);
    assert_eq!(state.entries, entries(1, 1..=next - 1));
}

/// Blank, membership, empty and large payloads all round-trip.
pub fn every_payload_kind_round_trips<S, F>(open: &mut F)
where
    S: LogStore<TestData, BasicNode>,
    F: FnMut(&Path) -> Result<S, StorageError>,
{
    let dir = TestDir::new("every_payload_kind_round_trips");
    let (mut store, _) = start(open, dir.path());
    let sized = |index, len: usize| Entry {
        log_id: log_id(1, index),
        payload: EntryPayload::Normal(TestData::new(Bytes::from(vec![index as u8; len]))),
    };
    let batch = vec![blank(1, 1), membership_entry(1, 2), sized(3, 0), sized(4, 1 << 20), entry(1, 5)];
    append_durably(&mut store, &batch);
    let (_store, state) = restart(open, dir.path(), store);
    assert_eq!(state.entries, batch);
}

/// After a conflict, the re-appended entries replace the truncated tail.
pub fn truncate_then_append_replaces_tail<S, F>(open: &mut F)
where
    S: LogStore<TestData, BasicNode>,
    F: FnMut(&Path) -> Result<S, StorageError>,
{
    let dir = TestDir::new("truncate_then_append_replaces_tail");
    let (mut store, _) = start(open, dir.path());
    append_durably(&mut store, &entries(1, 1..=10));
    store.truncate(LogIndex(6)).expect("truncate");
    append_durably(&mut store, &entries(2, 6..=8));
    let (_store, state) = restart(open, dir.path(), store);
    let mut expected = entries(1, 1..=5);
    expected.extend(entries(2, 6..=8));
    assert_eq!(state.entries, expected);
}

/// Truncating from the first entry empties the log; appends start over at 1.
pub fn truncate_everything_then_append_restarts_log<S, F>(open: &mut F)
where
    S: LogStore<TestData, BasicNode>,
    F: FnMut(&Path) -> Result<S, StorageError>,
{
    let dir = TestDir::new("truncate_everything_then_append_restarts_log");
    let (mut store, _) = start(open, dir.path());
    append_durably(&mut store, &entries(1, 1..=4));
    store.truncate(LogIndex(1)).expect("truncate");
    append_durably(&mut store, &entries(2, 1..=2));
    let (_store, state) = restart(open, dir.path(), store);
    assert_eq!(state.entries, entries(2, 1..=2));
}

/// Truncating after the last entry removes nothing.
pub fn truncate_past_last_entry_changes_nothing<S, F>(open: &mut F)
where
    S: LogStore<TestData, BasicNode>,
    F: FnMut(&Path) -> Result<S, StorageError>,
{
    let dir = TestDir::new("truncate_past_last_entry_changes_nothing");
    let (mut store, _) = start(open, dir.path());
    append_durably(&mut store, &entries(1, 1..=3));
    store.truncate(LogIndex(4)).expect("truncate");
    append_durably(&mut store, &entries(1, 4..=4));
    let (_store, state) = restart(open, dir.path(), store);
    assert_eq!(state.entries, entries(1, 1..=4));
}

/// Purge removes entries up to the purge point and keeps every later one.
pub fn purge_keeps_unpurged_entries<S, F>(open: &mut F)
where
    S: LogStore<TestData, BasicNode>,
    F: FnMut(&Path) -> Result<S, StorageError>,
{
    let dir = TestDir::new("purge_keeps_unpurged_entries");
    let (mut store, _) = start(open, dir.path());
    append_durably(&mut store, &entries(1, 1..=200));
    store.purge(log_id(1, 120)).expect("purge");
    append_durably(&mut store, &entries(1, 201..=201));
    let (_store, state) = restart(open, dir.path(), store);
    assert_eq!(state.last_purged, Some(log_id(1, 120)));
    assert_eq!(state.entries, entries(1, 121..=201));
}

/// Purging past the last entry (a snapshot installed from the leader) empties
/// the log, and the next append follows the purge point.
pub fn purge_past_last_entry_continues_after_purge_point<S, F>(open: &mut F)
where
    S: LogStore<TestData, BasicNode>,
    F: FnMut(&Path) -> Result<S, StorageError>,
{
    let dir = TestDir::new("purge_past_last_entry_continues_after_purge_point");
    let (mut store, _) = start(open, dir.path());
    append_durably(&mut store, &entries(1, 1..=5));
    store.purge(log_id(3, 50)).expect("purge");
    let (mut store, state) = restart(open, dir.path(), store);
    assert_eq!(state.last_purged, Some(log_id(3, 50)));
    assert_eq!(state.entries, Vec::new());
    append_durably(&mut store, &entries(3, 51..=52));
    let (_store, state) = restart(open, dir.path(), store);
    assert_eq!(state.last_purged, Some(log_id(3, 50)));
    assert_eq!(state.entries, entries(3, 51..=52));
}

/// Appends, purges and truncates issued back to back take effect in call
/// order, even when none waits for the previous one.
pub fn mutations_apply_in_call_order<S, F>(open: &mut F)
where
    S: LogStore<TestData, BasicNode>,
    F: FnMut(&Path) -> Result<S, StorageError>,
{
    let dir = TestDir::new("mutations_apply_in_call_order");
    let (mut store, _) = start(open, dir.path());
    let ignore = FlushNotifier::new(|_| {});
    store.append(&entries(1, 1..=100), &ignore).expect("append");
    store.purge(log_id(1, 40)).expect("purge");
    store.append(&entries(1, 101..=150), &ignore).expect("append");
    store.truncate(LogIndex(120)).expect("truncate");
    store.append(&entries(2, 120..=125), &ignore).expect("append");
    store.truncate(LogIndex(124)).expect("truncate");
    append_durably(&mut store, &entries(3, 124..=130));
    let (_store, state) = restart(open, dir.path(), store);
    let mut expected = entries(1, 41..=119);
    expected.extend(entries(2, 120..=123));
    expected.extend(entries(3, 124..=130));
    assert_eq!(state.last_purged, Some(log_id(1, 40)));
    assert_eq!(state.entries, expected);
}
