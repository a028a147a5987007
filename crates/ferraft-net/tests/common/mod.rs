//! Test nodes over loopback: a transport, its listener, and an inbox that
//! collects into channels.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ferraft::message::{AppendEntries, SnapshotChunk, TimeoutNow};
use ferraft::{
    BasicNode, Entry, EntryPayload, Envelope, LeaderId, LogId, Membership, Message, MessageBody, NodeId, SnapshotMeta,
    StoredMembership, Vote,
};
use ferraft::{LogIndex, Term};
use ferraft_net::{Inbox, NetConfig, TcpNetwork};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The application command of these tests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    pub data: Bytes,
}

pub type TestMessage = Message<Command, BasicNode>;
pub type TestNetwork = TcpNetwork<Command, BasicNode>;

pub const CLUSTER: u64 = 7;

/// Long enough for a loaded CI machine, short enough to fail fast.
pub const PATIENCE: Duration = Duration::from_secs(5);

/// Forwards everything the transport hands over into channels.
pub struct ChannelInbox {
    messages: mpsc::UnboundedSender<TestMessage>,
    unreachable: mpsc::UnboundedSender<NodeId>,
}

impl Inbox<Command, BasicNode> for ChannelInbox {
    fn deliver(&self, message: TestMessage) {
        let _ = self.messages.send(message);
    }

    fn unreachable(&self, peer: NodeId) {
        let _ = self.unreachable.send(peer);
    }
}

/// Fast reconnects so restart tests take milliseconds.
pub fn config(cluster_id: u64, node_id: NodeId) -> NetConfig {
    NetConfig {
        connect_timeout: Duration::from_millis(500),
        handshake_timeout: Duration::from_millis(300),
        backoff_min: Duration::from_millis(5),
        backoff_max: Duration::from_millis(50),
        ..NetConfig::new(cluster_id, node_id)
    }
}

/// One transport with its listener.
pub struct TestNode {
    pub id: NodeId,
    pub network: Arc<TestNetwork>,
    pub addr: SocketAddr,
    pub listener: JoinHandle<()>,
    pub inbox: Arc<ChannelInbox>,
    pub messages: mpsc::UnboundedReceiver<TestMessage>,
    pub unreachable: mpsc::UnboundedReceiver<NodeId>,
}

impl TestNode {
    /// A node listening on a free loopback port.
    pub fn start(id: NodeId) -> Self {
        Self::start_with(config(CLUSTER, id), "127.0.0.1:0")
    }

    /// A node with its own settings and listen address.
    pub fn start_with(config: NetConfig, listen_addr: &str) -> Self {
        let id = config.node_id;
        let network = Arc::new(TestNetwork::new(config, tokio::runtime::Handle::current()).unwrap());
        let (inbox, messages, unreachable) = channel_inbox();
        let (addr, listener) = network.serve(listen_addr, inbox.clone()).unwrap();
        Self { id, network, addr, listener, inbox, messages, unreachable }
    }

    /// How other nodes address this one.
    pub fn node(&self) -> BasicNode {
        BasicNode::new(self.addr.to_string())
    }

    /// Stops listening and closes inbound connections; outbound ones stay.
    pub async fn stop_listening(&mut self) {
        self.listener.abort();
        let _ = (&mut self.listener).await;
    }

    /// Listens again on the same address, into the same channels.
    pub fn restart_listening(&mut self) {
        let (addr, listener) = self.network.serve(self.addr, self.inbox.clone()).unwrap();
        assert_eq!(addr, self.addr);
        self.listener = listener;
    }

    /// The next delivered message, or a panic after [`PATIENCE`].
    pub async fn recv(&mut self) -> TestMessage {
        tokio::time::timeout(PATIENCE, self.messages.recv()).await.expect("message in time").expect("inbox open")
    }

    /// The next unreachable report, or a panic after [`PATIENCE`].
    pub async fn recv_unreachable(&mut self) -> NodeId {
        tokio::time::timeout(PATIENCE, self.unreachable.recv()).await.expect("report in time").expect("inbox open")
    }
}

/// A fresh inbox feeding new channels, and those channels.
pub fn channel_inbox() -> (Arc<ChannelInbox>, mpsc::UnboundedReceiver<TestMessage>, mpsc::UnboundedReceiver<NodeId>) {
    let (messages_tx, messages) = mpsc::unbounded_channel();
    let (unreachable_tx, unreachable) = mpsc::unbounded_channel();
    (Arc::new(ChannelInbox { messages: messages_tx, unreachable: unreachable_tx }), messages, unreachable)
}

/// An address nothing listens on (bound once, then released).
pub fn closed_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

pub fn envelope(from: NodeId, to: NodeId) -> Envelope {
    Envelope { cluster_id: CLUSTER, from, to, from_incarnation: 0, to_incarnation: 0 }
}

/// An append without entries: a heartbeat.
pub fn heartbeat(from: NodeId, to: NodeId, seq: u64) -> TestMessage {
    append(from, to, seq, 0, 0)
}

/// An append of `entries` entries of `entry_bytes` bytes each.
pub fn append(from: NodeId, to: NodeId, seq: u64, entries: usize, entry_bytes: usize) -> TestMessage {
    let data = Bytes::from(vec![0xab; entry_bytes]);
    let entries = (0..entries as u64)
        .map(|index| Entry {
            log_id: LogId::new(LeaderId::new(Term(1), from), LogIndex(seq * 1000 + index)),
            payload: EntryPayload::Normal(Command { data: data.clone() }),
        })
        .collect();
    let append = AppendEntries {
        vote: Vote::new_committed(Term(1), from),
        prev_log_id: None,
        entries,
        committed: None,
        seq,
        leader_node: None,
    };
    Message { envelope: envelope(from, to), body: MessageBody::Append(append) }
}

/// A snapshot chunk carrying `bytes` bytes.
pub fn snapshot_chunk(from: NodeId, to: NodeId, bytes: usize) -> TestMessage {
    let nodes = [(from, BasicNode::new("127.0.0.1:1"))].into_iter().collect();
    let membership = StoredMembership { log_id: None, membership: Membership::new_uniform(nodes).unwrap() };
    let meta = SnapshotMeta { last_log_id: None, membership, changes: Default::default() };
    let data = Bytes::from((0..bytes).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
    let chunk = SnapshotChunk {
        vote: Vote::new_committed(Term(1), from),
        meta,
        offset: 0,
        data,
        done: true,
        checksum: 0,
        seq: 1,
        leader_node: None,
    };
    Message { envelope: envelope(from, to), body: MessageBody::Snapshot(chunk) }
}

/// A small control message other than a heartbeat.
pub fn timeout_now(from: NodeId, to: NodeId) -> TestMessage {
    Message {
        envelope: envelope(from, to),
        body: MessageBody::TimeoutNow(TimeoutNow { vote: Vote::new(Term(1), from) }),
    }
}

/// The `seq` of an append (heartbeat or not).
pub fn seq_of(message: &TestMessage) -> u64 {
    match &message.body {
        MessageBody::Append(append) => append.seq,
        other => panic!("not an append: {other:?}"),
    }
}
