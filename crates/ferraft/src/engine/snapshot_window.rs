//! Several snapshot chunks in flight per follower
//! (`Config::snapshot_chunks_in_flight`): one chunk per round trip caps a
//! transfer at a chunk per RTT, far below what loopback or a LAN carries.
//!
//! The receiver takes only the chunk at the offset it holds and answers
//! every chunk with that offset, so its answers are cumulative. An answer
//! past the acknowledged offset moves it forward and opens the window. An
//! answer that does not, to a chunk sent after everything already settled,
//! means a chunk before it was lost (or the receiver's copy went back): the
//! window is sent again from the offset the receiver holds; so is it when
//! the receiver holds an offset between the chunks sent (it resumed a copy
//! cut short under another leader). Older answers
//! (reordered, or to chunks sent before that resend) change nothing, so the
//! offset never moves back on a late answer. Memory stays bounded: the
//! runtime reads each chunk at its offset when it sends it, so at most a
//! window of chunks is held per transfer.

use super::progress::{Progress, ReplicationMode};
use super::role::Role;
use super::{Engine, Output};
use crate::entry::AppData;
use crate::node::{Node, NodeId};

/// The chunks in flight of one transfer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SnapshotWindow {
    /// The offset of the next chunk to send.
    pub sent_until: u64,
    /// Where the chunks sent since the last (re)start begin: they lie
    /// at whole chunks from here.
    pub run_from: u64,
    /// Answers to messages up to this sequence are already taken into
    /// account (they predate the last resend or the last advance).
    pub settled_seq: u64,
}

impl SnapshotWindow {
    /// Chunks go (again) from `offset`; answers to messages up to
    /// `settled_seq` are already accounted for.
    pub(crate) fn restart(offset: u64, settled_seq: u64) -> Self {
        Self { sent_until: offset, run_from: offset, settled_seq }
    }
}

/// Takes the receiver's answer that it holds `offset`, to message `seq`,
/// when the leader had sent up to `sent_so_far`; chunks are `chunk_bytes` long.
pub(crate) fn on_acknowledged(
    progress: &mut Progress,
    answer: (u64, u64),
    sent_so_far: u64,
    chunk_bytes: u64,
    now_ms: u64,
) {
    let (offset, seq) = answer;
    let ReplicationMode::Snapshot { next_offset, .. } = progress.mode else { return };
    let window = &mut progress.store.window;
    let between_chunks = offset < window.run_from || !(offset - window.run_from).is_multiple_of(chunk_bytes.max(1));
    if offset > next_offset && between_chunks {
        // the chunks in flight miss what it needs next
        progress.mode = ReplicationMode::Snapshot { next_offset: offset, sent_ms: now_ms };
        *window = SnapshotWindow::restart(offset, sent_so_far);
    } else if offset > next_offset {
        progress.mode = ReplicationMode::Snapshot { next_offset: offset, sent_ms: now_ms };
        window.sent_until = window.sent_until.max(offset);
        window.settled_seq = window.settled_seq.max(seq);
    } else if seq > window.settled_seq {
        // answers a chunk sent after everything settled, yet holds no more:
        // a chunk before that one never arrived
        progress.mode = ReplicationMode::Snapshot { next_offset: offset, sent_ms: now_ms };
        *window = SnapshotWindow::restart(offset, sent_so_far);
    }
}

impl<C: AppData, N: Node> Engine<C, N> {
    /// Sends chunks to `peer` while its window has room and the rate limit
    /// allows; nothing while it installs.
    pub(crate) fn fill_snapshot_window(&mut self, peer: NodeId) {
        let (now, vote, limits) = (self.now_ms, self.vote, self.pace_limits());
        let window_bytes = self.config.snapshot_chunks_in_flight.max(1) as u64 * limits.0;
        let Role::Leader(leader) = &mut self.role else { return };
        let Some(progress) = leader.progress.get_mut(&peer) else { return };
        let ReplicationMode::Snapshot { next_offset, .. } = progress.mode else { return };
        if progress.store.installing_since_ms.is_some() {
            return;
        }
        // set again below if the rate limit holds the next chunk back
        progress.store.pace.waiting = None;
        while progress.store.window.sent_until < next_offset.saturating_add(window_bytes) {
            let offset = progress.store.window.sent_until;
            if !Self::pace_allows(progress, offset, now, limits) {
                break;
            }
            leader.seq += 1;
            progress.record_sent(leader.seq, now);
            progress.mode = ReplicationMode::Snapshot { next_offset, sent_ms: now };
            progress.store.window.sent_until = offset.saturating_add(limits.0);
            self.output.push(Output::SendSnapshotChunk { to: peer, offset, seq: leader.seq, vote });
        }
    }
}
