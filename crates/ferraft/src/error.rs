//! Errors returned to callers. Each variant says what the caller can do.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::cluster_id::ClusterId;
use crate::membership::{ChangeMembersError, MembershipError, StoredMembership};
use crate::node::{LogIndex, NodeId};
use crate::peer_refusal::PeerRefusal;
use crate::storage::StorageError;

/// The node cannot go on: storage failed or it was shut down.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Fatal {
    /// The node was shut down; build a new one to continue.
    #[error("raft node is shut down")]
    Stopped,
    /// The log store or state machine failed; the node stopped to stay safe.
    #[error(transparent)]
    Storage(Arc<StorageError>),
}

/// This node is not the leader; retry on the leader.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not the leader; the leader is {}", leader_id.map_or("unknown".to_string(), |id| id.to_string()))]
pub struct ForwardToLeader<N> {
    /// The leader this node knows of, if any.
    pub leader_id: Option<NodeId>,
    /// Its descriptor (address), if known.
    pub leader_node: Option<N>,
}

/// Why a write failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteError<N: std::fmt::Debug> {
    /// Send the write to the leader instead.
    #[error(transparent)]
    ForwardToLeader(#[from] ForwardToLeader<N>),
    /// Leadership was lost before the entry committed: the outcome is unknown
    /// (the entry may still commit under the next leader).
    #[error("leadership lost before the write committed; its outcome is unknown")]
    LeadershipLost,
    /// The node cannot continue.
    #[error(transparent)]
    Fatal(#[from] Fatal),
}

/// Why a linearizable or lease read could not be confirmed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReadError<N: std::fmt::Debug> {
    /// Read on the leader instead.
    #[error(transparent)]
    ForwardToLeader(#[from] ForwardToLeader<N>),
    /// A quorum did not confirm this node's leadership; retry (maybe elsewhere).
    #[error("leadership could not be confirmed by a quorum; retry")]
    NotConfirmed,
    /// The lease has expired or was never established; use a linearizable read.
    #[error("no valid leader lease; use a linearizable read")]
    LeaseExpired,
    /// The node cannot continue.
    #[error(transparent)]
    Fatal(#[from] Fatal),
}

/// Why `initialize` failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum InitializeError {
    /// The node already has a log; initialize only fresh nodes.
    #[error("node is already initialized (it has a log)")]
    NotAllowed,
    /// The given membership is malformed.
    #[error(transparent)]
    Invalid(#[from] MembershipError),
    /// This node is not among the initial members.
    #[error("node {node_id} is not in the initial membership")]
    NotInMembers {
        /// This node.
        node_id: NodeId,
    },
    /// A leader already reached this node (or it led, and its log was lost
    /// since): it belongs to that leader's cluster, which will replicate its
    /// log to it.
    #[error("node already joined cluster {cluster_id} under leader {leader}")]
    JoinedCluster {
        /// The cluster it joined.
        cluster_id: ClusterId,
        /// The leader that reached it.
        leader: NodeId,
    },
    /// The node already belongs to another cluster than the id given (it
    /// was reached by a leader, or initialized before a crash cut it short).
    #[error("node already belongs to cluster {ours}, not {given}")]
    OtherCluster {
        /// The node's cluster.
        ours: ClusterId,
        /// The id given to initialize.
        given: ClusterId,
    },
    /// A fellow initial member already follows (or led) a leader: of the
    /// cluster this node would start (it formed without this node, which
    /// joins it when its current leader reaches it), or of another one
    /// (`init` ran on another member first, with its own random id). Nothing
    /// happened. `leader` is the one that member knows: it may be gone, or be
    /// this very node before its data was lost.
    #[error(
        "member {member} already belongs to cluster {cluster_id}, which has had a leader (node {leader}): the cluster \
         formed without this node, which joins it when that cluster's current leader reaches it"
    )]
    ClusterFormed {
        /// The member that said so.
        member: NodeId,
        /// The cluster it belongs to.
        cluster_id: ClusterId,
        /// The leader it knows.
        leader: NodeId,
    },
    /// A fellow initial member belongs to another cluster that has not had a
    /// leader yet (it was initialized on its own, with another id): it would
    /// never join the cluster this node would start, since each refuses the
    /// other. Nothing happened.
    #[error(
        "member {member} belongs to cluster {cluster_id}, not to the one this node would start, and would never \
         join it: initialize only one member (or give every member one id), or wipe that member's data dir first"
    )]
    MemberOfOtherCluster {
        /// The member.
        member: NodeId,
        /// The cluster it belongs to.
        cluster_id: ClusterId,
    },
    /// Another initialize of this node is still asking its fellow members.
    #[error("another initialize of this node is in progress")]
    InProgress,
    /// The node cannot continue.
    #[error(transparent)]
    Fatal(#[from] Fatal),
}

/// Why a membership change failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ChangeMembershipError<N: std::fmt::Debug> {
    /// Send the change to the leader.
    #[error(transparent)]
    ForwardToLeader(#[from] ForwardToLeader<N>),
    /// The change does not apply to the current membership; nothing happened.
    #[error(transparent)]
    Invalid(#[from] ChangeMembersError),
    /// The change's precondition does not hold: the membership in force is not
    /// the entry it expected. Nothing happened.
    #[error(
        "the membership in force is entry {}, not the expected index {expected}",
        actual.log_id.map_or_else(|| "none".to_string(), |l| l.to_string())
    )]
    PreconditionFailed {
        /// The membership index the caller expected in force.
        expected: LogIndex,
        /// The membership in force.
        actual: Box<StoredMembership<N>>,
    },
    /// The entry was appended at `index` but did not commit within ten election
    /// timeouts (a majority of some config in force does not answer). Its
    /// outcome is unknown: it may still commit.
    #[error("the membership entry at {index} did not commit in time; its outcome is unknown")]
    NotCommittedInTime {
        /// The entry's index.
        index: LogIndex,
    },
    /// The change waited its turn behind other membership changes longer than
    /// the bound (twenty election timeouts) without being proposed. Nothing
    /// happened; retry later.
    #[error(
        "the change waited {waited_ms} ms behind other membership changes without being proposed; nothing happened"
    )]
    QueuedTooLong {
        /// How long it waited, in milliseconds.
        waited_ms: u64,
    },
    /// The change id is malformed (empty or too long). Nothing happened.
    #[error("a change id must be 1 to {max} bytes long")]
    BadChangeId {
        /// The longest id accepted, in bytes.
        max: usize,
    },
    /// The change id was already used for another change (other changes, or
    /// another `retain`): an id names one change, and a repeat must ask for
    /// the same one. Nothing happened; use a new id for a new change.
    #[error("change id {change_id:?} was already used for another change; use a new id for a new change")]
    ChangeIdReused {
        /// The id given.
        change_id: String,
    },
    /// `prepare` expected other voters or learners than the current ones.
    #[error("membership is not as expected: voters {voters:?}, learners {learners:?}")]
    Mismatch {
        /// Current voters.
        voters: BTreeSet<NodeId>,
        /// Current learners.
        learners: BTreeSet<NodeId>,
    },
    /// A node is listed both as voter and as learner.
    #[error("node {node_id} cannot be both voter and learner")]
    VoterAndLearner {
        /// The node listed twice.
        node_id: NodeId,
    },
    /// `commit` was given an index that is not the pending joint entry.
    #[error("log index {given} is not the pending prepared membership ({pending:?})")]
    WrongPrepareIndex {
        /// The index given.
        given: LogIndex,
        /// The pending joint membership's index, if any.
        pending: Option<LogIndex>,
    },
    /// Not enough old and new voters have applied the prepared membership yet;
    /// retry `commit` shortly.
    #[error("prepared membership is not yet applied by a majority of old and new voters")]
    NotReady,
    /// There is no joint membership to commit or abort.
    #[error("no prepared (joint) membership is pending")]
    NoPendingJoint,
    /// Leadership changed before the change committed; the outcome is unknown.
    #[error("leadership lost before the membership change committed; its outcome is unknown")]
    LeadershipLost,
    /// The change's joint config committed, then the cluster went back to the
    /// old voters: its new voters did not become reachable and caught up within
    /// `joint_exit_timeout_ms` (or an operator aborted it). The membership in
    /// force is `membership`, the old voters.
    #[error(
        "the change was rolled back after its joint step: the new voters did not make progress in time; \
         the membership in force is entry {}",
        membership.log_id.map_or_else(|| "none".to_string(), |l| l.to_string())
    )]
    RolledBack {
        /// The committed membership that reverted the joint config.
        membership: Box<StoredMembership<N>>,
    },
    /// The change took effect only in part: a step of it committed (its joint
    /// config was entered, or the learner to wait for was added), but this call
    /// did not see all it asked for happen (a later change or an abort
    /// superseded the joint config, committed; leadership moved before the
    /// learner caught up). A joint config whose exit this node did not see
    /// committed within the answer's bound is `LeadershipLost` instead: it
    /// leaves by itself, so the change may yet be done.
    /// Something did happen: look at `membership`, committed, before retrying.
    #[error(
        "the change took effect only in part: a step of it committed but not all it asked for was seen to happen; \
         the membership in force is entry {}",
        membership.log_id.map_or_else(|| "none".to_string(), |l| l.to_string())
    )]
    PartiallyApplied {
        /// The committed membership in force when the answer was decided.
        membership: Box<StoredMembership<N>>,
    },
    /// A node to readmit did not say which incarnation it is now (it is down,
    /// unreachable, or keeps no incarnation), so the leader cannot record it:
    /// start it and try again. Nothing changed.
    #[error("node {node_id} did not say which incarnation it is: start it (on its new data) and try again")]
    IncarnationUnknown {
        /// The node to readmit.
        node_id: NodeId,
    },
    /// The node to add answered, but refused this cluster: it belongs to
    /// another one, or its address leads to another node. Nothing changed.
    #[error("node {node_id} cannot be added: {refusal}")]
    PeerRefused {
        /// The node that was to be added.
        node_id: NodeId,
        /// What it said.
        refusal: PeerRefusal,
    },
    /// A learner did not catch up in time.
    #[error("learner {node_id} did not catch up in time")]
    LearnerLagging {
        /// The learner.
        node_id: NodeId,
    },
    /// Promoting this learner was refused: it is not caught up (or not heard
    /// from, or still receiving a snapshot). Retry once it caught up, add it
    /// with a readiness rule, or force the change.
    #[error("learner {node_id} is not ready to vote: it lacks {lag_entries} entries ({lag_bytes} bytes)")]
    LearnerNotReady {
        /// The learner.
        node_id: NodeId,
        /// Entries it lacks.
        lag_entries: u64,
        /// Bytes it lacks.
        lag_bytes: u64,
    },
    /// The node to replace is not a voter; nothing happened.
    #[error("node {node_id} is not a voter")]
    NotVoter {
        /// The node named.
        node_id: NodeId,
    },
    /// The node cannot continue.
    #[error(transparent)]
    Fatal(#[from] Fatal),
}

/// Why force-new-cluster was refused. Nothing changed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ForceNewClusterError {
    /// This node has no membership: there is no cluster to recover.
    #[error("this node is not initialized: there is no cluster to recover")]
    NotInitialized,
    /// The membership in force does not name this node, so it has no
    /// address to be the new cluster's voter under.
    #[error("the membership in force does not name this node")]
    NotMember,
    /// The confirmation was not given.
    #[error("force-new-cluster needs an explicit confirmation: it makes this node the only voter of a new cluster")]
    NotConfirmed,
    /// The node cannot continue.
    #[error(transparent)]
    Fatal(#[from] Fatal),
}

/// Why a leader transfer failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TransferError<N: std::fmt::Debug> {
    /// Ask the leader.
    #[error(transparent)]
    ForwardToLeader(#[from] ForwardToLeader<N>),
    /// The target is not a voter.
    #[error("node {node_id} is not a voter")]
    NotVoter {
        /// The target.
        node_id: NodeId,
    },
    /// No other voter to transfer to.
    #[error("no other voter to transfer leadership to")]
    NoTarget,
    /// The target did not take over in time; leadership may have moved anyway.
    #[error("leader transfer did not complete in time")]
    Timeout,
    /// The node cannot continue.
    #[error(transparent)]
    Fatal(#[from] Fatal),
}
