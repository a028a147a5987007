//! One peer's writer task: connect, handshake, write the queue in batches,
//! reconnect with capped exponential backoff.
//!
//! Each peer has its own task and queue, so a dead or slow peer costs the
//! others nothing. A peer counts as unreachable from the first failed attempt
//! to connect or handshake until a handshake succeeds: the outage is logged
//! and reported to the node once, and messages queued meanwhile are discarded
//! (they would be stale on arrival; Raft resends). An established connection
//! that breaks is a transient error: reconnect promptly, keep the queue.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use ferraft::{AppData, Message, Node, NodeId};
use tokio::io::AsyncReadExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::runtime::Handle;
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use crate::backoff::Backoff;
use crate::config::NetConfig;
use crate::error::NetError;
use crate::handshake::{self, Hello};
use crate::inbox::{self, InboxSlot};
use crate::out_batch::OutBatch;
use crate::queue::OutQueue;

/// The state a peer's senders and its writer task share.
pub(crate) struct PeerShared<C, N> {
    /// Messages waiting to be written.
    pub(crate) queue: OutQueue<C, N>,
    /// Whether a handshaken connection is up right now.
    pub(crate) connected: AtomicBool,
}

/// The handle the network keeps per peer. Dropping it stops the writer task.
pub(crate) struct Peer<C, N> {
    /// The address the writer connects to; a changed address needs a new peer.
    pub(crate) addr: String,
    /// Shared with the writer task.
    pub(crate) shared: Arc<PeerShared<C, N>>,
}

impl<C: AppData, N: Node> Peer<C, N> {
    /// Starts the writer task for `peer` at `addr` on `runtime`.
    pub(crate) fn spawn(
        runtime: &Handle,
        peer: NodeId,
        addr: String,
        config: Arc<NetConfig>,
        inbox: Arc<InboxSlot<C, N>>,
    ) -> Self {
        let queue = OutQueue::new(config.control_queue_bytes, config.peer_queue_bytes);
        let shared = Arc::new(PeerShared { queue, connected: AtomicBool::new(false) });
        let writer = Writer {
            peer,
            addr: addr.clone(),
            backoff: Backoff::new(config.backoff_min, config.backoff_max),
            config,
            shared: shared.clone(),
            inbox,
            batch: Vec::new(),
            out: OutBatch::default(),
        };
        runtime.spawn(writer.run());
        Self { addr, shared }
    }
}

impl<C, N> Drop for Peer<C, N> {
    fn drop(&mut self) {
        self.shared.queue.close();
    }
}

/// The writer task's state.
struct Writer<C, N> {
    peer: NodeId,
    addr: String,
    config: Arc<NetConfig>,
    shared: Arc<PeerShared<C, N>>,
    inbox: Arc<InboxSlot<C, N>>,
    backoff: Backoff,
    /// Reused between batches: messages taken from the queue.
    batch: Vec<Message<C, N>>,
    /// Reused between batches: the encoded frames of one write.
    out: OutBatch,
}

impl<C: AppData, N: Node> Writer<C, N> {
    async fn run(mut self) {
        let mut outage_since: Option<Instant> = None;
        while !self.shared.queue.is_closed() {
            let discard_while_waiting = match self.connect().await {
                Ok(stream) => {
                    self.on_connected(outage_since.take());
                    self.shared.connected.store(true, Ordering::Release);
                    let result = self.pump(stream).await;
                    self.shared.connected.store(false, Ordering::Release);
                    match result {
                        Ok(()) => return,
                        Err(error) => info!(peer = %self.peer, addr = %self.addr, %error, "connection to peer lost"),
                    }
                    false
                }
                Err(error) => {
                    if outage_since.is_none() {
                        outage_since = Some(Instant::now());
                        self.on_outage(&error);
                    } else {
                        debug!(peer = %self.peer, addr = %self.addr, %error, "peer still unreachable");
                    }
                    true
                }
            };
            let delay = self.backoff.next_delay();
            if !self.pause(delay, discard_while_waiting).await {
                return;
            }
            // An unreachable peer is retried only when there is something to
            // send: a node that left the cluster is not dialled forever.
            if discard_while_waiting && !self.wait_for_message().await {
                return;
            }
        }
    }

    fn on_connected(&mut self, outage_since: Option<Instant>) {
        self.backoff.reset();
        match outage_since {
            Some(since) => {
                info!(peer = %self.peer, addr = %self.addr, down_ms = since.elapsed().as_millis() as u64, "peer reachable again")
            }
            None => debug!(peer = %self.peer, addr = %self.addr, "connected to peer"),
        }
    }

    fn on_outage(&self, error: &NetError) {
        warn!(peer = %self.peer, addr = %self.addr, %error, "peer unreachable; backing off");
        let dropped = self.discard_queued();
        if dropped > 0 {
            debug!(peer = %self.peer, dropped, "discarded messages queued for an unreachable peer");
        }
        if let Some(inbox) = inbox::current(&self.inbox) {
            match error {
                NetError::Rejected(rejection) => inbox.refused(self.peer, *rejection),
                _ => inbox.unreachable(self.peer),
            }
        }
    }

    /// Drops what is queued; the node hears which forwarded writes never left.
    fn discard_queued(&self) -> usize {
        let (dropped, forwards) = self.shared.queue.discard_reporting();
        if !forwards.is_empty() {
            if let Some(inbox) = inbox::current(&self.inbox) {
                inbox.undelivered(self.peer, forwards);
            }
        }
        dropped
    }

    /// Opens a connection and completes the handshake.
    async fn connect(&self) -> Result<TcpStream, NetError> {
        let unreachable = |source| NetError::Unreachable { peer: self.peer, addr: self.addr.clone(), source };
        let attempt = tokio::time::timeout(self.config.connect_timeout, TcpStream::connect(self.addr.as_str()));
        let mut stream = match attempt.await {
            Err(_elapsed) => return Err(unreachable(std::io::ErrorKind::TimedOut.into())),
            Ok(Err(source)) => return Err(unreachable(source)),
            Ok(Ok(stream)) => stream,
        };
        // Batching already coalesces writes; Nagle would only add latency.
        stream.set_nodelay(true)?;
        let local_cluster = inbox::local_cluster(&self.config, inbox::current(&self.inbox).as_deref());
        let hello = Hello::new(local_cluster, self.config.node_id, self.peer);
        handshake::offer(&mut stream, &mut BytesMut::new(), hello, self.config.handshake_timeout).await?;
        Ok(stream)
    }

    /// Writes queued messages until the queue closes (`Ok`) or the connection
    /// fails. The read half is watched so a peer that closes is noticed at
    /// once, not at the next write.
    async fn pump(&mut self, stream: TcpStream) -> Result<(), NetError> {
        let (mut reader, mut writer) = stream.into_split();
        loop {
            if !self.write_pending(&mut writer).await? {
                return Ok(());
            }
            // a close first: what is queued then never goes into a connection
            // the peer already left, so the node can be told it was not sent
            tokio::select! {
                biased;
                closed = watch_for_close(&mut reader) => return Err(closed),
                () = self.shared.queue.wait() => {}
            }
        }
    }

    /// Writes batches until the queue is empty. Returns false once it closed.
    async fn write_pending(&mut self, writer: &mut OwnedWriteHalf) -> Result<bool, NetError> {
        loop {
            if !self.shared.queue.take_batch(self.config.max_batch_bytes, &mut self.batch) {
                return Ok(false);
            }
            if self.batch.is_empty() {
                return Ok(true);
            }
            self.encode_batch();
            let write = tokio::time::timeout(self.config.write_timeout, self.out.write_to(writer)).await;
            self.out.clear();
            write.map_err(|_elapsed| NetError::WriteTimeout)??;
        }
    }

    /// Encodes the batch into `out`, dropping (and logging) any message that
    /// cannot be encoded rather than the whole batch.
    fn encode_batch(&mut self) {
        for message in self.batch.drain(..) {
            if let Err(error) = self.out.push(&message, self.config.max_frame_bytes) {
                error!(peer = %self.peer, %error, "dropping a message that cannot be encoded");
            }
        }
    }

    /// Waits `delay` before the next attempt. While the peer is unreachable,
    /// what gets queued meanwhile is discarded. Returns false if the queue closed.
    async fn pause(&self, delay: Duration, discard: bool) -> bool {
        let deadline = Instant::now() + delay;
        loop {
            if discard {
                self.discard_queued();
            }
            if self.shared.queue.is_closed() {
                return false;
            }
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => return !self.shared.queue.is_closed(),
                () = self.shared.queue.wait() => {}
            }
        }
    }

    /// Waits until a message is queued. Returns false if the queue closed.
    async fn wait_for_message(&self) -> bool {
        loop {
            if self.shared.queue.is_closed() {
                return false;
            }
            if !self.shared.queue.is_empty() {
                return true;
            }
            self.shared.queue.wait().await;
        }
    }
}

/// Resolves when the peer closes its side or sends anything: after the
/// handshake the accepting side never writes, so any input is a violation.
async fn watch_for_close(reader: &mut OwnedReadHalf) -> NetError {
    let mut byte = [0u8; 1];
    match reader.read(&mut byte).await {
        Ok(0) => NetError::Closed,
        Ok(_) => NetError::UnexpectedData,
        Err(error) => NetError::Io(error),
    }
}
