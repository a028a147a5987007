//! Who is waiting for what: the host's books of unanswered callers, and the
//! rules that answer them as the log commits and applies.

use std::collections::{HashMap, VecDeque};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::event::WriteResponse;
use super::reply::{Answer, ReplyKind};
use crate::engine::RaftLog;
use crate::error::{ChangeMembershipError, Fatal, ReadError, WriteError};
use crate::log_id::LogId;
use crate::membership::StoredMembership;
use crate::node::{LogIndex, Node, NodeId};
use crate::peer_refusal::PeerRefusal;
use crate::state_machine::StateMachine;

/// What a write's caller hears.
pub type WriteResult<SM, N> = Result<WriteResponse<<SM as StateMachine>::Response>, WriteError<N>>;
/// What a membership change's caller hears.
pub type MembershipResult<N> = Result<StoredMembership<N>, ChangeMembershipError<N>>;
/// What an explicit joint step's caller hears: the index of its committed entry.
pub type IndexResult<N> = Result<LogIndex, ChangeMembershipError<N>>;
/// What a read's caller hears: the read index, once applied here.
pub type ReadResult<N> = Result<LogIndex, ReadError<N>>;

pub(crate) type WriteReply<SM, N, R> = <R as ReplyKind>::Reply<WriteResult<SM, N>>;
type ReadReply<N, R> = <R as ReplyKind>::Reply<ReadResult<N>>;
type IndexReply<N, R> = <R as ReplyKind>::Reply<IndexResult<N>>;
type MembershipReply<N, R> = <R as ReplyKind>::Reply<MembershipResult<N>>;
type ProbeReply<R> = <R as ReplyKind>::Reply<Result<u64, PeerRefusal>>;

/// The callers a node has not answered yet.
pub(crate) struct ReplyBooks<SM: StateMachine, N: Node, R: ReplyKind> {
    /// Counts up from a random start drawn at each start of the node: probe
    /// numbers go on the wire, and a late answer to a probe of an earlier
    /// life must not match one of this life.
    next_request_id: u64,
    /// Proposed writes, in log order, each with the log id it was given.
    pub(crate) writes: VecDeque<(LogId, WriteReply<SM, N, R>)>,
    /// Writes not yet proposed (batched into one append).
    pub(crate) write_batch: Vec<(SM::Command, WriteReply<SM, N, R>)>,
    /// Read-index rounds under way, by request id.
    pub(crate) reads: HashMap<u64, ReadReply<N, R>>,
    /// Confirmed reads waiting for their index to be applied.
    reads_waiting_apply: Vec<(LogIndex, ReadReply<N, R>)>,
    /// Membership requests the engine answers, by request id.
    pub(crate) memberships: HashMap<u64, MembershipReply<N, R>>,
    /// Explicit membership steps waiting for their entry (by log id: another
    /// leader may put its own entry at that index) to commit, each with the
    /// time by which it is answered anyway.
    commit_waiters: Vec<(LogId, u64, IndexReply<N, R>)>,
    /// Callers waiting to hear whether a probed node refuses this cluster,
    /// with their probe's number: two probes of one id may go to two
    /// addresses (a readmit and an add at once), and each hears its own answer.
    probes: HashMap<NodeId, Vec<(u64, ProbeReply<R>)>>,
}

impl<SM: StateMachine, N: Node, R: ReplyKind> ReplyBooks<SM, N, R> {
    /// How many reads served here wait for their index or its apply.
    pub(crate) fn reads_waiting(&self) -> usize {
        self.reads.len() + self.reads_waiting_apply.len()
    }
}

impl<SM: StateMachine, N: Node, R: ReplyKind> ReplyBooks<SM, N, R> {
    /// Books whose request ids count up from a start drawn from `seed`.
    pub(crate) fn numbered_from_seed(seed: u64) -> Self {
        // a stream of its own: the engine's draws from the seed stay as they were
        let mut rng = SmallRng::seed_from_u64(seed ^ 0x5851_f42d_4c95_7f2d);
        Self {
            next_request_id: u64::from(rng.gen::<u32>()) << 24,
            writes: VecDeque::new(),
            write_batch: Vec::new(),
            reads: HashMap::new(),
            reads_waiting_apply: Vec::new(),
            memberships: HashMap::new(),
            commit_waiters: Vec::new(),
            probes: HashMap::new(),
        }
    }
}

impl<SM: StateMachine, N: Node, R: ReplyKind> ReplyBooks<SM, N, R> {
    /// A fresh id for an engine request.
    pub(crate) fn request_id(&mut self) -> u64 {
        self.next_request_id += 1;
        self.next_request_id
    }

    /// Answers a membership call now if it was refused, else when the engine
    /// says it is done.
    pub(crate) fn track_membership(
        &mut self,
        id: u64,
        result: Result<(), ChangeMembershipError<N>>,
        reply: MembershipReply<N, R>,
    ) {
        match result {
            Ok(()) => {
                self.memberships.insert(id, reply);
            }
            Err(e) => reply.answer(Err(e)),
        }
    }

    /// Waits for the answer of probe `seq` of `peer`.
    pub(crate) fn await_probe(&mut self, peer: NodeId, seq: u64, reply: ProbeReply<R>) {
        self.probes.entry(peer).or_default().push((seq, reply));
    }

    /// Answers those waiting to hear whether `peer` refuses this cluster:
    /// the asker of probe `seq`, or (`None`: the transport could not reach
    /// it, or it refused the connection) every one.
    pub(crate) fn answer_probes(&mut self, peer: NodeId, seq: Option<u64>, answer: Result<u64, PeerRefusal>) {
        let Some(waiting) = self.probes.get_mut(&peer) else { return };
        let (answered, still): (Vec<_>, Vec<_>) =
            waiting.drain(..).partition(|(asked, _)| seq.is_none_or(|seq| seq == *asked));
        *waiting = still;
        if waiting.is_empty() {
            self.probes.remove(&peer);
        }
        for (_, reply) in answered {
            reply.answer(answer);
        }
    }

    /// An explicit membership step: answered now if refused or committed,
    /// else once committed, or `NotCommittedInTime` at `answer_by`.
    pub(crate) fn reply_when_committed(
        &mut self,
        result: IndexResult<N>,
        log: &RaftLog<SM::Command, N>,
        committed: LogIndex,
        answer_by: u64,
        reply: IndexReply<N, R>,
    ) {
        match result {
            Ok(index) if index <= committed => reply.answer(Ok(index)),
            Ok(index) => match log.log_id_at(index) {
                Some(log_id) => self.commit_waiters.push((log_id, answer_by, reply)),
                None => reply.answer(Err(ChangeMembershipError::LeadershipLost)),
            },
            Err(e) => reply.answer(Err(e)),
        }
    }

    /// Answers the steps whose entry committed, was replaced, or whose time
    /// ran out.
    pub(crate) fn check_commit_waiters(&mut self, log: &RaftLog<SM::Command, N>, committed: LogIndex, now_ms: u64) {
        if self.commit_waiters.is_empty() {
            return;
        }
        for (log_id, answer_by, reply) in std::mem::take(&mut self.commit_waiters) {
            let index = log_id.index;
            if index <= committed || log.log_id_at(index).is_some_and(|held| held != log_id) {
                reply.answer(step_outcome(log, log_id, committed));
            } else if now_ms >= answer_by {
                reply.answer(Err(ChangeMembershipError::NotCommittedInTime { index }));
            } else {
                self.commit_waiters.push((log_id, answer_by, reply));
            }
        }
    }

    /// A read confirmed at `index`: answered once `applied` reaches it.
    pub(crate) fn reply_when_applied(&mut self, index: LogIndex, applied: LogIndex, reply: ReadReply<N, R>) {
        if index <= applied {
            reply.answer(Ok(index));
        } else {
            self.reads_waiting_apply.push((index, reply));
        }
    }

    /// Answers the reads whose index is now applied.
    pub(crate) fn applied_up_to(&mut self, applied: LogIndex) {
        if self.reads_waiting_apply.is_empty() {
            return;
        }
        let (ready, waiting): (Vec<_>, Vec<_>) = self.reads_waiting_apply.drain(..).partition(|(i, _)| *i <= applied);
        self.reads_waiting_apply = waiting;
        for (index, reply) in ready {
            reply.answer(Ok(index));
        }
    }

    /// The write at `log_id` was applied with `response`: writes proposed
    /// before it that never reached the log lost their leadership.
    pub(crate) fn write_applied(&mut self, log_id: LogId, response: SM::Response) {
        while self.writes.front().is_some_and(|(w, _)| w.index < log_id.index) {
            let (_, reply) = self.writes.pop_front().expect("checked");
            reply.answer(Err(WriteError::LeadershipLost));
        }
        if self.writes.front().is_some_and(|(w, _)| *w == log_id) {
            let (_, reply) = self.writes.pop_front().expect("checked");
            reply.answer(Ok(WriteResponse { log_id, response }));
        }
    }

    /// A planted bug ([`BrokenRule::AnswerWriteByPosition`](crate::config::BrokenRule)):
    /// the oldest waiting write is answered with this entry's response,
    /// whatever its log id.
    pub(crate) fn write_applied_by_position(&mut self, log_id: LogId, response: SM::Response) {
        if let Some((_, reply)) = self.writes.pop_front() {
            reply.answer(Ok(WriteResponse { log_id, response }));
        }
    }

    /// This node stopped leading: its proposed writes may never commit, and
    /// its explicit steps are answered by whether their entry committed (a
    /// leader removed by the change it committed steps down right after:
    /// that change did succeed).
    pub(crate) fn leadership_lost(&mut self, log: &RaftLog<SM::Command, N>, committed: LogIndex) {
        for (_, reply) in self.writes.drain(..) {
            reply.answer(Err(WriteError::LeadershipLost));
        }
        for (log_id, _, reply) in self.commit_waiters.drain(..) {
            reply.answer(step_outcome(log, log_id, committed));
        }
    }

    /// The node stopped: every write still waiting fails with `fatal`.
    pub(crate) fn stopped(&mut self, fatal: &Fatal) {
        for (_, reply) in self.writes.drain(..) {
            reply.answer(Err(WriteError::Fatal(fatal.clone())));
        }
        for (_, reply) in self.write_batch.drain(..) {
            reply.answer(Err(WriteError::Fatal(fatal.clone())));
        }
    }
}

/// A step whose entry `log_id` committed if this log holds it at or below
/// `committed`; an entry replaced there (by another leader's) or no longer
/// known did not commit as far as this node can tell.
fn step_outcome<C: crate::entry::AppData, N: Node>(
    log: &RaftLog<C, N>,
    log_id: LogId,
    committed: LogIndex,
) -> IndexResult<N> {
    match log.log_id_at(log_id.index) {
        Some(held) if held == log_id && log_id.index <= committed => Ok(log_id.index),
        _ => Err(ChangeMembershipError::LeadershipLost),
    }
}
