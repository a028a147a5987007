//! One node's host: owns the engine, the store, the state machine, the
//! network, the snapshot receiver and the reply books, and executes the
//! engine's outputs. Synchronous, with no clock or task of its own: the tokio
//! driver and the simulator both drive it, so the simulator's seeds exercise
//! the very output execution, reply matching and snapshot lifecycle that
//! production runs.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use super::job_spawner::JobSpawner;
use super::membership_ext::MembershipCall;
use super::reply::{Answer, ReplyKind};
use super::reply_books::{IndexResult, MembershipResult, ReadResult, ReplyBooks, WriteResult};
use super::snapshot_receiver::SnapshotReceiver;
use crate::cluster_id::ClusterId;
use crate::config::Config;
use crate::engine::{ChangeStatus, Engine, Output};
use crate::error::{ChangeMembershipError, Fatal, TransferError, WriteError};
use crate::log_id::{index_of, LogId};
use crate::membership::ChangeMembers;
use crate::message::{Message, MessageBody};
use crate::network::Network;
use crate::node::{LogIndex, Node, NodeId};
use crate::peer_refusal::PeerRefusal;
use crate::snapshot::Snapshot;
use crate::state_machine::StateMachine;
use crate::storage::{FlushNotifier, LogStore, StorageError};

pub(crate) type C<SM> = <SM as StateMachine>::Command;

/// How long an explicit membership step waits for its entry to commit, in
/// election timeouts, before it is answered `NotCommittedInTime`.
const COMMIT_WAIT_ELECTION_TIMEOUTS: u64 = 10;

/// What a host is built from besides its id and config.
pub struct HostParts<SM: StateMachine, N: Node> {
    /// Where messages go.
    pub network: Arc<dyn Network<C<SM>, N>>,
    /// The node's log store.
    pub store: Box<dyn LogStore<C<SM>, N>>,
    /// The replicated application.
    pub state_machine: SM,
    /// Runs periodic snapshot jobs and log reads off the host.
    pub spawner: Box<dyn JobSpawner<C<SM>, N>>,
    /// Handed to the store with each append, to report group-commit flushes.
    pub notifier: FlushNotifier,
}

/// One node: engine, storage, state machine, network and the callers waiting
/// for answers, driven through synchronous calls (see the module doc).
pub struct NodeHost<SM: StateMachine, N: Node, R: ReplyKind> {
    pub(crate) engine: Engine<C<SM>, N>,
    pub(crate) network: Arc<dyn Network<C<SM>, N>>,
    pub(crate) store: Box<dyn LogStore<C<SM>, N>>,
    pub(crate) state_machine: SM,
    pub(crate) spawner: Box<dyn JobSpawner<C<SM>, N>>,
    /// A snapshot job is running (at most one: its staging place is the
    /// store's single staging place).
    pub(crate) snapshot_job_running: bool,
    /// Callers and chunks waiting for that job.
    pub(crate) snapshot_waits: super::snapshot_waits::SnapshotWaits<R>,
    /// The snapshot each transfer streams, kept until the next transfer to
    /// that node starts, even when a newer one is made current meanwhile.
    pub(crate) snapshot_sends: HashMap<NodeId, Arc<Snapshot<N>>>,
    pub(crate) notifier: FlushNotifier,
    /// The time of the last tick, in the driver's milliseconds.
    pub(crate) now_ms: u64,
    pub(crate) applied: Option<LogId>,
    pub(crate) snapshot: Option<Arc<Snapshot<N>>>,
    pub(crate) receiver: SnapshotReceiver<N>,
    pub(crate) books: ReplyBooks<SM, N, R>,
    /// Writes served here with the leader's help.
    pub(crate) forwards: super::forwarding::ForwardBook<SM, N, R>,
    pub(crate) outputs: Vec<Output<C<SM>, N>>,
    /// Addresses of candidates not (yet) in our membership, to answer their
    /// votes, and of nodes probed before they are added.
    pub(crate) directory: HashMap<NodeId, N>,
    /// Peers that refused this node, until they answer normally.
    pub(crate) refused: BTreeMap<NodeId, PeerRefusal>,
    pub(crate) fatal: Option<Fatal>,
    /// An `initialize` asking the other initial members first.
    pub(crate) pending_initialize: Option<super::initialize_probe::PendingInitialize<N, R>>,
    /// No other event waits for this host: a follower's append may then
    /// sync on this thread (see [`Config::follower_sync_inline`]).
    pub(crate) nothing_else_waiting: bool,
}

impl<SM: StateMachine, N: Node, R: ReplyKind> NodeHost<SM, N, R> {
    /// Reads the store, restores its snapshot into the state machine and
    /// starts the engine at `now_ms` with randomness from `seed`.
    pub fn new(
        id: NodeId,
        config: Arc<Config>,
        parts: HostParts<SM, N>,
        seed: u64,
        now_ms: u64,
    ) -> Result<Self, StorageError> {
        let HostParts { network, mut store, mut state_machine, spawner, notifier } = parts;
        let state = store.read_state()?;
        let mut applied = None;
        let snapshot = state.snapshot.clone().map(Arc::new);
        if let Some(snapshot) = &snapshot {
            // the first full read of a stored snapshot checks it (a store
            // need not read it all at open): a corrupt one is never installed
            let mut reader = snapshot.data.checked_reader();
            let install = SM::decode_snapshot(&mut reader)?;
            std::io::copy(&mut reader, &mut std::io::sink())
                .map_err(|e| StorageError::new("checking the stored snapshot", e))?;
            install(&mut state_machine)?;
            applied = snapshot.meta.last_log_id;
        }
        let engine = Engine::new(id, config, &state, seed, now_ms);
        Ok(Self {
            engine,
            network,
            store,
            state_machine,
            spawner,
            snapshot_job_running: false,
            snapshot_waits: Default::default(),
            snapshot_sends: HashMap::new(),
            notifier,
            now_ms,
            applied,
            snapshot,
            receiver: SnapshotReceiver::default(),
            books: ReplyBooks::numbered_from_seed(seed),
            forwards: Default::default(),
            outputs: Vec::new(),
            directory: HashMap::new(),
            refused: BTreeMap::new(),
            fatal: None,
            pending_initialize: None,
            nothing_else_waiting: false,
        })
    }

    /// The engine, to read its state.
    pub fn engine(&self) -> &Engine<C<SM>, N> {
        &self.engine
    }

    /// The state machine.
    pub fn state_machine(&self) -> &SM {
        &self.state_machine
    }

    /// The last log id applied to the state machine.
    pub fn applied(&self) -> Option<LogId> {
        self.applied
    }

    /// The current snapshot, if any.
    pub fn snapshot(&self) -> Option<&Arc<Snapshot<N>>> {
        self.snapshot.as_ref()
    }

    /// Peers that refused this node, until they answer normally.
    pub fn refused_peers(&self) -> &BTreeMap<NodeId, PeerRefusal> {
        &self.refused
    }

    /// Why the node stopped, once a storage failure stopped it.
    pub fn fatal(&self) -> Option<&Fatal> {
        self.fatal.as_ref()
    }

    /// Tells the host whether any other event waits for it before the next
    /// [`execute_outputs`](Self::execute_outputs): only then may a follower's
    /// append wait for its sync on this thread ([`Config::follower_sync_inline`]).
    pub fn set_nothing_else_waiting(&mut self, nothing_else_waiting: bool) {
        self.nothing_else_waiting = nothing_else_waiting;
    }

    /// Moves the clock to `now_ms` and lets the engine's timers fire.
    pub fn tick(&mut self, now_ms: u64) {
        self.advance_clock(now_ms);
        self.engine.on_tick(now_ms);
        self.initialize_if_due();
    }

    /// Moves the clock to `now_ms` without running the timers (see
    /// [`Engine::advance_clock`]): the driver handles the events that
    /// arrived by then first, then ticks.
    pub fn advance_clock(&mut self, now_ms: u64) {
        self.now_ms = self.now_ms.max(now_ms);
        self.engine.advance_clock(now_ms);
    }

    /// When [`tick`](Self::tick) is due next: the engine's timers, or a
    /// pending `initialize`'s deadline.
    pub fn next_deadline_ms(&self) -> u64 {
        let engine = self.engine.next_deadline_ms();
        self.pending_initialize.as_ref().map_or(engine, |p| engine.min(p.next_due_ms()))
    }

    /// Queues a client write for the next batch (see
    /// [`flush_write_batch`](Self::flush_write_batch)).
    pub fn client_write(&mut self, command: C<SM>, reply: R::Reply<WriteResult<SM, N>>) {
        self.books.write_batch.push((command, reply));
    }

    /// Proposes the queued writes as one append (or answers them where to
    /// forward, off the leader).
    pub fn flush_write_batch(&mut self) {
        self.flush_forward_batch();
        if self.books.write_batch.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.books.write_batch);
        let (commands, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
        match self.engine.propose(commands) {
            Ok(Some(first)) => {
                for (i, reply) in replies.into_iter().enumerate() {
                    let log_id = LogId::new(first.leader_id, first.index + i as u64);
                    self.books.writes.push_back((log_id, reply));
                }
            }
            Ok(None) => {}
            Err(forward) => {
                for reply in replies {
                    reply.answer(Err(WriteError::ForwardToLeader(forward.clone())));
                }
            }
        }
    }

    /// Hands a message from a peer to the engine, learning the sender's address.
    pub fn receive(&mut self, message: Message<C<SM>, N>) {
        let sender_node = match &message.body {
            MessageBody::Vote(req) => req.candidate_node.as_ref(),
            MessageBody::Append(req) => req.leader_node.as_ref(),
            MessageBody::Snapshot(req) => req.leader_node.as_ref(),
            MessageBody::Probe(req) => req.asker_node.as_ref(),
            _ => None,
        };
        if let Some(node) = sender_node {
            self.directory.insert(message.envelope.from, node.clone());
        }
        if self.refused.remove(&message.envelope.from).is_some() {
            tracing::info!(node = %self.engine.id(), peer = %message.envelope.from, "peer no longer refuses");
        }
        self.engine.on_message(message)
    }

    /// The store made the log durable up to `log_id`.
    pub fn flushed(&mut self, log_id: LogId) {
        self.engine.on_log_flushed(log_id)
    }

    /// The transport could not reach `peer`.
    pub fn unreachable(&mut self, peer: NodeId) {
        tracing::debug!(node = %self.engine.id(), %peer, "peer unreachable: backing off");
        self.engine.on_peer_unreachable(peer);
        self.books.answer_probes(peer, None, Ok(0));
    }

    /// The transport reached `peer`, which refused this node.
    pub fn refused(&mut self, peer: NodeId, refusal: PeerRefusal) {
        tracing::warn!(node = %self.engine.id(), %peer, %refusal, "peer refused this node");
        self.engine.on_peer_unreachable(peer);
        self.refused.insert(peer, refusal);
        self.books.answer_probes(peer, None, Err(refusal));
        self.initialize_probe_refused(peer, refusal);
    }

    /// Asks a peer who it is: its incarnation (0 when not known: no answer
    /// in time, or not asked because this node is not the leader), or why it
    /// refuses this cluster.
    pub fn probe_peer(&mut self, peer: NodeId, node: N, reply: R::Reply<Result<u64, PeerRefusal>>) {
        // only the leader adds nodes (elsewhere the change is forwarded, and
        // probed there)
        if peer == self.engine.id() || !self.engine.is_leader() {
            reply.answer(Ok(0));
        } else {
            self.directory.insert(peer, node);
            let seq = self.books.request_id();
            self.books.await_probe(peer, seq, reply);
            self.engine.probe(peer, seq);
        }
    }

    /// A linearizable read: answered with the read index once a quorum
    /// confirmed the leadership and the index is applied here.
    pub fn read_index(&mut self, reply: R::Reply<ReadResult<N>>) {
        let id = self.books.request_id();
        match self.engine.read_index(id) {
            Ok(()) => {
                self.books.reads.insert(id, reply);
            }
            Err(e) => reply.answer(Err(e)),
        }
    }

    /// A read served from the leader lease, answered once its index is applied.
    pub fn lease_read(&mut self, reply: R::Reply<ReadResult<N>>) {
        match self.engine.lease_read() {
            Ok(index) => self.books.reply_when_applied(index, index_of(self.applied), reply),
            Err(e) => reply.answer(Err(e)),
        }
    }

    /// Restarts the cluster from this node alone, under the new cluster id
    /// `cluster` (see `Raft::force_new_cluster`).
    pub fn force_new_cluster(&mut self, cluster: ClusterId) -> Result<LogId, crate::error::ForceNewClusterError> {
        self.engine.force_new_cluster(cluster)
    }

    /// A membership change by the extended algorithm, answered when done.
    pub fn change_membership(&mut self, change: ChangeMembers<N>, retain: bool, reply: R::Reply<MembershipResult<N>>) {
        let options = crate::engine::ChangeOptions { retain, force: false, ..Default::default() };
        self.membership_call(MembershipCall::Change(change, options), reply);
    }

    /// A readiness-aware membership call, answered when the engine says it is done.
    pub fn membership_call(&mut self, call: MembershipCall<N>, reply: R::Reply<MembershipResult<N>>) {
        let id = self.books.request_id();
        let result = call.start(&mut self.engine, id);
        self.books.track_membership(id, result, reply);
    }

    /// Explicit joint consensus, step 1; answered with the joint entry's
    /// index once it commits. Returns that index at once unless refused (the
    /// simulator's answer checker follows the entry).
    pub fn prepare_membership(
        &mut self,
        expect: (&BTreeSet<NodeId>, &BTreeSet<NodeId>),
        voters: &BTreeSet<NodeId>,
        learners: &BTreeSet<NodeId>,
        reply: R::Reply<IndexResult<N>>,
    ) -> Option<LogIndex> {
        let result = self.engine.prepare_membership_with(expect.0, expect.1, voters, learners, false);
        self.reply_when_committed(result, reply)
    }

    /// Explicit joint consensus, step 2: leaves the joint config prepared at
    /// `index`. Returns like [`prepare_membership`](Self::prepare_membership).
    pub fn commit_membership(&mut self, index: LogIndex, reply: R::Reply<IndexResult<N>>) -> Option<LogIndex> {
        let result = self.engine.commit_membership(index);
        self.reply_when_committed(result, reply)
    }

    /// Explicit joint consensus, undo of the joint config prepared at
    /// `index`. Returns like [`prepare_membership`](Self::prepare_membership).
    pub fn abort_membership(&mut self, index: LogIndex, reply: R::Reply<IndexResult<N>>) -> Option<LogIndex> {
        let result = self.engine.abort_membership(index);
        self.reply_when_committed(result, reply)
    }

    fn reply_when_committed(&mut self, result: IndexResult<N>, reply: R::Reply<IndexResult<N>>) -> Option<LogIndex> {
        let proposed = result.as_ref().ok().copied();
        let answer_by = self.now_ms + self.engine.config_election_timeout_max_ms() * COMMIT_WAIT_ELECTION_TIMEOUTS;
        self.books.reply_when_committed(result, self.engine.log(), index_of(self.engine.committed()), answer_by, reply);
        proposed
    }

    /// Where the change with this change id stands (on the leader).
    pub fn change_status(&self, change_id: &str) -> Result<ChangeStatus<N>, ChangeMembershipError<N>> {
        if self.engine.is_leader() {
            Ok(self.engine.change_status(change_id))
        } else {
            Err(ChangeMembershipError::ForwardToLeader(self.engine.forward_to_leader()))
        }
    }

    /// Hands leadership to `to` (or the most up-to-date voter).
    pub fn transfer_leader(&mut self, to: Option<NodeId>) -> Result<NodeId, TransferError<N>> {
        self.engine.transfer_leader(to)
    }

    /// Starts an election now, unless leading.
    pub fn elect(&mut self) {
        self.engine.elect_now();
    }

    /// Sends heartbeats now (if leader).
    pub fn heartbeat(&mut self) {
        self.engine.heartbeat_now()
    }

    /// Builds and saves a snapshot of what is applied now, off the host;
    /// `reply` gets its last log id once it is current.
    pub fn snapshot_now(&mut self, reply: R::Reply<super::snapshot_waits::SnapshotResult>) {
        self.execute_outputs();
        self.snapshot_when_built(reply);
    }

    /// Stops the node for good after a storage failure.
    pub(crate) fn fail(&mut self, error: StorageError) -> Fatal {
        tracing::error!(node = %self.engine.id(), %error, "storage failure: stopping the node");
        let fatal = Fatal::Storage(Arc::new(error));
        self.fatal = Some(fatal.clone());
        fatal
    }

    /// The node stops: writes still waiting are answered with why.
    pub fn stop(&mut self) {
        let fatal = self.fatal.clone().unwrap_or(Fatal::Stopped);
        self.books.stopped(&fatal);
        self.forwards.stop(|| WriteError::Fatal(fatal.clone()));
    }
}
