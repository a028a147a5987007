//! Transfer and install are separate phases of a snapshot catch-up.
//!
//! Once a follower has every byte it says so before installing; the leader
//! then stops resending chunks and does not report the stream failing while
//! the install runs, however long a large state takes to load. Only past a
//! generous bound (the follower may have crashed mid-install) does the leader
//! resume the transfer, from where the follower then says it stands.

use super::progress::Progress;
use crate::message::SnapshotReply;

/// How long an install may run, in election timeouts, before the leader
/// takes the follower for lost and resumes the transfer.
pub const INSTALL_PATIENCE_ELECTION_TIMEOUTS: u64 = 100;

/// While a follower installs, how often (in election timeouts) the leader
/// asks where it stands, with an empty chunk from the end: a follower done
/// installing answers "installed", so a lost final reply costs this long,
/// not the whole patience bound.
pub const INSTALL_PROBE_ELECTION_TIMEOUTS: u64 = 4;

const _: () = assert!(INSTALL_PROBE_ELECTION_TIMEOUTS < INSTALL_PATIENCE_ELECTION_TIMEOUTS);

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
