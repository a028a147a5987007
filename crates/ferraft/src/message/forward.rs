//! Messages by which a follower serves clients itself: it hands their writes
//! to the leader and asks the leader for a read index, over the same
//! transport (and batched with the same traffic) as replication.

use serde::{Deserialize, Serialize};

use crate::entry::AppData;
use crate::leader_id::LeaderId;
use crate::log_id::LogId;
use crate::node::{LogIndex, NodeId};

/// Client commands a follower hands to its leader, to be proposed as
/// ordinary client writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound = "C: AppData")]
pub struct ForwardWrite<C> {
    /// The follower's id for this batch; the leader echoes it.
    pub id: u64,
    /// The leadership the batch is handed to. Only that leadership proposes
    /// it: a copy reaching the same node in a later term (a duplicate, or
    /// after a restart) is never proposed a second time.
    pub leader: LeaderId,
    /// The commands, proposed in this order at consecutive indexes.
    pub commands: Vec<C>,
}

/// The leader's answer to a [`ForwardWrite`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardWriteReply {
    /// The [`ForwardWrite::id`] answered.
    pub id: u64,
    /// What became of the batch.
    pub outcome: ForwardOutcome,
}

/// What became of a forwarded batch of writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ForwardOutcome {
    /// Proposed: the batch sits in the leader's log from `first` on. The
    /// follower answers each write when it applies the entry with exactly
    /// that log id (another entry there means the write was lost).
    Accepted {
        /// The log id of the batch's first command.
        first: LogId,
    },
    /// The batch committed up to `upto` (a log id of the leader's log): a
    /// follower whose log holds `upto` may commit up to it at once instead
    /// of waiting for the next append.
    Committed {
        /// The last committed entry of the batch.
        upto: LogId,
    },
    /// The receiver does not lead: nothing was proposed.
    NotLeader {
        /// The leader it knows of, if any.
        leader: Option<NodeId>,
    },
    /// The leader holds its log durably up to `upto` (an entry of its own
    /// term, at or after the batch's last entry). A follower that holds that
    /// prefix durably too commits it at once where it and the leader are a
    /// quorum of every config in force, instead of waiting for its
    /// acknowledgement to reach the leader and the commit news to come back.
    Flushed {
        /// The leader's last durable entry.
        upto: LogId,
    },
}

/// A follower asks its leader for a read index (see `reads.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadIndexAsk {
    /// The follower's id for this read; the leader echoes it.
    pub id: u64,
    /// The leader may answer from its lease, without a quorum round.
    pub lease: bool,
}

/// The leader's answer to a [`ReadIndexAsk`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadIndexReply {
    /// The [`ReadIndexAsk::id`] answered.
    pub id: u64,
    /// The read index, or why there is none.
    pub outcome: ReadIndexOutcome,
}

/// What a leader says to a read-index request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReadIndexOutcome {
    /// Leadership was confirmed after the request arrived: a read that
    /// reflects every entry up to `read_index` is linearizable.
    Ready {
        /// What the follower must apply before reading.
        read_index: LogIndex,
        /// The leader's committed log id (at least `read_index`): the
        /// follower commits up to it at once when its log holds it.
        committed: Option<LogId>,
    },
    /// Leadership could not be confirmed, or the receiver does not lead.
    NotConfirmed,
}
