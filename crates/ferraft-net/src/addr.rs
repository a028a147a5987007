//! Where a node's transport listens.

use ferraft::BasicNode;

/// Gives the transport a node's socket address. Implement it for your own node
/// descriptor (e.g. one that also carries an API address).
pub trait NodeAddr {
    /// `host:port` of the node's Raft transport listener.
    fn raft_addr(&self) -> &str;
}

impl NodeAddr for BasicNode {
    fn raft_addr(&self) -> &str {
        &self.addr
    }
}
