//! The transport handle: [`ferraft::Network`] over TCP.

use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use ferraft::{AppData, Message, Network, Node, NodeId};
use tokio::runtime::Handle;
use tokio::task::{AbortHandle, JoinHandle};
use tracing::{error, info, trace};

use crate::addr::NodeAddr;
use crate::config::NetConfig;
use crate::error::NetConfigError;
use crate::frame::{frame_len, LENGTH_PREFIX_BYTES};
use crate::inbox::{Inbox, InboxSlot};
use crate::listener;
use crate::peer::{Peer, PeerShared};
use crate::queue::Pushed;

/// A snapshot of one peer's outbound state, for metrics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerStats {
    /// A handshaken connection is up.
    pub connected: bool,
    /// Encoded bytes waiting in the peer's queue.
    pub queued_bytes: usize,
    /// Messages dropped so far: queue full, or queued while the peer was unreachable.
    pub dropped_messages: u64,
}

/// Sends Raft messages over TCP, one persistent connection and writer task per
/// peer, and accepts peers' connections with [`TcpNetwork::serve`].
///
/// Everything runs on the runtime given at construction; `send` may be called
/// from any thread and never blocks.
pub struct TcpNetwork<C, N> {
    config: Arc<NetConfig>,
    runtime: Handle,
    peers: Mutex<HashMap<NodeId, Peer<C, N>>>,
    inbox: Arc<InboxSlot<C, N>>,
    listeners: Mutex<Vec<AbortHandle>>,
}

impl<C: AppData, N: Node + NodeAddr> TcpNetwork<C, N> {
    /// A transport for node `config.node_id`, spawning its tasks on `runtime`.
    pub fn new(config: NetConfig, runtime: Handle) -> Result<Self, NetConfigError> {
        config.validate()?;
        Ok(Self {
            config: Arc::new(config),
            runtime,
            peers: Mutex::new(HashMap::new()),
            inbox: Arc::new(RwLock::new(None)),
            listeners: Mutex::new(Vec::new()),
        })
    }

    /// Listens on `listen_addr` (port 0 picks a free port) and hands every
    /// message addressed to this node to `inbox`, which from now on also hears
    /// of unreachable peers. Returns the bound address and the accept task;
    /// abort it (or drop the network) to stop listening and close its connections.
    pub fn serve(
        &self,
        listen_addr: impl ToSocketAddrs,
        inbox: Arc<dyn Inbox<C, N>>,
    ) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
        let listener = std::net::TcpListener::bind(listen_addr)?;
        let bound = listener.local_addr()?;
        *self.inbox.write().unwrap_or_else(PoisonError::into_inner) = Some(inbox.clone());
        let task = listener::spawn(&self.runtime, listener, self.config.clone(), inbox)?;
        lock(&self.listeners).push(task.abort_handle());
        info!(node = %self.config.node_id, addr = %bound, "raft transport listening");
        Ok((bound, task))
    }

    /// The settings in force.
    pub fn config(&self) -> &NetConfig {
        &self.config
    }

    /// The outbound state of `peer`, if anything was ever sent to it.
    pub fn peer_stats(&self, peer: NodeId) -> Option<PeerStats> {
        let peers = lock(&self.peers);
        let shared = &peers.get(&peer)?.shared;
        let (queued_bytes, dropped_messages) = shared.queue.usage();
        Some(PeerStats { connected: shared.connected.load(Ordering::Acquire), queued_bytes, dropped_messages })
    }

    /// Closes the connection to `peer` and drops what is queued for it, e.g.
    /// after it left the cluster. A later `send` to it reconnects.
    pub fn forget_peer(&self, peer: NodeId) {
        lock(&self.peers).remove(&peer);
    }

    /// The queue of peer `id` at `addr`, starting its writer on first use or
    /// when its address changed.
    fn peer(&self, id: NodeId, addr: &str) -> Arc<PeerShared<C, N>> {
        let mut peers = lock(&self.peers);
        if let Some(peer) = peers.get(&id) {
            if peer.addr == addr {
                return peer.shared.clone();
            }
            info!(peer = %id, old = %peer.addr, new = %addr, "peer address changed; reconnecting");
        }
        let peer = Peer::spawn(&self.runtime, id, addr.to_owned(), self.config.clone(), self.inbox.clone());
        let shared = peer.shared.clone();
        // Replacing the old handle closes its queue and ends its writer.
        peers.insert(id, peer);
        shared
    }
}

impl<C: AppData, N: Node + NodeAddr> Network<C, N> for TcpNetwork<C, N> {
    fn send(&self, target: &N, message: Message<C, N>) {
        let to = message.envelope.to;
        if to == self.config.node_id {
            error!(node = %to, addr = target.raft_addr(), "refusing to send a message to this node itself");
            return;
        }
        let frame_bytes = match frame_len(&message) {
            Ok(frame_bytes) => frame_bytes,
            Err(error) => {
                error!(peer = %to, %error, "dropping a message that cannot be encoded");
                return;
            }
        };
        if frame_bytes - LENGTH_PREFIX_BYTES > self.config.max_frame_bytes {
            error!(
                peer = %to,
                frame_bytes,
                max = self.config.max_frame_bytes,
                "dropping a message above max_frame_bytes"
            );
            return;
        }
        let forward = crate::queue::forward_write_id(&message);
        match self.peer(to, target.raft_addr()).queue.push(message, frame_bytes) {
            Pushed::Queued => return,
            Pushed::Full => trace!(peer = %to, frame_bytes, "peer queue full; message dropped"),
            Pushed::Closed => trace!(peer = %to, "peer is shutting down; message dropped"),
        }
        if let (Some(id), Some(inbox)) = (forward, crate::inbox::current(&self.inbox)) {
            inbox.undelivered(to, vec![id]);
        }
    }
}

impl<C, N> Drop for TcpNetwork<C, N> {
    fn drop(&mut self) {
        for listener in lock(&self.listeners).drain(..) {
            listener.abort();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded maps stay consistent even if a holder panicked.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
