//! The transport contract.

use crate::entry::AppData;
use crate::message::Message;

/// Delivers messages to peers.
///
/// `send` never blocks and never fails: a transport that cannot deliver drops
/// the message (Raft retries) and, when the peer is down, tells the node with
/// [`crate::Raft::report_unreachable`] so the leader backs off. Messages to one
/// peer should arrive in send order; the protocol stays safe if they do not.
/// Incoming messages go to [`crate::Raft::receive`] of the addressed node.
pub trait Network<C: AppData, N: crate::Node>: Send + Sync + 'static {
    /// Queues `message` for the node described by `target`.
    fn send(&self, target: &N, message: Message<C, N>);
}
