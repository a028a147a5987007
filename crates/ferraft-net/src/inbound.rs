//! Which inbound connection is current for each peer.
//!
//! A peer opens a new connection only after it gave up on the previous one, so
//! the newest connection from a node is the live one. Closing the older one
//! frees connections left half-open by a peer that vanished without closing
//! them (power loss, a partition), which would otherwise wait for input forever.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use ferraft::NodeId;
use tokio::sync::Notify;

/// The current inbound connection of every peer, shared by a listener's tasks.
#[derive(Default)]
pub(crate) struct Inbound {
    current: Mutex<HashMap<NodeId, (u64, Arc<Notify>)>>,
    next_connection: AtomicU64,
}

/// One connection's place in [`Inbound`]; it leaves when dropped.
pub(crate) struct Registration {
    inbound: Arc<Inbound>,
    peer: NodeId,
    connection: u64,
    superseded: Arc<Notify>,
}

impl Inbound {
    /// Makes a new connection from `peer` its current one, telling the
    /// previous one (if any) that it is superseded.
    pub(crate) fn register(self: &Arc<Self>, peer: NodeId) -> Registration {
        let connection = self.next_connection.fetch_add(1, Ordering::Relaxed);
        let superseded = Arc::new(Notify::new());
        if let Some((_, previous)) = self.lock().insert(peer, (connection, superseded.clone())) {
            previous.notify_one();
        }
        Registration { inbound: self.clone(), peer, connection, superseded }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<NodeId, (u64, Arc<Notify>)>> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Registration {
    /// Resolves once a newer connection from the same peer has registered.
    pub(crate) async fn superseded(&self) {
        self.superseded.notified().await;
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut current = self.inbound.lock();
        if current.get(&self.peer).is_some_and(|(connection, _)| *connection == self.connection) {
            current.remove(&self.peer);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_newer_connection_from_the_same_peer_supersedes_the_older() {
        let inbound = Arc::new(Inbound::default());
        let older = inbound.register(NodeId(1));
        let _other_peer = inbound.register(NodeId(2));
        let newer = inbound.register(NodeId(1));
        tokio::time::timeout(Duration::from_secs(5), older.superseded()).await.unwrap();
        assert!(tokio::time::timeout(Duration::from_millis(10), newer.superseded()).await.is_err());
    }

    #[test]
    fn only_the_current_connection_unregisters_its_peer() {
        let inbound = Arc::new(Inbound::default());
        let older = inbound.register(NodeId(1));
        let newer = inbound.register(NodeId(1));
        drop(older);
        assert_eq!(inbound.lock().get(&NodeId(1)).map(|(connection, _)| *connection), Some(newer.connection));
        drop(newer);
        assert!(inbound.lock().is_empty());
    }
}
