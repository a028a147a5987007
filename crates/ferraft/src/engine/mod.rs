//! The protocol as a deterministic state machine.
//!
//! The engine does no I/O and reads no clock: the runtime (or the simulator)
//! calls its `on_*` handlers with the current time and events, then drains
//! [`Output`]s and executes them in order. Output order carries the durability
//! rules: a `SaveVote` must be durable before any later output runs, and a
//! follower's append reply is only emitted once the store reported the entries
//! durable (`on_log_flushed`).

mod campaign_rights;
mod catch_up;
mod change_identity;
mod cluster_identity;
mod election;
pub(crate) mod entry_bytes;
mod evicted_ids;
mod follower;
mod force_new_cluster;
mod forwarding;
mod incarnations;
mod install_phase;
mod joint_exit;
mod membership_change;
mod membership_requests;
mod output;
mod progress;
mod promotion;
mod purge_hold;
mod raft_log;
mod readiness;
mod reads;
mod replication;
mod role;
mod snapshot_pace;
mod snapshot_window;
mod store_reads;

#[cfg(test)]
mod cluster_identity_tests;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

pub use catch_up::{CatchUpReport, CatchUpStall};
pub use change_identity::ChangeStatus;
pub use forwarding::ForwardFailure;
pub use output::Output;
testing_pub!(
    use progress::{Progress, ReplicationMode};
);
testing_pub!(
    use raft_log::RaftLog;
);
pub use readiness::{ChangeOptions, Readiness};
pub use role::ServerState;
testing_pub!(
    use role::{CandidateState, LeaderState, Role};
);
testing_pub!(
    use store_reads::{StoreFeed, StoreRead};
);

use crate::cluster_id::ClusterId;
use crate::config::Config;
use crate::entry::{AppData, Entry, EntryPayload};
use crate::error::ForwardToLeader;
use crate::log_id::{index_of, LogId};
use crate::membership::{Membership, StoredMembership};
use crate::message::{Envelope, Message, MessageBody};
use crate::node::{LogIndex, Node, NodeId, Term};
use crate::storage::LogState;
use crate::vote::Vote;
use incarnations::SenderStanding;

/// A reply to send once the log is durable up to `matched`.
#[derive(Debug, Clone)]
pub(crate) struct PendingReply<C, N> {
    matched: LogId,
    message: Message<C, N>,
}

/// One node's Raft protocol state.
#[derive(Debug)]
pub struct Engine<C, N: Node> {
    pub(crate) id: NodeId,
    pub(crate) config: Arc<Config>,
    pub(crate) rng: SmallRng,
    pub(crate) now_ms: u64,
    /// The cluster this node belongs to, once known (see `cluster_identity`).
    pub(crate) cluster_id: Option<ClusterId>,
    /// Whether `cluster_id` is in the store.
    pub(crate) cluster_id_saved: bool,
    /// While `cluster_id` is unknown: the cluster of the last message let in.
    pub(crate) contacted_by_cluster: u64,
    /// This node's incarnation (see `incarnations`); 0 when the store keeps none.
    pub(crate) incarnation: u64,
    /// The incarnation each peer last said it has.
    pub(crate) known_incarnations: std::collections::BTreeMap<NodeId, u64>,
    /// When a message of another incarnation was last logged.
    pub(crate) incarnation_warned_ms: Option<u64>,
    pub(crate) vote: Vote,
    /// Greatest term seen in any message: a new campaign starts above it.
    pub(crate) observed_term: Term,
    pub(crate) role: Role,
    pub(crate) log: RaftLog<C, N>,
    pub(crate) committed: Option<LogId>,
    /// The last entry the local store reported durable.
    pub(crate) durable: Option<LogId>,
    /// Committed entries already handed out for apply.
    pub(crate) apply_emitted: LogIndex,
    /// Applied entries since the last snapshot, for the snapshot policy.
    pub(crate) snapshot_index: LogIndex,
    pub(crate) snapshot_building: bool,
    /// The last purge the store was asked to do.
    pub(crate) store_purged: Option<LogId>,
    /// Whether the store reads ranges back (see `store_reads`).
    pub(crate) store_reads: bool,
    pub(crate) election_deadline_ms: u64,
    /// An initialized voter campaigns as soon as its initial entry is durable.
    pub(crate) campaign_once_durable: bool,
    /// When a leader was last heard from (leader stickiness).
    pub(crate) leader_seen_ms: Option<u64>,
    pub(crate) pending_replies: Vec<PendingReply<C, N>>,
    /// A quorum answered this node's vote requests that it is not a member:
    /// it stops campaigning until a leader contacts it.
    pub(crate) removed_by_quorum: bool,
    /// Accepted membership requests not yet answered (kept across role changes).
    pub(crate) membership_requests: Vec<membership_requests::MembershipRequest<N>>,
    /// Refused changes by change id, so a retry hears the same refusal.
    pub(crate) change_refusals: change_identity::ChangeRefusals<N>,
    /// Learners the leader promotes once ready (cancelled by a leader change).
    pub(crate) promotions: Vec<promotion::PendingPromotion>,
    /// Client writes and reads served with the leader's help (both sides).
    pub(crate) forwarding: forwarding::Forwarding,
    pub(crate) output: Vec<Output<C, N>>,
}

impl<C: AppData, N: Node> Engine<C, N> {
    /// Builds the engine from what the store read back at startup.
    pub fn new(id: NodeId, config: Arc<Config>, state: &LogState<C, N>, seed: u64, now_ms: u64) -> Self {
        let base_membership = state.snapshot.as_ref().map(|s| s.meta.membership.clone());
        let snapshot_last = state.snapshot.as_ref().and_then(|s| s.meta.last_log_id);
        // a snapshot past the last entry (a crash between installing it and
        // purging the log behind it) is where the log goes on
        let log_ends_before = |s: &LogId| state.entries.last().is_none_or(|e| e.log_id.index < s.index);
        let purged = state.last_purged.max(snapshot_last.filter(log_ends_before));
        let remembered = state.snapshot.as_ref().map(|s| s.meta.changes.clone()).unwrap_or_default();
        let mut log = RaftLog::new(purged, base_membership, remembered, config.remembered_change_ids);
        for entry in &state.entries {
            if entry.log_id.index == log.last_index() + 1 {
                log.push(entry.clone());
            }
        }
        let last = log.last_log_id();
        let committed = state.committed.max(snapshot_last).filter(|c| Some(*c) <= last);
        let (cluster_id, unsaved) = cluster_identity::starting_cluster_id(id, &config, state);
        let mut engine = Self {
            id,
            config,
            rng: SmallRng::seed_from_u64(seed),
            now_ms,
            cluster_id,
            cluster_id_saved: !unsaved,
            contacted_by_cluster: 0,
            incarnation: crate::incarnation::Incarnation::wire(state.incarnation),
            known_incarnations: Default::default(),
            incarnation_warned_ms: None,
            vote: state.vote.unwrap_or_default(),
            observed_term: state.vote.map_or(Term(0), |v| v.term()),
            role: Role::Follower,
            log,
            committed,
            durable: last,
            apply_emitted: index_of(snapshot_last),
            snapshot_index: index_of(snapshot_last),
            snapshot_building: false,
            store_purged: state.last_purged,
            store_reads: true,
            election_deadline_ms: 0,
            campaign_once_durable: false,
            leader_seen_ms: None,
            pending_replies: Vec::new(),
            removed_by_quorum: false,
            membership_requests: Vec::new(),
            change_refusals: Default::default(),
            promotions: Vec::new(),
            forwarding: forwarding::Forwarding::starting_at(state.vote.map_or(Term(0), |v| v.term())),
            output: Vec::new(),
        };
        if let Some(cluster_id) = cluster_id.filter(|_| unsaved) {
            engine.set_cluster_id(cluster_id);
        }
        engine.reset_election_deadline();
        engine.emit_apply();
        engine.on_startup();
        engine
    }

    // ---- reading state ------------------------------------------------------

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The current vote.
    pub fn vote(&self) -> Vote {
        self.vote
    }

    /// The role this node plays now.
    pub fn server_state(&self) -> ServerState {
        match &self.role {
            Role::Leader(_) => ServerState::Leader,
            Role::Candidate(_) => ServerState::Candidate,
            Role::Follower if self.membership().is_none() => ServerState::Uninitialized,
            Role::Follower if self.is_removed() => ServerState::Removed,
            Role::Follower if self.is_voter() => ServerState::Follower,
            Role::Follower => ServerState::Learner,
        }
    }

    testing_pub! {
        /// The role with its state (leader progress etc.).
        fn role(&self) -> &Role {
            &self.role
        }
    }

    testing_pub! {
        /// The log as the engine sees it.
        fn log(&self) -> &RaftLog<C, N> {
            &self.log
        }
    }

    /// The last committed log id.
    pub fn committed(&self) -> Option<LogId> {
        self.committed
    }

    /// The last durable log id.
    pub fn durable(&self) -> Option<LogId> {
        self.durable
    }

    /// The membership in force, if initialized.
    pub fn membership(&self) -> Option<&StoredMembership<N>> {
        self.log.effective_membership()
    }

    /// Whether the membership in force is committed.
    pub fn membership_committed(&self) -> bool {
        self.membership().is_some_and(|m| index_of(m.log_id) <= index_of(self.committed))
    }

    /// The leader this node believes in, if any: itself while it leads, the
    /// leader of its vote while it hears from it. A candidate, or a follower
    /// whose leader has been silent for an election timeout, knows of none:
    /// naming the leader of an old vote would send operators and forwarded
    /// requests to a node that may be dead.
    pub fn current_leader(&self) -> Option<NodeId> {
        match self.role {
            Role::Leader(_) => Some(self.id),
            Role::Candidate(_) => None,
            Role::Follower => {
                let leader = self.vote.leader_id.node_id;
                (self.vote.committed && leader != self.id && self.leader_is_live()).then_some(leader)
            }
        }
    }

    /// Whether this node is the leader.
    pub fn is_leader(&self) -> bool {
        matches!(self.role, Role::Leader(_))
    }

    /// The error to return to a caller that must go to the leader.
    pub fn forward_to_leader(&self) -> ForwardToLeader<N> {
        let leader_id = self.current_leader().filter(|id| *id != self.id);
        let leader_node = leader_id.and_then(|id| self.membership().and_then(|m| m.membership.node(id).cloned()));
        ForwardToLeader { leader_id, leader_node }
    }

    /// Moves the pending outputs out.
    pub fn take_outputs(&mut self) -> Vec<Output<C, N>> {
        self.flush_read_round();
        std::mem::take(&mut self.output)
    }

    /// Moves the pending outputs into `into`, reusing its allocation.
    pub fn drain_outputs_into(&mut self, into: &mut Vec<Output<C, N>>) {
        self.flush_read_round();
        into.append(&mut self.output);
    }

    /// Sends heartbeats now, if leader.
    pub fn heartbeat_now(&mut self) {
        if self.is_leader() {
            self.broadcast_append();
        }
    }

    /// The upper bound of the election timeout, in milliseconds.
    pub fn config_election_timeout_max_ms(&self) -> u64 {
        self.config.election_timeout_max_ms
    }

    /// The heartbeat interval, in milliseconds.
    pub(crate) fn config_heartbeat_interval_ms(&self) -> u64 {
        self.config.heartbeat_interval_ms
    }

    /// The snapshot chunk size in bytes.
    pub fn config_chunk_bytes(&self) -> usize {
        self.config.snapshot_chunk_bytes
    }

    /// [`Config::follower_sync_inline`](crate::Config::follower_sync_inline).
    pub(crate) fn config_follower_sync_inline(&self) -> bool {
        self.config.follower_sync_inline
    }

    /// The most bytes of encoded entries (or forwarded commands) one message carries.
    pub(crate) fn config_max_append_bytes(&self) -> u64 {
        self.config.max_append_bytes as u64
    }

    // ---- helpers shared by the handlers -------------------------------------

    /// Whether a test switched `rule` off; always false without the `testing` feature.
    pub(crate) fn breaks(&self, rule: crate::config::BrokenRule) -> bool {
        #[cfg(feature = "testing")]
        return self.config.broken_rule == Some(rule);
        #[cfg(not(feature = "testing"))]
        {
            let _ = rule;
            false
        }
    }

    pub(crate) fn is_voter(&self) -> bool {
        self.membership().is_some_and(|m| m.membership.is_voter(self.id)) && self.is_recorded_self()
    }

    /// A member once, and the membership in force no longer names it.
    pub fn is_removed(&self) -> bool {
        let dropped =
            self.membership().is_some_and(|m| !m.membership.is_member(self.id)) && self.log.ever_names(self.id);
        dropped || self.removed_by_quorum
    }

    pub(crate) fn effective(&self) -> Option<&Membership<N>> {
        self.membership().map(|m| &m.membership)
    }

    /// This node's own descriptor, from the latest membership that names it:
    /// a leader still naming itself after its removal lets the nodes it
    /// replicates to answer it.
    pub fn own_node(&self) -> Option<&N> {
        self.log.latest_node(self.id)
    }

    /// The envelope of a message from this node to `to`.
    pub fn envelope(&self, to: NodeId) -> Envelope {
        Envelope {
            cluster_id: self.wire_cluster_id(),
            from: self.id,
            to,
            from_incarnation: self.incarnation,
            to_incarnation: self.recorded_incarnation(to),
        }
    }

    pub(crate) fn send(&mut self, to: NodeId, body: MessageBody<C, N>) {
        let envelope = if body.is_reply() { self.reply_envelope(to) } else { self.envelope(to) };
        self.output.push(Output::Send(Message { envelope, body }));
    }

    pub(crate) fn reset_election_deadline(&mut self) {
        let timeout = self.rng.gen_range(self.config.election_timeout_min_ms..self.config.election_timeout_max_ms);
        self.election_deadline_ms = self.now_ms + timeout;
    }

    pub(crate) fn save_vote(&mut self, vote: Vote) {
        if vote != self.vote {
            // a vote given or a leader followed since `initialize`: an
            // election is under way, and the timer decides when to campaign
            self.campaign_once_durable = false;
            self.vote = vote;
            self.observed_term = self.observed_term.max(vote.term());
            self.output.push(Output::SaveVote(vote));
        }
    }

    /// Appends one entry to the local log (leader side or initialization).
    pub(crate) fn append_local(&mut self, payload: EntryPayload<C, N>) -> LogId {
        let log_id = LogId::new(self.vote.leader_id, self.log.last_index() + 1);
        let entry = Entry { log_id, payload };
        self.log.push(entry.clone());
        self.push_append_output(entry);
        log_id
    }

    /// Queues an entry for persistence, merging into the previous append output.
    pub(crate) fn push_append_output(&mut self, entry: Entry<C, N>) {
        if let Some(Output::AppendLog(entries)) = self.output.last_mut() {
            entries.push(entry);
        } else {
            self.output.push(Output::AppendLog(vec![entry]));
        }
    }

    /// Advances the commit point and hands out newly committed entries.
    pub(crate) fn commit_to(&mut self, committed: Option<LogId>) {
        if committed <= self.committed {
            return;
        }
        self.committed = committed;
        self.output.push(Output::SaveCommitted(committed));
        self.emit_apply();
        self.settle_membership_requests();
        self.answer_committed_forwards();
        self.forget_committed_batches();
    }

    pub(crate) fn emit_apply(&mut self) {
        let committed = index_of(self.committed);
        if committed > self.apply_emitted {
            if let Some(upto) = self.log.log_id_at(committed) {
                self.output.push(Output::Apply { upto });
                self.apply_emitted = committed;
            }
        }
        self.maybe_build_snapshot();
    }

    fn maybe_build_snapshot(&mut self) {
        let every = self.config.snapshot_logs_since_last;
        if every > 0 && !self.snapshot_building && self.apply_emitted >= self.next_snapshot_at(every) {
            self.snapshot_building = true;
            self.output.push(Output::BuildSnapshot);
        }
    }

    /// Where this node takes its next snapshot: on its own grid of points
    /// `every` apart, offset by a quarter of `every` per node id, and at
    /// least half of `every` after the last one. Nodes that applied the same
    /// log would otherwise all snapshot at the same index, and a snapshot's
    /// copy, encode and write then slow a quorum at once instead of one node.
    fn next_snapshot_at(&self, every: u64) -> LogIndex {
        let phase = (self.id.0 % 4) * (every / 4);
        let after = self.snapshot_index + every / 2;
        // the first grid point above `after`
        let steps = after.0.saturating_sub(phase) / every + 1;
        LogIndex(phase + steps * every)
    }

    /// The runtime saved a snapshot covering `last`: purge the log behind it,
    /// keeping what followers still catching up need.
    pub fn on_snapshot_saved(&mut self, last: Option<LogId>) {
        self.snapshot_building = false;
        let Some(last) = last else { return };
        self.snapshot_index = self.snapshot_index.max(last.index);
        self.purge_behind_snapshot(last);
        // entries applied while the job ran count too: an idle node would
        // otherwise wait for its next write to take the snapshot they are due
        self.maybe_build_snapshot();
    }

    /// The runtime applied up to `applied`: drop in-memory entries older than
    /// the log cache. They stay in the store (until a snapshot purges them);
    /// a follower that needs them gets a snapshot.
    pub fn trim_applied(&mut self, applied: LogIndex) {
        let cache = self.config.log_cache_entries;
        // trim in steps of an eighth of the cache, not on every apply
        if applied < self.log.first_index() + cache + cache / 8 {
            return;
        }
        let upto = applied.min(index_of(self.committed)).saturating_back(cache);
        if let Some(log_id) = self.log.log_id_at(upto) {
            self.log.purge(log_id);
        }
    }

    /// The runtime failed or gave up building a snapshot.
    pub fn on_snapshot_failed(&mut self) {
        self.snapshot_building = false;
    }

    // ---- lifecycle -----------------------------------------------------------

    fn on_startup(&mut self) {
        // A node that was leader campaigns at once instead of waiting out a
        // timeout. It does not reuse its old leader id: entries it sent before
        // the crash may be on followers without being durable here, and
        // proposing new entries at those indexes under the same leader id
        // would break log matching.
        if self.vote.committed && self.vote.leader_id.node_id == self.id && self.is_voter() {
            self.election_deadline_ms = self.now_ms;
        } else if self.vote.committed {
            // it may have acknowledged that leader just before the restart: keep
            // refusing other candidates for an election timeout, as if it had
            // just heard from it, so the leader's read lease stays sound
            self.leader_seen_ms = Some(self.now_ms);
        }
    }

    /// Makes a fresh node the first member(s) of a cluster, with the cluster
    /// id it has or `Config::cluster_id`, else a random one from the engine's
    /// seeded generator: see [`Engine::initialize_in_cluster`].
    pub fn initialize(&mut self, membership: Membership<N>) -> Result<LogId, crate::error::InitializeError> {
        // the generator is drawn from only when needed: simulator runs stay as they were
        let fresh = match self.cluster_id {
            Some(ours) => ours,
            None => std::iter::repeat_with(|| ClusterId::new(self.rng.gen())).flatten().next().expect("endless"),
        };
        self.initialize_in_cluster(membership, None, fresh)
    }

    /// Makes a fresh node the first member(s) of a cluster.
    ///
    /// Writes the cluster id, then the initial membership as entry 1
    /// (uncommitted). The cluster id is the
    /// one this node has (which `given` must match), else `given`, else
    /// `fresh`. Fails when the node already has a log or knew a leader. A
    /// voter campaigns once the entry is durable. Initializing several
    /// members separately needs the same `given` id on each.
    pub fn initialize_in_cluster(
        &mut self,
        membership: Membership<N>,
        given: Option<ClusterId>,
        fresh: ClusterId,
    ) -> Result<LogId, crate::error::InitializeError> {
        // a vote without a log is allowed (a member initialized on its own
        // may have voted for another), but not one that knew a leader
        // (`cluster_for_initialize`)
        if self.log.last_log_id().is_some() {
            return Err(crate::error::InitializeError::NotAllowed);
        }
        membership.validate()?;
        if !membership.is_member(self.id) {
            return Err(crate::error::InitializeError::NotInMembers { node_id: self.id });
        }
        let cluster_id = self.cluster_for_initialize(given, fresh)?;
        self.set_cluster_id(cluster_id);
        // the initial entry is signed by its node: nodes initialized with
        // different sets then hold different log ids at index 1, never two
        // different entries under one id (log matching)
        let log_id = LogId::new(crate::leader_id::LeaderId::new(Term(0), self.id), LogIndex(1));
        let membership = self.stamp_incarnations(membership);
        let entry = Entry { log_id, payload: EntryPayload::Membership(membership) };
        self.log.push(entry.clone());
        self.push_append_output(entry);
        // a voter campaigns once the entry is durable (`may_campaign`)
        self.campaign_once_durable = self.is_voter();
        Ok(log_id)
    }

    /// The store reported the log durable up to `log_id`.
    pub fn on_log_flushed(&mut self, log_id: LogId) {
        if !self.log.contains(Some(log_id)) || Some(log_id) <= self.durable {
            return;
        }
        self.durable = Some(log_id);
        let durable = log_id;
        let log = &self.log;
        let mut ready = Vec::new();
        self.pending_replies.retain(|pending| {
            if !log.contains(Some(pending.matched)) {
                return false;
            }
            if pending.matched.index <= durable.index {
                ready.push(pending.message.clone());
                return false;
            }
            true
        });
        self.output.extend(ready.into_iter().map(Output::Send));
        if self.is_leader() {
            self.leader_maybe_commit();
            self.tell_flushed_forwards();
        } else {
            self.commit_on_leader_flush();
        }
        if std::mem::take(&mut self.campaign_once_durable) && !self.is_leader() {
            self.election_deadline_ms = self.now_ms;
            self.on_tick(self.now_ms);
        }
    }

    /// Handles any message from a peer.
    pub fn on_message(&mut self, message: Message<C, N>) {
        let Some(message) = self.on_probe_message(message) else { return };
        let envelope = message.envelope;
        if envelope.to != self.id || !self.accepts_cluster(envelope.cluster_id) {
            tracing::warn!(
                node = %self.id,
                from = %envelope.from,
                to = %envelope.to,
                cluster = envelope.cluster_id,
                "dropping a message not meant for this node (wrong receiver or cluster): check member addresses"
            );
            return;
        }
        if envelope.from == self.id {
            tracing::error!(node = %self.id, "received a message from itself: a member's address points at this node");
            return;
        }
        let standing = match &message.body {
            MessageBody::Append(req) => SenderStanding::Leading(req.vote),
            MessageBody::Snapshot(chunk) => SenderStanding::Leading(chunk.vote),
            MessageBody::Vote(req) => SenderStanding::Candidate(req.last_log_id),
            _ => SenderStanding::Other,
        };
        if !self.admits_incarnations(&envelope, standing) {
            return;
        }
        let from = envelope.from;
        match message.body {
            MessageBody::Vote(req) => self.on_vote_request(from, req),
            MessageBody::VoteReply(reply) => self.on_vote_reply(from, reply),
            MessageBody::Append(req) => self.on_append(from, req),
            MessageBody::AppendReply(reply) => self.on_append_reply(from, reply),
            MessageBody::Snapshot(chunk) => self.on_snapshot_chunk(from, chunk),
            MessageBody::SnapshotReply(reply) => self.on_snapshot_reply(from, reply),
            MessageBody::TimeoutNow(m) => self.on_timeout_now(from, m),
            MessageBody::Probe(_) | MessageBody::ProbeReply(_) => {}
            MessageBody::ForwardWrite(request) => self.on_forward_write(from, request),
            MessageBody::ForwardWriteReply(reply) => self.on_forward_write_reply(reply),
            MessageBody::ReadIndexAsk(ask) => self.on_read_index_ask(from, ask),
            MessageBody::ReadIndexReply(reply) => self.on_read_index_reply(reply),
        }
    }

    /// Moves the clock to `now_ms` without running the timers: events that
    /// arrived before `now_ms` are handled at that time, then
    /// [`on_tick`](Self::on_tick) runs what is due. A node that stalled
    /// then hears what waited for it (a heartbeat) before its timers judge
    /// the silence.
    pub fn advance_clock(&mut self, now_ms: u64) {
        self.now_ms = self.now_ms.max(now_ms);
    }

    /// Advances time: elections, heartbeats, check-quorum, retries.
    pub fn on_tick(&mut self, now_ms: u64) {
        self.advance_clock(now_ms);
        self.settle_membership_requests();
        self.settle_promotions();
        self.expire_forwarded();
        if self.is_leader() {
            self.send_due_snapshot_chunks();
            self.leader_tick();
        } else if self.now_ms >= self.election_deadline_ms {
            self.on_election_timeout();
        }
    }

    /// The earliest time at which `on_tick` has something to do.
    pub fn next_deadline_ms(&self) -> u64 {
        match &self.role {
            Role::Leader(leader) => {
                self.next_chunk_due_ms().map_or(leader.next_heartbeat_ms, |due| due.min(leader.next_heartbeat_ms))
            }
            _ => self.election_deadline_ms,
        }
    }

    /// Debug check of the state invariants; the simulator calls it after every event.
    pub fn check_invariants(&self) -> Result<(), String> {
        let committed = index_of(self.committed);
        let last = self.log.last_index();
        let purged = index_of(self.log.purged());
        if committed > last {
            return Err(format!("node {}: committed {committed} beyond last log {last}", self.id));
        }
        if purged > committed.max(self.snapshot_index) {
            return Err(format!("node {}: purged {purged} beyond committed {committed}", self.id));
        }
        if self.apply_emitted > committed.max(self.snapshot_index) {
            return Err(format!("node {}: applied {} beyond committed {committed}", self.id, self.apply_emitted));
        }
        if let Some(m) = self.membership() {
            m.membership.validate().map_err(|e| format!("node {}: invalid membership: {e}", self.id))?;
        }
        if self.is_leader() && !(self.vote.committed && self.vote.leader_id.node_id == self.id) {
            return Err(format!("node {}: leader without its own committed vote {}", self.id, self.vote));
        }
        Ok(())
    }
}
