//! The HTTP API as operators and scripts meet it, through real `ferraft
//! serve` processes: keys kept byte for byte, 404/405, health and readiness,
//! metrics, logs, listing, and the API document kept honest.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use ferraft_kv::error::Code;
use ferraft_kv::harness::LocalNode;
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const EXE: &str = env!("CARGO_BIN_EXE_ferraft");

/// Running nodes, the first three (or fewer) initialized as voters if asked.
struct Nodes {
    nodes: BTreeMap<u64, LocalNode>,
    dir: TempDir,
}

impl Nodes {
    async fn start(n: u64, init: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut nodes = BTreeMap::new();
        for id in 1..=n {
            let mut node = LocalNode::new(Path::new(EXE), id, dir.path());
            node.spawn().unwrap();
            nodes.insert(id, node);
        }
        for node in nodes.values() {
            node.wait_ready(Duration::from_secs(10)).await.unwrap();
        }
        let started = Self { nodes, dir };
        if init {
            let voters: BTreeMap<String, Value> =
                (1..=n.min(3)).map(|id| (id.to_string(), started.nodes[&id].spec())).collect();
            started.nodes[&1].client.post("/v1/cluster/init", &json!({ "nodes": voters })).await.unwrap();
            for id in 1..=n.min(3) {
                started.nodes[&id].wait_initialized_with_leader(Duration::from_secs(10)).await.unwrap();
            }
        }
        started
    }

    fn api(&self, id: u64) -> &str {
        &self.nodes[&id].api
    }

    /// The leader as node `id` sees it, once it knows one.
    async fn leader_seen_by(&self, id: u64) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let status = self.nodes[&id].client.status().await.unwrap();
            if let Some(leader) = status["leader"].as_u64() {
                return leader;
            }
            assert!(Instant::now() < deadline, "node {id} knows no leader: {status}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A node that is not the leader (so its requests are forwarded).
    async fn follower(&self) -> u64 {
        let leader = self.leader_seen_by(1).await;
        *self.nodes.keys().find(|id| **id != leader).unwrap()
    }
}

/// An answer read off the wire.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: BTreeMap<String, String>,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }

    fn code(&self) -> String {
        self.json()["error"]["code"].as_str().unwrap_or_else(|| panic!("no error code: {self:?}")).to_owned()
    }
}

/// Sends `method target` exactly as written (no client-side URL
/// normalisation) over a fresh connection.
async fn raw(api: &str, method: &str, target: &str, body: Option<Value>) -> Answer {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut stream = tokio::net::TcpStream::connect(api).await.unwrap();
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {api}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body.as_bytes()).await.unwrap();
    let mut bytes = Vec::new();
    tokio::time::timeout(Duration::from_secs(15), stream.read_to_end(&mut bytes)).await.unwrap().unwrap();
    let text = String::from_utf8(bytes).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    let mut lines = head.lines();
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect::<BTreeMap<String, String>>();
    let body = match headers.get("transfer-encoding").map(String::as_str) {
        Some("chunked") => dechunked(body),
        _ => body.to_owned(),
    };
    Answer { status, headers, body }
}

/// The body of a chunked answer (a transcoded snapshot download has no length).
fn dechunked(mut rest: &str) -> String {
    let mut body = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n").expect("a chunk size line");
        let size = usize::from_str_radix(size.trim(), 16).expect("a hex chunk size");
        if size == 0 {
            return body;
        }
        body.push_str(&after[..size]);
        rest = after[size..].strip_prefix("\r\n").expect("a chunk ends with CRLF");
    }
}

async fn get(api: &str, target: &str) -> Answer {
    raw(api, "GET", target, None).await
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_are_kept_byte_for_byte_or_refused() {
    let nodes = Nodes::start(3, true).await;
    let follower = nodes.follower().await;
    let api = nodes.api(follower);
    // (target as sent, the key it names, encoded, the key a normalising hop would have made of it)
    let cases = [
        ("/v1/kv//etcd/style/key", "/etcd/style/key", "%2Fetcd%2Fstyle%2Fkey", "etcd%2Fstyle%2Fkey"),
        ("/v1/kv/a/../b", "a/../b", "a%2F..%2Fb", "b"),
        ("/v1/kv/x/./y", "x/./y", "x%2F.%2Fy", "x%2Fy"),
        ("/v1/kv//k", "/k", "%2Fk", "k"),
        ("/v1/kv/%2Fenc%2F..%2Fded", "/enc/../ded", "%2Fenc%2F..%2Fded", "ded"),
    ];
    for (i, (target, key, encoded, normalised)) in cases.iter().enumerate() {
        let put = raw(api, "PUT", target, Some(json!({ "value": format!("v{i}") }))).await;
        assert_eq!(put.status, 200, "{target}: {put:?}");
        let read = get(api, &format!("/v1/kv/{encoded}")).await;
        assert_eq!(read.json()["value"], format!("v{i}"), "{key}: {read:?}");
        let read = get(api, &format!("{target}?consistency=lease")).await;
        assert_eq!(read.json()["value"], format!("v{i}"), "{target} read back as sent: {read:?}");
        let normal = get(api, &format!("/v1/kv/{normalised}")).await;
        assert_eq!((normal.status, normal.code()), (404, "not_found".into()), "{normalised}");
    }
    // a key ending in "/cas" is sent with that slash encoded; the literal segment is the CAS endpoint
    let cas = raw(api, "POST", "/v1/kv/x%2Fcas/cas", Some(json!({ "expect": null, "value": "c" }))).await;
    assert_eq!(cas.json()["succeeded"], true, "{cas:?}");
    assert_eq!(get(api, "/v1/kv/x%2Fcas").await.json()["value"], "c");
    let listed = get(api, "/v1/kv").await.json();
    let keys: BTreeSet<&str> = listed["kvs"].as_array().unwrap().iter().map(|e| e["key"].as_str().unwrap()).collect();
    let expected: BTreeSet<&str> = cases.iter().map(|c| c.1).chain(["x/cas"]).collect();
    assert_eq!(keys, expected);
    let long = format!("/v1/kv/{}", "k".repeat(4097));
    for refused in ["/v1/kv/", "/v1/kv/..", "/v1/kv/.", "/v1/kv/%2E%2E", "/v1/kv/%FF%FE", "/v1/kv/%zz", &long] {
        let put = raw(api, "PUT", refused, Some(json!({ "value": "v" }))).await;
        assert_eq!((put.status, put.code()), (400, "bad_request".into()), "{refused}");
    }
}

/// A CAS names both `expect` and `value` (either may be `null`). Before, a
/// missing one was taken as `null`: `{"expect": "v"}` deleted the key and
/// `{"value": "x"}` wrote it only if absent, both answered 200.
#[tokio::test(flavor = "multi_thread")]
async fn a_cas_missing_expect_or_value_is_bad_request_and_changes_nothing() {
    let nodes = Nodes::start(1, true).await;
    let api = nodes.api(1);
    assert_eq!(raw(api, "PUT", "/v1/kv/k", Some(json!({ "value": "v" }))).await.status, 200);
    for (key, body) in [("k", json!({ "expect": "v" })), ("new", json!({ "value": "x" })), ("k", json!({}))] {
        let cas = raw(api, "POST", &format!("/v1/kv/{key}/cas"), Some(body.clone())).await;
        assert_eq!((cas.status, cas.code()), (400, "bad_request".into()), "{body}: {cas:?}");
    }
    assert_eq!(get(api, "/v1/kv/k").await.json()["value"], "v");
    assert_eq!(get(api, "/v1/kv/new").await.status, 404);
    // null, written out, still means absent / delete
    let cas = raw(api, "POST", "/v1/kv/k/cas", Some(json!({ "expect": "v", "value": null }))).await;
    assert_eq!((cas.json()["succeeded"].clone(), cas.json()["current"].clone()), (json!(true), Value::Null));
    let cas = raw(api, "POST", "/v1/kv/new/cas", Some(json!({ "expect": null, "value": "x" }))).await;
    assert_eq!(cas.json()["succeeded"], true, "{cas:?}");
}

/// A write of the largest key and value is taken on a follower too. Its
/// message to the leader is larger than the transport's control lane, which
/// drops it unsent; the node was never told (its transport inbox ignored
/// "undelivered"), so it answered `timeout` ("outcome unknown") for a write
/// that never left it, and such a write could not be made through a follower.
#[tokio::test(flavor = "multi_thread")]
async fn a_write_of_the_largest_key_and_value_on_a_follower_is_applied() {
    let nodes = Nodes::start(3, true).await;
    let follower = nodes.follower().await;
    let key = "k".repeat(ferraft_kv::api::MAX_KEY_BYTES);
    let value = "v".repeat(ferraft_kv::api::MAX_VALUE_BYTES);
    let put = raw(nodes.api(follower), "PUT", &format!("/v1/kv/{key}"), Some(json!({ "value": value }))).await;
    assert_eq!(put.status, 200, "{}", &put.body[..put.body.len().min(300)]);
    let read = get(nodes.api(follower), &format!("/v1/kv/{key}")).await;
    assert_eq!(read.json()["value"].as_str().map(str::len), Some(value.len()));
}

/// `abort {}` aborts the joint config pending on the leader, which only the
/// leader knows. Before, a node that did not lead looked at its own view: with
/// no leader (or a view that lagged a prepare) it answered `conflict`, "no
/// prepared membership is pending", where every other cluster change said
/// `no_leader`.
#[tokio::test(flavor = "multi_thread")]
async fn abort_without_an_index_on_a_node_with_no_leader_is_no_leader() {
    let mut nodes = Nodes::start(3, true).await;
    let leader = nodes.leader_seen_by(1).await;
    let survivor = (1..=3).find(|id| *id != leader).unwrap();
    for id in (1..=3).filter(|id| *id != survivor) {
        nodes.nodes.get_mut(&id).unwrap().kill9().await;
    }
    for body in [json!({}), json!({ "prepare_index": 5 })] {
        let abort = raw(nodes.api(survivor), "POST", "/v1/cluster/membership/abort", Some(body.clone())).await;
        assert_eq!((abort.status, abort.code()), (503, "no_leader".into()), "{body}: {abort:?}");
    }
}

/// `init` refuses an address that is not `host:port`, as adding a learner or
/// a node does. Before, it initialized the cluster with it (`{"raft": "bad"}`
/// committed as the node's address: peers could never reach it).
#[tokio::test(flavor = "multi_thread")]
async fn init_with_an_address_that_is_not_host_port_is_bad_request_and_initializes_nothing() {
    let nodes = Nodes::start(2, false).await;
    let api = nodes.api(1);
    let good = nodes.nodes[&2].spec();
    for bad in [json!({ "raft": "bad", "api": api }), json!({ "raft": nodes.nodes[&1].raft, "api": "h:0" })] {
        let body = json!({ "nodes": { "1": bad, "2": good } });
        let init = raw(api, "POST", "/v1/cluster/init", Some(body.clone())).await;
        assert_eq!((init.status, init.code()), (400, "bad_request".into()), "{body}: {init:?}");
    }
    assert_eq!(get(api, "/v1/cluster/status").await.json()["role"], "uninitialized");
}

/// A client that writes its whole body before it reads the answer (as most
/// do) gets `bad_request` for a body over the limit, not a broken pipe: the
/// server reads and drops the rest (up to 64 MiB) before it answers. Before,
/// a 20 MiB body met a closed connection.
#[tokio::test(flavor = "multi_thread")]
async fn a_body_over_the_limit_is_bad_request_even_when_written_whole_first() {
    let nodes = Nodes::start(1, true).await;
    for mib in [5, 20] {
        let body = json!({ "value": "x".repeat(mib << 20) });
        let answer = raw(nodes.api(1), "PUT", "/v1/kv/big", Some(body)).await;
        assert_eq!((answer.status, answer.code()), (400, "bad_request".into()), "{mib} MiB");
        assert!(answer.json()["error"]["message"].as_str().unwrap().contains("larger than"), "{answer:?}");
    }
    let small = raw(nodes.api(1), "PUT", "/v1/kv/small", Some(json!({ "value": "v" }))).await;
    assert_eq!(small.status, 200, "{small:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_method_is_405_with_allow_and_an_unknown_path_is_no_such_endpoint() {
    let nodes = Nodes::start(1, false).await;
    let api = nodes.api(1);
    for (method, target, allow) in [
        ("PATCH", "/v1/kv/k", "GET, PUT, DELETE"),
        ("POST", "/v1/kv/k", "GET, PUT, DELETE"),
        ("GET", "/v1/kv/k/cas", "POST"),
        ("DELETE", "/v1/kv", "GET"),
        ("GET", "/v1/cluster/init", "POST"),
        ("POST", "/v1/cluster/status", "GET"),
        ("PUT", "/metrics", "GET"),
        ("POST", "/v1/ready", "GET"),
    ] {
        let answer = raw(api, method, target, None).await;
        assert_eq!((answer.status, answer.code()), (405, "method_not_allowed".into()), "{method} {target}");
        assert_eq!(answer.headers.get("allow").map(String::as_str), Some(allow), "{method} {target}");
    }
    for target in ["/v1/nope", "/v1/cluster/status/", "/v1/kvx", "/"] {
        let answer = get(api, target).await;
        assert_eq!((answer.status, answer.code()), (404, "no_such_endpoint".into()), "{target}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn health_is_up_at_once_and_ready_only_in_step_with_a_leader() {
    let mut nodes = Nodes::start(3, false).await;
    for id in 1..=3 {
        assert_eq!(get(nodes.api(id), "/v1/health").await.status, 200);
        let ready = get(nodes.api(id), "/v1/ready").await;
        assert_eq!((ready.status, ready.code()), (503, "not_initialized".into()));
    }
    let voters: BTreeMap<String, Value> = (1..=3).map(|id| (id.to_string(), nodes.nodes[&id].spec())).collect();
    nodes.nodes[&1].client.post("/v1/cluster/init", &json!({ "nodes": voters })).await.unwrap();
    let put = nodes.nodes[&1].client.put("/v1/kv/k", &json!({ "value": "v" })).await.unwrap();
    for id in 1..=3 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ready = get(nodes.api(id), "/v1/ready").await;
            // (the leader's published commit index may lag an acknowledged write by a metrics tick)
            if ready.status == 200 && ready.json()["applied"].as_u64().unwrap() >= put["index"].as_u64().unwrap() {
                break;
            }
            assert!(Instant::now() < deadline, "node {id} never ready: {ready:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // alone, a node may stay up but is no longer ready
    let leader = nodes.leader_seen_by(1).await;
    let survivor = (1..=3).find(|id| *id != leader).unwrap();
    for id in (1..=3).filter(|id| *id != survivor) {
        nodes.nodes.get_mut(&id).unwrap().kill9().await;
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let ready = get(nodes.api(survivor), "/v1/ready").await;
        if ready.status == 503 {
            assert!(["no_leader", "not_ready"].contains(&ready.code().as_str()), "{ready:?}");
            assert!(!ready.json()["error"]["message"].as_str().unwrap().is_empty());
            break;
        }
        assert!(Instant::now() < deadline, "still ready alone: {ready:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(get(nodes.api(survivor), "/v1/health").await.status, 200);
}

/// One sample of the exposition text: name, labels, value.
type Sample = (String, BTreeMap<String, String>, f64);

/// Parses the Prometheus text format: the `# TYPE` of each family and the samples.
fn parse_exposition(text: &str) -> (BTreeMap<String, String>, Vec<Sample>) {
    let mut types = BTreeMap::new();
    let mut samples = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(types.insert(name.to_owned(), kind.to_owned()).is_none(), "two TYPE lines for {name}");
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("bad sample line {line:?}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("bad value in {line:?}"));
        let (name, labels) = match series.split_once('{') {
            Some((name, labels)) => {
                let labels = labels.strip_suffix('}').unwrap();
                let labels = labels
                    .split(',')
                    .map(|pair| {
                        let (k, v) = pair.split_once('=').unwrap();
                        (k.to_owned(), v.trim_matches('"').to_owned())
                    })
                    .collect();
                (name.to_owned(), labels)
            }
            None => (series.to_owned(), BTreeMap::new()),
        };
        samples.push((name, labels, value));
    }
    (types, samples)
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_relays_and_latency_by_endpoint_class() {
    let nodes = Nodes::start(3, true).await;
    let follower = nodes.follower().await;
    let client = &nodes.nodes[&follower].client;
    for i in 0..5 {
        client.put(&format!("/v1/kv/m{i}"), &json!({ "value": "v" })).await.unwrap();
    }
    client.get("/v1/kv/m0").await.unwrap();
    let text = reqwest::get(format!("http://{}/metrics", nodes.api(follower))).await.unwrap().text().await.unwrap();
    let (types, samples) = parse_exposition(&text);
    for (name, _, _) in &samples {
        let family = ["_bucket", "_sum", "_count"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(name);
        assert!(types.contains_key(family) || types.contains_key(name), "{name} has no TYPE");
    }
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../ferraft-kv/API.md")).unwrap();
    for family in types.keys() {
        assert!(doc.contains(&format!("`{family}")), "{family} is not in the metrics table of API.md");
    }
    assert_eq!(types["ferraft_http_forwarded_total"], "counter");
    assert_eq!(types["ferraft_http_responses_total"], "counter");
    assert_eq!(types["ferraft_http_request_duration_seconds"], "histogram");
    let value = |name: &str, labels: &[(&str, &str)]| -> f64 {
        let matching: Vec<f64> = samples
            .iter()
            .filter(|(n, l, _)| n == name && labels.iter().all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v)))
            .map(|(_, _, v)| *v)
            .collect();
        assert_eq!(matching.len(), 1, "{name} {labels:?}");
        matching[0]
    };
    // writes go to the leader over the Raft transport, reads are served here
    assert_eq!(value("ferraft_http_forwarded_total", &[]), 0.0, "no write or linearizable read relayed over HTTP");
    let histogram = "ferraft_http_request_duration_seconds";
    for endpoint in ["kv_read", "kv_write", "kv_list", "kv_watch", "cluster", "observe", "other"] {
        let buckets: Vec<(f64, f64)> = samples
            .iter()
            .filter(|(n, l, _)| n == &format!("{histogram}_bucket") && l["endpoint"] == endpoint)
            .map(|(_, l, v)| (if l["le"] == "+Inf" { f64::INFINITY } else { l["le"].parse().unwrap() }, *v))
            .collect();
        assert!(buckets.len() > 5, "{endpoint}: {buckets:?}");
        assert!(buckets.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1), "cumulative: {buckets:?}");
        let count = value(&format!("{histogram}_count"), &[("endpoint", endpoint)]);
        assert_eq!(buckets.last().unwrap(), &(f64::INFINITY, count));
        assert!(value(&format!("{histogram}_sum"), &[("endpoint", endpoint)]) >= 0.0);
    }
    assert_eq!(value(&format!("{histogram}_count"), &[("endpoint", "kv_write")]), 5.0);
    assert_eq!(value(&format!("{histogram}_count"), &[("endpoint", "kv_read")]), 1.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn init_elections_membership_changes_and_shutdown_are_logged_at_info() {
    let mut nodes = Nodes::start(2, false).await;
    nodes.nodes[&1].client.post("/v1/cluster/init", &json!({})).await.unwrap();
    let learner = json!({ "id": 2, "raft": nodes.nodes[&2].raft, "api": nodes.api(2), "blocking": true });
    nodes.nodes[&1].client.post("/v1/cluster/learners", &learner).await.unwrap();
    let change = json!({ "change": { "add_voters": [2] } });
    nodes.nodes[&1].client.post("/v1/cluster/membership", &change).await.unwrap();
    for id in 1..=2 {
        assert_eq!(nodes.nodes.get_mut(&id).unwrap().terminate().await, Some(0));
    }
    let log = std::fs::read_to_string(&nodes.nodes[&1].log).unwrap();
    let info = |needle: &str| log.lines().any(|l| l.contains(" INFO ") && l.contains(needle));
    assert!(info("initialized the cluster"), "{log}");
    assert!(info("role changed") && log.contains("to=Leader") && log.contains("term="), "{log}");
    assert!(info("membership in force") && log.contains("configs=[{1, 2}]"), "{log}");
    assert!(log.contains("configs=[{1}, {1, 2}]"), "the joint step is logged too: {log}");
    assert!(info("shutting down") && info("shut down"), "{log}");
    let log = std::fs::read_to_string(&nodes.nodes[&2].log).unwrap();
    assert!(log.contains("to=Follower") || log.contains("to=Learner"), "{log}");
    drop(nodes.dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn list_pages_through_a_prefix_or_a_range_from_any_node() {
    let nodes = Nodes::start(3, true).await;
    let follower = nodes.follower().await;
    let api = nodes.api(follower);
    let mut expected = BTreeMap::new();
    for i in 0..25 {
        let key = format!("dir/{i:02}");
        let put = raw(api, "PUT", &format!("/v1/kv/dir%2F{i:02}"), Some(json!({ "value": format!("v{i}") }))).await;
        expected.insert(key, (format!("v{i}"), put.json()["index"].as_u64().unwrap()));
    }
    for key in ["di", "dir", "dis", "e"] {
        raw(api, "PUT", &format!("/v1/kv/{key}"), Some(json!({ "value": "other" }))).await;
    }
    let mut seen = BTreeMap::new();
    let mut target = "/v1/kv?prefix=dir%2F&limit=10".to_owned();
    let mut pages = 0;
    loop {
        let page = get(api, &target).await.json();
        pages += 1;
        for entry in page["kvs"].as_array().unwrap() {
            let (key, value, index) =
                (entry["key"].as_str().unwrap(), entry["value"].as_str().unwrap(), entry["index"].as_u64().unwrap());
            assert!(seen.insert(key.to_owned(), (value.to_owned(), index)).is_none(), "{key} twice");
        }
        match page["next"].as_str() {
            Some(next) => {
                assert_eq!(page["more"], true);
                target = format!("/v1/kv?prefix=dir%2F&limit=10&start={}", next.replace('/', "%2F"));
            }
            None => {
                assert_eq!(page["more"], false);
                break;
            }
        }
    }
    assert_eq!((seen, pages), (expected, 3));
    let range = get(api, "/v1/kv?start=dir%2F23&end=e&consistency=lease").await.json();
    let keys: Vec<&str> = range["kvs"].as_array().unwrap().iter().map(|e| e["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["dir/23", "dir/24", "dis"]);
    assert_eq!(range["next"], Value::Null);
    for bad in ["/v1/kv?limit=0", "/v1/kv?limit=10001", "/v1/kv?limit=x", "/v1/kv?prefx=a", "/v1/kv?consistency=no"] {
        let answer = get(api, bad).await;
        assert_eq!((answer.status, answer.code()), (400, "bad_request".into()), "{bad}");
    }
}

/// The codes in the error table of `API.md`: the first column of the table
/// under the `## Errors` heading.
fn documented_codes() -> BTreeMap<String, u16> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../ferraft-kv/API.md")).unwrap();
    let section = doc.split("\n## Errors").nth(1).expect("API.md has an Errors section");
    let section = section.split("\n## ").next().unwrap();
    section
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let code = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            Some((code.to_owned(), cells.get(2)?.parse().ok()?))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_documented_error_code_comes_from_a_real_request() {
    let documented = documented_codes();
    for code in Code::ALL {
        assert_eq!(documented.get(code.as_str()), Some(&code.status().as_u16()), "{} undocumented", code.as_str());
    }
    let mut nodes = Nodes::start(5, false).await;
    let mut produced: BTreeMap<String, u16> = BTreeMap::new();
    let note = |produced: &mut BTreeMap<String, u16>, answer: Answer| {
        produced.insert(answer.code(), answer.status);
    };
    note(&mut produced, raw(nodes.api(1), "PUT", "/v1/kv/k", Some(json!({ "value": "v" }))).await);
    note(&mut produced, get(nodes.api(1), "/v1/ready").await);
    let voters: BTreeMap<String, Value> = (1..=3).map(|id| (id.to_string(), nodes.nodes[&id].spec())).collect();
    nodes.nodes[&1].client.post("/v1/cluster/init", &json!({ "nodes": voters })).await.unwrap();
    // not_ready: a follower asked while its leader is frozen (SIGSTOP) still
    // knows that leader, which does not answer. On a loaded machine the
    // follower may win an election before it is asked, and is then rightly
    // ready: freeze its new leader and ask again.
    let mut attempts = 0;
    let ready = loop {
        let frozen = nodes.leader_seen_by(1).await;
        let follower = (1..=3).find(|id| *id != frozen).unwrap();
        // (initialized too: a node that knows its leader but no membership yet answers not_initialized)
        nodes.nodes[&follower].wait_initialized_with_leader(Duration::from_secs(10)).await.unwrap();
        nodes.nodes[&frozen].pause().await.unwrap();
        let ready = get(nodes.api(follower), "/v1/ready").await;
        nodes.nodes[&frozen].resume();
        let now_leads = nodes.nodes[&follower].client.status().await.is_ok_and(|s| s["role"] == "leader");
        attempts += 1;
        if ready.status == 200 && now_leads && attempts < 5 {
            continue;
        }
        break ready;
    };
    assert_eq!(ready.code(), "not_ready", "{ready:?}");
    note(&mut produced, ready);
    // the freeze may have moved leadership: wait until node 1's leader says it leads
    let deadline = Instant::now() + Duration::from_secs(10);
    let leader = loop {
        let leader = nodes.leader_seen_by(1).await;
        if nodes.nodes[&leader].client.status().await.is_ok_and(|s| s["role"] == "leader") {
            break leader;
        }
        assert!(Instant::now() < deadline, "no settled leader after the freeze");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let api = nodes.api(leader).to_owned();
    note(&mut produced, raw(&api, "POST", "/v1/cluster/init", Some(json!({}))).await);
    note(&mut produced, raw(&api, "PUT", "/v1/kv/k", Some(json!({ "value": 5 }))).await);
    note(&mut produced, get(&api, "/v1/kv/absent").await);
    note(&mut produced, raw(&api, "PATCH", "/v1/kv/k", None).await);
    note(&mut produced, get(&api, "/v1/nowhere").await);
    // compacted: a node restarted from its snapshot no longer knows the changes before it
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    raw(&api, "PUT", "/v1/kv/k", Some(json!({ "value": "v" }))).await;
    // (applied there, so its snapshot holds a change: a linearizable read through it would be the leader's)
    nodes.nodes[&follower].client.wait_local_value("k", "v", Duration::from_secs(10)).await.unwrap();
    nodes.nodes[&follower].client.post("/v1/cluster/snapshot", &json!({})).await.unwrap();
    assert_eq!(nodes.nodes.get_mut(&follower).unwrap().terminate().await, Some(0));
    nodes.nodes.get_mut(&follower).unwrap().spawn().unwrap();
    nodes.nodes[&follower].wait_ready(Duration::from_secs(10)).await.unwrap();
    note(&mut produced, get(nodes.api(follower), "/v1/watch?from_index=1").await);
    let learner = json!({ "id": 4, "raft": nodes.nodes[&4].raft, "api": nodes.api(4), "blocking": true });
    nodes.nodes[&leader].client.post("/v1/cluster/learners", &learner).await.unwrap();
    // not_member: node 5 joins as a learner, is removed, and is asked to write
    let learner = json!({ "id": 5, "raft": nodes.nodes[&5].raft, "api": nodes.api(5), "blocking": true });
    nodes.nodes[&leader].client.post("/v1/cluster/learners", &learner).await.unwrap();
    let removal = json!({ "change": { "remove_nodes": [5] } });
    nodes.nodes[&leader].client.post("/v1/cluster/membership", &removal).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while nodes.nodes[&5].client.status().await.unwrap()["role"] != "removed" {
        assert!(Instant::now() < deadline, "node 5 never says it was removed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    note(&mut produced, raw(nodes.api(5), "PUT", "/v1/kv/k", Some(json!({ "value": "v" }))).await);
    // partially_applied: a blocking add of a learner that never starts, whose
    // leader then loses its quorum: the learner entry committed, the wait did not end
    let never = LocalNode::new(Path::new(EXE), 6, nodes.dir.path());
    let learner = json!({ "id": 6, "raft": never.raft, "api": never.api, "blocking": true });
    let waiting = tokio::spawn({
        let api = api.clone();
        async move { raw(&api, "POST", "/v1/cluster/learners", Some(learner)).await }
    });
    // (committed, not only appended: killing the quorum before the entry
    // commits rightly answers timeout or no_leader, since nothing is known to
    // have happened)
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let membership = nodes.nodes[&leader].client.status().await.unwrap()["membership"].clone();
        if membership["committed"] == json!(true) && membership["learners"].as_array().unwrap().contains(&json!(6)) {
            break;
        }
        assert!(Instant::now() < deadline, "learner 6 never committed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // timeout, then no_leader: the leader is left alone with its learner
    for id in (1..=3).filter(|id| *id != leader) {
        nodes.nodes.get_mut(&id).unwrap().kill9().await;
    }
    note(&mut produced, raw(&api, "PUT", "/v1/kv/k", Some(json!({ "value": "v" }))).await);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !produced.contains_key("no_leader") {
        assert!(Instant::now() < deadline, "no no_leader: {produced:?}");
        note(&mut produced, raw(&api, "PUT", "/v1/kv/k", Some(json!({ "value": "v" }))).await);
    }
    note(&mut produced, waiting.await.unwrap());
    // the learner's leader is gone too: it serves on alone below
    nodes.nodes.get_mut(&leader).unwrap().kill9().await;
    let api = nodes.api(4).to_owned();
    // internal: the node's disk refuses its snapshot (a directory where the file goes)
    std::fs::create_dir_all(nodes.nodes[&4].data_dir.join("wal").join("SNAPSHOT").join("blocked")).unwrap();
    note(&mut produced, raw(&api, "POST", "/v1/cluster/snapshot", Some(json!({}))).await);
    assert_eq!(produced, documented, "produced by the requests above vs documented");
}

/// The lines of a watch stream, read in the background.
struct Watcher {
    lines: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Watcher {
    async fn start(api: &str, query: &str) -> Self {
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let mut response = http.get(format!("http://{api}/v1/watch?{query}")).send().await.unwrap();
        let status = response.status();
        if status != 200 {
            panic!("{query}: {status} {}", response.text().await.unwrap());
        }
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = lines.clone();
        let task = tokio::spawn(async move {
            let mut pending = Vec::new();
            while let Ok(Some(chunk)) = response.chunk().await {
                pending.extend_from_slice(&chunk);
                while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=end).collect();
                    sink.lock().unwrap().push(serde_json::from_slice(&line).unwrap());
                }
            }
        });
        Self { lines, task }
    }

    /// Waits until an event at `index` or later arrived, then stops.
    async fn until(self, index: u64) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let last = self.lines.lock().unwrap().last().and_then(|l| l["index"].as_u64()).unwrap_or(0);
            if last >= index {
                break;
            }
            assert!(Instant::now() < deadline, "no event at {index}: {:?}", self.lines.lock().unwrap());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.task.abort();
        let lines = self.lines.lock().unwrap().clone();
        lines
    }
}

/// Writes through `api` and returns the event each write must produce.
async fn write_events(api: &str, writes: &[(&str, Option<&str>)]) -> Vec<Value> {
    let mut events = Vec::new();
    for (key, value) in writes {
        let target = format!("/v1/kv/{}", key.replace('/', "%2F"));
        let answer = match value {
            Some(value) => raw(api, "PUT", &target, Some(json!({ "value": value }))).await,
            None => raw(api, "DELETE", &target, None).await,
        };
        assert_eq!(answer.status, 200, "{key}: {answer:?}");
        let index = answer.json()["index"].as_u64().unwrap();
        if key.starts_with("w/") {
            events.push(json!({ "index": index, "key": key, "value": value }));
        }
    }
    events
}

#[tokio::test(flavor = "multi_thread")]
async fn a_watch_resumes_across_a_leader_change_and_a_restart_without_missing_or_repeating() {
    let mut nodes = Nodes::start(3, true).await;
    let watched = nodes.follower().await;
    let watcher = Watcher::start(nodes.api(watched), "prefix=w%2F&from_index=1").await;
    let mut expected =
        write_events(nodes.api(watched), &[("w/a", Some("1")), ("other", Some("x")), ("w/b", Some("2"))]).await;
    expected.extend(write_events(nodes.api(watched), &[("w/a", None), ("w/absent", None), ("w/b", Some("3"))]).await);
    // the absent key's delete changed nothing: no event
    expected.retain(|e| e["key"] != "w/absent");
    // a leader change while the stream runs; the node hands the next write
    // to the next leader. (A write handed to a leader in the instant it dies
    // may be answered `timeout`: that the dead one never saw it is not known
    // then, so the write is taken once the node follows the next leader.)
    let old_leader = nodes.leader_seen_by(watched).await;
    nodes.nodes.get_mut(&old_leader).unwrap().kill9().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while nodes.leader_seen_by(watched).await == old_leader {
        assert!(Instant::now() < deadline, "node {watched} still follows the dead leader");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    expected.extend(write_events(nodes.api(watched), &[("w/c", Some("4")), ("w/a", Some("5"))]).await);
    let seen = watcher.until(expected.last().unwrap()["index"].as_u64().unwrap()).await;
    assert_eq!(seen, expected, "one stream through a leader change");
    // the watched node restarts; the client resumes from the next index, there and elsewhere
    nodes.nodes.get_mut(&old_leader).unwrap().spawn().unwrap();
    nodes.nodes[&old_leader].wait_ready(Duration::from_secs(10)).await.unwrap();
    // an open watch does not hold up a clean shutdown
    let open = Watcher::start(nodes.api(watched), "prefix=w%2F").await;
    let stopping = Instant::now();
    assert_eq!(nodes.nodes.get_mut(&watched).unwrap().terminate().await, Some(0));
    assert!(stopping.elapsed() < Duration::from_secs(2), "SIGTERM took {:?}", stopping.elapsed());
    open.task.abort();
    let other = (1..=3).find(|id| *id != watched && *id != old_leader).unwrap();
    // as above: the write is taken once `other` follows a leader still running
    let deadline = Instant::now() + Duration::from_secs(10);
    while nodes.leader_seen_by(other).await == watched {
        assert!(Instant::now() < deadline, "node {other} still follows the stopped node");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let more = write_events(nodes.api(other), &[("w/d", Some("6")), ("w/c", None)]).await;
    nodes.nodes.get_mut(&watched).unwrap().spawn().unwrap();
    nodes.nodes[&watched].wait_ready(Duration::from_secs(10)).await.unwrap();
    let resume = format!("prefix=w%2F&from_index={}", seen.last().unwrap()["index"].as_u64().unwrap() + 1);
    let last = more.last().unwrap()["index"].as_u64().unwrap();
    for id in [watched, old_leader] {
        let resumed = Watcher::start(nodes.api(id), &resume).await.until(last).await;
        assert_eq!(resumed, more, "resumed on node {id}");
    }
    // the whole history again, from a node that restarted from its log
    let replay = Watcher::start(nodes.api(watched), "prefix=w%2F&from_index=1").await.until(last).await;
    assert_eq!(replay, [expected, more].concat());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_snapshot_downloads_from_any_node_with_every_key_and_its_index() {
    let nodes = Nodes::start(3, true).await;
    let follower = nodes.follower().await;
    let mut last = 0;
    for i in 0..30 {
        let put = raw(nodes.api(1), "PUT", &format!("/v1/kv/b%2F{i}"), Some(json!({ "value": format!("v{i}") }))).await;
        last = put.json()["index"].as_u64().unwrap();
    }
    nodes.nodes[&follower].client.wait_local_value("b/29", "v29", Duration::from_secs(10)).await.unwrap();
    let download = get(nodes.api(follower), "/v1/cluster/snapshot/download").await;
    assert_eq!(download.status, 200, "{download:?}");
    let index: u64 = download.headers["x-ferraft-snapshot-index"].parse().unwrap();
    assert!(index >= last, "a snapshot built now covers the writes: {index} < {last}");
    let membership: Value = serde_json::from_str(&download.headers["x-ferraft-snapshot-membership"]).unwrap();
    assert_eq!(membership["voters"], json!([1, 2, 3]));
    let data = download.json();
    assert!(data["last_command"].as_u64().unwrap() >= last);
    let kvs = data["kvs"].as_object().unwrap();
    assert_eq!(kvs.len(), 30);
    for i in 0..30 {
        assert_eq!(kvs[&format!("b/{i}")][0], format!("v{i}"));
    }
    // the saved one is answered again until a newer one is built
    raw(nodes.api(1), "PUT", "/v1/kv/later", Some(json!({ "value": "x" }))).await;
    let again = get(nodes.api(follower), "/v1/cluster/snapshot/download").await;
    assert_eq!(again.headers["x-ferraft-snapshot-index"], index.to_string());
}

/// A read of a key refuses query parameters it does not take, as a list and
/// a watch do (`bad_request` naming the parameter and those it takes).
/// Before, `GET /v1/kv/k?consistancy=local` answered 200 from a
/// linearizable read: the typo went unnoticed.
#[tokio::test(flavor = "multi_thread")]
async fn a_read_refuses_an_unknown_query_parameter_as_a_list_and_a_watch_do() {
    let nodes = Nodes::start(1, true).await;
    let api = nodes.api(1);
    assert_eq!(raw(api, "PUT", "/v1/kv/k", Some(json!({ "value": "v" }))).await.status, 200);
    assert_eq!(get(api, "/v1/kv/k?consistency=local").await.status, 200);
    for target in ["/v1/kv/k?consistancy=local", "/v1/kv/k?consistency=local&x=1", "/v1/kv?x=1", "/v1/watch?x=1"] {
        let answer = get(api, target).await;
        assert_eq!((answer.status, answer.code()), (400, "bad_request".into()), "{target}: {answer:?}");
        let message = answer.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(message.starts_with("unknown query parameter"), "{target}: {message}");
    }
    let typo = get(api, "/v1/kv/k?consistancy=local").await.json()["error"]["message"].clone();
    assert_eq!(typo, "unknown query parameter \"consistancy\": a read takes consistency");
}

/// A write (put, delete, CAS) takes no query parameters and refuses one,
/// changing nothing: `PUT /v1/kv/k?ttl=5` must not store a value the
/// caller believes expires. Before, the parameter was ignored and the write
/// answered 200.
#[tokio::test(flavor = "multi_thread")]
async fn a_write_refuses_any_query_parameter_and_changes_nothing() {
    let nodes = Nodes::start(1, true).await;
    let api = nodes.api(1);
    assert_eq!(raw(api, "PUT", "/v1/kv/k", Some(json!({ "value": "v" }))).await.status, 200);
    let writes = [
        ("PUT", "/v1/kv/k?ttl=5", Some(json!({ "value": "w" }))),
        ("DELETE", "/v1/kv/k?prefix=true", None),
        ("POST", "/v1/kv/k/cas?force=1", Some(json!({ "expect": "v", "value": "w" }))),
    ];
    for (method, target, body) in writes {
        let answer = raw(api, method, target, body).await;
        assert_eq!((answer.status, answer.code()), (400, "bad_request".into()), "{method} {target}: {answer:?}");
        let message = answer.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(message.starts_with("unknown query parameter"), "{target}: {message}");
        assert!(message.ends_with("a write takes none"), "{target}: {message}");
    }
    assert_eq!(get(api, "/v1/kv/k").await.json()["value"], "v");
}

/// A node object in a cluster body (`init`'s `nodes`, a change's
/// `add_nodes` / `set_nodes`) refuses fields it does not know, as the bodies
/// themselves do: `bad_request` naming the field, nothing changed. Before,
/// `{"raft": .., "api": .., "apii": ..}` was taken and the field dropped.
#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_field_in_a_node_object_is_bad_request_and_changes_nothing() {
    let nodes = Nodes::start(3, false).await;
    let (api, spec) = (nodes.api(1), nodes.nodes[&1].spec());
    let mut extra = spec.clone();
    extra["role"] = json!("voter");
    let init = raw(api, "POST", "/v1/cluster/init", Some(json!({ "nodes": { "1": extra } }))).await;
    assert_eq!((init.status, init.code()), (400, "bad_request".into()), "{init:?}");
    assert!(init.body.contains("role"), "{init:?}");
    assert_eq!(get(api, "/v1/cluster/status").await.json()["role"], "uninitialized");
    let init = raw(api, "POST", "/v1/cluster/init", Some(json!({ "nodes": { "1": spec } }))).await;
    assert_eq!(init.status, 200, "{init:?}");
    nodes.nodes[&1].wait_initialized_with_leader(Duration::from_secs(10)).await.unwrap();
    let before = get(api, "/v1/cluster/status").await.json()["membership"].clone();
    let mut two = nodes.nodes[&2].spec();
    two["weight"] = json!(2);
    for change in [json!({ "add_nodes": { "2": two } }), json!({ "set_nodes": { "1": extra } })] {
        let body = json!({ "change": change });
        let answer = raw(api, "POST", "/v1/cluster/membership", Some(body.clone())).await;
        assert_eq!((answer.status, answer.code()), (400, "bad_request".into()), "{body}: {answer:?}");
        assert!(answer.body.contains("unknown field"), "{answer:?}");
    }
    assert_eq!(get(api, "/v1/cluster/status").await.json()["membership"], before, "nothing changed");
}

/// Node id 0 is refused wherever a node is named into the cluster (`init`,
/// adding a learner, a membership change): `bad_request` saying why, nothing
/// changed. The metrics use 0 for "no leader" (`ferraft_leader_id`), so a
/// node 0 leading would read as no leader. Before, all were accepted.
#[tokio::test(flavor = "multi_thread")]
async fn node_id_zero_is_bad_request_wherever_a_node_is_named() {
    let nodes = Nodes::start(2, false).await;
    let (api, spec) = (nodes.api(1), nodes.nodes[&1].spec());
    let two = nodes.nodes[&2].spec();
    let refused = |answer: &Answer| {
        assert_eq!((answer.status, answer.code()), (400, "bad_request".into()), "{answer:?}");
        let message = answer.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(message.contains("node id 0"), "{message}");
    };
    let init = raw(api, "POST", "/v1/cluster/init", Some(json!({ "nodes": { "1": spec, "0": two } }))).await;
    refused(&init);
    assert_eq!(get(api, "/v1/cluster/status").await.json()["role"], "uninitialized");
    raw(api, "POST", "/v1/cluster/init", Some(json!({ "nodes": { "1": spec } }))).await;
    nodes.nodes[&1].wait_initialized_with_leader(Duration::from_secs(10)).await.unwrap();
    let before = get(api, "/v1/cluster/status").await.json()["membership"].clone();
    let learner = json!({ "id": 0, "raft": two["raft"], "api": two["api"], "blocking": false });
    refused(&raw(api, "POST", "/v1/cluster/learners", Some(learner)).await);
    for change in [
        json!({ "add_nodes": { "0": two } }),
        json!({ "add_voters": [0] }),
        json!({ "remove_voters": [0] }),
        json!({ "replace_voters": [0, 1] }),
        json!({ "remove_nodes": [0] }),
        json!({ "set_nodes": { "0": two } }),
    ] {
        refused(&raw(api, "POST", "/v1/cluster/membership", Some(json!({ "change": change }))).await);
    }
    // the requests that name nodes by id alone say so too, rather than "not
    // a member" (409), which would suggest a node 0 could be one
    let by_id = [
        ("/v1/cluster/membership/prepare", json!({ "expect_voters": [1], "voters": [0] })),
        ("/v1/cluster/membership/prepare", json!({ "expect_voters": [1], "voters": [1], "learners": [0] })),
        ("/v1/cluster/replace", json!({ "old": 1, "new": 0 })),
        ("/v1/cluster/readmit", json!({ "id": 0 })),
        ("/v1/cluster/leader/transfer", json!({ "to": 0 })),
    ];
    for (path, body) in by_id {
        refused(&raw(api, "POST", path, Some(body)).await);
    }
    assert_eq!(get(api, "/v1/cluster/status").await.json()["membership"], before, "nothing changed");
}
