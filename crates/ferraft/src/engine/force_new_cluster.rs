//! Guarded recovery: restarting a cluster from one survivor's data when a
//! majority of voters is lost for good.
//!
//! Raft cannot commit without a majority, by design: a cluster that lost one
//! for good (machines gone, disks dead) is stuck, however much data the
//! survivor holds. Force-new-cluster trades the guarantee away, once, on the
//! operator's word: the survivor keeps its log, leaves its old cluster for a
//! new cluster id, and appends a membership with itself as the only voter,
//! which it then commits alone. Entries only the lost nodes held are lost;
//! entries it holds that were never committed become committed.
//!
//! It is an online operation on the running survivor (not an offline rewrite
//! of its data dir) so that it works the same for every store, keeps the
//! durability order of the engine's outputs (cluster id, vote, entry), and
//! is reachable from the HTTP API. The new cluster id is what keeps the lost
//! nodes out: should one come back on its old data, its messages are of
//! another cluster and dropped, it is refused at the transport handshake, and
//! it cannot be added back except wiped (a fresh data dir, as a learner).

use super::{Engine, Output};
use crate::cluster_id::ClusterId;
use crate::entry::{AppData, Entry, EntryPayload};
use crate::error::ForceNewClusterError;
use crate::leader_id::LeaderId;
use crate::log_id::LogId;
use crate::membership::Membership;
use crate::node::{Node, Term};
use crate::vote::Vote;

impl<C: AppData, N: Node> Engine<C, N> {
    /// Makes this node the only voter of a new cluster `cluster`, keeping
    /// its log; returns the log id of the new membership entry, which it
    /// commits once it elected itself (at once). Learners of the old
    /// membership are dropped: they belong to the old cluster.
    pub fn force_new_cluster(&mut self, cluster: ClusterId) -> Result<LogId, ForceNewClusterError> {
        let Some(current) = self.effective() else { return Err(ForceNewClusterError::NotInitialized) };
        let Some(me) = current.node(self.id).cloned() else { return Err(ForceNewClusterError::NotMember) };
        let old_cluster = self.cluster_id;
        tracing::warn!(
            node = %self.id,
            old_cluster = ?old_cluster.map(|c| c.to_string()),
            new_cluster = %cluster,
            last_log = ?self.log.last_log_id(),
            committed = ?self.committed,
            "FORCE-NEW-CLUSTER: this node leaves its cluster and becomes the only voter of a new one; \
             entries only the other members held are lost; never restart them on their old data"
        );
        self.become_follower();
        self.removed_by_quorum = false;
        self.cluster_id = Some(cluster);
        self.cluster_id_saved = true;
        self.output.push(Output::SaveClusterId(cluster));
        // a term above any this node saw, so the new entry is the latest
        // log id anywhere this node will ever compare logs with
        let last_log_term = self.log.last_log_id().map_or(Term(0), |l| l.leader_id.term);
        let term = self.observed_term.max(self.vote.term()).max(last_log_term).next();
        self.save_vote(Vote::new(term, self.id));
        let membership = Membership::new_uniform([(self.id, me)].into())
            .map_err(|_| ForceNewClusterError::NotMember)?
            .with_incarnations([(self.id, self.incarnation)].into());
        let log_id = LogId::new(LeaderId::new(term, self.id), self.log.last_index() + 1);
        let entry = Entry { log_id, payload: EntryPayload::Membership(membership) };
        self.log.push(entry.clone());
        self.push_append_output(entry);
        self.election_deadline_ms = self.now_ms;
        self.on_tick(self.now_ms);
        Ok(log_id)
    }
}
