//! What every handler shares.

use std::path::PathBuf;

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
    /// The WAL dir, where the node's saved snapshot is read for a backup.
    pub wal_dir: Option<PathBuf>,
    /// Set when the node shuts down: ends the streams that would otherwise
    /// hold the graceful shutdown open.
    closing: tokio::sync::watch::Sender<bool>,
}

impl Ctx {
    /// A context for `raft`.
    pub fn new(raft: KvRaft, store: KvStore, me: KvNode) -> Self {
        let client = reqwest::Client::builder().no_proxy().build().expect("a plain HTTP client builds");
        Self {
            id: raft.id(),
            raft,
            store,
            me,
            client,
            http: HttpMetrics::default(),
            wal_dir: None,
            closing: tokio::sync::watch::Sender::new(false),
        }
    }

    /// Reads backups from the WAL in `dir`.
    pub fn with_wal_dir(mut self, dir: PathBuf) -> Self {
        self.wal_dir = Some(dir);
        self
    }

    /// Ends every open stream (the node is shutting down).
    pub fn close_streams(&self) {
        self.closing.send_replace(true);
    }

    /// Changes to `true` when the node shuts down.
    pub(super) fn closing(&self) -> tokio::sync::watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// Fails unless this node is part of a cluster. By the role alone: right
    /// after a restart the role is known before the first published metrics
    /// carry the membership.
    pub(super) fn require_initialized(&self) -> Result<(), ApiError> {
        match self.raft.metrics().borrow().state {
            ServerState::Uninitialized => Err(ApiError::not_initialized()),
            // it would forward to a leader it no longer follows, or serve a
            // state that no longer advances
            ServerState::Removed => Err(ApiError::not_member()),
            _ => Ok(()),
        }
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
