//! Why a peer refused to talk to this node.

use crate::cluster_id::ClusterId;
use crate::node::NodeId;

/// A peer answered, but is not the node this one meant to reach: the
/// transport's handshake (or the peer itself) said so. Reported with
/// [`crate::Raft::report_refused`]; shown per peer in
/// [`crate::RaftMetrics::refused_peers`] until the peer answers normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PeerRefusal {
    /// The peer belongs to another cluster: it was initialized on its own or
    /// added to another cluster. It keeps its cluster; to add it here, wipe
    /// its data dir first.
    #[error(
        "it belongs to cluster {theirs}, not to {}: it was initialized apart or joined another cluster; \
         to add it here, stop it, wipe its data dir and start it again",
        ours.map_or("this cluster".to_string(), |ours| format!("this cluster {ours}"))
    )]
    OtherCluster {
        /// The peer's cluster.
        theirs: ClusterId,
        /// This node's cluster, if it has one.
        ours: Option<ClusterId>,
    },
    /// The address leads to another node: the membership records a wrong address.
    #[error("its address leads to node {reached}: fix the address with SetNodes")]
    OtherNode {
        /// The node that answered.
        reached: NodeId,
    },
    /// The peer speaks an incompatible protocol version.
    #[error("it speaks an incompatible protocol version")]
    Incompatible,
}
