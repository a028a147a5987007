//! Where inbound messages go.

use ferraft::{AppData, Message, Node, NodeId};

/// The local node, as the transport sees it. Implemented for the Raft handle;
/// tests implement it to collect messages.
///
/// Both methods are called from transport tasks and must not block: hand the
/// work to the node (e.g. through a channel) and return.
pub trait Inbox<C: AppData, N: Node>: Send + Sync + 'static {
    /// A message addressed to this node arrived.
    fn deliver(&self, message: Message<C, N>);
    /// `peer` cannot be reached (called once per outage): the leader should
    /// stop streaming to it and probe slowly until it answers again.
    fn unreachable(&self, peer: NodeId);
}

/// The inbox of a transport, set when it starts serving; writers read it to
/// report unreachable peers. Empty until then, so reports are only logged.
pub(crate) type InboxSlot<C, N> = std::sync::RwLock<Option<std::sync::Arc<dyn Inbox<C, N>>>>;

/// The inbox currently in `slot`, if any.
pub(crate) fn current<C: AppData, N: Node>(slot: &InboxSlot<C, N>) -> Option<std::sync::Arc<dyn Inbox<C, N>>> {
    slot.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
}
