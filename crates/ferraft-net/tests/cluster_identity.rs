//! The handshake speaks for the node's cluster id, which a node learns late:
//! a node in no cluster talks to anyone, nodes of two clusters never do.

mod common;

use std::sync::{Arc, Mutex};

use ferraft::{BasicNode, ClusterId, Network, NodeId, PeerRefusal};
use ferraft_net::{Inbox, Rejection, TcpNetwork};
use tokio::sync::mpsc;

use common::{config, heartbeat, Command, TestMessage, PATIENCE};

/// An inbox whose cluster id can change, as a node's does at initialize.
struct NodeInbox {
    cluster: Mutex<Option<ClusterId>>,
    messages: mpsc::UnboundedSender<TestMessage>,
    refusals: mpsc::UnboundedSender<(NodeId, PeerRefusal)>,
}

impl Inbox<Command, BasicNode> for NodeInbox {
    fn deliver(&self, message: TestMessage) {
        let _ = self.messages.send(message);
    }
    fn unreachable(&self, _peer: NodeId) {}
    fn refused(&self, peer: NodeId, rejection: Rejection) {
        let _ = self.refusals.send((peer, rejection.as_refusal()));
    }
    fn cluster_id(&self) -> Option<ClusterId> {
        *self.cluster.lock().unwrap()
    }
}

struct Node {
    network: TcpNetwork<Command, BasicNode>,
    inbox: Arc<NodeInbox>,
    addr: BasicNode,
    messages: mpsc::UnboundedReceiver<TestMessage>,
    refusals: mpsc::UnboundedReceiver<(NodeId, PeerRefusal)>,
    _listener: tokio::task::JoinHandle<()>,
}

/// Node `id` whose transport follows its inbox's cluster (`NetConfig::cluster_id` 0).
fn node(id: NodeId, cluster: Option<u64>) -> Node {
    let network = TcpNetwork::new(config(0, id), tokio::runtime::Handle::current()).unwrap();
    let (messages_tx, messages) = mpsc::unbounded_channel();
    let (refusals_tx, refusals) = mpsc::unbounded_channel();
    let cluster = Mutex::new(cluster.and_then(ClusterId::new));
    let inbox = Arc::new(NodeInbox { cluster, messages: messages_tx, refusals: refusals_tx });
    let (addr, listener) = network.serve("127.0.0.1:0", inbox.clone()).unwrap();
    Node { network, inbox, addr: BasicNode::new(addr.to_string()), messages, refusals, _listener: listener }
}

fn in_cluster(cluster: u64, mut message: TestMessage) -> TestMessage {
    message.envelope.cluster_id = cluster;
    message
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_in_no_cluster_is_reached_and_then_speaks_for_the_cluster_it_joined() {
    let leader = node(NodeId(1), Some(5));
    let mut fresh = node(NodeId(2), None);
    leader.network.send(&fresh.addr, in_cluster(5, heartbeat(NodeId(1), NodeId(2), 1)));
    let got = tokio::time::timeout(PATIENCE, fresh.messages.recv()).await.unwrap().unwrap();
    assert_eq!(got.envelope.cluster_id, 5);
    // it joined cluster 5: a leader of cluster 6 is now refused, and told why
    *fresh.inbox.cluster.lock().unwrap() = ClusterId::new(5);
    let mut other = node(NodeId(3), Some(6));
    other.network.send(&fresh.addr, in_cluster(6, heartbeat(NodeId(3), NodeId(2), 1)));
    let (peer, refusal) = tokio::time::timeout(PATIENCE, other.refusals.recv()).await.unwrap().unwrap();
    assert_eq!(peer, NodeId(2));
    let expected = PeerRefusal::OtherCluster { theirs: ClusterId::new(5).unwrap(), ours: ClusterId::new(6) };
    assert_eq!(refusal, expected);
    assert!(fresh.messages.try_recv().is_err(), "nothing of cluster 6 got through");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_let_in_before_the_node_joined_another_cluster_is_closed_and_refused() {
    let mut leader = node(NodeId(1), Some(5));
    let mut fresh = node(NodeId(2), None);
    leader.network.send(&fresh.addr, in_cluster(5, heartbeat(NodeId(1), NodeId(2), 1)));
    tokio::time::timeout(PATIENCE, fresh.messages.recv()).await.unwrap().unwrap();
    // meanwhile it was initialized as a cluster of its own
    *fresh.inbox.cluster.lock().unwrap() = ClusterId::new(9);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let (peer, refusal) = loop {
        leader.network.send(&fresh.addr, in_cluster(5, heartbeat(NodeId(1), NodeId(2), 2)));
        match tokio::time::timeout(std::time::Duration::from_millis(50), leader.refusals.recv()).await {
            Ok(refused) => break refused.unwrap(),
            Err(_) => assert!(tokio::time::Instant::now() < deadline, "never refused"),
        }
    };
    assert_eq!(peer, NodeId(2));
    assert_eq!(refusal, PeerRefusal::OtherCluster { theirs: ClusterId::new(9).unwrap(), ours: ClusterId::new(5) });
    assert!(fresh.messages.try_recv().is_err(), "nothing of cluster 5 got through after it joined 9");
}
