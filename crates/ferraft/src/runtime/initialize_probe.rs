//! `initialize` on a fresh node: first ask the other initial members who
//! they are, then decide. Their answers give the incarnations the initial
//! membership records (a member wiped right after then never counts as its
//! old self), and show whether the cluster already formed without this
//! node: a member that knows a leader of the cluster this node would start
//! means this node's log was lost (it crashed before its first entry was
//! durable, or its disk was replaced), and initializing it again would start
//! a second history under the same id. That node is refused and joins the
//! cluster when its leader reaches it. So is one whose member has a leader
//! of another cluster (`init` ran on another member first, each with a
//! random id): that member would never join the new cluster.
//!
//! The host runs this (the runtime and the simulator alike): the probes go
//! out at once and again every heartbeat interval to members that did not
//! answer (a probe may be lost, or reach a member before it started), and
//! the decision is taken when every member answered, or at the deadline.

use std::collections::BTreeMap;

use super::host::NodeHost;
use super::reply::{Answer, ReplyKind};
use super::PROBE_WAIT_ELECTION_TIMEOUTS;
use crate::cluster_id::ClusterId;
use crate::error::InitializeError;
use crate::log_id::LogId;
use crate::membership::Membership;
use crate::node::{Node, NodeId};
use crate::peer_refusal::PeerRefusal;
use crate::state_machine::StateMachine;

/// The answer to an `initialize`.
pub type InitializeResult = Result<LogId, InitializeError>;

/// What a fellow initial member said of itself.
#[derive(Debug, Clone, Copy)]
struct MemberAnswer {
    cluster_id: Option<ClusterId>,
    incarnation: u64,
    leader: Option<NodeId>,
}

/// An `initialize` waiting for the other initial members' answers.
pub(crate) struct PendingInitialize<N, R: ReplyKind> {
    membership: Membership<N>,
    given: Option<ClusterId>,
    fresh: ClusterId,
    /// Each member still to answer, with its probe's number.
    asked: BTreeMap<NodeId, u64>,
    answers: BTreeMap<NodeId, MemberAnswer>,
    /// When those still to answer are asked again.
    next_probe_ms: u64,
    deadline_ms: u64,
    reply: R::Reply<InitializeResult>,
}

impl<N, R: ReplyKind> PendingInitialize<N, R> {
    /// When the host must tick next for it: to ask again, or to decide.
    pub(crate) fn next_due_ms(&self) -> u64 {
        self.next_probe_ms.min(self.deadline_ms)
    }
}

impl<SM: StateMachine, N: Node, R: ReplyKind> NodeHost<SM, N, R> {
    /// Makes a fresh node a first member with voters `members`: in cluster
    /// `given`, else the one it has (`Config::cluster_id`), else `fresh`.
    /// Asks the other members first (see the module doc); answered once
    /// the initial entry is handed to the store (durable later, before the
    /// node campaigns), or with why not.
    pub fn initialize(
        &mut self,
        members: BTreeMap<NodeId, N>,
        given: Option<ClusterId>,
        fresh: ClusterId,
        reply: R::Reply<InitializeResult>,
    ) {
        if self.pending_initialize.is_some() {
            return reply.answer(Err(InitializeError::InProgress));
        }
        let membership = match Membership::new_uniform(members) {
            Ok(membership) => membership,
            Err(e) => return reply.answer(Err(e.into())),
        };
        let id = self.engine.id();
        let refused_now = !membership.is_member(id) || self.engine.cluster_for_initialize(given, fresh).is_err();
        if self.engine.membership().is_some() || refused_now {
            // not fresh, or refused whatever the members say: the engine
            // answers (a repeat of what it holds succeeds)
            return reply.answer(self.engine.initialize_in_cluster(membership, given, fresh));
        }
        let mut asked = BTreeMap::new();
        for (peer, node) in membership.nodes().iter().filter(|(peer, _)| **peer != id) {
            self.directory.insert(*peer, node.clone());
            asked.insert(*peer, self.books.request_id());
        }
        let wait = self.engine.config_election_timeout_max_ms() * PROBE_WAIT_ELECTION_TIMEOUTS;
        let deadline_ms = self.now_ms + wait;
        let (answers, next_probe_ms) = (BTreeMap::new(), self.now_ms);
        self.pending_initialize =
            Some(PendingInitialize { membership, given, fresh, asked, answers, next_probe_ms, deadline_ms, reply });
        self.initialize_if_due();
        self.initialize_if_answered();
    }

    /// Asks the members that did not answer yet (again), under the same
    /// probe numbers: a late answer to an earlier probe counts.
    fn probe_initial_members(&mut self) {
        let Some(pending) = self.pending_initialize.as_mut() else { return };
        pending.next_probe_ms = self.now_ms + self.engine.config_heartbeat_interval_ms().max(1);
        let own = pending.membership.node(self.engine.id()).cloned();
        for (peer, seq) in &pending.asked {
            self.engine.probe_as(*peer, *seq, own.clone());
        }
    }

    /// A member answered probe `seq` (called with every probe answer).
    pub(crate) fn initialize_probe_answered(
        &mut self,
        from: NodeId,
        seq: u64,
        cluster_id: Option<ClusterId>,
        incarnation: u64,
        leader: Option<NodeId>,
    ) {
        let Some(pending) = self.pending_initialize.as_mut() else { return };
        if pending.asked.get(&from) == Some(&seq) {
            pending.asked.remove(&from);
            pending.answers.insert(from, MemberAnswer { cluster_id, incarnation, leader });
            self.initialize_if_answered();
        }
    }

    /// A member's transport refused this node: it belongs to another
    /// cluster, which is its answer (the probe never reaches it).
    pub(crate) fn initialize_probe_refused(&mut self, from: NodeId, refusal: PeerRefusal) {
        let PeerRefusal::OtherCluster { theirs, .. } = refusal else { return };
        let Some(pending) = self.pending_initialize.as_mut() else { return };
        if pending.asked.remove(&from).is_some() {
            pending.answers.insert(from, MemberAnswer { cluster_id: Some(theirs), incarnation: 0, leader: None });
            self.initialize_if_answered();
        }
    }

    /// Asks again those that did not answer when that is due, and decides
    /// at the deadline (members that never answered are recorded later, by
    /// the first leader that hears from them).
    pub(crate) fn initialize_if_due(&mut self) {
        let Some(pending) = self.pending_initialize.as_ref() else { return };
        if self.now_ms >= pending.deadline_ms {
            self.decide_initialize();
        } else if self.now_ms >= pending.next_probe_ms {
            self.probe_initial_members();
        }
    }

    fn initialize_if_answered(&mut self) {
        if self.pending_initialize.as_ref().is_some_and(|p| p.asked.is_empty()) {
            self.decide_initialize();
        }
    }

    fn decide_initialize(&mut self) {
        let Some(pending) = self.pending_initialize.take() else { return };
        let result = self.initialize_with(pending.membership, pending.given, pending.fresh, &pending.answers);
        pending.reply.answer(result);
    }

    fn initialize_with(
        &mut self,
        membership: Membership<N>,
        given: Option<ClusterId>,
        fresh: ClusterId,
        answers: &BTreeMap<NodeId, MemberAnswer>,
    ) -> InitializeResult {
        let cluster_id = self.engine.cluster_for_initialize(given, fresh)?;
        // a member with a leader of another cluster (`init` ran elsewhere
        // first, without an id) would never join this one either
        let formed = answers.iter().find_map(|(id, a)| Some((*id, a.cluster_id.unwrap_or(cluster_id), a.leader?)));
        if let Some((member, cluster_id, leader)) = formed {
            return Err(InitializeError::ClusterFormed { member, cluster_id, leader });
        }
        // nor would one of another cluster that had no leader yet
        let other = answers.iter().find_map(|(id, a)| Some((*id, a.cluster_id.filter(|c| *c != cluster_id)?)));
        if let Some((member, cluster_id)) = other {
            return Err(InitializeError::MemberOfOtherCluster { member, cluster_id });
        }
        let incarnations = answers.iter().map(|(id, a)| (*id, a.incarnation));
        let membership = membership.with_incarnations(incarnations.collect());
        self.engine.initialize_in_cluster(membership, given, fresh)
    }
}
