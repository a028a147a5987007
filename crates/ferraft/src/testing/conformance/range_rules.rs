//! Rules about reading ranges back ([`LogStore::read_range`]), the way a
//! leader feeds a follower that lags behind its in-memory cache.
//!
//! A store that does not read ranges (`read_range` returns `None`) passes
//! these rules trivially: the runtime sends such a follower a snapshot.

use std::ops::Range;
use std::path::Path;

use crate::{BasicNode, Entry, FlushNotifier, LogIndex, LogStore, StorageError};

use super::log_rules::start;
use super::support::{append_durably, entries, TestData, TestDir};

type TestEntry = Entry<TestData, BasicNode>;

/// Runs a range read to the end on another thread, as the runtime does;
/// `None` when the store does not read ranges.
fn read<S: LogStore<TestData, BasicNode>>(store: &mut S, range: Range<LogIndex>) -> Option<Vec<TestEntry>> {
    let job = store.read_range(range)?;
    let read = std::thread::spawn(job).join().expect("the read job must not panic");
    Some(read.expect("reading a range"))
}

/// The entries with indexes `first..=last` of `term`.
fn expected(term: u64, first: LogIndex, last: LogIndex) -> Vec<TestEntry> {
    if first > last {
        return Vec::new();
    }
    entries(term, first.0..=last.0)
}

/// A range read returns exactly the entries asked for, in order, across
/// segment boundaries.
pub fn read_range_returns_the_entries_in_order<S, F>(open: &mut F)
where
    S: LogStore<TestData, BasicNode>,
    F: FnMut(&Path) -> Result<S, StorageError>,
{
    let dir = TestDir::new("read_range_returns_the_entries_in_order");
    let (mut store, _) = start(open, dir.path());
    for first in (1..=300).step_by(30) {
        append_durably(&mut store, &entries(1, first..=first + 29));
    }
    let Some(read) = read(&mut store, LogIndex(10)..LogIndex(250)) else { return };
    assert_eq!(read, expected(1, LogIndex(10), LogIndex(249)));
    assert_eq!(
        self::read(&mut store, LogIndex(1)..LogIndex(2)).expect("supported"),
        expected(1, LogIndex(1), LogIndex(1))
    );
}

/// A range reaching past the last entry stops there; one starting after it,
/// or an empty range, reads nothing.
pub fn read_range_stops_at_the_last_entry<S, F>(open: &mut F)
where
    S: LogStore<TestData, BasicNode>,
    F: FnMut(&Path) -> Result<S, StorageError>,
{
    let dir = TestDir::new("read_range_stops_at_the_last_entry");
    let (mut store, _) = start(open, dir.path());
    let Some(empty) = read(&mut store, LogIndex(1)..LogIndex(10)) else { return };
    assert_eq!(empty, Vec::new(), "a new store holds nothing");
    append_durably(&mut store, &entries(2, 1..=40));
    assert_eq!(
        read(&mut store, LogIndex(30)..LogIndex(1000)).expect("supported"),
        expected(2, LogIndex(30), LogIndex(40))
    );
    assert_eq!(read(&mut store, LogIndex(41)..LogIndex(50)).expect("supported"), Vec::new());
    assert_eq!(read(&mut store, LogIndex(20)..LogIndex(20)).expect("supported"), Vec::new());
}

/// Purged entries are not returned: a range starting at or before the purge
/// point reads nothing (its start is gone), one starting after it reads on.
pub fn read_range_of_purged_entries_is_empty<S, F>(open: &mut F)
where
    S: LogStore<TestData, BasicNode>,
    F: FnMut(&Path) -> Result<S, StorageError>,
{
    let dir = TestDir::new("read_range_of_purged_entries_is_empty");
    let (mut store, _) = start(open, dir.path());
    append_durably(&mut store, &entries(1, 1..=200));
    store.purge(super::support::log_id(1, 120)).expect("purge");
    let Some(gone) = read(&mut store, LogIndex(50)..LogIndex(150)) else { return };
    assert_eq!(gone, Vec::new(), "the range's start is purged");
    assert_eq!(read(&mut store, LogIndex(120)..LogIndex(130)).expect("supported"), Vec::new());
    assert_eq!(
        read(&mut store, LogIndex(121)..LogIndex(130)).expect("supported"),
        expected(1, LogIndex(121), LogIndex(129))
    );
}

/// A read sees every append made before the job was created, even one the
/// store has not reported durable yet, and entries that replaced truncated ones.
pub fn read_range_sees_appends_made_before_it<S, F>(open: &mut F)
where
    S: LogStore<TestData, BasicNode>,
    F: FnMut(&Path) -> Result<S, StorageError>,
{
    let dir = TestDir::new("read_range_sees_appends_made_before_it");
    let (mut store, _) = start(open, dir.path());
    append_durably(&mut store, &entries(1, 1..=60));
    store.truncate(LogIndex(41)).expect("truncate");
    let silent = FlushNotifier::new(|_| {});
    store.append(&entries(2, 41..=80), &silent).expect("append");
    let Some(read) = read(&mut store, LogIndex(1)..LogIndex(81)) else { return };
    let mut want = expected(1, LogIndex(1), LogIndex(40));
    want.extend(expected(2, LogIndex(41), LogIndex(80)));
    assert_eq!(read, want);
}

/// A job runs on its own thread while the store goes on appending; it
/// returns what it was asked for, unaffected by the later appends.
pub fn read_range_runs_beside_appends<S, F>(open: &mut F)
where
    S: LogStore<TestData, BasicNode>,
    F: FnMut(&Path) -> Result<S, StorageError>,
{
    let dir = TestDir::new("read_range_runs_beside_appends");
    let (mut store, _) = start(open, dir.path());
    append_durably(&mut store, &entries(1, 1..=100));
    let Some(job) = store.read_range(LogIndex(1)..LogIndex(101)) else { return };
    let reader = std::thread::spawn(job);
    for first in (101..=400).step_by(50) {
        append_durably(&mut store, &entries(1, first..=first + 49));
    }
    let read = reader.join().expect("the read job must not panic").expect("reading a range");
    assert_eq!(read, expected(1, LogIndex(1), LogIndex(100)));
}

/// A purge issued after the job was created (while it waits or reads) makes
/// it return what it read before the entries went, or nothing; never an
/// error, never an entry that is not the one at its index.
pub fn read_range_racing_a_purge_returns_entries_or_nothing<S, F>(open: &mut F)
where
    S: LogStore<TestData, BasicNode>,
    F: FnMut(&Path) -> Result<S, StorageError>,
{
    let dir = TestDir::new("read_range_racing_a_purge_returns_entries_or_nothing");
    let (mut store, _) = start(open, dir.path());
    append_durably(&mut store, &entries(1, 1..=300));
    let Some(job) = store.read_range(LogIndex(10)..LogIndex(200)) else { return };
    store.purge(super::support::log_id(1, 250)).expect("purge");
    // the purge's deletions are queued before this append: once it is
    // durable the files the job planned to read are gone
    append_durably(&mut store, &entries(1, 301..=310));
    let read = std::thread::spawn(job).join().expect("the read job must not panic").expect("no error");
    assert!(read.is_empty() || read == expected(1, LogIndex(10), LogIndex(199)), "got {} entries", read.len());
}
