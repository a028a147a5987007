//! Transfer and install are separate phases of a snapshot catch-up.
//!
//! Once a follower has every byte it says so before installing; the leader
//! then sends no byte again and does not report the stream failing while
//! the install runs, however long a large state takes to load. It still asks,
//! once an election timeout, where the follower stands (a chunk from the end,
//! with no data): a node handles messages only after its install, so the
//! question is answered then, and the "installed" reply it may have lost is
//! not waited for. Past a generous bound (the follower may have crashed
//! mid-install) the stream is reported stalled.

use super::progress::Progress;
use crate::message::SnapshotReply;

/// How long an install may run, in election timeouts, before the leader
/// reports the stream stalled.
pub const INSTALL_PATIENCE_ELECTION_TIMEOUTS: u64 = 100;

/// Records a follower's "every byte arrived, installing" answer; true when
/// `reply` was one (nothing more to send until the install ends).
pub(crate) fn on_installing(progress: &mut Progress, reply: &SnapshotReply, now_ms: u64) -> bool {
    if !reply.installing {
        progress.store.installing_since_ms = None;
        return false;
    }
    progress.store.installing_since_ms.get_or_insert(now_ms);
    progress.mode = super::ReplicationMode::Snapshot { next_offset: reply.next_offset, sent_ms: now_ms };
    progress.inflight.clear();
    true
}

/// Whether the follower is installing and still within the bound.
pub(crate) fn waiting_for_install(progress: &Progress, now_ms: u64, election_timeout_ms: u64) -> bool {
    progress
        .store
        .installing_since_ms
        .is_some_and(|since| now_ms < since + election_timeout_ms * INSTALL_PATIENCE_ELECTION_TIMEOUTS)
}
