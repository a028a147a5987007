//! A change id outlives its compacted log entries on the real WAL: nodes on
//! `WalStore` make a change with an id, snapshot and purge the log behind
//! it, a new node gets the snapshot in many chunks (into its partial
//! snapshot file), and after every node restarts from its data dir a repeat
//! of the change is answered with the first outcome and proposes nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferraft::mem::{MemRouter, RecordingStateMachine};
use ferraft::testing::conformance::TestDir;
use ferraft::{
    BasicNode, ChangeGuard, ChangeMembers, ChangeMembershipError, ChangeOptions, ChangeStatus, Config, LogIndex,
    LogStore, MessageBody, NodeId, Raft, RaftMetrics, ServerState, StoredMembership,
};
use ferraft_wal::{WalOptions, WalStore};

type Sm = RecordingStateMachine<u64>;
type Node = Raft<Sm, BasicNode>;
type Store = WalStore<u64, BasicNode>;

const WAIT: Duration = Duration::from_secs(10);
const CHUNK_BYTES: usize = 64;

fn addr(id: NodeId) -> String {
    format!("node-{id}")
}

fn set(ids: &[u64]) -> BTreeSet<NodeId> {
    ids.iter().copied().map(NodeId).collect()
}

fn with_id(change_id: &str, retain: bool) -> ChangeOptions {
    let guard = ChangeGuard { change_id: Some(change_id.to_string()), expect_membership_index: None };
    ChangeOptions { retain, force: true, guard }
}

struct Cluster {
    router: Arc<MemRouter<u64>>,
    config: Config,
    dir: TestDir,
    nodes: BTreeMap<NodeId, Node>,
}

impl Cluster {
    fn open(&self, id: NodeId) -> Store {
        let mut options = WalOptions::new(id, 1);
        // small segments: a purge drops whole ones
        options.segment_bytes = 4096;
        Store::open(self.dir.path().join(format!("node-{id}")), options).expect("the WAL opens")
    }

    async fn start(&mut self, id: u64) {
        let id = NodeId(id);
        let store = self.open(id);
        let raft = Raft::new(id, self.config.clone(), self.router.network(), Box::new(store), Sm::new())
            .await
            .expect("node starts");
        self.router.register(addr(id), raft.clone());
        self.nodes.insert(id, raft);
    }

    async fn stop(&mut self, id: NodeId) {
        self.router.unregister(&addr(id));
        self.nodes.remove(&id).expect("running").shutdown().await.expect("shutdown");
    }

    fn raft(&self, id: NodeId) -> &Node {
        &self.nodes[&id]
    }

    async fn leader(&self) -> NodeId {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let leaders: Vec<_> =
                self.nodes.iter().filter(|(_, r)| r.metrics().borrow().state == ServerState::Leader).collect();
            if let [(id, raft)] = leaders[..] {
                if raft.ensure_linearizable().await.is_ok() {
                    return *id;
                }
            }
            assert!(tokio::time::Instant::now() < deadline, "no leader");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn wait_applied(&self, index: LogIndex) {
        for raft in self.nodes.values() {
            raft.wait(WAIT).applied_at_least(index).await.expect("applied");
        }
    }
}

/// The repeat of "remove `out`" under "x" on the leader `node`: answered
/// with `first`, nothing proposed, `out` still a voter; the status says
/// committed; another change under the id is refused.
async fn check_repeat(node: &Node, out: NodeId, first: &StoredMembership<BasicNode>) {
    let last = node.metrics().borrow().last_log_index;
    let again = node
        .change_membership_with(ChangeMembers::RemoveVoters(set(&[out.0])), with_id("x", true))
        .await
        .expect("the repeat is answered with the first outcome");
    assert_eq!(&again, first, "the first call's outcome");
    assert_eq!(node.metrics().borrow().last_log_index, last, "the repeat proposed nothing");
    let in_force = node.metrics().borrow().membership.clone().unwrap();
    assert!(in_force.membership.is_voter(out), "the removal did not run again: {in_force:?}");
    match node.change_status("x").await.expect("a status") {
        ChangeStatus::Committed { membership } => assert_eq!(&membership, first),
        other => panic!("status of a committed change: {other:?}"),
    }
    let other = node.change_membership_with(ChangeMembers::RemoveVoters(set(&[out.0])), with_id("x", false)).await;
    assert!(matches!(other, Err(ChangeMembershipError::ChangeIdReused { .. })), "{other:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_id_outlives_compaction_install_and_a_restart_on_the_wal() {
    let config = Config {
        snapshot_logs_since_last: 0,
        purge_keep_entries: 0,
        catch_up_retain_entries: 0,
        snapshot_chunk_bytes: CHUNK_BYTES,
        ..Config::default()
    };
    let mut cluster =
        Cluster { router: MemRouter::new(), config, dir: TestDir::new("change_ids_on_disk"), nodes: BTreeMap::new() };
    for id in 1..=3 {
        cluster.start(id).await;
    }
    let voters: BTreeMap<_, _> = (1..=3).map(|id| (NodeId(id), BasicNode::new(addr(NodeId(id))))).collect();
    cluster.raft(NodeId(1)).initialize(voters).await.expect("initialize");
    let leader = cluster.leader().await;
    let out = (1..=3).map(NodeId).find(|id| *id != leader).unwrap();
    let first = cluster
        .raft(leader)
        .change_membership_with(ChangeMembers::RemoveVoters(set(&[out.0])), with_id("x", true))
        .await
        .expect("the first call");
    // someone puts it back
    let back = cluster.raft(leader).change_membership(ChangeMembers::AddVoterIds(set(&[out.0])), false).await;
    back.expect("re-adding the voter");
    for i in 0..40 {
        cluster.raft(leader).client_write(i).await.expect("a write");
    }
    let last = cluster.raft(leader).ensure_linearizable().await.expect("a read index");
    cluster.wait_applied(last).await;
    let change_index = first.log_id.unwrap().index;
    for raft in cluster.nodes.values() {
        raft.trigger_snapshot().await.expect("a snapshot");
        let purged = |m: &RaftMetrics<BasicNode>| m.purged.is_some_and(|p| p.index > change_index);
        raft.wait(WAIT).metrics(purged, "log purged past the change").await.expect("purged");
    }
    check_repeat(cluster.raft(leader), out, &first).await;

    // a new node gets the snapshot in many chunks, only the first with the record
    let chunks = Arc::new(Mutex::new(Vec::new()));
    let seen = chunks.clone();
    cluster.router.set_tap(move |message| {
        if let MessageBody::Snapshot(chunk) = &message.body {
            seen.lock().unwrap().push((chunk.offset, chunk.meta.changes.get("x").is_some()));
        }
    });
    cluster.start(4).await;
    let added = cluster.raft(leader).add_learner(NodeId(4), BasicNode::new(addr(NodeId(4))), true).await;
    added.expect("node 4 added and caught up");
    let installed = |m: &RaftMetrics<BasicNode>| m.snapshot.is_some_and(|s| s.index > change_index);
    cluster.raft(NodeId(4)).wait(WAIT).metrics(installed, "snapshot installed on 4").await.expect("installed");
    let chunks = chunks.lock().unwrap().clone();
    assert!(chunks.len() > 3, "a transfer of many chunks: {chunks:?}");
    assert!(chunks.iter().all(|(offset, record)| *record == (*offset == 0)), "{chunks:?}");

    // every node restarts from its data dir
    let ids: Vec<_> = cluster.nodes.keys().copied().collect();
    for id in &ids {
        cluster.stop(*id).await;
    }
    // node 4 saved the record with the snapshot it received
    let state = cluster.open(NodeId(4)).read_state().expect("node 4's state");
    let snapshot = state.snapshot.expect("node 4 saved the snapshot");
    // (its joint step, and the outcome that followed it)
    let remembered = snapshot.meta.changes.get("x").and_then(|c| c.next.as_ref());
    assert_eq!(remembered, Some(&first), "{:?}", snapshot.meta);
    for id in &ids {
        cluster.start(id.0).await;
    }
    let leader = cluster.leader().await;
    check_repeat(cluster.raft(leader), out, &first).await;
}
