//! Issue 18 with real `ferraft serve` processes: the operator's recovery
//! paths. A voter whose data dir is wiped comes back under its old id as a
//! new incarnation and counts for nothing (nothing is replicated to it, its
//! votes and acknowledgements are dropped) until `ferraft ctl readmit`; then
//! it catches up and is promoted again. A cluster that lost two of three
//! nodes for good is restarted from the survivor with `ferraft ctl
//! force-new-cluster`, and a lost node restarted on its old data cannot
//! rejoin and split it.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use std::collections::BTreeMap;

use ferraft_kv::harness::{start_nodes, LocalNode};
use serde_json::{json, Value};
use tempfile::TempDir;

const EXE: &str = env!("CARGO_BIN_EXE_ferraft");

/// Runs `ferraft ctl --endpoint API ARGS`; its exit code and stdout.
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

async fn wait_for(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Three voters, `writes` keys written, and a follower (the victim) whose
/// incarnation the membership records.
struct Recorded {
    nodes: BTreeMap<u64, LocalNode>,
    leader: u64,
    victim: u64,
    old_incarnation: Value,
}

async fn three_voters(dir: &Path, writes: usize) -> Recorded {
    let nodes = start_nodes(Path::new(EXE), 3, dir).await.unwrap();
    let specs: serde_json::Map<String, Value> = nodes.values().map(|n| (n.id.to_string(), n.spec())).collect();
    nodes[&1].client.post("/v1/cluster/init", &json!({ "nodes": specs })).await.unwrap();
    for i in 0..writes {
        nodes[&1].client.put(&format!("/v1/kv/k{i}"), &json!({"value": format!("v{i}")})).await.unwrap();
    }
    let leader = nodes[&1].client.status().await.unwrap()["leader"].as_u64().expect("a leader");
    let victim = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap();
    let recorded = |s: &Value| s["membership"]["incarnations"][victim.to_string()].clone();
    // recorded at init when the member answered the init probe in time, else
    // by the leader once it hears from it (a loaded machine: later)
    let leader_client = nodes[&leader].client.clone();
    wait_for("the membership to record the victim's incarnation", async || {
        recorded(&leader_client.status().await.unwrap()).is_string()
    })
    .await;
    let old_incarnation = recorded(&leader_client.status().await.unwrap());
    Recorded { nodes, leader, victim, old_incarnation }
}

/// Kills `node`, wipes its data dir and starts it again: its new incarnation.
async fn wipe(node: &mut LocalNode) -> Value {
    node.kill9().await;
    std::fs::remove_dir_all(&node.data_dir).unwrap();
    node.spawn().unwrap();
    node.wait_ready(Duration::from_secs(10)).await.unwrap();
    node.client.status().await.unwrap()["incarnation"].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wiped_voter_is_not_its_old_self_until_readmitted_with_ctl() {
    let dir = TempDir::new().unwrap();
    let Recorded { mut nodes, leader, victim, old_incarnation } = three_voters(dir.path(), 20).await;
    let survivor = [1, 2, 3].into_iter().find(|id| *id != leader && *id != victim).unwrap();
    let leader_api = nodes[&leader].api.clone();
    let fresh = wipe(nodes.get_mut(&victim).unwrap()).await;
    assert_ne!(fresh, old_incarnation, "a wiped data dir is a new incarnation");

    // the two intact voters commit; nothing reaches the wiped node as its old self
    nodes[&leader].client.put("/v1/kv/after-wipe", &json!({"value": "x"})).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let wiped = nodes[&victim].client.status().await.unwrap();
    assert_eq!(wiped["applied"], 0, "the wiped node was fed as its old self: {wiped}");
    let log = std::fs::read_to_string(&nodes[&victim].log).unwrap();
    assert!(log.contains("another incarnation of this node"), "the wiped node says why it drops messages");

    // the operator's path back: readmit (a learner of its new incarnation), then promote
    let (code, out, err) = ctl(&leader_api, &["readmit", &victim.to_string()]).await;
    assert_eq!(code, 0, "readmit failed: {out} {err}");
    let answer: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let learners = answer["membership"]["learners"].as_array().cloned().unwrap_or_default();
    assert!(learners.contains(&json!(victim)), "{answer}");
    assert_eq!(answer["membership"]["incarnations"][victim.to_string()], fresh);
    let client = nodes[&victim].client.clone();
    wait_for("the readmitted node to catch up", async || {
        client.get("/v1/kv/after-wipe?consistency=local").await.is_ok_and(|v| v["value"] == "x")
    })
    .await;
    // the leader promotes only a learner it has seen caught up; its view
    // trails the learner's own by an acknowledgement
    let leader_client = nodes[&leader].client.clone();
    wait_for("the leader to see the readmitted node caught up", async || {
        let status = leader_client.status().await.unwrap();
        status["replication"][victim.to_string()]["lag_entries"] == 0
    })
    .await;
    let (code, out, err) = ctl(&leader_api, &["change", "add-voters", &victim.to_string()]).await;
    assert_eq!(code, 0, "promotion failed: {out} {err}");
    let status = nodes[&survivor].client.status().await.unwrap();
    let voters = status["membership"]["voters"].as_array().cloned().unwrap_or_default();
    assert_eq!(voters.len(), 3, "{status}");
    nodes[&victim].client.put("/v1/kv/after-readmit", &json!({"value": "y"})).await.unwrap();
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

/// `ctl status --cluster` as JSON, through `api`: the row of each member by id.
async fn cluster_rows(api: &str) -> BTreeMap<u64, Value> {
    let (code, out, err) = ctl(api, &["status", "--cluster"]).await;
    assert_eq!(code, 0, "status --cluster failed: {out} {err}");
    let answer: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let rows = answer["nodes"].as_array().cloned().unwrap_or_default();
    rows.into_iter().map(|row| (row["id"].as_u64().expect("a row names its member"), row)).collect()
}

/// The operator sees incarnations: a wiped voter, back as a new incarnation,
/// is flagged in `ctl status --cluster` with the fix (`ferraft ctl readmit`),
/// the leader's metrics name the incarnation each member is recorded as and
/// the wiped node's its own; once readmitted, the flag is gone.
#[tokio::test(flavor = "multi_thread")]
async fn a_wiped_member_is_flagged_with_readmit_in_status_and_metrics() {
    let dir = TempDir::new().unwrap();
    let Recorded { mut nodes, leader, victim, old_incarnation: old } = three_voters(dir.path(), 1).await;
    let leader_api = nodes[&leader].api.clone();
    let rows = cluster_rows(&leader_api).await;
    assert!(rows.values().all(|row| row["incarnation_fix"].is_null()), "nothing to fix yet: {rows:?}");
    let old = old.as_str().expect("recorded as hex").to_owned();
    let fresh = wipe(nodes.get_mut(&victim).unwrap()).await.as_str().expect("reported as hex").to_owned();
    assert_ne!(fresh, old);

    let rows = cluster_rows(&leader_api).await;
    let fix = format!("ferraft ctl readmit {victim}");
    assert_eq!(rows[&victim]["incarnation_fix"], json!(fix), "{:?}", rows[&victim]);
    assert_eq!(rows[&victim]["recorded_incarnation"], json!(old));
    assert!(rows.iter().filter(|(id, _)| **id != victim).all(|(_, row)| row["incarnation_fix"].is_null()));
    let metrics =
        |api: String| async move { reqwest::get(format!("http://{api}/metrics")).await.unwrap().text().await.unwrap() };
    let leader_metrics = metrics(leader_api.clone()).await;
    let line = format!("ferraft_member_incarnation_info{{id=\"{victim}\",incarnation=\"{old}\"}} 1");
    assert!(leader_metrics.contains(&line), "{line} missing from the leader's metrics:\n{leader_metrics}");
    let victim_metrics = metrics(nodes[&victim].api.clone()).await;
    let line = format!("ferraft_incarnation_info{{incarnation=\"{fresh}\"}} 1");
    assert!(victim_metrics.contains(&line), "{line} missing from the wiped node's metrics:\n{victim_metrics}");

    let (code, out, err) = ctl(&leader_api, &["readmit", &victim.to_string()]).await;
    assert_eq!(code, 0, "readmit failed: {out} {err}");
    let rows = cluster_rows(&leader_api).await;
    assert!(rows[&victim]["incarnation_fix"].is_null(), "still flagged after readmit: {:?}", rows[&victim]);
    assert_eq!(rows[&victim]["recorded_incarnation"], json!(fresh));
}
