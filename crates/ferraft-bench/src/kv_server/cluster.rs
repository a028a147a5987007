//! `ferraft bench cluster`: a real cluster of `ferraft serve` processes on
//! loopback (TCP transport, WAL with fsync), driven over the HTTP API by
//! closed-loop clients: puts, linearizable gets, or a 50/50 mix.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, StatusCode};
use rand::Rng;
use serde_json::{json, Value};

use super::http_client::{ExchangeError, HttpConnection};
use super::local_nodes::{local_nodes, stop_nodes, until_stopped};

use super::{cpu_seconds, peak_rss_mib, seconds, thousands, Measured, Window, Workload};
use crate::cli::{ClusterArgs, ClusterWorkload};
use ferraft_kv::client::kv_path;
use ferraft_kv::harness::LocalNode;

/// How long a benchmark request may take before it counts as failed.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// What a run measured.
#[derive(Debug, Clone)]
pub struct ClusterReport {
    /// Successful operations per second in the measured window.
    pub ops_per_second: f64,
    /// Of which puts per second.
    pub puts_per_second: f64,
    /// Failed operations in the window.
    pub failed: u64,
    /// Latency percentiles in µs: p50, p90, p99, p999.
    pub latency_us: [u32; 4],
    /// CPU of all server processes per operation, µs.
    pub server_cpu_us_per_op: Option<f64>,
    /// CPU of this (client) process per operation, µs.
    pub client_cpu_us_per_op: Option<f64>,
    /// The largest peak RSS of a server process, MiB.
    pub server_peak_rss_mib: Option<f64>,
    /// Spread clients: p50 and p99 in µs of the operations the leader
    /// served and of those a follower served, apart (a follower hands a
    /// put to the leader: the difference is what that costs).
    pub by_server: Option<ServedLatency>,
}

/// Latencies split by which node served the operation.
#[derive(Debug, Clone, Copy)]
pub struct ServedLatency {
    /// Served by the leader: operations, p50 µs, p99 µs.
    pub leader: (u64, u32, u32),
    /// Served by a follower: operations, p50 µs, p99 µs.
    pub follower: (u64, u32, u32),
}

impl ClusterReport {
    /// The one-line summary.
    pub fn line(&self, workload: ClusterWorkload) -> String {
        let [p50, p90, p99, p999] = self.latency_us;
        let what = match workload {
            ClusterWorkload::Put => format!("{} put/s", thousands(self.puts_per_second)),
            _ => format!("{} ops/s ({} put/s)", thousands(self.ops_per_second), thousands(self.puts_per_second)),
        };
        let failed = if self.failed > 0 { format!(" ({} FAILED)", self.failed) } else { String::new() };
        let opt = |v: Option<f64>| v.map_or("?".to_owned(), |v| format!("{v:.0}"));
        let by_server = self.by_server.map_or(String::new(), |s| {
            let ((ln, l50, l99), (fln, f50, f99)) = (s.leader, s.follower);
            format!("; p50 / p99 served by the leader {l50} / {l99} µs ({ln} ops), by followers {f50} / {f99} µs ({fln} ops)")
        });
        format!(
            "{what}{failed}; latency p50 {p50} µs, p90 {p90} µs, p99 {p99} µs, p999 {p999} µs; CPU/op: servers {} µs, \
             client {} µs; server peak RSS {} MiB{by_server}",
            opt(self.server_cpu_us_per_op),
            opt(self.client_cpu_us_per_op),
            opt(self.server_peak_rss_mib)
        )
    }
}

/// The settings line printed before a run.
pub fn describe(args: &ClusterArgs) -> String {
    let target = if args.leader_only { "all to the leader" } else { "each rotating over all nodes" };
    format!(
        "bench cluster: {} `ferraft serve` processes on loopback (WAL fsync on), HTTP API, {} closed-loop clients \
         ({target}), workload {:?}, {}-byte values to {} keys, {} s warm-up + {} s measured, {} thread(s) per node",
        args.members,
        args.clients,
        args.workload,
        args.value_size,
        args.keys,
        args.warmup,
        args.duration,
        args.server_workers
    )
}

/// Runs the benchmark; the server processes are killed and their data dirs
/// removed however it ends (error, Ctrl-C).
pub fn run(args: &ClusterArgs) -> Result<ClusterReport, String> {
    run_on(args, Protocol::Ferraft)
}

/// Runs the benchmark against ferraft or, with [`Protocol::Etcd`], against an
/// etcd cluster of the same size started for it.
pub fn run_on(args: &ClusterArgs, protocol: Protocol) -> Result<ClusterReport, String> {
    if !(1..=9).contains(&args.members) {
        return Err(format!("members must be 1..=9, got {}", args.members));
    }
    if args.clients == 0 {
        return Err("-c must be at least 1".into());
    }
    let warmup = seconds("--warmup", args.warmup)?;
    let duration = seconds("--duration", args.duration)?;
    if duration.is_zero() {
        return Err("--duration must be more than 0".into());
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the ferraft binary: {e}"))?;
    let dir = tempfile::Builder::new().prefix("ferraft-bench-cluster-").tempdir().map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start tokio: {e}"))?;
    let result = runtime.block_on(async {
        if protocol == Protocol::Etcd {
            return bench_etcd(args, dir.path(), warmup, duration).await;
        }
        let mut nodes = local_nodes(&exe, dir.path(), args.members, args.server_workers);
        if args.no_follower_sync_inline {
            for node in &mut nodes {
                node.serve_args.extend(["--follower-sync-inline".to_owned(), "false".to_owned()]);
            }
        }
        let result = until_stopped(bench(args, &mut nodes, warmup, duration)).await;
        stop_nodes(&mut nodes, result.is_err()).await;
        result
    });
    runtime.shutdown_timeout(Duration::from_secs(2));
    drop(dir);
    result
}

/// The same load against etcd; its processes are killed however it ends.
async fn bench_etcd(
    args: &ClusterArgs,
    dir: &Path,
    warmup: Duration,
    duration: Duration,
) -> Result<ClusterReport, String> {
    let exe = super::etcd::locate()?;
    let mut etcd = super::etcd::EtcdCluster::start(&exe, args.members, dir).await?;
    let target = Target {
        endpoints: etcd.endpoints.clone(),
        leader: etcd.leader_index().await,
        pids: etcd.pids(),
        protocol: Protocol::Etcd,
    };
    let result = until_stopped(drive(args, &target, warmup, duration)).await;
    etcd.kill().await;
    result
}

async fn bench(
    args: &ClusterArgs,
    nodes: &mut [LocalNode],
    warmup: Duration,
    duration: Duration,
) -> Result<ClusterReport, String> {
    let leader = start_cluster(nodes).await?;
    let target = Target {
        endpoints: nodes.iter().map(|n| n.api.clone()).collect(),
        leader: nodes.iter().position(|n| n.id == leader).unwrap_or(0),
        pids: nodes.iter().filter_map(LocalNode::pid).collect(),
        protocol: Protocol::Ferraft,
    };
    drive(args, &target, warmup, duration).await
}

/// Which API the clients speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// ferraft's HTTP API.
    Ferraft,
    /// etcd's HTTP/JSON gateway.
    Etcd,
}

/// A running cluster to load.
pub struct Target {
    /// `host:port` of each member's client API.
    pub endpoints: Vec<String>,
    /// Which of them leads (where `--leader-only` sends every client).
    pub leader: usize,
    /// The server processes, for CPU and memory figures.
    pub pids: Vec<u32>,
    /// The API they speak.
    pub protocol: Protocol,
}

/// Runs the closed-loop clients against `target` and measures the window.
pub async fn drive(
    args: &ClusterArgs,
    target: &Target,
    warmup: Duration,
    duration: Duration,
) -> Result<ClusterReport, String> {
    let pids = &target.pids;
    let workload = Arc::new(Workload::new(args.keys, args.value_size));
    let requests = Arc::new(Requests::new(target.protocol, &workload, &args.consistency)?);
    let readable = if args.workload == ClusterWorkload::Put {
        0
    } else {
        prefill(&target.endpoints[target.leader], &requests, args.keys).await?
    };
    let window = Window::after(warmup, duration);
    let mut tasks = Vec::with_capacity(args.clients as usize);
    for c in 0..args.clients {
        let servers = if args.leader_only { vec![target.leader] } else { rotation(c, target.endpoints.len()) };
        let mut connections = Vec::with_capacity(servers.len());
        for node in servers {
            let connection = HttpConnection::new(&target.endpoints[node], CLIENT_TIMEOUT).map_err(|e| e.to_string())?;
            connections.push((connection, node == target.leader));
        }
        let settings = LoopSettings {
            workload: workload.clone(),
            window,
            kind: args.workload,
            requests: requests.clone(),
            readable,
        };
        tasks.push(tokio::spawn(client_loop(connections, settings, c)));
    }
    let cpu = |pids: &[u32]| -> Option<(f64, f64)> {
        let servers: Option<f64> = pids.iter().map(|p| cpu_seconds(Some(*p))).sum();
        Some((servers?, cpu_seconds(None)?))
    };
    tokio::time::sleep_until(window.start.into()).await;
    let before = cpu(pids);
    let started = Instant::now();
    tokio::time::sleep_until(window.end.into()).await;
    let after = cpu(pids);
    let elapsed = started.elapsed();
    let rss = pids.iter().filter_map(|p| peak_rss_mib(Some(*p))).reduce(f64::max);
    let mut served = [Measured::default(), Measured::default()];
    let mut puts = 0;
    for task in tasks {
        let (by_leader, by_follower, p) = task.await.map_err(|e| format!("a client failed: {e}"))?;
        puts += p;
        served[0].merge(by_leader);
        served[1].merge(by_follower);
    }
    let by_server = (!args.leader_only).then(|| {
        let mut summary =
            served.iter_mut().map(|m| (m.ok, m.latency.percentile_us(50.0), m.latency.percentile_us(99.0)));
        ServedLatency { leader: summary.next().unwrap_or_default(), follower: summary.next().unwrap_or_default() }
    });
    let [mut all, by_follower] = served;
    all.merge(by_follower);
    let ok = all.ok.max(1) as f64;
    let (server_cpu, client_cpu) = match (before, after) {
        (Some((s0, c0)), Some((s1, c1))) => (Some((s1 - s0) * 1e6 / ok), Some((c1 - c0) * 1e6 / ok)),
        _ => (None, None),
    };
    let l = &mut all.latency;
    Ok(ClusterReport {
        ops_per_second: all.ok as f64 / elapsed.as_secs_f64(),
        puts_per_second: puts as f64 / elapsed.as_secs_f64(),
        failed: all.failed,
        latency_us: [l.percentile_us(50.0), l.percentile_us(90.0), l.percentile_us(99.0), l.percentile_us(99.9)],
        server_cpu_us_per_op: server_cpu,
        client_cpu_us_per_op: client_cpu,
        server_peak_rss_mib: rss,
        by_server,
    })
}

/// How a put or a get of a key is sent, in the target's API.
struct Requests {
    protocol: Protocol,
    /// ferraft: the JSON body of every put, built once; etcd: the value in base64.
    put_value: Bytes,
    /// ferraft: `?consistency=...` of every get.
    get_query: String,
    /// etcd: a local (serializable) read.
    serializable: bool,
}

impl Requests {
    fn new(protocol: Protocol, workload: &Workload, consistency: &str) -> Result<Self, String> {
        let get_query = format!("?consistency={consistency}");
        HttpConnection::check_path(&format!("{}{get_query}", kv_path("k")))
            .map_err(|_| format!("--consistency {consistency:?} does not fit in a URL query"))?;
        let put_value = match protocol {
            Protocol::Ferraft => {
                Bytes::from(serde_json::to_vec(&json!({ "value": workload.value() })).map_err(|e| e.to_string())?)
            }
            Protocol::Etcd => Bytes::from(super::etcd::base64(workload.value().as_bytes())),
        };
        Ok(Self { protocol, put_value, get_query, serializable: consistency == "local" })
    }

    async fn put(&self, connection: &mut HttpConnection, key: &str) -> Result<StatusCode, ExchangeError> {
        match self.protocol {
            Protocol::Ferraft => connection.put(kv_path(key), self.put_value.clone()).await,
            Protocol::Etcd => {
                let value = std::str::from_utf8(&self.put_value).unwrap_or_default();
                let body = super::etcd::put_body_encoded(key, value);
                connection.send(Method::POST, super::etcd::PUT_PATH, Some(body.as_bytes())).await
            }
        }
    }

    async fn get(&self, connection: &mut HttpConnection, key: &str) -> Result<StatusCode, ExchangeError> {
        match self.protocol {
            Protocol::Ferraft => connection.get(kv_path(key) + &self.get_query).await,
            Protocol::Etcd => {
                let body = super::etcd::range_body(key, self.serializable);
                connection.send(Method::POST, super::etcd::RANGE_PATH, Some(body.as_bytes())).await
            }
        }
    }
}

/// Spawns the processes, initializes them as one cluster and returns the leader's id.
pub(super) async fn start_cluster(nodes: &mut [LocalNode]) -> Result<u64, String> {
    for node in nodes.iter_mut() {
        node.spawn().map_err(|e| format!("cannot start node {}: {e}", node.id))?;
    }
    for node in nodes.iter() {
        node.wait_ready(Duration::from_secs(10)).await?;
    }
    let specs: BTreeMap<String, Value> = nodes.iter().map(|n| (n.id.to_string(), n.spec())).collect();
    nodes[0]
        .client
        .post("/v1/cluster/init", &json!({ "nodes": specs }))
        .await
        .map_err(|e| format!("init failed: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        for node in nodes.iter() {
            if let Ok(status) = node.client.status().await {
                if status["role"] == "leader" {
                    // One write through the leader: its term is committed and it serves.
                    node.client
                        .put(&kv_path("bench/ready"), &json!({ "value": "1" }))
                        .await
                        .map_err(|e| format!("the first write failed: {e}"))?;
                    return Ok(node.id);
                }
            }
        }
        if Instant::now() > deadline {
            return Err("no leader elected within 10 s".into());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Writes the first keys (at most 1000) so gets find values; returns how many.
async fn prefill(endpoint: &str, requests: &Arc<Requests>, keys: u64) -> Result<u64, String> {
    let n = keys.clamp(1, 1000);
    let chunk = 50;
    let writers: Vec<_> = (0..n.div_ceil(chunk))
        .map(|w| {
            let requests = requests.clone();
            let connection = HttpConnection::new(endpoint, CLIENT_TIMEOUT);
            tokio::spawn(async move {
                let mut connection = connection.map_err(|e| e.to_string())?;
                for k in (w * chunk)..((w + 1) * chunk).min(n) {
                    match requests.put(&mut connection, &format!("k{k:08}")).await {
                        Ok(status) if status.is_success() => {}
                        Ok(status) => return Err(format!("prefill failed: {status}")),
                        Err(e) => return Err(format!("prefill failed: {e}")),
                    }
                }
                Ok::<(), String>(())
            })
        })
        .collect();
    for writer in writers {
        writer.await.map_err(|e| e.to_string())??;
    }
    Ok(n)
}

/// What every closed-loop client shares.
struct LoopSettings {
    workload: Arc<Workload>,
    window: Window,
    kind: ClusterWorkload,
    /// How requests are sent.
    requests: Arc<Requests>,
    /// Gets read keys below this (the prefilled ones).
    readable: u64,
}

/// The nodes client `c` of a spread load sends to, in turn: all of them,
/// starting at a different one per client, so that even one client puts
/// the same share on every node (on followers, two thirds of three).
fn rotation(c: u64, nodes: usize) -> Vec<usize> {
    (0..nodes).map(|i| (c as usize + i) % nodes).collect()
}

/// One closed-loop client with a keep-alive connection to each of its nodes,
/// sending each operation to the next node in turn; returns what it
/// measured on the leader and on followers, and how many of its successful
/// operations were puts. A 2xx answer counts as a success, anything else
/// (an error status, a transport error) as a failure.
async fn client_loop(
    mut connections: Vec<(HttpConnection, bool)>,
    settings: LoopSettings,
    seed: u64,
) -> (Measured, Measured, u64) {
    let LoopSettings { workload, window, kind, requests, readable } = settings;
    let mut rng = Workload::rng(seed + 1);
    let (mut by_leader, mut by_follower) = (Measured::default(), Measured::default());
    let mut puts = 0;
    let nodes = connections.len();
    for turn in 0.. {
        let issued = Instant::now();
        if issued >= window.end {
            break;
        }
        let (connection, on_leader) = &mut connections[turn % nodes];
        let is_put = match kind {
            ClusterWorkload::Put => true,
            ClusterWorkload::Get => false,
            ClusterWorkload::Mixed => rng.gen_bool(0.5),
        };
        let result = if is_put {
            requests.put(connection, &workload.key(&mut rng)).await
        } else {
            let key = format!("k{:08}", rng.gen_range(0..readable.max(1)));
            requests.get(connection, &key).await
        };
        let ok = result.as_ref().is_ok_and(StatusCode::is_success);
        let done = Instant::now();
        let m = if *on_leader { &mut by_leader } else { &mut by_follower };
        if window.counts(done) {
            if ok {
                m.ok += 1;
                puts += u64::from(is_put);
                m.latency.record(done - issued);
            } else {
                m.failed += 1;
            }
        } else if !ok {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    (by_leader, by_follower, puts)
}

#[cfg(test)]
mod tests {
    use super::rotation;

    #[test]
    fn every_client_rotates_over_all_nodes_from_its_own_start() {
        assert_eq!(rotation(0, 3), [0, 1, 2]);
        assert_eq!(rotation(1, 3), [1, 2, 0]);
        assert_eq!(rotation(5, 3), [2, 0, 1]);
        assert_eq!(rotation(7, 1), [0]);
    }
}
