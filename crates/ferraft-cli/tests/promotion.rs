//! Promote when ready and catch-up you can watch (issue 23), over HTTP with
//! real `ferraft serve` processes on loopback.

use std::path::Path;
use std::time::{Duration, Instant};

use ferraft_kv::client::ClientError;
use ferraft_kv::harness::LocalNode;
use serde_json::{json, Value};

const EXE: &str = env!("CARGO_BIN_EXE_ferraft");

/// Starts and waits for node `id`.
async fn started(id: u64, dir: &Path) -> LocalNode {
    let mut node = LocalNode::new(Path::new(EXE), id, dir);
    node.spawn().unwrap();
    node.wait_ready(Duration::from_secs(10)).await.unwrap();
    node
}

fn voters(membership: &Value) -> Vec<u64> {
    membership["voters"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect()
}

fn conflict_body(error: ClientError) -> Value {
    assert_eq!(error.code(), Some("conflict"), "{error}");
    let ClientError::Api { status, body, .. } = error else { unreachable!() };
    assert_eq!(status, 409);
    body
}

#[tokio::test]
async fn a_learner_added_over_http_with_promote_when_is_promoted_and_replace_needs_a_ready_learner() {
    let dir = tempfile::tempdir().unwrap();
    let one = started(1, dir.path()).await;
    one.client.post("/v1/cluster/init", &json!({})).await.unwrap();
    for i in 0..50 {
        one.client.put(&format!("/v1/kv/k{i}"), &json!({ "value": "v" })).await.unwrap();
    }

    // node 2 is added with a readiness rule and promoted by the leader
    let two = started(2, dir.path()).await;
    let spec = two.spec();
    let rule = json!({ "lag_entries": 5, "lag_bytes": 1_000_000, "hold_ms": 200 });
    let body = json!({ "id": 2, "raft": spec["raft"], "api": spec["api"], "promote_when": rule });
    let started_at = Instant::now();
    let answer = one.client.post("/v1/cluster/learners", &body).await.unwrap();
    assert!(started_at.elapsed() >= Duration::from_millis(200));
    assert_eq!(voters(&answer["membership"]), [1, 2]);

    // the leader's status shows the catch-up of each follower
    let status = one.client.status().await.unwrap();
    let peer = &status["replication"]["2"];
    for field in ["matched", "lag_entries", "lag_bytes", "rate_entries_per_s", "eta_ms", "snapshot", "stall"] {
        assert!(peer.get(field).is_some(), "replication entry lacks {field}: {peer}");
    }
    let metrics = reqwest::get(format!("http://{}/metrics", one.api)).await.unwrap().text().await.unwrap();
    for family in ["ferraft_replication_lag_bytes{peer=\"2\"}", "ferraft_replication_stalled{peer=\"2\""] {
        assert!(metrics.contains(family), "/metrics lacks {family}");
    }

    // node 3 is described but never started: a learner that cannot catch up
    let three = LocalNode::new(Path::new(EXE), 3, dir.path());
    let spec = three.spec();
    let body = json!({ "id": 3, "raft": spec["raft"], "api": spec["api"], "blocking": false });
    one.client.post("/v1/cluster/learners", &body).await.unwrap();
    let refused = one.client.post("/v1/cluster/replace", &json!({ "old": 2, "new": 3 })).await.unwrap_err();
    let body = conflict_body(refused);
    assert_eq!(body["error"]["node_id"], 3);
    assert!(body["error"]["lag_entries"].as_u64().unwrap() > 50, "{body}");
    let promote = json!({ "change": { "add_voters": [3] } });
    let refused = one.client.post("/v1/cluster/membership", &promote).await.unwrap_err();
    assert!(conflict_body(refused)["error"]["lag_bytes"].as_u64().is_some());
    let status = one.client.status().await.unwrap();
    assert_eq!(voters(&status["membership"]), [1, 2], "nothing happened");

    // node 4 catches up; replace swaps voter 2 for it in one change
    let four = started(4, dir.path()).await;
    let spec = four.spec();
    let body = json!({ "id": 4, "raft": spec["raft"], "api": spec["api"], "blocking": true });
    one.client.post("/v1/cluster/learners", &body).await.unwrap();
    let answer = one.client.post("/v1/cluster/replace", &json!({ "old": 2, "new": 4 })).await.unwrap();
    assert_eq!(voters(&answer["membership"]), [1, 4]);

    // forced, the stopped learner becomes a voter anyway (1 and 4 still make a quorum of 3)
    let forced = json!({ "change": { "add_voters": [3] }, "force": true });
    let answer = one.client.post("/v1/cluster/membership", &forced).await.unwrap();
    assert_eq!(voters(&answer["membership"]), [1, 3, 4]);
    drop((two, three, four));
}

#[tokio::test]
async fn ctl_adds_a_learner_promoted_when_ready_then_replaces_a_voter_with_another() {
    let dir = tempfile::tempdir().unwrap();
    let one = started(1, dir.path()).await;
    one.client.post("/v1/cluster/init", &json!({})).await.unwrap();
    let ctl = |args: &[&str]| -> Value {
        let out = std::process::Command::new(EXE).args(["ctl", "--json", "--endpoint", &one.api]).args(args).output();
        let out = out.unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let two = started(2, dir.path()).await;
    let promoted = ctl(&[
        "add-learner",
        "2",
        "--raft",
        &two.raft,
        "--api",
        &two.api,
        "--promote-when-ready",
        "--max-lag",
        "10",
        "--hold-ms",
        "100",
    ]);
    assert_eq!(voters(&promoted["membership"]), [1, 2]);
    let three = started(3, dir.path()).await;
    ctl(&["add-learner", "3", "--raft", &three.raft, "--api", &three.api]);
    let replaced = ctl(&["replace-voter", "2", "3"]);
    assert_eq!(voters(&replaced["membership"]), [1, 3]);
}
