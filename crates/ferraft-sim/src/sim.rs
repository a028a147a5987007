//! The simulation loop: one seed, one cluster, one history.
//!
//! Every engine call goes through [`Simulation::call`], which runs the safety
//! checkers on the node's new state and then executes the engine's outputs in
//! order, exactly as the runtime driver does (outputs produced while executing
//! a batch run after that batch).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashSet};
use std::sync::Arc;

use ferraft::engine::{Engine, Output, Role};
use ferraft::log_id::index_of;
use ferraft::message::SnapshotChunk;
use ferraft::{
    BasicNode, ChangeMembers, Config, EntryPayload, LeaderId, LeaderIdMode, LogId, LogIndex, LogState, Membership,
    Message, MessageBody, NodeId, Snapshot, SnapshotMeta, StoredMembership, Vote,
};
use rand::rngs::SmallRng;
use rand::seq::IteratorRandom;
use rand::{Rng, SeedableRng};

use crate::disk::SimDisk;
use crate::history::History;
use crate::invariants::{AnswerTally, Asked, Checkers, ElectionSafety, MembershipAnswers, Violation};
use crate::known_bugs::{self, KNOWN_BUG_PREFIX};
use crate::linearizability;
use crate::model::{fingerprint, KvState, Put};
use crate::network::Network;
use crate::options::{Fault, SimOptions};

mod membership_calls;

type SimEngine = Engine<Put, BasicNode>;
type SimMessage = Message<Put, BasicNode>;

/// Granularity of the simulated clock between events: nodes are ticked and
/// faults rolled this often.
const TICK_MS: u64 = 5;
/// Registers clients use; few, so operations on one key overlap a lot.
const KEYS: u8 = 3;
/// Most nodes down at once during the fault phase.
const MAX_DOWN: usize = 2;

/// A run that broke a rule.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The seed that reproduces it.
    pub seed: u64,
    /// Simulated time of the failure.
    pub at_ms: u64,
    /// What went wrong.
    pub message: String,
}

impl Failure {
    /// The command that replays this seed with a trace.
    pub fn replay_command(&self) -> String {
        format!(
            "FERRAFT_SIM_START={} FERRAFT_SIM_SEEDS=1 FERRAFT_SIM_TRACE=1 cargo test -p ferraft-sim --release \
             --test sim_seeds sim_seeds -- --nocapture",
            self.seed
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
}

/// A scheduled event.
#[derive(Debug)]
enum Event {
    Deliver(Box<SimMessage>),
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

/// A read waiting for its read index to be confirmed and applied.
#[derive(Debug, Clone, Copy)]
struct PendingRead {
    request_id: u64,
    key: u8,
    invoke: u64,
    read_index: Option<LogIndex>,
}

/// One simulated machine: its engine (absent while crashed), disk and state machine.
struct SimNode {
    id: NodeId,
    engine: Option<SimEngine>,
    disk: SimDisk,
    kv: KvState,
    applied: Option<LogId>,
    snapshot: Option<Snapshot<BasicNode>>,
    receiving: Option<(SnapshotMeta<BasicNode>, Vec<u8>)>,
    /// Lives so far; bumped by each crash, so stale fsyncs are ignored.
    incarnation: u64,
    fsync_pending: bool,
    seen_committed: LogIndex,
    leading_as: Option<LeaderId>,
    reads: Vec<PendingRead>,
    /// Entries truncated in the running batch; checked once the batch is done,
    /// because a snapshot install truncates then purges what the snapshot covers.
    truncated: Vec<LogId>,
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
    /// A leader marked a follower's log as gone backwards, which no fault here
    /// causes (disks are never wiped): the symptom of a known engine bug.
    reverted_seen: Option<String>,
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
        Ok((Some(message), at_ms, _)) => Err(Failure { seed: options.seed, at_ms, message }),
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "non-string panic".to_string());
            Err(Failure { seed: options.seed, at_ms: 0, message: format!("panicked: {message}") })
        }
    }
}

impl Simulation {
    /// Builds the cluster for `options.seed` (nothing runs yet).
    pub fn new(options: SimOptions) -> Self {
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
        };
        let config = Config {
            cluster_id: 7,
            heartbeat_interval_ms: 30,
            election_timeout_min_ms: 150,
            election_timeout_max_ms: 300,
            pre_vote: rng.gen_bool(0.8),
            check_quorum: rng.gen_bool(0.8),
            leader_id_mode: if rng.gen_bool(0.3) { LeaderIdMode::Advanced } else { LeaderIdMode::Standard },
            max_entries_per_append: [1, 3, 16, 4096][rng.gen_range(0..4)],
            max_inflight_appends: [1, 2, 8, 64][rng.gen_range(0..4)],
            snapshot_logs_since_last: [0, 8, 25, 60][rng.gen_range(0..4)],
            purge_keep_entries: [0, 2, 10][rng.gen_range(0..3)],
            // the hold that was ten times the keep before it became a setting
            catch_up_retain_entries: 0,
            snapshot_chunk_bytes: [8, 40, 1 << 20][rng.gen_range(0..3)],
            // short bounds make reverts of stuck joint configs happen in runs
            joint_exit_timeout_ms: [0, 600, 3_000, 30_000][rng.gen_range(0..4)],
            allow_log_reversion: false,
            // the simulated runtime applies straight from the engine log and never trims it
            log_cache_entries: u64::MAX / 2,
            promote_max_lag_entries: [0, 5, 1_000][rng.gen_range(0..3)],
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
        let nodes = (1..=scenario.nodes)
            .map(|id| SimNode {
                id,
                engine: Some(Engine::new(id, config.clone(), &LogState::default(), rng.gen(), 0)),
                disk: SimDisk::default(),
                kv: KvState::default(),
                applied: None,
                snapshot: None,
                receiving: None,
                incarnation: 0,
                fsync_pending: false,
                seen_committed: 0,
                leading_as: None,
                reads: Vec::new(),
                truncated: Vec::new(),
            })
            .collect();
        let mut network = network;
        let reorder = rng.gen_bool(0.3);
        let mut scenario = scenario;
        scenario.lease_read_share = [0.0, 0.0, 0.3, 0.8][rng.gen_range(0..4)];
        if options.lease_stress {
            scenario.lease_read_share = 0.8;
        }
        if options.membership_stress {
            scenario.churn_per_tick = 0.05;
        }
        network.reorder = options.reorder.unwrap_or(reorder);
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
        }
    }

    fn trace(&self, what: impl FnOnce() -> String) {
        if self.options.trace {
            eprintln!("[{:>6}ms] {}", self.now, what());
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
        id as usize - 1
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
        let (writes, reads) = self.history.counts();
        self.stats.writes = writes;
        self.stats.reads = reads;
        self.stats.leaders = self.leaders_seen.len();
        self.stats.committed = self.checkers.committed.last_index();
        self.stats.memberships = self.checkers.membership.committed_count();
        self.stats.membership_answers = self.checkers.answers.tally();
    }

    fn bootstrap(&mut self) {
        let membership = self.initial_membership();
        for id in 1..=self.scenario.voters {
            let m = membership.clone();
            if let Some(Err(e)) = self.call(Self::idx(id), |e| e.initialize(m)) {
                self.fail(format!("node {id} failed to initialize: {e}"));
            }
        }
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
            let due = self.nodes[i].engine.as_ref().is_some_and(|e| e.next_deadline_ms() <= until);
            if due {
                self.call(i, |e| e.on_tick(until));
            }
        }
        let result = self.checkers.answers.poll(self.now, &self.checkers.committed);
        self.check(result);
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Deliver(message) => self.deliver(*message),
            Event::Fsync { node, generation } => {
                let i = Self::idx(node);
                if self.nodes[i].incarnation != generation || self.nodes[i].engine.is_none() {
                    return;
                }
                self.nodes[i].fsync_pending = false;
                let lying = self.options.fault == Fault::LyingFsync;
                if let Some(last) = self.nodes[i].disk.fsync(lying) {
                    self.call(i, |e| e.on_log_flushed(last));
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

    fn deliver(&mut self, message: SimMessage) {
        let (from, to) = (message.envelope.from, message.envelope.to);
        if to == 0 || to > self.scenario.nodes || !self.network.connected(from, to) {
            return;
        }
        let i = Self::idx(to);
        if self.nodes[i].engine.is_none() {
            return;
        }
        self.stats.delivered += 1;
        self.trace(|| format!("deliver {from}->{to} {}", describe(&message.body)));
        let now = self.now;
        self.call(i, |e| {
            e.on_tick(now);
            e.on_message(message)
        });
    }

    // ---- engine calls and outputs ------------------------------------------------

    /// Calls the engine of node `i` (if up), checks, and executes its outputs.
    fn call<R>(&mut self, i: usize, f: impl FnOnce(&mut SimEngine) -> R) -> Option<R> {
        let result = self.call_nested(i, f)?;
        while let Some(engine) = self.nodes[i].engine.as_mut() {
            let outputs = engine.take_outputs();
            if outputs.is_empty() {
                break;
            }
            for output in outputs {
                if self.nodes[i].engine.is_none() {
                    break;
                }
                self.execute(i, output);
            }
        }
        let truncated = std::mem::take(&mut self.nodes[i].truncated);
        if !truncated.is_empty() {
            let result = self.checkers.committed.observe_truncate(self.nodes[i].id, truncated);
            self.check(result);
        }
        Some(result)
    }

    /// Calls the engine and checks, leaving its outputs for the running batch.
    fn call_nested<R>(&mut self, i: usize, f: impl FnOnce(&mut SimEngine) -> R) -> Option<R> {
        let engine = self.nodes[i].engine.as_mut()?;
        let before = engine.membership().and_then(|m| m.log_id);
        let result = f(engine);
        self.observe(i, before);
        Some(result)
    }

    /// Runs every checker on node `i`'s state after an engine call.
    fn observe(&mut self, i: usize, membership_before: Option<LogId>) {
        let node = &mut self.nodes[i];
        let Some(engine) = node.engine.as_ref() else { return };
        let id = node.id;
        let checkers = &mut self.checkers;
        let mut result = engine.check_invariants().map_err(|e| Violation { rule: "engine invariants", detail: e });
        if result.is_ok() && engine.is_leader() {
            let leader_id = engine.vote().leader_id;
            result = checkers.election.observe_leader(id, node.incarnation, leader_id);
            if self.reverted_seen.is_none() {
                if let Role::Leader(leader) = engine.role() {
                    if let Some((peer, _)) = leader.progress.iter().find(|(_, p)| p.reverted) {
                        self.reverted_seen =
                            Some(format!("leader {leader_id} marked n{peer} reverted at {} ms", self.now));
                    }
                }
            }
            if result.is_ok() && node.leading_as != Some(leader_id) {
                node.leading_as = Some(leader_id);
                self.leaders_seen.insert(leader_id);
                result =
                    checkers.leader_completeness.observe_new_leader(id, leader_id, engine.log(), &checkers.committed);
            }
        }
        let committed = engine.committed();
        if result.is_ok() && index_of(committed) > node.seen_committed {
            let term = engine.vote().term();
            for index in node.seen_committed + 1..=index_of(committed) {
                let Some(entry) = engine.log().get(index) else {
                    if let Some(log_id) = engine.log().log_id_at(index) {
                        result = result.and(checkers.committed.observe_commit(id, log_id, term));
                    }
                    continue;
                };
                result = result.and(checkers.committed.observe_commit(id, entry.log_id, term));
                if let EntryPayload::Membership(m) = &entry.payload {
                    result = result.and(checkers.membership.observe_committed(index, m.configs()));
                }
            }
            node.seen_committed = index_of(committed);
            if result.is_ok() && engine.is_leader() {
                let log_id = committed.expect("advanced");
                let holders: BTreeSet<NodeId> =
                    self.nodes.iter().filter(|n| n.disk.durably_holds(log_id)).map(|n| n.id).collect();
                let engine = self.nodes[i].engine.as_ref().expect("checked");
                let now = engine.membership().map(|m| m.membership.configs().to_vec()).unwrap_or_default();
                let before = engine
                    .log()
                    .membership_at(index_of(membership_before))
                    .map(|m| m.membership.configs().to_vec())
                    .unwrap_or_else(|| now.clone());
                result = self.checkers.membership.observe_leader_commit(id, log_id, &[&before, &now], &holders);
            }
        }
        self.check(result);
    }

    fn execute(&mut self, i: usize, output: Output<Put, BasicNode>) {
        let id = self.nodes[i].id;
        match output {
            Output::SaveClusterId(cluster_id) => self.nodes[i].disk.save_cluster_id(cluster_id),
            Output::SaveVote(vote) => self.nodes[i].disk.save_vote(vote),
            Output::AppendLog(entries) => self.append(i, entries),
            Output::TruncateLog(since) => {
                let removed = self.nodes[i].disk.truncate(since);
                self.trace(|| format!("n{id} truncate from {since}: {} entries", removed.len()));
                self.nodes[i].truncated.extend(removed);
            }
            Output::PurgeLog(upto) => {
                let node = &mut self.nodes[i];
                node.disk.purge(upto);
                node.truncated.retain(|t| t.index > upto.index);
            }
            Output::SaveCommitted(committed) => self.nodes[i].disk.save_committed(committed),
            Output::Send(message) => self.send(message),
            Output::Apply { upto } => self.apply(i, upto),
            Output::BuildSnapshot => {
                self.build_snapshot(i);
            }
            Output::ReadEntries { to, vote, from, end } => {
                // the runtime reads on another thread; here the answer comes at once
                let entries = self.nodes[i].disk.read_range(from..end);
                if let Some(engine) = self.nodes[i].engine.as_mut() {
                    engine.on_entries_read(to, vote, from, entries);
                }
            }
            Output::SendSnapshotChunk { to, offset, seq, vote } => self.send_snapshot_chunk(i, to, offset, seq, vote),
            Output::ReceiveSnapshotChunk { from, chunk } => self.receive_snapshot_chunk(i, from, chunk),
            Output::ReadReady { request_id, read_index } => {
                if let Some(read) = self.nodes[i].reads.iter_mut().find(|r| r.request_id == request_id) {
                    read.read_index = Some(read_index);
                }
                self.complete_reads(i);
            }
            Output::ReadFailed { request_id } => self.nodes[i].reads.retain(|r| r.request_id != request_id),
            Output::LeadershipLost => {
                self.trace(|| format!("n{id} lost leadership"));
                let result = self.checkers.answers.observe_leadership_lost(id, &self.checkers.committed);
                self.check(result);
            }
            Output::MembershipDone { request_id, result } => {
                self.trace(|| match &result {
                    Ok(m) => format!("n{id} membership request {request_id} done: {}", m.membership),
                    Err(e) => format!("n{id} membership request {request_id} failed: {e}"),
                });
                let result = self.checkers.answers.observe_done(id, request_id, &result);
                self.check(result);
            }
            Output::ProbeAnswered { from, cluster_id, .. } => {
                self.trace(|| format!("n{id} probe answered by n{from}: cluster {cluster_id:?}"))
            }
        }
    }

    fn append(&mut self, i: usize, entries: Vec<crate::disk::SimEntry>) {
        let id = self.nodes[i].id;
        let Some(first) = entries.first() else { return };
        let last_on_disk = self.nodes[i].disk.last_log_id();
        let mut prev = if index_of(last_on_disk) + 1 == first.log_id.index { Some(last_on_disk) } else { None };
        let mut result = Ok(());
        for entry in &entries {
            result = result.and(self.checkers.log_matching.observe_append(
                id,
                entry.log_id,
                fingerprint(&entry.payload),
                prev,
            ));
            prev = Some(Some(entry.log_id));
            if let EntryPayload::Membership(next) = &entry.payload {
                result = result.and(self.check_proposal(i, entry.log_id, next));
                let own_prev = self.own_proposal_base(i, entry.log_id).map(|prev| prev.membership.clone());
                self.checkers.answers.observe_append(entry.log_id, next, own_prev.as_ref());
            }
        }
        self.check(result);
        self.trace(|| {
            let last = entries.last().map(|e| e.log_id.to_string()).unwrap_or_default();
            format!("n{id} append {}..{last} ({} entries)", entries[0].log_id, entries.len())
        });
        let node = &mut self.nodes[i];
        node.disk.append(&entries);
        if !node.fsync_pending {
            node.fsync_pending = true;
            let generation = node.incarnation;
            let delay = self.rng.gen_range(0..=self.scenario.fsync_max_ms);
            self.schedule(delay, Event::Fsync { node: id, generation });
        }
    }

    /// The membership before `log_id` if node `i` appended it as its own proposal (as leader).
    fn own_proposal_base(&self, i: usize, log_id: LogId) -> Option<&StoredMembership<BasicNode>> {
        let engine = self.nodes[i].engine.as_ref()?;
        if !engine.is_leader() || engine.vote().leader_id != log_id.leader_id {
            return None;
        }
        engine.log().membership_at(log_id.index - 1)
    }

    /// Checks a membership entry this node proposed as leader.
    fn check_proposal(&self, i: usize, log_id: LogId, next: &Membership<BasicNode>) -> Result<(), Violation> {
        let node = &self.nodes[i];
        let Some(prev) = self.own_proposal_base(i, log_id) else { return Ok(()) };
        self.trace(|| format!("n{} proposes membership {next} at {log_id}", node.id));
        let Some(engine) = node.engine.as_ref() else { return Ok(()) };
        let last_committed = engine.log().membership_at(index_of(node.disk.committed()));
        self.checkers.membership.observe_proposal(
            log_id.leader_id,
            log_id.index,
            next.configs(),
            (index_of(prev.log_id), prev.membership.configs()),
            last_committed.map(|m| m.membership.configs()),
            node.disk.committed(),
        )
    }

    fn send(&mut self, mut message: SimMessage) {
        if self.options.fault == Fault::ForgeAckSender
            && matches!(message.body, MessageBody::AppendReply(_))
            && self.rng.gen_bool(0.2)
        {
            let to = message.envelope.to;
            let other = (1..=self.scenario.nodes).filter(|id| *id != to).choose(&mut self.rng);
            if let Some(other) = other {
                message.envelope.from = other;
            }
        }
        let (from, to) = (message.envelope.from, message.envelope.to);
        for at in self.network.plan(from, to, self.now, &mut self.rng) {
            self.schedule(at - self.now, Event::Deliver(Box::new(message.clone())));
        }
    }

    fn apply(&mut self, i: usize, upto: LogId) {
        let node = &mut self.nodes[i];
        let Some(engine) = node.engine.as_ref() else { return };
        let mut result = Ok(());
        for index in index_of(node.applied) + 1..=upto.index {
            let Some(entry) = engine.log().get(index) else {
                result = Err(Violation {
                    rule: "apply",
                    detail: format!("node {} asked to apply {index}, which is not in its log", node.id),
                });
                break;
            };
            result = result.and(self.checkers.state_machine.observe_apply(
                node.id,
                entry.log_id,
                fingerprint(&entry.payload),
            ));
            if let EntryPayload::Normal(put) = &entry.payload {
                node.kv.apply(put);
                self.history.write_applied(put.op);
            }
            node.applied = Some(entry.log_id);
        }
        self.check(result);
        self.complete_reads(i);
    }

    fn complete_reads(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let applied = index_of(node.applied);
        let (ready, waiting): (Vec<PendingRead>, Vec<PendingRead>) =
            node.reads.drain(..).partition(|r| r.read_index.is_some_and(|ri| ri <= applied));
        node.reads = waiting;
        for read in ready {
            let value = self.nodes[i].kv.get(read.key);
            self.history.read_done(read.key, read.invoke, value);
        }
    }

    /// Snapshots the state machine at its applied point, as the driver does.
    fn build_snapshot(&mut self, i: usize) -> Option<Snapshot<BasicNode>> {
        let node = &mut self.nodes[i];
        let engine = node.engine.as_mut()?;
        let last = node.applied;
        let membership = engine.log().membership_at(index_of(last)).cloned().or_else(|| engine.membership().cloned());
        let Some(membership) = membership else {
            engine.on_snapshot_failed();
            return None;
        };
        if let Some(existing) = node.snapshot.clone().filter(|s| s.meta.last_log_id == last) {
            self.call_nested(i, |e| e.on_snapshot_saved(last));
            return Some(existing);
        }
        let snapshot = Snapshot { meta: SnapshotMeta { last_log_id: last, membership }, data: node.kv.encode() };
        node.disk.save_snapshot(snapshot.clone());
        node.snapshot = Some(snapshot.clone());
        let (id, digest) = (node.id, node.kv.digest());
        let result = self.checkers.state_machine.observe_state(id, index_of(last), digest);
        self.check(result);
        self.trace(|| format!("n{id} built snapshot at {}", index_of(last)));
        self.call_nested(i, |e| e.on_snapshot_saved(last));
        Some(snapshot)
    }

    fn send_snapshot_chunk(&mut self, i: usize, to: NodeId, offset: u64, seq: u64, vote: Vote) {
        let node = &self.nodes[i];
        let Some(engine) = node.engine.as_ref() else { return };
        let snapshot = match &node.snapshot {
            Some(s) if index_of(s.meta.last_log_id) >= engine.snapshot_must_cover() => Some(s.clone()),
            _ => self.build_snapshot(i),
        };
        let Some(snapshot) = snapshot else { return };
        let Some(engine) = self.nodes[i].engine.as_ref() else { return };
        let chunk = SnapshotChunk::cut(&snapshot, offset, engine.config_chunk_bytes(), vote, seq);
        let message = Message { envelope: engine.envelope(to), body: MessageBody::Snapshot(chunk) };
        self.send(message);
    }

    /// Reassembles chunks like the runtime's receiver; installs a complete snapshot.
    fn receive_snapshot_chunk(&mut self, i: usize, from: NodeId, chunk: SnapshotChunk<BasicNode>) {
        let node = &mut self.nodes[i];
        let (seq, last) = (chunk.seq, chunk.meta.last_log_id);
        if chunk.offset == 0 {
            node.receiving = Some((chunk.meta.clone(), Vec::new()));
        }
        let next = match node.receiving.as_mut() {
            None => Some(0),
            Some((meta, _)) if *meta != chunk.meta => Some(0),
            Some((_, buffer)) if chunk.offset != buffer.len() as u64 => Some(buffer.len() as u64),
            Some((_, buffer)) => {
                buffer.extend_from_slice(&chunk.data);
                (!chunk.done).then_some(buffer.len() as u64)
            }
        };
        if let Some(next) = next {
            self.call_nested(i, |e| e.on_snapshot_chunk_stored(from, last, next, seq));
            return;
        }
        let (meta, data) = node.receiving.take().expect("complete transfer");
        let snapshot = Snapshot { meta: meta.clone(), data: data.into() };
        node.disk.save_snapshot(snapshot.clone());
        node.kv = KvState::decode(&snapshot.data);
        node.applied = meta.last_log_id;
        node.snapshot = Some(snapshot);
        let (id, digest) = (node.id, node.kv.digest());
        self.stats.snapshots_installed += 1;
        self.trace(|| format!("n{id} installs snapshot at {} from n{from}", index_of(last)));
        let result = self.checkers.state_machine.observe_state(id, index_of(last), digest);
        self.check(result);
        self.call_nested(i, |e| e.on_snapshot_installed(from, meta, seq));
        self.complete_reads(i);
    }

    // ---- faults ------------------------------------------------------------------

    fn roll_faults(&mut self) {
        if !self.faults_on {
            return;
        }
        let down = self.nodes.iter().filter(|n| n.engine.is_none()).count();
        if down < MAX_DOWN && self.rng.gen_bool(self.scenario.crash_per_tick) {
            let id = self.rng.gen_range(1..=self.scenario.nodes);
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
        let Some(leader) =
            (0..self.nodes.len()).find(|i| self.nodes[*i].engine.as_ref().is_some_and(|e| e.is_leader()))
        else {
            return;
        };
        let engine = self.nodes[leader].engine.as_ref().expect("leader is up");
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
        let deadline = self.nodes[Self::idx(isolated)].engine.as_ref().map_or(self.now, |e| e.next_deadline_ms());
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
        let node = &mut self.nodes[Self::idx(id)];
        if node.engine.take().is_none() {
            return;
        }
        node.disk.crash(lose_vote);
        node.incarnation += 1;
        node.reads.clear();
        node.receiving = None;
        node.fsync_pending = false;
        self.stats.crashes += 1;
        let result = self.checkers.answers.observe_crash(id, &self.checkers.committed);
        self.check(result);
        self.trace(|| format!("n{id} crashes"));
        // some restarts are faster than an election timeout (a crash loop)
        let random_ms =
            if self.rng.gen_bool(0.3) { self.rng.gen_range(0..=20) } else { self.rng.gen_range(10..=1_500) };
        let down_ms = down_ms.unwrap_or(random_ms);
        self.schedule(down_ms, Event::Restart { node: id });
    }

    fn restart(&mut self, id: NodeId) {
        let i = Self::idx(id);
        if self.nodes[i].engine.is_some() {
            return;
        }
        let seed = self.rng.gen();
        let node = &mut self.nodes[i];
        let state = node.disk.log_state();
        node.snapshot = state.snapshot.clone();
        node.kv = state.snapshot.as_ref().map(|s| KvState::decode(&s.data)).unwrap_or_default();
        node.applied = state.snapshot.as_ref().and_then(|s| s.meta.last_log_id);
        node.seen_committed = 0;
        node.leading_as = None;
        node.engine = Some(Engine::new(id, self.config.clone(), &state, seed, self.now));
        let (applied, digest) = (index_of(node.applied), node.kv.digest());
        self.trace(|| format!("n{id} restarts: vote {:?}, {} entries", state.vote, state.entries.len()));
        let result = self.checkers.state_machine.observe_state(id, applied, digest);
        self.check(result);
        self.call(i, |_| ());
        // an operator whose initial member came back empty initializes it again
        let empty = self.nodes[i].engine.as_ref().is_some_and(|e| e.membership().is_none());
        if id <= self.scenario.voters && empty {
            let membership = self.initial_membership();
            let result = self.call(i, |e| e.initialize(membership).map_err(|e| e.to_string()));
            self.trace(|| format!("n{id} initialized again: {result:?}"));
        }
    }

    fn initial_membership(&self) -> Membership<BasicNode> {
        let nodes: BTreeMap<NodeId, BasicNode> = (1..=self.scenario.voters).map(|id| (id, node_addr(id))).collect();
        Membership::new_uniform(nodes).expect("valid initial membership")
    }

    // ---- clients -----------------------------------------------------------------

    /// A live node to send a request to: usually a leader, sometimes anyone.
    fn pick_target(&mut self) -> Option<usize> {
        let live = (0..self.nodes.len()).filter(|i| self.nodes[*i].engine.is_some());
        let leaders: Vec<usize> =
            live.clone().filter(|i| self.nodes[*i].engine.as_ref().is_some_and(|e| e.is_leader())).collect();
        if !leaders.is_empty() && self.rng.gen_bool(0.9) {
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
        let op = self.next_op;
        self.next_op += 1;
        self.history.invoke_write(op, key);
        let accepted = self.call(i, |e| e.propose([Put { op, key, value: op }])).is_some_and(|r| r.is_ok());
        if !accepted {
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
            let value = self.nodes[i].kv.get(key);
            self.history.read_done(key, invoke, value);
            return;
        }
        let request_id = self.next_request;
        self.next_request += 1;
        if self.rng.gen_bool(self.scenario.lease_read_share) {
            // a lease read needs no round trip: it may run as soon as its index is applied
            let lease = self.call(i, |e| e.lease_read());
            if let Some(Ok(read_index)) = lease {
                self.trace(|| format!("client lease read key {key} at n{} index {read_index}", i + 1));
                let read = PendingRead { request_id, key, invoke, read_index: Some(read_index) };
                self.nodes[i].reads.push(read);
                self.complete_reads(i);
            }
            return;
        }
        self.nodes[i].reads.push(PendingRead { request_id, key, invoke, read_index: None });
        let accepted = self.call(i, |e| e.read_index(request_id)).is_some_and(|r| r.is_ok());
        if !accepted {
            self.nodes[i].reads.retain(|r| r.request_id != request_id);
        }
    }

    // ---- membership churn ----------------------------------------------------------

    fn churn(&mut self) {
        let leaders: Vec<usize> =
            (0..self.nodes.len()).filter(|i| self.nodes[*i].engine.as_ref().is_some_and(|e| e.is_leader())).collect();
        let Some(i) = leaders.into_iter().choose(&mut self.rng) else { return };
        let engine = self.nodes[i].engine.as_ref().expect("leader is up");
        let Some(stored) = engine.membership().cloned() else { return };
        let m = stored.membership;
        let voters = m.voter_set();
        let learners = m.learner_set();
        let members: BTreeSet<NodeId> = m.nodes().keys().copied().collect();
        let outsiders: Vec<NodeId> = (1..=self.scenario.nodes).filter(|id| !members.contains(id)).collect();
        let retain = self.rng.gen_bool(0.5);
        let request_id = self.next_request;
        self.next_request += 1;
        let change = match self.rng.gen_range(0..11) {
            0 | 1 => {
                outsiders.iter().choose(&mut self.rng).map(|id| ChangeMembers::AddNodes([(*id, node_addr(*id))].into()))
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
                // a new address, or (refused) another member's
                let other = members.iter().copied().choose(&mut self.rng).unwrap_or(*id);
                let addr = if self.rng.gen_bool(0.8) { format!("n{id}-{request_id}") } else { format!("n{other}") };
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
        let result = self.call(i, |e| e.transfer_leader(to).map_err(|e| e.to_string()));
        self.trace(|| format!("n{} transfer leadership to {to:?}: {result:?}", i + 1));
    }

    fn request_change(&mut self, i: usize, request_id: u64, change: ChangeMembers<BasicNode>, retain: bool) {
        let shown = format!("{change:?}");
        let asked = Asked::Change { change: change.clone(), retain };
        let handle = self.issue_membership_request(i, Some(request_id), asked);
        // unforced, a change refuses learners lagging more than the config allows
        let options = ferraft::ChangeOptions { retain, force: self.rng.gen_bool(0.5), ..Default::default() };
        let shown_options = format!("{options:?}");
        let result = self.call(i, |e| e.change_membership_with(request_id, change, options));
        self.trace(|| format!("n{} change {request_id} {shown} {shown_options}: {result:?}", i + 1));
        self.membership_call_returned(i, handle, result.map(|r| r.map(|()| None)));
    }

    /// Promote when ready: the leader promotes the learner once its random rule held.
    fn request_promotion(&mut self, i: usize, request_id: u64, learner: NodeId) {
        let rule = ferraft::Readiness {
            max_lag_entries: self.rng.gen_range(0..20),
            max_lag_bytes: u64::MAX,
            hold_ms: self.rng.gen_range(0..300),
        };
        self.checkers.answers.issue_promotion(self.nodes[i].id, request_id, learner);
        let result = self.call(i, |e| e.promote_when_ready(request_id, learner, rule).map_err(|e| e.to_string()));
        self.trace(|| format!("n{} promote {learner} when {rule:?} ({request_id}): {result:?}", i + 1));
    }

    /// Explicit joint consensus: prepare a random target, or commit / abort the pending one.
    fn explicit_joint_step(&mut self, i: usize, m: &Membership<BasicNode>, log_id: Option<LogId>) {
        if m.is_joint() {
            let abort = self.rng.gen_bool(0.4);
            let prepare_index = index_of(log_id);
            let joint = StoredMembership { log_id, membership: m.clone() };
            let asked = if abort { Asked::Abort { joint } } else { Asked::Commit { joint, keep: None } };
            let handle = self.issue_membership_request(i, None, asked);
            let result = self.call(i, |e| {
                if abort {
                    e.abort_membership(prepare_index)
                } else {
                    e.commit_membership(prepare_index)
                }
            });
            self.trace(|| {
                format!("n{} {} joint {prepare_index}: {result:?}", i + 1, if abort { "abort" } else { "commit" })
            });
            self.membership_call_returned(i, handle, result.map(|r| r.map(Some)));
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
        let result = self.call(i, |e| e.prepare_membership(&expect_voters, &expect_learners, &voters, &learners));
        self.trace(|| format!("n{} prepare voters {voters:?} learners {learners:?}: {result:?}", i + 1));
        self.membership_call_returned(i, handle, result.map(|r| r.map(Some)));
    }

    // ---- the end -----------------------------------------------------------------

    /// Stops every fault and brings every node back.
    fn calm_down(&mut self) {
        self.faults_on = false;
        self.network.calm();
        if self.options.fault == Fault::NeverHeals {
            self.network.loss = 1.0;
        }
        for id in 1..=self.scenario.nodes {
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
                .filter_map(|n| n.engine.as_ref())
                .map(|e| format!("n{} {:?} vote {} committed {:?}", e.id(), e.server_state(), e.vote(), e.committed()))
                .collect();
            let known = match (self.demoted_deadlock(), &self.reverted_seen) {
                (Some(demoted), _) => {
                    format!("{KNOWN_BUG_PREFIX}{} (nodes {demoted:?}): ", known_bugs::DEMOTED_BY_UNCOMMITTED_MEMBERSHIP)
                }
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

    /// Recognizes the known engine deadlock (see `tests/engine_bugs.rs`): no
    /// leader, and some node is a voter of its committed membership but not of
    /// the uncommitted one in force, so it never campaigns.
    fn demoted_deadlock(&self) -> Option<Vec<NodeId>> {
        let engines: Vec<&SimEngine> = self.nodes.iter().filter_map(|n| n.engine.as_ref()).collect();
        if engines.iter().any(|e| e.is_leader()) {
            return None;
        }
        let demoted: Vec<NodeId> = engines
            .iter()
            .filter(|e| {
                let in_force = e.membership().is_some_and(|m| m.membership.is_voter(e.id()));
                let committed = e.log().membership_at(index_of(e.committed()));
                !in_force && committed.is_some_and(|m| m.membership.is_voter(e.id()))
            })
            .map(|e| e.id())
            .collect();
        (!demoted.is_empty()).then_some(demoted)
    }

    /// Recognizes the known engine bug where an initial member crashed after
    /// its campaign saved a vote but before its initial membership entry was
    /// durable: it has a vote, no log, and refuses `initialize` for good.
    fn bricked_initial_member(&self) -> Option<NodeId> {
        self.nodes.iter().filter_map(|n| n.engine.as_ref()).find_map(|e| {
            let bricked = e.id() <= self.scenario.voters && e.membership().is_none() && e.vote() != Vote::default();
            bricked.then(|| e.id())
        })
    }

    fn final_checks(&mut self) {
        let mut result = Ok(());
        for node in &self.nodes {
            if let Some(engine) = node.engine.as_ref() {
                result =
                    result.and(self.checkers.committed.check_log(node.id, engine.log(), index_of(engine.committed())));
            }
        }
        self.check(result);
        // nodes that applied up to the same index hold the same state, however
        // they got there (log replay, snapshot install, restart)
        let mut states: BTreeMap<LogIndex, (NodeId, u64)> = BTreeMap::new();
        for node in self.nodes.iter().filter(|n| n.engine.is_some()) {
            let (index, digest) = (index_of(node.applied), node.kv.digest());
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
    }
}

fn node_addr(id: NodeId) -> BasicNode {
    BasicNode::new(format!("n{id}"))
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
    }
}
