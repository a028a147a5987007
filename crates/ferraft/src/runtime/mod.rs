//! The tokio runtime: one driver task per node feeds a [`NodeHost`], which
//! executes the engine's outputs; [`Raft`] is the handle applications hold.
//! The simulator drives the same host.

mod chunk_reader;
mod driver;
mod event;
mod force_new_cluster;
mod forwarding;
mod host;
mod host_outputs;
mod initialize_probe;
mod install_job;
mod job_spawner;
mod log_reader;
mod low_priority;
mod membership_ext;
mod metrics;
mod readmit;
mod reply;
mod reply_books;
mod snapshot_job;
mod snapshot_lifecycle;
mod snapshot_receiver;
mod snapshot_waits;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch, Mutex};
use tokio::task::JoinHandle;

/// How long a probe's answer is waited for, in (the longest) election
/// timeouts: by `add_learner` before it proposes, and by `initialize` for
/// members that do not answer (one not started yet is recorded later, by the
/// first leader that hears from it).
pub(crate) const PROBE_WAIT_ELECTION_TIMEOUTS: u64 = 2;

pub use chunk_reader::{ChunkRead, ChunkTask};
pub use event::WriteResponse;
pub use host::{HostParts, NodeHost};
pub use initialize_probe::InitializeResult;
pub use install_job::{InstallTask, SnapshotDecoded};
pub use job_spawner::JobSpawner;
pub use log_reader::{EntriesRead, ReadTask};
pub use membership_ext::{AddLearnerOptions, MembershipCall};
pub use metrics::{RaftMetrics, ReplicationMetrics, SnapshotTransfer, Wait, WaitError};
pub use reply::{Answer, Oneshot, ReplyKind};
pub use reply_books::{IndexResult, MembershipResult, ReadResult, WriteResult};
pub use snapshot_job::{SnapshotBuilt, SnapshotTask};
pub use snapshot_waits::SnapshotResult;

use crate::cluster_id::ClusterId;
use crate::config::{Config, ConfigError};
use crate::engine::ServerState;
use crate::error::{ChangeMembershipError, Fatal, InitializeError, ReadError, TransferError, WriteError};
use crate::log_id::{index_of, LogId};
use crate::membership::{ChangeMembers, StoredMembership};
use crate::message::Message;
use crate::network::Network;
use crate::node::{LogIndex, Node, NodeId};
use crate::peer_refusal::PeerRefusal;
use crate::state_machine::StateMachine;
use crate::storage::{LogStore, StorageError};
use event::{Event, JointPrepare};

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The store could not be read.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// A running Raft node. Cheap to clone; every clone drives the same node.
pub struct Raft<SM: StateMachine, N: Node = crate::BasicNode> {
    inner: Arc<Inner<SM, N>>,
}

impl<SM: StateMachine, N: Node> Clone for Raft<SM, N> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone() }
    }
}

struct Inner<SM: StateMachine, N: Node> {
    id: NodeId,
    /// How long `add_learner` waits for the new node to say who it is.
    probe_timeout: Duration,
    tx: mpsc::UnboundedSender<Event<SM, N>>,
    metrics: watch::Receiver<RaftMetrics<N>>,
    driver: Mutex<Option<JoinHandle<()>>>,
}

type Command<SM> = <SM as StateMachine>::Command;

/// Keeps [`Config::follower_sync_inline`] only where the driver has its
/// thread to itself: a current-thread runtime. On a multi-thread runtime the
/// driver's thread is a worker other tasks are queued on (other nodes, the
/// application's), and a sync there stalls them all: measured with three
/// nodes on two workers, 256 puts in flight lost 10–46% of their put/s.
fn sync_inline_only_on_own_thread(mut config: Config) -> Config {
    use tokio::runtime::{Handle, RuntimeFlavor};
    if Handle::current().runtime_flavor() != RuntimeFlavor::CurrentThread {
        config.follower_sync_inline = false;
    }
    config
}

impl<SM: StateMachine, N: Node> Raft<SM, N> {
    /// Starts node `id`: reads the store, restores the latest snapshot into the
    /// state machine, and spawns the driver on the current tokio runtime.
    /// A node with persisted state resumes where it stopped; a fresh node waits
    /// to be initialized or added by a leader.
    pub async fn new(
        id: impl Into<NodeId>,
        config: Config,
        network: Arc<dyn Network<Command<SM>, N>>,
        store: Box<dyn LogStore<Command<SM>, N>>,
        state_machine: SM,
    ) -> Result<Self, StartError> {
        let id = id.into();
        config.validate()?;
        let config = sync_inline_only_on_own_thread(config);
        let probe_timeout = Duration::from_millis(config.election_timeout_max_ms * PROBE_WAIT_ELECTION_TIMEOUTS);
        let (tx, rx) = mpsc::unbounded_channel();
        let (driver, metrics) =
            driver::Driver::start(id, Arc::new(config), network, store, state_machine, tx.clone(), rx)?;
        let handle = tokio::spawn(driver.run());
        Ok(Self { inner: Arc::new(Inner { id, probe_timeout, tx, metrics, driver: Mutex::new(Some(handle)) }) })
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.inner.id
    }

    /// The cluster this node belongs to; `None` until it is initialized or
    /// a leader reaches it. Transports check it at their handshake.
    pub fn cluster_id(&self) -> Option<ClusterId> {
        self.inner.metrics.borrow().cluster_id
    }

    async fn call<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Event<SM, N>) -> Result<T, Fatal> {
        let (tx, rx) = oneshot::channel();
        self.inner.tx.send(make(tx)).map_err(|_| Fatal::Stopped)?;
        rx.await.map_err(|_| Fatal::Stopped)
    }

    /// Hands a message from a peer to this node (called by the transport).
    pub fn receive(&self, message: Message<Command<SM>, N>) {
        let _ = self.inner.tx.send(Event::Message(message));
    }

    /// Tells this node that `peer` cannot be reached (called by the transport).
    pub fn report_unreachable(&self, peer: NodeId) {
        let _ = self.inner.tx.send(Event::Unreachable(peer));
    }

    /// Tells this node that forwarded writes it sent to `peer` (the ids of
    /// `MessageBody::ForwardWrite` messages) were dropped unsent (called by
    /// the transport): their callers learn that nothing was proposed.
    pub fn report_undelivered(&self, peer: NodeId, forward_ids: Vec<u64>) {
        let _ = self.inner.tx.send(Event::Undelivered(peer, forward_ids));
    }

    /// Tells this node that `peer` answered but refused it (called by the
    /// transport): shown in the metrics, and an `add_learner` of that peer fails.
    pub fn report_refused(&self, peer: NodeId, refusal: PeerRefusal) {
        let _ = self.inner.tx.send(Event::Refused(peer, refusal));
    }

    /// Makes a fresh node the first member(s) of a cluster: `members` become
    /// the voters, and the cluster gets a random [`ClusterId`] (or
    /// `Config::cluster_id`, when set). Call it on one node: the others join
    /// the cluster when its leader reaches them. To initialize every initial
    /// member instead, give them one id with [`Raft::initialize_in_cluster`].
    /// First asks the other members who they are, so the first entry
    /// records their incarnations; it waits up to two election timeouts for
    /// members that do not answer. Fails with `ClusterFormed`, changing
    /// nothing, when one of them already follows a leader: the cluster
    /// formed without this node, and that leader brings it the log; with
    /// `MemberOfOtherCluster` when one belongs to another cluster.
    ///
    /// `Ok` says the initial entry (its log id) was handed to the store, not
    /// that it is durable or that the cluster formed: the node campaigns only
    /// once the entry is durable, and a crash before that leaves the node
    /// fresh, to be initialized again. Wait for a leader
    /// ([`Raft::wait`]`.for_leader()`) to know the cluster formed.
    pub async fn initialize(
        &self,
        members: impl Into<std::collections::BTreeMap<NodeId, N>>,
    ) -> Result<LogId, InitializeError> {
        self.initialize_as(members.into(), None).await
    }

    /// Like [`Raft::initialize`], with the cluster id chosen by the caller
    /// (an operator who scripts it, or several members initialized apart).
    /// Fails with `OtherCluster` if the node already belongs to another.
    pub async fn initialize_in_cluster(
        &self,
        members: impl Into<std::collections::BTreeMap<NodeId, N>>,
        cluster_id: ClusterId,
    ) -> Result<LogId, InitializeError> {
        self.initialize_as(members.into(), Some(cluster_id)).await
    }

    async fn initialize_as(
        &self,
        members: std::collections::BTreeMap<NodeId, N>,
        cluster_id: Option<ClusterId>,
    ) -> Result<LogId, InitializeError> {
        self.call(|tx| Event::Initialize(members, cluster_id, ClusterId::random(), tx)).await?
    }

    /// Replicates a command; returns the state machine's response once applied
    /// here. Concurrent calls are batched into one append.
    pub async fn client_write(&self, command: Command<SM>) -> Result<WriteResponse<SM::Response>, WriteError<N>> {
        self.call(|tx| Event::Write(command, tx)).await?
    }

    /// Like [`Raft::client_write`], served on any node: a follower hands the
    /// command to the leader over the Raft transport (batched with whatever
    /// else goes there) and answers once the entry applies here, with this
    /// node's state machine's response. The command is sent once and never
    /// resent: when the leader changes before the outcome is known the
    /// answer is `LeadershipLost` (outcome unknown); `ForwardToLeader` means
    /// nothing was proposed.
    pub async fn client_write_here(&self, command: Command<SM>) -> Result<WriteResponse<SM::Response>, WriteError<N>> {
        self.call(|tx| Event::WriteHere(command, tx)).await?
    }

    /// Like [`Raft::ensure_linearizable`], served on any node: a follower asks
    /// the leader for a read index (the leader confirms its leadership with a
    /// quorum as for its own reads) and waits until it applied that far; read
    /// its state machine afterwards. A follower cut off from the leader fails
    /// with `NotConfirmed` or `ForwardToLeader` (no leader known), never
    /// serving stale data.
    pub async fn ensure_linearizable_here(&self) -> Result<LogIndex, ReadError<N>> {
        self.call(|tx| Event::ReadHere(false, tx)).await?
    }

    /// Like [`Raft::ensure_linearizable_here`], but the leader may answer from
    /// its lease, with no quorum round (on the leader itself: no round trip).
    pub async fn lease_read_here(&self) -> Result<LogIndex, ReadError<N>> {
        self.call(|tx| Event::ReadHere(true, tx)).await?
    }

    /// Confirms this node leads and waits until its state machine reflects
    /// every write committed before the call; read the state machine afterwards.
    /// Returns the read index.
    pub async fn ensure_linearizable(&self) -> Result<LogIndex, ReadError<N>> {
        self.call(Event::ReadIndex).await?
    }

    /// Like [`Raft::ensure_linearizable`] but served from the leader lease
    /// without a round trip; fails with `LeaseExpired` when no lease is held.
    pub async fn lease_read(&self) -> Result<LogIndex, ReadError<N>> {
        self.call(Event::LeaseRead).await?
    }

    /// Adds a learner (non-voter) and starts replicating to it. With
    /// `blocking`, returns once it holds the leader's log as of the call
    /// (progress shows in the leader's `metrics().replication`).
    ///
    /// First asks the node which cluster it is in: a node of another cluster
    /// (or another node at that address) is refused with `PeerRefused`, and
    /// nothing changes. A node that does not answer in time (not started
    /// yet, down) is added all the same.
    pub async fn add_learner(
        &self,
        id: impl Into<NodeId>,
        node: N,
        blocking: bool,
    ) -> Result<StoredMembership<N>, ChangeMembershipError<N>> {
        let id = id.into();
        self.probe_new_member(id, &node).await?;
        let membership = self.change_membership(ChangeMembers::AddNodes([(id, node)].into()), false).await?;
        if blocking {
            let target = self.metrics().borrow().last_log_index;
            let what = format!("learner {id} to reach index {target}");
            // the role, not the vote: a leader that steps down keeps naming
            // itself in its vote until it hears of another leader
            let caught_up = |m: &RaftMetrics<N>| {
                m.replication.as_ref().and_then(|r| r.get(&id)).is_some_and(|p| index_of(p.matched) >= target)
                    || m.state != ServerState::Leader
                    || m.refused_peers.contains_key(&id)
            };
            let m = self
                .wait(Duration::from_secs(u64::MAX / 4))
                .metrics(caught_up, what)
                .await
                .map_err(|_| Fatal::Stopped)?;
            if let Some(refusal) = m.refused_peers.get(&id) {
                // refused after the learner entry committed: it is a member now,
                // so "nothing changed" (PeerRefused) would be untrue
                tracing::warn!(node = %self.id(), learner = %id, ?refusal, "the added learner refuses this cluster");
                return Err(ChangeMembershipError::PartiallyApplied { membership: Box::new(membership) });
            }
            if m.state != ServerState::Leader {
                // the learner entry committed (that is what was answered above)
                // but whether it caught up is not known here
                return Err(ChangeMembershipError::PartiallyApplied { membership: Box::new(membership) });
            }
        }
        Ok(membership)
    }

    /// Asks the node to be added which cluster it is in: one of another
    /// cluster, or another node at that address, is refused before anything
    /// is proposed. A node that does not answer in time is let through.
    /// Returns the node's incarnation (0 when it did not say), which the
    /// leader now knows and records when the node becomes a learner.
    pub(crate) async fn probe_new_member(&self, id: NodeId, node: &N) -> Result<u64, ChangeMembershipError<N>> {
        let asked = self.call(|tx| Event::ProbePeer(id, node.clone(), tx));
        match tokio::time::timeout(self.inner.probe_timeout, asked).await {
            Ok(answer) => answer?.map_err(|refusal| ChangeMembershipError::PeerRefused { node_id: id, refusal }),
            Err(_) => Ok(0),
        }
    }

    /// Changes membership by the extended algorithm (one step when safe, else
    /// through a joint config); returns once the last step is committed.
    /// With `retain`, removed voters stay as learners.
    pub async fn change_membership(
        &self,
        change: ChangeMembers<N>,
        retain: bool,
    ) -> Result<StoredMembership<N>, ChangeMembershipError<N>> {
        self.call(|tx| Event::ChangeMembership(change, retain, tx)).await?
    }

    /// Explicit joint consensus, step 1: see [`crate::engine::Engine::prepare_membership`].
    /// Returns the index of the committed joint entry.
    pub async fn prepare_membership(
        &self,
        expect_voters: BTreeSet<NodeId>,
        expect_learners: BTreeSet<NodeId>,
        voters: BTreeSet<NodeId>,
        learners: BTreeSet<NodeId>,
    ) -> Result<LogIndex, ChangeMembershipError<N>> {
        let prepare = JointPrepare { expect_voters, expect_learners, voters, learners };
        self.call(|tx| Event::Prepare(prepare, tx)).await?
    }

    /// Explicit joint consensus, step 2: leaves the joint config for the new one.
    pub async fn commit_membership(&self, prepare_index: LogIndex) -> Result<LogIndex, ChangeMembershipError<N>> {
        self.call(|tx| Event::CommitJoint(prepare_index, tx)).await?
    }

    /// Explicit joint consensus, undo: returns the joint config prepared at
    /// `prepare_index` to its old config. Repeating it returns the same index;
    /// it never reverts a later prepare.
    pub async fn abort_membership(&self, prepare_index: LogIndex) -> Result<LogIndex, ChangeMembershipError<N>> {
        self.call(|tx| Event::AbortJoint(prepare_index, tx)).await?
    }

    /// Hands leadership to `to` (or the most up-to-date voter); returns once
    /// this node sees the new leader.
    pub async fn transfer_leader(&self, to: Option<NodeId>) -> Result<NodeId, TransferError<N>> {
        let target = self.call(|tx| Event::TransferLeader(to, tx)).await??;
        if target == self.id() {
            return Ok(target);
        }
        let timeout = Duration::from_secs(5);
        match self.wait(timeout).leader_is(target).await {
            Ok(_) => Ok(target),
            Err(WaitError::Stopped) => Err(Fatal::Stopped.into()),
            Err(WaitError::Timeout { .. }) => Err(TransferError::Timeout),
        }
    }

    /// Starts an election now, if this node may campaign (a voter whose
    /// log is durable: right after `initialize`, it campaigns once its
    /// initial entry is, by itself).
    pub fn trigger_elect(&self) {
        let _ = self.inner.tx.send(Event::Elect);
    }

    /// Sends heartbeats now (if leader).
    pub fn trigger_heartbeat(&self) {
        let _ = self.inner.tx.send(Event::Heartbeat);
    }

    /// Builds and saves a snapshot now; returns its last log id.
    pub async fn trigger_snapshot(&self) -> Result<Option<LogId>, Fatal> {
        self.call(Event::Snapshot).await?
    }

    /// The metrics channel: always holds the latest state.
    pub fn metrics(&self) -> watch::Receiver<RaftMetrics<N>> {
        self.inner.metrics.clone()
    }

    /// Helpers that wait up to `timeout` for a condition on the metrics.
    pub fn wait(&self, timeout: Duration) -> Wait<N> {
        Wait { rx: self.metrics(), timeout }
    }

    /// Stops the node: flushes what is pending and ends the driver task.
    pub async fn shutdown(&self) -> Result<(), Fatal> {
        let _ = self.call(Event::Shutdown).await;
        if let Some(handle) = self.inner.driver.lock().await.take() {
            let _ = handle.await;
        }
        Ok(())
    }
}
