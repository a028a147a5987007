//! Transport settings.

use std::time::Duration;

use ferraft::NodeId;

use crate::error::NetConfigError;

/// How a [`crate::TcpNetwork`] identifies itself and bounds its resources.
/// Start from [`NetConfig::new`] and change what you need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetConfig {
    /// The cluster this node belongs to; connections from other clusters are
    /// refused. 0: follow the inbox's [`crate::Inbox::cluster_id`] (a ferraft
    /// node learns its cluster at initialize or from its first leader). A
    /// fixed id must equal the node's own (`Config::cluster_id`), or every
    /// message is dropped as another cluster's.
    pub cluster_id: u64,
    /// This node's id; connections and messages meant for another node are refused.
    pub node_id: NodeId,
    /// How long one connection attempt may take before the peer counts as unreachable.
    pub connect_timeout: Duration,
    /// How long the identity exchange on a new connection may take.
    pub handshake_timeout: Duration,
    /// How long one batch write may block; a peer that stops reading is dropped
    /// and reconnected rather than holding its queue forever.
    pub write_timeout: Duration,
    /// First delay before reconnecting to an unreachable peer; it doubles per failure.
    pub backoff_min: Duration,
    /// Cap of the reconnect delay.
    pub backoff_max: Duration,
    /// Largest frame payload sent or accepted; bounds what a reader allocates.
    /// Must exceed the largest snapshot chunk plus a little metadata.
    pub max_frame_bytes: usize,
    /// Bulk bytes (entries, snapshot chunks) packed into one socket write. Small
    /// enough that a heartbeat queued meanwhile waits for at most one such write.
    pub max_batch_bytes: usize,
    /// Bound of the queued bulk messages per peer, in encoded bytes; beyond it
    /// new bulk messages are dropped (Raft retries them).
    pub peer_queue_bytes: usize,
    /// Bound of the queued control messages (votes, heartbeats, replies) per peer.
    pub control_queue_bytes: usize,
}

impl NetConfig {
    /// Defaults suited to a LAN: 1 s connect timeout, 10 ms..1 s backoff, 16 MiB frames.
    pub fn new(cluster_id: u64, node_id: NodeId) -> Self {
        Self {
            cluster_id,
            node_id,
            connect_timeout: Duration::from_secs(1),
            handshake_timeout: Duration::from_secs(1),
            write_timeout: Duration::from_secs(5),
            backoff_min: Duration::from_millis(10),
            backoff_max: Duration::from_secs(1),
            max_frame_bytes: 16 * 1024 * 1024,
            max_batch_bytes: 256 * 1024,
            peer_queue_bytes: 64 * 1024 * 1024,
            control_queue_bytes: 1024 * 1024,
        }
    }

    /// Checks that the settings can work together.
    pub fn validate(&self) -> Result<(), NetConfigError> {
        let positive = [
            ("connect_timeout", !self.connect_timeout.is_zero()),
            ("handshake_timeout", !self.handshake_timeout.is_zero()),
            ("write_timeout", !self.write_timeout.is_zero()),
            ("backoff_min", !self.backoff_min.is_zero()),
            ("max_frame_bytes", self.max_frame_bytes > 0),
            ("max_batch_bytes", self.max_batch_bytes > 0),
            ("control_queue_bytes", self.control_queue_bytes > 0),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, ok)| !ok) {
            return Err(NetConfigError::Zero { name });
        }
        if u32::try_from(self.max_frame_bytes).is_err() {
            return Err(NetConfigError::FrameTooLarge(self.max_frame_bytes));
        }
        if self.peer_queue_bytes < self.max_frame_bytes {
            return Err(NetConfigError::QueueSmallerThanFrame {
                queue_bytes: self.peer_queue_bytes,
                max_frame_bytes: self.max_frame_bytes,
            });
        }
        if self.backoff_min > self.backoff_max {
            return Err(NetConfigError::BackoffRange {
                min_ms: self.backoff_min.as_millis(),
                max_ms: self.backoff_max.as_millis(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(NetConfig::new(1, NodeId(1)).validate(), Ok(()));
    }

    #[test]
    fn a_queue_that_cannot_hold_one_frame_is_refused() {
        let config = NetConfig { peer_queue_bytes: 1024, max_frame_bytes: 2048, ..NetConfig::new(1, NodeId(1)) };
        assert!(matches!(config.validate(), Err(NetConfigError::QueueSmallerThanFrame { .. })));
    }

    #[test]
    fn an_inverted_backoff_is_refused() {
        let config = NetConfig {
            backoff_min: Duration::from_secs(2),
            backoff_max: Duration::from_secs(1),
            ..NetConfig::new(1, NodeId(1))
        };
        assert!(matches!(config.validate(), Err(NetConfigError::BackoffRange { .. })));
    }

    #[test]
    fn a_zero_timeout_is_refused() {
        let config = NetConfig { connect_timeout: Duration::ZERO, ..NetConfig::new(1, NodeId(1)) };
        assert_eq!(config.validate(), Err(NetConfigError::Zero { name: "connect_timeout" }));
    }
}
