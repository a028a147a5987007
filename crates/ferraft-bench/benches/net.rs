//! Transport benchmark over loopback, beside a plain tokio echo in the same run.
//!
//! `cargo bench -p ferraft-bench --bench net`
//!
//! - round trip: node 1 sends an empty AppendEntries (a heartbeat), node 2's
//!   inbox answers with an AppendReply over its own transport;
//! - throughput: node 1 streams appends of 128-byte entries with a bounded
//!   window of unacknowledged appends (like the runtime's in-flight limit),
//!   node 2 acknowledges each;
//! - baseline: the same shapes as raw bytes over one `TcpStream` echo.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferraft::message::{AppendEntries, AppendOutcome, AppendReply};
use ferraft::{
    BasicNode, Entry, EntryPayload, Envelope, LeaderId, LogId, LogIndex, Message, MessageBody, Network, NodeId, Term,
    Vote,
};
use ferraft_net::{Inbox, NetConfig, TcpNetwork};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Command {
    data: Bytes,
}

type Msg = Message<Command, BasicNode>;
type Net = TcpNetwork<Command, BasicNode>;

const CLUSTER: u64 = 1;
const ROUND_TRIPS: usize = 20_000;
const ENTRY_BYTES: usize = 128;
const WINDOW: usize = 64;

/// Node 2: answers every append with a reply to node 1.
struct Replier {
    network: OnceLock<Arc<Net>>,
    leader: BasicNode,
}

impl Inbox<Command, BasicNode> for Replier {
    fn deliver(&self, message: Msg) {
        if let MessageBody::Append(append) = &message.body {
            let reply =
                Message { envelope: envelope(NodeId(2), NodeId(1)), body: MessageBody::AppendReply(reply(append.seq)) };
            self.network.get().expect("set before traffic").send(&self.leader, reply);
        }
    }

    fn unreachable(&self, _peer: NodeId) {}
}

/// Node 1: hands replies to the benchmark loop.
struct Collector(mpsc::UnboundedSender<u64>);

impl Inbox<Command, BasicNode> for Collector {
    fn deliver(&self, message: Msg) {
        if let MessageBody::AppendReply(reply) = message.body {
            let _ = self.0.send(reply.seq);
        }
    }

    fn unreachable(&self, _peer: NodeId) {}
}

fn envelope(from: NodeId, to: NodeId) -> Envelope {
    Envelope { cluster_id: CLUSTER, from, to, from_incarnation: 0, to_incarnation: 0 }
}

fn reply(seq: u64) -> AppendReply {
    AppendReply {
        vote: Vote::new_committed(Term(1), NodeId(1)),
        seq,
        outcome: AppendOutcome::Success { matched: None },
        committed: LogIndex(0),
    }
}

fn append(seq: u64, entries: &[Entry<Command, BasicNode>]) -> Msg {
    let append = AppendEntries {
        vote: Vote::new_committed(Term(1), NodeId(1)),
        prev_log_id: None,
        entries: entries.to_vec(),
        committed: None,
        seq,
        leader_node: None,
    };
    Message { envelope: envelope(NodeId(1), NodeId(2)), body: MessageBody::Append(append) }
}

fn entries(count: usize) -> Vec<Entry<Command, BasicNode>> {
    let data = Bytes::from(vec![0x5a; ENTRY_BYTES]);
    (0..count as u64)
        .map(|index| Entry {
            log_id: LogId::new(LeaderId::new(Term(1), NodeId(1)), LogIndex(index + 1)),
            payload: EntryPayload::Normal(Command { data: data.clone() }),
        })
        .collect()
}

/// Two connected transports: node 1 sends, node 2 replies.
fn pair() -> (Arc<Net>, BasicNode, mpsc::UnboundedReceiver<u64>) {
    let runtime = tokio::runtime::Handle::current();
    let node_1 = Arc::new(Net::new(NetConfig::new(CLUSTER, NodeId(1)), runtime.clone()).unwrap());
    let node_2 = Arc::new(Net::new(NetConfig::new(CLUSTER, NodeId(2)), runtime).unwrap());
    let (replies, replies_rx) = mpsc::unbounded_channel();
    let (addr_1, _) = node_1.serve("127.0.0.1:0", Arc::new(Collector(replies))).unwrap();
    let replier = Arc::new(Replier { network: OnceLock::new(), leader: BasicNode::new(addr_1.to_string()) });
    let _ = replier.network.set(node_2.clone());
    let (addr_2, _) = node_2.serve("127.0.0.1:0", replier).unwrap();
    (node_1, BasicNode::new(addr_2.to_string()), replies_rx)
}

struct Latency {
    p50_us: f64,
    p99_us: f64,
    mean_us: f64,
}

fn summarize(mut samples: Vec<Duration>) -> Latency {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)].as_nanos() as f64 / 1e3;
    let mean_us = samples.iter().map(|d| d.as_nanos() as f64).sum::<f64>() / samples.len() as f64 / 1e3;
    Latency { p50_us: at(0.50), p99_us: at(0.99), mean_us }
}

async fn transport_round_trip() -> Latency {
    let (node_1, target, mut replies) = pair();
    let mut samples = Vec::with_capacity(ROUND_TRIPS);
    for seq in 0..(ROUND_TRIPS + 1000) as u64 {
        let started = Instant::now();
        node_1.send(&target, append(seq, &[]));
        let echoed = replies.recv().await.unwrap();
        assert_eq!(echoed, seq);
        if seq >= 1000 {
            samples.push(started.elapsed());
        }
    }
    summarize(samples)
}

/// Entries per second with `batch` entries per append and a window of `WINDOW` appends.
async fn transport_throughput(batch: usize, total_entries: usize) -> f64 {
    let (node_1, target, mut replies) = pair();
    let entries = entries(batch);
    node_1.send(&target, append(0, &[]));
    replies.recv().await.unwrap();
    let appends = (total_entries / batch) as u64;
    let started = Instant::now();
    let (mut sent, mut acked) = (0u64, 0u64);
    while acked < appends {
        while sent < appends && sent - acked < WINDOW as u64 {
            sent += 1;
            node_1.send(&target, append(sent, &entries));
        }
        replies.recv().await.unwrap();
        acked += 1;
    }
    (appends as usize * batch) as f64 / started.elapsed().as_secs_f64()
}

/// A plain echo server: writes back whatever it reads.
async fn echo_server() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        stream.set_nodelay(true).unwrap();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = stream.read(&mut buf).await.unwrap();
            if n == 0 {
                return;
            }
            stream.write_all(&buf[..n]).await.unwrap();
        }
    });
    addr
}

async fn echo_round_trip(message_bytes: usize) -> Latency {
    let mut stream = TcpStream::connect(echo_server().await).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let out = vec![1u8; message_bytes];
    let mut back = vec![0u8; message_bytes];
    let mut samples = Vec::with_capacity(ROUND_TRIPS);
    for round in 0..ROUND_TRIPS + 1000 {
        let started = Instant::now();
        stream.write_all(&out).await.unwrap();
        stream.read_exact(&mut back).await.unwrap();
        if round >= 1000 {
            samples.push(started.elapsed());
        }
    }
    summarize(samples)
}

/// Raw bytes/s of a write-everything, read-everything-back echo, in chunks of `chunk_bytes`.
async fn echo_throughput(chunk_bytes: usize, total_bytes: usize) -> f64 {
    let stream = TcpStream::connect(echo_server().await).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let started = Instant::now();
    let writing = tokio::spawn(async move {
        let chunk = vec![2u8; chunk_bytes];
        for _ in 0..total_bytes / chunk_bytes {
            writer.write_all(&chunk).await.unwrap();
        }
        writer
    });
    let expected = total_bytes / chunk_bytes * chunk_bytes;
    let mut buf = vec![0u8; 256 * 1024];
    let mut received = 0;
    while received < expected {
        received += reader.read(&mut buf).await.unwrap();
    }
    drop(writing.await.unwrap());
    received as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let heartbeat_frame = ferraft_net::frame::frame_len(&append(1, &[])).unwrap();
    let reply_frame = ferraft_net::frame::frame_len(&Msg {
        envelope: envelope(NodeId(2), NodeId(1)),
        body: MessageBody::AppendReply(reply(1)),
    })
    .unwrap();
    let entry_frame = (ferraft_net::frame::frame_len(&append(1, &entries(256))).unwrap() - heartbeat_frame) / 256;
    println!("frame sizes: heartbeat {heartbeat_frame} B, reply {reply_frame} B, per 128-byte entry {entry_frame} B");
    println!();

    let transport = transport_round_trip().await;
    let echo = echo_round_trip(heartbeat_frame).await;
    println!("round trip ({ROUND_TRIPS} sequential)        p50 us   p99 us   mean us");
    for (name, latency) in [("ferraft-net heartbeat->reply", &transport), ("tokio echo, same bytes", &echo)] {
        println!("  {name:<32} {:>7.1}  {:>7.1}  {:>8.1}", latency.p50_us, latency.p99_us, latency.mean_us);
    }
    println!();

    println!("throughput, 128-byte entries, window {WINDOW}   entries/s    MiB/s payload");
    for batch in [16, 64, 256, 1024] {
        let total = 2_000_000;
        let rate = transport_throughput(batch, total).await;
        println!(
            "  ferraft-net, {batch:>4} entries/append   {:>12.0}   {:>8.1}",
            rate,
            rate * ENTRY_BYTES as f64 / (1 << 20) as f64
        );
    }
    let chunk = 64 * entry_frame;
    let bytes_per_second = echo_throughput(chunk, 2_000_000 * entry_frame).await;
    println!(
        "  tokio echo, {chunk} B writes      {:>12.0}   {:>8.1}   (entry-equivalents of {entry_frame} B)",
        bytes_per_second / entry_frame as f64,
        bytes_per_second / entry_frame as f64 * ENTRY_BYTES as f64 / (1 << 20) as f64
    );
}
