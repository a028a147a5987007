//! Messages between nodes.
//!
//! Raft here is message passing: every request and reply is a one-way
//! [`Message`], so replication pipelines naturally and the engine needs no
//! notion of an outstanding call.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::entry::{AppData, Entry};
use crate::log_id::LogId;
use crate::node::{LogIndex, NodeId};
use crate::snapshot::SnapshotMeta;
use crate::vote::Vote;

mod forward;
pub use forward::{ForwardOutcome, ForwardWrite, ForwardWriteReply, ReadIndexAsk, ReadIndexOutcome, ReadIndexReply};

/// Who a message is from and for. A receiver drops messages of another cluster
/// or meant for another node: a stale address can then never make one node act
/// on another's traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The cluster the sender belongs to.
    pub cluster_id: u64,
    /// The sending node.
    pub from: NodeId,
    /// The node the sender means to reach.
    pub to: NodeId,
    /// The sender's incarnation (see [`crate::incarnation`]); 0 when its
    /// store keeps none.
    pub from_incarnation: u64,
    /// The incarnation of `to` the sender's membership records (for a reply:
    /// the one that asked); 0 when not known. A receiver of another
    /// incarnation drops the message: it was meant for the node's data
    /// before a wipe.
    pub to_incarnation: u64,
}

/// A message with its envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound = "C: AppData, N: crate::Node")]
pub struct Message<C, N> {
    /// Sender, receiver, cluster.
    pub envelope: Envelope,
    /// The request or reply.
    pub body: MessageBody<C, N>,
}

/// The request or reply a message carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound = "C: AppData, N: crate::Node")]
pub enum MessageBody<C, N> {
    /// A (pre-)vote request.
    Vote(VoteRequest<N>),
    /// The answer to a (pre-)vote request.
    VoteReply(VoteReply),
    /// Entries, or an empty heartbeat.
    Append(AppendEntries<C, N>),
    /// The answer to an append.
    AppendReply(AppendReply),
    /// One chunk of a snapshot.
    Snapshot(SnapshotChunk<N>),
    /// The answer to a snapshot chunk.
    SnapshotReply(SnapshotReply),
    /// Leader transfer: campaign now, skipping pre-vote and leader stickiness.
    TimeoutNow(TimeoutNow),
    /// Asks a node which cluster it belongs to, before it is added; answered
    /// even across clusters, and changes nothing on the receiver.
    Probe(Probe<N>),
    /// The answer to a probe.
    ProbeReply(ProbeReply),
    /// Client writes a follower hands to the leader.
    ForwardWrite(ForwardWrite<C>),
    /// The answer to a forwarded write.
    ForwardWriteReply(ForwardWriteReply),
    /// A follower asks the leader for a read index.
    ReadIndexAsk(ReadIndexAsk),
    /// The answer to a read-index request.
    ReadIndexReply(ReadIndexReply),
}

/// Asks for a vote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound = "N: crate::Node")]
pub struct VoteRequest<N> {
    /// The candidate's own descriptor, so a voter that does not know the
    /// cluster yet (a fresh initial member) can answer.
    pub candidate_node: Option<N>,
    /// The candidate's vote for itself (for a pre-vote: the vote it would cast).
    pub vote: Vote,
    /// The candidate's last log id: voters refuse a less up-to-date log.
    pub last_log_id: Option<LogId>,
    /// A pre-vote changes no state on the receiver.
    pub pre_vote: bool,
    /// Sent on a leader's request (leader transfer): overrides leader stickiness.
    pub transfer: bool,
}

/// Answers a vote request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteReply {
    /// The responder's vote after handling the request.
    pub vote: Vote,
    /// Whether the vote (or pre-vote) is granted.
    pub granted: bool,
    /// Echoes the request's flag.
    pub pre_vote: bool,
    /// The responder's last log id.
    pub last_log_id: Option<LogId>,
    /// The responder's membership does not name the candidate at all: the
    /// vote was not considered (and the candidate's term not adopted).
    pub not_member: bool,
}

/// Replicates entries (or, empty, asserts leadership).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound = "C: AppData, N: crate::Node")]
pub struct AppendEntries<C, N> {
    /// The leader's committed vote.
    pub vote: Vote,
    /// The entry just before `entries`; the receiver must hold it.
    pub prev_log_id: Option<LogId>,
    /// Entries to append after `prev_log_id`.
    pub entries: Vec<Entry<C, N>>,
    /// The leader's committed log id.
    pub committed: Option<LogId>,
    /// The leader's send sequence; echoed so the leader can confirm reads.
    pub seq: u64,
    /// The leader's own descriptor while probing a follower, so a follower
    /// that does not know the cluster yet (new or wiped) can answer.
    pub leader_node: Option<N>,
}

/// Answers an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendReply {
    /// The responder's vote.
    pub vote: Vote,
    /// Echo of the request's `seq`.
    pub seq: u64,
    /// What happened.
    pub outcome: AppendOutcome,
    /// The responder's committed index (it has learned entries up to here are
    /// committed and applies them); lets the leader judge readiness.
    pub committed: LogIndex,
}

/// The outcome of an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AppendOutcome {
    /// The log matches the leader's up to and including `matched`, durably.
    Success {
        /// The last durable entry known to match.
        matched: Option<LogId>,
    },
    /// `prev_log_id` was not found. `last_index` hints where to retry: the
    /// receiver's last index, or before the conflicting term.
    Conflict {
        /// The index the leader should retry from (exclusive: prev = this).
        hint_index: LogIndex,
        /// The responder's last log index: below what it acknowledged before
        /// means its log went backwards (wiped disk).
        last_index: LogIndex,
    },
    /// The receiver holds a greater vote: the sender is no longer leader.
    Rejected,
}

/// One chunk of a snapshot transfer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound = "N: crate::Node")]
pub struct SnapshotChunk<N> {
    /// The leader's committed vote.
    pub vote: Vote,
    /// Which snapshot this chunk belongs to. The chunk at offset 0 carries
    /// the whole metadata; the others leave its remembered `changes` out
    /// (empty): they can be large, and the receiver keeps those of the
    /// chunk at 0, which every transfer starts with or is sent back to.
    pub meta: SnapshotMeta<N>,
    /// Byte offset of `data` in the snapshot.
    pub offset: u64,
    /// The bytes: a slice of the received frame where the transport shares it
    /// (see [`crate::shared_bytes`]).
    #[serde(deserialize_with = "crate::shared_bytes::deserialize")]
    pub data: Bytes,
    /// True on the last chunk.
    pub done: bool,
    /// The crc32c of the whole snapshot's bytes: names the bytes, so a
    /// receiver resumes only a transfer of these very bytes (two nodes may
    /// encode the same state differently) and checks them once all arrived.
    pub checksum: u32,
    /// Echoed sequence.
    pub seq: u64,
    /// The leader's own descriptor: a node restarted with no data knows no
    /// address to answer at, and a leader streaming a snapshot sends it no
    /// heartbeats.
    pub leader_node: Option<N>,
}

impl<N: crate::Node> SnapshotChunk<N> {
    /// The chunk of `snapshot` that starts at `offset`, at most `chunk_bytes`
    /// long, from the leader `leader_node`: only those bytes are read (from
    /// the file, for a snapshot on disk).
    pub fn cut(
        snapshot: &crate::snapshot::Snapshot<N>,
        offset: u64,
        chunk_bytes: usize,
        vote: Vote,
        seq: u64,
        leader_node: Option<N>,
    ) -> std::io::Result<Self> {
        let len = snapshot.data.len();
        let start = offset.min(len);
        let data = snapshot.data.read_chunk(start, chunk_bytes)?;
        let meta = match start {
            0 => snapshot.meta.clone(),
            _ => SnapshotMeta {
                last_log_id: snapshot.meta.last_log_id,
                membership: snapshot.meta.membership.clone(),
                changes: Default::default(),
            },
        };
        Ok(Self {
            vote,
            meta,
            offset: start,
            done: start + data.len() as u64 == len,
            data,
            checksum: snapshot.data.checksum(),
            seq,
            leader_node,
        })
    }
}

/// Answers a snapshot chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotReply {
    /// The responder's vote.
    pub vote: Vote,
    /// The snapshot's last log id.
    pub last_log_id: Option<LogId>,
    /// Bytes received so far (the next offset to send); `u64::MAX` once installed.
    pub next_offset: u64,
    /// Echoed sequence.
    pub seq: u64,
    /// Every byte arrived and the receiver is installing the snapshot: the
    /// transfer is over, and a long install is not a stalled transfer.
    #[serde(default)]
    pub installing: bool,
}

/// Asks the receiver to campaign at once (leader transfer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeoutNow {
    /// The current leader's vote.
    pub vote: Vote,
}

/// Asks a node who it is; see [`MessageBody::Probe`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound = "N: crate::Node")]
pub struct Probe<N> {
    /// Echoed, so the asker can match the answer.
    pub seq: u64,
    /// The asker's descriptor: the probed node knows nothing of it yet.
    pub asker_node: Option<N>,
}

/// Says which cluster the answering node belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeReply {
    /// The probe's `seq`.
    pub seq: u64,
    /// The responder's cluster; 0 when it has none yet.
    pub cluster_id: u64,
    /// The responder's incarnation; 0 when its store keeps none.
    pub incarnation: u64,
    /// A leader of its cluster it knows (followed, was, or holds entries
    /// of); `None` when none: its cluster has not formed as far as it
    /// knows. Not 0 for none: 0 is a node id like any other.
    pub leader: Option<NodeId>,
}

impl<C: AppData, N: crate::Node> MessageBody<C, N> {
    /// The vote the sender held when sending; a probe and its answer carry
    /// none (the default vote).
    pub fn vote(&self) -> Vote {
        match self {
            Self::Probe(_) | Self::ProbeReply(_) => Vote::default(),
            // client traffic: answered on its own terms, never a step down
            Self::ForwardWrite(_) | Self::ForwardWriteReply(_) | Self::ReadIndexAsk(_) | Self::ReadIndexReply(_) => {
                Vote::default()
            }
            Self::Vote(m) => m.vote,
            Self::VoteReply(m) => m.vote,
            Self::Append(m) => m.vote,
            Self::AppendReply(m) => m.vote,
            Self::Snapshot(m) => m.vote,
            Self::SnapshotReply(m) => m.vote,
            Self::TimeoutNow(m) => m.vote,
        }
    }

    /// Whether this answers a request: it is then meant for the incarnation
    /// that asked, which may be newer than the one the sender records.
    pub fn is_reply(&self) -> bool {
        matches!(
            self,
            Self::VoteReply(_)
                | Self::AppendReply(_)
                | Self::SnapshotReply(_)
                | Self::ProbeReply(_)
                | Self::ForwardWriteReply(_)
                | Self::ReadIndexReply(_)
        )
    }
}
