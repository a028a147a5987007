//! Plugs the transport into a ferraft node: the node is the transport's
//! inbox (see the crate docs for the wiring).

use ferraft::{Message, Node, NodeId, Raft, StateMachine};

use crate::inbox::Inbox;

impl<SM: StateMachine, N: Node> Inbox<SM::Command, N> for Raft<SM, N> {
    fn deliver(&self, message: Message<SM::Command, N>) {
        self.receive(message);
    }

    fn unreachable(&self, peer: NodeId) {
        self.report_unreachable(peer);
    }
}
