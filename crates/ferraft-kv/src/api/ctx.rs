//! What every handler shares.

use ferraft::{NodeId, ServerState};

use crate::error::ApiError;
use crate::http_metrics::HttpMetrics;
use crate::kv::{KvNode, KvStore};
use crate::KvRaft;

/// What every handler shares.
pub struct Ctx {
    /// This node's id.
    pub id: NodeId,
    /// The Raft node.
    pub raft: KvRaft,
    /// The local state machine's map.
    pub store: KvStore,
    /// This node's advertised addresses.
    pub me: KvNode,
    /// Client for forwarding to the leader.
    pub client: reqwest::Client,
    /// Responses, relays and latencies, for `/metrics`.
    pub http: HttpMetrics,
}

impl Ctx {
    /// A context for `raft`.
    pub fn new(raft: KvRaft, store: KvStore, me: KvNode) -> Self {
        let client = reqwest::Client::builder().no_proxy().build().expect("a plain HTTP client builds");
        Self { id: raft.id(), raft, store, me, client, http: HttpMetrics::default() }
    }

    /// Fails unless this node is part of a cluster.
    pub(super) fn require_initialized(&self) -> Result<(), ApiError> {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        if m.state == ServerState::Uninitialized || m.membership.is_none() {
            return Err(ApiError::not_initialized());
        }
        Ok(())
    }

    /// The descriptor of `node_id` in the membership in force.
    pub(super) fn member(&self, node_id: NodeId) -> Option<KvNode> {
        if node_id == self.id {
            return Some(self.me.clone());
        }
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        m.membership.as_ref().and_then(|s| s.membership.node(node_id).cloned())
    }
}
