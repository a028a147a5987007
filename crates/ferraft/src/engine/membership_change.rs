//! Membership changes on the leader: planned changes (extended algorithm) and
//! the explicit prepare / commit / abort steps.

use std::collections::{BTreeMap, BTreeSet};

use super::role::Role;
use super::{Engine, Output};
use crate::entry::{AppData, EntryPayload};
use crate::error::ChangeMembershipError;
use crate::log_id::index_of;
use crate::membership::{ChangeMembers, ChangeMembersError, Membership};
use crate::node::{LogIndex, Node, NodeId};

/// A planned change waiting for its turn or for its entry to commit.
#[derive(Debug, Clone)]
pub struct MembershipRequest<N> {
    /// The caller's id for it.
    pub request_id: u64,
    /// What to change.
    pub change: ChangeMembers<N>,
    /// Keep removed voters as learners.
    pub retain: bool,
    /// 1 for the first proposal, 2 for the one leaving a joint config.
    pub step: u8,
}

type ChangeResult<T, N> = Result<T, ChangeMembershipError<N>>;

impl<C: AppData, N: Node> Engine<C, N> {
    /// Queues a planned membership change. `Output::MembershipDone` reports the
    /// outcome once the final config is committed (at most two proposals: the
    /// target itself when safe, else a joint step and then the target).
    pub fn change_membership(
        &mut self,
        request_id: u64,
        change: ChangeMembers<N>,
        retain: bool,
    ) -> ChangeResult<(), N> {
        if !self.is_leader() {
            return Err(ChangeMembershipError::ForwardToLeader(self.forward_to_leader()));
        }
        // refuse what cannot apply now, so the caller hears about it at once
        let current = self.effective().expect("a leader has a membership");
        change.next_membership(current, retain)?;
        if let Role::Leader(leader) = &mut self.role {
            leader.membership_queue.push_back(MembershipRequest { request_id, change, retain, step: 1 });
        }
        self.maybe_propose_membership();
        Ok(())
    }

    /// Rule 1 (propose-after-commit) and rule 3 (initial-log): a leader proposes
    /// a membership only once the one in force and its own blank entry committed.
    pub(crate) fn may_propose_membership(&self) -> bool {
        let Some(leader) = self.leader_state() else { return false };
        leader.membership_inflight.is_none()
            && (self.membership_committed() || self.breaks(crate::config::BrokenRule::ProposeBeforeCommit))
            && index_of(self.committed) >= leader.term_start_index
    }

    pub(crate) fn maybe_propose_membership(&mut self) {
        while self.may_propose_membership() {
            let Role::Leader(leader) = &mut self.role else { return };
            let Some(request) = leader.membership_queue.pop_front() else { return };
            let current = self.effective().expect("a leader has a membership").clone();
            match request.change.next_membership(&current, request.retain) {
                Err(e) => {
                    self.output.push(Output::MembershipDone { request_id: request.request_id, result: Err(e.into()) })
                }
                Ok(next) if next == current || self.breaks(crate::config::BrokenRule::AnswerWithoutProposing) => {
                    let stored = self.membership().expect("a leader has a membership").clone();
                    self.output.push(Output::MembershipDone { request_id: request.request_id, result: Ok(stored) });
                }
                Ok(next) => {
                    let next = if self.breaks(crate::config::BrokenRule::SkipOldNewIntersect) {
                        Membership::new(vec![next.last_config().clone()], next.nodes().clone()).unwrap_or(next)
                    } else {
                        next
                    };
                    let index = self.propose_membership(next);
                    if let Role::Leader(leader) = &mut self.role {
                        leader.membership_inflight = Some((request, index));
                    }
                    self.leader_maybe_commit();
                }
            }
        }
    }

    /// Appends a membership entry; it is in force at once (use-at-once rule).
    fn propose_membership(&mut self, next: Membership<N>) -> LogIndex {
        tracing::info!(node = self.id, membership = %next, "proposing membership");
        debug_assert!(
            self.effective().is_some_and(|m| m.may_transition_to(&next))
                || self.breaks(crate::config::BrokenRule::SkipOldNewIntersect),
            "old-new-intersect violated"
        );
        let log_id = self.append_local(EntryPayload::Membership(next));
        self.sync_progress_with_membership();
        self.replicate_to_all();
        log_id.index
    }

    /// The membership in force just committed on this leader.
    pub(crate) fn on_membership_committed(&mut self) {
        let committed = index_of(self.committed);
        let is_joint = self.effective().is_some_and(|m| m.is_joint());
        if let Role::Leader(leader) = &mut self.role {
            if let Some((mut request, index)) = leader.membership_inflight.take() {
                if index <= committed {
                    if request.step == 1 && is_joint && !request.change.is_node_change() {
                        request.step = 2;
                        leader.membership_queue.push_back(request);
                    } else {
                        let stored = self.log.effective_membership().expect("committed membership").clone();
                        self.output.push(Output::MembershipDone { request_id: request.request_id, result: Ok(stored) });
                    }
                } else {
                    leader.membership_inflight = Some((request, index));
                }
            }
        }
        self.maybe_propose_membership();
        // a leader outside the config still manages the cluster until its
        // pending changes are proposed (Raft thesis §4.2.2), then hands over
        let pending =
            self.leader_state().is_some_and(|l| l.membership_inflight.is_some() || !l.membership_queue.is_empty());
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
        tracing::info!(node = self.id, ?successor, "removed from the voters: stepping down");
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
        self.require_leader()?;
        if let Some(node_id) = voters.intersection(learners).next() {
            return Err(ChangeMembershipError::VoterAndLearner { node_id: *node_id });
        }
        if voters.is_empty() {
            return Err(ChangeMembersError::NoVoterLeft.into());
        }
        let stored = self.membership().expect("a leader has a membership").clone();
        let current = &stored.membership;
        if current.configs() == [expect_voters.clone(), voters.clone()]
            && learners.iter().all(|id| current.is_member(*id))
        {
            return Ok(index_of(stored.log_id));
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
        let joint =
            Membership::new(vec![expect_voters.clone(), voters.clone()], nodes).map_err(ChangeMembersError::from)?;
        let index = self.propose_membership(joint);
        if let Role::Leader(leader) = &mut self.role {
            leader.prepared_learners = learners.clone();
        }
        self.leader_maybe_commit();
        Ok(index)
    }

    /// Explicit joint consensus, step 2: once a majority of the old and of the
    /// new voters have the prepared entry committed, appends the new uniform config.
    pub fn commit_membership(&mut self, prepare_index: LogIndex) -> ChangeResult<LogIndex, N> {
        self.require_leader()?;
        let stored = self.membership().expect("a leader has a membership").clone();
        if let Some(done) = self.completed_joint_step(prepare_index, |joint| joint.last_config().clone()) {
            return Ok(done);
        }
        let joint = &stored.membership;
        if !joint.is_joint() || index_of(stored.log_id) != prepare_index {
            let pending = joint.is_joint().then(|| index_of(stored.log_id));
            return Err(ChangeMembershipError::WrongPrepareIndex { given: prepare_index, pending });
        }
        self.require_may_propose()?;
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
        let target = joint.last_config().clone();
        let keep_learners = &leader.prepared_learners;
        let old_only: BTreeSet<NodeId> = joint.configs()[0].difference(&target).copied().collect();
        let nodes = joint
            .nodes()
            .iter()
            .filter(|(id, _)| !old_only.contains(id) || keep_learners.contains(id))
            .map(|(id, n)| (*id, n.clone()))
            .collect();
        let uniform = Membership::new(vec![target], nodes).map_err(ChangeMembersError::from)?;
        let index = self.propose_membership(uniform);
        self.leader_maybe_commit();
        Ok(index)
    }

    /// Explicit joint consensus, undo: reverts a pending joint config to the
    /// old one (legal by old-new-intersect: the old config is in the joint one).
    pub fn abort_membership(&mut self) -> ChangeResult<LogIndex, N> {
        self.require_leader()?;
        let stored = self.membership().expect("a leader has a membership").clone();
        if let Some(prev) = self.log.previous_membership() {
            let prev_index = index_of(prev.log_id);
            if let Some(done) = self.completed_joint_step(prev_index, |joint| joint.configs()[0].clone()) {
                return Ok(done);
            }
        }
        let joint = &stored.membership;
        if !joint.is_joint() {
            return Err(ChangeMembershipError::NoPendingJoint);
        }
        self.require_may_propose()?;
        let old = joint.configs()[0].clone();
        let before = self.log.previous_membership().filter(|p| p.membership.configs() == [old.clone()]);
        let nodes = match before {
            Some(before) => before.membership.nodes().clone(),
            None => joint
                .nodes()
                .iter()
                .filter(|(id, _)| !joint.is_voter(**id) || old.contains(id))
                .map(|(id, n)| (*id, n.clone()))
                .collect(),
        };
        let reverted = Membership::new(vec![old], nodes).map_err(ChangeMembersError::from)?;
        let index = self.propose_membership(reverted);
        self.leader_maybe_commit();
        Ok(index)
    }

    /// Idempotency: if the membership in force is the uniform config `target(joint)`
    /// that directly followed the joint entry at `joint_index`, that step is done.
    fn completed_joint_step(
        &self,
        joint_index: LogIndex,
        target: impl Fn(&Membership<N>) -> BTreeSet<NodeId>,
    ) -> Option<LogIndex> {
        let current = self.membership()?;
        let prev = self.log.previous_membership()?;
        let done = prev.membership.is_joint()
            && index_of(prev.log_id) == joint_index
            && !current.membership.is_joint()
            && current.membership.configs()[0] == target(&prev.membership);
        done.then(|| index_of(current.log_id))
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
