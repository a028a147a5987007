//! An optional rate limit for snapshot sends
//! (`Config::snapshot_max_bytes_per_s`): a transfer to a catching-up node
//! must not take the bandwidth (or the disk reads) the cluster's clients need.
//!
//! Each transfer keeps its own budget: chunk `n` may leave no earlier than
//! `n` chunks' worth of bytes at the rate after the transfer started. A
//! chunk that is not due yet waits for the tick at its due time, and the
//! leader's next deadline includes it. Backpressure is the transfer's own:
//! at most a window of chunks is in flight (see `snapshot_window`), so
//! neither side holds more than that per transfer.

use super::progress::{Progress, ReplicationMode};
use super::role::Role;
use super::Engine;
use crate::entry::AppData;
use crate::node::Node;

/// One transfer's send budget.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SnapshotPace {
    /// When the transfer started.
    pub started_ms: u64,
    /// Chunks sent since.
    pub chunks_sent: u64,
    /// The offset of a chunk waiting for its due time.
    pub waiting: Option<u64>,
}

impl SnapshotPace {
    /// A transfer whose first chunk leaves at `now_ms`.
    pub(crate) fn start(now_ms: u64) -> Self {
        Self { started_ms: now_ms, chunks_sent: 1, waiting: None }
    }

    /// When the next chunk may leave, at `rate` bytes a second (0: now).
    pub(crate) fn due_ms(&self, chunk_bytes: u64, rate: u64) -> u64 {
        if rate == 0 {
            return 0;
        }
        let after = u128::from(self.chunks_sent) * u128::from(chunk_bytes) * 1000 / u128::from(rate);
        self.started_ms.saturating_add(u64::try_from(after).unwrap_or(u64::MAX))
    }
}

impl<C: AppData, N: Node> Engine<C, N> {
    /// The chunk budget of the config: (chunk bytes, rate).
    pub(crate) fn pace_limits(&self) -> (u64, u64) {
        (self.config.snapshot_chunk_bytes as u64, self.config.snapshot_max_bytes_per_s)
    }

    /// Whether the chunk at `offset` for `progress`'s follower may leave
    /// now; if not, it is left waiting for [`send_due_snapshot_chunks`](Self::send_due_snapshot_chunks).
    pub(crate) fn pace_allows(progress: &mut Progress, offset: u64, now_ms: u64, limits: (u64, u64)) -> bool {
        let (chunk_bytes, rate) = limits;
        if now_ms < progress.store.pace.due_ms(chunk_bytes, rate) {
            progress.store.pace.waiting = Some(offset);
            return false;
        }
        progress.store.pace.chunks_sent += 1;
        progress.store.pace.waiting = None;
        true
    }

    /// Sends the waiting chunks that are due.
    pub(crate) fn send_due_snapshot_chunks(&mut self) {
        let now = self.now_ms;
        let limits = self.pace_limits();
        let Role::Leader(leader) = &mut self.role else { return };
        let mut due = Vec::new();
        for (peer, progress) in leader.progress.iter_mut() {
            if progress.store.pace.waiting.is_none() {
                continue;
            }
            if !matches!(progress.mode, ReplicationMode::Snapshot { .. }) {
                progress.store.pace.waiting = None;
            } else if now >= progress.store.pace.due_ms(limits.0, limits.1) {
                due.push(*peer);
            }
        }
        for peer in due {
            self.fill_snapshot_window(peer);
        }
    }

    /// The earliest due time of a waiting chunk.
    pub(crate) fn next_chunk_due_ms(&self) -> Option<u64> {
        let Role::Leader(leader) = &self.role else { return None };
        let limits = self.pace_limits();
        let waiting = leader.progress.values().filter(|p| p.store.pace.waiting.is_some());
        waiting.map(|p| p.store.pace.due_ms(limits.0, limits.1)).min()
    }
}
