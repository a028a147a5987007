//! Membership changes on the leader: planned changes (extended algorithm) and
//! the explicit prepare / commit / abort steps.

use std::collections::{BTreeMap, BTreeSet};

use super::change_identity::AskedChange;
use super::membership_requests::{MembershipRequest, RequestStage};
use super::{Engine, Output};
use crate::entry::{AppData, EntryPayload};
use crate::error::ChangeMembershipError;
use crate::log_id::{index_of, LogId};
use crate::membership::{ChangeGuard, ChangeMembers, ChangeMembersError, JointExit, Membership, StoredMembership};
use crate::node::{LogIndex, Node, NodeId};

type ChangeResult<T, N> = Result<T, ChangeMembershipError<N>>;

/// What a checked prepare does.
#[derive(Debug)]
pub(crate) enum PreparePlan<N> {
    /// It took effect already: the joint entry's index.
    Done(LogIndex),
    /// Propose this joint config.
    Propose(Membership<N>),
}

impl<C: AppData, N: Node> Engine<C, N> {
    /// Queues a planned membership change. `Output::MembershipDone` reports the
    /// outcome once the log shows it (see `membership_requests`): at most two
    /// proposals, the target itself when safe, else a joint step that records
    /// how it is left, which any later leader finishes.
    pub fn change_membership(
        &mut self,
        request_id: u64,
        change: ChangeMembers<N>,
        retain: bool,
    ) -> ChangeResult<(), N> {
        self.change_membership_guarded(request_id, change, retain, ChangeGuard::default())
    }

    /// [`Engine::change_membership`] with a change id (a repeated call is
    /// answered with the first call's outcome) and a precondition (see
    /// [`ChangeGuard`]).
    pub fn change_membership_guarded(
        &mut self,
        request_id: u64,
        change: ChangeMembers<N>,
        retain: bool,
        guard: ChangeGuard,
    ) -> ChangeResult<(), N> {
        if !self.is_leader() {
            return Err(ChangeMembershipError::ForwardToLeader(self.forward_to_leader()));
        }
        let asked = AskedChange { change: change.clone(), retain };
        if let Some(change_id) = &guard.change_id {
            if change_id.is_empty() || change_id.len() > ChangeGuard::MAX_CHANGE_ID_BYTES {
                return Err(ChangeMembershipError::BadChangeId { max: ChangeGuard::MAX_CHANGE_ID_BYTES });
            }
            let forget = self.breaks(crate::config::BrokenRule::ForgetChangeIds);
            if let Some(retry) = if forget { None } else { self.retry_of(request_id, change_id, &asked)? } {
                self.membership_requests.push(retry);
                self.settle_membership_requests();
                return Ok(());
            }
        }
        // refuse what cannot apply now, so the caller hears about it at once
        let checked = self.check_precondition(&guard).and_then(|()| {
            let current = self.effective().expect("a leader has a membership");
            change.next_membership(current, retain).map(|_| ()).map_err(ChangeMembershipError::from)
        });
        if let Err(e) = checked {
            self.remember_refusal(&guard, Some(&asked), &Err(e.clone()));
            return Err(e);
        }
        let stage = RequestStage::Queued { change, retain };
        let accepted_ms = self.now_ms;
        let request =
            MembershipRequest { request_id, guard, stage, answer_by_ms: None, accepted_ms, asked: Some(asked) };
        self.membership_requests.push(request);
        self.maybe_propose_membership();
        Ok(())
    }

    /// The guard's precondition against the membership in force.
    fn check_precondition(&self, guard: &ChangeGuard) -> ChangeResult<(), N> {
        let Some(expected) = guard.expect_membership_index else { return Ok(()) };
        let actual = self.membership().expect("a leader has a membership");
        if index_of(actual.log_id) == expected {
            Ok(())
        } else {
            Err(ChangeMembershipError::PreconditionFailed { expected, actual: Box::new(actual.clone()) })
        }
    }

    /// Rule 1 (propose-after-commit) and rule 3 (initial-log): a leader proposes
    /// a membership only once the one in force and its own blank entry committed.
    pub(crate) fn may_propose_membership(&self) -> bool {
        let Some(leader) = self.leader_state() else { return false };
        (self.membership_committed() || self.breaks(crate::config::BrokenRule::ProposeBeforeCommit))
            && index_of(self.committed) >= leader.term_start_index
    }

    /// Whether a membership proposal is waiting for the leader to be able to
    /// make it: a queued request, or a joint config to leave by itself.
    pub(crate) fn membership_work_pending(&self) -> bool {
        self.membership_requests.iter().any(|r| matches!(r.stage, RequestStage::Queued { .. }))
            || self.effective().is_some_and(|m| m.leaves_automatically())
    }

    /// Proposes what is due: first the exit of a committed joint config that
    /// leaves by itself (whoever planned it), then queued requests in order.
    pub(crate) fn maybe_propose_membership(&mut self) {
        while self.may_propose_membership() && self.membership_work_pending() {
            let current = self.effective().expect("a leader has a membership").clone();
            if current.leaves_automatically() {
                if let Some(next) = self.joint_exit_due(&current) {
                    match next {
                        Ok(next) => {
                            self.propose_membership(next);
                            self.leader_maybe_commit();
                        }
                        Err(e) => {
                            tracing::error!(node = %self.id, %current, error = %e, "cannot leave the joint config")
                        }
                    }
                    continue;
                }
                // the new side is not ready yet: a queued change (an
                // operator's remedy) may go first and supersede the joint config
            }
            let queued = self.membership_requests.iter().enumerate().find_map(|(position, r)| match &r.stage {
                RequestStage::Queued { change, retain } => Some((position, change.clone(), *retain, r.guard.clone())),
                _ => None,
            });
            let Some((position, change, retain, guard)) = queued else { return };
            // a repeat that came while the first call under its change id was
            // still queued follows what the first call proposed (in flight or,
            // once answered, in the log): planned again, it would apply the
            // change a second time (simulator seed 56 with change ids)
            let first = guard.change_id.as_deref().and_then(|change_id| {
                self.membership_requests
                    .iter()
                    .find_map(|r| match r.stage {
                        RequestStage::Proposed(_) | RequestStage::Joint(_)
                            if r.guard.change_id.as_deref() == Some(change_id) =>
                        {
                            Some(r.stage.clone())
                        }
                        _ => None,
                    })
                    // or it finished meanwhile: what it proposed is in the log
                    .or_else(|| self.logged_stage(change_id))
            });
            if let Some(stage) = first.filter(|_| !self.breaks(crate::config::BrokenRule::ForgetChangeIds)) {
                self.membership_requests[position].stage = stage;
                self.settle_membership_requests();
                continue;
            }
            // the precondition is checked again: the membership may have moved
            // while the request waited its turn
            let planned = self
                .check_precondition(&guard)
                .and_then(|()| change.next_membership(&current, retain).map_err(ChangeMembershipError::from));
            match planned {
                Err(e) => {
                    let request = self.membership_requests.remove(position);
                    let result = Err(e);
                    self.remember_refusal(&request.guard, request.asked.as_ref(), &result);
                    self.output.push(Output::MembershipDone { request_id: request.request_id, result })
                }
                Ok(next)
                    if next.clone().with_incarnations(current.incarnations().clone()) == current
                        || self.breaks(crate::config::BrokenRule::AnswerWithoutProposing) =>
                {
                    // the membership in force already is what was asked for
                    let tag = guard.change_id.filter(|_| {
                        !current.is_joint() && !self.breaks(crate::config::BrokenRule::AnswerWithoutProposing)
                    });
                    if let Some(change_id) = tag {
                        // a change with an id leaves it in the log all the same
                        // (the uniform membership in force again, tagged), so
                        // that a repeat finds it after any failover or restart
                        // and is answered with this outcome instead of being
                        // planned again against whatever the membership became.
                        // (A joint one is not proposed again: that would restart
                        // the wait for its new side.)
                        let again = current.clone().with_change_id(Some(change_id));
                        let log_id = self.propose_membership(again);
                        self.membership_requests[position].stage = RequestStage::Proposed(log_id);
                        self.leader_maybe_commit();
                        continue;
                    }
                    let request = self.membership_requests.remove(position);
                    let stored = self.membership().expect("a leader has a membership").clone();
                    self.output.push(Output::MembershipDone { request_id: request.request_id, result: Ok(stored) });
                }
                Ok(next) => {
                    let next = if self.breaks(crate::config::BrokenRule::SkipOldNewIntersect) {
                        Membership::new(vec![next.last_config().clone()], next.nodes().clone()).unwrap_or(next)
                    } else {
                        next
                    };
                    let joint = next.is_joint() && !change.is_node_change();
                    let log_id = self.propose_membership(next.with_change_id(guard.change_id));
                    self.membership_requests[position].stage =
                        if joint { RequestStage::Joint(log_id) } else { RequestStage::Proposed(log_id) };
                    self.leader_maybe_commit();
                }
            }
        }
    }

    /// Appends a membership entry; it is in force at once (use-at-once rule).
    pub(crate) fn propose_membership(&mut self, next: Membership<N>) -> LogId {
        tracing::info!(node = %self.id, membership = %next, "proposing membership");
        debug_assert!(
            self.effective().is_some_and(|m| m.may_transition_to(&next))
                || self.breaks(crate::config::BrokenRule::SkipOldNewIntersect),
            "old-new-intersect violated"
        );
        let next = self.stamp_incarnations(next);
        self.forget_progress_of_replaced(&next);
        let log_id = self.append_local(EntryPayload::Membership(next));
        self.sync_progress_with_membership();
        self.replicate_to_all();
        log_id
    }

    /// The membership in force just committed on this leader.
    pub(crate) fn on_membership_committed(&mut self) {
        // a leader the committed config leaves out hands over (Raft thesis
        // §4.2.2) before proposing anything queued: requests keep arriving, and
        // a leader that is no member names no address its followers can answer.
        // A joint config it is in neither half of it still leaves first.
        let exit_due = self.effective().is_some_and(|m| m.leaves_automatically());
        if !self.is_voter() && !exit_due && self.is_leader() {
            self.step_down_after_removal();
            return;
        }
        self.maybe_propose_membership();
        let pending = !self.membership_committed() || self.membership_work_pending();
        if !self.is_voter() && !pending && self.is_leader() {
            self.step_down_after_removal();
        }
    }

    /// A leader that is no longer a voter hands over and steps down.
    fn step_down_after_removal(&mut self) {
        let last = self.log.last_log_id();
        let successor = self.leader_state().and_then(|leader| {
            let voters = self.effective()?.voter_set();
            leader.progress.iter().filter(|(id, p)| voters.contains(id) && p.matched == last).map(|(id, _)| *id).next()
        });
        tracing::info!(node = %self.id, ?successor, "removed from the voters: stepping down");
        if let Some(successor) = successor {
            let vote = self.vote;
            self.send(successor, crate::message::MessageBody::TimeoutNow(crate::message::TimeoutNow { vote }));
        }
        self.become_follower();
    }

    /// Explicit joint consensus, step 1: checks the current voters and learners
    /// are as expected and appends the joint config `[current, voters]`.
    /// Returns the joint entry's index; repeating a prepare that took effect
    /// returns the same index.
    pub fn prepare_membership(
        &mut self,
        expect_voters: &BTreeSet<NodeId>,
        expect_learners: &BTreeSet<NodeId>,
        voters: &BTreeSet<NodeId>,
        learners: &BTreeSet<NodeId>,
    ) -> ChangeResult<LogIndex, N> {
        let plan = self.plan_prepare(expect_voters, expect_learners, voters, learners)?;
        Ok(self.carry_out_prepare(plan))
    }

    /// What a prepare does, once every check that does not depend on the new
    /// voters' progress passed: the caller's input, then what it expected of
    /// the membership in force, then that everyone named is a member.
    pub(crate) fn plan_prepare(
        &self,
        expect_voters: &BTreeSet<NodeId>,
        expect_learners: &BTreeSet<NodeId>,
        voters: &BTreeSet<NodeId>,
        learners: &BTreeSet<NodeId>,
    ) -> ChangeResult<PreparePlan<N>, N> {
        self.require_leader()?;
        if let Some(node_id) = voters.intersection(learners).next() {
            return Err(ChangeMembershipError::VoterAndLearner { node_id: *node_id });
        }
        if voters.is_empty() {
            return Err(ChangeMembersError::NoVoterLeft.into());
        }
        let stored = self.membership().expect("a leader has a membership");
        let current = &stored.membership;
        if current.configs() == [expect_voters.clone(), voters.clone()]
            && learners.iter().all(|id| current.is_member(*id))
        {
            return Ok(PreparePlan::Done(index_of(stored.log_id)));
        }
        if let Some(prepared) = self.prepare_committed_out(stored, expect_voters, voters, learners) {
            return Ok(PreparePlan::Done(prepared));
        }
        if current.is_joint() || &current.voter_set() != expect_voters || &current.learner_set() != expect_learners {
            return Err(ChangeMembershipError::Mismatch {
                voters: current.voter_set(),
                learners: current.learner_set(),
            });
        }
        if let Some(id) = voters.iter().chain(learners).find(|id| !current.is_member(**id)) {
            return Err(ChangeMembersError::NotLearner { node_id: *id }.into());
        }
        self.require_may_propose()?;
        let nodes: BTreeMap<NodeId, N> = current
            .nodes()
            .iter()
            .filter(|(id, _)| expect_voters.contains(id) || voters.contains(id) || learners.contains(id))
            .map(|(id, n)| (*id, n.clone()))
            .collect();
        // the learners to keep travel in the joint entry: whichever leader
        // commits it, after any restart, keeps them
        let exit = JointExit { automatic: false, keep_as_learners: learners.clone() };
        let joint = Membership::new(vec![expect_voters.clone(), voters.clone()], nodes)
            .map_err(ChangeMembersError::from)?
            .with_exit(exit);
        Ok(PreparePlan::Propose(joint))
    }

    /// The index of the prepared joint config `[expect_voters, voters]`
    /// keeping `learners` that `in_force` committed out, if that is the last
    /// thing that happened to the membership: a repeat of that prepare (its
    /// answer was lost) took effect, and hears where. Anything later makes
    /// it a new request. Only the same request counts (the learners it keeps
    /// too), and only the membership its commit leaves: with the same voters
    /// on both sides an abort leaves those voters too, and is no commit of a
    /// prepare that kept other learners (simulator seed 3403094). An abort
    /// that leaves exactly what the commit would cannot be told from it, and
    /// then either is what the repeat asks.
    fn prepare_committed_out(
        &self,
        in_force: &StoredMembership<N>,
        expect_voters: &BTreeSet<NodeId>,
        voters: &BTreeSet<NodeId>,
        learners: &BTreeSet<NodeId>,
    ) -> Option<LogIndex> {
        let before = self.log.membership_at(index_of(in_force.log_id).prev())?;
        let joint = &before.membership;
        let same_request = joint.configs() == [expect_voters.clone(), voters.clone()]
            && joint.exit().is_some_and(|exit| !exit.automatic && &exit.keep_as_learners == learners);
        let in_force = &in_force.membership;
        let committed_out = joint
            .leave_joint()
            .is_ok_and(|left| left.configs() == in_force.configs() && left.nodes() == in_force.nodes());
        (same_request && committed_out).then(|| index_of(before.log_id))
    }

    /// Proposes the joint config a prepare planned; the index of its entry.
    pub(crate) fn carry_out_prepare(&mut self, plan: PreparePlan<N>) -> LogIndex {
        match plan {
            PreparePlan::Done(index) => index,
            PreparePlan::Propose(joint) => {
                let log_id = self.propose_membership(joint);
                self.leader_maybe_commit();
                log_id.index
            }
        }
    }

    /// Explicit joint consensus, step 2: once a majority of the old and of the
    /// new voters have the prepared entry committed, appends the new uniform
    /// config, keeping as learners those the prepare named (read from the
    /// joint entry, so any leader honours them).
    pub fn commit_membership(&mut self, prepare_index: LogIndex) -> ChangeResult<LogIndex, N> {
        self.require_leader()?;
        if let Some(done) = self.completed_joint_step(prepare_index, |joint, next| joint.is_left_by(next)) {
            return Ok(done);
        }
        let stored = self.pending_joint(prepare_index)?;
        self.require_may_propose()?;
        let joint = &stored.membership;
        let leader = self.leader_state().expect("checked leader");
        let ready = joint.is_quorum(|id| {
            if id == self.id {
                index_of(self.committed) >= prepare_index
            } else {
                leader.progress.get(&id).is_some_and(|p| p.committed_seen >= prepare_index)
            }
        });
        if !ready {
            return Err(ChangeMembershipError::NotReady);
        }
        let uniform = joint.leave_joint().map_err(ChangeMembersError::from)?;
        let log_id = self.propose_membership(uniform);
        self.leader_maybe_commit();
        Ok(log_id.index)
    }

    /// Explicit joint consensus, undo: reverts the joint config prepared at
    /// `prepare_index` to its old side (legal by old-new-intersect: the old
    /// config is in the joint one). Naming the prepare keeps a retried abort
    /// from reverting a later one.
    pub fn abort_membership(&mut self, prepare_index: LogIndex) -> ChangeResult<LogIndex, N> {
        self.require_leader()?;
        let reverts = |joint: &Membership<N>, next: &Membership<N>| next.configs() == [joint.configs()[0].clone()];
        if let Some(done) = self.completed_joint_step(prepare_index, reverts) {
            return Ok(done);
        }
        let stored = self.pending_joint(prepare_index)?;
        // an uncommitted joint config can be reverted at once (every
        // membership in use then shares the old config)
        if !self.may_revert_uncommitted_joint() {
            self.require_may_propose()?;
        }
        let joint = &stored.membership;
        let reverted = joint.revert_joint(self.nodes_before(joint)).map_err(ChangeMembersError::from)?;
        let log_id = self.propose_membership(reverted);
        self.leader_maybe_commit();
        Ok(log_id.index)
    }

    /// The node descriptors in force just before the joint config `joint`, when
    /// the membership before it was its old config alone.
    pub(crate) fn nodes_before(&self, joint: &Membership<N>) -> Option<BTreeMap<NodeId, N>> {
        let old = joint.configs()[0].clone();
        let before = self.log.previous_membership().filter(|p| p.membership.configs() == [old]);
        before.map(|b| b.membership.nodes().clone())
    }

    /// The joint membership in force, which must be the one at `prepare_index`.
    fn pending_joint(&self, prepare_index: LogIndex) -> ChangeResult<StoredMembership<N>, N> {
        let stored = self.membership().expect("a leader has a membership");
        let pending = stored.membership.is_joint().then(|| index_of(stored.log_id));
        match pending {
            Some(index) if index == prepare_index => Ok(stored.clone()),
            Some(_) => Err(ChangeMembershipError::WrongPrepareIndex { given: prepare_index, pending }),
            None => Err(ChangeMembershipError::NoPendingJoint),
        }
    }

    /// Idempotency: the joint entry at `joint_index` was followed (node
    /// descriptor changes aside) by a membership that `is_step` recognises:
    /// returns that membership's index.
    fn completed_joint_step(
        &self,
        joint_index: LogIndex,
        is_step: impl Fn(&Membership<N>, &Membership<N>) -> bool,
    ) -> Option<LogIndex> {
        let joint = self.log.membership_at(joint_index).filter(|m| index_of(m.log_id) == joint_index)?;
        if !joint.membership.is_joint() {
            return None;
        }
        let next =
            self.log.memberships_after(joint_index).find(|m| m.membership.configs() != joint.membership.configs())?;
        is_step(&joint.membership, &next.membership).then(|| index_of(next.log_id))
    }

    fn require_leader(&self) -> ChangeResult<(), N> {
        if self.is_leader() {
            Ok(())
        } else {
            Err(ChangeMembershipError::ForwardToLeader(self.forward_to_leader()))
        }
    }

    fn require_may_propose(&self) -> ChangeResult<(), N> {
        if self.may_propose_membership() {
            Ok(())
        } else {
            Err(ChangeMembershipError::NotReady)
        }
    }
}
