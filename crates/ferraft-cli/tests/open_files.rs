//! A node whose HTTP API is flooded with idle client connections keeps the
//! file descriptors its WAL and Raft transport need. Before the API had a
//! connection cap, a node at its open-file limit (the common 1,024; here
//! 256, the same thing smaller) spent every descriptor on clients, and its
//! next snapshot (or WAL segment) could not create its file: the node
//! stopped on that storage failure.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use ferraft_kv::harness::LocalNode;
use serde_json::{json, Value};

const EXE: &str = env!("CARGO_BIN_EXE_ferraft");

/// One request on an open keep-alive connection; the response's body.
fn call_on(stream: &mut TcpStream, method: &str, path: &str, body: &str) -> std::io::Result<String> {
    write!(stream, "{method} {path} HTTP/1.1\r\nHost: test\r\n")?;
    if !body.is_empty() {
        write!(stream, "Content-Type: application/json\r\nContent-Length: {}\r\n", body.len())?;
    }
    write!(stream, "\r\n{body}")?;
    let mut response = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        response.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&response).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            if body.len() >= length {
                return Ok(body[..length].to_owned());
            }
        }
    }
}

async fn leader_of(nodes: &BTreeMap<u64, LocalNode>, among: &[u64]) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        for id in among {
            if let Ok(status) = nodes[id].client.status().await {
                if status["role"] == "leader" {
                    return *id;
                }
            }
        }
        assert!(Instant::now() < deadline, "no leader among {among:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_flooded_with_idle_clients_keeps_the_descriptors_its_log_and_peers_need() {
    let dir = tempfile::tempdir().unwrap();
    let mut nodes: BTreeMap<u64, LocalNode> =
        (1..=3).map(|id| (id, LocalNode::new(Path::new(EXE), id, dir.path()))).collect();
    nodes.get_mut(&3).unwrap().open_files_limit = Some(256);
    for node in nodes.values_mut() {
        node.spawn().unwrap();
    }
    for node in nodes.values() {
        node.wait_ready(Duration::from_secs(10)).await.unwrap();
    }
    let voters: serde_json::Map<String, Value> = nodes.iter().map(|(id, n)| (id.to_string(), n.spec())).collect();
    nodes[&1].client.post("/v1/cluster/init", &json!({ "nodes": voters })).await.unwrap();
    let leader = leader_of(&nodes, &[1, 2, 3]).await;
    nodes[&leader].client.put("/v1/kv/before", &json!({ "value": "v0" })).await.unwrap();
    nodes[&3].client.wait_local_value("before", "v0", Duration::from_secs(10)).await.unwrap();

    // more idle clients than node 3 has descriptors; the first is served
    let api = nodes[&3].api.clone();
    let mut flood: Vec<TcpStream> = Vec::new();
    for _ in 0..300 {
        match TcpStream::connect(&api) {
            Ok(stream) => flood.push(stream),
            Err(_) => break,
        }
    }
    let mut first = flood.remove(0);
    first.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert!(call_on(&mut first, "GET", "/v1/kv/before?consistency=local", "").unwrap().contains("v0"));
    tokio::time::sleep(Duration::from_secs(1)).await;

    // a snapshot creates files
    let snapshot = call_on(&mut first, "POST", "/v1/cluster/snapshot", "{}").unwrap();
    assert!(snapshot.contains("snapshot_index"), "node 3 could not snapshot: {snapshot}");

    // the peers restart: their Raft connections to node 3 are new ones
    for id in [1, 2] {
        let node = nodes.get_mut(&id).unwrap();
        node.kill9().await;
        node.spawn().unwrap();
        node.wait_ready(Duration::from_secs(10)).await.unwrap();
    }
    let leader = leader_of(&nodes, &[1, 2, 3]).await;
    nodes[&leader].client.put("/v1/kv/after", &json!({ "value": "v1" })).await.unwrap();

    // node 3 applies it, read through the connection it already serves
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let body = call_on(&mut first, "GET", "/v1/kv/after?consistency=local", "")
            .unwrap_or_else(|e| panic!("node 3 stopped answering: {e}"));
        if body.contains("v1") {
            break;
        }
        assert!(Instant::now() < deadline, "node 3 never got the write made after its peers reconnected: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(nodes.get_mut(&3).unwrap().exited(Duration::ZERO).await.is_none(), "node 3 still runs");
    drop(flood);
}
