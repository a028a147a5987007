//! The roles a node plays and their per-role state.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::node::{LogIndex, NodeId};
use crate::vote::Vote;

use super::membership_change::MembershipRequest;
use super::progress::Progress;
use super::reads::PendingRead;

/// The role as reported in metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServerState {
    /// Not part of a cluster yet.
    Uninitialized,
    /// Replicates but does not vote.
    Learner,
    /// A voter following a leader (or waiting for one).
    Follower,
    /// Campaigning.
    Candidate,
    /// Leading.
    Leader,
}

/// The role with its state.
#[derive(Debug)]
pub enum Role<N> {
    /// Following (or a learner, or uninitialized).
    Follower,
    /// Campaigning.
    Candidate(CandidateState),
    /// Leading.
    Leader(Box<LeaderState<N>>),
}

/// A campaign in progress.
#[derive(Debug, Clone)]
pub struct CandidateState {
    /// True while only asking for pre-votes.
    pub pre_vote: bool,
    /// The vote asked for.
    pub vote: Vote,
    /// Who granted it.
    pub granted: BTreeSet<NodeId>,
    /// Started by a leader transfer.
    pub transfer: bool,
}

/// The leader's bookkeeping.
#[derive(Debug)]
pub struct LeaderState<N> {
    /// Replication state per other member (voters and learners).
    pub progress: BTreeMap<NodeId, Progress>,
    /// Index of this term's first (blank) entry; reads wait for it to commit.
    pub term_start_index: LogIndex,
    /// Sequence number of the last message sent.
    pub seq: u64,
    /// Reads waiting for a quorum to confirm leadership.
    pub reads: VecDeque<PendingRead>,
    /// A heartbeat round is needed for newly registered reads.
    pub read_round_needed: bool,
    /// When the next heartbeat is due.
    pub next_heartbeat_ms: u64,
    /// Membership requests waiting their turn (propose-after-commit).
    pub membership_queue: VecDeque<MembershipRequest<N>>,
    /// The membership request whose entry awaits commit.
    pub membership_inflight: Option<(MembershipRequest<N>, LogIndex)>,
    /// The leader is handing over to this node until the deadline.
    pub transfer: Option<(NodeId, u64)>,
    /// When leadership began.
    pub since_ms: u64,
    /// Learners that joined by `prepare`, kept as learners at `commit`.
    pub prepared_learners: BTreeSet<NodeId>,
}
