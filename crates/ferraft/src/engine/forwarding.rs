//! Every node serves clients: a follower hands client writes to its leader
//! and asks it for read indexes over the Raft transport, then answers from
//! its own state machine. See `docs/reads.md`.
//!
//! A forwarded batch is proposed at most once: the follower never resends
//! it (an unanswered batch is answered "outcome unknown"), and the leader
//! ignores a copy of a batch it already took (a duplicating network).

use std::collections::{BTreeMap, HashSet, VecDeque};

use rand::Rng;

use super::reads::PendingRead;
use super::role::Role;
use super::{Engine, Output};
use crate::entry::AppData;
use crate::error::{ForwardToLeader, ReadError};
use crate::log_id::{index_of, LogId};
use crate::message::{
    ForwardOutcome, ForwardWrite, ForwardWriteReply, MessageBody, ReadIndexAsk, ReadIndexOutcome, ReadIndexReply,
};
use crate::node::{LogIndex, Node, NodeId, Term};

/// How long a follower waits for its leader's answer, in election timeouts,
/// before it answers the caller "outcome unknown" (writes) or "not
/// confirmed" (reads).
const ANSWER_WAIT_ELECTION_TIMEOUTS: u64 = 2;
/// How many forwarded batch ids a leader remembers to recognise copies.
const SEEN_IDS: usize = 4096;

/// Why a forwarded write got no success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardFailure {
    /// Nothing was proposed (the node asked does not lead, or the message
    /// never left this node); the caller may send the write elsewhere.
    NotProposed,
    /// No answer in time, or the batch was taken and not seen to commit:
    /// the outcome is unknown.
    Unknown,
}

/// What a follower waits for from its leader.
#[derive(Debug, Clone, Copy)]
enum Awaited {
    /// A batch of `count` writes, not yet accepted.
    Write { count: u64 },
    /// An accepted batch, until its last entry commits here.
    Commit { last: LogIndex },
    /// A read index for the caller's read `request_id`.
    Read { request_id: u64 },
}

/// A request to the leader and when its caller stops waiting.
#[derive(Debug, Clone, Copy)]
struct Sent {
    awaited: Awaited,
    deadline_ms: u64,
}

/// A forwarded batch the leader proposed, answered once it commits.
#[derive(Debug, Clone, Copy)]
struct Proposed {
    from: NodeId,
    id: u64,
    last: LogId,
}

/// Both sides of forwarding.
#[derive(Debug, Default)]
pub(crate) struct Forwarding {
    /// Ids count up from a random start, so a restarted follower's ids are
    /// not taken for copies of its earlier ones (0: not drawn yet).
    next_id: u64,
    /// Follower side: by id.
    sent: BTreeMap<u64, Sent>,
    /// Leader side: in log order.
    proposed: VecDeque<Proposed>,
    /// Leader side: recently taken batches, to ignore their copies.
    seen: HashSet<(NodeId, u64)>,
    seen_order: VecDeque<(NodeId, u64)>,
    /// Follower side: when the transport last said it cannot reach the
    /// leader; until the leader is heard from again nothing is sent to it.
    leader_unreachable_ms: Option<(NodeId, u64)>,
    /// Follower side: the leader's last durable entry, as it reported
    /// (see [`Engine::commit_on_leader_flush`]).
    leader_flushed: Option<LogId>,
    /// Follower side: a commit the leader reported for an entry not held
    /// here yet (its report overtook the append carrying it); it applies
    /// once an entry with that very log id arrives.
    reported_commit: Option<LogId>,
    /// Leader side: the term of the vote this node started with. Its
    /// leaderships after it are this process's own, so it knows which
    /// batches they took; of earlier ones (before a restart) it knows nothing.
    term_at_start: Term,
}

impl Forwarding {
    /// For a node whose saved vote (if any) is of `term_at_start`.
    pub(crate) fn starting_at(term_at_start: Term) -> Self {
        Self { term_at_start, ..Default::default() }
    }
}

impl<C: AppData, N: Node> Engine<C, N> {
    // ---- follower side -------------------------------------------------------

    /// Hands client `commands` to the leader (call it on a node that does not
    /// lead; the leader proposes its own with [`Engine::propose`]). Returns the
    /// batch id: `Output::ForwardAccepted` then gives the log ids to answer
    /// the writes at, or `Output::ForwardFailed` says why there are none.
    pub fn forward_write(&mut self, commands: Vec<C>) -> Result<u64, ForwardToLeader<N>> {
        let Some(leader) = self.reachable_leader().filter(|_| !commands.is_empty()) else {
            return Err(ForwardToLeader { leader_id: None, leader_node: None });
        };
        let count = commands.len() as u64;
        let id = self.await_leader(Awaited::Write { count });
        let addressed = self.vote.leader_id;
        self.send(leader, MessageBody::ForwardWrite(ForwardWrite { id, leader: addressed, commands }));
        Ok(id)
    }

    /// A linearizable read served here, on any node: on the leader as
    /// [`Engine::read_index`]; elsewhere the leader is asked for a read index
    /// (`lease`: it may answer from its lease). `Output::ReadReady` or
    /// `Output::ReadFailed` follows with `request_id`.
    pub fn read_index_here(&mut self, request_id: u64, lease: bool) -> Result<(), ReadError<N>> {
        if self.is_leader() {
            if let Some(read_index) = self.lease_read().ok().filter(|_| lease) {
                self.output.push(Output::ReadReady { request_id, read_index });
                return Ok(());
            }
            return self.read_index(request_id);
        }
        let Some(leader) = self.reachable_leader() else {
            return Err(ReadError::ForwardToLeader(ForwardToLeader { leader_id: None, leader_node: None }));
        };
        let id = self.await_leader(Awaited::Read { request_id });
        self.send(leader, MessageBody::ReadIndexAsk(ReadIndexAsk { id, lease }));
        Ok(())
    }

    /// The leader to hand requests to: another node, heard from since the
    /// transport last found it unreachable. A message to an unreachable node
    /// is dropped unsent, and a write that went nowhere must not be answered
    /// "outcome unknown".
    fn reachable_leader(&self) -> Option<NodeId> {
        let leader = self.current_leader().filter(|leader| *leader != self.id)?;
        match self.forwarding.leader_unreachable_ms {
            Some((peer, at)) if peer == leader && self.leader_seen_ms.is_none_or(|seen| seen <= at) => None,
            _ => Some(leader),
        }
    }

    /// The transport dropped forwarded batches `ids` to `peer` before they
    /// left this node: nothing was proposed, so their callers may go elsewhere.
    pub fn on_forward_undelivered(&mut self, peer: NodeId, ids: &[u64]) {
        for id in ids {
            if let Some(Sent { awaited: Awaited::Write { .. }, .. }) = self.forwarding.sent.get(id) {
                self.forwarding.sent.remove(id);
                tracing::debug!(node = %self.id, %peer, %id, "forwarded writes dropped unsent");
                self.output.push(Output::ForwardFailed { forward_id: *id, failure: ForwardFailure::NotProposed });
            }
        }
    }

    /// The transport cannot reach `peer`: if it is the leader, reads waiting
    /// for it fail now (a read may be retried freely), and nothing more is
    /// sent to it until it is heard from.
    pub(crate) fn on_leader_unreachable(&mut self, peer: NodeId) {
        if self.is_leader() || self.current_leader() != Some(peer) {
            return;
        }
        self.forwarding.leader_unreachable_ms = Some((peer, self.now_ms));
        let reads: Vec<(u64, u64)> = self
            .forwarding
            .sent
            .iter()
            .filter_map(
                |(id, s)| if let Awaited::Read { request_id } = s.awaited { Some((*id, request_id)) } else { None },
            )
            .collect();
        for (id, request_id) in reads {
            self.forwarding.sent.remove(&id);
            self.output.push(Output::ReadFailed { request_id });
        }
    }

    /// Records what this node waits for from the leader; returns its id.
    fn await_leader(&mut self, awaited: Awaited) -> u64 {
        if self.forwarding.next_id == 0 {
            // drawn only when first needed: simulator runs without forwarding stay as they were
            self.forwarding.next_id = (self.rng.gen::<u32>() as u64 + 1) << 24;
        }
        let id = self.forwarding.next_id;
        self.forwarding.next_id += 1;
        let deadline_ms = self.forward_deadline_ms();
        self.forwarding.sent.insert(id, Sent { awaited, deadline_ms });
        id
    }

    fn forward_deadline_ms(&self) -> u64 {
        self.now_ms + self.config.election_timeout_max_ms * ANSWER_WAIT_ELECTION_TIMEOUTS
    }

    pub(crate) fn on_forward_write_reply(&mut self, reply: ForwardWriteReply) {
        let Some(sent) = self.forwarding.sent.remove(&reply.id) else { return };
        match (sent.awaited, reply.outcome) {
            (Awaited::Write { count }, ForwardOutcome::Accepted { first }) => {
                // the caller learns where its writes sit before they can apply here
                self.output.push(Output::ForwardAccepted { forward_id: reply.id, first });
                let last = first.index + (count - 1);
                if last > index_of(self.committed) {
                    let awaited = Awaited::Commit { last };
                    self.forwarding.sent.insert(reply.id, Sent { awaited, deadline_ms: self.forward_deadline_ms() });
                }
            }
            (Awaited::Commit { .. }, ForwardOutcome::Committed { upto }) => {
                // still awaited (with its deadline) until it commits here: a
                // lagging follower may not hold `upto`, and may never get it
                self.forwarding.sent.insert(reply.id, sent);
                self.learn_committed(Some(upto));
            }
            (Awaited::Commit { .. }, ForwardOutcome::Flushed { upto }) => {
                self.forwarding.sent.insert(reply.id, sent);
                self.forwarding.leader_flushed = self.forwarding.leader_flushed.max(Some(upto));
                self.commit_on_leader_flush();
            }
            (Awaited::Write { .. }, ForwardOutcome::NotLeader { leader }) => {
                tracing::debug!(node = %self.id, ?leader, "forwarded writes refused: not the leader");
                self.output.push(Output::ForwardFailed { forward_id: reply.id, failure: ForwardFailure::NotProposed });
            }
            // an answer that does not fit what was asked: keep waiting
            (_, _) => {
                self.forwarding.sent.insert(reply.id, sent);
            }
        }
    }

    pub(crate) fn on_read_index_reply(&mut self, reply: ReadIndexReply) {
        let Some(Sent { awaited: Awaited::Read { request_id }, .. }) = self.forwarding.sent.remove(&reply.id) else {
            return;
        };
        match reply.outcome {
            ReadIndexOutcome::Ready { read_index, committed } => {
                self.learn_committed(committed);
                self.output.push(Output::ReadReady { request_id, read_index });
            }
            ReadIndexOutcome::NotConfirmed => self.output.push(Output::ReadFailed { request_id }),
        }
    }

    /// The leader says `committed` is committed. An entry with that log id in
    /// this log proves the whole prefix before it equal to the leader's (log
    /// matching), so it is committed here too.
    fn learn_committed(&mut self, committed: Option<LogId>) {
        // a late report from a predecessor: a leader commits by its own rule
        if committed > self.committed && !self.is_leader() {
            if self.log.contains(committed) {
                self.commit_to(committed);
            } else {
                self.forwarding.reported_commit = self.forwarding.reported_commit.max(committed);
            }
        }
        self.forget_committed_batches();
    }

    /// Entries arrived: commits up to a commit the leader reported before
    /// they did, if this log now holds that exact log id (which proves the
    /// prefix equal to the leader's, as in [`Self::learn_committed`]).
    pub(crate) fn maybe_commit_reported(&mut self) {
        let Some(reported) = self.forwarding.reported_commit else { return };
        if Some(reported) <= self.committed {
            self.forwarding.reported_commit = None;
        } else if self.log.contains(Some(reported)) {
            self.forwarding.reported_commit = None;
            self.commit_to(Some(reported));
        }
    }

    /// Commits what this node and its leader both hold durably, where the
    /// two are a quorum of every config in force: the entry is then on a
    /// quorum, which is all that committing it means, so the follower need
    /// not wait for its acknowledgement to reach the leader and the commit
    /// news to come back (two hops). Only an entry of the leader's own term
    /// counts (Raft §5.4.2, as on the leader), and holding it proves the
    /// prefix: one leader writes one entry per index in its term, so an
    /// entry here under its leader id is the leader's entry, and log
    /// matching makes everything before it the leader's too. The configs
    /// are those in force at that entry in this log, which is the leader's
    /// prefix: the configs the leader itself counted with when it appended
    /// the entry. Only a notice of the leadership this node votes for now
    /// counts: one kept from an earlier leadership could meet that old entry
    /// again, taken anew from a later leader after the copies it counted
    /// were truncated (simulator seed 9001, WAL with lease stress).
    pub(crate) fn commit_on_leader_flush(&mut self) {
        // a leader commits by its own rule, which also acts on a membership
        // committing (a late notice from its predecessor would bypass that)
        if self.is_leader() {
            return;
        }
        let Some(flushed) = self.forwarding.leader_flushed else { return };
        // only the leadership this node follows now: counting the replicas
        // of an earlier one's entry commits nothing (Raft 5.4.2; seed 9001)
        if flushed.leader_id != self.vote.leader_id {
            return;
        }
        let index = index_of(self.durable).min(flushed.index);
        if index <= index_of(self.committed) {
            return;
        }
        let Some(log_id) = self.log.log_id_at(index).filter(|l| l.leader_id == flushed.leader_id) else { return };
        let Some(membership) = self.log.membership_at(index) else { return };
        let leader = flushed.leader_id.node_id;
        let pair_is_quorum = membership.membership.is_quorum(|id| id == self.id || id == leader);
        if !pair_is_quorum && !self.breaks(crate::config::BrokenRule::FlushCommitWithoutQuorum) {
            return;
        }
        tracing::trace!(node = %self.id, %index, "committed on the leader's flush");
        self.commit_to(Some(log_id));
    }

    /// Leader side: tells each follower whose forwarded batches this node now
    /// holds durably (and has not committed yet) so, naming its last durable
    /// entry, so the follower can commit them on its own flush
    /// ([`Self::commit_on_leader_flush`]). One message per follower per flush,
    /// and only to followers waiting for batches.
    pub(crate) fn tell_flushed_forwards(&mut self) {
        if !self.is_leader() {
            return;
        }
        let Some(durable) = self.durable.filter(|d| d.leader_id == self.vote.leader_id) else { return };
        let Role::Leader(leader) = &mut self.role else { return };
        // each follower hears of its own last durable batch: that is all it
        // needs to answer its writes, and it keeps the read floor (what
        // followers may commit early) no higher than needed
        let mut told: BTreeMap<NodeId, (u64, LogId)> = BTreeMap::new();
        // batches are in log order, so those told and those durable are
        // prefixes: the ones to tell lie after `flush_told`, up to `durable`
        let already_told = leader.flush_told;
        let durable_batches = self.forwarding.proposed.iter().take_while(|b| b.last.index <= durable.index);
        for batch in durable_batches.skip_while(|b| b.last.index <= already_told) {
            told.insert(batch.from, (batch.id, batch.last));
            // before any follower can commit on this notice
            leader.flush_told = batch.last.index;
        }
        for (from, (id, upto)) in told {
            let outcome = ForwardOutcome::Flushed { upto };
            self.send(from, MessageBody::ForwardWriteReply(ForwardWriteReply { id, outcome }));
        }
    }

    /// Drops accepted batches whose entries committed here.
    pub(crate) fn forget_committed_batches(&mut self) {
        let committed = index_of(self.committed);
        self.forwarding.sent.retain(|_, sent| !matches!(sent.awaited, Awaited::Commit { last } if last <= committed));
    }

    /// Answers requests the leader left unanswered past their deadline.
    pub(crate) fn expire_forwarded(&mut self) {
        let now = self.now_ms;
        if !self.forwarding.sent.values().any(|s| s.deadline_ms <= now) {
            return;
        }
        self.forget_committed_batches();
        let expired: Vec<(u64, Awaited)> =
            self.forwarding.sent.iter().filter(|(_, s)| s.deadline_ms <= now).map(|(id, s)| (*id, s.awaited)).collect();
        for (id, awaited) in expired {
            self.forwarding.sent.remove(&id);
            self.output.push(match awaited {
                Awaited::Read { request_id } => Output::ReadFailed { request_id },
                Awaited::Write { .. } | Awaited::Commit { .. } => {
                    Output::ForwardFailed { forward_id: id, failure: ForwardFailure::Unknown }
                }
            });
        }
    }

    // ---- leader side ---------------------------------------------------------

    pub(crate) fn on_forward_write(&mut self, from: NodeId, request: ForwardWrite<C>) {
        if self.forwarding.seen.contains(&(from, request.id)) {
            return;
        }
        if !(self.is_leader() && self.vote.leader_id == request.leader) {
            // "not proposed" is true only of a leadership this process held:
            // it took the batch iff it remembers taking it. A leadership
            // before a restart may have taken it: say nothing, and the
            // follower answers "outcome unknown" at its deadline.
            let ours = request.leader.node_id == self.id && request.leader.term > self.forwarding.term_at_start;
            if ours {
                let outcome = ForwardOutcome::NotLeader { leader: self.current_leader() };
                self.send(from, MessageBody::ForwardWriteReply(ForwardWriteReply { id: request.id, outcome }));
            } else {
                tracing::debug!(node = %self.id, %from, addressed = ?request.leader, "forwarded writes for a leadership before a restart: not answered");
            }
            return;
        }
        let first = match self.propose(request.commands) {
            Ok(Some(first)) => first,
            Ok(None) => return,
            Err(forward) => {
                // refused for good: a copy arriving after a transfer ends must
                // not be proposed, its caller was told nothing happened
                self.remember_taken(from, request.id);
                let outcome = ForwardOutcome::NotLeader { leader: forward.leader_id };
                self.send(from, MessageBody::ForwardWriteReply(ForwardWriteReply { id: request.id, outcome }));
                return;
            }
        };
        self.remember_taken(from, request.id);
        let last = self.log.last_log_id().expect("just proposed");
        let outcome = ForwardOutcome::Accepted { first };
        self.send(from, MessageBody::ForwardWriteReply(ForwardWriteReply { id: request.id, outcome }));
        self.forwarding.proposed.push_back(Proposed { from, id: request.id, last });
        self.answer_committed_forwards();
    }

    fn remember_taken(&mut self, from: NodeId, id: u64) {
        let forwarding = &mut self.forwarding;
        forwarding.seen.insert((from, id));
        forwarding.seen_order.push_back((from, id));
        if forwarding.seen_order.len() > SEEN_IDS {
            if let Some(old) = forwarding.seen_order.pop_front() {
                forwarding.seen.remove(&old);
            }
        }
    }

    /// Tells followers their forwarded batches committed: one message per
    /// follower per commit, naming its last committed batch entry.
    pub(crate) fn answer_committed_forwards(&mut self) {
        if !self.is_leader() {
            return;
        }
        let committed = index_of(self.committed);
        let mut last_of: BTreeMap<NodeId, (u64, LogId)> = BTreeMap::new();
        while let Some(batch) = self.forwarding.proposed.front().filter(|b| b.last.index <= committed) {
            last_of.insert(batch.from, (batch.id, batch.last));
            self.forwarding.proposed.pop_front();
        }
        for (from, (id, upto)) in last_of {
            let outcome = ForwardOutcome::Committed { upto };
            self.send(from, MessageBody::ForwardWriteReply(ForwardWriteReply { id, outcome }));
        }
    }

    /// Leadership ended: the batches not committed yet are the new leader's
    /// to commit or drop; their followers learn which when they apply.
    pub(crate) fn drop_proposed_forwards(&mut self) {
        self.forwarding.proposed.clear();
    }

    pub(crate) fn on_read_index_ask(&mut self, from: NodeId, ask: ReadIndexAsk) {
        if !self.is_leader() {
            self.refuse_read_index(from, ask.id);
            return;
        }
        let leased = ask.lease && self.lease_read().is_ok();
        let committed = index_of(self.committed);
        let Role::Leader(leader) = &mut self.role else { return };
        let read_index = leader.read_floor(committed);
        if leased && read_index <= committed {
            self.answer_read_index(from, ask.id, read_index);
            return;
        }
        // the lease confirms leadership already (sequence 0: any
        // acknowledgement will do); the read index still has to commit
        let seq = if leased { 0 } else { leader.seq + 1 };
        leader.reads.push_back(PendingRead { request_id: ask.id, read_index, seq, asker: Some(from) });
        leader.read_round_needed |= !leased;
        self.maybe_confirm_reads();
    }

    /// Sends a confirmed read index to the follower that asked for it.
    pub(crate) fn answer_read_index(&mut self, to: NodeId, id: u64, read_index: LogIndex) {
        let outcome = ReadIndexOutcome::Ready { read_index, committed: self.committed };
        self.send(to, MessageBody::ReadIndexReply(ReadIndexReply { id, outcome }));
    }

    /// Tells the follower that asked for a read index that it is not coming.
    pub(crate) fn refuse_read_index(&mut self, to: NodeId, id: u64) {
        let outcome = ReadIndexOutcome::NotConfirmed;
        self.send(to, MessageBody::ReadIndexReply(ReadIndexReply { id, outcome }));
    }
}
