//! What the server tells callers of membership changes after faults (issue 17),
//! with real `ferraft serve` processes on loopback.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use ferraft_kv::harness::LocalNode;
use serde_json::{json, Value};

const EXE: &str = env!("CARGO_BIN_EXE_ferraft");

/// Starts `n` nodes and initializes them all as voters; returns them and the leader.
async fn three_voters(dir: &Path) -> (BTreeMap<u64, LocalNode>, u64) {
    let mut nodes = BTreeMap::new();
    for id in 1..=3 {
        let mut node = LocalNode::new(Path::new(EXE), id, dir);
        node.spawn().unwrap();
        nodes.insert(id, node);
    }
    for node in nodes.values() {
        node.wait_ready(Duration::from_secs(10)).await.unwrap();
    }
    let voters: BTreeMap<String, Value> = nodes.iter().map(|(id, n)| (id.to_string(), n.spec())).collect();
    nodes[&1].client.post("/v1/cluster/init", &json!({ "nodes": voters })).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut leader = None;
        for (id, node) in &nodes {
            if node.client.status().await.is_ok_and(|s| s["role"] == "leader") {
                leader = Some(*id);
            }
        }
        if let Some(leader) = leader {
            return (nodes, leader);
        }
        assert!(Instant::now() < deadline, "no leader");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_blocking_learner_add_whose_leader_loses_its_quorum_answers_partially_applied() {
    let dir = tempfile::tempdir().unwrap();
    let (mut nodes, leader) = three_voters(dir.path()).await;
    // node 4 is described but never started: it cannot catch up
    let learner = LocalNode::new(Path::new(EXE), 4, dir.path());
    let client = nodes[&leader].client.clone();
    let body = json!({ "id": 4, "raft": learner.spec()["raft"], "api": learner.spec()["api"], "blocking": true });
    let call = tokio::spawn(async move { client.post("/v1/cluster/learners", &body).await });
    // once the learner entry is committed (a step did happen), its quorum goes away
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let membership = nodes[&leader].client.status().await.unwrap()["membership"].clone();
        if membership["committed"] == json!(true) && membership["learners"].as_array().unwrap().contains(&json!(4)) {
            break;
        }
        assert!(Instant::now() < deadline, "learner entry never committed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for id in [1, 2, 3].into_iter().filter(|id| *id != leader) {
        nodes.get_mut(&id).unwrap().kill9().await;
    }
    let answer = tokio::time::timeout(Duration::from_secs(20), call).await.expect("answered in time").unwrap();
    let error = answer.expect_err("the learner did not catch up");
    assert_eq!(error.code(), Some("partially_applied"), "{error}");
    let ferraft_kv::client::ClientError::Api { status, body, .. } = error else { unreachable!() };
    assert_eq!(status, 500);
    assert!(body["error"]["membership"]["learners"].as_array().unwrap().contains(&json!(4)), "{body}");
}

#[tokio::test]
async fn a_removed_node_answers_not_member_instead_of_forwarding() {
    let dir = tempfile::tempdir().unwrap();
    let (nodes, leader) = three_voters(dir.path()).await;
    let out = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap();
    let change = json!({ "change": { "remove_voters": [out] }, "retain": false });
    nodes[&leader].client.post("/v1/cluster/membership", &change).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while nodes[&out].client.status().await.unwrap()["role"] != "removed" {
        assert!(Instant::now() < deadline, "the removed node never says so");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let error = nodes[&out].client.put("/v1/kv/k", &json!({ "value": "v" })).await.expect_err("refused");
    assert_eq!(error.code(), Some("not_member"), "{error}");
    let error = nodes[&leader].client.get("/v1/kv/k").await.expect_err("the write never happened");
    assert_eq!(error.code(), Some("not_found"));
}

/// Three voters; a follower demoted under change id "demote-1", then made
/// a voter again by a forced change without an id. The nodes, the leader,
/// the node demoted, the demotion's request and its first answer.
async fn demoted_and_promoted_again(dir: &Path) -> (BTreeMap<u64, LocalNode>, u64, u64, Value, Value) {
    let (nodes, leader) = three_voters(dir).await;
    let client = &nodes[&leader].client;
    let out = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap();
    let demote = json!({ "change": { "remove_voters": [out] }, "retain": true, "change_id": "demote-1" });
    let first = client.post("/v1/cluster/membership", &demote).await.unwrap();
    assert!(first["membership"]["learners"].as_array().unwrap().contains(&json!(out)));
    let promote = json!({ "change": { "add_voters": [out] }, "force": true });
    client.post("/v1/cluster/membership", &promote).await.unwrap();
    (nodes, leader, out, demote, first)
}

#[tokio::test]
async fn a_change_retried_with_its_id_returns_the_first_outcome_and_changes_nothing_more() {
    let dir = tempfile::tempdir().unwrap();
    let (nodes, leader, out, demote, first) = demoted_and_promoted_again(dir.path()).await;
    let client = &nodes[&leader].client;
    // the first caller, unsure of its outcome, retries through another node
    let other = [1, 2, 3].into_iter().find(|id| *id != leader && *id != out).unwrap();
    let retried = nodes[&other].client.post("/v1/cluster/membership", &demote).await.unwrap();
    assert_eq!(retried["membership"]["log_index"], first["membership"]["log_index"], "the first outcome");
    let now = client.status().await.unwrap();
    assert!(now["membership"]["voters"].as_array().unwrap().contains(&json!(out)), "not demoted twice: {now}");
    let status = client.get("/v1/cluster/changes/demote-1").await.unwrap();
    assert_eq!(status["status"], "committed", "{status}");
    let unknown = nodes[&other].client.get("/v1/cluster/changes/never-made").await.unwrap();
    assert_eq!(unknown["status"], "unknown");
    // a precondition on a stale membership: refused, nothing happens
    let stale = json!({ "change": { "remove_voters": [out] }, "expect_membership_index": 1 });
    let error = client.post("/v1/cluster/membership", &stale).await.expect_err("stale precondition");
    assert_eq!(error.code(), Some("conflict"), "{error}");
    let after = client.status().await.unwrap();
    assert!(after["membership"]["voters"].as_array().unwrap().contains(&json!(out)));
}

/// A change id names one change: sending another change under an id already
/// used is `conflict` naming the id, and changes nothing, whether the leader
/// still tracks the id, finds it only in its log (after a leader change), or
/// refused the first call; the same change again still answers the first
/// outcome. Before, the other change answered 200 with the first one's
/// membership.
#[tokio::test]
async fn a_change_id_reused_for_another_change_is_conflict_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (nodes, leader) = three_voters(dir.path()).await;
    let client = nodes[&leader].client.clone();
    let out = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap();
    let other = [1, 2, 3].into_iter().find(|id| *id != leader && *id != out).unwrap();
    let demote = json!({ "change": { "remove_voters": [out] }, "retain": true, "change_id": "demote-1" });
    let first = client.post("/v1/cluster/membership", &demote).await.unwrap();
    let before = client.status().await.unwrap()["membership"].clone();
    let reused = [
        json!({ "change": { "remove_voters": [other] }, "retain": true, "change_id": "demote-1" }),
        json!({ "change": { "remove_voters": [out] }, "retain": false, "change_id": "demote-1" }),
        json!({ "change": { "add_voters": [out] }, "change_id": "demote-1" }),
    ];
    for body in &reused {
        let error = nodes[&other].client.post("/v1/cluster/membership", body).await.expect_err("reused id");
        assert_eq!(error.code(), Some("conflict"), "{body}: {error}");
        let ferraft_kv::client::ClientError::Api { status, body: answer, .. } = error else { unreachable!() };
        assert_eq!(status, 409);
        assert_eq!(answer["error"]["change_id"], "demote-1", "{answer}");
    }
    assert_eq!(client.status().await.unwrap()["membership"], before, "nothing changed");
    // a refused first call holds its id the same way
    let refused = json!({ "change": { "add_voters": [9] }, "change_id": "bad-1" });
    let error = client.post("/v1/cluster/membership", &refused).await.expect_err("9 is no learner");
    assert_eq!(error.code(), Some("conflict"), "{error}");
    let reuse = json!({ "change": { "add_voters": [out] }, "change_id": "bad-1" });
    let error = client.post("/v1/cluster/membership", &reuse).await.expect_err("reused id");
    let ferraft_kv::client::ClientError::Api { body: answer, .. } = error else { unreachable!() };
    assert_eq!(answer["error"]["change_id"], "bad-1", "{answer}");
    // after a leader change, the next leader finds the id in its log only
    let moved = client.post("/v1/cluster/leader/transfer", &json!({ "to": other })).await.unwrap();
    let next = moved["leader"].as_u64().unwrap();
    assert_ne!(next, leader);
    let error = nodes[&next].client.post("/v1/cluster/membership", &reused[2]).await.expect_err("reused id");
    assert_eq!(error.code(), Some("conflict"), "{error}");
    let retried = nodes[&next].client.post("/v1/cluster/membership", &demote).await.unwrap();
    assert_eq!(retried["membership"]["log_index"], first["membership"]["log_index"], "the first outcome");
}

#[tokio::test]
async fn a_change_with_an_id_that_found_nothing_to_do_is_not_made_by_a_later_repeat() {
    let dir = tempfile::tempdir().unwrap();
    let (nodes, leader) = three_voters(dir.path()).await;
    let client = &nodes[&leader].client;
    let voter = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap();
    // the voter is one already: the change finds nothing to do, and says done
    let keep = json!({ "change": { "add_voters": [voter] }, "change_id": "keep-1" });
    let first = client.post("/v1/cluster/membership", &keep).await.unwrap();
    assert!(first["membership"]["voters"].as_array().unwrap().contains(&json!(voter)), "{first}");
    let status = client.get("/v1/cluster/changes/keep-1").await.unwrap();
    assert_eq!(status["status"], "committed", "a change answered done is known by its id: {status}");
    // someone demotes it
    let demote = json!({ "change": { "remove_voters": [voter] }, "retain": true });
    client.post("/v1/cluster/membership", &demote).await.unwrap();
    // the first caller, unsure of its outcome, repeats: the first outcome, nothing more
    let other = [1, 2, 3].into_iter().find(|id| *id != leader && *id != voter).unwrap();
    let retried = nodes[&other].client.post("/v1/cluster/membership", &keep).await.unwrap();
    assert_eq!(retried["membership"]["log_index"], first["membership"]["log_index"], "the first outcome: {retried}");
    let now = client.status().await.unwrap();
    assert!(now["membership"]["learners"].as_array().unwrap().contains(&json!(voter)), "not promoted again: {now}");
}

#[tokio::test]
async fn readmit_is_not_answered_done_before_the_record_of_the_new_incarnation_commits() {
    let dir = tempfile::tempdir().unwrap();
    let (mut nodes, leader) = three_voters(dir.path()).await;
    let mut learner = LocalNode::new(Path::new(EXE), 4, dir.path());
    learner.spawn().unwrap();
    learner.wait_ready(Duration::from_secs(10)).await.unwrap();
    let add = json!({ "id": 4, "raft": learner.spec()["raft"], "api": learner.spec()["api"], "blocking": true });
    nodes[&leader].client.post("/v1/cluster/learners", &add).await.unwrap();
    // the learner's data dir is wiped: a new incarnation
    learner.kill9().await;
    std::fs::remove_dir_all(&learner.data_dir).unwrap();
    learner.spawn().unwrap();
    learner.wait_ready(Duration::from_secs(10)).await.unwrap();
    // the leader is left alone: nothing it appends can commit
    for id in [1, 2, 3].into_iter().filter(|id| *id != leader) {
        nodes.get_mut(&id).unwrap().kill9().await;
    }
    let client = ferraft_kv::client::Client::with_timeout(&nodes[&leader].api, Duration::from_secs(30));
    // (`conflict` while the leader cannot ask the restarted node yet: nothing happened, ask again)
    let deadline = Instant::now() + Duration::from_secs(10);
    let answer = loop {
        let answer = client.post("/v1/cluster/readmit", &json!({ "id": 4 })).await;
        match &answer {
            Err(e) if e.code() == Some("conflict") && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            _ => break answer,
        }
    };
    let status = nodes[&leader].client.status().await.unwrap();
    match answer {
        Ok(done) => {
            let index = done["membership"]["log_index"].as_u64().unwrap();
            let committed = status["committed"].as_u64().unwrap();
            panic!("answered done with entry {index}, the leader committed only {committed}: {done} / {status}");
        }
        Err(error) => assert_eq!(error.code(), Some("timeout"), "the record may or may not commit: {error}"),
    }
}

/// `ferraft_purged_index` of `node`'s `/metrics`.
async fn purged_index(node: &LocalNode) -> u64 {
    let text = reqwest::get(format!("http://{}/metrics", node.api)).await.unwrap().text().await.unwrap();
    let line = text.lines().find(|l| l.starts_with("ferraft_purged_index")).expect("ferraft_purged_index");
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

/// A change's id outlives its log entries: once a snapshot covers them and
/// the log behind it is purged, `changes/{id}` still answers `committed`
/// and a repeat still answers the first outcome, changing nothing more.
#[tokio::test]
async fn a_change_id_is_answered_after_its_entries_are_compacted_into_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let (nodes, leader, out, demote, first) = demoted_and_promoted_again(dir.path()).await;
    let client = &nodes[&leader].client;
    let change_index = first["membership"]["log_index"].as_u64().unwrap();
    // the log keeps the last 1,000 entries behind a snapshot: write past that
    let writers: Vec<_> = (0..16)
        .map(|w| {
            let client = client.clone();
            tokio::spawn(async move {
                for i in 0..70 {
                    client.put(&format!("/v1/kv/k{w}-{i}"), &json!({ "value": "v" })).await.unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    let snapshot = client.post("/v1/cluster/snapshot", &json!({})).await.unwrap();
    assert!(snapshot["snapshot_index"].as_u64().unwrap() > change_index + 1_000, "{snapshot}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while purged_index(&nodes[&leader]).await <= change_index {
        assert!(Instant::now() < deadline, "the leader's log was not purged past the change");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = client.get("/v1/cluster/changes/demote-1").await.unwrap();
    assert_eq!(status["status"], "committed", "{status}");
    assert_eq!(status["membership"]["log_index"], first["membership"]["log_index"], "{status}");
    let before = client.status().await.unwrap();
    let retried = client.post("/v1/cluster/membership", &demote).await.unwrap();
    assert_eq!(retried["membership"]["log_index"], first["membership"]["log_index"], "the first outcome: {retried}");
    let after = client.status().await.unwrap();
    assert!(after["membership"]["voters"].as_array().unwrap().contains(&json!(out)), "not demoted twice: {after}");
    assert_eq!(after["last_log_index"], before["last_log_index"], "nothing proposed: {before} / {after}");
}
