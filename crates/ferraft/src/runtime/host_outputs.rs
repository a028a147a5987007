//! How the host executes the engine's outputs: storage calls, sends,
//! applies, and the answers they complete.

use super::host::{NodeHost, C};
use super::reply::{Answer, ReplyKind};
use crate::config::BrokenRule;
use crate::engine::Output;
use crate::entry::EntryPayload;
use crate::error::ReadError;
use crate::log_id::{index_of, LogId};
use crate::message::{Message, MessageBody};
use crate::node::Node;
use crate::peer_refusal::PeerRefusal;
use crate::state_machine::StateMachine;
use crate::storage::{AppendDurability, StorageError};

impl<SM: StateMachine, N: Node, R: ReplyKind> NodeHost<SM, N, R> {
    /// Runs outputs until the engine has nothing more to say (outputs
    /// produced while executing a batch run after that batch), then answers
    /// explicit steps whose entry committed or whose time ran out.
    pub fn execute_outputs(&mut self) {
        loop {
            let mut outputs = std::mem::take(&mut self.outputs);
            self.engine.drain_outputs_into(&mut outputs);
            if outputs.is_empty() {
                self.outputs = outputs;
                break;
            }
            for output in outputs.drain(..) {
                if self.fatal.is_some() {
                    return;
                }
                if let Err(e) = self.execute(output) {
                    self.fail(e);
                    return;
                }
            }
            self.outputs = outputs;
        }
        self.books.check_commit_waiters(self.engine.log(), index_of(self.engine.committed()), self.now_ms);
        // said for one turn: a later call (a snapshot request's) hands off
        self.nothing_else_waiting = false;
    }

    fn execute(&mut self, output: Output<C<SM>, N>) -> Result<(), StorageError> {
        match output {
            Output::SaveClusterId(cluster_id) => self.store.save_cluster_id(cluster_id)?,
            Output::SaveVote(vote) => self.store.save_vote(&vote)?,
            Output::AppendLog(entries) => {
                let last = entries.last().map(|e| e.log_id);
                let durability = if self.may_sync_inline() {
                    self.store.append_inline(&entries, &self.notifier)?
                } else {
                    self.store.append(&entries, &self.notifier)?
                };
                if durability == AppendDurability::Durable {
                    if let Some(last) = last {
                        self.engine.on_log_flushed(last);
                    }
                }
            }
            Output::TruncateLog(since) => self.store.truncate(since)?,
            Output::PurgeLog(upto) => self.store.purge(upto)?,
            Output::SaveCommitted(committed) => self.store.save_committed(committed)?,
            Output::Send(message) => self.send(message),
            Output::Apply { upto } => {
                self.apply(upto);
                self.engine.trim_applied(index_of(self.applied));
            }
            Output::BuildSnapshot => self.start_snapshot_job()?,
            Output::ReadEntries { to, vote, from, end } => self.start_read(to, vote, from..end),
            Output::SendSnapshotChunk { to, offset, seq, vote } => self.send_snapshot_chunk(to, offset, seq, vote)?,
            Output::ReceiveSnapshotChunk { from, chunk } => self.receive_snapshot_chunk(from, chunk)?,
            Output::ReadReady { request_id, read_index } => {
                if let Some(reply) = self.books.reads.remove(&request_id) {
                    self.books.reply_when_applied(read_index, index_of(self.applied), reply);
                }
            }
            Output::ReadFailed { request_id } => {
                if let Some(reply) = self.books.reads.remove(&request_id) {
                    reply.answer(Err(ReadError::NotConfirmed));
                }
            }
            Output::ForwardAccepted { forward_id, first } => {
                self.forwards.accepted(forward_id, first, index_of(self.applied));
            }
            Output::ForwardFailed { forward_id, failure } => {
                self.forwards.failed(forward_id, failure, self.engine.forward_to_leader());
            }
            Output::LeadershipLost => self.books.leadership_lost(self.engine.log(), index_of(self.engine.committed())),
            Output::ProbeAnswered { from, seq, cluster_id, incarnation, leader } => {
                self.initialize_probe_answered(from, seq, cluster_id, incarnation, leader);
                let ours = self.engine.cluster_id();
                let skip = self.engine.breaks(BrokenRule::SkipClusterCheck);
                let answer = match cluster_id {
                    Some(theirs) if Some(theirs) != ours && !skip => Err(PeerRefusal::OtherCluster { theirs, ours }),
                    _ => Ok(incarnation),
                };
                self.books.answer_probes(from, Some(seq), answer);
            }
            Output::MembershipDone { request_id, result } => {
                if let Some(reply) = self.books.memberships.remove(&request_id) {
                    reply.answer(result);
                }
            }
        }
        Ok(())
    }

    /// Whether an append may wait for its sync on this thread: only a node
    /// that does not lead (a leader's appends must leave for its followers
    /// first, and they leave after this turn), with nothing else to do and
    /// at most one client of its own waiting (under load the thread serves
    /// its clients while the writer syncs: measured at 64 clients, syncing
    /// inline whenever the event queue was empty cost up to 16% of put/s).
    fn may_sync_inline(&self) -> bool {
        self.nothing_else_waiting
            && self.engine.config_follower_sync_inline()
            && !self.engine.is_leader()
            && self.forwards.waiting() + self.books.reads_waiting() <= 1
    }

    /// Sends to the peer's address: in the membership, else in the directory,
    /// else in a purged membership. A probe and its answer go to the address
    /// the operator or the asker gave (in the directory): the node asked
    /// about may be one an old membership names at another address, and the
    /// asker may be of another cluster, whose ids name other machines here.
    /// A purged membership's address comes after the directory's: the id may
    /// since name a node at another address, added by memberships this log
    /// does not hold yet, whose own messages told its address.
    pub(crate) fn send(&self, message: Message<C<SM>, N>) {
        let to = message.envelope.to;
        let log = self.engine.log();
        let in_log = || log.known_node(to);
        // a node just removed is still told of its removal: its address is in
        // the memberships before the one in force
        let node = match message.body {
            MessageBody::Probe(_) | MessageBody::ProbeReply(_) => self.directory.get(&to).or_else(in_log),
            _ => in_log().or_else(|| self.directory.get(&to)),
        }
        .or_else(|| log.forgotten_node(to));
        match node {
            Some(node) => self.network.send(node, message),
            None => tracing::debug!(node = %self.engine.id(), %to, "no address for peer; message dropped"),
        }
    }

    /// Applies committed entries up to `upto`, answering their writes and
    /// the reads that waited for them.
    fn apply(&mut self, upto: LogId) {
        for index in index_of(self.applied).next().through(upto.index) {
            let Some(entry) = self.engine.log().get(index) else { break };
            let log_id = entry.log_id;
            let response = match &entry.payload {
                EntryPayload::Normal(command) => Some(self.state_machine.apply(log_id, command)),
                _ => None,
            };
            // a write served here with the leader's help takes its response
            if let Some(response) = self.forwards.applied(log_id, response) {
                if self.engine.breaks(BrokenRule::AnswerWriteByPosition) {
                    self.books.write_applied_by_position(log_id, response);
                } else {
                    self.books.write_applied(log_id, response);
                }
            }
            self.applied = Some(log_id);
        }
        self.books.applied_up_to(index_of(self.applied));
    }
}
