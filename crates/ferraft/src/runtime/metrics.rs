//! What a node reports about itself, and helpers to wait for a condition.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::watch;

use crate::cluster_id::ClusterId;
use crate::engine::{CatchUpStall, ServerState};
use crate::log_id::LogId;
use crate::membership::StoredMembership;
use crate::node::{LogIndex, NodeId, Term};
use crate::peer_refusal::PeerRefusal;
use crate::vote::Vote;

/// A follower's replication state as seen by the leader.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReplicationMetrics {
    /// The last entry known to match on the follower.
    pub matched: Option<LogId>,
    /// The follower's log went backwards; replication to it is refused.
    pub reverted: bool,
    /// Entries the leader holds that the follower does not.
    pub lag_entries: u64,
    /// Their encoded size in bytes (estimated for entries the leader purged).
    pub lag_bytes: u64,
    /// Entries per second the follower gained over the last few seconds.
    pub rate_entries_per_s: f64,
    /// When it should hold the leader's current log at that rate; `None`
    /// while it gains nothing.
    pub eta_ms: Option<u64>,
    /// The snapshot streaming to it, if one is.
    pub snapshot: Option<SnapshotTransfer>,
    /// Why its catch-up is stuck, if it is.
    pub stall: Option<CatchUpStall>,
    /// Entries it was sent that the leader read back from its log store
    /// (it lagged behind the in-memory cache), under this leadership.
    pub entries_from_store: u64,
    /// Snapshot transfers started to it under this leadership.
    pub snapshots_started: u64,
}

/// A snapshot on its way to a follower.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotTransfer {
    /// Bytes the follower acknowledged.
    pub bytes_sent: u64,
    /// The snapshot's size.
    pub bytes_total: u64,
    /// Every byte arrived and the follower is installing it.
    pub installing: bool,
}

/// A snapshot of a node's state, published on every change.
#[derive(Debug, Clone, PartialEq)]
pub struct RaftMetrics<N> {
    /// This node.
    pub id: NodeId,
    /// Its cluster; `None` until it is initialized or a leader reaches it.
    pub cluster_id: Option<ClusterId>,
    /// Its incarnation (see [`crate::incarnation`]); 0 when its store keeps none.
    pub incarnation: u64,
    /// Its role.
    pub state: ServerState,
    /// The current term.
    pub current_term: Term,
    /// The current vote.
    pub vote: Vote,
    /// The leader, if known.
    pub current_leader: Option<NodeId>,
    /// The last log index.
    pub last_log_index: LogIndex,
    /// The last committed log id.
    pub committed: Option<LogId>,
    /// The last applied log id.
    pub last_applied: Option<LogId>,
    /// The last snapshot's log id.
    pub snapshot: Option<LogId>,
    /// The last purged log id.
    pub purged: Option<LogId>,
    /// The membership in force (the last in the log).
    pub membership: Option<StoredMembership<N>>,
    /// Whether that membership is committed.
    pub membership_committed: bool,
    /// Per-follower progress; on the leader only.
    pub replication: Option<BTreeMap<NodeId, ReplicationMetrics>>,
    /// Peers that refused this node (another cluster, another node at the
    /// address), until they answer normally.
    pub refused_peers: BTreeMap<NodeId, PeerRefusal>,
    /// Set once the node stopped (shutdown or fatal error).
    pub stopped: bool,
    /// The failure that stopped it (a storage error), if one did: a
    /// process hosting the node should say so and exit, not look healthy.
    pub stopped_by: Option<String>,
}

/// Why a wait ended without its condition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WaitError {
    /// The condition did not hold in time.
    #[error("timed out after {timeout:?} waiting for {what}")]
    Timeout {
        /// How long it waited.
        timeout: Duration,
        /// What it waited for.
        what: String,
    },
    /// The node stopped.
    #[error("raft node stopped")]
    Stopped,
}

/// Waits on a node's metrics.
pub struct Wait<N> {
    pub(crate) rx: watch::Receiver<RaftMetrics<N>>,
    pub(crate) timeout: Duration,
}

impl<N: crate::Node> Wait<N> {
    /// Waits until `condition` holds.
    pub async fn metrics(
        &mut self,
        condition: impl Fn(&RaftMetrics<N>) -> bool,
        what: impl Into<String>,
    ) -> Result<RaftMetrics<N>, WaitError> {
        let timeout = self.timeout;
        let wait = async {
            loop {
                {
                    let metrics = self.rx.borrow_and_update();
                    if condition(&metrics) {
                        return Ok(metrics.clone());
                    }
                    if metrics.stopped {
                        return Err(WaitError::Stopped);
                    }
                }
                if self.rx.changed().await.is_err() {
                    return Err(WaitError::Stopped);
                }
            }
        };
        match tokio::time::timeout(timeout, wait).await {
            Ok(result) => result,
            Err(_) => Err(WaitError::Timeout { timeout, what: what.into() }),
        }
    }

    /// Waits until some leader is known; returns its id.
    pub async fn for_leader(&mut self) -> Result<NodeId, WaitError> {
        let m = self.metrics(|m| m.current_leader.is_some(), "a leader").await?;
        Ok(m.current_leader.expect("checked"))
    }

    /// Waits until this node's state machine applied `index`.
    pub async fn applied_at_least(&mut self, index: LogIndex) -> Result<RaftMetrics<N>, WaitError> {
        self.metrics(move |m| m.last_applied.map_or(LogIndex(0), |l| l.index) >= index, format!("applied >= {index}"))
            .await
    }

    /// Waits until this node plays `state`.
    pub async fn state(&mut self, state: ServerState) -> Result<RaftMetrics<N>, WaitError> {
        self.metrics(move |m| m.state == state, format!("state {state:?}")).await
    }

    /// Waits until this node's leader is `leader`.
    pub async fn leader_is(&mut self, leader: NodeId) -> Result<RaftMetrics<N>, WaitError> {
        self.metrics(move |m| m.current_leader == Some(leader), format!("leader {leader}")).await
    }
}
