//! Node incarnations in the engine: which messages count, what membership
//! entries record.
//!
//! Membership records each member's incarnation. A message whose sender is
//! another incarnation than the recorded one (a wiped voter back under its
//! old id) is dropped before any handler sees it: its vote is not counted,
//! its acknowledgement does not count toward commit, and it does not move a
//! follower. A message meant for another incarnation of this node is dropped
//! too. The only way back is an entry that records the new incarnation, which
//! the leader writes only for a node that is a learner in that entry: the
//! operator re-adds the wiped node as a learner, then promotes it once caught
//! up (see the operations guide).

use std::collections::BTreeMap;

use super::Engine;
use crate::entry::AppData;
use crate::incarnation::incarnations_agree;
use crate::membership::Membership;
use crate::message::Envelope;
use crate::node::{Node, NodeId};
use crate::vote::Vote;

/// What a message says of its sender's standing, for the incarnation check.
pub(crate) enum SenderStanding {
    /// A leader's message (append, snapshot chunk) under this vote.
    Leading(Vote),
    /// A vote request from a candidate whose log ends here.
    Candidate(Option<crate::log_id::LogId>),
    /// Anything else (replies, probes).
    Other,
}

/// At most one warning about another incarnation per this many milliseconds.
const WARN_EVERY_MS: u64 = 10_000;

impl<C: AppData, N: Node> Engine<C, N> {
    /// This node's incarnation; 0 when its store keeps none.
    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// The incarnation the membership in force records for `id`; 0 when not known.
    pub(crate) fn recorded_incarnation(&self, id: NodeId) -> u64 {
        self.effective().map_or(0, |m| m.incarnation(id))
    }

    /// The latest incarnation heard from `id` (our own for this node).
    pub(crate) fn known_incarnation(&self, id: NodeId) -> u64 {
        if id == self.id {
            return self.incarnation;
        }
        self.known_incarnations.get(&id).copied().unwrap_or(0)
    }

    /// Remembers the incarnation `id` says it has.
    pub(crate) fn learn_incarnation(&mut self, id: NodeId, incarnation: u64) {
        // on every message: look before writing
        if incarnation != 0 && id != self.id && self.known_incarnations.get(&id) != Some(&incarnation) {
            self.known_incarnations.insert(id, incarnation);
        }
    }

    /// Learns the incarnations that `next`, a membership entry from a leader,
    /// records anew (differing from the membership in force before it): its
    /// leader heard them after anything this node heard before the entry
    /// came. Kept as last heard instead, a wiped member's old incarnation,
    /// heard before it was readmitted, was what this node recorded for it on
    /// becoming leader and promoting it; the member dropped every message
    /// meant for that incarnation and the joint config never committed (sim
    /// seed 2806 of the forward-heavy runs with wiped disks). Only changed
    /// records are news: a voter's record stays as it was while it is a voter.
    pub(crate) fn learn_recorded_incarnations(&mut self, next: &Membership<N>) {
        let changed: Vec<(NodeId, u64)> = (next.incarnations().iter())
            .filter(|(id, incarnation)| **incarnation != self.recorded_incarnation(**id))
            .map(|(id, incarnation)| (*id, *incarnation))
            .collect();
        for (id, incarnation) in changed {
            self.learn_incarnation(id, incarnation);
        }
    }

    /// Whether this node is the incarnation its membership records (or none
    /// is recorded): a wiped node that somehow holds a membership naming its
    /// old self does not act as that voter.
    pub(crate) fn is_recorded_self(&self) -> bool {
        incarnations_agree(self.recorded_incarnation(self.id), self.incarnation)
    }

    /// The envelope of a reply to `to`: addressed to the incarnation last
    /// heard from it, the one that asked. A voter or follower lagging behind
    /// the entry that records a readmitted member's new incarnation still
    /// records the old one; a reply addressed to that was dropped by the
    /// asker, whose grants and acknowledgements then never arrived (sim seed
    /// 21206 of the wiped-disk runs). What the reply says still counts at the
    /// asker only if it records the replier's incarnation.
    pub(crate) fn reply_envelope(&self, to: NodeId) -> Envelope {
        let asker = self.known_incarnation(to);
        let envelope = self.envelope(to);
        Envelope { to_incarnation: if asker != 0 { asker } else { envelope.to_incarnation }, ..envelope }
    }

    /// Whether a message with `envelope` is from and for the incarnations the
    /// membership records; logs (rate-limited) when not.
    pub(crate) fn admits_incarnations(&mut self, envelope: &Envelope, standing: SenderStanding) -> bool {
        self.learn_incarnation(envelope.from, envelope.from_incarnation);
        let for_other_self = !incarnations_agree(self.incarnation, envelope.to_incarnation);
        let recorded = self.recorded_incarnation(envelope.from);
        // This node may lag behind the entry that records a readmitted
        // member's new incarnation. A leader elected under a vote at least
        // ours won an election that counted only recorded incarnations, and a
        // candidate whose log is ahead of ours holds that entry: both are
        // heard (the candidate on the usual vote rules), or this node never
        // catches up. Their acknowledgements are another matter: a node
        // counts only those of incarnations it records.
        let vouched = match standing {
            SenderStanding::Leading(vote) => {
                vote.committed
                    && vote.leader_id.node_id == envelope.from
                    && self.vote.may_advance_to(&vote, self.config.leader_id_mode)
            }
            SenderStanding::Candidate(last) => last > self.log.last_log_id(),
            SenderStanding::Other => false,
        };
        let from_other_self = !vouched && !incarnations_agree(recorded, envelope.from_incarnation);
        if (!for_other_self && !from_other_self) || self.breaks(crate::config::BrokenRule::CountOtherIncarnations) {
            return true;
        }
        if self.incarnation_warned_ms.is_none_or(|at| self.now_ms >= at + WARN_EVERY_MS) {
            self.incarnation_warned_ms = Some(self.now_ms);
            if for_other_self {
                tracing::warn!(
                    node = %self.id,
                    from = %envelope.from,
                    ours = self.incarnation,
                    meant_for = envelope.to_incarnation,
                    "dropping messages meant for another incarnation of this node (its data was wiped or replaced): \
                     re-add this node as a learner (`ferraft ctl readmit`), then promote it"
                );
            } else {
                tracing::warn!(
                    node = %self.id,
                    from = %envelope.from,
                    recorded,
                    theirs = envelope.from_incarnation,
                    "dropping messages from another incarnation of a member (wiped or replaced): \
                     it counts for nothing until re-added as a learner (`ferraft ctl readmit`)"
                );
            }
        }
        false
    }

    /// `next` with the incarnations this leader records for its members: a
    /// voter of both `next` and the membership in force keeps the recorded
    /// one (filled in when none is known yet); any other member gets the one
    /// last heard from it. A voter's record never changes while it stays a
    /// voter: its old incarnation's acknowledgements helped commit entries
    /// under that config, and its new one, lacking them, must not stand in.
    /// A learner's never counted, so recording a new one (and promoting it
    /// later) is as safe as adding a new node.
    pub(crate) fn stamp_incarnations(&self, next: Membership<N>) -> Membership<N> {
        let current = self.effective();
        let incarnations: BTreeMap<NodeId, u64> = next
            .nodes()
            .keys()
            .map(|&id| {
                // without a membership (initialize), what the caller recorded
                let recorded = current.map_or(next.incarnation(id), |m| m.incarnation(id));
                let known = self.known_incarnation(id);
                let stays_voter = next.is_voter(id) && current.is_some_and(|m| m.is_voter(id));
                let keep_recorded = if stays_voter { recorded != 0 } else { known == 0 };
                (id, if keep_recorded { recorded } else { known })
            })
            .collect();
        next.with_incarnations(incarnations)
    }

    /// A leader whose committed, uniform membership records less than it
    /// knows (a member given at initialize, a learner heard from in a new
    /// incarnation) writes an entry of the same configs and nodes, and no
    /// change id, that records it: an incarnation record, which answers no
    /// membership request.
    pub(crate) fn maybe_record_incarnations(&mut self) {
        if !self.may_propose_membership() || self.membership_work_pending() || !self.membership_requests.is_empty() {
            return;
        }
        let Some(current) = self.effective().filter(|m| !m.is_joint()) else { return };
        let next = self.stamp_incarnations(current.clone().with_change_id(None));
        if next.incarnations() != current.incarnations() {
            self.propose_membership(next);
            self.leader_maybe_commit();
        }
    }

    /// Drops the replication progress of members that `next` records as a
    /// new incarnation: what the leader knew of the old one (what it held,
    /// that its log went backwards) says nothing of the new one, which then
    /// starts as a new learner would.
    pub(crate) fn forget_progress_of_replaced(&mut self, next: &Membership<N>) {
        let Some(current) = self.effective() else { return };
        let replaced: Vec<NodeId> = (next.incarnations().iter())
            .filter(|(id, incarnation)| !incarnations_agree(current.incarnation(**id), **incarnation))
            .map(|(id, _)| *id)
            .collect();
        if let super::Role::Leader(leader) = &mut self.role {
            for id in replaced {
                leader.progress.remove(&id);
            }
        }
    }
}
