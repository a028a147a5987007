//! The runtime side of serving clients on any node: writes waiting for the
//! leader to take them, then for their entries to apply here.

use std::collections::{BTreeMap, HashMap};

use super::event::{WriteReply, WriteResponse};
use crate::engine::ForwardFailure;
use crate::error::{ForwardToLeader, WriteError};
use crate::log_id::LogId;
use crate::node::{LogIndex, Node};
use crate::state_machine::StateMachine;

type C<SM> = <SM as StateMachine>::Command;

/// The callers of forwarded writes, by batch and then by log position.
pub(crate) struct ForwardBook<SM: StateMachine, N: Node> {
    /// Writes received this turn, handed over in one batch.
    pub(crate) batch: Vec<(C<SM>, WriteReply<SM, N>)>,
    /// Batches sent to the leader, not yet taken.
    sent: HashMap<u64, Vec<WriteReply<SM, N>>>,
    /// Writes the leader took, by index: answered when that index applies.
    placed: BTreeMap<LogIndex, (LogId, u64, WriteReply<SM, N>)>,
}

impl<SM: StateMachine, N: Node> Default for ForwardBook<SM, N> {
    fn default() -> Self {
        Self { batch: Vec::new(), sent: HashMap::new(), placed: BTreeMap::new() }
    }
}

impl<SM: StateMachine, N: Node> ForwardBook<SM, N> {
    /// The batch `forward_id` went to the leader with these callers.
    pub(crate) fn sent(&mut self, forward_id: u64, replies: Vec<WriteReply<SM, N>>) {
        self.sent.insert(forward_id, replies);
    }

    /// The leader took batch `forward_id` at consecutive indexes from `first`.
    /// Indexes already applied here can no longer be answered with their
    /// response: those callers hear "outcome unknown", never a guess.
    pub(crate) fn accepted(&mut self, forward_id: u64, first: LogId, applied: LogIndex) {
        for (i, reply) in self.sent.remove(&forward_id).unwrap_or_default().into_iter().enumerate() {
            let log_id = LogId::new(first.leader_id, first.index + i as u64);
            if log_id.index <= applied {
                let _ = reply.send(Err(WriteError::LeadershipLost));
            } else {
                self.placed.insert(log_id.index, (log_id, forward_id, reply));
            }
        }
    }

    /// Batch `forward_id` has no success to report; `leader` is this node's
    /// view, for a caller told to go to the leader itself.
    pub(crate) fn failed(&mut self, forward_id: u64, failure: ForwardFailure, leader: ForwardToLeader<N>) {
        let error = || match failure {
            ForwardFailure::NotProposed => WriteError::ForwardToLeader(leader.clone()),
            ForwardFailure::Unknown => WriteError::LeadershipLost,
        };
        for reply in self.sent.remove(&forward_id).unwrap_or_default() {
            let _ = reply.send(Err(error()));
        }
        let placed: Vec<LogIndex> =
            self.placed.iter().filter(|(_, (_, id, _))| *id == forward_id).map(|(index, _)| *index).collect();
        for index in placed {
            if let Some((_, _, reply)) = self.placed.remove(&index) {
                let _ = reply.send(Err(error()));
            }
        }
    }

    /// The entry `log_id` applied here with `response` (a client command) or
    /// none (a blank or membership entry). A write placed at an index below,
    /// or at this index under another log id, was lost.
    pub(crate) fn applied(&mut self, log_id: LogId, response: Option<SM::Response>) -> Option<SM::Response> {
        match self.placed.keys().next() {
            Some(first) if *first <= log_id.index => {}
            _ => return response,
        }
        self.lost_upto(log_id.index - 1);
        match self.placed.remove(&log_id.index) {
            Some((placed, _, reply)) if placed == log_id => match response {
                Some(response) => {
                    let _ = reply.send(Ok(WriteResponse { log_id, response }));
                    None
                }
                None => {
                    let _ = reply.send(Err(WriteError::LeadershipLost));
                    None
                }
            },
            Some((_, _, reply)) => {
                let _ = reply.send(Err(WriteError::LeadershipLost));
                response
            }
            None => response,
        }
    }

    /// A snapshot replaced the state up to `index`: writes placed there
    /// cannot get their response any more.
    pub(crate) fn lost_upto(&mut self, index: LogIndex) {
        while let Some(entry) = self.placed.first_entry().filter(|e| *e.key() <= index) {
            let (_, _, reply) = entry.remove();
            let _ = reply.send(Err(WriteError::LeadershipLost));
        }
    }

    /// The node stops: every caller hears `error`.
    pub(crate) fn stop(&mut self, error: impl Fn() -> WriteError<N>) {
        let batch = self.batch.drain(..).map(|(_, reply)| reply);
        let sent = self.sent.drain().flat_map(|(_, replies)| replies);
        let placed = std::mem::take(&mut self.placed).into_values().map(|(_, _, reply)| reply);
        for reply in batch.chain(sent).chain(placed) {
            let _ = reply.send(Err(error()));
        }
    }
}
