//! `ferraft bench catch-up`: a learner joins a loaded 3-node cluster of real
//! `ferraft serve` processes (WAL with fsync, TCP on loopback) while clients
//! keep writing. Measures the time until the learner holds the leader's log
//! as of its join, the snapshot's size and transfer rate (when the learner
//! needed one), client put/s and p99 during the catch-up beside a window
//! without it, and each node's peak RSS.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::StatusCode;
use serde_json::json;

use super::cluster::start_cluster;
use super::http_client::HttpConnection;
use super::local_nodes::{local_nodes, stop_nodes, until_stopped};
use super::{peak_rss_mib, seconds, status_kib, thousands, Measured, Workload};
use crate::cli::CatchUpArgs;
use ferraft_kv::client::kv_path;
use ferraft_kv::harness::LocalNode;

/// How long a request may take before it counts as failed.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the learner's progress is polled.
const POLL: Duration = Duration::from_millis(20);
/// The joining node's id.
const LEARNER: u64 = 4;
/// Times in a row a loading put may fail (timed out across a leader change)
/// before the load gives up.
const LOAD_RETRIES: u32 = 50;

/// What a run measured.
#[derive(Debug, Clone)]
pub struct CatchUpReport {
    /// Bytes of KV values loaded before the learner joined.
    pub loaded_bytes: u64,
    /// From the add-learner call until the learner matched the leader's
    /// last index as of the call.
    pub caught_up: Duration,
    /// The leader's snapshot file, if the learner was sent one.
    pub snapshot_bytes: Option<u64>,
    /// From the add-learner call until the learner had installed it.
    pub snapshot_installed: Option<Duration>,
    /// From the add-learner call until the leader first saw the learner
    /// holding every byte (installing): the transfer alone, as polled.
    pub snapshot_transferred: Option<Duration>,
    /// Clients without a catch-up: put/s and p99 in µs.
    pub baseline: (f64, u32),
    /// Clients during the catch-up: put/s and p99 in µs, and failures.
    pub during: (f64, u32, u64),
    /// Clients' put/s in each phase of the catch-up (transfer, install,
    /// log), with its length: which part of the work takes their CPU.
    pub phases: Vec<(&'static str, f64, Duration)>,
    /// Peak RSS per node id, MiB, and the RSS each voter had before the join.
    pub peak_rss_mib: BTreeMap<u64, (f64, Option<f64>)>,
}

impl CatchUpReport {
    /// The summary lines.
    pub fn lines(&self) -> Vec<String> {
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        let mut lines = vec![format!(
            "loaded {:.0} MiB; learner caught up in {:.2} s",
            mib(self.loaded_bytes),
            self.caught_up.as_secs_f64()
        )];
        match (self.snapshot_bytes, self.snapshot_installed) {
            (Some(bytes), Some(t)) => lines.push(format!(
                "snapshot {:.0} MiB installed {:.2} s after the join: {:.0} MB/s (build excluded: it existed)",
                mib(bytes),
                t.as_secs_f64(),
                bytes as f64 / 1e6 / t.as_secs_f64().max(1e-9)
            )),
            _ => lines.push("no snapshot: the learner caught up from the log".to_owned()),
        }
        if let (Some(bytes), Some(t)) = (self.snapshot_bytes, self.snapshot_transferred) {
            lines.push(format!(
                "snapshot transferred (every byte at the learner, before its install) {:.2} s after the join: {:.0} MB/s",
                t.as_secs_f64(),
                bytes as f64 / 1e6 / t.as_secs_f64().max(1e-9)
            ));
        }
        let (base_puts, base_p99) = self.baseline;
        let (puts, p99, failed) = self.during;
        lines.push(format!(
            "clients: {} put/s, p99 {base_p99} µs without a catch-up; {} put/s ({:.0}%), p99 {p99} µs during it{}",
            thousands(base_puts),
            thousands(puts),
            100.0 * puts / base_puts.max(1e-9),
            if failed > 0 { format!(" ({failed} FAILED)") } else { String::new() }
        ));
        if !self.phases.is_empty() {
            let phases: Vec<String> = self
                .phases
                .iter()
                .map(|(name, puts, length)| format!("{name} {} ({:.2} s)", thousands(*puts), length.as_secs_f64()))
                .collect();
            lines.push(format!("clients' put/s by phase: {}", phases.join(", ")));
        }
        let rss: Vec<String> = self
            .peak_rss_mib
            .iter()
            .map(|(id, (peak, before))| match before {
                Some(before) => format!("n{id} {peak:.0} (was {before:.0} before the join, peak since)"),
                None => format!("n{id} {peak:.0}"),
            })
            .collect();
        lines.push(format!("peak RSS MiB: {}", rss.join(", ")));
        lines
    }
}

/// The settings line printed before a run.
pub fn describe(args: &CatchUpArgs) -> String {
    format!(
        "bench catch-up: 3 `ferraft serve` processes on loopback (WAL fsync on), {} MiB loaded as {}-byte values \
         by {} writers, snapshot{} taken, then learner {LEARNER} joins while {} closed-loop clients put {}-byte values; \
         {} s baseline, {} thread(s) per node",
        args.data_mib,
        args.load_value_size,
        args.load_writers,
        if args.no_snapshot { " NOT" } else { "" },
        args.clients,
        args.value_size,
        args.baseline,
        args.server_workers
    )
}

/// Runs the benchmark; the processes are killed and their dirs removed however it ends.
pub fn run(args: &CatchUpArgs) -> Result<CatchUpReport, String> {
    if args.clients == 0 || args.load_value_size == 0 {
        return Err("-c and --load-value-size must be at least 1".into());
    }
    let baseline = seconds("--baseline", args.baseline)?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the ferraft binary: {e}"))?;
    let dir = tempfile::Builder::new().prefix("ferraft-bench-catch-up-").tempdir().map_err(|e| e.to_string())?;
    let learner_dir = match &args.learner_dir {
        Some(parent) => Some(
            tempfile::Builder::new()
                .prefix("ferraft-bench-learner-")
                .tempdir_in(parent)
                .map_err(|e| format!("cannot create a dir in {}: {e}", parent.display()))?,
        ),
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start tokio: {e}"))?;
    let result = runtime.block_on(async {
        let mut nodes = local_nodes(&exe, dir.path(), LEARNER, args.server_workers);
        if let Some(learner_dir) = &learner_dir {
            nodes[3].data_dir = learner_dir.path().join("data");
        }
        if let Some(every) = args.snapshot_every {
            for node in &mut nodes {
                node.serve_args.extend(["--snapshot-every".to_owned(), every.to_string()]);
            }
        }
        for node in &mut nodes {
            if let Some(nice) = args.background_job_nice {
                node.serve_args.extend(["--background-job-nice".to_owned(), nice.to_string()]);
            }
            if let Some(rate) = args.snapshot_max_mib_per_s {
                node.serve_args.extend(["--snapshot-max-mib-per-s".to_owned(), rate.to_string()]);
            }
        }
        let result = until_stopped(bench(args, &mut nodes, baseline)).await;
        stop_nodes(&mut nodes, result.is_err()).await;
        result
    });
    runtime.shutdown_timeout(Duration::from_secs(2));
    drop(dir);
    drop(learner_dir);
    result
}

/// Resets a process's peak RSS (`VmHWM`) to its current RSS (Linux
/// `clear_refs` 5); a kernel without it leaves the lifetime peak.
fn reset_peak_rss(pid: u32) {
    if let Err(error) = std::fs::write(format!("/proc/{pid}/clear_refs"), "5") {
        eprintln!("cannot reset the peak RSS of {pid} ({error}): the voters' peaks include the load");
    }
}

async fn bench(args: &CatchUpArgs, nodes: &mut [LocalNode], baseline: Duration) -> Result<CatchUpReport, String> {
    let leader = start_cluster(&mut nodes[..3]).await?;
    let leader_node = nodes.iter().find(|n| n.id == leader).expect("the leader is one of them");
    let started = Instant::now();
    let loaded_bytes = load(&nodes[..3], args).await?;
    eprintln!("loaded in {:.1} s", started.elapsed().as_secs_f64());
    if !args.no_snapshot {
        for node in &nodes[..3] {
            node.client.post("/v1/cluster/snapshot", &json!({})).await.map_err(|e| format!("snapshot: {e}"))?;
        }
    }
    let writes = Writes::new(args, leader_node)?;
    let base = writes.run_for(baseline).await?;
    eprintln!("baseline measured; the learner joins");
    let rss_before: BTreeMap<u64, Option<f64>> =
        nodes[..3].iter().map(|n| (n.id, n.pid().and_then(|p| status_kib(Some(p), "VmRSS")).map(kib_to_mib))).collect();
    for pid in nodes[..3].iter().filter_map(|n| n.pid()) {
        // the peak measured from here on is the join's, not the load's
        reset_peak_rss(pid);
    }

    let learner = &mut nodes[3];
    learner.spawn().map_err(|e| format!("cannot start the learner: {e}"))?;
    learner.wait_ready(Duration::from_secs(10)).await?;
    let learner_spec = json!({ "id": LEARNER, "raft": learner.raft, "api": learner.api, "blocking": false });
    let learner_client = learner.client.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let puts_done = Arc::new(AtomicU64::new(0));
    let clients = writes.start(stop.clone(), Some(puts_done.clone()))?;
    let now_leading = leader_status(&nodes[..3]).await?;
    let target = now_leading["last_log_index"].as_u64().unwrap_or(0);
    let leader_node = nodes.iter().find(|n| Some(n.id) == now_leading["id"].as_u64()).unwrap_or(&nodes[0]);
    let joined = Instant::now();
    let puts_at_join = puts_done.load(Ordering::Relaxed);
    // (since the join, puts done by then) when each phase ended
    let mut ends = Vec::new();
    leader_node.client.post("/v1/cluster/learners", &learner_spec).await.map_err(|e| format!("add learner: {e}"))?;
    let mut snapshot_installed = None;
    let mut snapshot_transferred = None;
    let caught_up = loop {
        if snapshot_installed.is_none() {
            if let Ok(status) = learner_client.status().await {
                if status["snapshot_index"].as_u64().is_some() {
                    snapshot_installed = Some(joined.elapsed());
                    ends.push(("install", joined.elapsed(), puts_done.load(Ordering::Relaxed)));
                }
            }
        }
        // the leader may change under load: ask whoever leads now
        let status = leader_status(&nodes[..3]).await?;
        let matched = status["replication"][LEARNER.to_string()]["matched"].as_u64().unwrap_or(0);
        let snapshot = &status["replication"][LEARNER.to_string()]["snapshot"];
        let (sent, total) = (snapshot["bytes_sent"].as_u64(), snapshot["bytes_total"].as_u64());
        let installing = sent.is_some_and(|sent| sent > 0 && Some(sent) >= total);
        if snapshot_transferred.is_none() && (installing || snapshot_installed.is_some()) {
            snapshot_transferred = Some(joined.elapsed());
            ends.insert(0, ("transfer", joined.elapsed(), puts_done.load(Ordering::Relaxed)));
        }
        if matched >= target {
            ends.push(("log", joined.elapsed(), puts_done.load(Ordering::Relaxed)));
            break joined.elapsed();
        }
        if joined.elapsed().as_millis() % 5_000 < POLL.as_millis() {
            eprintln!("{:.0} s: learner matched {matched} of {target}", joined.elapsed().as_secs_f64());
        }
        if joined.elapsed() > Duration::from_secs(600) {
            return Err(format!("the learner did not catch up within 600 s (matched {matched} of {target})"));
        }
        tokio::time::sleep(POLL).await;
    };
    stop.store(true, Ordering::Relaxed);
    let during = Writes::finish(clients, caught_up).await?;
    let phases = phase_rates(puts_at_join, &ends);
    let snapshot_bytes = snapshot_installed.and_then(|_| snapshot_file_bytes(leader_node));
    let peak_rss_mib = nodes
        .iter()
        .filter_map(|n| Some((n.id, (peak_rss_mib(n.pid())?, rss_before.get(&n.id).copied().flatten()))))
        .collect();
    Ok(CatchUpReport {
        loaded_bytes,
        caught_up,
        snapshot_bytes,
        snapshot_installed,
        snapshot_transferred,
        baseline: (base.0, base.1),
        during,
        phases,
        peak_rss_mib,
    })
}

/// Put/s in each phase from the puts done when each ended (`ends`, in order).
fn phase_rates(puts_at_join: u64, ends: &[(&'static str, Duration, u64)]) -> Vec<(&'static str, f64, Duration)> {
    let mut since = (Duration::ZERO, puts_at_join);
    let mut rates = Vec::new();
    for &(name, at, puts) in ends {
        let length = at.saturating_sub(since.0);
        if length.is_zero() {
            // seen ended at the same poll as the one before
            continue;
        }
        rates.push((name, puts.saturating_sub(since.1) as f64 / length.as_secs_f64().max(1e-9), length));
        since = (at, puts);
    }
    rates
}

/// The status of the node that leads now (waiting up to 10 s for one).
async fn leader_status(voters: &[LocalNode]) -> Result<serde_json::Value, String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        for node in voters {
            if let Ok(status) = node.client.status().await {
                if status["role"] == "leader" {
                    return Ok(status);
                }
            }
        }
        if Instant::now() > deadline {
            return Err("no leader for 10 s".into());
        }
        tokio::time::sleep(POLL).await;
    }
}

fn kib_to_mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// The size of the snapshot file in a node's WAL dir.
fn snapshot_file_bytes(node: &LocalNode) -> Option<u64> {
    std::fs::metadata(node.data_dir.join("wal").join("SNAPSHOT")).ok().map(|m| m.len())
}

/// Loads `--data-mib` of values, `--load-writers` closed-loop writers at a
/// time spread over the voters (a follower hands the puts of one turn to the
/// leader as one message, so many small keys load in batches); returns the
/// bytes of values written.
async fn load(voters: &[LocalNode], args: &CatchUpArgs) -> Result<u64, String> {
    let keys = (args.data_mib * 1024 * 1024).div_ceil(args.load_value_size as u64).max(1);
    let value: String = (0..args.load_value_size).map(|i| (b'a' + (i % 26) as u8) as char).collect();
    let body = Bytes::from(serde_json::to_vec(&json!({ "value": value })).map_err(|e| e.to_string())?);
    let writers = args.load_writers.max(1);
    let done = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let progress = tokio::spawn(report_load_progress(done.clone(), keys));
    let mut tasks = Vec::new();
    for w in 0..writers {
        let api = &voters[w as usize % voters.len()].api;
        let mut connection = HttpConnection::new(api, CLIENT_TIMEOUT).map_err(|e| e.to_string())?;
        let done = done.clone();
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            let (mut k, mut failures) = (w, 0);
            while k < keys {
                let status = connection.put(kv_path(&format!("load{k:010}")), body.clone()).await;
                if !status.as_ref().is_ok_and(StatusCode::is_success) {
                    // a leader change under load times a put out: the same key again
                    failures += 1;
                    if failures > LOAD_RETRIES {
                        return Err(format!("loading key {k} failed {failures} times: {status:?}"));
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
                failures = 0;
                done.fetch_add(1, Ordering::Relaxed);
                k += writers;
            }
            Ok(())
        }));
    }
    let mut loaded = Ok(());
    for task in tasks {
        loaded = loaded.and(task.await.map_err(|e| e.to_string()).and_then(|r| r));
    }
    progress.abort();
    loaded.map(|()| keys * args.load_value_size as u64)
}

/// Prints the load's progress every 10 s: 10 M keys take minutes.
async fn report_load_progress(done: Arc<std::sync::atomic::AtomicU64>, keys: u64) {
    let started = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_secs(10)).await;
        let n = done.load(Ordering::Relaxed);
        let rate = n as f64 / started.elapsed().as_secs_f64();
        eprintln!("loading: {n} of {keys} keys, {} put/s", thousands(rate));
    }
}

/// The clients' writes: small puts to random keys through the leader.
struct Writes {
    api: String,
    clients: u64,
    workload: Arc<Workload>,
    body: Bytes,
}

type ClientTasks = Vec<tokio::task::JoinHandle<Measured>>;

impl Writes {
    fn new(args: &CatchUpArgs, leader: &LocalNode) -> Result<Self, String> {
        let workload = Arc::new(Workload::new(args.keys, args.value_size));
        let body = Bytes::from(serde_json::to_vec(&json!({ "value": workload.value() })).map_err(|e| e.to_string())?);
        Ok(Self { api: leader.api.clone(), clients: args.clients, workload, body })
    }

    /// Starts the clients; they stop once `stop` is set.
    fn start(&self, stop: Arc<AtomicBool>, count: Option<Arc<AtomicU64>>) -> Result<ClientTasks, String> {
        let mut tasks = Vec::new();
        for c in 0..self.clients {
            let mut connection = HttpConnection::new(&self.api, CLIENT_TIMEOUT).map_err(|e| e.to_string())?;
            let (workload, body, stop, count) = (self.workload.clone(), self.body.clone(), stop.clone(), count.clone());
            tasks.push(tokio::spawn(async move {
                let mut rng = Workload::rng(c + 1);
                let mut m = Measured::default();
                while !stop.load(Ordering::Relaxed) {
                    let issued = Instant::now();
                    let result = connection.put(kv_path(&workload.key(&mut rng)), body.clone()).await;
                    if result.as_ref().is_ok_and(StatusCode::is_success) {
                        m.ok += 1;
                        m.latency.record(issued.elapsed());
                        if let Some(count) = &count {
                            count.fetch_add(1, Ordering::Relaxed);
                        }
                    } else {
                        m.failed += 1;
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
                m
            }));
        }
        Ok(tasks)
    }

    /// Runs the clients for `duration`: (put/s, p99 µs).
    async fn run_for(&self, duration: Duration) -> Result<(f64, u32), String> {
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = self.start(stop.clone(), None)?;
        tokio::time::sleep(duration).await;
        stop.store(true, Ordering::Relaxed);
        let (puts, p99, _) = Self::finish(tasks, duration).await?;
        Ok((puts, p99))
    }

    /// Collects stopped clients that ran for `elapsed`: (put/s, p99 µs, failures).
    async fn finish(tasks: ClientTasks, elapsed: Duration) -> Result<(f64, u32, u64), String> {
        let mut all = Measured::default();
        for task in tasks {
            all.merge(task.await.map_err(|e| format!("a client failed: {e}"))?);
        }
        let puts = all.ok as f64 / elapsed.as_secs_f64().max(1e-9);
        Ok((puts, all.latency.percentile_us(99.0), all.failed))
    }
}
