//! Entries, directories and durability waits shared by the suite's rules.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::{
    AppendDurability, BasicNode, Entry, EntryPayload, FlushNotifier, LeaderId, LogId, LogIndex, LogStore, Membership,
    NodeId, Term,
};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// The application command the suite stores: an opaque payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestData {
    /// The command's bytes.
    pub payload: Bytes,
}

impl TestData {
    /// A command carrying `payload`.
    pub fn new(payload: Bytes) -> Self {
        Self { payload }
    }
}

/// A fresh directory under the system temp dir, removed on drop.
#[derive(Debug)]
pub struct TestDir {
    path: PathBuf,
}

impl TestDir {
    /// Creates an empty directory whose name starts with `label`.
    pub fn new(label: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let unique = NEXT.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!("{label}-{}-{unique}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).expect("creating a test dir");
        Self { path }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

// Rules name terms and indexes by plain numbers, as a reader of the rule would.

/// The log id of entry `index` proposed by node 1 in `term`.
pub fn log_id(term: u64, index: u64) -> LogId {
    LogId::new(LeaderId::new(Term(term), NodeId(1)), LogIndex(index))
}

/// A normal entry whose payload is derived from its position, so a reader
/// can tell a right entry from a stale or damaged one.
pub fn entry(term: u64, index: u64) -> Entry<TestData, BasicNode> {
    let payload = Bytes::from(format!("term {term} index {index}"));
    Entry { log_id: log_id(term, index), payload: EntryPayload::Normal(TestData::new(payload)) }
}

/// Normal entries `indexes` of `term`.
pub fn entries(term: u64, indexes: std::ops::RangeInclusive<u64>) -> Vec<Entry<TestData, BasicNode>> {
    indexes.map(|index| entry(term, index)).collect()
}

/// A blank entry (what a new leader appends first).
pub fn blank(term: u64, index: u64) -> Entry<TestData, BasicNode> {
    Entry { log_id: log_id(term, index), payload: EntryPayload::Blank }
}

/// An entry carrying a three-voter membership.
pub fn membership_entry(term: u64, index: u64) -> Entry<TestData, BasicNode> {
    let nodes: BTreeMap<_, _> =
        (1..=3).map(|id| (NodeId(id), BasicNode::new(format!("127.0.0.1:{}", 7000 + id)))).collect();
    let membership = Membership::new_uniform(nodes).expect("three voters form a valid membership");
    Entry { log_id: log_id(term, index), payload: EntryPayload::Membership(membership) }
}

/// Appends `batch` and waits until the store reports it durable.
///
/// Panics if the append fails or the notifier stays silent for 10 seconds.
pub fn append_durably<S: LogStore<TestData, BasicNode>>(store: &mut S, batch: &[Entry<TestData, BasicNode>]) {
    let Some(last) = batch.last().map(|e| e.log_id) else { return };
    let probe = Arc::new((Mutex::new(None::<LogId>), Condvar::new()));
    let notifier = {
        let probe = probe.clone();
        FlushNotifier::new(move |log_id| {
            let mut flushed = probe.0.lock().unwrap();
            if flushed.is_none_or(|seen| seen.index < log_id.index) {
                *flushed = Some(log_id);
            }
            probe.1.notify_all();
        })
    };
    match store.append(batch, &notifier).expect("append") {
        AppendDurability::Durable => return,
        AppendDurability::Pending => {}
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut flushed = probe.0.lock().unwrap();
    while flushed.is_none_or(|seen| seen.index < last.index) {
        let left = deadline.checked_duration_since(Instant::now()).expect("store never reported the append durable");
        flushed = probe.1.wait_timeout(flushed, left).unwrap().0;
    }
    assert_eq!(*flushed, Some(last), "the notifier must report the last appended log id, not past it");
}
