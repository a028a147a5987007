//! Guarded recovery (issue 18) with real `ferraft serve` processes: three
//! nodes, two killed for good, `ferraft ctl force-new-cluster` on the
//! survivor; writes work again, and a killed node restarted on its old data
//! cannot rejoin and split the cluster.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use ferraft_kv::harness::start_nodes;
use serde_json::{json, Value};
use tempfile::TempDir;

const EXE: &str = env!("CARGO_BIN_EXE_ferraft");

/// Runs `ferraft ctl --endpoint API --json ARGS`; exit code, stdout, stderr.
async fn ctl(api: &str, args: &[&str]) -> (i32, String, String) {
    let output = tokio::process::Command::new(EXE)
        .args(["ctl", "--endpoint", api, "--json"])
        .args(args)
        .env_remove("FERRAFT_ENDPOINT")
        .env_remove("FERRAFT_ENDPOINTS")
        .stdin(Stdio::null())
        .output()
        .await
        .expect("ferraft runs");
    let out = String::from_utf8_lossy(&output.stdout).into_owned();
    let err = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code().unwrap_or(-1), out, err)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_survivor_forced_into_a_new_cluster_serves_writes_and_the_lost_cannot_split_it() {
    let dir = TempDir::new().unwrap();
    let mut nodes = start_nodes(Path::new(EXE), 3, dir.path()).await.unwrap();
    let specs: serde_json::Map<String, Value> = nodes.values().map(|n| (n.id.to_string(), n.spec())).collect();
    nodes[&1].client.post("/v1/cluster/init", &json!({ "nodes": specs })).await.unwrap();
    for i in 0..10 {
        nodes[&1].client.put(&format!("/v1/kv/k{i}"), &json!({"value": format!("v{i}")})).await.unwrap();
    }
    let old_cluster = nodes[&1].client.status().await.unwrap()["cluster_id"].clone();
    // the survivor applied every write before the others are lost
    nodes[&3].client.wait_local_value("k9", "v9", Duration::from_secs(10)).await.unwrap();
    nodes.get_mut(&1).unwrap().kill9().await;
    nodes.get_mut(&2).unwrap().kill9().await;
    let survivor = nodes[&3].api.clone();

    let (code, out, err) = ctl(&survivor, &["force-new-cluster"]).await;
    assert_ne!(code, 0, "refused without the confirmation flag: {out} {err}");
    let status = nodes[&3].client.status().await.unwrap();
    assert_eq!(status["cluster_id"], old_cluster, "nothing changed without the confirmation");

    let (code, out, err) = ctl(&survivor, &["force-new-cluster", "--yes-i-know-this-drops-the-other-members"]).await;
    assert_eq!(code, 0, "force-new-cluster failed: {out} {err}");
    let answer: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(answer["membership"]["voters"], json!([3]), "{answer}");
    assert_ne!(answer["cluster_id"], old_cluster, "a new cluster id");
    let log = std::fs::read_to_string(&nodes[&3].log).unwrap();
    assert!(log.contains("FORCE-NEW-CLUSTER"), "the survivor's log says loudly what happened");

    // writes work, and nothing the survivor held was lost
    nodes[&3].client.put("/v1/kv/after", &json!({"value": "forced"})).await.unwrap();
    let v = nodes[&3].client.get("/v1/kv/k9").await.unwrap();
    assert_eq!(v["value"], "v9");

    // a lost node restarted on its old data is refused: it cannot join the
    // new cluster, and alone it is no majority of the old one
    let lost = nodes.get_mut(&1).unwrap();
    lost.spawn().unwrap();
    lost.wait_ready(Duration::from_secs(10)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let lost_status = nodes[&1].client.status().await.unwrap();
    assert_eq!(lost_status["cluster_id"], old_cluster, "{lost_status}");
    assert_ne!(lost_status["role"], "leader", "{lost_status}");
    assert!(nodes[&1].client.put("/v1/kv/split", &json!({"value": "no"})).await.is_err(), "the lost node took a write");
    let status = nodes[&3].client.status().await.unwrap();
    assert_eq!(status["role"], "leader", "{status}");
    assert_eq!(status["membership"]["voters"], json!([3]));
    nodes[&3].client.put("/v1/kv/still", &json!({"value": "ok"})).await.unwrap();
    assert!(nodes[&3].client.get("/v1/kv/split").await.is_err(), "no write of the lost node reached the new cluster");
}
