//! Catch-up you can watch: for each follower and learner, how far behind it
//! is (entries and bytes), how fast it closes the gap, when it should be done,
//! and, when it is stuck, a reason an operator can act on.
//!
//! The leader samples each follower's matched index once per heartbeat into a
//! short sliding window; the rate is the slope over that window. Nothing here
//! runs per entry or per message.

use std::collections::VecDeque;

use super::progress::{Progress, ReplicationMode};
use super::role::Role;
use super::Engine;
use crate::entry::AppData;
use crate::node::{LogIndex, Node, NodeId};

/// How far back the catch-up rate looks.
pub const RATE_WINDOW_MS: u64 = 5_000;

/// Heartbeats without progress (while behind), or without an answer, before
/// catch-up is reported stalled.
pub const NO_PROGRESS_HEARTBEATS: u64 = 10;

/// What the leader remembers of one follower's catch-up over time.
#[derive(Debug, Clone)]
pub struct CatchUp {
    /// (time, matched index), one per heartbeat, within the rate window.
    samples: VecDeque<(u64, LogIndex)>,
    /// The last seen (matched index, snapshot bytes acknowledged).
    marker: (LogIndex, u64),
    /// When the follower last moved forward, or was last seen caught up.
    last_advance_ms: u64,
    /// When the transport last said the follower cannot be reached.
    unreachable_ms: Option<u64>,
}

/// Why a follower's catch-up is not moving, for operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum CatchUpStall {
    /// Not heard from for `NO_PROGRESS_HEARTBEATS` heartbeats, or the
    /// transport cannot reach it (down, partitioned, or a wrong address):
    /// check the node and the network.
    Unreachable {
        /// How long it has been silent.
        silent_ms: u64,
    },
    /// Its log went backwards (data wiped): replication is refused; remove and
    /// re-add it, or enable log reversion.
    LogReverted,
    /// A snapshot stream to it has not advanced for an election timeout: the
    /// install keeps failing on its side, or chunks are lost.
    SnapshotFailing {
        /// How long the stream has not advanced.
        stalled_ms: u64,
    },
    /// It answers but its log has not advanced for this many heartbeats while
    /// behind (slow disk, rejected appends).
    NoProgress {
        /// Heartbeats without progress.
        heartbeats: u64,
    },
}

/// One follower's catch-up as the leader sees it now.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CatchUpReport {
    /// Entries the leader holds that the follower does not.
    pub lag_entries: u64,
    /// Their encoded size (estimated for entries already purged here).
    pub lag_bytes: u64,
    /// Entries per second the follower gained over the last few seconds.
    pub rate_entries_per_s: f64,
    /// At that rate, when it will have the leader's current log; `None` when
    /// it is not gaining.
    pub eta_ms: Option<u64>,
    /// Snapshot bytes it acknowledged, while a snapshot streams to it.
    pub snapshot_bytes_sent: Option<u64>,
    /// Why it is stuck, if it is.
    pub stall: Option<CatchUpStall>,
    /// Entries sent to it that were read back from the log store, under
    /// this leadership.
    #[serde(default)]
    pub entries_from_store: u64,
    /// Snapshot transfers started to it under this leadership.
    #[serde(default)]
    pub snapshots_started: u64,
    /// Every byte of the snapshot arrived and it is installing it.
    #[serde(default)]
    pub snapshot_installing: bool,
}

impl CatchUp {
    /// A follower first seen at `now_ms`.
    pub fn new(now_ms: u64) -> Self {
        Self { samples: VecDeque::new(), marker: (LogIndex(0), 0), last_advance_ms: now_ms, unreachable_ms: None }
    }

    /// The transport reported the follower unreachable.
    pub(crate) fn on_unreachable(&mut self, now_ms: u64) {
        self.unreachable_ms.get_or_insert(now_ms);
    }

    /// Takes this heartbeat's sample of `progress` (whose follower lacks `lag` entries).
    fn sample(&mut self, now_ms: u64, progress_matched: LogIndex, snapshot_offset: u64, lag: u64, heard_ms: u64) {
        let marker = (progress_matched, snapshot_offset);
        if marker > self.marker || lag == 0 {
            self.last_advance_ms = now_ms;
        }
        self.marker = marker;
        if self.unreachable_ms.is_some_and(|since| heard_ms > since) {
            self.unreachable_ms = None;
        }
        while self.samples.front().is_some_and(|(at, _)| at + RATE_WINDOW_MS < now_ms) {
            self.samples.pop_front();
        }
        self.samples.push_back((now_ms, progress_matched));
    }

    /// Entries per second gained over the window, up to `matched` at `now_ms`.
    fn rate(&self, now_ms: u64, matched: LogIndex) -> f64 {
        match self.samples.front() {
            Some(&(at, from)) if now_ms > at => matched.saturating_sub(from) as f64 * 1000.0 / (now_ms - at) as f64,
            _ => 0.0,
        }
    }
}

/// The snapshot bytes acknowledged, while a snapshot streams.
fn snapshot_offset(progress: &Progress) -> Option<u64> {
    match progress.mode {
        ReplicationMode::Snapshot { next_offset, .. } => Some(next_offset),
        _ => None,
    }
}

impl<C: AppData, N: Node> Engine<C, N> {
    /// Samples every follower's catch-up; the leader calls it once per heartbeat.
    pub(crate) fn sample_catch_up(&mut self) {
        let now = self.now_ms;
        let last = self.log.last_index();
        let Role::Leader(leader) = &mut self.role else { return };
        for progress in leader.progress.values_mut() {
            let matched = progress.matched_index();
            let offset = snapshot_offset(progress).unwrap_or(0);
            let heard = progress.last_heard_ms;
            progress.catch_up.sample(now, matched, offset, last.saturating_sub(matched), heard);
        }
    }

    /// How `peer` is catching up, on the leader; `None` elsewhere or for a
    /// node the leader does not replicate to.
    pub fn catch_up(&self, peer: NodeId) -> Option<CatchUpReport> {
        let progress = self.leader_state()?.progress.get(&peer)?;
        let now = self.now_ms;
        let matched = progress.matched_index();
        let lag_entries = self.log.last_index().saturating_sub(matched);
        let rate = progress.catch_up.rate(now, matched);
        let eta_ms = match lag_entries {
            0 => Some(0),
            _ if rate > 0.0 => Some((lag_entries as f64 * 1000.0 / rate) as u64),
            _ => None,
        };
        Some(CatchUpReport {
            lag_entries,
            lag_bytes: self.log.bytes_after(matched),
            rate_entries_per_s: rate,
            eta_ms,
            snapshot_bytes_sent: snapshot_offset(progress),
            stall: self.stall_of(progress, lag_entries),
            entries_from_store: progress.store.entries_sent,
            snapshots_started: progress.store.snapshots_started,
            snapshot_installing: snapshot_offset(progress).is_some() && progress.store.installing_since_ms.is_some(),
        })
    }

    /// Why `progress`'s follower is stuck, first the cause an operator must fix.
    fn stall_of(&self, progress: &Progress, lag_entries: u64) -> Option<CatchUpStall> {
        let now = self.now_ms;
        let timeout = self.config.election_timeout_max_ms;
        let patience_ms = NO_PROGRESS_HEARTBEATS * self.config.heartbeat_interval_ms.max(1);
        let silent_ms = now.saturating_sub(progress.last_heard_ms);
        let still_since = now.saturating_sub(progress.catch_up.last_advance_ms);
        if progress.reverted {
            return Some(CatchUpStall::LogReverted);
        }
        let transport_unreachable = progress.catch_up.unreachable_ms.is_some_and(|u| u >= progress.last_heard_ms);
        if !transport_unreachable && super::install_phase::waiting_for_install(progress, now, timeout) {
            // installing (busy, so maybe silent): not a stalled catch-up
            return None;
        }
        if !transport_unreachable && progress.store.pace.waiting.is_some() {
            // the rate limit holds the next chunk back: silent because not asked
            return None;
        }
        if silent_ms >= patience_ms || transport_unreachable {
            return Some(CatchUpStall::Unreachable { silent_ms });
        }
        if snapshot_offset(progress).is_some() {
            // the log cannot advance before the snapshot is in: judge the stream
            return (still_since >= timeout).then_some(CatchUpStall::SnapshotFailing { stalled_ms: still_since });
        }
        let heartbeats = still_since / self.config.heartbeat_interval_ms.max(1);
        (lag_entries > 0 && heartbeats >= NO_PROGRESS_HEARTBEATS).then_some(CatchUpStall::NoProgress { heartbeats })
    }
}
