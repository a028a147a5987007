//! The transport over real loopback sockets.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use common::*;
use ferraft::{MessageBody, Network, NodeId};
use ferraft_net::frame::{decode_frame, encode_frame};
use ferraft_net::{Hello, HelloReply, NetConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_exchange_messages_both_ways() {
    let mut node_1 = TestNode::start(NodeId(1));
    let mut node_2 = TestNode::start(NodeId(2));
    node_1.network.send(&node_2.node(), heartbeat(NodeId(1), NodeId(2), 1));
    assert_eq!(node_2.recv().await, heartbeat(NodeId(1), NodeId(2), 1));
    node_2.network.send(&node_1.node(), heartbeat(NodeId(2), NodeId(1), 2));
    assert_eq!(node_1.recv().await, heartbeat(NodeId(2), NodeId(1), 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_deliver_everything_in_send_order_per_sender() {
    let mut nodes: Vec<TestNode> = (1..=3).map(|id| TestNode::start(NodeId(id))).collect();
    let addresses: BTreeMap<NodeId, _> = nodes.iter().map(|node| (node.id, node.node())).collect();
    for seq in 0..50 {
        for from in &nodes {
            for (to, target) in addresses.iter().filter(|(id, _)| **id != from.id) {
                from.network.send(target, heartbeat(from.id, *to, seq));
            }
        }
    }
    for node in &mut nodes {
        let mut next_seq: BTreeMap<NodeId, u64> = BTreeMap::new();
        for _ in 0..100 {
            let message = node.recv().await;
            assert_eq!(message.envelope.to, node.id);
            let expected = next_seq.entry(message.envelope.from).or_default();
            assert_eq!(seq_of(&message), *expected, "messages of one sender arrive in order");
            *expected += 1;
        }
        assert_eq!(next_seq.values().collect::<Vec<_>>(), [&50, &50]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_listener_is_reconnected_and_each_outage_is_reported_once() {
    let mut node_1 = TestNode::start(NodeId(1));
    let mut node_2 = TestNode::start(NodeId(2));
    node_1.network.send(&node_2.node(), heartbeat(NodeId(1), NodeId(2), 0));
    assert_eq!(seq_of(&node_2.recv().await), 0);

    for outage in 1..=2 {
        node_2.stop_listening().await;
        assert_eq!(node_1.recv_unreachable().await, NodeId(2), "outage {outage} is reported");
        for seq in 0..20 {
            node_1.network.send(&node_2.node(), heartbeat(NodeId(1), NodeId(2), seq));
        }
        node_2.restart_listening();
        let received = keep_sending_until_received(&node_1, &mut node_2, outage * 1000).await;
        assert_eq!(received.envelope.from, NodeId(1));
        assert!(node_1.unreachable.try_recv().is_err(), "outage {outage} is reported only once");
        assert!(node_1.network.peer_stats(NodeId(2)).unwrap().connected, "reconnected after outage {outage}");
    }
}

/// Raft resends; so does this, until one heartbeat numbered from `first_seq`
/// gets through. Older ones still in the inbox (a previous round's resends,
/// delivered after the one it waited for) prove nothing about this round.
async fn keep_sending_until_received(from: &TestNode, to: &mut TestNode, first_seq: u64) -> TestMessage {
    let deadline = Instant::now() + PATIENCE;
    let mut seq = first_seq;
    loop {
        assert!(Instant::now() < deadline, "no message got through");
        from.network.send(&to.node(), heartbeat(from.id, to.id, seq));
        seq += 1;
        if let Ok(Some(message)) = tokio::time::timeout(Duration::from_millis(10), to.messages.recv()).await {
            if seq_of(&message) >= first_seq {
                return message;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_or_hung_peer_does_not_slow_a_live_one() {
    // Long against the time 200 messages take even on a loaded machine, and
    // short of PATIENCE, within which the hung peer must still be reported.
    let handshake_timeout = Duration::from_secs(3);
    let mut node_1 = TestNode::start_with(NetConfig { handshake_timeout, ..config(CLUSTER, NodeId(1)) }, "127.0.0.1:0");
    let mut node_4 = TestNode::start(NodeId(4));
    let dead = ferraft::BasicNode::new(closed_addr().to_string());
    // Connections complete in the kernel's backlog, but nobody ever answers the handshake.
    let hung_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hung = ferraft::BasicNode::new(hung_listener.local_addr().unwrap().to_string());

    let started = Instant::now();
    for seq in 0..200 {
        node_1.network.send(&dead, heartbeat(NodeId(1), NodeId(2), seq));
        node_1.network.send(&hung, heartbeat(NodeId(1), NodeId(3), seq));
        node_1.network.send(&node_4.node(), heartbeat(NodeId(1), NodeId(4), seq));
    }
    for seq in 0..200 {
        assert_eq!(seq_of(&node_4.recv().await), seq);
    }
    assert!(started.elapsed() < handshake_timeout, "live peer waited {:?} for the hung one", started.elapsed());

    let mut reported = vec![node_1.recv_unreachable().await, node_1.recv_unreachable().await];
    reported.sort();
    assert_eq!(reported, [NodeId(2), NodeId(3)], "each unreachable peer is reported once, not per message");
    for seq in 200..300 {
        node_1.network.send(&dead, heartbeat(NodeId(1), NodeId(2), seq));
        node_1.network.send(&node_4.node(), heartbeat(NodeId(1), NodeId(4), seq));
    }
    for seq in 200..300 {
        assert_eq!(seq_of(&node_4.recv().await), seq);
    }
    assert!(node_1.unreachable.try_recv().is_err(), "no report per message during an outage");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_chunk_of_several_mebibytes_arrives_intact() {
    let config = |id| NetConfig { max_frame_bytes: 8 << 20, ..config(CLUSTER, id) };
    let node_1 = TestNode::start_with(config(NodeId(1)), "127.0.0.1:0");
    let mut node_2 = TestNode::start_with(config(NodeId(2)), "127.0.0.1:0");
    let chunk = snapshot_chunk(NodeId(1), NodeId(2), 4 << 20);
    node_1.network.send(&node_2.node(), chunk.clone());
    node_1.network.send(&node_2.node(), heartbeat(NodeId(1), NodeId(2), 1));
    let mut received = vec![node_2.recv().await, node_2.recv().await];
    received.sort_by_key(|message| matches!(message.body, MessageBody::Snapshot(_)));
    assert_eq!(received, [heartbeat(NodeId(1), NodeId(2), 1), chunk]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_above_the_frame_limit_is_dropped_by_the_sender_alone() {
    let config = |id| NetConfig { max_frame_bytes: 1 << 20, ..config(CLUSTER, id) };
    let node_1 = TestNode::start_with(config(NodeId(1)), "127.0.0.1:0");
    let mut node_2 = TestNode::start_with(config(NodeId(2)), "127.0.0.1:0");
    node_1.network.send(&node_2.node(), snapshot_chunk(NodeId(1), NodeId(2), 2 << 20));
    node_1.network.send(&node_2.node(), append(NodeId(1), NodeId(2), 1, 4, 128));
    assert_eq!(seq_of(&node_2.recv().await), 1, "the connection carries on");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_stops_reading_bounds_its_queue_by_bytes() {
    let config = NetConfig { peer_queue_bytes: 4 << 20, max_frame_bytes: 1 << 20, ..config(CLUSTER, NodeId(1)) };
    let node_1 = TestNode::start_with(config, "127.0.0.1:0");
    let (stuck_addr, _stuck) = accept_and_never_read(NodeId(2)).await;
    let target = ferraft::BasicNode::new(stuck_addr.to_string());
    // 600 x ~66 KiB = ~40 MiB: more than the queue plus every socket buffer.
    for seq in 0..600 {
        node_1.network.send(&target, append(NodeId(1), NodeId(2), seq, 64, 1024));
        assert!(node_1.network.peer_stats(NodeId(2)).unwrap().queued_bytes <= 4 << 20);
    }
    let stats = node_1.network.peer_stats(NodeId(2)).unwrap();
    assert!(stats.dropped_messages > 0, "{stats:?}");
    assert!(stats.queued_bytes <= 4 << 20, "{stats:?}");
}

/// A peer that completes the handshake as node `id`, then never reads.
async fn accept_and_never_read(id: NodeId) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let hello: Hello = read_one(&mut stream).await;
        assert_eq!(hello.to, id);
        write_one(&mut stream, &HelloReply::Accepted).await;
        std::future::pending::<()>().await;
        drop(stream);
    });
    (addr, task)
}

async fn read_one<T: serde::de::DeserializeOwned>(stream: &mut TcpStream) -> T {
    let mut buf = BytesMut::new();
    loop {
        if let Some(value) = decode_frame(&mut buf, 1 << 20).unwrap() {
            return value;
        }
        assert!(stream.read_buf(&mut buf).await.unwrap() > 0, "closed mid-frame");
    }
}

async fn write_one<T: serde::Serialize>(stream: &mut TcpStream, value: &T) {
    let mut buf = BytesMut::new();
    encode_frame(&mut buf, value, 1 << 20).unwrap();
    stream.write_all(&buf).await.unwrap();
}

/// A hand-made client that has completed the handshake as node 1 towards node 2.
async fn handshaken_client(node: &TestNode) -> TcpStream {
    let mut stream = TcpStream::connect(node.addr).await.unwrap();
    write_one(&mut stream, &Hello::new(CLUSTER, NodeId(1), node.id)).await;
    assert_eq!(read_one::<HelloReply>(&mut stream).await, HelloReply::Accepted);
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_whose_envelope_names_another_node_is_dropped() {
    let mut node_2 = TestNode::start(NodeId(2));
    let mut client = handshaken_client(&node_2).await;
    write_one(&mut client, &heartbeat(NodeId(1), NodeId(3), 1)).await;
    write_one(&mut client, &heartbeat(NodeId(3), NodeId(2), 2)).await;
    write_one(&mut client, &heartbeat(NodeId(1), NodeId(2), 3)).await;
    assert_eq!(seq_of(&node_2.recv().await), 3, "only the message for node 2 from node 1 arrives");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_above_the_limit_closes_the_connection() {
    let node_2 =
        TestNode::start_with(NetConfig { max_frame_bytes: 1 << 20, ..config(CLUSTER, NodeId(2)) }, "127.0.0.1:0");
    let mut client = handshaken_client(&node_2).await;
    client.write_all(&((1u32 << 20) + 1).to_le_bytes()).await.unwrap();
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(PATIENCE, client.read(&mut byte)).await.unwrap();
    assert!(matches!(read, Ok(0) | Err(_)), "the receiver closed the connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_instead_of_a_handshake_closes_the_connection() {
    let node_2 = TestNode::start(NodeId(2));
    let mut client = TcpStream::connect(node_2.addr).await.unwrap();
    client.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(PATIENCE, client.read(&mut byte)).await.unwrap();
    assert!(matches!(read, Ok(0) | Err(_)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_of_another_cluster_is_refused() {
    let mut node_1 = TestNode::start_with(config(CLUSTER + 1, NodeId(1)), "127.0.0.1:0");
    let mut node_2 = TestNode::start(NodeId(2));
    node_1.network.send(&node_2.node(), heartbeat(NodeId(1), NodeId(2), 1));
    assert_eq!(node_1.recv_unreachable().await, NodeId(2));
    assert!(node_2.messages.try_recv().is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_to_this_node_itself_is_refused_without_a_connection() {
    let mut node_1 = TestNode::start(NodeId(1));
    node_1.network.send(&node_1.node(), heartbeat(NodeId(1), NodeId(1), 1));
    assert!(node_1.network.peer_stats(NodeId(1)).is_none());
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(node_1.messages.try_recv().is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_address_reconnects_to_the_new_one() {
    let mut node_1 = TestNode::start(NodeId(1));
    let mut node_2 = TestNode::start(NodeId(2));
    node_1.network.send(&ferraft::BasicNode::new(closed_addr().to_string()), heartbeat(NodeId(1), NodeId(2), 1));
    assert_eq!(node_1.recv_unreachable().await, NodeId(2));
    node_1.network.send(&node_2.node(), heartbeat(NodeId(1), NodeId(2), 2));
    assert_eq!(seq_of(&node_2.recv().await), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_and_timeout_now_travel_ahead_of_queued_entries() {
    let node_1 = TestNode::start(NodeId(1));
    let mut node_2 = TestNode::start(NodeId(2));
    // Connect first, so everything below is queued behind one in-progress write at most.
    node_1.network.send(&node_2.node(), heartbeat(NodeId(1), NodeId(2), 0));
    node_2.recv().await;
    // ~26 MiB of entries: far more than the writer can drain while they are queued.
    for seq in 1..=400 {
        node_1.network.send(&node_2.node(), append(NodeId(1), NodeId(2), seq, 64, 1024));
    }
    node_1.network.send(&node_2.node(), timeout_now(NodeId(1), NodeId(2)));
    let position = async {
        let mut position = 0;
        loop {
            position += 1;
            if matches!(node_2.recv().await.body, MessageBody::TimeoutNow(_)) {
                return position;
            }
        }
    };
    let position = position.await;
    assert!(position < 400, "the control message waited behind {position} bulk messages");
}

/// Captured log output, to check what both sides say.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// Single-threaded, so every task logs into this test's subscriber.
#[tokio::test]
async fn a_wrong_address_is_rejected_and_logged_on_both_sides() {
    let logs = Logs::default();
    let subscriber = tracing_subscriber::fmt().with_ansi(false).with_writer({
        let logs = logs.clone();
        move || logs.clone()
    });
    let _guard = tracing::subscriber::set_default(subscriber.finish());
    let mut node_1 = TestNode::start(NodeId(1));
    let mut node_3 = TestNode::start(NodeId(3));
    // The membership says node 2 lives where node 3 does.
    node_1.network.send(&node_3.node(), heartbeat(NodeId(1), NodeId(2), 1));
    assert_eq!(node_1.recv_unreachable().await, NodeId(2));
    assert!(node_3.messages.try_recv().is_err());
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let rejection = "sender meant to reach node 2, but this is node 3";
    assert!(text.lines().any(|l| l.contains("refused a connection") && l.contains(rejection)), "{text}");
    assert!(text.lines().any(|l| l.contains("peer unreachable") && l.contains(rejection)), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_connection_from_the_same_peer_closes_the_older_one() {
    let mut node_2 = TestNode::start(NodeId(2));
    let mut older = handshaken_client(&node_2).await;
    let mut newer = handshaken_client(&node_2).await;
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(PATIENCE, older.read(&mut byte)).await.unwrap();
    assert!(matches!(read, Ok(0) | Err(_)), "the older connection was closed");
    write_one(&mut newer, &heartbeat(NodeId(1), NodeId(2), 1)).await;
    assert_eq!(seq_of(&node_2.recv().await), 1);
}
