//! A cluster of in-process nodes on the in-memory store and network.
#![allow(dead_code)]

pub mod hooked_store;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ferraft::mem::{MemLogStore, MemRouter, RecordingStateMachine};
use ferraft::{BasicNode, Config, LeaderIdMode, LogIndex, NodeId, Raft, ServerState};

pub type Sm = RecordingStateMachine<u64>;
pub type Node = Raft<Sm, BasicNode>;

pub const WAIT: Duration = Duration::from_secs(10);

pub fn fast_config(mode: LeaderIdMode) -> Config {
    Config {
        heartbeat_interval_ms: 20,
        election_timeout_min_ms: 150,
        election_timeout_max_ms: 300,
        leader_id_mode: mode,
        ..Config::default()
    }
}

// Scenarios name nodes by plain numbers; a helper taking one id also takes a `NodeId`.

pub fn addr(id: impl Into<NodeId>) -> String {
    format!("node-{}", id.into())
}

pub fn nodes(ids: &[impl Into<NodeId> + Copy]) -> BTreeMap<NodeId, BasicNode> {
    ids.iter().map(|&id| (id.into(), BasicNode::new(addr(id)))).collect()
}

pub struct Member {
    pub raft: Node,
    pub store: MemLogStore<u64, BasicNode>,
    pub sm: Sm,
}

pub struct Cluster {
    pub router: Arc<MemRouter<u64>>,
    pub config: Config,
    pub members: BTreeMap<NodeId, Member>,
}

impl Cluster {
    pub fn new(config: Config) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        Self { router: MemRouter::new(), config, members: BTreeMap::new() }
    }

    /// Starts (or restarts, on its old store) node `id`.
    pub async fn start(&mut self, id: impl Into<NodeId>) -> Node {
        let id = id.into();
        let (store, sm) = match self.members.remove(&id) {
            Some(old) => {
                let _ = old.raft.shutdown().await;
                // the state machine is rebuilt from snapshot + log, like a real restart
                (old.store, Sm::new())
            }
            None => (MemLogStore::new(), Sm::new()),
        };
        let raft = Raft::new(id, self.config.clone(), self.router.network(), Box::new(store.clone()), sm.clone())
            .await
            .expect("node starts");
        self.router.register(addr(id), raft.clone());
        self.members.insert(id, Member { raft: raft.clone(), store, sm });
        raft
    }

    /// Starts nodes `ids` and initializes them as the voters.
    pub async fn start_initialized(config: Config, ids: &[impl Into<NodeId> + Copy]) -> Self {
        let mut cluster = Self::new(config);
        for id in ids {
            cluster.start(*id).await;
        }
        cluster.raft(ids[0]).initialize(nodes(ids)).await.expect("initialize");
        cluster
    }

    pub fn raft(&self, id: impl Into<NodeId>) -> &Node {
        &self.members[&id.into()].raft
    }

    /// Stops a node (a crash: nothing in flight is flushed beyond the store).
    pub async fn crash(&mut self, id: impl Into<NodeId>) {
        let id = id.into();
        self.router.unregister(&addr(id));
        self.raft(id).shutdown().await.expect("shutdown");
    }

    /// Waits until the nodes in `ids` agree on one leader among them; returns it.
    pub async fn leader_among(&self, ids: &[impl Into<NodeId> + Copy]) -> NodeId {
        let ids: Vec<NodeId> = ids.iter().map(|&id| id.into()).collect();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let leaders: Vec<NodeId> = ids
                .iter()
                .filter(|id| self.raft(**id).metrics().borrow().state == ServerState::Leader)
                .copied()
                .collect();
            if let [leader] = leaders[..] {
                let agreed = ids.iter().all(|id| self.raft(*id).metrics().borrow().current_leader == Some(leader));
                if agreed {
                    return leader;
                }
            }
            assert!(tokio::time::Instant::now() < deadline, "no single leader among {ids:?}: {leaders:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The leader's read index: covers every write it acknowledged.
    pub async fn read_index(&self, leader: impl Into<NodeId>) -> LogIndex {
        self.raft(leader).ensure_linearizable().await.expect("leader read index")
    }

    pub async fn wait_applied(&self, ids: &[impl Into<NodeId> + Copy], index: LogIndex) {
        for id in ids.iter().map(|&id| -> NodeId { id.into() }) {
            self.raft(id).wait(WAIT).applied_at_least(index).await.unwrap_or_else(|e| panic!("node {id}: {e}"));
        }
    }

    /// Every node in `ids` applied exactly `expected`, in order.
    pub fn assert_applied_everywhere(&self, ids: &[impl Into<NodeId> + Copy], expected: &[u64]) {
        for id in ids.iter().map(|&id| -> NodeId { id.into() }) {
            assert_eq!(self.applied(id), expected, "node {id} applied the same writes in the same order");
        }
    }

    /// The commands node `id` applied, in order.
    pub fn applied(&self, id: impl Into<NodeId>) -> Vec<u64> {
        self.members[&id.into()].sm.applied().into_iter().map(|(_, c)| c).collect()
    }
}
