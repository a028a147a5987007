//! A node whose disk refuses its log writes (full, or an I/O error) stops
//! and its process exits non-zero with one line saying why, instead of
//! staying up and answering `health` and `ready` as if it worked; started
//! again with room on the disk it has every write it acknowledged.

use std::path::Path;
use std::time::Duration;

use ferraft_kv::harness::LocalNode;
use serde_json::json;

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
