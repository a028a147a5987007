//! A snapshot transfer to a learner, between real `ferraft serve` processes
//! with their WALs, survives the learner being killed mid-transfer: the
//! restarted learner resumes from what it had made durable (its partial
//! snapshot file), it is not sent the snapshot again from byte 0. (It asks
//! for the chunk at 0 once: that chunk alone carries the remembered change
//! ids, and opens the partial file, which answers with the offset it holds.)

use std::path::Path;
use std::time::{Duration, Instant};

use ferraft_kv::client::{kv_path, Client};
use ferraft_kv::harness::LocalNode;
use serde_json::{json, Value};

const EXE: &str = env!("CARGO_BIN_EXE_ferraft");
const MIB: u64 = 1024 * 1024;
/// Slow enough to kill the learner mid-transfer, on a loaded machine too.
const RATE_MIB_PER_S: u64 = 4;
/// Values loaded: ~24 MiB in 1,200 entries (the snapshot purges all but
/// the last 1,000, so the learner needs the snapshot).
const VALUES: u64 = 1_200;
const VALUE_BYTES: usize = 20 * 1024;
/// A partial snapshot is made durable every 16 MiB (and when a transfer is
/// dropped); the kill comes past the first checkpoint.
const KILL_PAST_BYTES: u64 = 17 * MIB;

async fn status(client: &Client) -> Value {
    client.status().await.unwrap_or(Value::Null)
}

/// Bytes of the snapshot the learner acknowledged, as the leader reports.
async fn bytes_acknowledged(leader: &Client, learner: u64) -> Option<u64> {
    status(leader).await["replication"][learner.to_string()]["snapshot"]["bytes_sent"].as_u64()
}

async fn wait_until(what: &str, timeout: Duration, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_learner_killed_mid_transfer_resumes_the_snapshot_where_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let mut nodes: Vec<LocalNode> = (1..=4).map(|id| LocalNode::new(Path::new(EXE), id, dir.path())).collect();
    for node in &mut nodes {
        node.serve_args = vec!["--snapshot-max-mib-per-s".into(), RATE_MIB_PER_S.to_string()];
    }
    for node in &mut nodes[..3] {
        node.spawn().unwrap();
    }
    for node in &nodes[..3] {
        node.wait_ready(Duration::from_secs(20)).await.unwrap();
    }
    let voters: serde_json::Map<String, Value> = nodes[..3].iter().map(|n| (n.id.to_string(), n.spec())).collect();
    nodes[0].client.post("/v1/cluster/init", &json!({ "nodes": voters })).await.unwrap();
    let leader = {
        let mut leader = None;
        wait_until("a leader", Duration::from_secs(20), async || {
            for node in &nodes[..3] {
                if status(&node.client).await["role"] == "leader" {
                    leader = Some(node.client.clone());
                    return true;
                }
            }
            false
        })
        .await;
        leader.unwrap()
    };
    let value = "v".repeat(VALUE_BYTES);
    let mut last = 0;
    for i in 0..VALUES {
        let put = leader.put(&kv_path(&format!("k{i}")), &json!({ "value": value })).await.unwrap();
        last = put["index"].as_u64().unwrap();
    }
    for node in &nodes[..3] {
        node.client.post("/v1/cluster/snapshot", &json!({})).await.unwrap();
    }

    let learner = &mut nodes[3];
    learner.spawn().unwrap();
    learner.wait_ready(Duration::from_secs(20)).await.unwrap();
    let spec = json!({ "id": 4, "raft": learner.raft, "api": learner.api, "blocking": false });
    leader.post("/v1/cluster/learners", &spec).await.unwrap();
    wait_until("the transfer past the first checkpoint", Duration::from_secs(60), async || {
        bytes_acknowledged(&leader, 4).await.is_some_and(|sent| sent >= KILL_PAST_BYTES)
    })
    .await;
    learner.kill9().await;
    let before_kill = bytes_acknowledged(&leader, 4).await.unwrap_or(0);
    learner.spawn().unwrap();
    learner.wait_ready(Duration::from_secs(20)).await.unwrap();

    // from the restart on, the leader hears no offset between 0 (the one
    // request for the first chunk) and the checkpoint: sent again from the
    // start, the snapshot would be acknowledged at 1, 2, ... MiB (each MiB
    // takes 250 ms at this rate, and the loop looks every few ms)
    let mut lowest = u64::MAX;
    let learner_client = learner.client.clone();
    wait_until("the learner to apply every loaded value", Duration::from_secs(90), async || {
        if let Some(sent) = bytes_acknowledged(&leader, 4).await.filter(|sent| *sent > 0) {
            lowest = lowest.min(sent);
        }
        status(&learner_client).await["applied"].as_u64().is_some_and(|applied| applied >= last)
    })
    .await;
    assert!(
        lowest >= 16 * MIB,
        "the restarted learner was sent the snapshot again from {lowest} (acknowledged {before_kill} before the kill)"
    );
    let read = learner_client.get(&format!("{}?consistency=local", kv_path("k7"))).await.unwrap();
    assert_eq!(read["value"], value.as_str());
}
