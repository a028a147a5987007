//! The outbound queue of one peer: two lanes bounded by encoded bytes.
//!
//! Control messages (votes, heartbeats, replies, timeout-now) get their own
//! lane and go first in every batch, so a backlog of entries or snapshot
//! chunks cannot starve heartbeats into an election. The cost is that a
//! heartbeat may overtake an earlier append to the same peer; Raft tolerates
//! reordering. Pushing never blocks: a full lane drops the message, which Raft
//! resends.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};

use ferraft::{Message, MessageBody};
use tokio::sync::Notify;

/// Which lane a message travels in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lane {
    /// Small and latency-critical.
    Control,
    /// Entries and snapshot chunks.
    Bulk,
}

impl Lane {
    /// Heartbeats (appends without entries) are control; anything carrying
    /// payload is bulk.
    pub(crate) fn of<C, N>(message: &Message<C, N>) -> Self {
        match &message.body {
            MessageBody::Append(append) if !append.entries.is_empty() => Self::Bulk,
            MessageBody::Snapshot(_) => Self::Bulk,
            _ => Self::Control,
        }
    }
}

/// What became of a pushed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// It will be sent.
    Queued,
    /// Its lane is full; it was dropped.
    Full,
    /// The peer is being shut down; it was dropped.
    Closed,
}

/// Outbound messages of one peer, shared by the senders and the peer's writer task.
pub(crate) struct OutQueue<C, N> {
    state: Mutex<Lanes<C, N>>,
    wake: Notify,
    control_limit_bytes: usize,
    bulk_limit_bytes: usize,
}

struct Lanes<C, N> {
    control: VecDeque<Message<C, N>>,
    control_bytes: usize,
    bulk: VecDeque<(Message<C, N>, usize)>,
    bulk_bytes: usize,
    dropped_messages: u64,
    closed: bool,
}

impl<C, N> Lanes<C, N> {
    fn is_empty(&self) -> bool {
        self.control.is_empty() && self.bulk.is_empty()
    }
}

impl<C, N> OutQueue<C, N> {
    /// An empty queue with the given lane bounds.
    pub(crate) fn new(control_limit_bytes: usize, bulk_limit_bytes: usize) -> Self {
        let lanes = Lanes {
            control: VecDeque::new(),
            control_bytes: 0,
            bulk: VecDeque::new(),
            bulk_bytes: 0,
            dropped_messages: 0,
            closed: false,
        };
        Self { state: Mutex::new(lanes), wake: Notify::new(), control_limit_bytes, bulk_limit_bytes }
    }

    /// Queues `message`, whose encoded frame takes `frame_bytes`.
    pub(crate) fn push(&self, message: Message<C, N>, frame_bytes: usize) -> Pushed {
        let lane = Lane::of(&message);
        let mut lanes = self.lock();
        if lanes.closed {
            return Pushed::Closed;
        }
        let (used, limit) = match lane {
            Lane::Control => (lanes.control_bytes, self.control_limit_bytes),
            Lane::Bulk => (lanes.bulk_bytes, self.bulk_limit_bytes),
        };
        if used + frame_bytes > limit {
            lanes.dropped_messages += 1;
            return Pushed::Full;
        }
        let was_empty = lanes.is_empty();
        match lane {
            Lane::Control => {
                lanes.control.push_back(message);
                lanes.control_bytes += frame_bytes;
            }
            Lane::Bulk => {
                lanes.bulk.push_back((message, frame_bytes));
                lanes.bulk_bytes += frame_bytes;
            }
        }
        drop(lanes);
        // The writer drains until empty before it waits, so only the first
        // message after an empty moment needs to wake it.
        if was_empty {
            self.wake.notify_one();
        }
        Pushed::Queued
    }

    /// Moves the next batch into `out`: every control message, then bulk
    /// messages up to `max_batch_bytes` (at least one, however large).
    /// Returns false once the queue is closed.
    pub(crate) fn take_batch(&self, max_batch_bytes: usize, out: &mut Vec<Message<C, N>>) -> bool {
        let mut lanes = self.lock();
        if lanes.closed {
            return false;
        }
        out.extend(lanes.control.drain(..));
        lanes.control_bytes = 0;
        let mut taken_bytes = 0;
        while let Some((_, frame_bytes)) = lanes.bulk.front() {
            if taken_bytes > 0 && taken_bytes + frame_bytes > max_batch_bytes {
                break;
            }
            taken_bytes += frame_bytes;
            let (message, _) = lanes.bulk.pop_front().expect("front exists");
            out.push(message);
        }
        lanes.bulk_bytes -= taken_bytes;
        true
    }

    /// Drops everything queued (the peer is unreachable: by the time it is
    /// back these messages are stale). Returns how many were dropped.
    /// Also returns the ids of the forwarded writes dropped: they never left
    /// this node, so nothing was proposed.
    pub(crate) fn discard_reporting(&self) -> (usize, Vec<u64>) {
        let mut lanes = self.lock();
        let count = lanes.control.len() + lanes.bulk.len();
        let forwards = lanes.control.iter().filter_map(forward_write_id).collect();
        lanes.control.clear();
        lanes.bulk.clear();
        lanes.control_bytes = 0;
        lanes.bulk_bytes = 0;
        lanes.dropped_messages += count as u64;
        (count, forwards)
    }

    /// Stops the queue; the writer task notices and exits.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.wake.notify_one();
    }

    /// Whether nothing is waiting to be sent.
    pub(crate) fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Whether [`OutQueue::close`] was called.
    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Resolves when a message arrives in an empty queue or the queue closes.
    pub(crate) async fn wait(&self) {
        self.wake.notified().await;
    }

    /// Queued bytes (both lanes) and messages dropped so far.
    pub(crate) fn usage(&self) -> (usize, u64) {
        let lanes = self.lock();
        (lanes.control_bytes + lanes.bulk_bytes, lanes.dropped_messages)
    }

    fn lock(&self) -> MutexGuard<'_, Lanes<C, N>> {
        // Nothing panics while holding the lock; if something ever did, the
        // lanes are still consistent, so keep going rather than poison `send`.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests;

/// The id of a forwarded write, which its sender must hear of if it is dropped.
pub(crate) fn forward_write_id<C, N>(message: &Message<C, N>) -> Option<u64> {
    match &message.body {
        MessageBody::ForwardWrite(write) => Some(write.id),
        _ => None,
    }
}
