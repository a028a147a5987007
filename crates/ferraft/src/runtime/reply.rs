//! How the host answers a caller: a oneshot under tokio, a history recorder
//! in the simulator. The host is generic over the kind, so the simulator
//! checks the very answers (write replies, `LeadershipLost`, membership
//! results) that the runtime gives.

use tokio::sync::oneshot;

/// Takes one answer. Dropping it unanswered means the node stopped.
pub trait Answer<T> {
    /// Delivers the answer; a caller that went away is ignored.
    fn answer(self, value: T);
}

/// A family of reply channels, one type per answer type.
pub trait ReplyKind: 'static {
    /// The channel that carries an answer of type `T`.
    type Reply<T: Send + 'static>: Answer<T>;
}

/// Replies through tokio oneshot channels (the runtime's kind).
#[derive(Debug, Clone, Copy, Default)]
pub struct Oneshot;

impl ReplyKind for Oneshot {
    type Reply<T: Send + 'static> = oneshot::Sender<T>;
}

impl<T> Answer<T> for oneshot::Sender<T> {
    fn answer(self, value: T) {
        let _ = self.send(value);
    }
}
