//! What waits for a snapshot job: snapshots are built off the host, so a
//! caller asking for one now, and a chunk for a follower when no snapshot
//! covers what it needs, wait for the job instead of encoding the state on
//! the Raft task.

use super::reply::ReplyKind;
use crate::error::Fatal;
use crate::log_id::LogId;
use crate::node::{LogIndex, NodeId};
use crate::vote::Vote;

/// The answer to an explicit snapshot request: the snapshot's last log id.
pub type SnapshotResult = Result<Option<LogId>, Fatal>;

/// A chunk the engine asked for before a snapshot existed to cut it from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WaitingChunk {
    pub(crate) to: NodeId,
    pub(crate) offset: u64,
    pub(crate) seq: u64,
    pub(crate) vote: Vote,
}

/// Callers and chunks waiting for the running snapshot job.
pub(crate) struct SnapshotWaits<R: ReplyKind> {
    /// Each caller, with the applied index its snapshot must cover.
    pub(crate) callers: Vec<(LogIndex, R::Reply<SnapshotResult>)>,
    pub(crate) chunks: Vec<WaitingChunk>,
}

impl<R: ReplyKind> Default for SnapshotWaits<R> {
    fn default() -> Self {
        Self { callers: Vec::new(), chunks: Vec::new() }
    }
}

impl<R: ReplyKind> SnapshotWaits<R> {
    /// Takes the callers a snapshot ending at `last` answers; the others
    /// stay (they asked after the job started).
    pub(crate) fn covered_by(&mut self, last: LogIndex) -> Vec<R::Reply<SnapshotResult>> {
        let (covered, waiting) = std::mem::take(&mut self.callers).into_iter().partition(|(at, _)| *at <= last);
        self.callers = waiting;
        covered.into_iter().map(|(_, reply)| reply).collect()
    }

    /// Whether anything still waits.
    pub(crate) fn any(&self) -> bool {
        !self.callers.is_empty() || !self.chunks.is_empty()
    }
}
