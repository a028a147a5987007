//! `ferraft bench durable`: dongting's raft benchmark workload on ferraft.
//!
//! `-m` nodes in this process, each with its own WAL data dir (fsync on) in a
//! temp dir and its own TCP transport listener on loopback, running the KV state
//! machine; 256-byte puts to 100k random keys, either pipelined by one client
//! (`--in-flight N` puts outstanding on the leader's handle) or by `-c` closed-loop
//! clients. Prints put/s, latency percentiles, CPU per put and peak RSS.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferraft::NodeId;
use ferraft_net::{NetConfig, TcpNetwork};
use ferraft_wal::{WalOptions, WalStore};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use super::{cpu_seconds, peak_rss_mib, seconds, thousands, Measured, Window, Workload};
use crate::cli::DurableArgs;
use ferraft_kv::kv::{Command, KvNode, KvStateMachine, KvStore};
use ferraft_kv::server::raft_config;
use ferraft_kv::{KvRaft, CLUSTER_ID};

/// What a run measured.
#[derive(Debug, Clone)]
pub struct DurableReport {
    /// Successful puts per second in the measured window.
    pub puts_per_second: f64,
    /// Successful puts in the window.
    pub puts: u64,
    /// Failed puts in the window.
    pub failed: u64,
    /// Latency percentiles in µs: p50, p90, p99, p999.
    pub latency_us: [u32; 4],
    /// Process CPU time per successful put, µs (all nodes and the client).
    pub cpu_us_per_put: Option<f64>,
    /// Peak RSS of the process, MiB.
    pub peak_rss_mib: Option<f64>,
}

impl DurableReport {
    /// The one-line summary.
    pub fn line(&self) -> String {
        let [p50, p90, p99, p999] = self.latency_us;
        let cpu = self.cpu_us_per_put.map_or("?".to_owned(), |c| format!("{c:.1}"));
        let rss = self.peak_rss_mib.map_or("?".to_owned(), |r| format!("{r:.0}"));
        let failed = if self.failed > 0 { format!(" ({} FAILED)", self.failed) } else { String::new() };
        format!(
            "ferraft: {} put/s{failed}; latency p50 {p50} µs, p90 {p90} µs, p99 {p99} µs, p999 {p999} µs; \
             CPU {cpu} µs/put; peak RSS {rss} MiB",
            thousands(self.puts_per_second)
        )
    }
}

/// The settings line printed before a run.
pub fn describe(args: &DurableArgs) -> String {
    let load = match args.clients {
        Some(c) => format!("{c} closed-loop clients"),
        None => format!("1 client, {} puts in flight", args.in_flight),
    };
    let sync = match (args.no_fsync, args.no_preallocate) {
        (true, _) => "fsync OFF (UNSAFE: nothing is durable)",
        (false, false) => "fsync on",
        (false, true) => "fsync on, segments not preallocated",
    };
    let snapshots = match args.snapshot_every {
        0 => "no snapshots".to_owned(),
        n => format!("a snapshot every {n} entries"),
    };
    format!(
        "bench durable: {} nodes in one process, WAL {sync}, {snapshots}, loopback TCP, {load}, {}-byte values to \
         {} keys, {} s warm-up + {} s measured, {} tokio workers",
        args.members,
        args.value_size,
        args.keys,
        args.warmup,
        args.duration,
        workers(args)
    )
}

fn workers(args: &DurableArgs) -> usize {
    args.workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())).max(1)
}

/// Runs the benchmark on a fresh multi-threaded runtime.
pub fn run(args: &DurableArgs) -> Result<DurableReport, String> {
    if !(1..=9).contains(&args.members) {
        return Err(format!("members must be 1..=9, got {}", args.members));
    }
    if args.in_flight == 0 || args.clients == Some(0) {
        return Err("--in-flight and -c must be at least 1".into());
    }
    let warmup = seconds("--warmup", args.warmup)?;
    let duration = seconds("--duration", args.duration)?;
    if duration.is_zero() {
        return Err("--duration must be more than 0".into());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers(args))
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start tokio: {e}"))?;
    let dir = tempfile::Builder::new().prefix("ferraft-bench-durable-").tempdir().map_err(|e| e.to_string())?;
    let result = runtime.block_on(async {
        let cluster = Cluster::start(args, dir.path()).await?;
        let measured = drive(args, &cluster.leader, warmup, duration).await;
        cluster.shutdown().await;
        measured
    });
    runtime.shutdown_timeout(Duration::from_secs(5));
    result
}

/// A node: its handle, its listener task and its transport.
type BenchNode = (KvRaft, JoinHandle<()>, Arc<TcpNetwork<Command, KvNode>>);

/// The nodes of the in-process cluster.
struct Cluster {
    nodes: Vec<BenchNode>,
    leader: KvRaft,
}

impl Cluster {
    /// Starts `args.members` nodes as `ferraft serve` assembles one (WAL, TCP
    /// transport with the node as its inbox, the KV state machine, the server's
    /// Raft settings), initializes them as one cluster and waits for a leader.
    async fn start(args: &DurableArgs, dir: &Path) -> Result<Self, String> {
        let mut nodes = Vec::new();
        let mut members = BTreeMap::new();
        for id in (1..=args.members).map(NodeId) {
            let network = Arc::new(
                TcpNetwork::<Command, KvNode>::new(NetConfig::new(0, id), tokio::runtime::Handle::current())
                    .map_err(|e| e.to_string())?,
            );
            let options = WalOptions {
                sync: !args.no_fsync,
                preallocate: !args.no_preallocate,
                ..WalOptions::new(id, CLUSTER_ID)
            };
            let wal_dir = dir.join(format!("node-{id}")).join("wal");
            let wal = WalStore::<Command, KvNode>::open(&wal_dir, options)
                .map_err(|e| format!("cannot open {}: {e}", wal_dir.display()))?;
            let config = ferraft::Config {
                snapshot_logs_since_last: args.snapshot_every,
                background_job_nice: args.background_job_nice,
                ..raft_config()
            };
            let raft = KvRaft::new(id, config, network.clone(), Box::new(wal), KvStateMachine::new(KvStore::default()))
                .await
                .map_err(|e| format!("cannot start node {id}: {e}"))?;
            let (addr, listener) =
                network.serve("127.0.0.1:0", Arc::new(raft.clone())).map_err(|e| format!("cannot listen: {e}"))?;
            members.insert(id, KvNode { raft: addr.to_string(), api: String::new() });
            nodes.push((raft, listener, network));
        }
        let first = &nodes[0].0;
        first.initialize(members).await.map_err(|e| format!("cannot initialize: {e}"))?;
        let leader_id = first.wait(Duration::from_secs(10)).for_leader().await.map_err(|e| e.to_string())?;
        let leader = nodes
            .iter()
            .map(|(raft, _, _)| raft)
            .find(|raft| raft.id() == leader_id)
            .ok_or("the leader is not one of the nodes")?
            .clone();
        // The leader's first write commits its term; wait for it before measuring.
        leader.client_write(Command::Noop).await.map_err(|e| format!("the first write failed: {e}"))?;
        Ok(Self { nodes, leader })
    }

    async fn shutdown(self) {
        for (raft, listener, network) in self.nodes {
            let _ = raft.shutdown().await;
            listener.abort();
            drop(network);
        }
    }
}

/// Drives the load, measures the window, and reads CPU and memory around it.
async fn drive(
    args: &DurableArgs,
    leader: &KvRaft,
    warmup: Duration,
    duration: Duration,
) -> Result<DurableReport, String> {
    let workload = Arc::new(Workload::new(args.keys, args.value_size));
    let window = Window::after(warmup, duration);
    let load = match args.clients {
        Some(clients) => tokio::spawn(closed_loop(leader.clone(), workload, window, clients)),
        None => tokio::spawn(pipelined(leader.clone(), workload, window, args.in_flight)),
    };
    tokio::time::sleep_until(window.start.into()).await;
    let cpu_before = cpu_seconds(None);
    let started = Instant::now();
    tokio::time::sleep_until(window.end.into()).await;
    let cpu_after = cpu_seconds(None);
    let elapsed = started.elapsed().max(Duration::from_millis(1));
    let mut measured = load.await.map_err(|e| format!("the load task failed: {e}"))?;
    let puts_per_second = measured.ok as f64 / elapsed.as_secs_f64();
    let cpu_us_per_put = match (cpu_before, cpu_after) {
        (Some(before), Some(after)) if measured.ok > 0 => Some((after - before) * 1e6 / measured.ok as f64),
        _ => None,
    };
    let l = &mut measured.latency;
    Ok(DurableReport {
        puts_per_second,
        puts: measured.ok,
        failed: measured.failed,
        latency_us: [l.percentile_us(50.0), l.percentile_us(90.0), l.percentile_us(99.0), l.percentile_us(99.9)],
        cpu_us_per_put,
        peak_rss_mib: peak_rss_mib(None),
    })
}

fn put(workload: &Workload, rng: &mut rand::rngs::SmallRng) -> Command {
    // a fresh copy per put, as a value arriving in a request would be
    Command::Put { key: workload.key(rng), value: workload.value().into() }
}

/// One client keeping `in_flight` puts outstanding: a semaphore bounds them,
/// each put is a spawned `client_write` on the leader's handle.
async fn pipelined(leader: KvRaft, workload: Arc<Workload>, window: Window, in_flight: usize) -> Measured {
    let permits = Arc::new(Semaphore::new(in_flight));
    let measured = Arc::new(Mutex::new(Measured::default()));
    let failed = Arc::new(AtomicU64::new(0));
    let mut rng = Workload::rng(0);
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else { break };
        let issued = Instant::now();
        if issued >= window.end {
            break;
        }
        let command = put(&workload, &mut rng);
        let (leader, measured, failed) = (leader.clone(), measured.clone(), failed.clone());
        tokio::spawn(async move {
            let result = leader.client_write(command).await;
            let done = Instant::now();
            drop(permit);
            if window.counts(done) {
                match result {
                    Ok(_) => {
                        let mut m = measured.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                        m.ok += 1;
                        m.latency.record(done - issued);
                    }
                    Err(_) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        });
    }
    // Wait for every outstanding put.
    let _ = permits.acquire_many(in_flight as u32).await;
    let mut m = std::mem::take(&mut *measured.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
    m.failed += failed.load(Ordering::Relaxed);
    m
}

/// `clients` tasks, each writing one put at a time.
async fn closed_loop(leader: KvRaft, workload: Arc<Workload>, window: Window, clients: u64) -> Measured {
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let (leader, workload) = (leader.clone(), workload.clone());
            tokio::spawn(async move {
                let mut rng = Workload::rng(c + 1);
                let mut m = Measured::default();
                loop {
                    let issued = Instant::now();
                    if issued >= window.end {
                        return m;
                    }
                    let result = leader.client_write(put(&workload, &mut rng)).await;
                    let done = Instant::now();
                    if window.counts(done) {
                        match result {
                            Ok(_) => {
                                m.ok += 1;
                                m.latency.record(done - issued);
                            }
                            Err(_) => m.failed += 1,
                        }
                    } else if result.is_err() {
                        // Keep a failing cluster from turning into a busy loop.
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
            })
        })
        .collect();
    let mut all = Measured::default();
    for task in tasks {
        if let Ok(m) = task.await {
            all.merge(m);
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> DurableArgs {
        DurableArgs {
            members: 3,
            in_flight: 64,
            clients: None,
            value_size: 256,
            keys: 1000,
            warmup: 0.2,
            duration: 1.0,
            no_fsync: true,
            no_preallocate: false,
            snapshot_every: 0,
            background_job_nice: 10,
            workers: Some(2),
            vs_dongting: false,
            dongting_dir: None,
        }
    }

    #[test]
    fn pipelined_smoke_run_writes_without_failures() {
        let report = run(&args()).expect("the bench runs");
        assert!(report.puts > 0, "{report:?}");
        assert_eq!(report.failed, 0, "{report:?}");
    }

    #[test]
    fn closed_loop_smoke_run_writes_without_failures() {
        let report = run(&DurableArgs { clients: Some(4), members: 1, ..args() }).expect("the bench runs");
        assert!(report.puts > 0, "{report:?}");
        assert_eq!(report.failed, 0, "{report:?}");
    }

    #[test]
    fn dongting_flags_match_the_load() {
        use crate::kv_server::dongting::java_flags;
        assert_eq!(java_flags(&DurableArgs { in_flight: 256, no_fsync: false, ..args() }), ["-Dbench.maxOut=256"]);
        assert_eq!(java_flags(&DurableArgs { in_flight: 1, no_fsync: false, ..args() }), ["-Dbench.sync=true"]);
        assert_eq!(
            java_flags(&DurableArgs { clients: Some(8), ..args() }),
            ["-Dbench.clientCount=8", "-Dbench.sync=true", "-Dbench.syncForce=false"]
        );
    }
}
