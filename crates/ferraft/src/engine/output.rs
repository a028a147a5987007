//! What the engine asks the runtime to do.

use crate::cluster_id::ClusterId;
use crate::entry::Entry;
use crate::error::ChangeMembershipError;
use crate::log_id::LogId;
use crate::membership::StoredMembership;
use crate::message::{Message, SnapshotChunk};
use crate::node::{LogIndex, NodeId};
use crate::vote::Vote;

/// One action for the runtime, executed in emission order.
#[derive(Debug, Clone)]
pub enum Output<C, N: crate::Node> {
    /// Persist the cluster id (set once); durable before any later output runs.
    SaveClusterId(ClusterId),
    /// Persist the vote; it must be durable before any later output runs.
    SaveVote(Vote),
    /// Append entries to the store; durability comes back as `on_log_flushed`.
    AppendLog(Vec<Entry<C, N>>),
    /// Delete entries with index `>=` this (uncommitted conflicting entries).
    TruncateLog(LogIndex),
    /// Delete entries up to this log id (covered by a snapshot).
    PurgeLog(LogId),
    /// Persist the committed log id (may be lazy).
    SaveCommitted(Option<LogId>),
    /// Deliver a message.
    Send(Message<C, N>),
    /// Apply committed entries up to `upto` (read them from the engine's log).
    Apply {
        /// The last entry to apply.
        upto: LogId,
    },
    /// Build a snapshot of the state machine at its applied point, then call
    /// `on_snapshot_saved`.
    BuildSnapshot,
    /// Read entries `from..end` from the log store, off the Raft task, and
    /// hand them to `on_entries_read` (or call `on_store_reads_unsupported`):
    /// they lie behind the in-memory cache, and follower `to` needs them.
    ReadEntries {
        /// The follower.
        to: NodeId,
        /// The leader's vote when it asked, to give back with the entries.
        vote: Vote,
        /// The first entry.
        from: LogIndex,
        /// One past the last entry.
        end: LogIndex,
    },
    /// Send the snapshot chunk at `offset` of the current snapshot to `to`.
    SendSnapshotChunk {
        /// The follower.
        to: NodeId,
        /// Byte offset of the chunk.
        offset: u64,
        /// Sequence to put in the chunk.
        seq: u64,
        /// The leader's vote to put in the chunk.
        vote: Vote,
    },
    /// A snapshot chunk arrived from the leader: store it, and once complete
    /// install it and call `on_snapshot_installed`; else `on_snapshot_chunk_stored`.
    ReceiveSnapshotChunk {
        /// The leader.
        from: NodeId,
        /// The chunk.
        chunk: SnapshotChunk<N>,
    },
    /// A read registered with `read_index` may proceed once `read_index` is applied.
    ReadReady {
        /// The caller's request id.
        request_id: u64,
        /// The index that must be applied before reading.
        read_index: LogIndex,
    },
    /// A read could not be confirmed (leadership lost).
    ReadFailed {
        /// The caller's request id.
        request_id: u64,
    },
    /// The leader took forwarded batch `forward_id`: its writes sit at
    /// consecutive indexes from `first`; answer each when the entry with
    /// exactly that log id applies here (another entry there: it was lost).
    ForwardAccepted {
        /// The id `Engine::forward_write` returned.
        forward_id: u64,
        /// The log id of the batch's first write.
        first: LogId,
    },
    /// Forwarded batch `forward_id` has no success to report.
    ForwardFailed {
        /// The id `Engine::forward_write` returned.
        forward_id: u64,
        /// Why.
        failure: super::ForwardFailure,
    },
    /// This node stopped being leader: writes not yet applied have an unknown outcome.
    LeadershipLost,
    /// A node answered a probe: it belongs to `cluster_id` (`None`: to no
    /// cluster yet).
    ProbeAnswered {
        /// The node.
        from: NodeId,
        /// The probe's sequence number.
        seq: u64,
        /// Its cluster.
        cluster_id: Option<ClusterId>,
        /// Its incarnation; 0 when its store keeps none.
        incarnation: u64,
        /// A leader of its cluster it knows, if any: its cluster formed.
        leader: Option<NodeId>,
    },
    /// A membership request finished.
    MembershipDone {
        /// The caller's request id.
        request_id: u64,
        /// The committed membership, or why it failed.
        result: Result<StoredMembership<N>, ChangeMembershipError<N>>,
    },
}
