//! The top of the `ferraft` command line and `ferraft serve`'s flags; `ctl`'s
//! flags are in `ferraft_kv::cli`, `bench`'s in `ferraft_bench::cli`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use ferraft_bench::cli::BenchArgs;
use ferraft_kv::cli::CtlArgs;

/// ferraft: a replicated key-value store on Raft with dynamic membership.
#[derive(Debug, Parser)]
#[command(name = "ferraft", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Top,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Top {
    /// Run a node.
    Serve(ServeArgs),
    /// Operate a cluster over its HTTP API.
    Ctl(CtlArgs),
    /// Run the embedded demonstration: five local nodes through a series of membership changes.
    Demo,
    /// Benchmarks.
    Bench(BenchArgs),
}

/// `ferraft serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// This node's id (unique in the cluster, never reused; from 1: the
    /// metrics use 0 for "no leader").
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub id: u64,
    /// Where the node keeps its log, snapshots and identity.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// host:port where peers reach this node's Raft transport.
    #[arg(long)]
    pub raft_listen: String,
    /// host:port of the HTTP API.
    #[arg(long)]
    pub api_listen: String,
    /// The Raft address this node reports about itself (default: --raft-listen).
    #[arg(long)]
    pub raft_advertise: Option<String>,
    /// The API address this node reports about itself (default: --api-listen).
    #[arg(long)]
    pub api_advertise: Option<String>,
    /// Threads that run the node's tasks (HTTP API, Raft, transport); 1 runs
    /// them all on one thread, the cheapest when several nodes share a few
    /// cores (default: one per CPU core).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub workers: Option<u16>,
    /// The most snapshot MiB a second this node sends, as leader, to each
    /// node catching up by snapshot (0: as fast as it acknowledges), so a
    /// new node does not take the bandwidth and disk the clients need.
    #[arg(long, default_value_t = 0)]
    pub snapshot_max_mib_per_s: u64,
    /// Build a snapshot (and purge the log behind it) every N applied
    /// entries; 0: only on request (default: 100000).
    #[arg(long)]
    pub snapshot_every: Option<u64>,
    /// Run snapshot encode and install and log reads for a lagging node
    /// this many nice steps below the node's other threads (Linux; capped at
    /// 19), so a catch-up takes CPU from the clients' writes only when the
    /// node leaves it idle; 0: at the node's priority.
    #[arg(long, default_value_t = 10)]
    pub background_job_nice: u8,
    /// A follower with nothing else to do syncs a log append on its own
    /// thread instead of handing it to the WAL's writer thread: two thread
    /// wake-ups fewer before its acknowledgement (false: always hand off).
    /// Only with `--workers 1`: with more, the sync would block a shared worker.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub follower_sync_inline: bool,
    /// Most HTTP API connections served at once; more wait until one
    /// closes. Keeps file descriptors for the Raft transport and the WAL
    /// (`serve` first raises its open-file limit to the hard limit).
    /// Default: the open-file limit less a quarter of it (at most 1,024).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_api_connections: Option<u64>,
}
