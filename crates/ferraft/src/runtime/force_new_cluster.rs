//! [`Raft::force_new_cluster`]: the handle's side of guarded recovery (see
//! the engine's `force_new_cluster` for what it does and why it is online).

use std::time::Duration;

use super::event::Event;
use super::Raft;
use crate::cluster_id::ClusterId;
use crate::engine::ServerState;
use crate::error::{Fatal, ForceNewClusterError};
use crate::log_id::index_of;
use crate::membership::StoredMembership;
use crate::node::Node;
use crate::state_machine::StateMachine;

impl<SM: StateMachine, N: Node> Raft<SM, N> {
    /// **Destructive recovery** for a cluster that lost a majority of its
    /// voters for good: this node keeps its log, moves to a new random
    /// cluster id and becomes the only voter of that new cluster. Entries
    /// only the lost nodes held are lost; uncommitted entries this node holds
    /// become committed. Nodes of the old cluster are refused from then on:
    /// never restart them on their old data (two of them could still form a
    /// quorum of the old cluster among themselves); bring machines back with
    /// empty data dirs and `add_learner`. `confirm` must be `true`
    /// (`NotConfirmed` otherwise: nothing changes). Returns the new
    /// membership once this node leads and committed it.
    pub async fn force_new_cluster(&self, confirm: bool) -> Result<StoredMembership<N>, ForceNewClusterError> {
        if !confirm {
            return Err(ForceNewClusterError::NotConfirmed);
        }
        let cluster = ClusterId::random();
        tracing::warn!(node = %self.id(), %cluster, "FORCE-NEW-CLUSTER requested by the operator");
        let log_id = self.call(|tx| Event::ForceNewCluster(cluster, tx)).await??;
        let done = |m: &super::RaftMetrics<N>| {
            m.state == ServerState::Leader
                && index_of(m.committed) >= log_id.index
                && m.membership.as_ref().is_some_and(|s| s.log_id >= Some(log_id))
        };
        // the only voter elects itself at once; only a stop ends the wait early
        let m = self
            .wait(Duration::from_secs(u64::MAX / 4))
            .metrics(done, "leading the new cluster")
            .await
            .map_err(|_| ForceNewClusterError::Fatal(Fatal::Stopped))?;
        Ok(m.membership.expect("waited for a membership"))
    }
}
