//! Real ferraft nodes talking over this transport on loopback.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{config as net_config, Command, TestNetwork, CLUSTER, PATIENCE};
use ferraft::mem::{MemLogStore, RecordingStateMachine};
use ferraft::{BasicNode, Config, LogIndex, NodeId, Raft, ServerState};
use tokio::task::JoinHandle;

type Sm = RecordingStateMachine<Command>;

struct Member {
    raft: Raft<Sm, BasicNode>,
    listener: JoinHandle<()>,
    addr: SocketAddr,
    store: MemLogStore<Command, BasicNode>,
    sm: Sm,
}

fn raft_config() -> Config {
    Config {
        cluster_id: CLUSTER,
        heartbeat_interval_ms: 20,
        election_timeout_min_ms: 150,
        election_timeout_max_ms: 300,
        ..Config::default()
    }
}

/// Starts node `id` on `store`, listening on `listen_addr`.
async fn start(id: NodeId, listen_addr: &str, store: MemLogStore<Command, BasicNode>) -> Member {
    let network = Arc::new(TestNetwork::new(net_config(CLUSTER, id), tokio::runtime::Handle::current()).unwrap());
    let sm = Sm::new();
    let raft = Raft::new(id, raft_config(), network.clone(), Box::new(store.clone()), sm.clone()).await.unwrap();
    let (addr, listener) = network.serve(listen_addr, Arc::new(raft.clone())).unwrap();
    Member { raft, listener, addr, store, sm }
}

/// A crash: the node stops and its listener closes every connection.
async fn crash(member: &Member) {
    member.listener.abort();
    member.raft.shutdown().await.unwrap();
}

async fn single_leader(members: &BTreeMap<NodeId, Member>) -> NodeId {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let leaders: Vec<NodeId> = members
            .iter()
            .filter(|(_, member)| member.raft.metrics().borrow().state == ServerState::Leader)
            .map(|(id, _)| *id)
            .collect();
        if let [leader] = leaders[..] {
            if members.values().all(|member| member.raft.metrics().borrow().current_leader == Some(leader)) {
                return leader;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "no single leader: {leaders:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn write_all(raft: &Raft<Sm, BasicNode>, values: std::ops::Range<u64>) -> LogIndex {
    let writes: Vec<_> = values
        .map(|value| {
            let raft = raft.clone();
            let command = Command { data: Bytes::from(value.to_le_bytes().to_vec()) };
            tokio::spawn(async move { raft.client_write(command).await.map(|response| response.log_id.index) })
        })
        .collect();
    let mut last = LogIndex(0);
    for write in writes {
        last = last.max(write.await.unwrap().expect("write commits"));
    }
    last
}

fn applied(member: &Member) -> Vec<Command> {
    member.sm.applied().into_iter().map(|(_, command)| command).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_replicate_over_tcp_and_a_restarted_follower_catches_up() {
    // Logs show only when the test fails.
    let _ = tracing_subscriber::fmt().with_test_writer().with_env_filter("info").try_init();
    let mut members = BTreeMap::new();
    for id in (1..=3).map(NodeId) {
        members.insert(id, start(id, "127.0.0.1:0", MemLogStore::new()).await);
    }
    let nodes: BTreeMap<NodeId, BasicNode> =
        members.iter().map(|(id, member)| (*id, BasicNode::new(member.addr.to_string()))).collect();
    members[&NodeId(1)].raft.initialize(nodes).await.unwrap();
    let leader = single_leader(&members).await;
    let last = write_all(&members[&leader].raft, 0..100).await;
    for member in members.values() {
        member.raft.wait(PATIENCE).applied_at_least(last).await.unwrap();
    }

    let follower = *members.keys().find(|id| **id != leader).unwrap();
    let crashed = members.remove(&follower).unwrap();
    crash(&crashed).await;
    let last = write_all(&members[&leader].raft, 100..150).await;
    // Long enough for the leader to find the follower unreachable and back off.
    tokio::time::sleep(Duration::from_millis(100)).await;

    let restarted = start(follower, &crashed.addr.to_string(), crashed.store.clone()).await;
    members.insert(follower, restarted);
    for member in members.values() {
        member.raft.wait(PATIENCE).applied_at_least(last).await.unwrap();
    }
    let reference = applied(&members[&leader]);
    assert_eq!(reference.len(), 150);
    for (id, member) in &members {
        assert_eq!(applied(member), reference, "node {id}");
    }
}
