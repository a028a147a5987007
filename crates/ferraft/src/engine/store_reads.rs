//! Feeding a follower that lags behind the in-memory log cache from the log
//! store, so it catches up from the log instead of through a snapshot.
//!
//! The engine keeps only the last `log_cache_entries` applied entries in
//! memory; the store keeps every entry back to its purge point. For a
//! follower whose next entry lies between the two, the leader asks the
//! runtime to read a range from the store ([`Output::ReadEntries`]), which
//! happens off the Raft task; the entries come back through
//! [`Engine::on_entries_read`] and go out as ordinary appends. A follower
//! gets a snapshot only when the store no longer holds what it needs, or
//! when the store cannot read ranges at all.

use super::progress::{Progress, ReplicationMode};
use super::role::Role;
use super::{Engine, Output};
use crate::entry::{AppData, Entry};
use crate::log_id::{index_of, LogId};
use crate::message::{AppendEntries, Message, MessageBody};
use crate::node::{LogIndex, Node, NodeId};
use crate::vote::Vote;

/// Most appends' worth of entries one read asks for: bounds what a read
/// holds in memory while the follower's window takes it.
const MAX_APPENDS_PER_READ: usize = 8;

/// A read from the store in flight for one follower.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreRead {
    /// The follower's next index when the read was asked for: an answer
    /// fits only while it still is.
    pub next_index: LogIndex,
    /// The first entry asked for.
    pub from: LogIndex,
    /// The log id before `next_index` when the leader knew it; `None`: the
    /// read starts one entry early to learn it.
    pub prev: Option<Option<LogId>>,
}

/// One follower's feed from the store, on the leader.
#[derive(Debug, Clone, Default)]
pub struct StoreFeed {
    /// The read in flight.
    pub reading: Option<StoreRead>,
    /// Entries sent to this follower that were read from the store.
    pub entries_sent: u64,
    /// Snapshot transfers started for this follower.
    pub snapshots_started: u64,
    /// The snapshot it said it is receiving: the log must go on after it.
    pub snapshot_last: Option<LogId>,
    /// When it said it has every byte and is installing (see `install_phase`).
    pub installing_since_ms: Option<u64>,
    /// The send budget of the snapshot transfer to it (see `snapshot_pace`).
    pub pace: super::snapshot_pace::SnapshotPace,
    /// The chunks in flight to it (see `snapshot_window`).
    pub window: super::snapshot_window::SnapshotWindow,
}

/// What a follower whose next entry is below the cache gets now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BehindCache {
    /// Read entries `.0.from..end` from the store.
    Read(StoreRead, LogIndex),
    /// A read is in flight or the window is full: heartbeats only.
    Wait,
    /// The store no longer holds its next entry: stream a snapshot.
    Snapshot,
}

/// Decides for a follower whose next entry precedes the cache (`first_index`).
///
/// The range read starts one entry early unless the leader knows the log id
/// before the follower's next entry: the append needs it as `prev_log_id`.
pub(crate) fn behind_cache(
    progress: &Progress,
    first_index: LogIndex,
    store_purged: Option<LogId>,
    store_reads: bool,
    max_entries: usize,
    max_inflight: usize,
    window_full: bool,
) -> BehindCache {
    let next = progress.next_index;
    if !store_reads || next <= index_of(store_purged) {
        return BehindCache::Snapshot;
    }
    if progress.store.reading.is_some() {
        return BehindCache::Wait;
    }
    // a probe lost on the way reopens the window after a while, as for any probe
    let free = match progress.mode {
        _ if window_full => 0,
        ReplicationMode::Probe => 1,
        _ => max_inflight.saturating_sub(progress.inflight.len()),
    };
    if free == 0 {
        return BehindCache::Wait;
    }
    let prev = match next.prev() {
        LogIndex(0) => Some(None),
        index if index == index_of(store_purged) => Some(store_purged),
        _ => None,
    };
    let from = if prev.is_some() { next } else { next.prev() };
    let entries = (free.min(MAX_APPENDS_PER_READ) * max_entries) as u64;
    BehindCache::Read(StoreRead { next_index: next, from, prev }, (next + entries).min(first_index))
}

impl<C: AppData, N: Node> Engine<C, N> {
    /// Whether followers behind the cache are fed from the store (until the
    /// runtime reports that the store cannot read ranges).
    pub fn reads_from_store(&self) -> bool {
        self.store_reads
    }

    /// The runtime's store cannot read ranges: followers behind the cache get
    /// snapshots from now on.
    pub fn on_store_reads_unsupported(&mut self) {
        self.store_reads = false;
    }

    /// The oldest entry a snapshot sent to a follower must cover: the log
    /// after it must still be here to follow it up, from memory or the store.
    pub fn snapshot_must_cover(&self) -> LogIndex {
        match self.store_reads {
            true => index_of(self.store_purged),
            false => self.log.first_index().saturating_prev(),
        }
    }

    /// Asks for a snapshot stream to `peer` (it needs purged entries).
    pub(crate) fn start_snapshot_to(&mut self, peer: NodeId) {
        let (now, vote) = (self.now_ms, self.vote);
        let Role::Leader(leader) = &mut self.role else { return };
        let Some(progress) = leader.progress.get_mut(&peer) else { return };
        progress.mode = ReplicationMode::Snapshot { next_offset: 0, sent_ms: now };
        progress.store.snapshots_started += 1;
        progress.store.snapshot_last = None;
        progress.store.installing_since_ms = None;
        progress.store.pace = super::snapshot_pace::SnapshotPace::start(now);
        let chunk_bytes = self.config.snapshot_chunk_bytes as u64;
        let settled_seq = leader.seq;
        progress.store.window = super::snapshot_window::SnapshotWindow::restart(0, settled_seq);
        progress.store.window.sent_until = chunk_bytes;
        leader.seq += 1;
        let seq = leader.seq;
        progress.record_sent(seq, now);
        self.output.push(Output::SendSnapshotChunk { to: peer, offset: 0, seq, vote });
        self.fill_snapshot_window(peer);
    }

    /// The runtime read `entries` from the store for `to`, answering an
    /// [`Output::ReadEntries`] from `from` issued under `vote`: send them.
    /// An answer that no longer fits (leadership or the follower's progress
    /// moved meanwhile) is dropped and the follower is served afresh; no
    /// entries at all means the store purged them: a snapshot follows.
    pub fn on_entries_read(&mut self, to: NodeId, vote: Vote, from: LogIndex, entries: Vec<Entry<C, N>>) {
        if vote != self.vote {
            return;
        }
        let store_purged = self.store_purged;
        let Role::Leader(leader) = &mut self.role else { return };
        let Some(progress) = leader.progress.get_mut(&to) else { return };
        let Some(read) = progress.store.reading.filter(|r| r.from == from) else { return };
        progress.store.reading = None;
        let fits = progress.next_index == read.next_index && !matches!(progress.mode, ReplicationMode::Snapshot { .. });
        let contiguous = entries.iter().enumerate().all(|(i, e)| e.log_id.index == from + i as u64);
        let complete = contiguous && entries.len() as u64 > read.next_index - from;
        // the read started one entry early for the previous log id, and a
        // purge the hold allows (up to the follower's match) took just that
        // entry meanwhile: the purge point names it now, so read again
        let took_only_prev = read.prev.is_none() && store_purged.is_some_and(|p| p.index == from);
        if fits && complete {
            self.send_read_entries(to, read, entries);
        } else if fits && !took_only_prev {
            tracing::debug!(node = %self.id, %to, %from, "entries gone from the store: sending a snapshot");
            self.start_snapshot_to(to);
            return;
        }
        self.replicate_to(to, false);
    }

    /// Sends `entries` (read from the store, starting at or just before the
    /// follower's next entry) as appends, as far as its window allows.
    fn send_read_entries(&mut self, to: NodeId, read: StoreRead, entries: Vec<Entry<C, N>>) {
        let (now, vote, committed) = (self.now_ms, self.vote, self.committed);
        let max_entries = self.config.max_entries_per_append;
        let max_bytes = self.config.max_append_bytes as u64;
        let max_inflight = self.config.max_inflight_appends;
        let probe_wait = self.config.heartbeat_interval_ms * 2;
        let envelope = self.envelope(to);
        let own_node = self.own_node().cloned();
        let Role::Leader(leader) = &mut self.role else { return };
        let Some(progress) = leader.progress.get_mut(&to) else { return };
        let mut entries = std::collections::VecDeque::from(entries);
        let mut prev_log_id = match read.prev {
            Some(prev) => prev,
            None => entries.pop_front().map(|e| e.log_id),
        };
        let probing = progress.mode == ReplicationMode::Probe;
        let batch = if probing { max_entries.min(64) } else { max_entries };
        while !entries.is_empty() {
            let window_full = match probing {
                true => !progress.inflight.is_empty() && now < progress.probe_sent_ms + probe_wait,
                false => progress.inflight.len() >= max_inflight,
            };
            if window_full {
                break;
            }
            let sizes = entries.iter().map(super::entry_bytes::encoded_size);
            let chunk: Vec<_> = entries.drain(..super::entry_bytes::count_fitting(sizes, batch, max_bytes)).collect();
            let sent_last = chunk.last().map_or(LogIndex(0), |e| e.log_id.index);
            leader.seq += 1;
            let seq = leader.seq;
            progress.record_append(seq, sent_last, now);
            progress.store.entries_sent += chunk.len() as u64;
            let next_prev = chunk.last().map(|e| e.log_id);
            // a probe names the leader, as one from memory does (see `replicate_to`)
            let leader_node = if probing { own_node.clone() } else { None };
            let message = AppendEntries { vote, prev_log_id, entries: chunk, committed, seq, leader_node };
            self.output.push(Output::Send(Message { envelope, body: MessageBody::Append(message) }));
            prev_log_id = next_prev;
            if probing {
                break;
            }
        }
    }
}
