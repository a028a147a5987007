//! `ferraft demo`: five local `ferraft serve` processes (real TCP, real WAL,
//! in a temp dir) through a series of membership changes, with a client
//! writing all along; at the end every acknowledged write is read back from
//! every node.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::task::JoinHandle;

use crate::client::{kv_path, Client, ClientError};
use crate::ctl::{add_learner, membership_line};
use crate::ctl_promote::{add_learner_promoted, PromoteArgs};
use crate::harness::LocalNode;

type DemoResult<T = ()> = Result<T, String>;

/// Runs the demo.
pub async fn run() -> DemoResult {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the ferraft binary: {e}"))?;
    let dir = tempfile::Builder::new().prefix("ferraft-demo-").tempdir().map_err(|e| e.to_string())?;
    let mut demo = Demo::new(exe, dir.path().to_owned());
    let outcome = tokio::select! {
        outcome = demo.walk_through() => outcome,
        _ = tokio::signal::ctrl_c() => Err("interrupted".to_owned()),
    };
    demo.stop_all().await;
    match outcome {
        Ok(()) => Ok(()),
        Err(e) => {
            let kept = dir.keep();
            Err(format!("{e}\n(node logs kept in {})", kept.display()))
        }
    }
}

/// Writes `demo/NNNNN` keys in the background and remembers what was acknowledged.
struct Writer {
    acked: Arc<Mutex<BTreeMap<String, String>>>,
    failed: Arc<Mutex<BTreeMap<String, u64>>>,
    stop: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl Writer {
    fn start(clients: Vec<Client>) -> Self {
        let acked = Arc::new(Mutex::new(BTreeMap::new()));
        let failed = Arc::new(Mutex::new(BTreeMap::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let task = {
            let (acked, failed, stop) = (acked.clone(), failed.clone(), stop.clone());
            tokio::spawn(async move {
                let mut seq = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    seq += 1;
                    let key = format!("demo/{seq:05}");
                    let value = format!("value-{seq}");
                    let client = &clients[seq as usize % clients.len()];
                    match client.put(&kv_path(&key), &json!({ "value": value })).await {
                        Ok(_) => {
                            acked.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(key, value);
                        }
                        Err(e) => {
                            let reason = e.code().unwrap_or("unreachable").to_owned();
                            *failed
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner)
                                .entry(reason)
                                .or_default() += 1;
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
        };
        Self { acked, failed, stop, task }
    }

    fn acked(&self) -> usize {
        self.acked.lock().unwrap_or_else(std::sync::PoisonError::into_inner).len()
    }

    async fn stop(self) -> (BTreeMap<String, String>, BTreeMap<String, u64>) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        let acked = self.acked.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let failed = self.failed.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        (acked, failed)
    }
}

struct Demo {
    nodes: BTreeMap<u64, LocalNode>,
    started: Instant,
    step: usize,
    changes: Vec<String>,
}

const STEPS: usize = 11;

impl Demo {
    fn new(exe: PathBuf, dir: PathBuf) -> Self {
        let nodes = (1..=5).map(|id| (id, LocalNode::new(&exe, id, &dir))).collect();
        Self { nodes, started: Instant::now(), step: 0, changes: Vec::new() }
    }

    fn client(&self, id: u64) -> &Client {
        &self.nodes[&id].client
    }

    fn header(&mut self, title: &str) {
        self.step += 1;
        println!();
        println!("[{:>5.1}s] step {}/{STEPS}: {title}", self.started.elapsed().as_secs_f64(), self.step);
    }

    fn say(&self, text: impl AsRef<str>) {
        println!("         {}", text.as_ref());
    }

    async fn walk_through(&mut self) -> DemoResult {
        println!("ferraft demo: five `ferraft serve` processes on loopback, each with its own WAL in a temp dir.");
        self.start_nodes().await?;
        self.initialize().await?;
        self.first_writes().await?;
        self.add_learners().await?;
        let writer = Writer::start([2, 3, 4].iter().map(|id| self.client(*id).clone()).collect());
        self.say("a background client now writes demo/NNNNN keys through nodes 2, 3 and 4 for the rest of the demo");
        self.replace_voters().await?;
        self.concurrent_changes().await?;
        self.explicit_joint().await?;
        self.remove_leader().await?;
        self.failover_mid_change().await?;
        self.kill_and_restart().await?;
        self.say(format!("background writer: {} writes acknowledged so far; stopping it", writer.acked()));
        let (acked, failed) = writer.stop().await;
        self.verify(&acked, failed).await
    }

    async fn start_nodes(&mut self) -> DemoResult {
        self.header("start five uninitialized nodes");
        for node in self.nodes.values_mut() {
            node.spawn().map_err(|e| format!("cannot start node {}: {e}", node.id))?;
        }
        for node in self.nodes.values() {
            node.wait_ready(Duration::from_secs(10)).await?;
            self.say(format!("node {}: raft {}  api {}  (uninitialized)", node.id, node.raft, node.api));
        }
        Ok(())
    }

    async fn initialize(&mut self) -> DemoResult {
        self.header("initialize the cluster with voters {1,2,3}");
        let nodes: BTreeMap<String, Value> = (1..=3).map(|id| (id.to_string(), self.nodes[&id].spec())).collect();
        let answer = self.client(1).post("/v1/cluster/init", &json!({ "nodes": nodes })).await.map_err(err("init"))?;
        self.say(format!("POST /v1/cluster/init on node 1 -> {}", membership_line(&answer["membership"])));
        let leader = self.wait_leader(None).await?;
        self.say(format!("node {leader} was elected leader"));
        self.changes.push("init {1,2,3}".into());
        Ok(())
    }

    async fn first_writes(&mut self) -> DemoResult {
        self.header("write through every node (followers forward to the leader)");
        for (i, id) in [1u64, 2, 3, 1, 2, 3].iter().enumerate() {
            let key = format!("greeting/{i}");
            let answer = self
                .client(*id)
                .put(&kv_path(&key), &json!({ "value": format!("hello from node {id}") }))
                .await
                .map_err(err("put"))?;
            self.say(format!("PUT {key} via node {id} -> applied at index {}", answer["index"]));
        }
        let read = self.client(3).get(&kv_path("greeting/0")).await.map_err(err("get"))?;
        self.say(format!("GET greeting/0 via node 3 (linearizable) -> {} (index {})", read["value"], read["index"]));
        Ok(())
    }

    async fn add_learners(&mut self) -> DemoResult {
        self.header("add nodes 4 and 5 as learners (blocking: wait until they caught up)");
        for id in [4u64, 5] {
            let (raft, api) = (self.nodes[&id].raft.clone(), self.nodes[&id].api.clone());
            let answer = add_learner(self.client(1), id, &raft, &api, true, true).await.map_err(err("add learner"))?;
            self.say(format!("learner {id} caught up -> {}", membership_line(&answer["membership"])));
            self.changes.push(format!("add learner {id}"));
        }
        Ok(())
    }

    async fn replace_voters(&mut self) -> DemoResult {
        self.header("change the voters {1,2,3} -> {3,4,5} (retain: 1 and 2 stay as learners)");
        self.say("{1,2,3} and {3,4,5} share one voter only, so the change goes through a joint config");
        let (seen, answer) = self
            .watching_membership([3, 4], || async {
                self.client(3)
                    .post(
                        "/v1/cluster/membership",
                        &json!({ "change": { "replace_voters": [3, 4, 5] }, "retain": true }),
                    )
                    .await
            })
            .await;
        let answer = answer.map_err(err("change membership"))?;
        for line in &seen {
            self.say(format!("observed: {line}"));
        }
        if !seen.iter().any(|l| l.starts_with("joint")) {
            self.say("(the joint step [{1,2,3},{3,4,5}] committed between two polls)");
        }
        self.say(format!("done -> {}", membership_line(&answer["membership"])));
        let leader = self.wait_leader(Some(&[3, 4, 5])).await?;
        self.say(format!("leader is now node {leader}"));
        self.changes.push("{1,2,3} -> [{1,2,3},{3,4,5}] -> {3,4,5}".into());
        Ok(())
    }

    /// Runs `op` while polling the membership seen by `watch` nodes; returns
    /// the distinct memberships observed, in order.
    async fn watching_membership<F, Fut, T>(&self, watch: [u64; 2], op: F) -> (Vec<String>, T)
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = T>,
    {
        let stop = Arc::new(AtomicBool::new(false));
        let clients: Vec<Client> = watch.iter().map(|id| self.client(*id).clone()).collect();
        let poller = {
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut seen: Vec<String> = Vec::new();
                loop {
                    let done = stop.load(Ordering::Relaxed);
                    for client in &clients {
                        if let Ok(status) = client.status().await {
                            let m = &status["membership"];
                            let line = format!(
                                "{} [{}]",
                                if m["configs"].as_array().is_some_and(|c| c.len() > 1) { "joint" } else { "uniform" },
                                configs_text(m)
                            );
                            if seen.last() != Some(&line) && !seen.contains(&line) {
                                seen.push(line);
                            }
                        }
                    }
                    if done {
                        return seen;
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
        };
        let result = op().await;
        stop.store(true, Ordering::Relaxed);
        let seen = poller.await.unwrap_or_default();
        (seen, result)
    }

    async fn concurrent_changes(&mut self) -> DemoResult {
        self.header("two concurrent membership changes: add voter 1 || remove voter 1");
        self.say("each call is legal alone; the leader runs them one after the other:");
        self.say("  a joint config records how it is left, and its exit goes before the next change,");
        self.say("  so each call ends in the config it asked for and no joint config is left behind");
        let leader = self.wait_leader(Some(&[3, 4, 5])).await?;
        let add_client = self.client(leader).clone();
        let remove_client = self.client(leader).clone();
        let add = tokio::spawn(async move {
            add_client.post("/v1/cluster/membership", &json!({ "change": { "add_voters": [1] }, "retain": true })).await
        });
        tokio::time::sleep(Duration::from_millis(1)).await;
        let remove = remove_client
            .post("/v1/cluster/membership", &json!({ "change": { "remove_voters": [1] }, "retain": true }))
            .await;
        let add = add.await.map_err(|e| e.to_string())?;
        self.say(format!("add voter 1 -> {}", outcome(&add)));
        self.say(format!("remove voter 1 -> {}", outcome(&remove)));
        let status = self.leader_status().await?;
        let m = status["membership"].clone();
        self.say(format!("membership in force: {} (the last call's)", membership_line(&m)));
        if m["configs"].as_array().is_some_and(|c| c.len() > 1) {
            return Err(format!("a joint config was left behind: {}", membership_line(&m)));
        }
        let m = self.change(&json!({ "replace_voters": [3, 4, 5] }), true).await?;
        self.say(format!("voters back to {{3,4,5}} -> {}", membership_line(&m)));
        self.changes.push("concurrent add/remove of voter 1, each to its own target".into());
        Ok(())
    }

    async fn explicit_joint(&mut self) -> DemoResult {
        self.header("explicit joint consensus: prepare / commit, then prepare / abort");
        let body =
            json!({ "expect_voters": [3, 4, 5], "expect_learners": [1, 2], "voters": [2, 3, 4], "learners": [1] });
        let prepared = self.post_retry("/v1/cluster/membership/prepare", &body).await?;
        let prepare_index = prepared["prepare_index"].as_u64().unwrap_or(0);
        self.say(format!("prepare {{3,4,5}} -> {{2,3,4}}: joint config appended at index {prepare_index}"));
        let again = self.post_retry("/v1/cluster/membership/prepare", &body).await?;
        self.say(format!("prepare again (idempotent) -> same index {}", again["prepare_index"]));
        let stale_body = json!({ "expect_voters": [1, 2, 3], "expect_learners": [], "voters": [1, 2], "learners": [] });
        let stale = self.client(3).post("/v1/cluster/membership/prepare", &stale_body).await;
        match stale {
            Err(e) => self.say(format!("a prepare with a stale expectation is refused: {e}")),
            Ok(v) => self.say(format!("unexpected: stale prepare accepted: {v}")),
        }
        self.say(format!("membership: {}", membership_line(&self.leader_status().await?["membership"])));
        let commit_body = json!({ "prepare_index": prepare_index });
        let committed = self.post_retry("/v1/cluster/membership/commit", &commit_body).await?;
        self.say(format!("commit {prepare_index} -> new uniform config at index {}", committed["commit_index"]));
        let again = self.post_retry("/v1/cluster/membership/commit", &commit_body).await?;
        self.say(format!("commit again (idempotent) -> same index {}", again["commit_index"]));
        self.say(format!("membership: {}", membership_line(&self.leader_status().await?["membership"])));
        self.changes.push("prepare {3,4,5} -> {2,3,4}, commit".into());

        let body = json!({ "expect_voters": [2, 3, 4], "expect_learners": [1], "voters": [1, 2, 3], "learners": [] });
        let prepared = self.post_retry("/v1/cluster/membership/prepare", &body).await?;
        self.say(format!("prepare {{2,3,4}} -> {{1,2,3}}: joint config at index {}", prepared["prepare_index"]));
        let abort_body = json!({ "prepare_index": prepared["prepare_index"] });
        let aborted = self.post_retry("/v1/cluster/membership/abort", &abort_body).await?;
        self.say(format!(
            "abort prepare {} -> back to the old config at index {}",
            prepared["prepare_index"], aborted["abort_index"]
        ));
        let again = self.post_retry("/v1/cluster/membership/abort", &abort_body).await?;
        self.say(format!(
            "abort again (a retry, idempotent: it names its prepare, so it never aborts a later one) -> same index {}",
            again["abort_index"]
        ));
        self.say(format!("membership: {}", membership_line(&self.leader_status().await?["membership"])));
        self.changes.push("prepare {2,3,4} -> {1,2,3}, abort".into());
        Ok(())
    }

    async fn remove_leader(&mut self) -> DemoResult {
        self.header("remove the leader from the voters");
        let leader = self.wait_leader(None).await?;
        self.say(format!("node {leader} leads; removing it (retained as a learner)"));
        let m = self.change(&json!({ "remove_voters": [leader] }), true).await?;
        self.say(format!("-> {}", membership_line(&m)));
        let next = self.wait_leader(None).await?;
        self.say(format!("node {leader} stepped down; node {next} leads now"));
        self.changes.push(format!("remove leader {leader}"));
        self.say("grow back to five voters: node 5 rejoins as a learner with a readiness rule (at most 100");
        self.say("entries behind for 300 ms); the leader promotes it by itself; then replace_voters [1,2,3,4,5]");
        let (raft, api) = (self.nodes[&5].raft.clone(), self.nodes[&5].api.clone());
        let rule = PromoteArgs { promote_when_ready: true, max_lag: Some(100), hold_ms: 300 };
        let m = add_learner_promoted(self.client(next), 5, &raft, &api, rule, true)
            .await
            .map_err(err("add learner 5, promote when ready"))?;
        self.say(format!("promoted by the leader -> {}", membership_line(&m["membership"])));
        let m = self.change(&json!({ "replace_voters": [1, 2, 3, 4, 5] }), false).await?;
        self.say(format!("-> {}", membership_line(&m)));
        self.changes.push("add learner 5 promoted when ready, replace voters -> {1,2,3,4,5}".into());
        Ok(())
    }

    async fn failover_mid_change(&mut self) -> DemoResult {
        self.header("a leader change in the middle of a change, and a retry with its change id");
        let leader = self.wait_leader(None).await?;
        let retiring = (1..=5).rev().find(|id| *id != leader).unwrap_or(1);
        let change_id = format!("retire-{retiring}");
        self.say(format!(
            "remove voter {retiring} (retain) with change_id {change_id:?}, and at once move the leadership"
        ));
        let body = json!({ "change": { "remove_voters": [retiring] }, "retain": true, "change_id": change_id });
        let client = self.client(leader).clone();
        let first = tokio::spawn({
            let body = body.clone();
            async move { client.post("/v1/cluster/membership", &body).await }
        });
        tokio::time::sleep(Duration::from_millis(2)).await;
        let moved = self.client(leader).post("/v1/cluster/leader/transfer", &json!({})).await;
        match moved {
            Ok(v) => self.say(format!("leadership moved from node {leader} to node {}", v["leader"])),
            Err(e) => self.say(format!("leadership transfer: {e}")),
        }
        let first = first.await.map_err(|e| e.to_string())?;
        self.say(format!("the first call's answer: {}", outcome(&first)));
        self.say("the caller cannot be sure what happened, so it retries with the same change id, on another node:");
        let other = self.wait_leader(None).await?;
        let other = (1..=5).find(|id| *id != other && *id != retiring).unwrap_or(other);
        let retried = self.client(other).post("/v1/cluster/membership", &body).await;
        self.say(format!("the retry's answer: {} (the first outcome; nothing is removed twice)", outcome(&retried)));
        let path = format!("/v1/cluster/changes/{change_id}");
        let status = self.client(other).get(&path).await.map_err(err("change status"))?;
        self.say(format!("GET {path} -> {}", status["status"]));
        let back = json!({ "change": { "replace_voters": [1, 2, 3, 4, 5] }, "force": true });
        let m = self.client(other).post("/v1/cluster/membership", &back).await.map_err(err("restore the voters"))?;
        self.say(format!("voters back to {{1,2,3,4,5}} -> {}", membership_line(&m["membership"])));
        self.changes.push(format!("remove voter {retiring} across a leader change, retried with its change id"));
        Ok(())
    }

    async fn kill_and_restart(&mut self) -> DemoResult {
        self.header("kill -9 the leader, then restart it on its data dir");
        let leader = self.wait_leader(None).await?;
        let killed_at = Instant::now();
        self.nodes.get_mut(&leader).expect("member").kill9().await;
        self.say(format!("killed node {leader} (SIGKILL: nothing flushed on the way out)"));
        let others: Vec<u64> = (1..=5).filter(|id| *id != leader).collect();
        let next = self.wait_leader(Some(&others)).await?;
        self.say(format!("node {next} elected after {} ms", killed_at.elapsed().as_millis()));
        let answer = self
            .client(next)
            .put(&kv_path("written/while-down"), &json!({ "value": format!("node {leader} was down") }))
            .await
            .map_err(err("put"))?;
        self.say(format!("writes go on without node {leader} (index {})", answer["index"]));
        let node = self.nodes.get_mut(&leader).expect("member");
        node.spawn().map_err(|e| format!("cannot restart node {leader}: {e}"))?;
        node.wait_ready(Duration::from_secs(10)).await?;
        self.say(format!("restarted node {leader} with the same command line; no API call needed to rejoin"));
        let target = self.leader_status().await?["committed"].as_u64().unwrap_or(0);
        let status = self.wait_applied(leader, target).await?;
        self.say(format!("node {leader} is back as {} and applied up to index {}", status["role"], status["applied"]));
        self.changes.push(format!("kill -9 and restart node {leader}"));
        Ok(())
    }

    async fn verify(&mut self, acked: &BTreeMap<String, String>, failed: BTreeMap<String, u64>) -> DemoResult {
        self.header("check every acknowledged write on every node");
        let target = self.leader_status().await?["committed"].as_u64().unwrap_or(0);
        let mut checked = 0;
        for id in 1..=5u64 {
            self.wait_applied(id, target).await?;
            for (key, value) in acked {
                let found = self.client(id).wait_local_value(key, value, Duration::from_secs(5)).await;
                found.map_err(|e| format!("node {id} {e}"))?;
                checked += 1;
            }
            let lin = self.client(id).get(&kv_path("greeting/0")).await.map_err(err("linearizable read"))?;
            self.say(format!(
                "node {id}: all {} acknowledged writes present (local reads); linearizable read ok ({})",
                acked.len(),
                lin["value"]
            ));
        }
        let status = self.leader_status().await?;
        println!();
        println!("summary");
        println!("  membership changes:");
        for change in &self.changes {
            println!("    - {change}");
        }
        println!("  final membership: {}", membership_line(&status["membership"]));
        println!("  leader: node {}, term {}", status["id"], status["term"]);
        let total_failed: u64 = failed.values().sum();
        let reasons: Vec<String> = failed.iter().map(|(code, n)| format!("{n} {code}")).collect();
        println!("  background writes: {} acknowledged, {total_failed} not acknowledged", acked.len());
        if total_failed > 0 {
            println!(
                "    ({}: elections, a removed leader and a killed node; `timeout` means the outcome is unknown)",
                reasons.join(", ")
            );
        }
        println!("  reads checked: {checked} (every acknowledged write on every node): none lost");
        println!("  elapsed: {:.1}s", self.started.elapsed().as_secs_f64());
        Ok(())
    }

    async fn stop_all(&mut self) {
        let mut codes = Vec::new();
        for node in self.nodes.values_mut() {
            if node.is_running() {
                codes.push((node.id, node.terminate().await));
            }
        }
        let clean = codes.iter().all(|(_, code)| *code == Some(0));
        println!(
            "stopped all nodes with SIGTERM ({}); temp dir removed",
            if clean { "all exited 0" } else { "some did not exit cleanly" }
        );
    }

    // ------------------------------------------------------------ helpers

    async fn change(&self, change: &Value, retain: bool) -> DemoResult<Value> {
        let body = json!({ "change": change, "retain": retain });
        let answer = self.post_retry("/v1/cluster/membership", &body).await?;
        Ok(answer["membership"].clone())
    }

    /// POSTs through the first reachable voter, retrying `conflict` (not ready
    /// yet) and leader changes for a few seconds.
    async fn post_retry(&self, path: &str, body: &Value) -> DemoResult<Value> {
        let deadline = Instant::now() + Duration::from_secs(8);
        loop {
            let leader = self.wait_leader(None).await?;
            match self.client(leader).post(path, body).await {
                Ok(answer) => return Ok(answer),
                Err(e) if Instant::now() < deadline && retryable(&e) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(format!("POST {path}: {e}")),
            }
        }
    }

    async fn leader_status(&self) -> DemoResult<Value> {
        let leader = self.wait_leader(None).await?;
        self.client(leader).status().await.map_err(err("status"))
    }

    /// Waits until a running node (among `among`, if given) reports itself leader.
    async fn wait_leader(&self, among: Option<&[u64]>) -> DemoResult<u64> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut best: Option<(u64, u64)> = None;
            for node in self.nodes.values().filter(|n| n.is_running()) {
                if among.is_some_and(|ids| !ids.contains(&node.id)) {
                    continue;
                }
                if let Ok(status) = node.client.status().await {
                    let term = status["term"].as_u64().unwrap_or(0);
                    if status["role"] == "leader" && best.is_none_or(|(t, _)| term > t) {
                        best = Some((term, node.id));
                    }
                }
            }
            if let Some((_, id)) = best {
                return Ok(id);
            }
            if Instant::now() > deadline {
                return Err("no leader elected within 10 s".into());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn wait_applied(&self, id: u64, index: u64) -> DemoResult<Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let status = self.client(id).status().await.map_err(err("status"))?;
            if status["applied"].as_u64().unwrap_or(0) >= index {
                return Ok(status);
            }
            if Instant::now() > deadline {
                return Err(format!("node {id} did not apply index {index} within 10 s: {status}"));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

fn retryable(e: &ClientError) -> bool {
    matches!(e.code(), Some("conflict" | "no_leader" | "timeout")) && !e.to_string().contains("not as expected")
}

fn err(what: &'static str) -> impl Fn(ClientError) -> String {
    move |e| format!("{what}: {e}")
}

fn outcome(result: &Result<Value, ClientError>) -> String {
    match result {
        Ok(v) => format!("ok, returned {}", membership_line(&v["membership"])),
        Err(e) => format!("error {e}"),
    }
}

fn configs_text(m: &Value) -> String {
    m["configs"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    let ids: Vec<String> =
                        c.as_array().map(|a| a.iter().map(|v| v.to_string()).collect()).unwrap_or_default();
                    format!("{{{}}}", ids.join(","))
                })
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}
