//! The `ferraft bench` command line.

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// `ferraft bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Which benchmark.
    #[command(subcommand)]
    pub command: BenchCommand,
}

/// The benchmarks.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Framework overhead, as openraft's `benchmarks/minimal`: in-process
    /// cluster, in-memory log, no-op state machine, direct-call network.
    Minimal(MinimalArgs),
    /// Durable replicated puts in one process, as dongting's raft benchmark:
    /// WAL with fsync, loopback TCP, the KV state machine.
    Durable(DurableArgs),
    /// A real cluster of `ferraft serve` processes driven over the HTTP API.
    Cluster(ClusterArgs),
    /// A learner joining a loaded 3-node cluster of `ferraft serve`
    /// processes while clients write: catch-up time, snapshot rate, client
    /// throughput and p99 beside a run without it, peak RSS.
    CatchUp(CatchUpArgs),
}

/// `ferraft bench catch-up`.
#[derive(Debug, Clone, Args)]
pub struct CatchUpArgs {
    /// MiB of values loaded before the learner joins.
    #[arg(long, default_value_t = 256)]
    pub data_mib: u64,
    /// Size of each loaded value in bytes.
    #[arg(long, default_value_t = 65_536)]
    pub load_value_size: usize,
    /// Closed-loop writers loading the data, spread over the three voters:
    /// many small keys (10 M of 16 bytes: `--data-mib 153 --load-value-size
    /// 16`) need hundreds to load in minutes.
    #[arg(long, default_value_t = 16)]
    pub load_writers: u64,
    /// Each node's `serve --snapshot-every` (default: serve's). A bulk load
    /// of many keys at serve's default builds a snapshot of the growing map
    /// every 100,000 puts.
    #[arg(long)]
    pub snapshot_every: Option<u64>,
    /// Do not snapshot (and purge) the voters before the join: the learner
    /// then catches up from the log.
    #[arg(long)]
    pub no_snapshot: bool,
    /// Closed-loop clients writing during the baseline and the catch-up.
    #[arg(short = 'c', long, default_value_t = 16)]
    pub clients: u64,
    /// Size of the clients' values in bytes.
    #[arg(long, default_value_t = 256)]
    pub value_size: usize,
    /// Distinct keys the clients write, at random.
    #[arg(long, default_value_t = 100_000)]
    pub keys: u64,
    /// Seconds of writes without a catch-up, measured first.
    #[arg(long, default_value_t = 5.0)]
    pub baseline: f64,
    /// Threads of each `ferraft serve` process.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub server_workers: u16,
    /// Each node's `serve --background-job-nice` (default: serve's, 10; 0
    /// runs snapshot and catch-up jobs at the nodes' own priority).
    #[arg(long)]
    pub background_job_nice: Option<u8>,
    /// Each node's `serve --snapshot-max-mib-per-s` (default: serve's, no
    /// limit): a slower transfer leaves the leader's thread to the clients.
    #[arg(long)]
    pub snapshot_max_mib_per_s: Option<u64>,
    /// Where the learner keeps its data (default: beside the voters'). On
    /// one machine every node shares one disk; a learner on another (or on
    /// tmpfs, for an experiment) shows what that sharing costs the clients.
    #[arg(long)]
    pub learner_dir: Option<PathBuf>,
}

/// `ferraft bench durable`.
#[derive(Debug, Clone, Args)]
pub struct DurableArgs {
    /// Cluster size.
    #[arg(short = 'm', long, default_value_t = 3)]
    pub members: u64,
    /// Puts the one client keeps in flight (ignored with -c).
    #[arg(long, default_value_t = 2000)]
    pub in_flight: usize,
    /// Closed-loop clients, each writing one put at a time (instead of --in-flight).
    #[arg(short = 'c', long)]
    pub clients: Option<u64>,
    /// Value size in bytes.
    #[arg(long, default_value_t = 256)]
    pub value_size: usize,
    /// Distinct keys, written at random.
    #[arg(long, default_value_t = 100_000)]
    pub keys: u64,
    /// Warm-up seconds (not measured).
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// Measured seconds.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// UNSAFE: do not fsync the WAL (nothing is durable; for comparison only).
    #[arg(long)]
    pub no_fsync: bool,
    /// Grow WAL segments by appending instead of preallocating them (safe,
    /// slower: each fsync then also commits the file size; for comparison).
    #[arg(long)]
    pub no_preallocate: bool,
    /// Build a snapshot every N applied entries; 0 = never, as dongting's
    /// benchmark (`ferraft serve` uses 100000).
    #[arg(long, default_value_t = 0)]
    pub snapshot_every: u64,
    /// Nice steps below the nodes' threads at which snapshot jobs run (see
    /// `serve --background-job-nice`); 0: at their priority.
    #[arg(long, default_value_t = 10)]
    pub background_job_nice: u8,
    /// Tokio worker threads (default: one per CPU).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Then run dongting's raft benchmark (Java) with the same settings and print the ratio.
    #[arg(long)]
    pub vs_dongting: bool,
    /// Where dongting's run.sh is (default: ../shared/peers/dongting).
    #[arg(long)]
    pub dongting_dir: Option<PathBuf>,
}

/// What `ferraft bench cluster` sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClusterWorkload {
    /// Puts only.
    Put,
    /// Gets only (of prefilled keys).
    Get,
    /// Half puts, half gets.
    Mixed,
}

/// `ferraft bench cluster`.
#[derive(Debug, Clone, Args)]
pub struct ClusterArgs {
    /// Cluster size.
    #[arg(short = 'm', long, default_value_t = 3)]
    pub members: u64,
    /// Closed-loop clients.
    #[arg(short = 'c', long, default_value_t = 64)]
    pub clients: u64,
    /// Value size in bytes.
    #[arg(long, default_value_t = 256)]
    pub value_size: usize,
    /// Distinct keys, written at random.
    #[arg(long, default_value_t = 100_000)]
    pub keys: u64,
    /// What the clients send.
    #[arg(long, value_enum, default_value_t = ClusterWorkload::Put)]
    pub workload: ClusterWorkload,
    /// Read consistency of gets: linearizable, lease or local.
    #[arg(long, default_value = "linearizable")]
    pub consistency: String,
    /// Spread the clients over all nodes (the default; kept for old scripts).
    #[arg(long, hide = true, conflicts_with = "leader_only")]
    pub spread: bool,
    /// Send every client to the leader instead of spreading them over all
    /// nodes (followers hand writes to the leader over the Raft transport).
    #[arg(long)]
    pub leader_only: bool,
    /// Also run the same load against an etcd 3.4 cluster of the same size
    /// on this machine (the `etcd` binary, e.g. Debian's `etcd-server`),
    /// through its HTTP/JSON gateway, and print both side by side.
    #[arg(long)]
    pub vs_etcd: bool,
    /// Run the table of the README instead of one load: puts at 1, 64 and
    /// 256 clients and gets at 64 (with `--vs-etcd`: etcd's next to each).
    #[arg(long)]
    pub table: bool,
    /// Threads of each `ferraft serve` process (its --workers): the nodes
    /// share this machine's cores, and one thread each costs the least CPU per put.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub server_workers: u16,
    /// Start the nodes with `--follower-sync-inline false` (followers always
    /// hand their syncs to the WAL thread), for comparison.
    #[arg(long)]
    pub no_follower_sync_inline: bool,
    /// Warm-up seconds (not measured).
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Measured seconds.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
}

/// `ferraft bench minimal`.
#[derive(Debug, Args)]
pub struct MinimalArgs {
    /// Concurrent closed-loop clients.
    #[arg(short = 'c', long, default_value_t = 256)]
    pub clients: u64,
    /// Total writes.
    #[arg(short = 'n', long, default_value_t = 200_000)]
    pub operations: u64,
    /// Cluster size.
    #[arg(short = 'm', long, default_value_t = 3)]
    pub members: u64,
    /// Writes each client keeps in flight at once (1 = one at a time).
    #[arg(short = 'b', long, default_value_t = 1)]
    pub batch: u64,
    /// Tokio worker threads.
    #[arg(long, default_value_t = 2)]
    pub server_workers: usize,
}
