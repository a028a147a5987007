//! Membership changes under change ids: a share of the workload's changes
//! carries an id, and some are repeated under it (after an unknown outcome,
//! after their node crashed, on another node, much later, after snapshots),
//! or the id is reused for another change (which must be refused).
//!
//! Every decision here draws from a generator of its own, seeded from the
//! seed, so the workload's other draws keep their order (the calls still
//! change what the engines do, hence the later draws' outcomes).

use ferraft::runtime::MembershipCall;
use ferraft::{BasicNode, ChangeMembers, NodeId};
use rand::rngs::SmallRng;
use rand::seq::IteratorRandom;
use rand::{Rng, SeedableRng};

use super::Simulation;
use crate::invariants::{check_status, meaning, Asked, IdAsked, Meaning};

/// Share of the workload's changes that carry a change id.
const ID_SHARE: f64 = 0.6;
/// Chance, at each churn, to repeat an earlier change under its id.
const RETRY_SHARE: f64 = 0.3;
/// Chance that a repeat waits on its first call's unknown outcome first.
const URGENT_SHARE: f64 = 0.7;
/// Chance, at each churn, to reuse a committed change's id for another change.
const REUSE_SHARE: f64 = 0.04;
/// Request ids of repeats and reuses start here (the workload's own count from 1).
const RETRY_REQUESTS: u64 = 1 << 40;

/// A change made under an id, to repeat.
#[derive(Debug, Clone)]
struct IdUse {
    change_id: String,
    change: ChangeMembers<BasicNode>,
    retain: bool,
    /// Its last call's outcome is unknown (no answer, or "unknown").
    urgent: bool,
}

/// The change-id workload's state.
#[derive(Debug)]
pub(super) struct IdWorkload {
    rng: SmallRng,
    next_id: u64,
    next_request: u64,
    used: Vec<IdUse>,
}

impl IdWorkload {
    pub(super) fn new(seed: u64) -> Self {
        Self {
            rng: SmallRng::seed_from_u64(seed ^ 0x00c4_a9e1_d5c4_a9e1),
            next_id: 1,
            next_request: RETRY_REQUESTS,
            used: Vec::new(),
        }
    }
}

impl Simulation {
    /// A change id for a new change of the workload, or none.
    pub(super) fn new_change_id(&mut self, change: &ChangeMembers<BasicNode>, retain: bool) -> Option<String> {
        if !self.options.change_ids || !self.ids.rng.gen_bool(ID_SHARE) {
            return None;
        }
        let change_id = format!("c{}", self.ids.next_id);
        self.ids.next_id += 1;
        self.ids.used.push(IdUse { change_id: change_id.clone(), change: change.clone(), retain, urgent: false });
        Some(change_id)
    }

    /// Tells the id checker of a call under `change_id` to node `i`.
    pub(super) fn issue_id_call(
        &mut self,
        i: usize,
        request_id: u64,
        change_id: &str,
        change: &ChangeMembers<BasicNode>,
        retain: bool,
    ) -> bool {
        let taken = self.checkers.change_ids.runs(&self.checkers.committed).contains_key(change_id);
        let asked = IdAsked { change: change.clone(), retain };
        self.checkers.id_answers.issue(change_id, asked, self.nodes[i].id, request_id, taken, self.now)
    }

    /// Request `request_id` was answered: a call under an id with an unknown
    /// outcome is due for a repeat.
    pub(super) fn id_call_answered(
        &mut self,
        request_id: u64,
        result: &Result<ferraft::StoredMembership<BasicNode>, ferraft::ChangeMembershipError<BasicNode>>,
    ) {
        let check = self.checkers.id_answers.observe_done(request_id, result);
        self.check(check);
        if matches!(result, Err(e) if meaning(e) == Meaning::Unknown) {
            if let Some(change_id) = self.checkers.id_answers.change_id_of(request_id) {
                self.mark_urgent(&[change_id]);
            }
        }
    }

    /// Node `id` crashed: the calls under ids it had not answered are due for a repeat.
    pub(super) fn id_calls_lost(&mut self, id: NodeId) {
        let open = self.checkers.id_answers.open_on(id);
        self.mark_urgent(&open);
    }

    fn mark_urgent(&mut self, ids: &[String]) {
        for u in self.ids.used.iter_mut().filter(|u| ids.contains(&u.change_id)) {
            u.urgent = true;
        }
    }

    /// At a churn: maybe repeat an earlier change under its id, on a leader
    /// (or any live node), or reuse a committed change's id for another change.
    pub(super) fn maybe_repeat_change(&mut self) {
        if !self.options.change_ids || self.ids.used.is_empty() {
            return;
        }
        let reuse = self.ids.rng.gen_bool(REUSE_SHARE);
        if !reuse && !self.ids.rng.gen_bool(RETRY_SHARE) {
            return;
        }
        let live: Vec<usize> = (0..self.nodes.len()).filter(|i| self.nodes[*i].host.is_some()).collect();
        let leaders: Vec<usize> =
            live.iter().copied().filter(|i| self.nodes[*i].engine().is_some_and(|e| e.is_leader())).collect();
        let to_leader = self.ids.rng.gen_bool(0.8);
        let pool = if to_leader && !leaders.is_empty() { &leaders } else { &live };
        let Some(i) = pool.iter().copied().choose(&mut self.ids.rng) else { return };
        let urgent: Vec<usize> = (0..self.ids.used.len()).filter(|u| self.ids.used[*u].urgent).collect();
        let pick = if !reuse && !urgent.is_empty() && self.ids.rng.gen_bool(URGENT_SHARE) {
            urgent.into_iter().choose(&mut self.ids.rng)
        } else {
            (0..self.ids.used.len()).choose(&mut self.ids.rng)
        };
        let Some(u) = pick else { return };
        self.ids.used[u].urgent = false;
        let IdUse { change_id, change, retain, .. } = self.ids.used[u].clone();
        let force = self.ids.rng.gen_bool(0.5);
        let request_id = self.ids.next_request;
        self.ids.next_request += 1;
        let change = if reuse {
            // another member's new address: no change the id named could be it
            let Some(member) = (1..=self.scenario.nodes).map(NodeId).choose(&mut self.ids.rng) else { return };
            let addr = format!("{}{member}-reuse-{request_id}", self.addr_prefix());
            ChangeMembers::SetNodes([(member, BasicNode::new(addr))].into())
        } else {
            change
        };
        let taken = self.checkers.change_ids.runs(&self.checkers.committed).contains_key(&change_id);
        if reuse && !taken {
            // an id the cluster may not know yet: another change under it is no reuse
            return;
        }
        self.judge_status(i, &change_id);
        let shown = format!("{change:?}");
        let reused = self.issue_id_call(i, request_id, &change_id, &change, retain);
        let asked = Asked::Change { change: change.clone(), retain };
        let handle = self.issue_membership_request(i, Some(request_id), asked);
        let mut options = ferraft::ChangeOptions { retain, force, ..Default::default() };
        options.guard.change_id = Some(change_id.clone());
        let reply = self.membership_reply(i, request_id);
        let called = self.call(i, |h| h.membership_call(MembershipCall::Change(change, options), reply));
        let what = if reused { "reuses" } else { "repeats" };
        self.trace(|| format!("n{} {what} change id {change_id:?}: {request_id} {shown} retain {retain}", i + 1));
        if called.is_none() {
            self.membership_call_returned(handle, None);
        }
    }

    /// Asks leader `i` where the change `change_id` stands and judges the
    /// answer against the committed log (not a leader: nothing to ask).
    pub(super) fn judge_status(&mut self, i: usize, change_id: &str) {
        let Some(host) = self.nodes[i].host.as_ref() else { return };
        if !host.engine().is_leader() {
            return;
        }
        let Ok(status) = host.change_status(change_id) else { return };
        let runs = self.checkers.change_ids.runs(&self.checkers.committed);
        self.trace(|| format!("n{} change status {change_id:?}: {status:?}", i + 1));
        let result = check_status(self.nodes[i].id, change_id, &status, &runs, &self.checkers.committed);
        self.check(result);
    }

    /// At the end of a run: each id's entries one change, answers agreeing
    /// with them, and every leader's status of every id true.
    pub(super) fn final_id_checks(&mut self) {
        let result = self.checkers.change_ids.check(&self.checkers.committed);
        self.check(result);
        let runs = self.checkers.change_ids.runs(&self.checkers.committed);
        let result = self.checkers.id_answers.final_check(&runs);
        self.check(result);
        let ids: Vec<String> = self.checkers.id_answers.ids().cloned().collect();
        for i in 0..self.nodes.len() {
            for change_id in &ids {
                self.judge_status(i, change_id);
            }
        }
    }
}
