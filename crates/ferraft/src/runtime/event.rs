//! What the public handle sends to a node's driver task.

use std::collections::{BTreeMap, BTreeSet};

use tokio::sync::oneshot;

use super::snapshot_job::SnapshotBuilt;
use crate::cluster_id::ClusterId;
use crate::error::{ChangeMembershipError, Fatal, InitializeError, ReadError, TransferError, WriteError};
use crate::log_id::LogId;
use crate::membership::{ChangeMembers, StoredMembership};
use crate::message::Message;
use crate::node::{LogIndex, NodeId};
use crate::peer_refusal::PeerRefusal;
use crate::state_machine::StateMachine;

/// The response to a committed and applied write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteResponse<R> {
    /// Where the write sits in the log.
    pub log_id: LogId,
    /// What the state machine returned.
    pub response: R,
}

pub(crate) type Reply<T> = oneshot::Sender<T>;
pub(crate) type WriteReply<SM, N> = Reply<Result<WriteResponse<<SM as StateMachine>::Response>, WriteError<N>>>;

/// A request to the driver.
pub(crate) enum Event<SM: StateMachine, N: crate::Node> {
    Message(Message<SM::Command, N>),
    Flushed(LogId),
    /// The store's pending appends will never be durable: the node stops.
    StoreFailed(crate::StorageError),
    Unreachable(NodeId),
    /// Forwarded writes to the peer were dropped unsent.
    Undelivered(NodeId, Vec<u64>),
    /// The transport reached the peer, which refused this node.
    Refused(NodeId, PeerRefusal),
    /// Ask a node about to be added which cluster it is in; the answer is
    /// its refusal, if it refuses this cluster.
    /// Asks a peer who it is: its incarnation (0 when not known: no answer
    /// in time, or not asked because this node is not the leader), or why it
    /// refuses this cluster.
    ProbePeer(NodeId, N, Reply<Result<u64, PeerRefusal>>),
    Write(SM::Command, WriteReply<SM, N>),
    /// A write served on any node: a follower hands it to the leader.
    WriteHere(SM::Command, WriteReply<SM, N>),
    /// A linearizable read served on any node (`true`: the leader may use its lease).
    ReadHere(bool, Reply<Result<LogIndex, ReadError<N>>>),
    ReadIndex(Reply<Result<LogIndex, ReadError<N>>>),
    LeaseRead(Reply<Result<LogIndex, ReadError<N>>>),
    /// Force-new-cluster under this new cluster id (see `force_new_cluster`).
    ForceNewCluster(ClusterId, Reply<Result<LogId, crate::error::ForceNewClusterError>>),
    /// The membership, the cluster id the caller gave, a fresh random one.
    Initialize(BTreeMap<NodeId, N>, Option<ClusterId>, ClusterId, Reply<Result<LogId, InitializeError>>),
    ChangeMembership(ChangeMembers<N>, bool, Reply<Result<StoredMembership<N>, ChangeMembershipError<N>>>),
    /// Readiness-aware membership calls (see `membership_ext`).
    MembershipExt(
        super::membership_ext::MembershipCall<N>,
        Reply<Result<StoredMembership<N>, ChangeMembershipError<N>>>,
    ),
    Prepare(JointPrepare, Reply<Result<LogIndex, ChangeMembershipError<N>>>),
    CommitJoint(LogIndex, Reply<Result<LogIndex, ChangeMembershipError<N>>>),
    AbortJoint(LogIndex, Reply<Result<LogIndex, ChangeMembershipError<N>>>),
    TransferLeader(Option<NodeId>, Reply<Result<NodeId, TransferError<N>>>),
    /// Where the change with this change id stands (on the leader).
    ChangeStatus(String, Reply<Result<crate::engine::ChangeStatus<N>, ChangeMembershipError<N>>>),
    Elect,
    Heartbeat,
    Snapshot(Reply<Result<Option<LogId>, Fatal>>),
    /// A snapshot encoded (and staged) on a blocking thread, back for the
    /// host to make current.
    SnapshotBuilt(SnapshotBuilt<N>),
    /// A snapshot received from a leader, checked and decoded on a blocking
    /// thread, back for the host to swap in.
    SnapshotDecoded(super::install_job::SnapshotDecoded<N>),
    /// Entries read from the store off the host, for a follower.
    EntriesRead(super::log_reader::EntriesRead<SM::Command, N>),
    /// A snapshot chunk read off the host, to send.
    ChunkRead(super::chunk_reader::ChunkRead<N>),
    Shutdown(Reply<()>),
}

/// The arguments of an explicit joint-consensus prepare.
#[derive(Debug, Clone)]
pub(crate) struct JointPrepare {
    pub expect_voters: BTreeSet<NodeId>,
    pub expect_learners: BTreeSet<NodeId>,
    pub voters: BTreeSet<NodeId>,
    pub learners: BTreeSet<NodeId>,
}
