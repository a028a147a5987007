//! `ferraft bench cluster`: a real cluster of `ferraft serve` processes on
//! loopback (TCP transport, WAL with fsync), driven over the HTTP API by
//! closed-loop clients: puts, linearizable gets, or a 50/50 mix.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use bytes::Bytes;
use rand::Rng;
use serde_json::{json, Value};

use super::http_client::{ExchangeError, HttpConnection};
use super::local_nodes::{local_nodes, stop_nodes, until_stopped};

use super::{cpu_seconds, peak_rss_mib, seconds, thousands, Measured, Window, Workload};
use crate::cli::{ClusterArgs, ClusterWorkload};
use crate::client::kv_path;
use crate::harness::LocalNode;

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
        format!(
            "{what}{failed}; latency p50 {p50} µs, p90 {p90} µs, p99 {p99} µs, p999 {p999} µs; CPU/op: servers {} µs, \
             client {} µs; server peak RSS {} MiB",
            opt(self.server_cpu_us_per_op),
            opt(self.client_cpu_us_per_op),
            opt(self.server_peak_rss_mib)
        )
    }
}

/// The settings line printed before a run.
pub fn describe(args: &ClusterArgs) -> String {
    let target = if args.leader_only { "all to the leader" } else { "spread over all nodes" };
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
        let node = if args.leader_only { target.leader } else { c as usize % target.endpoints.len() };
        let connection = HttpConnection::new(&target.endpoints[node], CLIENT_TIMEOUT).map_err(|e| e.to_string())?;
        let settings = LoopSettings {
            workload: workload.clone(),
            window,
            kind: args.workload,
            requests: requests.clone(),
            readable,
        };
        tasks.push(tokio::spawn(client_loop(connection, settings, c)));
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
    let mut all = Measured::default();
    let mut puts = 0;
    for task in tasks {
        let (m, p) = task.await.map_err(|e| format!("a client failed: {e}"))?;
        puts += p;
        all.merge(m);
    }
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

/// One closed-loop client on its own connection; returns what it measured
/// and how many of its successful operations were puts. A 2xx answer counts
/// as a success, anything else (an error status, a transport error) as a
/// failure.
async fn client_loop(mut connection: HttpConnection, settings: LoopSettings, seed: u64) -> (Measured, u64) {
    let LoopSettings { workload, window, kind, requests, readable } = settings;
    let mut rng = Workload::rng(seed + 1);
    let mut m = Measured::default();
    let mut puts = 0;
    loop {
        let issued = Instant::now();
        if issued >= window.end {
            return (m, puts);
        }
        let is_put = match kind {
            ClusterWorkload::Put => true,
            ClusterWorkload::Get => false,
            ClusterWorkload::Mixed => rng.gen_bool(0.5),
        };
        let result = if is_put {
            requests.put(&mut connection, &workload.key(&mut rng)).await
        } else {
            let key = format!("k{:08}", rng.gen_range(0..readable.max(1)));
            requests.get(&mut connection, &key).await
        };
        let ok = result.as_ref().is_ok_and(StatusCode::is_success);
        let done = Instant::now();
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
}
