//! Where inbound messages go.

use ferraft::{AppData, ClusterId, Message, Node, NodeId};

use crate::config::NetConfig;
use crate::handshake::Rejection;

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
    /// `peer` answered but refused this node at the handshake (another
    /// cluster, another node at its address; called once per outage). By
    /// default the same as [`Inbox::unreachable`].
    fn refused(&self, peer: NodeId, rejection: Rejection) {
        let _ = rejection;
        self.unreachable(peer);
    }
    /// Forwarded writes (`MessageBody::ForwardWrite` ids) to `peer` were
    /// dropped before they were written to any connection: nothing was
    /// proposed, and the node may say so. By default ignored (the node then
    /// answers "outcome unknown" when no answer comes).
    fn undelivered(&self, peer: NodeId, forward_ids: Vec<u64>) {
        let _ = (peer, forward_ids);
    }
    /// The local node's cluster now, when `NetConfig::cluster_id` is 0: it
    /// may be learnt late (at initialize, or from the first leader). `None`
    /// (the default): no cluster yet, so peers of any cluster are let in.
    fn cluster_id(&self) -> Option<ClusterId> {
        None
    }
}

/// The cluster this transport speaks for: the fixed `NetConfig::cluster_id`,
/// else the inbox's current one; 0 for none yet.
pub(crate) fn local_cluster<C: AppData, N: Node>(config: &NetConfig, inbox: Option<&dyn Inbox<C, N>>) -> u64 {
    match config.cluster_id {
        0 => ClusterId::wire(inbox.and_then(|inbox| inbox.cluster_id())),
        fixed => fixed,
    }
}

/// The inbox of a transport, set when it starts serving; writers read it to
/// report unreachable peers. Empty until then, so reports are only logged.
pub(crate) type InboxSlot<C, N> = std::sync::RwLock<Option<std::sync::Arc<dyn Inbox<C, N>>>>;

/// The inbox currently in `slot`, if any.
pub(crate) fn current<C: AppData, N: Node>(slot: &InboxSlot<C, N>) -> Option<std::sync::Arc<dyn Inbox<C, N>>> {
    slot.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
}
