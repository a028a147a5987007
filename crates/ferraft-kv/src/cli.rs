//! The command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

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

/// `ferraft serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// This node's id (unique in the cluster, never reused).
    #[arg(long)]
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
}

/// What `ferraft ctl --help` says after the flags: the contract scripts rely on.
pub const CTL_AFTER_HELP: &str = "\
Keys are sent byte for byte: every byte but ASCII letters, digits, '-', '_' and '~'
is percent-encoded, so '/etcd/style/key', 'a/../b' and 'x/./y' are stored as typed
(a key the server cannot keep, such as '..', is refused: exit 2, never changed).

Output: text for people; with --json one JSON document on stdout, the answer or
the error object {\"error\": {\"code\": C, \"message\": M, ...}}. Errors found
by ctl itself use the codes usage, unreachable, timeout and internal.

Exit codes:
  0   success
  1   any other error
  2   usage error, bad_request, no_such_endpoint, method_not_allowed: nothing happened
  3   not_found: the key is absent
  4   conflict: a precondition failed; nothing happened
  5   no_leader: no leader is known right now; nothing happened, retry
  6   not_initialized: the node is not part of a cluster; nothing happened
  7   timeout: the outcome is unknown (the change may or may not have been applied)
  8   internal, or an unusable answer: the outcome is unknown
  9   no endpoint could be reached: nothing happened
  10  cas: the expectation did not hold; nothing changed (the answer is printed)
  11  partially_applied: a step of the membership change DID take effect, not all
      of it; the membership in force is printed: read it before retrying
  12  not_member: this node was removed from the cluster; nothing happened";

/// `ferraft ctl`.
#[derive(Debug, Args)]
#[command(after_help = CTL_AFTER_HELP)]
pub struct CtlArgs {
    /// host:port of any node's HTTP API [default: 127.0.0.1:8001].
    #[arg(long, env = "FERRAFT_ENDPOINT")]
    pub endpoint: Option<String>,
    /// Several nodes' APIs, comma-separated: a call moves on to the next one
    /// when a node cannot be reached, knows no leader or is not initialized
    /// (nothing happened there). Used after --endpoint, if both are given.
    #[arg(long, env = "FERRAFT_ENDPOINTS", value_delimiter = ',', value_name = "HOST:PORT,...")]
    pub endpoints: Vec<String>,
    /// Seconds to wait for each answer before giving up (exit 7, outcome
    /// unknown) [default: 10; 40 for init, add-learner, change, prepare,
    /// commit, abort and transfer-leader, which the server may take 30 s to finish].
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub timeout: Option<std::time::Duration>,
    /// Print the raw JSON answers, and errors as JSON error objects (for scripts).
    #[arg(long)]
    pub json: bool,
    /// The command.
    #[command(subcommand)]
    pub command: CtlCommand,
}

impl CtlArgs {
    /// The endpoints to ask, in order.
    pub fn all_endpoints(&self) -> Vec<String> {
        let mut all: Vec<String> = self.endpoint.iter().chain(&self.endpoints).cloned().collect();
        all.retain(|e| !e.trim().is_empty());
        if all.is_empty() {
            all.push("127.0.0.1:8001".into());
        }
        all
    }
}

/// A positive number of seconds.
fn parse_seconds(text: &str) -> Result<std::time::Duration, String> {
    let seconds: f64 = text.parse().map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !(seconds > 0.0 && seconds <= 86_400.0) {
        return Err(format!("{text} seconds: give more than 0 and at most 86400"));
    }
    Ok(std::time::Duration::from_secs_f64(seconds))
}

/// A node given as `ID=RAFT_ADDR,API_ADDR`.
pub type NodeSpec = String;

/// `ferraft ctl` commands.
#[derive(Debug, Subcommand)]
pub enum CtlCommand {
    /// Show the node's status (--cluster: every member's).
    Status {
        /// Ask every member (voters and learners, at their API addresses)
        /// and print one row each: id, role, term, leader, last log index,
        /// committed, applied, and whether it answered.
        #[arg(long)]
        cluster: bool,
    },
    /// List the cluster's members.
    Members,
    /// Set a key. The value is the argument; `-` reads it from stdin (as is,
    /// a trailing newline included); --file reads it from a file; --value
    /// takes it literally (for a value that is itself `-`).
    Put {
        /// The key.
        key: String,
        /// The value, or `-` to read it from stdin.
        #[arg(conflicts_with_all = ["file", "value_flag"], required_unless_present_any = ["file", "value_flag"])]
        value: Option<String>,
        /// Read the value from this file (it must be UTF-8).
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
        /// The value, taken literally: `--value -` stores a dash, `--value -5`
        /// a value that starts with one (or: `put KEY -- -5`).
        #[arg(long = "value", id = "value_flag", value_name = "VALUE", allow_hyphen_values = true)]
        value_flag: Option<String>,
    },
    /// List keys with their values, in key order: all, those under --prefix,
    /// or those in [--start, --end). One page of --limit keys unless --all.
    List {
        /// Only keys that start with this.
        #[arg(long, conflicts_with_all = ["start", "end"])]
        prefix: Option<String>,
        /// The first key (inclusive).
        #[arg(long)]
        start: Option<String>,
        /// The key where the range ends (exclusive).
        #[arg(long)]
        end: Option<String>,
        /// At most this many keys per page (the server caps it).
        #[arg(long)]
        limit: Option<u64>,
        /// Follow the pages to the end instead of printing the first one.
        #[arg(long)]
        all: bool,
        /// linearizable, lease or local [default: the server's, linearizable].
        #[arg(long)]
        consistency: Option<String>,
    },
    /// Read a key.
    Get {
        /// The key.
        key: String,
        /// linearizable, lease or local.
        #[arg(long, default_value = "linearizable")]
        consistency: String,
    },
    /// Delete a key.
    Delete {
        /// The key.
        key: String,
    },
    /// Compare-and-swap a key.
    Cas {
        /// The key.
        key: String,
        /// The value the key must hold (omit with --expect-absent).
        #[arg(long, conflicts_with = "expect_absent", allow_hyphen_values = true)]
        expect: Option<String>,
        /// The key must be absent.
        #[arg(long)]
        expect_absent: bool,
        /// The new value (omit with --delete or --value-file).
        #[arg(long, conflicts_with_all = ["delete", "value_file"], allow_hyphen_values = true)]
        value: Option<String>,
        /// Read the new value from this file (`-`: stdin).
        #[arg(long, value_name = "PATH", conflicts_with = "delete")]
        value_file: Option<PathBuf>,
        /// Delete the key if the expectation holds.
        #[arg(long)]
        delete: bool,
    },
    /// Initialize a cluster: without --node, a single-voter cluster of this node.
    Init {
        /// A voter, as ID=RAFT_ADDR,API_ADDR (repeat).
        #[arg(long = "node")]
        nodes: Vec<NodeSpec>,
        /// The new cluster's id, as hex digits (default: a random one).
        #[arg(long)]
        cluster_id: Option<String>,
    },
    /// Add a learner (by default waits, with a progress bar, until it caught up).
    AddLearner {
        /// The new node's id.
        id: u64,
        /// Its Raft address.
        #[arg(long)]
        raft: String,
        /// Its API address.
        #[arg(long)]
        api: String,
        /// Return once the learner entry is committed, without waiting for it to catch up.
        #[arg(long)]
        no_wait: bool,
        #[command(flatten)]
        promote: crate::ctl_promote::PromoteArgs,
    },
    /// DESTRUCTIVE recovery when a majority of voters is lost for good: the
    /// node at --endpoint keeps its data, moves to a new cluster id and
    /// becomes the only voter of a new cluster. Entries only the lost nodes
    /// held are lost; the lost nodes are refused from then on (bring their
    /// machines back with empty data dirs, as learners). Refused without
    /// --yes-i-know-this-drops-the-other-members.
    ForceNewCluster {
        /// The explicit confirmation.
        #[arg(long = "yes-i-know-this-drops-the-other-members")]
        confirm: bool,
    },
    /// Bring back a member whose data dir was wiped or whose machine was
    /// replaced: records its new incarnation, as a learner (a voter is
    /// demoted on the way). Start it first; promote it once caught up.
    Readmit {
        /// The member to bring back.
        id: u64,
    },
    /// Swap a voter for a caught-up learner in one change.
    ReplaceVoter {
        /// The voter to remove.
        old: u64,
        /// The learner to make a voter in its place.
        new: u64,
    },
    /// Change the membership.
    Change {
        /// The change.
        #[command(subcommand)]
        change: ChangeCommand,
        /// Keep removed voters as learners.
        #[arg(long, global = true)]
        retain: bool,
        /// Your id for this change (at most 128 bytes): repeating the command
        /// with the same id, after a timeout or a failover, returns the first
        /// outcome instead of changing the cluster again.
        #[arg(long, global = true)]
        change_id: Option<String>,
        /// Apply only if the membership in force is the entry at this log
        /// index (from `status` or `members`); else conflict, nothing happens.
        #[arg(long, global = true)]
        expect_membership_index: Option<u64>,
        /// Promote learners that are not caught up yet.
        #[arg(long, global = true)]
        force: bool,
    },
    /// Where a change made with --change-id stands: pending, proposed, joint,
    /// committed, rolled_back, superseded, failed or unknown.
    ChangeStatus {
        /// The change id given to `change --change-id`.
        change_id: String,
    },
    /// Explicit joint consensus, step 1: append the joint config.
    Prepare {
        /// The voters expected now (comma-separated).
        #[arg(long, value_delimiter = ',')]
        expect_voters: Vec<u64>,
        /// The learners expected now (comma-separated).
        #[arg(long, value_delimiter = ',')]
        expect_learners: Vec<u64>,
        /// The new voters.
        #[arg(long, value_delimiter = ',')]
        voters: Vec<u64>,
        /// The new learners.
        #[arg(long, value_delimiter = ',')]
        learners: Vec<u64>,
    },
    /// Explicit joint consensus, step 2: leave the joint config for the new one.
    Commit {
        /// The index `prepare` returned.
        prepare_index: u64,
    },
    /// Explicit joint consensus, undo: return to the old config.
    Abort {
        /// The prepare to abort, as printed by `prepare` (recommended: a retry
        /// then never aborts a later prepare). Without it, the joint config
        /// pending now.
        #[arg(long)]
        prepare_index: Option<u64>,
    },
    /// Hand leadership to another voter.
    TransferLeader {
        /// The target (default: the most up-to-date voter).
        #[arg(long)]
        to: Option<u64>,
    },
    /// Build a snapshot on this node now.
    Snapshot,
    /// Save this node's latest snapshot (all keys and values) to FILE, for a
    /// backup (`POST`s nothing; `snapshot` first for an up-to-date one).
    Backup {
        /// Where to write it (replaced atomically).
        file: PathBuf,
    },
    /// Write every key of a backup FILE into the cluster (a fresh one).
    Restore {
        /// A file written by `backup`.
        file: PathBuf,
        /// Writes in flight at once.
        #[arg(long, default_value_t = crate::ctl_backup::DEFAULT_RESTORE_CONCURRENCY)]
        concurrency: usize,
        /// Restore even though the cluster already holds keys (they are overwritten).
        #[arg(long)]
        into_non_empty: bool,
    },
}

/// Membership changes.
#[derive(Debug, Subcommand)]
pub enum ChangeCommand {
    /// Promote learners to voters.
    AddVoters {
        /// Ids.
        #[arg(required = true)]
        ids: Vec<u64>,
    },
    /// Remove voters.
    RemoveVoters {
        /// Ids.
        #[arg(required = true)]
        ids: Vec<u64>,
    },
    /// Make exactly these the voters.
    ReplaceVoters {
        /// Ids.
        #[arg(required = true)]
        ids: Vec<u64>,
    },
    /// Add learners, as ID=RAFT_ADDR,API_ADDR.
    AddNodes {
        /// Nodes.
        #[arg(required = true)]
        nodes: Vec<NodeSpec>,
    },
    /// Remove learners.
    RemoveNodes {
        /// Ids.
        #[arg(required = true)]
        ids: Vec<u64>,
    },
    /// Update members' addresses, as ID=RAFT_ADDR,API_ADDR.
    SetNodes {
        /// Nodes.
        #[arg(required = true)]
        nodes: Vec<NodeSpec>,
    },
}

/// Parses `ID=RAFT_ADDR,API_ADDR`.
pub fn parse_node(spec: &str) -> Result<(u64, crate::KvNode), String> {
    let error = || format!("bad node {spec:?}: expected ID=RAFT_ADDR,API_ADDR");
    let (id, addrs) = spec.split_once('=').ok_or_else(error)?;
    let (raft, api) = addrs.split_once(',').ok_or_else(error)?;
    let id = id.trim().parse().map_err(|_| error())?;
    if raft.is_empty() || api.is_empty() {
        return Err(error());
    }
    Ok((id, crate::KvNode { raft: raft.trim().to_owned(), api: api.trim().to_owned() }))
}
