//! The runtime side of serving clients on any node: writes waiting for the
//! leader to take them, then for their entries to apply here.

use std::collections::{BTreeMap, HashMap};

use super::event::WriteResponse;
use super::host::NodeHost;
use super::reply::{Answer, ReplyKind};
use super::reply_books::{ReadResult, WriteReply};
use crate::engine::entry_bytes::{count_fitting, encoded_size};
use crate::engine::ForwardFailure;
use crate::error::{ForwardToLeader, WriteError};
use crate::log_id::LogId;
use crate::node::{LogIndex, Node};
use crate::state_machine::StateMachine;

type C<SM> = <SM as StateMachine>::Command;

/// The callers of forwarded writes, by batch and then by log position.
pub(crate) struct ForwardBook<SM: StateMachine, N: Node, R: ReplyKind> {
    /// Writes received this turn, handed over in one batch.
    pub(crate) batch: Vec<(C<SM>, WriteReply<SM, N, R>)>,
    /// Batches sent to the leader, not yet taken.
    sent: HashMap<u64, Vec<WriteReply<SM, N, R>>>,
    /// Writes the leader took, by index: answered when that index applies.
    placed: BTreeMap<LogIndex, Placed<SM, N, R>>,
}

/// A write the leader took: the log id it sits at, its batch, its caller.
type Placed<SM, N, R> = (LogId, u64, WriteReply<SM, N, R>);

impl<SM: StateMachine, N: Node, R: ReplyKind> Default for ForwardBook<SM, N, R> {
    fn default() -> Self {
        Self { batch: Vec::new(), sent: HashMap::new(), placed: BTreeMap::new() }
    }
}

impl<SM: StateMachine, N: Node, R: ReplyKind> ForwardBook<SM, N, R> {
    /// How many writes served here wait for an answer.
    pub(crate) fn waiting(&self) -> usize {
        self.batch.len() + self.sent.values().map(Vec::len).sum::<usize>() + self.placed.len()
    }

    /// The batch `forward_id` went to the leader with these callers.
    pub(crate) fn sent(&mut self, forward_id: u64, replies: Vec<WriteReply<SM, N, R>>) {
        self.sent.insert(forward_id, replies);
    }

    /// The leader took batch `forward_id` at consecutive indexes from `first`.
    /// Indexes already applied here can no longer be answered with their
    /// response: those callers hear "outcome unknown", never a guess.
    pub(crate) fn accepted(&mut self, forward_id: u64, first: LogId, applied: LogIndex) {
        for (i, reply) in self.sent.remove(&forward_id).unwrap_or_default().into_iter().enumerate() {
            let log_id = LogId::new(first.leader_id, first.index + i as u64);
            if log_id.index <= applied {
                reply.answer(Err(WriteError::LeadershipLost));
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
            reply.answer(Err(error()));
        }
        let placed: Vec<LogIndex> =
            self.placed.iter().filter(|(_, (_, id, _))| *id == forward_id).map(|(index, _)| *index).collect();
        for index in placed {
            if let Some((_, _, reply)) = self.placed.remove(&index) {
                reply.answer(Err(error()));
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
        self.lost_upto(log_id.index.prev());
        match self.placed.remove(&log_id.index) {
            Some((placed, _, reply)) if placed == log_id => match response {
                Some(response) => {
                    reply.answer(Ok(WriteResponse { log_id, response }));
                    None
                }
                None => {
                    reply.answer(Err(WriteError::LeadershipLost));
                    None
                }
            },
            Some((_, _, reply)) => {
                reply.answer(Err(WriteError::LeadershipLost));
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
            reply.answer(Err(WriteError::LeadershipLost));
        }
    }

    /// The node stops: every caller hears `error`.
    pub(crate) fn stop(&mut self, error: impl Fn() -> WriteError<N>) {
        let batch = self.batch.drain(..).map(|(_, reply)| reply);
        let sent = self.sent.drain().flat_map(|(_, replies)| replies);
        let placed = std::mem::take(&mut self.placed).into_values().map(|(_, _, reply)| reply);
        for reply in batch.chain(sent).chain(placed) {
            reply.answer(Err(error()));
        }
    }
}

impl<SM: StateMachine, N: Node, R: ReplyKind> NodeHost<SM, N, R> {
    /// A client write served on this node, leader or not: queued until
    /// [`NodeHost::flush_write_batch`], which hands the follower's batch to
    /// the leader (the leader proposes it with its own writes).
    pub fn client_write_here(&mut self, command: SM::Command, reply: WriteReply<SM, N, R>) {
        self.forwards.batch.push((command, reply));
    }

    /// Hands this turn's writes to the leader in one message (the leader
    /// proposes its own with the other writes).
    pub(crate) fn flush_forward_batch(&mut self) {
        if self.forwards.batch.is_empty() {
            return;
        }
        if self.engine.is_leader() {
            self.books.write_batch.append(&mut self.forwards.batch);
            return;
        }
        // one message per `max_append_bytes` of commands: a transport drops
        // a message above its frame limit
        let max_bytes = self.engine.config_max_append_bytes();
        let mut batch = std::mem::take(&mut self.forwards.batch);
        while !batch.is_empty() {
            let sizes = batch.iter().map(|(command, _)| encoded_size(command));
            let rest = batch.split_off(count_fitting(sizes, usize::MAX, max_bytes));
            let (commands, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
            match self.engine.forward_write(commands) {
                Ok(forward_id) => self.forwards.sent(forward_id, replies),
                Err(forward) => {
                    for reply in replies {
                        reply.answer(Err(WriteError::ForwardToLeader(forward.clone())));
                    }
                }
            }
            batch = rest;
        }
    }

    /// A linearizable (or, with `lease`, lease) read served on this node,
    /// leader or not.
    pub fn read_here(&mut self, lease: bool, reply: R::Reply<ReadResult<N>>) {
        let id = self.books.request_id();
        match self.engine.read_index_here(id, lease) {
            Ok(()) => {
                self.books.reads.insert(id, reply);
            }
            Err(e) => reply.answer(Err(e)),
        }
    }
}
