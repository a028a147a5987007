//! A custom node type: each member carries its address *and* the zone it runs
//! in. The cluster replicates that descriptor with the membership, so every
//! node (and every client that gets a `ForwardToLeader`) knows where the
//! others are and in which zone.
//!
//! The example also writes its own small in-process [`Network`], since
//! `ferraft::mem::MemRouter` only routes `BasicNode`s.
//!
//! Run it with `cargo run -p ferraft --example custom_node`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use ferraft::mem::{MemLogStore, RecordingStateMachine};
use ferraft::{ChangeMembers, Config, LogIndex, Message, Network, NodeId, Raft, WriteError};
use serde::{Deserialize, Serialize};

/// What the cluster knows about a member. Any type that is `Clone + Debug + Eq +
/// Serialize + DeserializeOwned + Send + Sync + 'static` is a [`ferraft::Node`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ZonedNode {
    /// Where the node's transport listens: the only field the network reads.
    addr: String,
    /// Placement metadata the application uses, e.g. to spread voters.
    zone: String,
}

impl ZonedNode {
    fn new(id: NodeId, zone: &str) -> Self {
        Self { addr: format!("node-{id}"), zone: zone.to_string() }
    }
}

/// The commands are plain strings; the recording state machine keeps them.
type Command = String;
type StateMachine = RecordingStateMachine<Command>;
type Node = Raft<StateMachine, ZonedNode>;

/// Delivers a message to one local node.
type Inbox = Arc<dyn Fn(Message<Command, ZonedNode>) + Send + Sync>;

/// An in-process network: a table from address to the node listening there.
/// A real transport would open a connection to `target.addr` instead.
#[derive(Default)]
struct LocalNetwork {
    inboxes: RwLock<HashMap<String, Inbox>>,
}

impl LocalNetwork {
    /// Makes `raft` reachable at `addr`.
    fn listen(&self, addr: &str, raft: Node) {
        let inbox: Inbox = Arc::new(move |message| raft.receive(message));
        self.inboxes.write().unwrap().insert(addr.to_string(), inbox);
    }
}

impl Network<Command, ZonedNode> for LocalNetwork {
    fn send(&self, target: &ZonedNode, message: Message<Command, ZonedNode>) {
        // `send` must not block and cannot fail: a message for an address no one
        // listens at is dropped, and Raft sends it again later.
        let inbox = self.inboxes.read().unwrap().get(&target.addr).cloned();
        if let Some(deliver) = inbox {
            deliver(message);
        }
    }
}

const WAIT: Duration = Duration::from_secs(10);

async fn start(
    network: &Arc<LocalNetwork>,
    config: &Config,
    id: NodeId,
    zone: &str,
) -> Result<Node, Box<dyn std::error::Error>> {
    let node = ZonedNode::new(id, zone);
    let store = Box::new(MemLogStore::new());
    let raft = Raft::new(id, config.clone(), network.clone(), store, StateMachine::new()).await?;
    network.listen(&node.addr, raft.clone());
    Ok(raft)
}

fn print_members(raft: &Node) {
    let metrics = raft.metrics().borrow().clone();
    let Some(stored) = metrics.membership else { return };
    for (id, node) in stored.membership.nodes() {
        let role = if stored.membership.is_voter(*id) { "voter" } else { "learner" };
        println!("  node {id}: {role:7} at {:8} in zone {}", node.addr, node.zone);
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let config = Config {
        heartbeat_interval_ms: 20,
        election_timeout_min_ms: 150,
        election_timeout_max_ms: 300,
        ..Config::default()
    };
    let network = Arc::new(LocalNetwork::default());

    let zones = [(NodeId(1), "eu-west"), (NodeId(2), "eu-central"), (NodeId(3), "us-east")];
    let mut rafts = BTreeMap::new();
    for (id, zone) in zones {
        rafts.insert(id, start(&network, &config, id, zone).await?);
    }
    let members: BTreeMap<NodeId, ZonedNode> =
        zones.iter().map(|(id, zone)| (*id, ZonedNode::new(*id, zone))).collect();
    rafts[&NodeId(1)].initialize(members).await?;
    let leader_id = rafts[&NodeId(1)].wait(WAIT).for_leader().await?;
    println!("node {leader_id} leads; the membership carries every node's zone:");
    print_members(&rafts[&leader_id]);

    // A write sent to a follower fails with the leader's full descriptor, so a
    // client can pick the leader's address (and see its zone) from the error.
    let follower = rafts.values().find(|r| r.id() != leader_id).expect("three nodes");
    follower.wait(WAIT).leader_is(leader_id).await?;
    match follower.client_write("hello".to_string()).await {
        Err(WriteError::ForwardToLeader(forward)) => {
            println!("node {} redirects the client to {:?}", follower.id(), forward.leader_node)
        }
        other => println!("unexpected answer from a follower: {other:?}"),
    }
    let written = rafts[&leader_id].client_write("hello".to_string()).await?;
    println!("the leader committed \"hello\" at index {}", written.log_id.index);

    // A learner in a fourth zone.
    rafts.insert(NodeId(4), start(&network, &config, NodeId(4), "ap-south").await?);
    rafts[&leader_id].add_learner(NodeId(4), ZonedNode::new(NodeId(4), "ap-south"), true).await?;
    println!("node 4 joined as a learner:");
    print_members(&rafts[&leader_id]);

    // Metadata other than the address may change with `SetNodes`: here node 3
    // moves to another zone label while keeping its address.
    let relabelled = [(NodeId(3), ZonedNode::new(NodeId(3), "us-west"))].into();
    let stored = rafts[&leader_id].change_membership(ChangeMembers::SetNodes(relabelled), false).await?;
    println!("after relabelling node 3 (membership entry {:?}):", stored.log_id.map(|l| l.index));
    print_members(&rafts[&leader_id]);

    // Every node sees the same descriptors, replicated through the log.
    let index = stored.log_id.map_or(LogIndex(0), |log_id| log_id.index);
    rafts[&NodeId(4)].wait(WAIT).applied_at_least(index).await?;
    let seen_by_4 = rafts[&NodeId(4)].metrics().borrow().membership.clone().expect("a member");
    println!("node 4 sees node 3 in zone {}", seen_by_4.membership.node(NodeId(3)).expect("a member").zone);

    for raft in rafts.values() {
        raft.shutdown().await?;
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    tokio::runtime::Runtime::new()?.block_on(run())
}
