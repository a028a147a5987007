//! Real `ferraft serve` processes on loopback, driven through the HTTP API.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferraft_kv::client::{kv_path, Client, ClientError};
use ferraft_kv::harness::{start_nodes, LocalNode};
use serde_json::{json, Value};
use tempfile::TempDir;

const EXE: &str = env!("CARGO_BIN_EXE_ferraft");

struct Cluster {
    nodes: BTreeMap<u64, LocalNode>,
    _dir: TempDir,
}

impl Cluster {
    /// Starts `n` uninitialized nodes.
    async fn start(n: u64) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let nodes = start_nodes(Path::new(EXE), n, dir.path()).await.unwrap();
        Self { nodes, _dir: dir }
    }

    /// Starts `n` nodes and initializes the first three (or all, if fewer) as voters.
    async fn start_initialized(n: u64) -> Self {
        let cluster = Self::start(n).await;
        let voters: BTreeMap<String, Value> =
            (1..=n.min(3)).map(|id| (id.to_string(), cluster.nodes[&id].spec())).collect();
        cluster.client(1).post("/v1/cluster/init", &json!({ "nodes": voters })).await.unwrap();
        cluster.leader(Duration::from_secs(10)).await;
        for id in 1..=n.min(3) {
            cluster.nodes[&id].wait_initialized_with_leader(Duration::from_secs(10)).await.unwrap();
        }
        cluster
    }

    fn client(&self, id: u64) -> &Client {
        &self.nodes[&id].client
    }

    fn clients(&self) -> Vec<Client> {
        self.nodes.values().map(|n| n.client.clone()).collect()
    }

    /// The running node that leads (highest term), waiting up to `timeout`.
    async fn leader(&self, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            let mut best: Option<(u64, u64)> = None;
            for node in self.nodes.values().filter(|n| n.is_running()) {
                if let Ok(s) = node.client.status().await {
                    let term = s["term"].as_u64().unwrap();
                    if s["role"] == "leader" && best.is_none_or(|(t, _)| term > t) {
                        best = Some((term, node.id));
                    }
                }
            }
            if let Some((_, id)) = best {
                return id;
            }
            assert!(Instant::now() < deadline, "no leader within {timeout:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn wait_applied(&self, id: u64, index: u64) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let status = self.client(id).status().await.unwrap();
            if status["applied"].as_u64().unwrap() >= index {
                return;
            }
            assert!(Instant::now() < deadline, "node {id} did not apply {index}: {status}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Every acknowledged write is in every running node's state machine.
    async fn assert_all_present(&self, acked: &BTreeMap<String, String>) {
        let leader = self.leader(Duration::from_secs(10)).await;
        let committed = self.client(leader).status().await.unwrap()["committed"].as_u64().unwrap();
        for node in self.nodes.values().filter(|n| n.is_running()) {
            self.wait_applied(node.id, committed).await;
            for (key, value) in acked {
                let found = node.client.wait_local_value(key, value, Duration::from_secs(5)).await;
                found.unwrap_or_else(|e| panic!("node {} {e}", node.id));
            }
        }
    }
}

/// Clients writing unique keys through every node until stopped.
struct Load {
    acked: Arc<Mutex<BTreeMap<String, String>>>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(clients: Vec<Client>, writers: u64) -> Self {
        let acked = Arc::new(Mutex::new(BTreeMap::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let seq = Arc::new(AtomicU64::new(0));
        let tasks = (0..writers)
            .map(|w| {
                let (acked, stop, seq, clients) = (acked.clone(), stop.clone(), seq.clone(), clients.clone());
                tokio::spawn(async move {
                    let mut turn = w as usize;
                    while !stop.load(Ordering::Relaxed) {
                        let n = seq.fetch_add(1, Ordering::Relaxed);
                        let (key, value) = (format!("load/{n:06}"), format!("v{n}"));
                        turn += 1;
                        let client = &clients[turn % clients.len()];
                        if client.put(&kv_path(&key), &json!({ "value": value })).await.is_ok() {
                            acked.lock().unwrap().insert(key, value);
                        } else {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                })
            })
            .collect();
        Self { acked, stop, tasks }
    }

    fn count(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    async fn stop(self) -> BTreeMap<String, String> {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.unwrap();
        }
        let acked = self.acked.lock().unwrap().clone();
        acked
    }
}

fn code(result: Result<Value, ClientError>) -> (u16, String) {
    match result {
        Err(ClientError::Api { status, code, .. }) => (status, code),
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn three_node_cluster_serves_writes_and_reads_through_any_node() {
    let cluster = Cluster::start_initialized(3).await;
    let put = cluster.client(2).put(&kv_path("a/b c"), &json!({ "value": "1" })).await.unwrap();
    let index = put["index"].as_u64().unwrap();
    for consistency in ["linearizable", "lease", "local"] {
        cluster.wait_applied(3, index).await;
        let read = cluster.client(3).get(&format!("{}?consistency={consistency}", kv_path("a/b c"))).await.unwrap();
        assert_eq!(read, json!({ "value": "1", "index": index }), "{consistency}");
    }
    let cas_path = format!("{}/cas", kv_path("a/b c"));
    let cas = cluster.client(1).post(&cas_path, &json!({ "expect": "0", "value": "2" })).await.unwrap();
    assert_eq!((cas["succeeded"].clone(), cas["current"].clone()), (json!(false), json!("1")));
    let cas = cluster.client(3).post(&cas_path, &json!({ "expect": "1", "value": null })).await.unwrap();
    assert_eq!(cas["succeeded"], true);
    let deleted = cluster.client(2).delete(&kv_path("a/b c")).await.unwrap();
    assert_eq!(deleted["deleted"], false);
    let status = cluster.client(cluster.leader(Duration::from_secs(5)).await).status().await.unwrap();
    assert_eq!(status["membership"]["voters"], json!([1, 2, 3]));
    assert_eq!(status["replication"].as_object().unwrap().len(), 2);
    let metrics = reqwest::get(format!("http://{}/metrics", cluster.nodes[&1].api)).await.unwrap();
    assert!(metrics.text().await.unwrap().contains("ferraft_committed_index"));
}

#[tokio::test(flavor = "multi_thread")]
async fn killing_the_leader_under_load_loses_no_acknowledged_write() {
    let mut cluster = Cluster::start_initialized(3).await;
    let load = Load::start(cluster.clients(), 3);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let old = cluster.leader(Duration::from_secs(5)).await;
    cluster.nodes.get_mut(&old).unwrap().kill9().await;
    let killed = Instant::now();
    let new = cluster.leader(Duration::from_secs(5)).await;
    assert_ne!(new, old);
    let elected_after = killed.elapsed();
    let before = load.count();
    let deadline = Instant::now() + Duration::from_secs(10);
    while load.count() < before + 10 {
        assert!(Instant::now() < deadline, "writes do not go on under the new leader");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let acked = load.stop().await;
    cluster.assert_all_present(&acked).await;
    eprintln!("new leader {new} after {elapsed:?}; {} writes acknowledged", acked.len(), elapsed = elected_after);
    // the killed node restarts on its data dir and catches up with no call
    cluster.nodes.get_mut(&old).unwrap().spawn().unwrap();
    cluster.nodes[&old].wait_ready(Duration::from_secs(10)).await.unwrap();
    cluster.assert_all_present(&acked).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_node_rejoins_with_no_call() {
    let mut cluster = Cluster::start_initialized(3).await;
    let leader = cluster.leader(Duration::from_secs(5)).await;
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    cluster.client(leader).put(&kv_path("before"), &json!({ "value": "1" })).await.unwrap();
    assert_eq!(cluster.nodes.get_mut(&follower).unwrap().terminate().await, Some(0), "SIGTERM exits 0");
    let put = cluster.client(leader).put(&kv_path("while-down"), &json!({ "value": "2" })).await.unwrap();
    cluster.nodes.get_mut(&follower).unwrap().spawn().unwrap();
    cluster.nodes[&follower].wait_ready(Duration::from_secs(10)).await.unwrap();
    cluster.wait_applied(follower, put["index"].as_u64().unwrap()).await;
    let read = cluster.client(follower).get(&format!("{}?consistency=local", kv_path("while-down"))).await.unwrap();
    assert_eq!(read["value"], "2");
    let status = cluster.client(follower).status().await.unwrap();
    assert_eq!(status["role"], "follower");
}

#[tokio::test(flavor = "multi_thread")]
async fn replacing_all_voters_under_load_loses_no_acknowledged_write() {
    let cluster = Cluster::start_initialized(5).await;
    let load = Load::start(cluster.clients(), 3);
    for id in [4u64, 5] {
        let node = &cluster.nodes[&id];
        let body = json!({ "id": id, "raft": node.raft, "api": node.api, "blocking": true });
        cluster.client(2).post("/v1/cluster/learners", &body).await.unwrap();
    }
    let change = json!({ "change": { "replace_voters": [3, 4, 5] }, "retain": false });
    let answer = cluster.client(3).post("/v1/cluster/membership", &change).await.unwrap();
    assert_eq!(answer["membership"]["configs"], json!([[3, 4, 5]]));
    assert_eq!(answer["membership"]["learners"], json!([]));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let acked = load.stop().await;
    let leader = cluster.leader(Duration::from_secs(5)).await;
    assert!([3, 4, 5].contains(&leader));
    let mut voters = Cluster { nodes: BTreeMap::new(), _dir: tempfile::tempdir().unwrap() };
    let mut all = cluster;
    for id in [3u64, 4, 5] {
        voters.nodes.insert(id, all.nodes.remove(&id).unwrap());
    }
    voters.assert_all_present(&acked).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_error_code_comes_from_a_real_request() {
    let mut cluster = Cluster::start(4).await;
    let (c1, c4) = (cluster.client(1).clone(), cluster.client(4).clone());
    // not_initialized
    assert_eq!(code(c1.put(&kv_path("k"), &json!({ "value": "v" })).await), (503, "not_initialized".into()));
    let voters: BTreeMap<String, Value> = (1..=3).map(|id| (id.to_string(), cluster.nodes[&id].spec())).collect();
    c1.post("/v1/cluster/init", &json!({ "nodes": voters })).await.unwrap();
    c1.post("/v1/cluster/init", &json!({ "nodes": voters })).await.expect("same voters: a no-op");
    let leader = cluster.leader(Duration::from_secs(10)).await;
    // conflict
    assert_eq!(code(c1.post("/v1/cluster/init", &json!({})).await), (409, "conflict".into()));
    let stale = json!({ "expect_voters": [1, 2], "voters": [1] });
    assert_eq!(code(c1.post("/v1/cluster/membership/prepare", &stale).await), (409, "conflict".into()));
    let commit = json!({ "prepare_index": 999 });
    assert_eq!(code(c1.post("/v1/cluster/membership/commit", &commit).await), (409, "conflict".into()));
    // bad_request
    let big = "x".repeat(1024 * 1024 + 1);
    for result in [
        c1.put("/v1/kv/", &json!({ "value": "v" })).await,
        c1.put(&kv_path(&"k".repeat(4097)), &json!({ "value": "v" })).await,
        c1.put(&kv_path("k"), &json!({ "value": big })).await,
        c1.put(&kv_path("k"), &json!({ "nothing": 1 })).await,
        c1.put(&kv_path("k"), &json!({ "value": 5 })).await,
        c1.get(&format!("{}?consistency=eventual", kv_path("k"))).await,
        c1.post("/v1/cluster/membership", &json!({ "change": { "add_voters": [4], "remove_voters": [1] } })).await,
    ] {
        assert_eq!(code(result), (400, "bad_request".into()));
    }
    // not_found
    assert_eq!(code(c1.get(&kv_path("absent")).await), (404, "not_found".into()));
    assert_eq!(code(c4.get(&kv_path("absent")).await), (503, "not_initialized".into()));
    // timeout, then no_leader: the leader alone cannot commit
    for id in (1..=3).filter(|id| *id != leader) {
        cluster.nodes.get_mut(&id).unwrap().kill9().await;
    }
    let alone = cluster.client(leader).clone();
    assert_eq!(code(alone.put(&kv_path("k"), &json!({ "value": "v" })).await), (504, "timeout".into()));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match alone.put(&kv_path("k"), &json!({ "value": "v" })).await {
            Err(ClientError::Api { status: 503, code, .. }) if code == "no_leader" => break,
            other => assert!(Instant::now() < deadline, "expected no_leader, got {other:?}"),
        }
    }
}

/// Runs the binary with `args` and its output once it exits; a process still
/// running after `limit` (one that accepted what it should refuse and went
/// on serving) is killed and the test fails rather than hangs.
fn exited_within(args: &[String], limit: Duration) -> std::process::Output {
    use std::process::Stdio;
    let mut child =
        std::process::Command::new(EXE).args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let deadline = std::time::Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!("{args:?} still running after {limit:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_refuses_bad_flags_a_port_in_use_and_an_unusable_data_dir_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_addr = taken.local_addr().unwrap().to_string();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a dir").unwrap();
    let free = || format!("127.0.0.1:{}", ferraft_kv::harness::free_port());
    let data = dir.path().join("d").display().to_string();
    let mut cases: Vec<Vec<String>> = vec![
        vec!["serve".into(), "--id".into(), "x".into()],
        vec!["serve".into(), "--id".into(), "1".into()],
        vec!["serve", "--id", "1", "--data-dir", &data, "--raft-listen", &taken_addr, "--api-listen", &free()]
            .into_iter()
            .map(String::from)
            .collect(),
        vec!["serve", "--id", "1", "--data-dir", &data, "--raft-listen", &free(), "--api-listen", &taken_addr]
            .into_iter()
            .map(String::from)
            .collect(),
        vec![
            "serve",
            "--id",
            "1",
            "--data-dir",
            &file.display().to_string(),
            "--raft-listen",
            &free(),
            "--api-listen",
            &free(),
        ]
        .into_iter()
        .map(String::from)
        .collect(),
    ];
    // id 0 means "no leader" in the metrics: no node may have it
    cases.push(
        ["serve", "--id", "0", "--data-dir", &data, "--raft-listen", &free(), "--api-listen", &free()]
            .into_iter()
            .map(String::from)
            .collect(),
    );
    // an advertised address peers could never dial: refused at start, not
    // recorded in a membership at the first `init` or `add-learner`
    for (flag, bad) in [("--raft-advertise", "no-port"), ("--api-advertise", "host:0")] {
        let mut args: Vec<String> = ["serve", "--id", "1", "--data-dir", &data, "--raft-listen", &free()]
            .into_iter()
            .map(String::from)
            .collect();
        args.extend(["--api-listen".into(), free(), flag.into(), bad.into()]);
        cases.push(args);
    }
    for args in cases {
        let out = exited_within(&args, Duration::from_secs(20));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: one line expected: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_learner_added_on_an_idle_cluster_catches_up() {
    let cluster = Cluster::start(3).await;
    cluster.client(1).post("/v1/cluster/init", &json!({})).await.unwrap();
    cluster.leader(Duration::from_secs(10)).await;
    let put = cluster.client(1).put(&kv_path("k"), &json!({ "value": "v" })).await.unwrap();
    // non-blocking: returns once the learner entry commits; the learner then catches up on its own
    let node = &cluster.nodes[&2];
    let body = json!({ "id": 2, "raft": node.raft, "api": node.api, "blocking": false });
    cluster.client(1).post("/v1/cluster/learners", &body).await.unwrap();
    cluster.wait_applied(2, put["index"].as_u64().unwrap()).await;
    // blocking, through a learner that forwards to the leader
    let node = &cluster.nodes[&3];
    let body = json!({ "id": 3, "raft": node.raft, "api": node.api, "blocking": true });
    let answer = cluster.client(2).post("/v1/cluster/learners", &body).await.unwrap();
    assert_eq!(answer["membership"]["learners"], json!([2, 3]));
    let read = cluster.client(3).get(&format!("{}?consistency=local", kv_path("k"))).await.unwrap();
    assert_eq!(read["value"], "v");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_restarts_from_its_snapshot() {
    let mut cluster = Cluster::start_initialized(3).await;
    let mut committed = 0;
    for i in 0..20 {
        let (path, body) = (kv_path(&format!("snap/{i}")), json!({ "value": i.to_string() }));
        // The write's own index: a status read right after may lag it by a metrics tick.
        committed = cluster.client(1).put(&path, &body).await.unwrap()["index"].as_u64().unwrap();
    }
    let leader = cluster.leader(Duration::from_secs(5)).await;
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    cluster.wait_applied(follower, committed).await;
    let built = cluster.client(follower).post("/v1/cluster/snapshot", &json!({})).await.unwrap();
    assert!(built["snapshot_index"].as_u64().unwrap() >= committed, "{built}");
    let status = cluster.client(follower).status().await.unwrap();
    assert_eq!(status["snapshot_index"], built["snapshot_index"]);
    assert_eq!(cluster.nodes.get_mut(&follower).unwrap().terminate().await, Some(0));
    cluster.nodes.get_mut(&follower).unwrap().spawn().unwrap();
    cluster.nodes[&follower].wait_ready(Duration::from_secs(10)).await.unwrap();
    // the status may lag the restored state by a metrics publish: wait for it, then
    // the snapshot must be the one built (not lost, not replaced by one from the leader)
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        let status = cluster.client(follower).status().await.unwrap();
        if !status["snapshot_index"].is_null() || Instant::now() >= deadline {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(status["snapshot_index"], built["snapshot_index"], "the snapshot survives a restart: {status}");
    for i in 0..20 {
        let read = cluster.client(follower).get(&format!("{}?consistency=local", kv_path(&format!("snap/{i}")))).await;
        assert_eq!(read.unwrap()["value"], i.to_string());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ctl_prints_tables_or_json_and_fails_with_one_line() {
    let cluster = Cluster::start_initialized(1).await;
    let endpoint = cluster.nodes[&1].api.clone();
    let ctl = |args: &[&str]| {
        let mut command = std::process::Command::new(EXE);
        command.args(["ctl", "--endpoint", &endpoint]).args(args);
        command.output().unwrap()
    };
    assert!(ctl(&["put", "k", "v"]).status.success());
    let got = ctl(&["--json", "get", "k"]);
    let got: Value = serde_json::from_slice(&got.stdout).unwrap();
    assert_eq!(got["value"], "v");
    let status = ctl(&["status"]);
    assert!(String::from_utf8_lossy(&status.stdout).contains("leader"));
    let members = ctl(&["members"]);
    assert!(String::from_utf8_lossy(&members.stdout).contains("voter, leader"));
    let missing = ctl(&["get", "absent"]);
    assert_eq!(missing.status.code(), Some(3), "not_found exits 3");
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("not_found"), "{stderr}");
}

#[test]
fn the_demo_walks_through_and_exits_0() {
    let started = Instant::now();
    let out = std::process::Command::new(EXE).arg("demo").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("none lost"), "{stdout}");
    assert!(stdout.contains("joint"), "{stdout}");
    assert!(started.elapsed() < Duration::from_secs(30), "the demo took {:?}", started.elapsed());
}

/// Writers putting unique keys through `clients` until stopped; every 200
/// answer is kept with the index it named.
fn put_through(clients: Vec<Client>, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<Vec<(String, u64)>> {
    tokio::spawn(async move {
        let seq = Arc::new(AtomicU64::new(0));
        let writers = clients.into_iter().map(|client| {
            let (stop, seq) = (stop.clone(), seq.clone());
            tokio::spawn(async move {
                let mut acked = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("fwd/{:06}", seq.fetch_add(1, Ordering::Relaxed));
                    match client.put(&kv_path(&key), &json!({ "value": key })).await {
                        Ok(answer) => acked.push((key, answer["index"].as_u64().unwrap())),
                        Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                    }
                }
                acked
            })
        });
        let mut acked = Vec::new();
        for writer in writers.collect::<Vec<_>>() {
            acked.extend(writer.await.unwrap());
        }
        acked
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn puts_through_followers_while_the_leader_is_killed_are_all_present_at_the_index_answered() {
    let mut cluster = Cluster::start_initialized(3).await;
    let old = cluster.leader(Duration::from_secs(5)).await;
    let followers: Vec<Client> =
        cluster.nodes.values().filter(|n| n.id != old).flat_map(|n| [n.client.clone(), n.client.clone()]).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let writers = put_through(followers, stop.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster.nodes.get_mut(&old).unwrap().kill9().await;
    let new = cluster.leader(Duration::from_secs(10)).await;
    let committed = cluster.client(new).status().await.unwrap()["committed"].as_u64().unwrap();
    // writes go on under the new leader before the writers stop
    cluster.wait_applied(new, committed + 20).await;
    stop.store(true, Ordering::Relaxed);
    let acked = writers.await.unwrap();
    let last = acked.iter().map(|(_, index)| *index).max().unwrap();
    for node in cluster.nodes.values().filter(|n| n.is_running()) {
        cluster.wait_applied(node.id, last).await;
        for (key, index) in &acked {
            let read = node.client.get(&format!("{}?consistency=local", kv_path(key))).await;
            let read = read.unwrap_or_else(|e| panic!("node {}: acknowledged {key} missing: {e}", node.id));
            assert_eq!(read, json!({ "value": key, "index": index }), "node {}: answered at its index", node.id);
        }
    }
    eprintln!("{} puts acknowledged through followers across the leader's death", acked.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_follower_cut_off_from_the_cluster_answers_reads_with_an_error_not_stale_data() {
    let cluster = Cluster::start_initialized(3).await;
    let leader = cluster.leader(Duration::from_secs(5)).await;
    let follower = *cluster.nodes.keys().find(|id| **id != leader).unwrap();
    let other = *cluster.nodes.keys().find(|id| **id != leader && **id != follower).unwrap();
    let put = cluster.client(leader).put(&kv_path("k"), &json!({ "value": "old" })).await.unwrap();
    cluster.wait_applied(follower, put["index"].as_u64().unwrap()).await;
    // the follower misses a write, then the rest of the cluster goes away
    cluster.nodes[&follower].pause().await.unwrap();
    cluster.client(leader).put(&kv_path("k"), &json!({ "value": "new" })).await.unwrap();
    cluster.nodes[&leader].pause().await.unwrap();
    cluster.nodes[&other].pause().await.unwrap();
    cluster.nodes[&follower].resume();
    let local = cluster.client(follower).get(&format!("{}?consistency=local", kv_path("k"))).await.unwrap();
    assert_eq!(local["value"], "old", "the follower's own state is stale");
    for consistency in ["linearizable", "lease"] {
        let read = cluster.client(follower).get(&format!("{}?consistency={consistency}", kv_path("k"))).await;
        let (status, code) = code(read);
        assert!(
            (status, code.as_str()) == (503, "no_leader") || (status, code.as_str()) == (504, "timeout"),
            "{consistency}: {status} {code}"
        );
    }
    cluster.nodes[&leader].resume();
    cluster.nodes[&other].resume();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match cluster.client(follower).get(&kv_path("k")).await {
            Ok(read) if read["value"] == "new" => break,
            Ok(read) => panic!("a linearizable read answered stale data: {read}"),
            Err(_) => {}
        }
        assert!(Instant::now() < deadline, "the follower never served the read once the cluster came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The message of a refused request.
fn message(result: Result<Value, ClientError>) -> String {
    match result {
        Err(ClientError::Api { status: 409, body, .. }) => body["error"]["message"].as_str().unwrap().to_owned(),
        other => panic!("expected a conflict, got {other:?}"),
    }
}

/// `prepare` checks what the caller expected, then that the new voters are
/// members, and only then that they are caught up: each refusal (409) names
/// its real reason. Before, a stale expectation or a node that is no member
/// was answered "learner 9 is not ready to vote".
#[tokio::test(flavor = "multi_thread")]
async fn a_prepare_names_a_stale_expectation_or_a_non_member_before_readiness() {
    let cluster = Cluster::start_initialized(3).await;
    let leader = cluster.client(cluster.leader(Duration::from_secs(10)).await).clone();
    let before = leader.status().await.unwrap()["membership"]["log_index"].clone();
    let stale = json!({ "expect_voters": [1, 2], "expect_learners": [], "voters": [1, 2, 9], "learners": [] });
    let said = message(leader.post("/v1/cluster/membership/prepare", &stale).await);
    assert!(said.contains("not as expected"), "{said}");
    let stranger = json!({ "expect_voters": [1, 2, 3], "expect_learners": [], "voters": [1, 2, 9], "learners": [] });
    let said = message(leader.post("/v1/cluster/membership/prepare", &stranger).await);
    assert!(said.contains("node 9 is not a learner"), "{said}");
    assert!(!said.contains("ready"), "{said}");
    assert_eq!(leader.status().await.unwrap()["membership"]["log_index"], before, "nothing proposed");
}
