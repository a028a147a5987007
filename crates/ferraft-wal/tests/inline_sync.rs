//! `append_inline`: an idle writer's batch runs on the caller's thread and
//! the append returns durable; the notifier is not called for it.

use std::sync::{Arc, Mutex};

use ferraft::testing::conformance::{entries, TestData, TestDir};
use ferraft::{AppendDurability, BasicNode, FlushNotifier, LogId, LogStore, NodeId};
use ferraft_wal::{WalOptions, WalStore};

type Store = WalStore<TestData, BasicNode>;

fn recording() -> (FlushNotifier, Arc<Mutex<Vec<LogId>>>) {
    let told = Arc::new(Mutex::new(Vec::new()));
    let sink = told.clone();
    (FlushNotifier::new(move |log_id| sink.lock().unwrap().push(log_id)), told)
}

#[test]
fn an_idle_writer_syncs_an_inline_append_on_the_callers_thread() {
    let dir = TestDir::new("inline_idle");
    let mut store = Store::open(dir.path(), WalOptions::new(NodeId(1), 1)).unwrap();
    store.read_state().unwrap();
    let (notifier, told) = recording();
    for batch in [1..=3, 4..=4, 5..=9] {
        let durability = store.append_inline(&entries(1, batch), &notifier).unwrap();
        assert_eq!(durability, AppendDurability::Durable, "nothing else was queued: the writer was idle");
    }
    assert!(told.lock().unwrap().is_empty(), "an append returned durable is not reported again");
    drop(store);
    let mut store = Store::open(dir.path(), WalOptions::new(NodeId(1), 1)).unwrap();
    assert_eq!(store.read_state().unwrap().entries, entries(1, 1..=9));
}

#[test]
fn inline_and_handed_off_appends_interleave_in_order() {
    let dir = TestDir::new("inline_mixed");
    let mut store = Store::open(dir.path(), WalOptions::new(NodeId(1), 1)).unwrap();
    store.read_state().unwrap();
    let (notifier, told) = recording();
    for first in (1..=200u64).step_by(4) {
        let batch = entries(1, first..=first + 3);
        if first % 8 == 1 {
            store.append(&batch, &notifier).unwrap();
        } else {
            store.append_inline(&batch, &notifier).unwrap();
        }
    }
    store.truncate(ferraft::LogIndex(150)).unwrap();
    store.append_inline(&entries(2, 150..=160), &notifier).unwrap();
    let told = told.lock().unwrap().clone();
    assert!(told.windows(2).all(|pair| pair[0].index < pair[1].index), "reports only move forward: {told:?}");
    drop(store);
    let mut store = Store::open(dir.path(), WalOptions::new(NodeId(1), 1)).unwrap();
    let mut expected = entries(1, 1..=149);
    expected.extend(entries(2, 150..=160));
    assert_eq!(store.read_state().unwrap().entries, expected);
}
