//! The engine's cluster id: where it comes from, when it is adopted, which
//! messages it lets in, and probes that ask a node for its own.
//!
//! A node gets its cluster id once: at initialize, or from the first leader
//! (or candidate it votes for) that reaches it while it has none. From then on
//! it drops messages of any other cluster, so a node initialized on its own
//! and later pointed at by another cluster's leader keeps its own cluster
//! instead of following that leader and fighting over committed entries.

use super::{Engine, Output};
use crate::cluster_id::ClusterId;
use crate::config::Config;
use crate::entry::AppData;
use crate::error::InitializeError;
use crate::message::{Message, MessageBody, Probe, ProbeReply};
use crate::node::{Node, NodeId};
use crate::storage::LogState;

/// The cluster id a node starts with, and whether it must still be saved:
/// the stored one; else the configured one (a fixed id, or the id of a store
/// written before ids were saved); else none yet.
pub(crate) fn starting_cluster_id<C, N>(
    node: NodeId,
    config: &Config,
    state: &LogState<C, N>,
) -> (Option<ClusterId>, bool) {
    let configured = ClusterId::new(config.cluster_id);
    match (state.cluster_id, configured) {
        (Some(stored), Some(configured)) if stored != configured => {
            tracing::error!(
                %node,
                %stored,
                %configured,
                "the store belongs to another cluster than Config::cluster_id names; keeping the stored one"
            );
            (Some(stored), false)
        }
        (Some(stored), _) => (Some(stored), false),
        (None, configured) => (configured, configured.is_some()),
    }
}

impl<C: AppData, N: Node> Engine<C, N> {
    /// The cluster this node belongs to; `None` until it is initialized or a
    /// leader reaches it.
    pub fn cluster_id(&self) -> Option<ClusterId> {
        self.cluster_id
    }

    /// What envelopes carry: our cluster, or while we have none, the cluster
    /// of whoever contacted us last (we are answering it).
    pub(crate) fn wire_cluster_id(&self) -> u64 {
        self.cluster_id.map_or(self.contacted_by_cluster, ClusterId::get)
    }

    /// Whether a message of `cluster` is for us: of our cluster, or any while
    /// we have none yet.
    pub(crate) fn accepts_cluster(&mut self, cluster: u64) -> bool {
        match self.cluster_id {
            Some(_) if self.breaks(crate::config::BrokenRule::SkipClusterCheck) => true,
            Some(ours) => ours.get() == cluster,
            None => {
                self.contacted_by_cluster = cluster;
                true
            }
        }
    }

    /// Joins the cluster of the node whose message is being handled (a leader
    /// we accept, a candidate we vote for), if we have none yet. Saved before
    /// the vote or entries that follow.
    pub(crate) fn adopt_contacting_cluster(&mut self) {
        if self.cluster_id.is_none() {
            if let Some(cluster) = ClusterId::new(self.contacted_by_cluster) {
                tracing::info!(node = %self.id, %cluster, "joining the cluster of the leader that reached this node");
                self.set_cluster_id(cluster);
            }
        }
    }

    pub(crate) fn set_cluster_id(&mut self, cluster: ClusterId) {
        if self.cluster_id != Some(cluster) || !self.cluster_id_saved {
            self.cluster_id = Some(cluster);
            self.cluster_id_saved = true;
            self.output.push(Output::SaveClusterId(cluster));
        }
    }

    /// The cluster id an initialize gives this node: the one it has, which an
    /// id given by the operator must match; else the given one; else `fresh`.
    /// A node that already follows a leader (even before it holds an entry)
    /// belongs to that leader's cluster: initializing it would make a second
    /// cluster under the same id. So does one that led, with an empty log: its
    /// disk lost the entries the others hold and may have committed.
    pub(crate) fn cluster_for_initialize(
        &self,
        given: Option<ClusterId>,
        fresh: ClusterId,
    ) -> Result<ClusterId, InitializeError> {
        if self.vote.committed {
            let leader = self.vote.leader_id.node_id;
            return Err(match self.cluster_id {
                Some(cluster_id) => InitializeError::JoinedCluster { cluster_id, leader },
                None => InitializeError::NotAllowed,
            });
        }
        match (self.cluster_id, given) {
            (Some(ours), Some(given)) if ours != given => Err(InitializeError::OtherCluster { ours, given }),
            (Some(ours), _) => Ok(ours),
            (None, given) => Ok(given.unwrap_or(fresh)),
        }
    }

    /// A leader of this node's cluster it knows: the one its vote follows
    /// (or it was), else the one that wrote its last entry (a vote for a
    /// candidate since replaced the leader's). `None` while it holds at
    /// most initial entries and never knew a leader: its cluster has not
    /// formed as far as it knows.
    fn known_leader(&self) -> Option<NodeId> {
        if self.vote.committed {
            return Some(self.vote.leader_id.node_id);
        }
        let last = self.log.last_log_id()?;
        (last.leader_id.term > crate::Term(0)).then_some(last.leader_id.node_id)
    }

    /// Asks `to` which cluster it belongs to (before it is added): the
    /// answer comes back as [`Output::ProbeAnswered`].
    pub fn probe(&mut self, to: NodeId, seq: u64) {
        self.probe_as(to, seq, None);
    }

    /// Like [`Engine::probe`], naming this node's descriptor `own` when no
    /// membership names it yet (a fresh node about to initialize), so the
    /// asked node knows where to answer.
    pub fn probe_as(&mut self, to: NodeId, seq: u64, own: Option<N>) {
        let asker_node = self.effective().and_then(|m| m.node(self.id).cloned()).or(own);
        self.send(to, MessageBody::Probe(Probe { seq, asker_node }));
    }

    /// Handles a probe or its answer, which cross cluster lines (they change
    /// nothing); hands every other message back.
    pub(crate) fn on_probe_message(&mut self, message: Message<C, N>) -> Option<Message<C, N>> {
        let from = message.envelope.from;
        if message.envelope.to != self.id {
            return Some(message);
        }
        match message.body {
            MessageBody::Probe(probe) => {
                let cluster_id = ClusterId::wire(self.cluster_id);
                let incarnation = self.incarnation;
                let leader = self.known_leader();
                let body = MessageBody::ProbeReply(ProbeReply { seq: probe.seq, cluster_id, incarnation, leader });
                // answered in the asker's cluster, so its transport lets it through
                let envelope = crate::message::Envelope {
                    cluster_id: message.envelope.cluster_id,
                    from: self.id,
                    to: from,
                    from_incarnation: self.incarnation,
                    to_incarnation: message.envelope.from_incarnation,
                };
                self.output.push(Output::Send(Message { envelope, body }));
                None
            }
            MessageBody::ProbeReply(reply) => {
                // a node of another cluster at that address is not our member
                // of that id: what it says of itself is not learned
                let ours = self.cluster_id.is_none_or(|ours| ours.get() == reply.cluster_id);
                if ours || reply.cluster_id == 0 {
                    self.learn_incarnation(from, reply.incarnation);
                }
                let cluster_id = ClusterId::new(reply.cluster_id);
                let incarnation = reply.incarnation;
                let leader = reply.leader;
                self.output.push(Output::ProbeAnswered { from, seq: reply.seq, cluster_id, incarnation, leader });
                None
            }
            _ => Some(message),
        }
    }
}
