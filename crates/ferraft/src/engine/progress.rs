//! What the leader knows about one follower's log.

use std::collections::VecDeque;

use crate::log_id::{index_of, LogId};
use crate::node::LogIndex;

/// How the leader currently replicates to a follower.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicationMode {
    /// Where the logs match is unknown: one message at a time until an append succeeds.
    Probe,
    /// Logs match up to `matched`: entries stream with up to the in-flight window.
    Pipeline,
    /// The follower needs entries already purged: a snapshot is streaming.
    Snapshot {
        /// The next byte offset to send.
        next_offset: u64,
        /// When the last chunk was sent, to resend on silence.
        sent_ms: u64,
    },
}

/// Per-follower replication state on the leader.
#[derive(Debug, Clone)]
pub struct Progress {
    /// The last entry known to be durable on the follower and to match ours.
    pub matched: Option<LogId>,
    /// The leader's last sent sequence when `matched` was last raised: only a
    /// reply to a later message can show the follower's log went backwards
    /// (an earlier one may have overtaken the matching append).
    pub matched_seq: u64,
    /// The next index to send.
    pub next_index: LogIndex,
    /// (last index, send time) of each append in flight, oldest first.
    pub inflight: VecDeque<(LogIndex, u64)>,
    /// How entries are sent.
    pub mode: ReplicationMode,
    /// Greatest message sequence the follower acknowledged under our vote.
    pub acked_seq: u64,
    /// When the acknowledged message was sent (for the lease).
    pub acked_sent_ms: u64,
    /// When we last heard from the follower (for check-quorum).
    pub last_heard_ms: u64,
    /// (seq, sent time) of recent messages, to date acknowledgements.
    pub sent_log: VecDeque<(u64, u64)>,
    /// The follower's committed index as last reported.
    pub committed_seen: LogIndex,
    /// When the last probe was sent, to retry a lost one.
    pub probe_sent_ms: u64,
    /// The follower's log went backwards (wiped); replication is refused.
    pub reverted: bool,
    /// Its catch-up over time (rate, stalls).
    pub catch_up: super::catch_up::CatchUp,
    /// Its feed from the log store while it lags behind the cache.
    pub store: super::store_reads::StoreFeed,
}

/// Most (seq, time) pairs kept per follower; older ones only date old acks.
const SENT_LOG_CAPACITY: usize = 512;

impl Progress {
    /// A follower whose log is unknown; the leader first probes at `next_index`.
    pub fn new(next_index: LogIndex, now_ms: u64) -> Self {
        Self {
            matched: None,
            matched_seq: 0,
            next_index,
            inflight: VecDeque::new(),
            mode: ReplicationMode::Probe,
            acked_seq: 0,
            acked_sent_ms: 0,
            last_heard_ms: now_ms,
            sent_log: VecDeque::new(),
            committed_seen: LogIndex(0),
            probe_sent_ms: 0,
            reverted: false,
            catch_up: super::catch_up::CatchUp::new(now_ms),
            store: Default::default(),
        }
    }

    /// The matched index, 0 when nothing matched.
    pub fn matched_index(&self) -> LogIndex {
        index_of(self.matched)
    }

    /// Remembers when message `seq` was sent.
    pub fn record_sent(&mut self, seq: u64, now_ms: u64) {
        if self.sent_log.len() == SENT_LOG_CAPACITY {
            self.sent_log.pop_front();
        }
        self.sent_log.push_back((seq, now_ms));
    }

    /// Records an append of entries up to `sent_last` sent as message `seq`:
    /// a probe goes alone (next_index moves only when it succeeds), other
    /// appends are pipelined.
    pub(crate) fn record_append(&mut self, seq: u64, sent_last: LogIndex, now_ms: u64) {
        self.record_sent(seq, now_ms);
        if self.mode == ReplicationMode::Probe {
            self.inflight.clear();
            self.probe_sent_ms = now_ms;
        } else {
            self.next_index = sent_last + 1;
        }
        self.inflight.push_back((sent_last, now_ms));
    }

    /// Records an acknowledgement of message `seq`.
    pub fn record_ack(&mut self, seq: u64, now_ms: u64) {
        self.last_heard_ms = now_ms;
        if seq <= self.acked_seq {
            return;
        }
        self.acked_seq = seq;
        while let Some(&(s, sent)) = self.sent_log.front() {
            if s > seq {
                break;
            }
            if s == seq {
                self.acked_sent_ms = self.acked_sent_ms.max(sent);
            }
            self.sent_log.pop_front();
        }
    }

    /// Records that the follower durably matches up to `matched`, learned when
    /// the leader had sent messages up to `sent_so_far`.
    pub fn record_match(&mut self, matched: Option<LogId>, sent_so_far: u64) {
        if matched > self.matched {
            self.matched = matched;
            self.matched_seq = self.matched_seq.max(sent_so_far);
        }
        let m = self.matched_index();
        while self.inflight.front().is_some_and(|(last, _)| *last <= m) {
            self.inflight.pop_front();
        }
        // a probe never moves next_index; once it succeeds we know where the
        // logs match and can stream from there
        if self.mode == ReplicationMode::Probe && m + 1 >= self.next_index {
            self.inflight.clear();
            self.mode = ReplicationMode::Pipeline;
        }
        self.next_index = self.next_index.max(m + 1);
    }

    /// Whether the oldest append in flight has waited longer than `timeout_ms`
    /// (lost on the way): the pipeline must restart from `matched`.
    pub fn pipeline_stalled(&self, now_ms: u64, timeout_ms: u64) -> bool {
        self.mode == ReplicationMode::Pipeline
            && self.inflight.front().is_some_and(|(_, sent)| now_ms >= sent + timeout_ms)
    }

    /// Restarts replication at `next_index` after a mismatch.
    pub fn reset_to(&mut self, next_index: LogIndex) {
        self.next_index = next_index.max(self.matched_index() + 1);
        self.inflight.clear();
        self.mode = ReplicationMode::Probe;
        self.probe_sent_ms = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leader_id::LeaderId;
    use crate::node::{NodeId, Term};

    #[test]
    fn ack_is_dated_by_send_time_of_that_message() {
        let mut p = Progress::new(LogIndex(1), 0);
        p.record_sent(1, 100);
        p.record_sent(2, 150);
        p.record_ack(1, 400);
        assert_eq!(p.acked_sent_ms, 100);
        p.record_ack(2, 410);
        assert_eq!(p.acked_sent_ms, 150);
        // a stale ack does not move anything back
        p.record_ack(1, 420);
        assert_eq!((p.acked_seq, p.acked_sent_ms), (2, 150));
    }

    #[test]
    fn match_drains_inflight_and_never_goes_back() {
        let mut p = Progress::new(LogIndex(5), 0);
        p.mode = ReplicationMode::Pipeline;
        p.inflight.extend([(LogIndex(5), 0), (LogIndex(9), 0), (LogIndex(12), 0)]);
        let l = |i| Some(LogId::new(LeaderId::new(Term(1), NodeId(1)), i));
        p.record_match(l(LogIndex(9)), 1);
        assert_eq!(p.inflight, VecDeque::from([(LogIndex(12), 0)]));
        p.record_match(l(LogIndex(6)), 2);
        assert_eq!(p.matched, l(LogIndex(9)));
        assert_eq!(p.mode, ReplicationMode::Pipeline);
    }
}
