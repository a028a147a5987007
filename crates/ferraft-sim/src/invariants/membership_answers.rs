//! Membership answers are true: every membership request the simulator makes
//! is answered, and each answer matches what the log shows happened.
//!
//! - **Answered.** A `change_membership` accepted by a node is answered by
//!   `Output::MembershipDone`; a `prepare` / `commit` / `abort` that returns an
//!   index is answered by that entry committing, which the node host's answer
//!   must then report (it may also give up: an unknown outcome).
//!   Either must come within [`ANSWER_BOUND_MS`] of fault-free time (counted
//!   from the request or from the end of faults, whichever is later: a slow
//!   log under faults is not a hang) unless the node crashes first (the caller
//!   then learns nothing: no check). Once faults stop, the simulator runs on
//!   until every open request is answered or overdue.
//! - **A success is true.** It names a membership that committed (same log id
//!   in the committed chain, same content as the entry), uniform for a voter
//!   change (a node change keeps the configs in force), and it does what was asked
//!   ([`Asked::unmet_by`]).
//! - **"Nothing happened" is true.** No membership entry proposed for such a
//!   request ever commits. A partial outcome names a committed membership.
//!   Errors are classified in one place ([`meaning`]); "unknown" outcomes are
//!   not checked.
//!
//! Attribution (which proposals were made for a request), kept sound by
//! skipping what is ambiguous. A request's *window* runs from its issue to its
//! answer. A *proposal* is a membership entry a leader appends to its own log;
//! those in the window under the leadership the node had at the issue are the
//! request's candidates. A candidate is *attributed* to the request when it is
//! a step the request would propose on top of the membership before it
//! ([`Asked::would_propose`]: a joint step toward its goal, or the goal; the
//! step out of a joint config only after the request's own joint step) and no
//! other request to that node whose window holds the proposal would propose
//! it too (then it is ambiguous and skipped). Proposals of the engine's own
//! making (say, finishing a joint config left by an earlier leader) fit no
//! request and are left out. A "nothing happened" answer fails when an
//! attributed proposal commits. The retain rule (removed voters stay as
//! learners, or go) is checked from the membership the first attributed
//! proposal was made on: in full when every candidate is attributed, else
//! only for the voters there that `RemoveVoters` without retain names (they
//! must be gone).

use std::collections::{BTreeSet, HashMap};

use ferraft::{BasicNode, ChangeMembershipError, LeaderId, LogId, LogIndex, Membership, NodeId, StoredMembership};

use super::answer_meaning::{meaning, Meaning};
use super::membership_request::Asked;
use super::{Check, CommittedNeverLost, Violation};

const RULE: &str = "membership answers";

/// How long, in fault-free simulated ms, a request may stay unanswered while its node is up.
pub const ANSWER_BOUND_MS: u64 = 10_000;

type SimMembership = Membership<BasicNode>;
type SimStored = StoredMembership<BasicNode>;

/// How the requests of a run ended, to see that a seed set exercises the checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AnswerTally {
    /// Requests issued (calls and changes).
    pub requests: usize,
    /// Answered with a success.
    pub succeeded: usize,
    /// Answered with an error meaning "nothing happened".
    pub nothing_happened: usize,
    /// Of those, how many had proposals attributed to them (checked against the log).
    pub nothing_happened_attributed: usize,
    /// Answered with a partial outcome.
    pub partial: usize,
    /// Outcome unknown to the caller (leadership lost, node crashed).
    pub unknown: usize,
    /// Of the partial outcomes, changes rolled back because their new voters
    /// did not answer in time.
    pub rolled_back: usize,
}

impl std::ops::AddAssign for AnswerTally {
    fn add_assign(&mut self, other: Self) {
        self.requests += other.requests;
        self.succeeded += other.succeeded;
        self.nothing_happened += other.nothing_happened;
        self.nothing_happened_attributed += other.nothing_happened_attributed;
        self.partial += other.partial;
        self.rolled_back += other.rolled_back;
        self.unknown += other.unknown;
    }
}

/// Names one issued request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHandle(usize);

#[derive(Debug, Clone)]
enum Answer {
    Ok(SimStored),
    NothingHappened(String),
    Partial(SimStored),
    Unknown,
}

#[derive(Debug, Clone)]
enum State {
    /// Waiting for `Output::MembershipDone`.
    Pending,
    /// Waiting for this entry, returned by the call, to commit.
    AwaitingCommit(LogId),
    Done {
        seq: u64,
        answer: Answer,
    },
}

#[derive(Debug, Clone)]
struct Request {
    node: NodeId,
    request_id: Option<u64>,
    asked: Asked,
    /// The node's leadership when asked, if it led.
    leader: Option<LeaderId>,
    issued_ms: u64,
    issued_seq: u64,
    state: State,
}

impl Request {
    fn is_open(&self) -> bool {
        !matches!(self.state, State::Done { .. })
    }

    fn window(&self) -> (u64, u64) {
        match self.state {
            State::Done { seq, .. } => (self.issued_seq, seq),
            _ => (self.issued_seq, u64::MAX),
        }
    }

    fn describe(&self) -> String {
        let id = self.request_id.map_or("call".to_string(), |id| format!("request {id}"));
        format!("{id} to n{} ({}) at {} ms", self.node, self.asked, self.issued_ms)
    }
}

/// A membership entry a leader appended to its own log.
#[derive(Debug, Clone)]
struct Proposal {
    log_id: LogId,
    prev: SimMembership,
    seq: u64,
}

/// A promote-when-ready request: not checked itself, but a rival of the
/// node's other requests for the joint step it proposes (else that step is
/// attributed to another request asking for the same voter, and that
/// request's truthful "nothing happened" is reported as a lie).
#[derive(Debug, Clone)]
struct Promotion {
    node: NodeId,
    request_id: u64,
    asked: Asked,
    issued_seq: u64,
    done_seq: Option<u64>,
}

/// The answer checker: requests, their answers, and the proposals seen.
#[derive(Debug)]
pub struct MembershipAnswers {
    enabled: bool,
    requests: Vec<Request>,
    promotions: Vec<Promotion>,
    /// Every membership entry appended anywhere (log matching makes the id enough).
    memberships: HashMap<LogId, SimMembership>,
    proposals: Vec<Proposal>,
    /// Joint entry -> the learners its prepare asked to keep (`None`: two prepares disagreed).
    prepared: HashMap<LogId, Option<BTreeSet<NodeId>>>,
    seq: u64,
    /// When faults stopped, once they have.
    calm_since_ms: Option<u64>,
    /// Requests answered `RolledBack`: their joint config did not get its new
    /// voters in time and was reverted.
    rolled_back: usize,
}

impl Default for MembershipAnswers {
    fn default() -> Self {
        Self::new(true)
    }
}

impl MembershipAnswers {
    /// A checker that reports violations only when `enabled` (it records either way).
    pub fn new(enabled: bool) -> Self {
        Self {
            enabled,
            requests: Vec::new(),
            promotions: Vec::new(),
            memberships: HashMap::new(),
            proposals: Vec::new(),
            prepared: HashMap::new(),
            seq: 0,
            calm_since_ms: None,
            rolled_back: 0,
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn report(&self, result: Check) -> Check {
        if self.enabled {
            result
        } else {
            Ok(())
        }
    }

    /// `node` is asked `asked` now (before the call); `leader`: its leadership
    /// if it leads. A commit learns here which learners its prepare asked to keep.
    pub fn issue(
        &mut self,
        node: NodeId,
        request_id: Option<u64>,
        mut asked: Asked,
        leader: Option<LeaderId>,
        now_ms: u64,
    ) -> RequestHandle {
        if let Asked::Commit { joint, keep } = &mut asked {
            *keep = joint.log_id.and_then(|id| self.prepared.get(&id).cloned().flatten());
        }
        let issued_seq = self.next_seq();
        self.requests.push(Request {
            node,
            request_id,
            asked,
            leader,
            issued_ms: now_ms,
            issued_seq,
            state: State::Pending,
        });
        RequestHandle(self.requests.len() - 1)
    }

    /// `node` is asked now to promote `learner` when ready (`request_id`).
    pub fn issue_promotion(&mut self, node: NodeId, request_id: u64, learner: NodeId) {
        let asked = Asked::Change { change: ferraft::ChangeMembers::AddVoterIds([learner].into()), retain: false };
        let issued_seq = self.next_seq();
        self.promotions.push(Promotion { node, request_id, asked, issued_seq, done_seq: None });
    }

    /// The call returned the index of its entry, here `log_id` (`prepare`,
    /// `commit`, `abort`): that entry committing is the answer. `None`: no
    /// entry known, no answer to wait for.
    pub fn proposed(&mut self, handle: RequestHandle, log_id: Option<LogId>) {
        let Some(log_id) = log_id else {
            let seq = self.next_seq();
            self.requests[handle.0].state = State::Done { seq, answer: Answer::Unknown };
            return;
        };
        let request = &mut self.requests[handle.0];
        request.state = State::AwaitingCommit(log_id);
        if let Asked::Prepare { learners, .. } = &request.asked {
            let learners = learners.clone();
            let known = self.prepared.entry(log_id).or_insert_with(|| Some(learners.clone()));
            if known.as_ref() != Some(&learners) {
                *known = None;
            }
        }
    }

    /// The call itself failed with `error`.
    pub fn refused(&mut self, handle: RequestHandle, error: &ChangeMembershipError<BasicNode>) -> Check {
        let answer = Err(error.clone());
        self.answer(handle.0, &answer)
    }

    /// The host answered an explicit joint step (`prepare` / `commit` /
    /// `abort`): with its entry's index once committed, or with an error.
    pub fn step_answered(
        &mut self,
        handle: RequestHandle,
        result: &Result<LogIndex, ChangeMembershipError<BasicNode>>,
        chain: &CommittedNeverLost,
    ) -> Check {
        match self.requests[handle.0].state {
            // answered within the call: refused, or its entry had committed
            // already (the simulator then names the entry with `proposed`)
            State::Pending => match result {
                Ok(_) => Ok(()),
                Err(e) => self.refused(handle, e),
            },
            State::AwaitingCommit(log_id) => {
                let settled = self.settle(chain);
                let result = match result {
                    Ok(index) if *index != log_id.index || !chain.holds(log_id) => {
                        let detail = format!(
                            "{} answered committed at index {index}, but its entry {log_id} has not committed",
                            self.requests[handle.0].describe()
                        );
                        self.report(Err(Violation { rule: RULE, detail }))
                    }
                    Ok(_) => Ok(()),
                    Err(e) if self.requests[handle.0].is_open() => self.answer(handle.0, &Err(e.clone())),
                    Err(_) => Ok(()),
                };
                settled.and(result)
            }
            // settled by its entry committing, or closed by a crash
            State::Done { .. } => Ok(()),
        }
    }

    /// `node`'s host answered membership request `request_id` (the engine's
    /// `Output::MembershipDone`, or a refusal at once).
    pub fn observe_done(
        &mut self,
        node: NodeId,
        request_id: u64,
        result: &Result<SimStored, ChangeMembershipError<BasicNode>>,
    ) -> Check {
        if let Some(p) = self.promotions.iter().rposition(|p| p.request_id == request_id && p.node == node) {
            let seq = self.next_seq();
            self.promotions[p].done_seq.get_or_insert(seq);
            return Ok(());
        }
        let Some(index) = self.requests.iter().rposition(|r| r.request_id == Some(request_id)) else {
            return Ok(());
        };
        if self.requests[index].node != node {
            let detail = format!("{} answered by n{node}", self.requests[index].describe());
            return self.report(Err(Violation { rule: RULE, detail }));
        }
        self.answer(index, result)
    }

    fn answer(&mut self, index: usize, result: &Result<SimStored, ChangeMembershipError<BasicNode>>) -> Check {
        if let State::Done { answer, .. } = &self.requests[index].state {
            let detail = format!("{} answered twice: {answer:?}, then {result:?}", self.requests[index].describe());
            return self.report(Err(Violation { rule: RULE, detail }));
        }
        self.rolled_back += usize::from(matches!(result, Err(ChangeMembershipError::RolledBack { .. })));
        let answer = match result {
            Ok(stored) => Answer::Ok(stored.clone()),
            Err(e) => match meaning(e) {
                Meaning::NothingHappened => Answer::NothingHappened(e.to_string()),
                Meaning::Unknown => Answer::Unknown,
                Meaning::Partial(stored) => Answer::Partial(stored),
            },
        };
        let seq = self.next_seq();
        let request = &mut self.requests[index];
        request.state = State::Done { seq, answer };
        let Ok(stored) = result else { return Ok(()) };
        let entry = stored.log_id.and_then(|id| self.memberships.get(&id));
        let unmet = if entry.is_some_and(|m| *m != stored.membership) {
            Some(format!("not what its entry {:?} holds", stored.log_id.map(|l| l.to_string())))
        } else {
            request.asked.unmet_by(&stored.membership)
        };
        let result = match unmet {
            None => Ok(()),
            Some(unmet) => Err(Violation {
                rule: RULE,
                detail: format!("{} answered success {}: {unmet}", request.describe(), stored.membership),
            }),
        };
        self.report(result)
    }

    /// A membership entry was appended; `own_prev` is the membership before it
    /// when a leader appended it to its own log (a proposal).
    pub fn observe_append(&mut self, log_id: LogId, membership: &SimMembership, own_prev: Option<&SimMembership>) {
        self.memberships.entry(log_id).or_insert_with(|| membership.clone());
        if let Some(prev) = own_prev {
            let seq = self.next_seq();
            self.proposals.push(Proposal { log_id, prev: prev.clone(), seq });
        }
    }

    /// Answers the calls whose entries committed.
    fn settle(&mut self, chain: &CommittedNeverLost) -> Check {
        let mut result = Ok(());
        for index in 0..self.requests.len() {
            let State::AwaitingCommit(log_id) = self.requests[index].state else { continue };
            if !chain.holds(log_id) {
                continue;
            }
            let Some(membership) = self.memberships.get(&log_id).cloned() else {
                let detail = format!(
                    "{} returned index {}, which holds no membership entry",
                    self.requests[index].describe(),
                    log_id.index
                );
                result = result.and(self.report(Err(Violation { rule: RULE, detail })));
                continue;
            };
            result = result.and(self.answer(index, &Ok(StoredMembership { log_id: Some(log_id), membership })));
        }
        result
    }

    /// Closes `node`'s open requests as unknown (their entries that committed count as answered).
    fn close_node(&mut self, node: NodeId, chain: &CommittedNeverLost) -> Check {
        let result = self.settle(chain);
        for index in 0..self.requests.len() {
            let request = &self.requests[index];
            if request.node == node && request.is_open() {
                let seq = self.next_seq();
                self.requests[index].state = State::Done { seq, answer: Answer::Unknown };
            }
        }
        result
    }

    /// `node` crashed: its callers learn nothing more.
    pub fn observe_crash(&mut self, node: NodeId, chain: &CommittedNeverLost) -> Check {
        self.close_node(node, chain)
    }

    /// Whether some request is still waiting for its answer.
    pub fn has_open(&self) -> bool {
        self.enabled && self.requests.iter().any(Request::is_open)
    }

    /// Whether some promote-when-ready request is not done yet.
    pub fn has_open_promotion(&self) -> bool {
        self.promotions.iter().any(|p| p.done_seq.is_none())
    }

    /// Faults stopped: from now on (or from its issue) each request has [`ANSWER_BOUND_MS`].
    pub fn observe_calm(&mut self, now_ms: u64) {
        self.calm_since_ms = Some(now_ms);
    }

    /// Called as time passes: answers committed calls, reports overdue requests.
    pub fn poll(&mut self, now_ms: u64, chain: &CommittedNeverLost) -> Check {
        let result = self.settle(chain);
        let calm = self.calm_since_ms.unwrap_or(u64::MAX);
        let overdue = |r: &&Request| r.is_open() && now_ms.saturating_sub(r.issued_ms.max(calm)) > ANSWER_BOUND_MS;
        let overdue = self.requests.iter().find(overdue);
        let result = result.and(match overdue {
            Some(r) => {
                Err(Violation { rule: RULE, detail: format!("{} unanswered after {ANSWER_BOUND_MS} ms", r.describe()) })
            }
            None => Ok(()),
        });
        self.report(result)
    }

    /// At the end of a run: successes and partial outcomes committed, "nothing
    /// happened" true, the retain rule kept.
    pub fn final_check(&self, chain: &CommittedNeverLost) -> Check {
        let mut result = Ok(());
        for (index, request) in self.requests.iter().enumerate() {
            let State::Done { answer, .. } = &request.state else { continue };
            result = result.and(self.check_answer(index, request, answer, chain));
        }
        self.report(result)
    }

    fn check_answer(&self, index: usize, request: &Request, answer: &Answer, chain: &CommittedNeverLost) -> Check {
        let fail = |detail: String| Err(Violation { rule: RULE, detail: format!("{} {detail}", request.describe()) });
        match answer {
            Answer::Ok(stored) | Answer::Partial(stored) => {
                if !stored.log_id.is_some_and(|id| chain.holds(id)) {
                    let at = stored.log_id.map_or("no entry".to_string(), |l| l.to_string());
                    return fail(format!("answered {answer:?}, but {at} never committed"));
                }
                let Answer::Ok(stored) = answer else { return Ok(()) };
                let (attributed, clean) = self.attributed(index);
                let Some(first) = attributed.first() else { return Ok(()) };
                match request.asked.unmet_retain(&first.prev, clean, &stored.membership) {
                    Some(unmet) => fail(format!("answered success {}: {unmet}", stored.membership)),
                    None => Ok(()),
                }
            }
            Answer::NothingHappened(error) => {
                let (attributed, _) = self.attributed(index);
                match attributed.iter().find(|p| chain.holds(p.log_id)) {
                    Some(p) => {
                        let committed = self.memberships.get(&p.log_id).map(|m| m.to_string()).unwrap_or_default();
                        fail(format!(
                            "answered \"{error}\" (nothing happened), but its proposal {committed} at {} committed",
                            p.log_id
                        ))
                    }
                    None => Ok(()),
                }
            }
            Answer::Unknown => Ok(()),
        }
    }

    /// How this run's requests ended so far.
    pub fn tally(&self) -> AnswerTally {
        let mut tally =
            AnswerTally { requests: self.requests.len(), rolled_back: self.rolled_back, ..AnswerTally::default() };
        for (index, request) in self.requests.iter().enumerate() {
            let State::Done { answer, .. } = &request.state else { continue };
            match answer {
                Answer::Ok(_) => tally.succeeded += 1,
                Answer::NothingHappened(_) => {
                    tally.nothing_happened += 1;
                    tally.nothing_happened_attributed += usize::from(!self.attributed(index).0.is_empty());
                }
                Answer::Partial(_) => tally.partial += 1,
                Answer::Unknown => tally.unknown += 1,
            }
        }
        tally
    }

    /// The proposals attributed to request `index`, and whether they are all
    /// of its candidates.
    fn attributed(&self, index: usize) -> (Vec<&Proposal>, bool) {
        let request = &self.requests[index];
        let Some(leader) = request.leader else { return (Vec::new(), false) };
        let within = |r: &Request, seq: u64| {
            let (start, end) = r.window();
            start < seq && seq < end
        };
        let rivals: Vec<&Request> = (self.requests.iter().enumerate())
            .filter(|(other, r)| *other != index && r.node == request.node)
            .map(|(_, r)| r)
            .collect();
        let mut candidates = 0;
        let mut mine: Vec<&Proposal> = Vec::new();
        for proposal in self.proposals.iter().filter(|p| p.log_id.leader_id == leader && within(request, p.seq)) {
            let next = self.memberships.get(&proposal.log_id);
            if next.is_some_and(|next| is_incarnation_record(&proposal.prev, next)) {
                // written by the leader itself (issue 18), for no request
                continue;
            }
            candidates += 1;
            let Some(next) = next else { continue };
            let own_prev = mine.last().is_some_and(|m| self.memberships.get(&m.log_id) == Some(&proposal.prev));
            let contested =
                rivals.iter().any(|r| within(r, proposal.seq) && r.asked.would_propose(&proposal.prev, next, true))
                    || self.promotions.iter().any(|p| {
                        p.node == request.node
                            && p.issued_seq < proposal.seq
                            && p.done_seq.is_none_or(|end| proposal.seq < end)
                            && p.asked.would_propose(&proposal.prev, next, true)
                    });
            if request.asked.would_propose(&proposal.prev, next, own_prev) && !contested {
                mine.push(proposal);
            }
        }
        let clean = mine.len() == candidates;
        (mine, clean)
    }
}

/// Whether `next` only records incarnations: the configs, nodes and exit of
/// `prev`, no change id.
fn is_incarnation_record(prev: &SimMembership, next: &SimMembership) -> bool {
    next.change_id().is_none()
        && next.configs() == prev.configs()
        && next.nodes() == prev.nodes()
        && next.exit() == prev.exit()
        && next.incarnations() != prev.incarnations()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use ferraft::{ChangeMembers, ForwardToLeader, Term};

    use super::*;
    use crate::invariants::test_log_id as id;

    fn membership(configs: &[&[NodeId]], all: &[NodeId]) -> SimMembership {
        let nodes: BTreeMap<NodeId, BasicNode> = all.iter().map(|id| (*id, BasicNode::new(format!("n{id}")))).collect();
        Membership::new(configs.iter().map(|c| c.iter().copied().collect()).collect(), nodes).unwrap()
    }

    fn add_voter(node: NodeId) -> Asked {
        Asked::Change { change: ChangeMembers::AddVoterIds([node].into()), retain: false }
    }

    fn not_leader() -> Result<SimStored, ChangeMembershipError<BasicNode>> {
        Err(ChangeMembershipError::ForwardToLeader(ForwardToLeader { leader_id: None, leader_node: None }))
    }

    const LEADER: (u64, u64) = (2, 1);

    /// Request 7 to n1 adds voter 4; n1 proposes the joint step at index 5, which commits.
    fn joint_step_committed(answers: &mut MembershipAnswers, chain: &mut CommittedNeverLost) -> LogId {
        answers.issue(
            NodeId(1),
            Some(7),
            add_voter(NodeId(4)),
            Some(LeaderId::new(Term(LEADER.0), NodeId(LEADER.1))),
            100,
        );
        let joint = id(LEADER.0, LEADER.1, 5);
        let prev = membership(&[&[NodeId(1), NodeId(2), NodeId(3)]], &[NodeId(1), NodeId(2), NodeId(3), NodeId(4)]);
        answers.observe_append(
            joint,
            &membership(
                &[&[NodeId(1), NodeId(2), NodeId(3)], &[NodeId(1), NodeId(2), NodeId(3), NodeId(4)]],
                &[NodeId(1), NodeId(2), NodeId(3), NodeId(4)],
            ),
            Some(&prev),
        );
        chain.observe_commit(NodeId(1), joint, Term(LEADER.0)).unwrap();
        joint
    }

    #[test]
    fn a_request_left_unanswered_is_caught_once_overdue() {
        let mut answers = MembershipAnswers::default();
        let chain = CommittedNeverLost::default();
        answers.issue(NodeId(1), Some(7), add_voter(NodeId(4)), None, 100);
        assert!(answers.poll(50_000, &chain).is_ok(), "no bound while faults go on");
        answers.observe_calm(6_000);
        assert!(answers.poll(6_000 + ANSWER_BOUND_MS, &chain).is_ok());
        assert!(answers.poll(6_001 + ANSWER_BOUND_MS, &chain).is_err());
    }

    #[test]
    fn a_crashed_node_owes_no_answer() {
        let mut answers = MembershipAnswers::default();
        let chain = CommittedNeverLost::default();
        answers.issue(NodeId(1), Some(7), add_voter(NodeId(4)), None, 100);
        answers.observe_crash(NodeId(1), &chain).unwrap();
        answers.observe_calm(6_000);
        assert!(!answers.has_open());
        assert!(answers.poll(60_000, &chain).is_ok());
    }

    #[test]
    fn nothing_happened_after_a_committed_joint_step_is_caught() {
        let mut answers = MembershipAnswers::default();
        let mut chain = CommittedNeverLost::default();
        joint_step_committed(&mut answers, &mut chain);
        answers.observe_done(NodeId(1), 7, &not_leader()).unwrap();
        assert!(answers.final_check(&chain).is_err());
    }

    /// Seed 104 (membership stress, seeds 100-1600): a promotion of 6
    /// proposed the joint step; a queued AddVoterIds({6}) to the same leader,
    /// never proposed, was truthfully answered "not the leader" and reported.
    #[test]
    fn a_joint_step_a_pending_promotion_would_make_is_not_held_against_a_change() {
        let mut answers = MembershipAnswers::default();
        let mut chain = CommittedNeverLost::default();
        answers.issue_promotion(NodeId(1), 6, NodeId(4));
        joint_step_committed(&mut answers, &mut chain);
        answers.observe_done(NodeId(1), 7, &not_leader()).unwrap();
        assert!(answers.final_check(&chain).is_ok());
    }

    #[test]
    fn a_proposal_two_open_requests_would_make_is_not_held_against_either() {
        let mut answers = MembershipAnswers::default();
        let mut chain = CommittedNeverLost::default();
        answers.issue(
            NodeId(1),
            Some(6),
            add_voter(NodeId(4)),
            Some(LeaderId::new(Term(LEADER.0), NodeId(LEADER.1))),
            90,
        );
        joint_step_committed(&mut answers, &mut chain);
        answers.observe_done(NodeId(1), 7, &not_leader()).unwrap();
        answers.observe_done(NodeId(1), 6, &not_leader()).unwrap();
        assert!(answers.final_check(&chain).is_ok());
    }

    #[test]
    fn a_success_naming_an_uncommitted_entry_is_caught() {
        let mut answers = MembershipAnswers::default();
        let mut chain = CommittedNeverLost::default();
        let joint = joint_step_committed(&mut answers, &mut chain);
        let last = id(LEADER.0, LEADER.1, 6);
        let uniform =
            membership(&[&[NodeId(1), NodeId(2), NodeId(3), NodeId(4)]], &[NodeId(1), NodeId(2), NodeId(3), NodeId(4)]);
        answers.observe_append(
            last,
            &uniform,
            Some(&membership(
                &[&[NodeId(1), NodeId(2), NodeId(3)], &[NodeId(1), NodeId(2), NodeId(3), NodeId(4)]],
                &[NodeId(1), NodeId(2), NodeId(3), NodeId(4)],
            )),
        );
        answers.observe_done(NodeId(1), 7, &Ok(StoredMembership { log_id: Some(last), membership: uniform })).unwrap();
        assert!(answers.final_check(&chain).is_err());
        chain.observe_commit(NodeId(1), last, Term(LEADER.0)).unwrap();
        assert!(answers.final_check(&chain).is_ok(), "committed after {joint}");
    }

    #[test]
    fn a_success_in_the_joint_config_is_caught_when_answered() {
        let mut answers = MembershipAnswers::default();
        let mut chain = CommittedNeverLost::default();
        let joint = joint_step_committed(&mut answers, &mut chain);
        let stored = StoredMembership {
            log_id: Some(joint),
            membership: membership(
                &[&[NodeId(1), NodeId(2), NodeId(3)], &[NodeId(1), NodeId(2), NodeId(3), NodeId(4)]],
                &[NodeId(1), NodeId(2), NodeId(3), NodeId(4)],
            ),
        };
        assert!(answers.observe_done(NodeId(1), 7, &Ok(stored)).is_err());
    }

    #[test]
    fn a_commit_that_drops_the_learners_its_prepare_kept_is_caught() {
        let mut answers = MembershipAnswers::default();
        let mut chain = CommittedNeverLost::default();
        let leader = Some(LeaderId::new(Term(LEADER.0), NodeId(LEADER.1)));
        let (voters, learners) = ([NodeId(1)].into(), [NodeId(2), NodeId(3)].into());
        let prepare = Asked::Prepare { expect_voters: [NodeId(1), NodeId(2), NodeId(3)].into(), voters, learners };
        let call = answers.issue(NodeId(1), None, prepare, leader, 100);
        let (joint_id, joint) = (
            id(LEADER.0, LEADER.1, 5),
            membership(&[&[NodeId(1), NodeId(2), NodeId(3)], &[NodeId(1)]], &[NodeId(1), NodeId(2), NodeId(3)]),
        );
        answers.observe_append(
            joint_id,
            &joint,
            Some(&membership(&[&[NodeId(1), NodeId(2), NodeId(3)]], &[NodeId(1), NodeId(2), NodeId(3)])),
        );
        answers.proposed(call, Some(joint_id));
        chain.observe_commit(NodeId(1), joint_id, Term(LEADER.0)).unwrap();
        answers.poll(200, &chain).unwrap();
        // committed by another leader, which forgot the learners
        let other = LeaderId::new(Term(3), NodeId(2));
        let commit =
            Asked::Commit { joint: StoredMembership { log_id: Some(joint_id), membership: joint.clone() }, keep: None };
        let call = answers.issue(NodeId(2), None, commit, Some(other), 300);
        let uniform_id = id(3, 2, 7);
        answers.observe_append(uniform_id, &membership(&[&[NodeId(1)]], &[NodeId(1)]), Some(&joint));
        answers.proposed(call, Some(uniform_id));
        chain.observe_commit(NodeId(2), uniform_id, Term(3)).unwrap();
        assert!(answers.poll(400, &chain).is_err());
    }
}
