//! The follower side of replication: appends and snapshot chunks.

use super::{Engine, Output, PendingReply};
use crate::entry::{AppData, EntryPayload};
use crate::log_id::{index_of, LogId};
use crate::message::{AppendEntries, AppendOutcome, AppendReply, Message, MessageBody, SnapshotChunk, SnapshotReply};
use crate::node::{LogIndex, Node, NodeId};
use crate::snapshot::SnapshotMeta;
use crate::vote::Vote;

impl<C: AppData, N: Node> Engine<C, N> {
    /// Accepts `vote` from a leader's message, or refuses it. On success this
    /// node follows that leader and its election timer restarts.
    fn accept_leader(&mut self, from: NodeId, vote: Vote) -> bool {
        if !vote.committed || vote.leader_id.node_id != from {
            return false;
        }
        if !self.vote.may_advance_to(&vote, self.config.leader_id_mode) {
            return false;
        }
        self.adopt_contacting_cluster();
        if self.vote != vote || !matches!(self.role, super::Role::Follower) {
            self.save_vote(vote);
            self.become_follower();
        }
        self.leader_seen_ms = Some(self.now_ms);
        self.removed_by_quorum = false;
        self.reset_election_deadline();
        true
    }

    pub(crate) fn on_append(&mut self, from: NodeId, req: AppendEntries<C, N>) {
        if !self.accept_leader(from, req.vote) {
            // a refusal acknowledges nothing: echoing the refused message's
            // sequence number under our vote would let a later leadership of
            // the same node (its numbers restart) count it as an ack
            self.reply_append(from, 0, AppendOutcome::Rejected);
            return;
        }
        tracing::trace!(node = %self.id, %from, prev = ?req.prev_log_id, n = req.entries.len(), "append");
        if let Some(conflict) = self.find_conflict(req.prev_log_id) {
            let last_index = self.log.last_index();
            self.reply_append(from, req.seq, AppendOutcome::Conflict { hint_index: conflict, last_index });
            return;
        }
        let mut matched = req.prev_log_id;
        let mut entries = req.entries.into_iter().peekable();
        // skip what we already hold; truncate at the first divergence
        while let Some(entry) = entries.peek() {
            let index = entry.log_id.index;
            if index < self.log.first_index() || self.log.log_id_at(index) == Some(entry.log_id) {
                matched = Some(entry.log_id).max(matched);
                entries.next();
                continue;
            }
            if index <= self.log.last_index() {
                if index <= index_of(self.committed) {
                    tracing::error!(
                        node = %self.id,
                        %from,
                        %index,
                        "leader sent an entry conflicting with a committed one; ignoring"
                    );
                    return;
                }
                self.truncate_from(index);
            }
            break;
        }
        for entry in entries {
            if entry.log_id.index != self.log.last_index() + 1 {
                tracing::warn!(node = %self.id, %from, "non-contiguous entries in append; ignoring the rest");
                break;
            }
            matched = Some(entry.log_id);
            if let EntryPayload::Membership(next) = &entry.payload {
                self.learn_recorded_incarnations(next);
            }
            self.log.push(entry.clone());
            self.push_append_output(entry);
        }
        // commit what the leader committed, as far as this message proves our log matches
        let provable = req.committed.min(matched);
        if provable > self.committed && self.log.contains(provable) {
            self.commit_to(provable);
        }
        self.maybe_commit_reported();
        self.reply_success_when_durable(from, req.seq, matched);
    }

    /// Where our log disagrees with `prev`, as a hint for the leader's next try.
    fn find_conflict(&self, prev: Option<LogId>) -> Option<LogIndex> {
        let prev = prev?;
        if prev.index < self.log.first_index() {
            // covered by our snapshot: committed, hence matching
            return None;
        }
        if prev.index > self.log.last_index() {
            return Some(self.log.last_index());
        }
        if self.log.log_id_at(prev.index) == Some(prev) {
            return None;
        }
        // skip back over the whole run of entries proposed by the conflicting leader
        let ours = self.log.log_id_at(prev.index).map(|l| l.leader_id);
        let mut hint = prev.index.prev();
        while hint > index_of(self.committed) && self.log.log_id_at(hint).map(|l| l.leader_id) == ours {
            hint = hint.prev();
        }
        Some(hint)
    }

    pub(crate) fn truncate_from(&mut self, index: LogIndex) {
        self.log.truncate(index);
        self.output.push(Output::TruncateLog(index));
        if self.durable.is_some_and(|d| d.index >= index) {
            self.durable = self.log.log_id_at(index.prev());
        }
        // a membership a request of ours proposed may be gone: say so
        self.settle_membership_requests();
    }

    fn reply_success_when_durable(&mut self, to: NodeId, seq: u64, matched: Option<LogId>) {
        let outcome = AppendOutcome::Success { matched };
        let body = MessageBody::AppendReply(AppendReply {
            vote: self.vote,
            seq,
            outcome,
            committed: index_of(self.committed),
        });
        let message = Message { envelope: self.reply_envelope(to), body };
        self.send_once_durable(message, matched);
    }

    /// Sends `message`, which tells the leader this log holds everything up
    /// to `matched`, once that is durable here: at once if it is (in the log,
    /// or under a snapshot of ours), else when the log is flushed that far.
    fn send_once_durable(&mut self, message: Message<C, N>, matched: Option<LogId>) {
        match matched {
            Some(m) if m.index > index_of(self.durable) && self.log.contains(Some(m)) => {
                self.pending_replies.push(PendingReply { matched: m, message });
            }
            _ => self.output.push(Output::Send(message)),
        }
    }

    fn reply_append(&mut self, to: NodeId, seq: u64, outcome: AppendOutcome) {
        let committed = index_of(self.committed);
        self.send(to, MessageBody::AppendReply(AppendReply { vote: self.vote, seq, outcome, committed }));
    }

    pub(crate) fn on_snapshot_chunk(&mut self, from: NodeId, chunk: SnapshotChunk<N>) {
        if !self.accept_leader(from, chunk.vote) {
            // seq 0: a refusal acknowledges nothing (see `on_append`)
            let last_log_id = chunk.meta.last_log_id;
            let reply = SnapshotReply { vote: self.vote, last_log_id, next_offset: 0, seq: 0, installing: false };
            self.send(from, MessageBody::SnapshotReply(reply));
            return;
        }
        if chunk.meta.last_log_id <= self.committed {
            // nothing to gain: we already have everything it covers
            self.reply_snapshot_held(from, chunk.meta.last_log_id, chunk.seq);
            return;
        }
        self.output.push(Output::ReceiveSnapshotChunk { from, chunk });
    }

    /// The runtime stored a chunk; tell the leader where to continue.
    pub fn on_snapshot_chunk_stored(&mut self, from: NodeId, last_log_id: Option<LogId>, next_offset: u64, seq: u64) {
        self.reply_snapshot(from, last_log_id, next_offset, seq);
    }

    /// The runtime installed a complete snapshot into the state machine and
    /// saved it: the log now starts after it.
    pub fn on_snapshot_installed(&mut self, from: NodeId, meta: SnapshotMeta<N>, seq: u64) {
        let Some(last) = meta.last_log_id else { return };
        if Some(last) > self.committed {
            if !self.log.contains(Some(last)) {
                self.output.push(Output::TruncateLog(self.log.first_index()));
            }
            self.learn_recorded_incarnations(&meta.membership.membership);
            self.log.install_snapshot(last, meta.membership, &meta.changes);
            self.output.push(Output::PurgeLog(last));
            self.store_purged = self.store_purged.max(Some(last));
            self.log.on_store_purged(last.index);
            if index_of(self.durable) < last.index || !self.log.contains(self.durable) {
                self.durable = Some(last);
            }
            self.committed = Some(last);
            self.output.push(Output::SaveCommitted(self.committed));
            self.apply_emitted = last.index;
            self.snapshot_index = last.index;
        }
        self.reply_snapshot_held(from, Some(last), seq);
    }

    fn reply_snapshot(&mut self, to: NodeId, last_log_id: Option<LogId>, next_offset: u64, seq: u64) {
        let reply = SnapshotReply { vote: self.vote, last_log_id, next_offset, seq, installing: false };
        self.send(to, MessageBody::SnapshotReply(reply));
    }

    /// Tells the leader everything up to `last` is held here (the leader
    /// takes it as this follower's match), once it is durable. Committed is
    /// not durable: a follower learns commits of entries it has not synced,
    /// a crash takes those back, and a leader told they were held then sees
    /// this log go backwards and stops replicating here.
    fn reply_snapshot_held(&mut self, to: NodeId, last: Option<LogId>, seq: u64) {
        let reply = SnapshotReply { vote: self.vote, last_log_id: last, next_offset: u64::MAX, seq, installing: false };
        let message = Message { envelope: self.reply_envelope(to), body: MessageBody::SnapshotReply(reply) };
        self.send_once_durable(message, last);
    }

    /// The reply telling the leader that all `received` bytes of the snapshot
    /// ending at `last_log_id` arrived and the install starts: the runtime
    /// sends it at once, before the install (which may take long).
    pub fn snapshot_installing_reply(
        &self,
        to: NodeId,
        last_log_id: Option<LogId>,
        received: u64,
        seq: u64,
    ) -> Message<C, N> {
        let reply = SnapshotReply { vote: self.vote, last_log_id, next_offset: received, seq, installing: true };
        Message { envelope: self.reply_envelope(to), body: MessageBody::SnapshotReply(reply) }
    }
}
