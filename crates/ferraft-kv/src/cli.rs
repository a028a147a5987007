//! The `ferraft ctl` command line (the rest of the `ferraft` command line is
//! in the `ferraft-cli` crate).

use std::path::PathBuf;

use clap::{Args, Subcommand};

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
