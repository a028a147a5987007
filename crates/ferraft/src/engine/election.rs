//! Elections: pre-vote, vote, becoming leader, stepping down, leader transfer.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::progress::Progress;
use super::role::{CandidateState, LeaderState, Role};
use super::{Engine, Output};
use crate::entry::{AppData, EntryPayload};
use crate::error::TransferError;
use crate::message::{MessageBody, TimeoutNow, VoteReply, VoteRequest};
use crate::node::{LogIndex, Node, NodeId};
use crate::vote::Vote;

impl<C: AppData, N: Node> Engine<C, N> {
    /// A leader was heard from recently: votes for others are refused
    /// (leader stickiness), which also protects the leader's read lease.
    pub(crate) fn leader_is_live(&self) -> bool {
        self.is_leader()
            || self.leader_seen_ms.is_some_and(|seen| self.now_ms < seen + self.config.election_timeout_min_ms)
    }

    pub(crate) fn on_election_timeout(&mut self) {
        self.reset_election_deadline();
        if !self.may_campaign() {
            return;
        }
        let restarted_leader = self.vote.committed && self.vote.leader_id.node_id == self.id;
        if self.config.pre_vote && !restarted_leader {
            self.campaign(true, false);
        } else {
            self.campaign(false, false);
        }
    }

    /// Starts a (pre-)vote round for a term above any seen.
    pub(crate) fn campaign(&mut self, pre_vote: bool, transfer: bool) {
        let term = self.vote.term().max(self.observed_term).next();
        let vote = Vote::new(term, self.id);
        if !pre_vote {
            self.save_vote(vote);
            self.leader_seen_ms = None;
        }
        self.role = Role::Candidate(CandidateState {
            pre_vote,
            vote,
            granted: BTreeSet::from([self.id]),
            transfer,
            not_member_of: BTreeSet::new(),
        });
        tracing::debug!(node = %self.id, %vote, pre_vote, "campaigning");
        let candidate_node = self.own_node().cloned();
        let request = VoteRequest { candidate_node, vote, last_log_id: self.log.last_log_id(), pre_vote, transfer };
        let voters: Vec<NodeId> =
            self.effective().map(|m| m.voter_ids().filter(|id| *id != self.id).collect()).unwrap_or_default();
        for to in voters {
            self.send(to, MessageBody::Vote(request.clone()));
        }
        self.maybe_win_election();
    }

    pub(crate) fn on_vote_request(&mut self, from: NodeId, req: VoteRequest<N>) {
        if self.effective().is_some_and(|m| !m.is_member(from)) && req.last_log_id <= self.log.last_log_id() {
            // a node this membership does not know and whose log is not ahead
            // of ours: one removed that never learned it (a node added after
            // our membership would hold a longer log, and is heard normally).
            // Its term is not adopted (it would depose the leader) and it is
            // told, so it can stop campaigning. The term is remembered for
            // this node's own next campaign, which deposes no one: a voter
            // lagging far enough to still count the removed node grants it
            // every new term, and a candidate needing that voter learned each
            // term one round late from its refusals and never won (sim seed
            // 3477 of the membership-stress runs).
            self.observe_term_of(req.vote, req.pre_vote);
            tracing::debug!(node = %self.id, %from, vote = %req.vote, "vote request from a non-member: refused");
            let reply = VoteReply {
                vote: self.vote,
                granted: false,
                pre_vote: req.pre_vote,
                last_log_id: self.log.last_log_id(),
                not_member: true,
            };
            self.send(from, MessageBody::VoteReply(reply));
            return;
        }
        self.observe_term_of(req.vote, req.pre_vote);
        let log_ok = req.last_log_id >= self.log.last_log_id();
        let sticky = self.leader_is_live() && !req.transfer && self.vote.leader_id.node_id != from;
        let granted = if req.pre_vote {
            let ahead =
                req.vote.term() > self.vote.term() || self.vote.may_advance_to(&req.vote, self.config.leader_id_mode);
            ahead && log_ok && !sticky
        } else {
            let second_vote = self.breaks(crate::config::BrokenRule::DoubleVote)
                && req.vote.term() == self.vote.term()
                && !self.vote.committed;
            let ahead = self.vote.may_advance_to(&req.vote, self.config.leader_id_mode) || second_vote;
            let granted = ahead && log_ok && !sticky;
            if granted {
                self.adopt_contacting_cluster();
                self.save_vote(req.vote);
                self.reset_election_deadline();
                self.become_follower();
            }
            granted
        };
        tracing::debug!(node = %self.id, %from, granted, pre_vote = req.pre_vote, vote = %req.vote, "vote request");
        let reply = VoteReply {
            vote: self.vote,
            granted,
            pre_vote: req.pre_vote,
            last_log_id: self.log.last_log_id(),
            not_member: false,
        };
        self.send(from, MessageBody::VoteReply(reply));
    }

    pub(crate) fn on_vote_reply(&mut self, from: NodeId, reply: VoteReply) {
        let Role::Candidate(candidate) = &mut self.role else { return };
        if reply.pre_vote != candidate.pre_vote {
            return;
        }
        if reply.not_member {
            candidate.not_member_of.insert(from);
            let not_member_of = candidate.not_member_of.clone();
            let unknown = self.effective().is_some_and(|m| m.is_quorum(|id| not_member_of.contains(&id)));
            if unknown {
                // a quorum no longer knows this node: it was removed
                tracing::info!(
                    node = %self.id,
                    "a quorum says this node is not a member: it was removed; not campaigning"
                );
                self.removed_by_quorum = true;
                self.become_follower();
            }
            return;
        }
        if reply.granted {
            if reply.pre_vote || reply.vote == candidate.vote {
                candidate.granted.insert(from);
                self.maybe_win_election();
            }
            return;
        }
        // a refusal from a node at our term or above: someone else may lead;
        // remember the term so the next campaign starts above it
        let theirs = reply.vote;
        if theirs.term() >= candidate.vote.term() && theirs != candidate.vote {
            self.observed_term = self.observed_term.max(theirs.term());
            if theirs.committed || theirs.term() > candidate.vote.term() {
                self.become_follower();
            }
        }
    }

    fn maybe_win_election(&mut self) {
        let Role::Candidate(candidate) = &self.role else { return };
        let won = self.effective().is_some_and(|m| m.is_quorum(|id| candidate.granted.contains(&id)));
        if !won {
            return;
        }
        if candidate.pre_vote {
            let transfer = candidate.transfer;
            self.campaign(false, transfer);
        } else {
            self.become_leader();
        }
    }

    /// Remembers a higher term so the next campaign starts above it.
    fn observe_term_of(&mut self, vote: Vote, pre_vote: bool) {
        if !pre_vote {
            self.observed_term = self.observed_term.max(vote.term());
        }
    }

    pub(crate) fn become_leader(&mut self) {
        let vote = Vote { leader_id: self.vote.leader_id, committed: true };
        self.save_vote(vote);
        let now = self.now_ms;
        let next_index = self.log.last_index() + 1;
        let progress: BTreeMap<NodeId, Progress> = self
            .effective()
            .map(|m| {
                m.nodes()
                    .keys()
                    .copied()
                    .filter(|id| *id != self.id)
                    .map(|id| (id, Progress::new(next_index, now)))
                    .collect()
            })
            .unwrap_or_default();
        self.role = Role::Leader(Box::new(LeaderState {
            progress,
            term_start_index: next_index,
            flush_told: LogIndex(0),
            seq: 0,
            reads: VecDeque::new(),
            read_round_needed: false,
            next_heartbeat_ms: now,
            transfer: None,
            lease_forfeited: false,
            since_ms: now,
            departing: BTreeMap::new(),
            joint_wait_since: None,
        }));
        self.leader_seen_ms = Some(now);
        tracing::info!(node = %self.id, %vote, "became leader");
        // initial-log rule: commit a blank entry of this term before anything else
        self.append_local(EntryPayload::Blank);
        self.broadcast_append();
        self.leader_maybe_commit();
    }

    /// Leaves candidate or leader role; fails whatever waited on leadership.
    pub(crate) fn become_follower(&mut self) {
        let old = std::mem::replace(&mut self.role, Role::Follower);
        if let Role::Leader(leader) = old {
            tracing::info!(node = %self.id, vote = %self.vote, "stepping down");
            for read in leader.reads {
                match read.asker {
                    Some(asker) => self.refuse_read_index(asker, read.request_id),
                    None => self.output.push(Output::ReadFailed { request_id: read.request_id }),
                }
            }
            self.drop_proposed_forwards();
            self.on_membership_leadership_lost();
            self.output.push(Output::LeadershipLost);
            self.reset_election_deadline();
        }
    }

    /// Starts handing leadership to `to` (any voter when `None`): it is
    /// brought up to date, then told to campaign at once.
    pub fn transfer_leader(&mut self, to: Option<NodeId>) -> Result<NodeId, TransferError<N>> {
        let forward = self.forward_to_leader();
        let Role::Leader(leader) = &mut self.role else {
            return Err(TransferError::ForwardToLeader(forward));
        };
        let membership = &self.log.effective_membership().expect("a leader has a membership").membership;
        let target = match to {
            Some(id) if id == self.id => return Ok(id),
            Some(id) if !membership.is_voter(id) => return Err(TransferError::NotVoter { node_id: id }),
            Some(id) => id,
            None => membership
                .voter_ids()
                .filter(|id| *id != self.id)
                .max_by_key(|id| leader.progress.get(id).map_or(LogIndex(0), |p| p.matched_index()))
                .ok_or(TransferError::NoTarget)?,
        };
        leader.transfer = Some((target, self.now_ms + self.config.election_timeout_max_ms * 2));
        self.maybe_send_timeout_now();
        Ok(target)
    }

    /// Sends timeout-now once the transfer target has every entry.
    pub(crate) fn maybe_send_timeout_now(&mut self) {
        let last = self.log.last_log_id();
        let Role::Leader(leader) = &mut self.role else { return };
        let Some((target, _)) = leader.transfer else { return };
        if leader.progress.get(&target).is_some_and(|p| p.matched == last) {
            leader.lease_forfeited = true;
            let vote = self.vote;
            self.send(target, MessageBody::TimeoutNow(TimeoutNow { vote }));
        }
    }

    pub(crate) fn on_timeout_now(&mut self, from: NodeId, message: TimeoutNow) {
        if message.vote != self.vote || !self.vote.committed || self.vote.leader_id.node_id != from {
            return;
        }
        if !self.is_voter() {
            return;
        }
        tracing::info!(node = %self.id, %from, "leader transfer: campaigning now");
        self.campaign(false, true);
    }
}
