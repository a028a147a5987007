//! The simulation loop: one seed, one cluster, one history.
//!
//! Each node is the runtime's own [`NodeHost`] over a simulated disk
//! ([`SimStore`]), KV ([`SimKv`]), transport, snapshot spawner and reply
//! channels. Every call goes through [`Simulation::call`], which lets the host
//! execute the engine's outputs exactly as under tokio, runs the safety
//! checkers on the node's new state, and acts on the host's journal.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashSet};
use std::sync::Arc;

use std::sync::Mutex;

use ferraft::engine::Engine;
use ferraft::log_id::index_of;
use ferraft::runtime::{ChunkTask, HostParts, InstallTask, MembershipCall, NodeHost, ReadTask, SnapshotTask};
use ferraft::{
    BasicNode, ChangeMembers, ClusterId, Config, FlushNotifier, LeaderId, LeaderIdMode, LogId, LogIndex, Membership,
    Message, MessageBody, NodeId, StoredMembership, Term, Vote,
};
use rand::rngs::SmallRng;
use rand::seq::IteratorRandom;
use rand::{Rng, SeedableRng};

use crate::disk::SimDisk;
use crate::history::History;
use crate::host_parts::{SimReplies, SimSpawner, SimStore, SimTransport};
use crate::invariants::{AnswerTally, Asked, Checkers, ElectionSafety, MembershipAnswers, Violation};
use crate::journal::Journal;
use crate::known_bugs::{self, KNOWN_BUG_PREFIX};
use crate::kv_machine::SimKv;
use crate::linearizability;
use crate::model::{KvState, Put};
use crate::network::Network;
use crate::options::{Fault, SimOptions};
use crate::wal_store::WalNode;
use wipes::first_incarnation;

mod change_ids;
mod host_calls;
mod membership_calls;
mod two_clusters;
mod wal_calls;
mod wipes;

pub use two_clusters::{run_two_clusters, CrossingStats, SECOND_CLUSTER_FIRST_OP};

type SimEngine = Engine<Put, BasicNode>;
type SimMessage = Message<Put, BasicNode>;
/// A simulated node: the runtime's host over simulated parts.
type SimHost = NodeHost<SimKv, BasicNode, SimReplies>;

/// Granularity of the simulated clock between events: nodes are ticked and
/// faults rolled this often.
const TICK_MS: u64 = 5;
/// Registers clients use; few, so operations on one key overlap a lot.
const KEYS: u8 = 3;
/// Most nodes down at once during the fault phase.
const MAX_DOWN: usize = 2;
/// Share of client writes that are compare-and-sets, when the run has them.
const CAS_SHARE: f64 = 0.4;

/// A run that broke a rule.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The seed that reproduces it.
    pub seed: u64,
    /// Simulated time of the failure.
    pub at_ms: u64,
    /// What went wrong.
    pub message: String,
    /// The test target that replays it (`sim_seeds`, `wiped_disks`, ...).
    pub test: &'static str,
}

impl Failure {
    /// The command that replays this seed with a trace.
    pub fn replay_command(&self) -> String {
        format!(
            "FERRAFT_SIM_START={} FERRAFT_SIM_SEEDS=1 FERRAFT_SIM_TRACE=1 cargo test -p ferraft-sim --release \
             --test {} -- --nocapture",
            self.seed, self.test
        )
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "seed {} failed at {} ms: {}\n  replay: {}",
            self.seed,
            self.at_ms,
            self.message,
            self.replay_command()
        )
    }
}

/// What a run did, to see that the seeds exercise something.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunStats {
    /// Writes proposed to a leader.
    pub writes: usize,
    /// Reads that returned.
    pub reads: usize,
    /// Distinct leader ids seen.
    pub leaders: usize,
    /// Node crashes.
    pub crashes: usize,
    /// Crashes after which the node came back with a wiped disk.
    pub wipes: usize,
    /// Writes torn by crashes (WAL runs: the simulated file systems').
    pub torn_writes: usize,
    /// Files a crash left with a page lost before a page kept (WAL runs on
    /// disks writing back out of order).
    pub reordered_files: usize,
    /// Membership entries committed.
    pub memberships: usize,
    /// Snapshots installed from a leader.
    pub snapshots_installed: usize,
    /// Messages delivered.
    pub delivered: usize,
    /// Greatest committed index.
    pub committed: LogIndex,
    /// How membership requests ended.
    pub membership_answers: AnswerTally,
    /// Commits a follower made before any other node (on its leader's flush notice).
    pub follower_first_commits: usize,
}

/// A scheduled event.
#[derive(Debug)]
enum Event {
    /// A message arrives at machine `machine`.
    Deliver {
        machine: NodeId,
        message: Box<SimMessage>,
    },
    Fsync {
        node: NodeId,
        generation: u64,
    },
    Restart {
        node: NodeId,
    },
    Heal {
        epoch: u64,
    },
    /// Crash and restart at once (lease stress).
    Bounce {
        node: NodeId,
    },
    /// A snapshot job spawned by a host runs and reports back.
    SnapshotJob {
        node: NodeId,
        generation: u64,
        task: SnapshotTask<BasicNode>,
    },
    /// The install of a received snapshot spawned by a host runs and reports back.
    InstallJob {
        node: NodeId,
        generation: u64,
        task: InstallTask<BasicNode>,
    },
    /// A log read spawned by a host for a lagging follower runs and reports back.
    ReadJob {
        node: NodeId,
        generation: u64,
        task: ReadTask<Put, BasicNode>,
    },
    /// A snapshot chunk read spawned by a leader's host runs and reports back
    /// (reads for one node may finish out of order here).
    ChunkJob {
        node: NodeId,
        generation: u64,
        task: ChunkTask<BasicNode>,
    },
}

/// Events ordered by time, then by scheduling order (determinism).
struct Scheduled {
    at: u64,
    seq: u64,
    event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// One simulated machine: its host (absent while crashed), disk and KV state.
struct SimNode {
    id: NodeId,
    host: Option<SimHost>,
    /// Shared with the host's store.
    disk: Arc<Mutex<SimDisk>>,
    /// The host's KV state (a new one each life).
    kv: Arc<Mutex<KvState>>,
    /// What the host did in the running call.
    journal: Journal,
    /// Lives so far; bumped by each crash, so stale fsyncs are ignored.
    incarnation: u64,
    fsync_pending: bool,
    seen_committed: LogIndex,
    leading_as: Option<LeaderId>,
    /// The last index the checkers saw applied.
    applied_seen: LogIndex,
    /// How fast this machine's clock runs: node milliseconds per simulated one.
    clock_rate: f64,
    /// Its disk makes each append durable before returning (the host then
    /// reports the flush itself).
    sync_on_append: bool,
    /// The index and state digest of the snapshot saved last, for a restore that follows.
    saved_snapshot: (LogIndex, u64),
    /// Entries truncated in the running batch; checked once the batch is done,
    /// because a snapshot install truncates then purges what the snapshot covers.
    truncated: Vec<LogId>,
    /// The real WAL on a simulated file system, when the run uses it.
    wal: Option<WalNode>,
    /// The planted bug `Fault::CasAlwaysWrites`.
    cas_always_writes: bool,
}

impl SimNode {
    fn engine(&self) -> Option<&SimEngine> {
        self.host.as_ref().map(|h| h.engine())
    }

    /// This machine's clock at simulated time `sim_ms` (it never runs backwards).
    fn clock(&self, sim_ms: u64) -> u64 {
        (sim_ms as f64 * self.clock_rate) as u64
    }

    /// The simulated time at which this machine's clock shows `node_ms`.
    fn sim_time(&self, node_ms: u64) -> u64 {
        (node_ms as f64 / self.clock_rate).ceil() as u64
    }

    /// What a client reading `key` here sees now.
    fn read(&self, key: u8) -> Option<u64> {
        self.kv.lock().expect("single-threaded").get(key)
    }

    /// Starts a life: a host over this node's disk, with a fresh KV that
    /// restores the disk's snapshot. Fails only on a WAL that cannot recover.
    fn start(&mut self, config: &Arc<Config>, seed: u64, now_ms: u64) -> Result<(), String> {
        self.kv = Arc::default();
        let id = self.id;
        let (store, notifier): (Box<dyn ferraft::LogStore<Put, BasicNode>>, _) = match self.wal.as_mut() {
            Some(wal) => {
                let store =
                    wal.open(&self.disk, self.journal.clone()).map_err(|e| format!("WAL recovery of n{id}: {e}"))?;
                (Box::new(store), wal.notifier())
            }
            // the simulator reports flushes itself, at each simulated fsync
            None => (
                Box::new(SimStore::new(self.disk.clone(), self.journal.clone()).syncing_on_append(self.sync_on_append)),
                FlushNotifier::new(|_| {}),
            ),
        };
        let parts = HostParts {
            network: Arc::new(SimTransport::new(self.journal.clone())),
            store,
            state_machine: SimKv::new(self.kv.clone(), self.journal.clone())
                .with_cas_always_writing(self.cas_always_writes),
            spawner: Box::new(SimSpawner::new(self.journal.clone())),
            notifier,
        };
        let host = NodeHost::new(self.id, config.clone(), parts, seed, now_ms);
        self.host = Some(host.map_err(|e| format!("WAL recovery of n{}: {e}", self.id))?);
        // the restore of the disk's snapshot, if any, is checked by `restart`
        self.journal.take();
        Ok(())
    }
}

/// Per-seed shape of the run, drawn from the seed.
#[derive(Debug, Clone)]
struct Scenario {
    voters: u64,
    nodes: u64,
    fsync_max_ms: u64,
    crash_per_tick: f64,
    partition_per_tick: f64,
    churn_per_tick: f64,
    write_per_tick: f64,
    read_per_tick: f64,
    /// Share of reads served from the leader lease instead of a read-index round.
    lease_read_share: f64,
    /// Most a node's clock runs fast or slow, as a share of real time.
    clock_drift: f64,
    /// A node whose disk is slow while faults last: this much more latency
    /// on each fsync and snapshot job.
    slow_disk: Option<(NodeId, u64)>,
}

/// The whole simulated world.
pub struct Simulation {
    options: SimOptions,
    scenario: Scenario,
    config: Arc<Config>,
    rng: SmallRng,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<Scheduled>>,
    nodes: Vec<SimNode>,
    network: Network,
    checkers: Checkers,
    history: History,
    next_op: u64,
    next_request: u64,
    faults_on: bool,
    failure: Option<String>,
    stats: RunStats,
    leaders_seen: HashSet<LeaderId>,
    /// A leader marked a follower's log as gone backwards while the
    /// follower's disk still held what it had matched: the symptom of a
    /// known engine bug (a wiped follower is rightly marked).
    reverted_seen: Option<String>,
    /// The marks `(leader, follower)` judged so far, each once when made.
    reverted_judged: HashSet<(LeaderId, NodeId)>,
    /// In a two-cluster run: which cluster this is, and traffic to the other.
    crossing: Option<two_clusters::Crossing>,
    /// Changes under change ids, to repeat and reuse.
    ids: change_ids::IdWorkload,
}

/// Runs one seed to the end: fault phase, liveness phase, final checks.
///
/// A panic inside the run (an engine assertion, say) is reported as a failure
/// of this seed rather than tearing down the whole seed set.
pub fn run_seed(options: &SimOptions) -> Result<RunStats, Failure> {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut sim = Simulation::new(options.clone());
        sim.run();
        (sim.failure.take(), sim.now, sim.stats)
    }));
    match outcome {
        Ok((None, _, stats)) => Ok(stats),
        Ok((Some(message), at_ms, _)) => Err(Failure { seed: options.seed, at_ms, message, test: options.test_name() }),
        Err(panic) => Err(Failure {
            seed: options.seed,
            at_ms: 0,
            message: panic_text(panic.as_ref()),
            test: options.test_name(),
        }),
    }
}

/// What a panic in a run said.
fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    let message = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "non-string panic".to_string());
    format!("panicked: {message}")
}

impl Simulation {
    /// Builds the cluster for `options.seed` (nothing runs yet).
    pub fn new(options: SimOptions) -> Self {
        Self::new_in(options, None)
    }

    /// Builds a world that is one side of a two-cluster run when `crossing` is given.
    fn new_in(options: SimOptions, crossing: Option<two_clusters::Crossing>) -> Self {
        let mut rng = SmallRng::seed_from_u64(options.seed);
        let voters = [1, 2, 3, 3, 3, 3, 4, 5, 5, 3][rng.gen_range(0..10)];
        let scenario = Scenario {
            voters,
            nodes: (voters + rng.gen_range(1..=2)).min(7),
            fsync_max_ms: rng.gen_range(0..=20),
            crash_per_tick: rng.gen_range(0.0..0.004),
            partition_per_tick: rng.gen_range(0.0..0.003),
            churn_per_tick: rng.gen_range(0.002..0.02),
            write_per_tick: rng.gen_range(0.05..0.3),
            read_per_tick: rng.gen_range(0.05..0.3),
            lease_read_share: 0.0,
            clock_drift: 0.0,
            slow_disk: None,
        };
        // machine faults come from their own generator, so adding them left
        // the rest of each seed's schedule as it was
        let mut machines = SmallRng::seed_from_u64(options.seed ^ 0x00C1_0C4D_D15C);
        let mut scenario = scenario;
        // the leader lease (0.9 of the shortest election timeout) is meant to
        // hold while two clocks run within a tenth of each other
        scenario.clock_drift = [0.0, 0.0, 0.01, 0.04][machines.gen_range(0..4)];
        if machines.gen_bool(0.3) {
            let node = NodeId(machines.gen_range(1..=scenario.nodes));
            scenario.slow_disk = Some((node, machines.gen_range(30..=300)));
        }
        let config = Config {
            cluster_id: crossing.as_ref().map_or(7, two_clusters::Crossing::cluster_id),
            heartbeat_interval_ms: 30,
            election_timeout_min_ms: 150,
            election_timeout_max_ms: 300,
            pre_vote: rng.gen_bool(0.8),
            check_quorum: rng.gen_bool(0.8),
            leader_id_mode: if rng.gen_bool(0.3) { LeaderIdMode::Advanced } else { LeaderIdMode::Standard },
            max_entries_per_append: [1, 3, 16, 4096][rng.gen_range(0..4)],
            // from its own generator, so every other draw of a seed stays put;
            // 64 bytes holds two or three puts
            max_append_bytes: [64, 1 << 20][SmallRng::seed_from_u64(options.seed ^ 0xB17E_5A11).gen_range(0..2)],
            max_inflight_appends: [1, 2, 8, 64][rng.gen_range(0..4)],
            snapshot_logs_since_last: [0, 8, 25, 60][rng.gen_range(0..4)],
            purge_keep_entries: [0, 2, 10][rng.gen_range(0..3)],
            // the hold that was ten times the keep before it became a setting
            catch_up_retain_entries: 0,
            snapshot_chunk_bytes: [8, 40, 1 << 20][rng.gen_range(0..3)],
            // unlimited: a drawn rate would shift every seed's draws
            snapshot_max_bytes_per_s: 0,
            // from its own generator too: one chunk at a time, or a window
            snapshot_chunks_in_flight: [1, 4, 8][SmallRng::seed_from_u64(options.seed ^ 0xC4A2_5A11).gen_range(0..3)],
            // short bounds make reverts of stuck joint configs happen in runs
            joint_exit_timeout_ms: [0, 600, 3_000, 30_000][rng.gen_range(0..4)],
            allow_log_reversion: false,
            // small caches make followers that fall behind need snapshots
            log_cache_entries: [16, 200, 10_000][rng.gen_range(0..3)],
            promote_max_lag_entries: [0, 5, 1_000][rng.gen_range(0..3)],
            // the simulator runs jobs as scheduled events, not threads
            background_job_nice: 0,
            follower_sync_inline: rng.gen_bool(0.5),
            // fixed: a drawn bound would shift every seed's draws
            remembered_change_ids: 1_000,
            broken_rule: match options.fault {
                Fault::Broken(rule) => Some(rule),
                _ => None,
            },
        };
        let network = Network::new(
            [0.0, 0.01, 0.05, 0.15][rng.gen_range(0..4)],
            [0.0, 0.02, 0.05][rng.gen_range(0..3)],
            [2, 10, 40][rng.gen_range(0..3)],
        );
        let checkers = Checkers {
            election: ElectionSafety::new(config.leader_id_mode),
            answers: MembershipAnswers::new(options.check_membership_answers),
            ..Checkers::default()
        };
        let config = Arc::new(config);
        // the WAL's machines draw from their own generator too
        let mut wal_machines = SmallRng::seed_from_u64(options.seed ^ 0x0057_A1F5);
        let wal_bug = match options.fault {
            Fault::Wal(bug) => Some(bug),
            _ => None,
        };
        let nodes = (1..=scenario.nodes)
            .map(NodeId)
            .map(|id| {
                let mut node = SimNode {
                    id,
                    host: None,
                    disk: Arc::new(Mutex::new(SimDisk::new(first_incarnation(id)))),
                    kv: Arc::default(),
                    journal: Journal::default(),
                    incarnation: 0,
                    fsync_pending: false,
                    seen_committed: LogIndex(0),
                    leading_as: None,
                    applied_seen: LogIndex(0),
                    clock_rate: 1.0 + machines.gen_range(-1.0..=1.0) * scenario.clock_drift,
                    // a lying fsync must stay the only way to durability
                    sync_on_append: options.fault != Fault::LyingFsync && machines.gen_bool(0.2) && !options.wal,
                    saved_snapshot: (LogIndex(0), 0),
                    truncated: Vec::new(),
                    wal: options.wal.then(|| WalNode::new(id, &mut wal_machines, wal_bug)),
                    cas_always_writes: options.fault == Fault::CasAlwaysWrites,
                };
                node.start(&config, rng.gen(), 0).expect("a new data dir opens");
                node
            })
            .collect();
        let mut network = network;
        let reorder = rng.gen_bool(0.3);
        scenario.lease_read_share = [0.0, 0.0, 0.3, 0.8][rng.gen_range(0..4)];
        if options.lease_stress {
            scenario.lease_read_share = 0.8;
        }
        if options.membership_stress {
            scenario.churn_per_tick = 0.05;
        }
        network.reorder = options.reorder.unwrap_or(reorder);
        let ids = change_ids::IdWorkload::new(options.seed);
        Self {
            options,
            scenario,
            config,
            rng,
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            nodes,
            network,
            checkers,
            history: History::default(),
            next_op: 1,
            next_request: 1,
            faults_on: true,
            failure: None,
            stats: RunStats::default(),
            leaders_seen: HashSet::new(),
            reverted_seen: None,
            reverted_judged: HashSet::new(),
            crossing,
            ids,
        }
    }

    fn trace(&self, what: impl FnOnce() -> String) {
        if self.options.trace {
            // in a two-cluster run, which cluster
            let side = self.crossing.as_ref().map_or(String::new(), |c| format!("c{} ", c.cluster_id()));
            eprintln!("[{:>6}ms] {side}{}", self.now, what());
        }
    }

    fn fail(&mut self, message: String) {
        if self.failure.is_none() {
            self.trace(|| format!("FAILURE: {message}"));
            self.failure = Some(message);
        }
    }

    fn check(&mut self, result: Result<(), Violation>) {
        if let Err(v) = result {
            self.fail(v.to_string());
        }
    }

    fn schedule(&mut self, delay_ms: u64, event: Event) {
        self.seq += 1;
        self.queue.push(Reverse(Scheduled { at: self.now + delay_ms, seq: self.seq, event }));
    }

    fn idx(id: NodeId) -> usize {
        id.0 as usize - 1
    }

    // ---- the run ---------------------------------------------------------------

    fn run(&mut self) {
        self.trace(|| format!("seed {} scenario {:?} config {:?}", self.options.seed, self.scenario, self.config));
        self.bootstrap();
        let chaos_end = self.options.chaos_ms;
        while self.now < chaos_end && self.failure.is_none() {
            self.advance();
            self.roll_faults();
            self.roll_clients();
        }
        self.finish();
        let (writes, reads) = self.history.counts();
        self.stats.writes = writes;
        self.stats.reads = reads;
        self.stats.leaders = self.leaders_seen.len();
        self.stats.committed = self.checkers.committed.last_index();
        self.stats.memberships = self.checkers.membership.committed_count();
        self.stats.membership_answers = self.checkers.answers.tally();
    }

    /// Once the fault phase is over: calm, liveness, answers, final checks.
    fn finish(&mut self) {
        if self.failure.is_none() {
            self.calm_down();
            self.check_liveness();
        }
        // faults stay off until every membership request is answered or overdue
        while self.failure.is_none() && self.checkers.answers.has_open() {
            self.advance();
        }
        if self.failure.is_none() {
            self.final_checks();
        }
    }

    /// The operator initializes every initial member apart, with one id.
    fn bootstrap(&mut self) {
        for id in (1..=self.scenario.voters).map(NodeId) {
            self.initialize(Self::idx(id));
        }
    }

    /// The operator initializes node `i` as an initial member, through the
    /// host (which first asks the other members, as `Raft::initialize`
    /// does); the answer is traced, and checked for operator mistakes.
    fn initialize(&mut self, i: usize) {
        let members = self.initial_members();
        let reply = self.initialize_reply(i);
        self.call(i, |host| {
            // the cluster id comes from the config (the same on every node)
            let fresh = host.engine().cluster_id().or_else(|| ClusterId::new(7)).expect("a valid cluster id");
            host.initialize(members, None, fresh, reply)
        });
    }

    /// Processes events up to the next tick, then ticks every live node.
    fn advance(&mut self) {
        let until = self.now + TICK_MS;
        while let Some(Reverse(next)) = self.queue.peek() {
            if next.at > until || self.failure.is_some() {
                break;
            }
            let Reverse(next) = self.queue.pop().expect("peeked");
            self.now = next.at;
            self.handle(next.event);
        }
        self.now = until;
        for i in 0..self.nodes.len() {
            let node_now = self.nodes[i].clock(until);
            let due = self.nodes[i].host.as_ref().is_some_and(|h| h.next_deadline_ms() <= node_now);
            if due {
                self.call(i, |h| h.tick(node_now));
            }
        }
        let result = self.checkers.answers.poll(self.now, &self.checkers.committed);
        self.check(result);
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Deliver { machine, message } => self.deliver(machine, *message),
            Event::Fsync { node, generation } => {
                let i = Self::idx(node);
                if self.nodes[i].incarnation != generation || self.nodes[i].host.is_none() {
                    return;
                }
                self.nodes[i].fsync_pending = false;
                if self.nodes[i].wal.is_some() {
                    self.step_wal(i);
                    return;
                }
                let lying = self.options.fault == Fault::LyingFsync;
                let last = self.nodes[i].disk.lock().expect("single-threaded").fsync(lying);
                if let Some(last) = last {
                    self.trace(|| format!("n{node} fsync up to {last}"));
                    self.call(i, |h| h.flushed(last));
                }
            }
            Event::SnapshotJob { node, generation, task } => {
                let i = Self::idx(node);
                if self.nodes[i].incarnation == generation {
                    // run inside the call: the power may go during the job's
                    // writes, sync or rename, as it may on a blocking thread
                    self.maybe_cut_power_in_job(i);
                    self.call(i, |h| h.snapshot_built(task.run()));
                }
            }
            Event::InstallJob { node, generation, task } => {
                let i = Self::idx(node);
                if self.nodes[i].incarnation == generation {
                    self.maybe_cut_power_in_job(i);
                    self.call(i, |h| h.snapshot_decoded(task.run()));
                }
            }
            Event::ReadJob { node, generation, task } => {
                let i = Self::idx(node);
                if self.nodes[i].incarnation == generation {
                    let read = task.run();
                    self.call(i, |h| h.entries_read(read));
                    // a WAL read waits for the writer: it may have synced
                    self.report_wal_flush(i);
                }
            }
            Event::ChunkJob { node, generation, task } => {
                let i = Self::idx(node);
                if self.nodes[i].incarnation == generation {
                    let read = task.run();
                    self.call(i, |h| h.snapshot_chunk_read(read));
                }
            }
            Event::Restart { node } => self.restart(node),
            Event::Bounce { node } => {
                self.crash(node, Some(0));
            }
            Event::Heal { epoch } => {
                self.network.heal(epoch);
                self.trace(|| format!("partition {epoch} healed"));
            }
        }
    }

    fn deliver(&mut self, machine: NodeId, message: SimMessage) {
        let (from, to) = (message.envelope.from, message.envelope.to);
        if machine == NodeId(0) || machine.0 > self.scenario.nodes || !self.network.connected(from, machine) {
            return;
        }
        let i = Self::idx(machine);
        if self.nodes[i].host.is_none() {
            return;
        }
        self.stats.delivered += 1;
        self.trace(|| format!("deliver {from}->{to} {}", describe(&message.body)));
        let now = self.nodes[i].clock(self.now);
        self.call(i, |h| {
            h.tick(now);
            h.receive(message)
        });
    }

    // ---- faults ------------------------------------------------------------------

    fn roll_faults(&mut self) {
        if !self.faults_on {
            return;
        }
        let down = self.nodes.iter().filter(|n| n.host.is_none()).count();
        if down < MAX_DOWN && self.rng.gen_bool(self.scenario.crash_per_tick) {
            let id = NodeId(self.rng.gen_range(1..=self.scenario.nodes));
            self.crash(id, None);
        }
        if self.rng.gen_bool(self.scenario.partition_per_tick) {
            let epoch = self.network.partition(self.scenario.nodes, &mut self.rng);
            self.trace(|| format!("partition {epoch}: {}", self.network.describe()));
            let heal = self.rng.gen_range(100..=2_000);
            self.schedule(heal, Event::Heal { epoch });
        }
        if self.rng.gen_bool(self.scenario.churn_per_tick) {
            self.churn();
        }
        if self.options.lease_stress && self.rng.gen_bool(0.004) {
            self.isolate_and_bounce();
        }
    }

    /// Lease stress: cut one follower off from the leader and, a moment
    /// later, crash-restart another follower at once. A leader lease must not
    /// survive the election the isolated follower may then win.
    fn isolate_and_bounce(&mut self) {
        let Some(leader) = (0..self.nodes.len()).find(|i| self.nodes[*i].engine().is_some_and(|e| e.is_leader()))
        else {
            return;
        };
        let engine = self.nodes[leader].engine().expect("leader is up");
        let leader_id = engine.id();
        let voters: Vec<NodeId> = engine
            .membership()
            .map(|m| m.membership.voter_ids().filter(|id| *id != leader_id).collect())
            .unwrap_or_default();
        let Some(&isolated) = voters.iter().choose(&mut self.rng) else { return };
        // enough followers bounce for the isolated one to win with them
        // a majority of all voters (the leader included): (n + 1) / 2 + 1 with n others
        let majority = voters.len().div_ceil(2) + 1;
        let others = voters.iter().copied().filter(|id| *id != isolated);
        let bounced: Vec<NodeId> = others.choose_multiple(&mut self.rng, majority - 1);
        let epoch = self.network.cut_pair(leader_id, isolated);
        let heal = self.rng.gen_range(400..=800);
        self.schedule(heal, Event::Heal { epoch });
        // just before the isolated follower's election timer fires
        let node = &self.nodes[Self::idx(isolated)];
        let deadline = node.engine().map_or(self.now, |e| node.sim_time(e.next_deadline_ms()));
        let bounce = deadline.saturating_sub(self.now + 1).max(1) + self.rng.gen_range(0..=30);
        for node in &bounced {
            self.schedule(bounce, Event::Bounce { node: *node });
        }
        self.trace(|| {
            format!("lease stress: n{isolated} cut from leader n{leader_id}; {bounced:?} bounce in {bounce} ms")
        });
    }

    /// Crashes `id`; it restarts after `down_ms` (random when `None`).
    fn crash(&mut self, id: NodeId, down_ms: Option<u64>) {
        let lose_vote = self.options.fault == Fault::LoseVote;
        if self.nodes[Self::idx(id)].host.is_none() {
            return;
        }
        // the power goes before the host is gone (its store must not get to
        // flush on the way down)
        self.cut_wal_power(id);
        let node = &mut self.nodes[Self::idx(id)];
        // a crash answers nobody: the replies the host held go unanswered
        node.host.take();
        node.disk.lock().expect("single-threaded").crash(lose_vote);
        node.journal.take();
        node.incarnation += 1;
        self.maybe_wipe(id);
        let node = &mut self.nodes[Self::idx(id)];
        node.fsync_pending = false;
        node.truncated.clear();
        self.stats.crashes += 1;
        let result = self.checkers.answers.observe_crash(id, &self.checkers.committed);
        self.check(result);
        self.id_calls_lost(id);
        self.trace(|| format!("n{id} crashes"));
        // some restarts are faster than an election timeout (a crash loop)
        let random_ms =
            if self.rng.gen_bool(0.3) { self.rng.gen_range(0..=20) } else { self.rng.gen_range(10..=1_500) };
        let down_ms = down_ms.unwrap_or(random_ms);
        self.schedule(down_ms, Event::Restart { node: id });
    }

    fn restart(&mut self, id: NodeId) {
        let i = Self::idx(id);
        if self.nodes[i].host.is_some() {
            return;
        }
        let seed = self.rng.gen();
        let node = &mut self.nodes[i];
        let (vote, entries) = {
            let disk = node.disk.lock().expect("single-threaded");
            let state = disk.log_state();
            (state.vote, state.entries.len())
        };
        node.seen_committed = LogIndex(0);
        node.leading_as = None;
        let now = node.clock(self.now);
        if let Err(error) = node.start(&self.config, seed, now) {
            self.fail(error);
            return;
        }
        let host = node.host.as_ref().expect("just started");
        let (applied, digest) = (index_of(host.applied()), node.kv.lock().expect("single-threaded").digest());
        node.applied_seen = applied;
        self.trace(|| format!("n{id} restarts: vote {vote:?}, {entries} entries"));
        let result = self.checkers.state_machine.observe_state(id, applied, digest);
        self.check(result);
        self.call(i, |_| ());
        // an operator whose initial member came back empty initializes it again
        let empty = self.nodes[i].engine().is_some_and(|e| e.membership().is_none());
        if id.0 <= self.scenario.voters && empty && !self.nodes[i].disk.lock().expect("single-threaded").was_wiped() {
            if self.may_initialize_again() {
                self.trace(|| format!("n{id} is initialized again"));
                self.initialize(i);
            } else {
                self.trace(|| format!("n{id} waits for the leader of the cluster that formed without it"));
            }
        }
    }

    /// Whether the operator initializes initial member `id`, back empty,
    /// again: only while the cluster never formed (its first `initialize`
    /// was cut short), as the operator saw. Once it formed, the operator lets
    /// the leader reach the member. Initializing it then is a second fault
    /// with a wipe, which no probe catches when the members that know the
    /// leader are down: the empty member elected itself with the vote of a
    /// wiped one (seed 101917 of the wipe runs; with a member that knew the
    /// leader up, seed 101372, `initialize` now refuses: `ClusterFormed`).
    fn may_initialize_again(&self) -> bool {
        let knows_leader = |disk: &SimDisk<Put>| {
            disk.vote().is_some_and(|v| v.committed) || disk.last_log_id().is_some_and(|l| l.leader_id.term > Term(0))
        };
        !self.nodes.iter().any(|n| knows_leader(&n.disk.lock().expect("single-threaded")))
    }

    fn initial_members(&self) -> BTreeMap<NodeId, BasicNode> {
        (1..=self.scenario.voters).map(NodeId).map(|id| (id, self.node_addr(id))).collect()
    }

    // ---- clients -----------------------------------------------------------------

    /// A live node to send a request to: usually a leader, sometimes anyone.
    fn pick_target(&mut self) -> Option<usize> {
        let live = (0..self.nodes.len()).filter(|i| self.nodes[*i].host.is_some());
        let leaders: Vec<usize> =
            live.clone().filter(|i| self.nodes[*i].engine().is_some_and(|e| e.is_leader())).collect();
        let leader_share = if self.options.forward_heavy { 0.3 } else { 0.9 };
        if !leaders.is_empty() && self.rng.gen_bool(leader_share) {
            return leaders.into_iter().choose(&mut self.rng);
        }
        live.choose(&mut self.rng)
    }

    fn roll_clients(&mut self) {
        if self.rng.gen_bool(self.scenario.write_per_tick) {
            self.client_write();
        }
        if self.rng.gen_bool(self.scenario.read_per_tick) {
            self.client_read();
        }
    }

    fn client_write(&mut self) -> Option<u64> {
        let i = self.pick_target()?;
        let key = self.rng.gen_range(0..KEYS);
        // a compare-and-set of what the node shows now (it may be stale)
        let expect = (self.options.cas && self.rng.gen_bool(CAS_SHARE)).then(|| self.nodes[i].read(key));
        let op = self.next_op;
        self.next_op += 1;
        self.history.invoke_cas(op, key, expect);
        let reply = self.write_reply(i, op);
        let called = self.call(i, |h| {
            // on a follower: handed to the leader, answered here once applied
            h.client_write_here(Put { expect, ..Put::write(op, key) }, reply);
            h.flush_write_batch();
        });
        // refused at once (not the leader): the answer cancelled it
        if called.is_none() || !self.history.is_invoked(op) {
            self.history.cancel_write(op);
            return None;
        }
        self.trace(|| format!("client write op {op} key {key} at n{}", i + 1));
        Some(op)
    }

    fn client_read(&mut self) {
        let Some(i) = self.pick_target() else { return };
        let key = self.rng.gen_range(0..KEYS);
        let invoke = self.history.stamp();
        if self.options.fault == Fault::StaleReads {
            let value = self.nodes[i].read(key);
            self.history.read_done(key, invoke, value);
            return;
        }
        let reply = self.read_reply(i, key, invoke);
        if self.rng.gen_bool(self.scenario.lease_read_share) {
            // a lease read needs no round trip: it is answered as soon as its index is applied
            self.trace(|| format!("client lease read key {key} at n{}", i + 1));
            if self.options.forward_heavy {
                // on a follower: the leader answers from its lease (`lease_read_here`)
                self.call(i, |h| h.read_here(true, reply));
            } else {
                self.call(i, |h| h.lease_read(reply));
            }
            return;
        }
        // on a follower: a read index asked of the leader, the read served here
        self.call(i, |h| h.read_here(false, reply));
    }

    // ---- membership churn ----------------------------------------------------------

    fn churn(&mut self) {
        self.maybe_repeat_change();
        let leaders: Vec<usize> =
            (0..self.nodes.len()).filter(|i| self.nodes[*i].engine().is_some_and(|e| e.is_leader())).collect();
        let Some(i) = leaders.into_iter().choose(&mut self.rng) else { return };
        self.probe_wiped(i);
        if self.readmit_wiped(i) {
            return;
        }
        let engine = self.nodes[i].engine().expect("leader is up");
        let Some(stored) = engine.membership().cloned() else { return };
        let m = stored.membership;
        let voters = m.voter_set();
        let learners = m.learner_set();
        let members: BTreeSet<NodeId> = m.nodes().keys().copied().collect();
        let outsiders: Vec<NodeId> = (1..=self.scenario.nodes).map(NodeId).filter(|id| !members.contains(id)).collect();
        let retain = self.rng.gen_bool(0.5);
        let request_id = self.next_request;
        self.next_request += 1;
        let change = match self.rng.gen_range(0..11) {
            0 | 1 => {
                let prefix = self.addr_prefix();
                let addr = |id: NodeId| BasicNode::new(format!("{prefix}{id}"));
                outsiders.iter().choose(&mut self.rng).map(|id| ChangeMembers::AddNodes([(*id, addr(*id))].into()))
            }
            2 => learners.iter().choose(&mut self.rng).map(|id| ChangeMembers::AddVoterIds([*id].into())),
            3 => {
                if let Some(id) = learners.iter().choose(&mut self.rng) {
                    self.request_promotion(i, request_id, *id);
                }
                None
            }
            4 => voters.iter().choose(&mut self.rng).map(|id| ChangeMembers::RemoveVoters([*id].into())),
            5 => {
                let size = self.rng.gen_range(1..=members.len().min(5));
                let pick: BTreeSet<NodeId> =
                    members.iter().copied().choose_multiple(&mut self.rng, size).into_iter().collect();
                Some(ChangeMembers::ReplaceAllVoters(pick))
            }
            6 => learners.iter().choose(&mut self.rng).map(|id| ChangeMembers::RemoveNodes([*id].into())),
            7 => {
                self.explicit_joint_step(i, &m, stored.log_id);
                None
            }
            9 => members.iter().choose(&mut self.rng).map(|id| {
                // a new address of the same machine, or (refused) another member's
                // current one: messages go to the machine an address names
                let other = members.iter().copied().choose(&mut self.rng).unwrap_or(*id);
                let addr = match m.node(other) {
                    Some(node) if self.rng.gen_bool(0.2) => node.addr.clone(),
                    _ => format!("{}{id}-{request_id}", self.addr_prefix()),
                };
                ChangeMembers::SetNodes([(*id, BasicNode::new(addr))].into())
            }),
            8 => {
                self.transfer_leader(i, &voters);
                None
            }
            _ => {
                // two changes back to back: the second waits for the first
                let a = learners.iter().choose(&mut self.rng).map(|id| ChangeMembers::AddVoterIds([*id].into()));
                let b = voters.iter().choose(&mut self.rng).map(|id| ChangeMembers::RemoveVoters([*id].into()));
                if let Some(a) = a {
                    self.request_change(i, request_id, a, retain);
                }
                b
            }
        };
        if let Some(change) = change {
            let request_id = self.next_request;
            self.next_request += 1;
            self.request_change(i, request_id, change, retain);
            if self.options.membership_stress && self.rng.gen_bool(0.3) {
                self.transfer_leader(i, &voters);
            }
        }
    }

    fn transfer_leader(&mut self, i: usize, voters: &BTreeSet<NodeId>) {
        let to = if self.rng.gen_bool(0.5) { voters.iter().copied().choose(&mut self.rng) } else { None };
        let result = self.call(i, |h| h.transfer_leader(to).map_err(|e| e.to_string()));
        self.trace(|| format!("n{} transfer leadership to {to:?}: {result:?}", i + 1));
    }

    pub(super) fn request_change(&mut self, i: usize, request_id: u64, change: ChangeMembers<BasicNode>, retain: bool) {
        let shown = format!("{change:?}");
        let asked = Asked::Change { change: change.clone(), retain };
        let handle = self.issue_membership_request(i, Some(request_id), asked);
        let change_id = self.new_change_id(&change, retain);
        if let Some(change_id) = &change_id {
            self.issue_id_call(i, request_id, change_id, &change, retain);
        }
        // unforced, a change refuses learners lagging more than the config allows
        let mut options = ferraft::ChangeOptions { retain, force: self.rng.gen_bool(0.5), ..Default::default() };
        options.guard.change_id = change_id;
        let shown_options = format!("{options:?}");
        let reply = self.membership_reply(i, request_id);
        let called = self.call(i, |h| h.membership_call(MembershipCall::Change(change, options), reply));
        self.trace(|| format!("n{} change {request_id} {shown} {shown_options}", i + 1));
        if called.is_none() {
            self.membership_call_returned(handle, None);
        }
    }

    /// Promote when ready: the leader promotes the learner once its random rule held.
    fn request_promotion(&mut self, i: usize, request_id: u64, learner: NodeId) {
        let rule = ferraft::Readiness {
            max_lag_entries: self.rng.gen_range(0..20),
            max_lag_bytes: u64::MAX,
            hold_ms: self.rng.gen_range(0..300),
        };
        self.checkers.answers.issue_promotion(self.nodes[i].id, request_id, learner);
        let reply = self.membership_reply(i, request_id);
        self.call(i, |h| h.membership_call(MembershipCall::PromoteWhenReady(learner, rule), reply));
        self.trace(|| format!("n{} promote {learner} when {rule:?} ({request_id})", i + 1));
    }

    /// Explicit joint consensus: prepare a random target, or commit / abort the pending one.
    fn explicit_joint_step(&mut self, i: usize, m: &Membership<BasicNode>, log_id: Option<LogId>) {
        if m.is_joint() {
            let abort = self.rng.gen_bool(0.4);
            let prepare_index = index_of(log_id);
            let joint = StoredMembership { log_id, membership: m.clone() };
            let asked = if abort { Asked::Abort { joint } } else { Asked::Commit { joint, keep: None } };
            let handle = self.issue_membership_request(i, None, asked);
            let reply = self.step_reply(i, handle);
            let result = self.call(i, |h| {
                if abort {
                    h.abort_membership(prepare_index, reply)
                } else {
                    h.commit_membership(prepare_index, reply)
                }
            });
            self.trace(|| {
                format!("n{} {} joint {prepare_index}: {result:?}", i + 1, if abort { "abort" } else { "commit" })
            });
            self.step_returned(i, handle, result);
            return;
        }
        let members: Vec<NodeId> = m.nodes().keys().copied().collect();
        let size = self.rng.gen_range(1..=members.len().min(5));
        let voters: BTreeSet<NodeId> =
            members.iter().copied().choose_multiple(&mut self.rng, size).into_iter().collect();
        let learners: BTreeSet<NodeId> =
            members.iter().copied().filter(|id| !voters.contains(id) && self.rng.gen_bool(0.5)).collect();
        let (expect_voters, expect_learners) = (m.voter_set(), m.learner_set());
        let asked =
            Asked::Prepare { expect_voters: expect_voters.clone(), voters: voters.clone(), learners: learners.clone() };
        let handle = self.issue_membership_request(i, None, asked);
        let reply = self.step_reply(i, handle);
        let result =
            self.call(i, |h| h.prepare_membership((&expect_voters, &expect_learners), &voters, &learners, reply));
        self.trace(|| format!("n{} prepare voters {voters:?} learners {learners:?}: {result:?}", i + 1));
        self.step_returned(i, handle, result);
    }

    // ---- the end -----------------------------------------------------------------

    /// Stops every fault and brings every node back.
    fn calm_down(&mut self) {
        self.faults_on = false;
        self.network.calm();
        if self.options.fault == Fault::NeverHeals {
            self.network.loss = 1.0;
        }
        for id in (1..=self.scenario.nodes).map(NodeId) {
            self.restart(id);
        }
        self.trace(|| "faults stop; every node is up".to_string());
        self.checkers.answers.observe_calm(self.now);
    }

    /// Once faults stop, a write must commit within `liveness_ms`.
    fn check_liveness(&mut self) {
        let deadline = self.now + self.options.liveness_ms;
        let mut pending: Option<(u64, u64)> = None;
        while self.now < deadline && self.failure.is_none() {
            self.advance();
            if let Some((op, _)) = pending {
                if self.history.is_applied(op) {
                    self.trace(|| format!("liveness write {op} committed"));
                    // let stragglers catch up a little before the final checks
                    let settle = self.now + 300;
                    while self.now < settle && self.failure.is_none() {
                        self.advance();
                    }
                    return;
                }
            }
            let retry = pending.is_none_or(|(_, at)| self.now >= at + 1_000);
            if retry && self.now.is_multiple_of(50) {
                if let Some(op) = self.client_write() {
                    pending = Some((op, self.now));
                }
            }
        }
        if self.failure.is_none() {
            let states: Vec<String> = self
                .nodes
                .iter()
                .filter_map(|n| n.engine())
                .map(|e| format!("n{} {:?} vote {} committed {:?}", e.id(), e.server_state(), e.vote(), e.committed()))
                .collect();
            let known = match (self.demoted_deadlock(), &self.reverted_seen) {
                (Some((bug, demoted)), _) => format!("{KNOWN_BUG_PREFIX}{bug} (nodes {demoted:?}): "),
                (None, Some(reverted)) => {
                    format!("{KNOWN_BUG_PREFIX}{} ({reverted}): ", known_bugs::STALE_CONFLICT_MARKS_REVERTED)
                }
                (None, None) => match self.bricked_initial_member() {
                    Some(id) => format!("{KNOWN_BUG_PREFIX}{} (n{id}): ", known_bugs::INITIALIZE_NOT_DURABLE),
                    None => String::new(),
                },
            };
            self.fail(format!(
                "{known}liveness: no write committed within {} ms after faults stopped; {}",
                self.options.liveness_ms,
                states.join("; ")
            ));
        }
    }

    /// Recognizes the known engine deadlocks of demoted nodes (see
    /// [`known_bugs::demoted_deadlock_kind`]): no leader, and some node is
    /// demoted by an uncommitted membership yet should campaign. Returns the
    /// first such node's bug and every node showing it.
    fn demoted_deadlock(&self) -> Option<(&'static str, Vec<NodeId>)> {
        let engines: Vec<&SimEngine> = self.nodes.iter().filter_map(|n| n.engine()).collect();
        if engines.iter().any(|e| e.is_leader()) {
            return None;
        }
        let demoted: Vec<(NodeId, &'static str)> =
            engines.iter().filter_map(|e| Some((e.id(), known_bugs::demoted_deadlock_kind(e)?))).collect();
        let bug = demoted.first()?.1;
        Some((bug, demoted.iter().filter(|(_, b)| *b == bug).map(|(id, _)| *id).collect()))
    }

    /// Recognizes the known engine bug where an initial member crashed after
    /// its campaign saved a vote but before its initial membership entry was
    /// durable: it has its own vote, no log, and refuses `initialize` for
    /// good. A wiped member that saved the vote of a leader it heard from
    /// before getting any entry is not that (sim seed 1418 of the
    /// forward-heavy runs with wiped disks, on the engine before its fix, was
    /// labelled this bug once the stale-conflict label no longer matched).
    fn bricked_initial_member(&self) -> Option<NodeId> {
        self.nodes.iter().find_map(|n| {
            let e = n.engine()?;
            let first_life = !n.disk.lock().expect("single-threaded").was_wiped();
            let own_vote = e.vote() != Vote::default() && e.vote().leader_id.node_id == e.id();
            let bricked = e.id().0 <= self.scenario.voters && e.membership().is_none() && own_vote && first_life;
            bricked.then(|| e.id())
        })
    }

    fn final_checks(&mut self) {
        let mut result = Ok(());
        for node in &self.nodes {
            if let Some(engine) = node.engine() {
                result =
                    result.and(self.checkers.committed.check_log(node.id, engine.log(), index_of(engine.committed())));
            }
        }
        self.check(result);
        // nodes that applied up to the same index hold the same state, however
        // they got there (log replay, snapshot install, restart)
        let mut states: BTreeMap<LogIndex, (NodeId, u64)> = BTreeMap::new();
        for node in self.nodes.iter() {
            let Some(host) = node.host.as_ref() else { continue };
            let (index, digest) = (index_of(host.applied()), node.kv.lock().expect("single-threaded").digest());
            let (first, first_digest) = *states.entry(index).or_insert((node.id, digest));
            if first_digest != digest {
                self.fail(format!(
                    "state machine safety violated: n{first} and n{} both applied up to {index} but hold different states",
                    node.id
                ));
                return;
            }
        }
        if let Err(e) = linearizability::check(&self.history.completed()) {
            self.fail(format!("linearizability: {e}"));
        }
        let result = self.checkers.answers.final_check(&self.checkers.committed);
        self.check(result);
        self.final_id_checks();
    }
}

fn describe(body: &MessageBody<Put, BasicNode>) -> String {
    match body {
        MessageBody::Vote(v) => {
            format!(
                "{} {} last {:?}",
                if v.pre_vote { "pre-vote" } else { "vote" },
                v.vote,
                v.last_log_id.map(|l| l.to_string())
            )
        }
        MessageBody::VoteReply(r) => format!("vote-reply {} granted={} pre={}", r.vote, r.granted, r.pre_vote),
        MessageBody::Append(a) => format!(
            "append {} prev {:?} n={} committed {:?} seq {}",
            a.vote,
            a.prev_log_id.map(|l| l.to_string()),
            a.entries.len(),
            a.committed.map(|l| l.to_string()),
            a.seq
        ),
        MessageBody::AppendReply(r) => format!("append-reply {} {:?} seq {}", r.vote, r.outcome, r.seq),
        MessageBody::Snapshot(s) => {
            format!(
                "snapshot {} at {:?} offset {} done {}",
                s.vote,
                s.meta.last_log_id.map(|l| l.to_string()),
                s.offset,
                s.done
            )
        }
        MessageBody::SnapshotReply(r) => format!("snapshot-reply {} next {}", r.vote, r.next_offset),
        MessageBody::TimeoutNow(t) => format!("timeout-now {}", t.vote),
        MessageBody::Probe(p) => format!("probe seq {}", p.seq),
        MessageBody::ProbeReply(r) => format!("probe-reply seq {} cluster {}", r.seq, r.cluster_id),
        MessageBody::ForwardWrite(w) => format!("forward-write id {} n={}", w.id, w.commands.len()),
        MessageBody::ForwardWriteReply(r) => format!("forward-write-reply id {} {:?}", r.id, r.outcome),
        MessageBody::ReadIndexAsk(a) => format!("read-index-ask id {} lease={}", a.id, a.lease),
        MessageBody::ReadIndexReply(r) => format!("read-index-reply id {} {:?}", r.id, r.outcome),
    }
}
