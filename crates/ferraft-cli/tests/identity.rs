//! Cluster identity and input checks, with real `ferraft serve` processes:
//! nodes of two clusters cannot be mixed up, and bad membership input is
//! refused before anything is committed.

use std::path::Path;
use std::time::{Duration, Instant};

use ferraft_kv::client::ClientError;
use ferraft_kv::harness::LocalNode;
use serde_json::{json, Value};
use tempfile::TempDir;

const EXE: &str = env!("CARGO_BIN_EXE_ferraft");

/// Starts node `id` (uninitialized) under `dir`.
async fn start(id: u64, dir: &Path) -> LocalNode {
    let mut node = LocalNode::new(Path::new(EXE), id, dir);
    node.spawn().unwrap();
    node.wait_ready(Duration::from_secs(10)).await.unwrap();
    node
}

/// Waits until `node` reports `role`.
async fn wait_role(node: &LocalNode, role: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = node.client.status().await.unwrap();
        if status["role"] == role {
            return status;
        }
        assert!(Instant::now() < deadline, "node {} never became {role}: {status}", node.id);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Starts node `id` and makes it a one-node cluster of its own.
async fn start_single(id: u64, dir: &Path, body: Value) -> LocalNode {
    let node = start(id, dir).await;
    node.client.post("/v1/cluster/init", &body).await.unwrap();
    wait_role(&node, "leader").await;
    node
}

fn api_error(result: Result<Value, ClientError>) -> (String, String) {
    match result {
        Err(ClientError::Api { code, message, .. }) => (code, message),
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn cluster_id(status: &Value) -> String {
    status["cluster_id"].as_str().unwrap_or_else(|| panic!("status without a cluster_id: {status}")).to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn each_cluster_gets_its_own_id_and_a_learner_adopts_its_leaders() {
    let dir = TempDir::new().unwrap();
    let a = start_single(1, dir.path(), json!({})).await;
    let b = start_single(2, dir.path(), json!({})).await;
    let a_id = cluster_id(&a.client.status().await.unwrap());
    let b_id = cluster_id(&b.client.status().await.unwrap());
    assert_ne!(a_id, b_id, "two clusters initialized apart share one id");

    let learner = start(3, dir.path()).await;
    let uninitialized = learner.client.status().await.unwrap();
    assert_eq!(uninitialized["cluster_id"], Value::Null, "an uninitialized node has no cluster yet");
    let body = json!({"id": 3, "raft": learner.raft, "api": learner.api, "blocking": true});
    a.client.post("/v1/cluster/learners", &body).await.unwrap();
    assert_eq!(cluster_id(&learner.client.status().await.unwrap()), a_id);
    let metrics = metrics_text(&learner).await;
    assert!(metrics.contains(&format!("ferraft_cluster_info{{cluster_id=\"{a_id}\"}} 1")), "{metrics}");
}

#[tokio::test(flavor = "multi_thread")]
async fn init_takes_the_cluster_id_the_operator_gives() {
    let dir = TempDir::new().unwrap();
    let node = start_single(1, dir.path(), json!({"cluster_id": "00c0ffee00c0ffee"})).await;
    assert_eq!(cluster_id(&node.client.status().await.unwrap()), "00c0ffee00c0ffee");
    let again = node.client.post("/v1/cluster/init", &json!({"cluster_id": "00c0ffee00c0ffee"})).await;
    again.expect("the same init again is a no-op");
    let (code, _) = api_error(node.client.post("/v1/cluster/init", &json!({"cluster_id": "0bad"})).await);
    assert_eq!(code, "conflict", "an initialized node of another cluster id");
    let bad = start(2, dir.path()).await;
    let (code, _) = api_error(bad.client.post("/v1/cluster/init", &json!({"cluster_id": "not hex"})).await);
    assert_eq!(code, "bad_request");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_of_another_cluster_is_refused_as_learner_and_keeps_its_cluster() {
    let dir = TempDir::new().unwrap();
    let a = start_single(1, dir.path(), json!({})).await;
    a.client.put("/v1/kv/x", &json!({"value": "from a"})).await.unwrap();
    let b = start_single(4, dir.path(), json!({})).await;
    b.client.put("/v1/kv/y", &json!({"value": "from b"})).await.unwrap();

    let body = json!({"id": 4, "raft": b.raft, "api": b.api, "blocking": true});
    let asked = Instant::now();
    let (code, message) = api_error(a.client.post("/v1/cluster/learners", &body).await);
    assert!(asked.elapsed() < Duration::from_secs(10), "the refusal took {:?}", asked.elapsed());
    assert_eq!(code, "conflict", "{message}");
    let b_id = cluster_id(&b.client.status().await.unwrap());
    assert!(message.contains("cluster") && message.contains(&b_id), "{message}");

    let a_status = a.client.status().await.unwrap();
    assert_eq!(a_status["membership"]["nodes"].as_object().unwrap().len(), 1, "{a_status}");
    let b_status = b.client.status().await.unwrap();
    assert_eq!(b_status["role"], "leader", "{b_status}");
    assert_eq!(cluster_id(&b_status), b_id);
    assert_eq!(b_status["membership"]["voters"], json!([4]));
    // b logs its refusal once it has sent it, so a's answer may come first
    let log = wait_for_log(&b, "refused a connection").await;
    assert!(!log.contains("conflicting with a committed one"), "{log}");
    let a_log = std::fs::read_to_string(&a.log).unwrap();
    let said = a_log.lines().any(|l| l.contains("WARN") && l.contains("handshake rejected") && l.contains(&b_id));
    assert!(said, "the refused side does not say why: {a_log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_learner_that_joined_another_cluster_shows_as_refused_in_the_leaders_replication() {
    let dir = TempDir::new().unwrap();
    let a = start_single(1, dir.path(), json!({})).await;
    let mut learner = start(3, dir.path()).await;
    let body = json!({"id": 3, "raft": learner.raft, "api": learner.api, "blocking": true});
    a.client.post("/v1/cluster/learners", &body).await.unwrap();
    // its machine is replaced by one initialized as a cluster of its own
    // elsewhere, then moved to the learner's addresses
    let elsewhere = TempDir::new().unwrap();
    let mut replacement = start_single(3, elsewhere.path(), json!({})).await;
    let theirs = cluster_id(&replacement.client.status().await.unwrap());
    replacement.terminate().await;
    learner.terminate().await;
    learner.data_dir = replacement.data_dir.clone();
    learner.spawn().unwrap();
    learner.wait_ready(Duration::from_secs(10)).await.unwrap();
    assert_eq!(cluster_id(&wait_role(&learner, "leader").await), theirs);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = a.client.status().await.unwrap();
        if let Some(refused) = status["replication"]["3"]["refused"].as_str() {
            assert!(refused.contains(&theirs), "{refused}");
            break;
        }
        assert!(Instant::now() < deadline, "the leader never reported the refusal: {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = std::fs::read_to_string(&learner.log).unwrap();
    assert!(!log.contains("conflicting with a committed one"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn membership_input_is_checked_before_it_is_committed() {
    let dir = TempDir::new().unwrap();
    let a = start_single(1, dir.path(), json!({})).await;
    let before = a.client.status().await.unwrap()["membership"]["log_index"].clone();

    let learner = json!({"id": 10, "raft": "notanaddr", "api": "127.0.0.1:1", "blocking": false});
    let (code, message) = api_error(a.client.post("/v1/cluster/learners", &learner).await);
    assert_eq!(code, "bad_request", "{message}");
    let learner = json!({"id": 10, "raft": "127.0.0.1:1", "api": "nothing", "blocking": false});
    assert_eq!(api_error(a.client.post("/v1/cluster/learners", &learner).await).0, "bad_request");
    let nodes = json!({"change": {"add_nodes": {"10": {"raft": "h", "api": "127.0.0.1:1"}}}});
    assert_eq!(api_error(a.client.post("/v1/cluster/membership", &nodes).await).0, "bad_request");

    for change in [
        json!({"remove_voters": [99]}),
        json!({"remove_nodes": [99]}),
        json!({"set_nodes": {"99": {"raft": "127.0.0.1:1", "api": "127.0.0.1:2"}}}),
    ] {
        let (code, message) = api_error(a.client.post("/v1/cluster/membership", &json!({"change": change})).await);
        assert_eq!(code, "conflict", "{change}: {message}");
        assert!(message.contains("99") && message.contains("voters"), "{change}: {message}");
    }
    let after = a.client.status().await.unwrap()["membership"]["log_index"].clone();
    assert_eq!(before, after, "a refused change was committed");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_restarted_on_another_address_reports_the_mismatch() {
    let dir = TempDir::new().unwrap();
    let mut node = start_single(1, dir.path(), json!({})).await;
    let recorded = node.raft.clone();
    assert_eq!(node.client.status().await.unwrap()["address_mismatch"], Value::Null);
    node.terminate().await;
    node.raft = format!("127.0.0.1:{}", ferraft_kv::harness::free_port());
    node.spawn().unwrap();
    node.wait_ready(Duration::from_secs(10)).await.unwrap();
    let status = wait_role(&node, "leader").await;
    let mismatch = &status["address_mismatch"];
    assert_eq!(mismatch["raft"]["membership"], recorded.as_str(), "{status}");
    assert_eq!(mismatch["raft"]["advertised"], node.raft.as_str(), "{status}");
    let metrics = metrics_text(&node).await;
    assert!(metrics.contains("ferraft_address_mismatch 1"), "{metrics}");
    // the warning comes from a task woken by the same metrics change, which
    // may run after the status answered
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = std::fs::read_to_string(&node.log).unwrap();
        if log.contains("WARN") && log.contains("ferraft ctl change set-nodes 1=") {
            break;
        }
        assert!(Instant::now() < deadline, "no WARN with the fix: {log}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `node`'s log holds `needle`; returns the log.
async fn wait_for_log(node: &LocalNode, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = std::fs::read_to_string(&node.log).unwrap();
        if log.contains(needle) {
            return log;
        }
        assert!(Instant::now() < deadline, "node {} never logged {needle:?}: {log}", node.id);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `GET /metrics` of `node`.
async fn metrics_text(node: &LocalNode) -> String {
    reqwest::get(format!("http://{}/metrics", node.api)).await.unwrap().text().await.unwrap()
}

/// `init` on a member that starts after the cluster formed without it (an
/// operator ran `init` on node 1 first, and now on node 3 too, with no
/// cluster id: each `init` would draw its own) is a repeat: node 3 joins node
/// 1's cluster. Before, an `init` that reached node 3 before the leader did
/// started a cluster of its own, which no member ever joined.
#[tokio::test(flavor = "multi_thread")]
async fn init_on_a_member_of_a_cluster_that_formed_joins_that_cluster() {
    let dir = TempDir::new().unwrap();
    let one = start(1, dir.path()).await;
    let two = start(2, dir.path()).await;
    let mut three = LocalNode::new(Path::new(EXE), 3, dir.path());
    let body = json!({ "nodes": { "1": one.spec(), "2": two.spec(), "3": three.spec() } });
    one.client.post("/v1/cluster/init", &body).await.unwrap();
    let leader_status = wait_role(&one, "leader").await;

    three.spawn().unwrap();
    three.wait_ready(Duration::from_secs(10)).await.unwrap();
    let answer = three.client.post("/v1/cluster/init", &body).await.expect("a repeat of the init that formed it");
    assert_eq!(answer["membership"]["voters"], json!([1, 2, 3]), "{answer}");
    let status = three.client.status().await.unwrap();
    assert_eq!(cluster_id(&status), cluster_id(&leader_status), "node 3 is in node 1's cluster: {status}");
    assert_eq!(status["leader"], 1, "{status}");
}

/// `init` naming a cluster id on a member whose cluster formed without it,
/// under another id: the node joins that cluster (its leader reaches it
/// while `init` waits), so `init` must not answer success as if the node
/// were in the cluster named. A repeat on an initialized node of another
/// cluster id is `conflict`; the same holds when the join comes during the
/// call. (It answered 200 once the voters matched, whatever the id.)
#[tokio::test(flavor = "multi_thread")]
async fn init_with_a_cluster_id_on_a_member_that_joins_another_cluster_is_a_conflict() {
    let dir = TempDir::new().unwrap();
    let one = start(1, dir.path()).await;
    let two = start(2, dir.path()).await;
    let mut three = LocalNode::new(Path::new(EXE), 3, dir.path());
    let nodes = json!({ "1": one.spec(), "2": two.spec(), "3": three.spec() });
    let formed = json!({ "nodes": nodes, "cluster_id": "00000000000000aa" });
    one.client.post("/v1/cluster/init", &formed).await.unwrap();
    wait_role(&one, "leader").await;

    // the leader cannot reach node 3 before node 3's own init does
    one.pause().await.unwrap();
    three.spawn().unwrap();
    three.wait_ready(Duration::from_secs(10)).await.unwrap();
    let other = json!({ "nodes": nodes, "cluster_id": "00000000000000bb" });
    let client = three.client.clone();
    let init = tokio::spawn(async move { client.post("/v1/cluster/init", &other).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    one.resume();

    let (code, message) = api_error(init.await.unwrap());
    assert_eq!(code, "conflict", "{message}");
    let status = three.client.status().await.unwrap();
    assert_eq!(cluster_id(&status), "00000000000000aa", "node 3 joined the cluster that formed: {status}");
}
