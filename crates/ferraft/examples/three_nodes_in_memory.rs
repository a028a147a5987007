//! Three nodes in one process on the in-memory store and network: initialize,
//! write, restart a node, add a learner, promote it, and remove a voter.
//!
//! Run it with `cargo run -p ferraft --example three_nodes_in_memory`; set
//! `RUST_LOG=ferraft=info` to see the library's own log lines as well.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use ferraft::mem::{MemLogStore, MemRouter};
use ferraft::{BasicNode, ChangeMembers, Config, LogId, LogIndex, NodeId, Raft, StateMachine, StorageError};
use serde::{Deserialize, Serialize};

/// What clients write: set a key.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Set {
    key: String,
    value: String,
}

/// The replicated application: a map from key to value. Clones share the map,
/// so `main` can read what a node applied.
#[derive(Debug, Clone, Default)]
struct KeyValue {
    map: Arc<Mutex<BTreeMap<String, String>>>,
}

impl KeyValue {
    fn get(&self, key: &str) -> Option<String> {
        self.map.lock().unwrap().get(key).cloned()
    }
}

impl StateMachine for KeyValue {
    type Command = Set;
    /// The previous value.
    type Response = Option<String>;

    fn apply(&mut self, _log_id: LogId, command: &Set) -> Option<String> {
        self.map.lock().unwrap().insert(command.key.clone(), command.value.clone())
    }

    fn snapshot(&mut self) -> Result<Bytes, StorageError> {
        let json = serde_json::to_vec(&*self.map.lock().unwrap()).map_err(|e| StorageError::new("encoding", e))?;
        Ok(Bytes::from(json))
    }

    fn restore(&mut self, data: &Bytes) -> Result<(), StorageError> {
        let map = serde_json::from_slice(data).map_err(|e| StorageError::new("decoding", e))?;
        *self.map.lock().unwrap() = map;
        Ok(())
    }
}

type Node = Raft<KeyValue, BasicNode>;

const WAIT: Duration = Duration::from_secs(10);

struct Cluster {
    router: Arc<MemRouter<Set>>,
    config: Config,
    nodes: BTreeMap<NodeId, (Node, KeyValue)>,
    /// Each node's store; it outlives the node, as a disk would.
    stores: BTreeMap<NodeId, MemLogStore<Set, BasicNode>>,
}

impl Cluster {
    fn addr(id: NodeId) -> BasicNode {
        BasicNode::new(format!("node-{id}"))
    }

    /// Starts node `id` on its store (a new one the first time) with an empty
    /// state machine, and makes it reachable through the router.
    async fn start(&mut self, id: NodeId) -> Result<Node, Box<dyn std::error::Error>> {
        let state_machine = KeyValue::default();
        let store = Box::new(self.stores.entry(id).or_default().clone());
        let raft = Raft::new(id, self.config.clone(), self.router.network(), store, state_machine.clone()).await?;
        self.router.register(Self::addr(id).addr, raft.clone());
        self.nodes.insert(id, (raft.clone(), state_machine));
        println!("started node {id} at {}", Self::addr(id).addr);
        Ok(raft)
    }

    /// Stops node `id`, as a crash or a planned stop would; its store stays.
    async fn stop(&mut self, id: NodeId) -> Result<(), Box<dyn std::error::Error>> {
        self.router.unregister(&Self::addr(id).addr);
        if let Some((raft, _)) = self.nodes.remove(&id) {
            raft.shutdown().await?;
        }
        println!("stopped node {id}");
        Ok(())
    }

    fn raft(&self, id: NodeId) -> &Node {
        &self.nodes[&id].0
    }

    /// The leader, as node `asking` sees it.
    async fn leader(&self, asking: NodeId) -> Result<Node, Box<dyn std::error::Error>> {
        let id = self.raft(asking).wait(WAIT).for_leader().await?;
        Ok(self.raft(id).clone())
    }

    fn print_membership(&self, leader: &Node) {
        let metrics = leader.metrics().borrow().clone();
        if let Some(stored) = &metrics.membership {
            let committed = if metrics.membership_committed { "committed" } else { "not committed yet" };
            println!("  membership {} ({committed})", stored.membership);
        }
    }
}

fn set(key: &str, value: &str) -> Set {
    Set { key: key.to_string(), value: value.to_string() }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    // Everything is in one process, so timeouts can be short.
    let config = Config {
        heartbeat_interval_ms: 20,
        election_timeout_min_ms: 150,
        election_timeout_max_ms: 300,
        ..Config::default()
    };
    let mut cluster = Cluster { router: MemRouter::new(), config, nodes: BTreeMap::new(), stores: BTreeMap::new() };

    println!("== start three fresh nodes and make them a cluster");
    let ids = [1, 2, 3].map(NodeId);
    for id in ids {
        cluster.start(id).await?;
    }
    let members: BTreeMap<NodeId, BasicNode> = ids.map(|id| (id, Cluster::addr(id))).into();
    cluster.raft(NodeId(1)).initialize(members).await?;
    let leader = cluster.leader(NodeId(1)).await?;
    println!("node {} is the leader", leader.id());
    cluster.print_membership(&leader);

    println!("== write through the leader");
    let mut last = LogIndex(0);
    for (key, value) in [("colour", "blue"), ("shape", "round"), ("colour", "green")] {
        let written = leader.client_write(set(key, value)).await?;
        println!("  {key} = {value} at log index {}, previous value {:?}", written.log_id.index, written.response);
        last = written.log_id.index;
    }
    // A write returns once the leader applied it; followers apply it soon after.
    for (id, (raft, state_machine)) in &cluster.nodes {
        raft.wait(WAIT).applied_at_least(last).await?;
        println!("  node {id} applied up to {last}: colour = {:?}", state_machine.get("colour"));
    }

    println!("== stop a follower, keep writing, start it again on its store");
    let follower = if leader.id() == NodeId(3) { NodeId(2) } else { NodeId(3) };
    cluster.stop(follower).await?;
    let written = leader.client_write(set("size", "large")).await?;
    println!("  size = large at log index {} while node {follower} is down", written.log_id.index);
    cluster.start(follower).await?;
    // Nothing else to do: the node rebuilds its state from its log, and the
    // leader resumes replication when it hears from it again.
    let last = written.log_id.index;
    cluster.raft(follower).wait(WAIT).applied_at_least(last).await?;
    let size = cluster.nodes[&follower].1.get("size");
    println!("  node {follower} is back and applied up to {last}: size = {size:?}");

    println!("== add node 4 as a learner; it catches up but does not vote");
    cluster.start(NodeId(4)).await?;
    let leader = cluster.leader(NodeId(1)).await?;
    leader.add_learner(NodeId(4), Cluster::addr(NodeId(4)), true).await?;
    // `blocking` waits until the leader replicated its log to node 4; node 4
    // applies it as soon as it learns the commit point.
    cluster.raft(NodeId(4)).wait(WAIT).applied_at_least(last).await?;
    println!("  node 4 caught up: colour = {:?}", cluster.nodes[&NodeId(4)].1.get("colour"));
    cluster.print_membership(&leader);

    println!("== promote node 4 to voter (through a joint config, decided by the library)");
    let ids: BTreeSet<NodeId> = [NodeId(4)].into();
    let stored = leader.change_membership(ChangeMembers::AddVoterIds(ids), false).await?;
    println!("  now in force: {}", stored.membership);

    println!("== remove voter 1, keeping it as a learner (retain = true)");
    let leader = cluster.leader(NodeId(2)).await?;
    let stored = leader.change_membership(ChangeMembers::RemoveVoters([NodeId(1)].into()), true).await?;
    println!("  now in force: {}", stored.membership);

    println!("== the cluster keeps working");
    // Node 1 was the leader: it stepped down once the config without it
    // committed, and handed leadership to an up-to-date voter.
    let new_leader = |m: &ferraft::RaftMetrics<BasicNode>| m.current_leader.is_some_and(|l| l != NodeId(1));
    let id = cluster.raft(NodeId(2)).wait(WAIT).metrics(new_leader, "a leader other than node 1").await?.current_leader;
    let leader = cluster.raft(id.expect("checked by the wait")).clone();
    let written = leader.client_write(set("shape", "square")).await?;
    println!("  node {} committed shape = square at index {}", leader.id(), written.log_id.index);
    cluster.print_membership(&leader);

    for (raft, _) in cluster.nodes.values() {
        raft.shutdown().await?;
    }
    println!("done");
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    tokio::runtime::Runtime::new()?.block_on(run())
}
