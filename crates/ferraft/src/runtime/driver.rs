//! The per-node driver task: batches events into the engine, executes outputs.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use super::event::{Event, Reply, WriteReply, WriteResponse};
use super::metrics::{RaftMetrics, ReplicationMetrics};
use super::snapshot_receiver::{ChunkOutcome, SnapshotReceiver};
use super::StartError;
use crate::config::Config;
use crate::engine::{Engine, Output, Role};
use crate::entry::EntryPayload;
use crate::error::{ChangeMembershipError, Fatal, ReadError, WriteError};
use crate::log_id::{index_of, LogId};
use crate::membership::StoredMembership;
use crate::message::{Message, MessageBody, SnapshotChunk};
use crate::network::Network;
use crate::node::{LogIndex, Node, NodeId};
use crate::peer_refusal::PeerRefusal;
use crate::snapshot::{Snapshot, SnapshotMeta};
use crate::state_machine::StateMachine;
use crate::storage::{AppendDurability, FlushNotifier, LogStore, StorageError};

type C<SM> = <SM as StateMachine>::Command;
type MembershipReply<N> = Reply<Result<StoredMembership<N>, ChangeMembershipError<N>>>;
type IndexReply<N> = Reply<Result<LogIndex, ChangeMembershipError<N>>>;
type ReadReply<N> = Reply<Result<LogIndex, ReadError<N>>>;

/// Most events handled before outputs are executed: bounds latency under load.
const MAX_EVENTS_PER_BATCH: usize = 4096;
/// How long an explicit membership step waits for its entry to commit, in
/// election timeouts, before it is answered `NotCommittedInTime`.
const COMMIT_WAIT_ELECTION_TIMEOUTS: u64 = 10;

/// Most delay before progress-only metric changes are published.
const METRICS_INTERVAL: Duration = Duration::from_millis(1);

pub(crate) struct Driver<SM: StateMachine, N: Node> {
    engine: Engine<C<SM>, N>,
    network: Arc<dyn Network<C<SM>, N>>,
    store: Box<dyn LogStore<C<SM>, N>>,
    state_machine: SM,
    rx: mpsc::UnboundedReceiver<Event<SM, N>>,
    /// For jobs on other threads to report back; weak, so the channel still
    /// closes when every handle is gone.
    events: mpsc::WeakUnboundedSender<Event<SM, N>>,
    /// A snapshot is being encoded on a blocking thread (at most one: its
    /// staging file is the store's single staging place).
    snapshot_job_running: bool,
    notifier: FlushNotifier,
    metrics: watch::Sender<RaftMetrics<N>>,
    started: Instant,
    applied: Option<LogId>,
    snapshot: Option<Arc<Snapshot<N>>>,
    receiver: SnapshotReceiver<N>,
    next_request_id: u64,
    writes: VecDeque<(LogId, WriteReply<SM, N>)>,
    write_batch: Vec<(C<SM>, WriteReply<SM, N>)>,
    reads: HashMap<u64, ReadReply<N>>,
    reads_waiting_apply: Vec<(LogIndex, ReadReply<N>)>,
    memberships: HashMap<u64, MembershipReply<N>>,
    /// Explicit membership steps waiting for their entry to commit, each with
    /// the time by which it is answered anyway.
    commit_waiters: Vec<(LogIndex, u64, IndexReply<N>)>,
    outputs: Vec<Output<C<SM>, N>>,
    /// Addresses of candidates not (yet) in our membership, to answer their
    /// votes, and of nodes probed before they are added.
    directory: HashMap<u64, N>,
    /// Callers waiting to hear whether a probed node refuses this cluster.
    probes: HashMap<NodeId, Vec<Reply<Option<PeerRefusal>>>>,
    /// Peers that refused this node, until they answer normally.
    refused: BTreeMap<NodeId, PeerRefusal>,
    /// When pending progress-only metric changes must be published.
    metrics_due: Option<Instant>,
    published_progress: [u64; 6],
    fatal: Option<Fatal>,
    stopping: Option<Reply<()>>,
}

impl<SM: StateMachine, N: Node> Driver<SM, N> {
    pub(crate) fn start(
        id: u64,
        config: Arc<Config>,
        network: Arc<dyn Network<C<SM>, N>>,
        mut store: Box<dyn LogStore<C<SM>, N>>,
        mut state_machine: SM,
        tx: mpsc::UnboundedSender<Event<SM, N>>,
        rx: mpsc::UnboundedReceiver<Event<SM, N>>,
    ) -> Result<(Self, watch::Receiver<RaftMetrics<N>>), StartError> {
        let state = store.read_state()?;
        let mut applied = None;
        let snapshot = state.snapshot.clone().map(Arc::new);
        if let Some(snapshot) = &snapshot {
            state_machine.restore(&snapshot.data)?;
            applied = snapshot.meta.last_log_id;
        }
        let seed = id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let engine = Engine::new(id, config, &state, seed ^ std::process::id() as u64, 0);
        let events = tx.downgrade();
        let notifier = FlushNotifier::new(move |log_id| {
            let _ = tx.send(Event::Flushed(log_id));
        });
        let (metrics, metrics_rx) = watch::channel(RaftMetrics {
            id,
            cluster_id: engine.cluster_id(),
            state: engine.server_state(),
            current_term: 0,
            vote: engine.vote(),
            current_leader: None,
            last_log_index: 0,
            committed: None,
            last_applied: None,
            snapshot: None,
            purged: None,
            membership: None,
            membership_committed: false,
            replication: None,
            refused_peers: BTreeMap::new(),
            stopped: false,
        });
        let driver = Self {
            engine,
            network,
            store,
            state_machine,
            rx,
            events,
            snapshot_job_running: false,
            notifier,
            metrics,
            started: Instant::now(),
            applied,
            snapshot,
            receiver: SnapshotReceiver::default(),
            next_request_id: 0,
            writes: VecDeque::new(),
            write_batch: Vec::new(),
            reads: HashMap::new(),
            reads_waiting_apply: Vec::new(),
            memberships: HashMap::new(),
            commit_waiters: Vec::new(),
            outputs: Vec::new(),
            directory: HashMap::new(),
            probes: HashMap::new(),
            refused: BTreeMap::new(),
            metrics_due: None,
            published_progress: [0; 6],
            fatal: None,
            stopping: None,
        };
        Ok((driver, metrics_rx))
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    pub(crate) async fn run(mut self) {
        self.engine.on_tick(self.now_ms());
        self.execute_outputs();
        self.publish_metrics(true);
        // one timer, moved rather than re-created on every turn of the loop
        let sleep = tokio::time::sleep_until(self.started.into());
        tokio::pin!(sleep);
        let mut armed_for = None;
        while self.fatal.is_none() && self.stopping.is_none() {
            let mut deadline = self.started + Duration::from_millis(self.engine.next_deadline_ms());
            if let Some(due) = self.metrics_due {
                deadline = deadline.min(due);
            }
            if armed_for != Some(deadline) {
                sleep.as_mut().reset(deadline.into());
                armed_for = Some(deadline);
            }
            let event = tokio::select! {
                event = self.rx.recv() => event,
                _ = &mut sleep => None,
            };
            let now = self.now_ms();
            self.engine.on_tick(now);
            if let Some(event) = event {
                self.handle(event);
                let mut handled = 1;
                while handled < MAX_EVENTS_PER_BATCH {
                    match self.rx.try_recv() {
                        Ok(event) => self.handle(event),
                        Err(_) => break,
                    }
                    handled += 1;
                }
            } else if self.rx.is_closed() {
                break;
            }
            self.flush_write_batch();
            self.execute_outputs();
            self.publish_metrics(false);
        }
        self.stop();
    }

    fn handle(&mut self, event: Event<SM, N>) {
        if !matches!(event, Event::Write(..)) {
            self.flush_write_batch();
        }
        match event {
            Event::Write(command, reply) => self.write_batch.push((command, reply)),
            Event::Message(message) => {
                let sender_node = match &message.body {
                    MessageBody::Vote(req) => req.candidate_node.as_ref(),
                    MessageBody::Append(req) => req.leader_node.as_ref(),
                    MessageBody::Probe(req) => req.asker_node.as_ref(),
                    _ => None,
                };
                if let Some(node) = sender_node {
                    self.directory.insert(message.envelope.from, node.clone());
                }
                if self.refused.remove(&message.envelope.from).is_some() {
                    tracing::info!(node = self.engine.id(), peer = message.envelope.from, "peer no longer refuses");
                }
                self.engine.on_message(message)
            }
            Event::Flushed(log_id) => self.engine.on_log_flushed(log_id),
            Event::Unreachable(peer) => {
                tracing::debug!(node = self.engine.id(), peer, "peer unreachable: backing off");
                self.engine.on_peer_unreachable(peer);
                self.answer_probes(peer, None);
            }
            Event::Refused(peer, refusal) => {
                tracing::warn!(node = self.engine.id(), peer, %refusal, "peer refused this node");
                self.engine.on_peer_unreachable(peer);
                self.refused.insert(peer, refusal);
                self.answer_probes(peer, Some(refusal));
            }
            Event::ProbePeer(peer, node, reply) => {
                // only the leader adds nodes: elsewhere the change is forwarded, and probed there
                if peer == self.engine.id() || !self.engine.is_leader() {
                    let _ = reply.send(None);
                } else {
                    self.directory.insert(peer, node);
                    self.probes.entry(peer).or_default().push(reply);
                    let seq = self.request_id();
                    self.engine.probe(peer, seq);
                }
            }
            Event::ReadIndex(reply) => {
                let id = self.request_id();
                match self.engine.read_index(id) {
                    Ok(()) => {
                        self.reads.insert(id, reply);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            Event::LeaseRead(reply) => match self.engine.lease_read() {
                Ok(index) => self.reply_when_applied(index, reply),
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            Event::Initialize(membership, given, fresh, reply) => {
                let _ = reply.send(self.engine.initialize_in_cluster(membership, given, fresh));
            }
            Event::ChangeMembership(change, retain, reply) => {
                let id = self.request_id();
                let options = crate::engine::ChangeOptions { retain, force: false, ..Default::default() };
                let result = self.engine.change_membership_with(id, change, options);
                self.track_membership(id, result, reply);
            }
            Event::MembershipExt(call, reply) => {
                let id = self.request_id();
                let result = call.start(&mut self.engine, id);
                self.track_membership(id, result, reply);
            }
            Event::Prepare(p, reply) => {
                let result = self.engine.prepare_membership_with(
                    &p.expect_voters,
                    &p.expect_learners,
                    &p.voters,
                    &p.learners,
                    false,
                );
                self.reply_when_committed(result, reply);
            }
            Event::CommitJoint(index, reply) => {
                let result = self.engine.commit_membership(index);
                self.reply_when_committed(result, reply);
            }
            Event::AbortJoint(index, reply) => {
                let result = self.engine.abort_membership(index);
                self.reply_when_committed(result, reply);
            }
            Event::ChangeStatus(change_id, reply) => {
                let status = if self.engine.is_leader() {
                    Ok(self.engine.change_status(&change_id))
                } else {
                    Err(ChangeMembershipError::ForwardToLeader(self.engine.forward_to_leader()))
                };
                let _ = reply.send(status);
            }
            Event::TransferLeader(to, reply) => {
                let _ = reply.send(self.engine.transfer_leader(to));
            }
            Event::Elect => {
                if !self.engine.is_leader() {
                    self.engine.campaign(false, false);
                }
            }
            Event::Heartbeat => self.engine.heartbeat_now(),
            Event::Snapshot(reply) => {
                self.execute_outputs();
                let result = self.build_snapshot().map_err(|e| self.fail(e));
                let _ = reply.send(result.map(|s| s.meta.last_log_id));
            }
            Event::SnapshotBuilt(result, staged) => {
                self.snapshot_job_running = false;
                if let Err(error) = self.finish_snapshot(*result, staged) {
                    self.fail(error);
                }
            }
            Event::EntriesRead(read) => {
                if let Err(error) = read.deliver(&mut self.engine) {
                    self.fail(error);
                }
            }
            Event::Shutdown(reply) => self.stopping = Some(reply),
        }
    }

    /// Answers everyone waiting to hear whether `peer` refuses this cluster.
    fn answer_probes(&mut self, peer: NodeId, refusal: Option<PeerRefusal>) {
        for reply in self.probes.remove(&peer).unwrap_or_default() {
            let _ = reply.send(refusal);
        }
    }

    fn request_id(&mut self) -> u64 {
        self.next_request_id += 1;
        self.next_request_id
    }

    /// Answers a membership call now if it was refused, else when the engine
    /// says it is done.
    fn track_membership(&mut self, id: u64, result: Result<(), ChangeMembershipError<N>>, reply: MembershipReply<N>) {
        match result {
            Ok(()) => {
                self.memberships.insert(id, reply);
            }
            Err(e) => {
                let _ = reply.send(Err(e));
            }
        }
    }

    fn flush_write_batch(&mut self) {
        if self.write_batch.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.write_batch);
        let (commands, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
        match self.engine.propose(commands) {
            Ok(Some(first)) => {
                for (i, reply) in replies.into_iter().enumerate() {
                    let log_id = LogId::new(first.leader_id, first.index + i as u64);
                    self.writes.push_back((log_id, reply));
                }
            }
            Ok(None) => {}
            Err(forward) => {
                for reply in replies {
                    let _ = reply.send(Err(WriteError::ForwardToLeader(forward.clone())));
                }
            }
        }
    }

    fn reply_when_committed(&mut self, result: Result<LogIndex, ChangeMembershipError<N>>, reply: IndexReply<N>) {
        match result {
            Ok(index) if index <= index_of(self.engine.committed()) => {
                let _ = reply.send(Ok(index));
            }
            Ok(index) => {
                let answer_by =
                    self.now_ms() + self.engine.config_election_timeout_max_ms() * COMMIT_WAIT_ELECTION_TIMEOUTS;
                self.commit_waiters.push((index, answer_by, reply))
            }
            Err(e) => {
                let _ = reply.send(Err(e));
            }
        }
    }

    fn reply_when_applied(&mut self, index: LogIndex, reply: ReadReply<N>) {
        if index <= index_of(self.applied) {
            let _ = reply.send(Ok(index));
        } else {
            self.reads_waiting_apply.push((index, reply));
        }
    }

    /// Runs outputs until the engine has nothing more to say.
    fn execute_outputs(&mut self) {
        loop {
            let mut outputs = std::mem::take(&mut self.outputs);
            self.engine.drain_outputs_into(&mut outputs);
            if outputs.is_empty() {
                self.outputs = outputs;
                break;
            }
            for output in outputs.drain(..) {
                if self.fatal.is_some() {
                    return;
                }
                if let Err(e) = self.execute(output) {
                    self.fail(e);
                    return;
                }
            }
            self.outputs = outputs;
        }
        let committed = index_of(self.engine.committed());
        if !self.commit_waiters.is_empty() {
            let now = self.now_ms();
            for (index, answer_by, reply) in std::mem::take(&mut self.commit_waiters) {
                if index <= committed {
                    let _ = reply.send(Ok(index));
                } else if now >= answer_by {
                    let _ = reply.send(Err(ChangeMembershipError::NotCommittedInTime { index }));
                } else {
                    self.commit_waiters.push((index, answer_by, reply));
                }
            }
        }
    }

    fn execute(&mut self, output: Output<C<SM>, N>) -> Result<(), StorageError> {
        match output {
            Output::SaveClusterId(cluster_id) => self.store.save_cluster_id(cluster_id)?,
            Output::SaveVote(vote) => self.store.save_vote(&vote)?,
            Output::AppendLog(entries) => {
                let last = entries.last().map(|e| e.log_id);
                if self.store.append(&entries, &self.notifier)? == AppendDurability::Durable {
                    if let Some(last) = last {
                        self.engine.on_log_flushed(last);
                    }
                }
            }
            Output::TruncateLog(since) => self.store.truncate(since)?,
            Output::PurgeLog(upto) => self.store.purge(upto)?,
            Output::SaveCommitted(committed) => self.store.save_committed(committed)?,
            Output::Send(message) => self.send(message),
            Output::Apply { upto } => {
                self.apply(upto);
                self.engine.trim_applied(index_of(self.applied));
            }
            Output::BuildSnapshot => self.start_snapshot_job()?,
            Output::ReadEntries { to, vote, from, end } => {
                super::log_reader::start(self.store.as_mut(), &mut self.engine, &self.events, to, vote, from..end)
            }
            Output::SendSnapshotChunk { to, offset, seq, vote } => self.send_snapshot_chunk(to, offset, seq, vote)?,
            Output::ReceiveSnapshotChunk { from, chunk } => self.receive_snapshot_chunk(from, chunk)?,
            Output::ReadReady { request_id, read_index } => {
                if let Some(reply) = self.reads.remove(&request_id) {
                    self.reply_when_applied(read_index, reply);
                }
            }
            Output::ReadFailed { request_id } => {
                if let Some(reply) = self.reads.remove(&request_id) {
                    let _ = reply.send(Err(ReadError::NotConfirmed));
                }
            }
            Output::LeadershipLost => {
                for (_, reply) in self.writes.drain(..) {
                    let _ = reply.send(Err(WriteError::LeadershipLost));
                }
                // a leader removed by the change it committed steps down right
                // after: that change did succeed
                let committed = index_of(self.engine.committed());
                for (index, _, reply) in self.commit_waiters.drain(..) {
                    let result =
                        if index <= committed { Ok(index) } else { Err(ChangeMembershipError::LeadershipLost) };
                    let _ = reply.send(result);
                }
            }
            Output::ProbeAnswered { from, seq: _, cluster_id } => {
                let ours = self.engine.cluster_id();
                let refusal = match cluster_id {
                    Some(theirs) if Some(theirs) != ours => Some(PeerRefusal::OtherCluster { theirs, ours }),
                    _ => None,
                };
                self.answer_probes(from, refusal);
            }
            Output::MembershipDone { request_id, result } => {
                if let Some(reply) = self.memberships.remove(&request_id) {
                    let _ = reply.send(result);
                }
            }
        }
        Ok(())
    }

    fn send(&self, message: Message<C<SM>, N>) {
        let to = message.envelope.to;
        // a node just removed is still told of its removal: its address is in
        // the memberships before the one in force
        let node = self.engine.log().latest_node(to).or_else(|| self.directory.get(&to));
        match node {
            Some(node) => self.network.send(node, message),
            None => tracing::debug!(node = self.engine.id(), to, "no address for peer; message dropped"),
        }
    }

    fn apply(&mut self, upto: LogId) {
        let from = index_of(self.applied) + 1;
        for index in from..=upto.index {
            let Some(entry) = self.engine.log().get(index) else { break };
            let log_id = entry.log_id;
            if let EntryPayload::Normal(command) = &entry.payload {
                let response = self.state_machine.apply(log_id, command);
                while self.writes.front().is_some_and(|(w, _)| w.index < index) {
                    let (_, reply) = self.writes.pop_front().expect("checked");
                    let _ = reply.send(Err(WriteError::LeadershipLost));
                }
                if self.writes.front().is_some_and(|(w, _)| *w == log_id) {
                    let (_, reply) = self.writes.pop_front().expect("checked");
                    let _ = reply.send(Ok(WriteResponse { log_id, response }));
                }
            }
            self.applied = Some(log_id);
        }
        let applied = index_of(self.applied);
        if !self.reads_waiting_apply.is_empty() {
            let (ready, waiting): (Vec<_>, Vec<_>) =
                self.reads_waiting_apply.drain(..).partition(|(i, _)| *i <= applied);
            self.reads_waiting_apply = waiting;
            for (index, reply) in ready {
                let _ = reply.send(Ok(index));
            }
        }
    }

    /// Where a snapshot taken now stands: the applied log id and the
    /// membership in force there.
    fn snapshot_point(&mut self) -> Result<SnapshotMeta<N>, StorageError> {
        let last_log_id = self.applied;
        let membership = self
            .engine
            .log()
            .membership_at(index_of(last_log_id))
            .cloned()
            .or_else(|| self.engine.membership().cloned());
        let Some(membership) = membership else {
            self.engine.on_snapshot_failed();
            return Err(StorageError::new("building a snapshot", "node is not initialized"));
        };
        Ok(SnapshotMeta { last_log_id, membership })
    }

    /// The current snapshot if it already covers `meta`.
    fn covers(&self, meta: &SnapshotMeta<N>) -> Option<Arc<Snapshot<N>>> {
        self.snapshot.as_ref().filter(|s| index_of(s.meta.last_log_id) >= index_of(meta.last_log_id)).cloned()
    }

    /// Builds and saves a snapshot here, on the driver task: for an explicit
    /// request and for a follower that needs one when none exists.
    fn build_snapshot(&mut self) -> Result<Arc<Snapshot<N>>, StorageError> {
        let meta = self.snapshot_point()?;
        if let Some(existing) = self.covers(&meta) {
            self.engine.on_snapshot_saved(existing.meta.last_log_id);
            return Ok(existing);
        }
        let data = self.state_machine.snapshot()?;
        self.save_snapshot(Snapshot { meta, data }, false)
    }

    /// Starts a periodic snapshot: the state machine's point-in-time copy is
    /// taken here, encoding and the store's write run on a blocking thread,
    /// and [`finish_snapshot`](Self::finish_snapshot) makes it current. A big
    /// state used to stall replication for the whole encode and write.
    fn start_snapshot_job(&mut self) -> Result<(), StorageError> {
        if self.snapshot_job_running {
            // The engine hears back when the running one finishes.
            return Ok(());
        }
        let meta = self.snapshot_point()?;
        if let Some(existing) = self.covers(&meta) {
            self.engine.on_snapshot_saved(existing.meta.last_log_id);
            return Ok(());
        }
        let job = self.state_machine.snapshot_job();
        let stager = self.store.snapshot_stager();
        let events = self.events.clone();
        self.snapshot_job_running = true;
        tokio::task::spawn_blocking(move || {
            let staged = stager.is_some();
            let result = job().and_then(|data| {
                let snapshot = Snapshot { meta, data };
                stager.map_or(Ok(()), |stage| stage(&snapshot)).map(|()| snapshot)
            });
            if let Some(events) = events.upgrade() {
                let _ = events.send(Event::SnapshotBuilt(Box::new(result), staged));
            }
        });
        Ok(())
    }

    /// Makes a snapshot built by [`start_snapshot_job`](Self::start_snapshot_job)
    /// current, unless one installed meanwhile covers it.
    fn finish_snapshot(&mut self, result: Result<Snapshot<N>, StorageError>, staged: bool) -> Result<(), StorageError> {
        let snapshot = result?;
        if let Some(existing) = self.covers(&snapshot.meta) {
            self.engine.on_snapshot_saved(existing.meta.last_log_id);
            return Ok(());
        }
        self.save_snapshot(snapshot, staged).map(drop)
    }

    /// Makes `snapshot` the current one: saved by the store (or, when
    /// `staged`, the copy a stager job wrote made current), kept for sending,
    /// and reported to the engine, which then purges the log behind it.
    fn save_snapshot(&mut self, snapshot: Snapshot<N>, staged: bool) -> Result<Arc<Snapshot<N>>, StorageError> {
        if staged {
            self.store.save_staged_snapshot(&snapshot)?;
        } else {
            self.store.save_snapshot(&snapshot)?;
        }
        let snapshot = Arc::new(snapshot);
        self.snapshot = Some(snapshot.clone());
        self.engine.on_snapshot_saved(snapshot.meta.last_log_id);
        Ok(snapshot)
    }

    fn send_snapshot_chunk(
        &mut self,
        to: u64,
        offset: u64,
        seq: u64,
        vote: crate::vote::Vote,
    ) -> Result<(), StorageError> {
        let snapshot = match &self.snapshot {
            Some(s) if index_of(s.meta.last_log_id) >= self.engine.snapshot_must_cover() => s.clone(),
            _ => self.build_snapshot()?,
        };
        let chunk = SnapshotChunk::cut(&snapshot, offset, self.engine.config_chunk_bytes(), vote, seq);
        let message = Message { envelope: self.engine.envelope(to), body: MessageBody::Snapshot(chunk) };
        self.send(message);
        Ok(())
    }

    fn receive_snapshot_chunk(&mut self, from: u64, chunk: SnapshotChunk<N>) -> Result<(), StorageError> {
        // a chunk of a leadership this node has since left behind (a newer vote
        // adopted earlier in the same batch) is answered with no sequence
        // number: echoing it under the new vote would acknowledge the new
        // leader's messages of that number
        let seq = if chunk.vote == self.engine.vote() { chunk.seq } else { 0 };
        let last = chunk.meta.last_log_id;
        match self.receiver.accept(chunk) {
            ChunkOutcome::Continue(next) => self.engine.on_snapshot_chunk_stored(from, last, next, seq),
            ChunkOutcome::Complete(snapshot) => {
                // the transfer is over: say so before the install, which may be long
                let received = snapshot.data.len() as u64;
                self.send(self.engine.snapshot_installing_reply(from, last, received, seq));
                self.store.save_snapshot(&snapshot)?;
                self.state_machine.restore(&snapshot.data)?;
                self.applied = snapshot.meta.last_log_id;
                let meta = snapshot.meta.clone();
                self.snapshot = Some(Arc::new(snapshot));
                self.engine.on_snapshot_installed(from, meta, seq);
            }
        }
        Ok(())
    }

    fn fail(&mut self, error: StorageError) -> Fatal {
        tracing::error!(node = self.engine.id(), %error, "storage failure: stopping the node");
        let fatal = Fatal::Storage(Arc::new(error));
        self.fatal = Some(fatal.clone());
        fatal
    }

    /// Publishes metrics. Changes of role, vote, leader or membership go out at
    /// once; progress-only changes (indexes) at most every millisecond, so a
    /// busy leader does not rebuild them for every batch.
    fn publish_metrics(&mut self, force: bool) {
        let structural = {
            let m = self.metrics.borrow();
            m.state != self.engine.server_state()
                || m.cluster_id != self.engine.cluster_id()
                || m.refused_peers != self.refused
                || m.vote != self.engine.vote()
                || m.current_leader != self.engine.current_leader()
                || m.membership.as_ref().map(|s| s.log_id) != self.engine.membership().map(|s| s.log_id)
                || m.membership_committed != self.engine.membership_committed()
        };
        let progress = self.progress_fingerprint();
        if !force && !structural && progress == self.published_progress {
            return;
        }
        let now = Instant::now();
        if !force && !structural {
            match self.metrics_due {
                Some(due) if now < due => return,
                Some(_) => {}
                None => {
                    self.metrics_due = Some(now + METRICS_INTERVAL);
                    return;
                }
            }
        }
        self.metrics_due = None;
        self.published_progress = progress;
        if structural {
            self.log_structural_change();
        }
        let engine = &self.engine;
        let snapshot_bytes = self.snapshot.as_ref().map_or(0, |s| s.data.len() as u64);
        let replication = match engine.role() {
            Role::Leader(leader) => Some(
                leader
                    .progress
                    .iter()
                    .filter_map(|(id, p)| Some((*id, replication_metrics(p, engine.catch_up(*id)?, snapshot_bytes))))
                    .collect::<BTreeMap<_, _>>(),
            ),
            _ => None,
        };
        let membership = engine.membership();
        let state = engine.server_state();
        let applied = self.applied;
        let snapshot = self.snapshot.as_ref().and_then(|s| s.meta.last_log_id);
        let refused = &self.refused;
        self.metrics.send_if_modified(|m| {
            let changed = m.state != state
                || m.cluster_id != engine.cluster_id()
                || &m.refused_peers != refused
                || m.vote != engine.vote()
                || m.current_leader != engine.current_leader()
                || m.last_log_index != engine.log().last_index()
                || m.committed != engine.committed()
                || m.last_applied != applied
                || m.snapshot != snapshot
                || m.purged != engine.log().purged()
                || m.membership.as_ref().map(|s| s.log_id) != membership.map(|s| s.log_id)
                || m.membership_committed != engine.membership_committed()
                || m.replication != replication;
            if changed {
                m.state = state;
                m.cluster_id = engine.cluster_id();
                m.refused_peers = refused.clone();
                m.vote = engine.vote();
                m.current_term = engine.vote().term();
                m.current_leader = engine.current_leader();
                m.last_log_index = engine.log().last_index();
                m.committed = engine.committed();
                m.last_applied = applied;
                m.snapshot = snapshot;
                m.purged = engine.log().purged();
                m.membership = membership.cloned();
                m.membership_committed = engine.membership_committed();
                m.replication = replication;
            }
            changed
        });
    }

    /// An INFO line for an operator when the role or the membership in force
    /// changes (compared with the last published metrics).
    fn log_structural_change(&self) {
        let (id, term) = (self.engine.id(), self.engine.vote().term());
        let m = self.metrics.borrow();
        let role = self.engine.server_state();
        if m.state != role {
            let leader = self.engine.current_leader();
            tracing::info!(node = id, term, from = ?m.state, to = ?role, ?leader, "role changed");
        }
        let membership = self.engine.membership();
        let committed = self.engine.membership_committed();
        if m.membership.as_ref().map(|s| s.log_id) != membership.map(|s| s.log_id)
            || m.membership_committed != committed
        {
            if let Some(s) = membership {
                let (log_index, configs) = (index_of(s.log_id), s.membership.configs());
                tracing::info!(node = id, term, log_index, ?configs, committed, "membership in force");
            }
        }
    }

    /// A cheap summary of every progress-only metric: equal means nothing to publish.
    fn progress_fingerprint(&self) -> [u64; 6] {
        let replication = match self.engine.role() {
            // the heartbeat time: catch-up rates and stalls are sampled per heartbeat
            Role::Leader(leader) => leader.progress.values().fold(leader.next_heartbeat_ms, |acc, p| {
                acc.wrapping_mul(31).wrapping_add(p.matched_index() * 2 + p.reverted as u64)
            }),
            _ => 0,
        };
        [
            self.engine.log().last_index(),
            index_of(self.engine.committed()),
            index_of(self.applied),
            index_of(self.snapshot.as_ref().and_then(|s| s.meta.last_log_id)),
            index_of(self.engine.log().purged()),
            replication,
        ]
    }

    fn stop(mut self) {
        let fatal = self.fatal.clone().unwrap_or(Fatal::Stopped);
        for (_, reply) in self.writes.drain(..) {
            let _ = reply.send(Err(WriteError::Fatal(fatal.clone())));
        }
        for (_, reply) in self.write_batch.drain(..) {
            let _ = reply.send(Err(WriteError::Fatal(fatal.clone())));
        }
        self.metrics.send_modify(|m| m.stopped = true);
        if let Some(reply) = self.stopping.take() {
            let _ = reply.send(());
        }
        tracing::info!(node = self.engine.id(), "stopped");
    }
}

/// What the metrics say of one follower: its progress and catch-up report.
fn replication_metrics(
    progress: &crate::engine::Progress,
    report: crate::engine::CatchUpReport,
    snapshot_bytes: u64,
) -> ReplicationMetrics {
    let snapshot = report.snapshot_bytes_sent.map(|sent| super::SnapshotTransfer {
        bytes_sent: sent,
        bytes_total: snapshot_bytes.max(sent),
        installing: report.snapshot_installing,
    });
    ReplicationMetrics {
        matched: progress.matched,
        reverted: progress.reverted,
        lag_entries: report.lag_entries,
        lag_bytes: report.lag_bytes,
        rate_entries_per_s: report.rate_entries_per_s,
        eta_ms: report.eta_ms,
        snapshot,
        stall: report.stall,
        entries_from_store: report.entries_from_store,
        snapshots_started: report.snapshots_started,
    }
}
