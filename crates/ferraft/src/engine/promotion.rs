//! Promote when ready: the leader makes a learner a voter by itself once the
//! learner met its readiness rule without a break for the rule's hold time.
//!
//! Pending promotions live in the leader's memory only. A leader change
//! cancels them: the caller is answered `PartiallyApplied` (the learner was
//! added; it was not promoted) and may ask the new leader again. Re-arming
//! them on a new leader would need the rule in the replicated log, and a rule
//! nobody waits for any more would then promote a node long after its caller
//! gave up.

use super::readiness::Readiness;
use super::{Engine, Output};
use crate::entry::AppData;
use crate::error::ChangeMembershipError;
use crate::log_id::index_of;
use crate::membership::ChangeMembers;
use crate::node::{Node, NodeId};
use crate::vote::Vote;

/// What to do with a promotion whose wait ended.
enum Due {
    /// Its rule held long enough.
    Promote(NodeId),
    /// Another change made it a voter, and that committed.
    AlreadyVoter,
    /// Another change removed it, or it never got ready within the bound.
    GiveUp,
}

/// A learner waiting to be promoted.
#[derive(Debug, Clone)]
pub(crate) struct PendingPromotion {
    /// The caller's id; the promotion is answered as a membership request.
    request_id: u64,
    node_id: NodeId,
    rule: Readiness,
    /// The leader's vote when it was accepted: another leadership cancels it.
    vote: Vote,
    /// Since when the rule holds without a break.
    pub(crate) ready_since_ms: Option<u64>,
    /// When it was accepted: a learner that never gets ready is given up on.
    accepted_ms: u64,
}

/// How long a promotion waits for its learner, in election timeouts (60 s at
/// the default settings): the call is answered within a bound, the learner
/// stays a learner, and a later call can promote it.
const PROMOTION_BOUND_ELECTION_TIMEOUTS: u64 = 100;

impl<C: AppData, N: Node> Engine<C, N> {
    /// Promotes learner `node_id` to voter once it meets `rule` for
    /// `rule.hold_ms`. Answered by `Output::MembershipDone` for `request_id`:
    /// the membership with it as a voter, or `PartiallyApplied` when this node
    /// stops leading (or the learner is removed) first.
    pub fn promote_when_ready(
        &mut self,
        request_id: u64,
        node_id: NodeId,
        rule: Readiness,
    ) -> Result<(), ChangeMembershipError<N>> {
        if !self.is_leader() {
            return Err(ChangeMembershipError::ForwardToLeader(self.forward_to_leader()));
        }
        let current = self.effective().expect("a leader has a membership");
        if !current.is_member(node_id) || current.is_voter(node_id) {
            return Err(crate::membership::ChangeMembersError::NotLearner { node_id }.into());
        }
        let vote = self.vote;
        let accepted_ms = self.now_ms;
        self.promotions.push(PendingPromotion { request_id, node_id, rule, vote, ready_since_ms: None, accepted_ms });
        Ok(())
    }

    /// Cancels the promotions of an earlier leadership (on every tick).
    pub(crate) fn settle_promotions(&mut self) {
        if self.promotions.is_empty() || (self.is_leader() && self.promotions.iter().all(|p| p.vote == self.vote)) {
            return;
        }
        let (stale, current): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.promotions).into_iter().partition(|p| !self.is_leader() || p.vote != self.vote);
        self.promotions = current;
        for promotion in stale {
            tracing::info!(node = %self.id, learner = %promotion.node_id, "leadership lost: promotion cancelled");
            self.answer_promotion_partially(promotion.request_id);
        }
    }

    /// Proposes the promotions whose rule held long enough (once per heartbeat).
    pub(crate) fn maybe_promote_ready_learners(&mut self) {
        if self.promotions.is_empty() || !self.is_leader() {
            return;
        }
        let now = self.now_ms;
        let bound = self.config.election_timeout_max_ms * PROMOTION_BOUND_ELECTION_TIMEOUTS;
        let mut promotions = std::mem::take(&mut self.promotions);
        let mut due = Vec::new();
        let committed = self.membership_committed();
        promotions.retain_mut(|p| {
            let Some(current) = self.effective() else { return true };
            if current.is_voter(p.node_id) {
                // another change promoted it first: done once that committed
                if committed {
                    due.push((p.request_id, Due::AlreadyVoter));
                }
                return !committed;
            }
            if !current.is_member(p.node_id) {
                due.push((p.request_id, Due::GiveUp));
                return false;
            }
            if now >= p.accepted_ms + bound {
                tracing::warn!(
                    learner = %p.node_id,
                    waited_ms = now - p.accepted_ms,
                    "learner never got ready: promotion given up"
                );
                due.push((p.request_id, Due::GiveUp));
                return false;
            }
            if self.check_ready(p.node_id, &p.rule).is_err() {
                p.ready_since_ms = None;
                return true;
            }
            let since = *p.ready_since_ms.get_or_insert(now);
            if now >= since + p.rule.hold_ms {
                due.push((p.request_id, Due::Promote(p.node_id)));
                return false;
            }
            true
        });
        self.promotions = promotions;
        for (request_id, node_id) in due {
            match node_id {
                Due::Promote(node_id) => {
                    tracing::info!(node = %self.id, learner = %node_id, "learner ready: promoting it");
                    let change = ChangeMembers::AddVoterIds([node_id].into());
                    if let Err(e) = self.change_membership(request_id, change, false) {
                        self.output.push(Output::MembershipDone { request_id, result: Err(e) });
                    }
                }
                Due::AlreadyVoter => {
                    let result = Ok(self.membership().expect("a leader has a membership").clone());
                    self.output.push(Output::MembershipDone { request_id, result });
                }
                Due::GiveUp => self.answer_promotion_partially(request_id),
            }
        }
    }

    fn answer_promotion_partially(&mut self, request_id: u64) {
        let committed = self.log.membership_at(index_of(self.committed)).or(self.membership()).cloned();
        let result = match committed {
            Some(membership) => Err(ChangeMembershipError::PartiallyApplied { membership: Box::new(membership) }),
            None => Err(ChangeMembershipError::LeadershipLost),
        };
        self.output.push(Output::MembershipDone { request_id, result });
    }
}
