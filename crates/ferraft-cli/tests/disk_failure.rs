//! A node whose disk refuses its log writes (full, or an I/O error) stops
//! and its process exits non-zero with one line saying why, instead of
//! staying up and answering `health` and `ready` as if it worked; started
//! again with room on the disk it has every write it acknowledged.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use ferraft_kv::harness::LocalNode;
use serde_json::{json, Value};

const EXE: &str = env!("CARGO_BIN_EXE_ferraft");

#[tokio::test(flavor = "multi_thread")]
async fn a_node_whose_disk_refuses_its_log_exits_and_keeps_every_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = LocalNode::new(Path::new(EXE), 1, dir.path());
    node.file_size_limit = Some(8 << 20);
    node.spawn().unwrap();
    node.wait_ready(Duration::from_secs(10)).await.unwrap();
    node.client.post("/v1/cluster/init", &json!({})).await.unwrap();
    node.wait_initialized_with_leader(Duration::from_secs(10)).await.unwrap();
    let value = |i: usize| format!("{i}:{}", "v".repeat(64 << 10));
    let mut acknowledged = Vec::new();
    let mut refusal = None;
    for i in 0..400 {
        match node.client.put(&format!("/v1/kv/k{i}"), &json!({ "value": value(i) })).await {
            Ok(_) => acknowledged.push(i),
            Err(error) => {
                refusal = Some(error);
                break;
            }
        }
    }
    let refusal = refusal.expect("the log outgrew the 8 MiB limit");
    assert!(acknowledged.len() > 20, "{} writes before {refusal}", acknowledged.len());
    let exit = node.exited(Duration::from_secs(20)).await;
    let log = std::fs::read_to_string(&node.log).unwrap();
    assert_eq!(exit, Some(1), "the process exits with 1 after {refusal}: {log}");
    let last = log.lines().last().unwrap_or_default();
    assert!(last.starts_with("error: the node stopped: ") && last.contains("File too large"), "{last}");
    // room again: every acknowledged write is there, and it takes more
    node.file_size_limit = None;
    node.spawn().unwrap();
    node.wait_ready(Duration::from_secs(10)).await.unwrap();
    node.wait_initialized_with_leader(Duration::from_secs(10)).await.unwrap();
    for i in &acknowledged {
        let read = node.client.get(&format!("/v1/kv/k{i}")).await.unwrap();
        assert_eq!(read["value"], json!(value(*i)), "k{i}");
    }
    node.client.put("/v1/kv/after", &json!({ "value": "v" })).await.unwrap();
    assert_eq!(node.terminate().await, Some(0));
}

/// The leader's disk fails under load: it exits, the two others elect a
/// leader and hold every write it acknowledged, and it rejoins once its
/// disk has room.
#[tokio::test(flavor = "multi_thread")]
async fn a_leader_whose_disk_fails_exits_and_the_others_keep_every_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut nodes: BTreeMap<u64, LocalNode> =
        (1..=3).map(|id| (id, LocalNode::new(Path::new(EXE), id, dir.path()))).collect();
    nodes.get_mut(&1).unwrap().file_size_limit = Some(8 << 20);
    for node in nodes.values_mut() {
        node.spawn().unwrap();
    }
    for node in nodes.values() {
        node.wait_ready(Duration::from_secs(10)).await.unwrap();
    }
    let voters: BTreeMap<String, Value> = nodes.values().map(|n| (n.id.to_string(), n.spec())).collect();
    nodes[&1].client.post("/v1/cluster/init", &json!({ "nodes": voters })).await.unwrap();
    for node in nodes.values() {
        node.wait_initialized_with_leader(Duration::from_secs(10)).await.unwrap();
    }
    let led = nodes[&1].client.post("/v1/cluster/leader/transfer", &json!({ "to": 1 })).await.unwrap();
    assert_eq!(led["leader"], 1, "{led}");
    let value = |i: usize| format!("{i}:{}", "v".repeat(64 << 10));
    // through a follower, whichever node leads, until node 1's log outgrows its disk
    let mut acknowledged = Vec::new();
    let mut exit = None;
    for i in 0..1000 {
        if nodes[&2].client.put(&format!("/v1/kv/k{i}"), &json!({ "value": value(i) })).await.is_ok() {
            acknowledged.push(i);
        }
        exit = nodes.get_mut(&1).unwrap().exited(Duration::from_millis(1)).await;
        if exit.is_some() {
            break;
        }
    }
    assert_eq!(exit, Some(1), "the leader whose disk failed exits with 1");
    assert!(acknowledged.len() > 20, "{} writes acknowledged", acknowledged.len());
    // the others go on: a new leader, every acknowledged write, more writes
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while nodes[&2].wait_initialized_with_leader(Duration::from_secs(10)).await.unwrap() == 1 {
        assert!(std::time::Instant::now() < deadline, "no leader but the one that exited");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for i in &acknowledged {
        let read = nodes[&2].client.get(&format!("/v1/kv/k{i}")).await.unwrap();
        assert_eq!(read["value"], json!(value(*i)), "k{i}");
    }
    nodes[&3].client.put("/v1/kv/after", &json!({ "value": "v" })).await.unwrap();
    // room again: it rejoins and catches up
    let node = nodes.get_mut(&1).unwrap();
    node.file_size_limit = None;
    node.spawn().unwrap();
    node.wait_ready(Duration::from_secs(10)).await.unwrap();
    node.client.wait_local_value("after", "v", Duration::from_secs(20)).await.unwrap();
}
