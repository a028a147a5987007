//! Readiness-aware membership calls on the handle: adding a learner that the
//! leader promotes by itself once ready, changes with options (`force`), and
//! swapping a voter for a caught-up learner.

use super::event::Event;
use super::Raft;
use crate::engine::{ChangeOptions, Engine, Readiness};
use crate::entry::AppData;
use crate::error::ChangeMembershipError;
use crate::membership::{ChangeMembers, StoredMembership};
use crate::node::{Node, NodeId};
use crate::state_machine::StateMachine;

type MembershipResult<N> = Result<StoredMembership<N>, ChangeMembershipError<N>>;

/// How [`Raft::add_learner_with`] adds a learner.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AddLearnerOptions {
    /// Return once the learner holds the leader's log as of the call (as
    /// [`Raft::add_learner`] does); ignored with `promote_when`, which always
    /// waits for the promotion.
    pub blocking: bool,
    /// Have the leader make it a voter once it meets this rule; the call then
    /// returns the membership with it as a voter.
    pub promote_when: Option<Readiness>,
}

/// A readiness-aware membership call, handed to [`super::NodeHost::membership_call`].
#[derive(Debug)]
pub enum MembershipCall<N> {
    /// A planned change with options.
    Change(ChangeMembers<N>, ChangeOptions),
    /// Promote a learner once it meets a rule.
    PromoteWhenReady(NodeId, Readiness),
    /// Swap voter `old` for learner `new`.
    ReplaceVoter {
        /// The voter leaving.
        old: NodeId,
        /// The learner taking its place.
        new: NodeId,
    },
}

impl<N: Node> MembershipCall<N> {
    /// Hands the call to the engine as membership request `request_id`.
    pub(crate) fn start<C: AppData>(
        self,
        engine: &mut Engine<C, N>,
        request_id: u64,
    ) -> Result<(), ChangeMembershipError<N>> {
        match self {
            Self::Change(change, options) => engine.change_membership_with(request_id, change, options),
            Self::PromoteWhenReady(id, rule) => engine.promote_when_ready(request_id, id, rule),
            Self::ReplaceVoter { old, new } => engine.replace_voter(request_id, old, new, false),
        }
    }
}

impl<SM: StateMachine, N: Node> Raft<SM, N> {
    async fn membership_call(&self, call: MembershipCall<N>) -> MembershipResult<N> {
        self.call(|tx| Event::MembershipExt(call, tx)).await?
    }

    /// Adds a learner like [`Raft::add_learner`]; with `promote_when`, the
    /// leader then promotes it to voter by itself once it met the rule for
    /// the rule's hold time, and this returns the membership with it as a
    /// voter. A leader change before the promotion cancels it: the answer is
    /// then `PartiallyApplied` (the learner is in, not promoted; ask the new
    /// leader again).
    pub async fn add_learner_with(
        &self,
        id: impl Into<NodeId>,
        node: N,
        options: AddLearnerOptions,
    ) -> MembershipResult<N> {
        let id = id.into();
        let Some(rule) = options.promote_when else {
            return self.add_learner(id, node, options.blocking).await;
        };
        self.probe_new_member(id, &node).await?;
        let added = self.change_membership(ChangeMembers::AddNodes([(id, node)].into()), false).await?;
        match self.membership_call(MembershipCall::PromoteWhenReady(id, rule)).await {
            // leadership moved between the two steps: the learner is in
            // (committed), so "nothing happened" would be untrue
            Err(ChangeMembershipError::ForwardToLeader(_)) => {
                Err(ChangeMembershipError::PartiallyApplied { membership: Box::new(added) })
            }
            other => other,
        }
    }

    /// [`Raft::change_membership`] with options. A plain change refuses to make
    /// voters of learners that are not caught up
    /// ([`ChangeMembershipError::LearnerNotReady`], with their lag);
    /// `force: true` makes them voters anyway.
    pub async fn change_membership_with(
        &self,
        change: ChangeMembers<N>,
        options: ChangeOptions,
    ) -> MembershipResult<N> {
        self.membership_call(MembershipCall::Change(change, options)).await
    }

    /// Where the change with client change id `change_id` stands, as the
    /// leader's log and queue show it (`ForwardToLeader` on another node).
    pub async fn change_status(
        &self,
        change_id: &str,
    ) -> Result<crate::engine::ChangeStatus<N>, ChangeMembershipError<N>> {
        let change_id = change_id.to_string();
        self.call(|tx| Event::ChangeStatus(change_id, tx)).await?
    }

    /// Swaps voter `old` for learner `new` in one change (through a joint
    /// config `[voters, voters - old + new]`); refused with the learner's lag
    /// unless `new` is caught up. Returns once the new config committed.
    pub async fn replace_voter(&self, old: NodeId, new: NodeId) -> MembershipResult<N> {
        self.membership_call(MembershipCall::ReplaceVoter { old, new }).await
    }
}
