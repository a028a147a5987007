//! Plugs the transport into a ferraft node: the node is the transport's
//! inbox (see the crate docs for the wiring).

use ferraft::{ClusterId, Message, Node, NodeId, Raft, StateMachine};

use crate::handshake::Rejection;
use crate::inbox::Inbox;

impl<SM: StateMachine, N: Node> Inbox<SM::Command, N> for Raft<SM, N> {
    fn deliver(&self, message: Message<SM::Command, N>) {
        self.receive(message);
    }

    fn unreachable(&self, peer: NodeId) {
        self.report_unreachable(peer);
    }

    fn undelivered(&self, peer: NodeId, forward_ids: Vec<u64>) {
        self.report_undelivered(peer, forward_ids);
    }

    fn refused(&self, peer: NodeId, rejection: Rejection) {
        self.report_refused(peer, rejection.as_refusal());
    }

    fn cluster_id(&self) -> Option<ClusterId> {
        Raft::cluster_id(self)
    }
}
