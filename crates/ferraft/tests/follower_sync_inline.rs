//! A follower with nothing else to do asks its store to sync an append on
//! its own thread (`LogStore::append_inline`); a leader never does: its
//! appends must leave for the followers before it could wait for a sync.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use ferraft::mem::{MemRouter, RecordingStateMachine};
use ferraft::{AppendDurability, BasicNode, Config, Entry, FlushNotifier, LeaderIdMode, LogStore, NodeId, Raft};
use support::hooked_store::{Hooked, Mem, StoreHooks};
use support::{addr, fast_config, nodes, Node, WAIT};

/// Counts the appends offered to sync inline.
struct CountInline(Arc<AtomicUsize>);

impl StoreHooks for CountInline {
    fn append_inline(
        &mut self,
        store: &mut Mem,
        entries: &[Entry<u64, BasicNode>],
        notifier: &FlushNotifier,
    ) -> Result<AppendDurability, ferraft::StorageError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        store.append_inline(entries, notifier)
    }
}

/// Runs 30 writes, one at a time, on a 3-node cluster; the inline appends
/// each node's store was offered while they ran: the leader's, the followers'.
async fn inline_appends_by_role(config: Config) -> (usize, Vec<usize>) {
    let router = MemRouter::new();
    let mut members: Vec<(NodeId, Node, Arc<AtomicUsize>)> = Vec::new();
    for id in [1, 2, 3].map(NodeId) {
        let count = Arc::new(AtomicUsize::new(0));
        let store = Hooked { store: Mem::new(), hooks: CountInline(count.clone()) };
        let sm = RecordingStateMachine::<u64>::new();
        let raft = Raft::new(id, config.clone(), router.network(), Box::new(store), sm).await.unwrap();
        router.register(addr(id), raft.clone());
        members.push((id, raft, count));
    }
    members[0].1.initialize(nodes(&[1, 2, 3])).await.unwrap();
    let leader = members[0].1.wait(WAIT).for_leader().await.unwrap();
    let leader_raft = members.iter().find(|(id, ..)| *id == leader).unwrap().1.clone();
    // (node 1 appended the initial membership before anyone led)
    for (.., count) in &members {
        count.store(0, Ordering::Relaxed);
    }
    for n in 0..30 {
        leader_raft.client_write(n).await.unwrap();
    }
    let target = leader_raft.metrics().borrow().last_log_index;
    for (_, raft, _) in &members {
        raft.wait(WAIT).applied_at_least(target).await.unwrap();
    }
    let on_leader = members.iter().find(|(id, ..)| *id == leader).unwrap().2.load(Ordering::Relaxed);
    let on_followers =
        members.iter().filter(|(id, ..)| *id != leader).map(|(.., count)| count.load(Ordering::Relaxed)).collect();
    for (_, raft, _) in members {
        raft.shutdown().await.unwrap();
    }
    (on_leader, on_followers)
}

#[tokio::test]
async fn idle_followers_sync_inline_and_the_leader_never_does() {
    let (on_leader, on_followers) = inline_appends_by_role(fast_config(LeaderIdMode::Standard)).await;
    assert_eq!(on_leader, 0, "the leader's appends are handed off, so its sends leave first");
    assert!(
        on_followers.iter().all(|&count| count > 0),
        "each follower synced some of 30 writes inline: {on_followers:?}"
    );
}

#[tokio::test]
async fn switched_off_nobody_syncs_inline() {
    let config = Config { follower_sync_inline: false, ..fast_config(LeaderIdMode::Standard) };
    let (on_leader, on_followers) = inline_appends_by_role(config).await;
    assert_eq!((on_leader, on_followers), (0, vec![0, 0]));
}

/// On a multi-thread runtime the driver's thread is a worker that other
/// tasks (other nodes, the application's) are queued on: a sync there would
/// stall them all, so the node hands every append off whatever the setting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_multi_thread_runtime_nobody_syncs_inline() {
    let (on_leader, on_followers) = inline_appends_by_role(fast_config(LeaderIdMode::Standard)).await;
    assert_eq!((on_leader, on_followers), (0, vec![0, 0]));
}
