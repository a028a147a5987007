//! The accepting side: one task per inbound connection reads frames and hands
//! messages to the local node.
//!
//! Input from the network is never trusted: the handshake must name this node
//! and cluster, every read is bounded by the frame limit, a bad frame closes
//! the connection, and a message whose envelope is not for this node (or not
//! from the peer that connected) is dropped with a log line.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use ferraft::{AppData, Envelope, Message, Node};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tracing::{debug, warn};

use crate::config::NetConfig;
use crate::error::NetError;
use crate::frame::read_frame;
use crate::handshake::{self, Hello};
use crate::inbound::Inbound;
use crate::inbox::Inbox;

/// Accepts connections until the returned task is aborted; aborting it also
/// closes every connection it accepted.
pub(crate) fn spawn<C: AppData, N: Node>(
    runtime: &tokio::runtime::Handle,
    listener: std::net::TcpListener,
    config: Arc<NetConfig>,
    inbox: Arc<dyn Inbox<C, N>>,
) -> std::io::Result<JoinHandle<()>> {
    listener.set_nonblocking(true)?;
    let _entered = runtime.enter();
    let listener = TcpListener::from_std(listener)?;
    Ok(runtime.spawn(accept_loop(listener, config, inbox)))
}

async fn accept_loop<C: AppData, N: Node>(listener: TcpListener, config: Arc<NetConfig>, inbox: Arc<dyn Inbox<C, N>>) {
    // Owning the connection tasks here ties their lifetime to the listener's.
    let mut connections = JoinSet::new();
    let inbound = Arc::new(Inbound::default());
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, remote)) => {
                    connections.spawn(serve_connection(stream, remote, config.clone(), inbox.clone(), inbound.clone()));
                }
                Err(error) => {
                    // Usually out of file descriptors: pause rather than spin.
                    warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(config.backoff_min).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve_connection<C: AppData, N: Node>(
    mut stream: TcpStream,
    remote: SocketAddr,
    config: Arc<NetConfig>,
    inbox: Arc<dyn Inbox<C, N>>,
    inbound: Arc<Inbound>,
) {
    let _ = stream.set_nodelay(true);
    let mut buf = BytesMut::new();
    let mut local_cluster = crate::inbox::local_cluster(&config, Some(inbox.as_ref()));
    let accepted =
        handshake::accept(&mut stream, &mut buf, local_cluster, config.node_id, config.handshake_timeout).await;
    let hello = match accepted {
        Ok(hello) => hello,
        Err(NetError::Rejected(rejection)) => {
            warn!(%remote, %rejection, "refused a connection: handshake rejected");
            return;
        }
        Err(error) => {
            warn!(%remote, %error, "handshake failed");
            return;
        }
    };
    debug!(peer = %hello.from, %remote, "peer connected");
    let registration = inbound.register(hello.from);
    let superseded = registration.superseded();
    tokio::pin!(superseded);
    let mut misaddressed = 0u64;
    loop {
        // The whole stream stays owned here: the peer reads EOF as "closed".
        let frame = tokio::select! {
            biased;
            () = &mut superseded => {
                debug!(peer = %hello.from, %remote, "closing a connection superseded by a newer one from the same peer");
                return;
            }
            frame = read_frame::<Message<C, N>, _>(&mut stream, &mut buf, config.max_frame_bytes) => frame,
        };
        match frame {
            Ok(message) => match check_envelope(&message.envelope, &hello, &config, {
                if local_cluster == 0 {
                    // learnt late: at initialize, or from the first leader
                    local_cluster = crate::inbox::local_cluster(&config, Some(inbox.as_ref()));
                }
                local_cluster
            }) {
                Ok(()) => inbox.deliver(message),
                Err(OTHER_CLUSTER) => {
                    // accepted while this node had no cluster, which it has
                    // joined since: close, so the peer's reconnect is refused
                    // at the handshake and its node hears why
                    warn!(peer = %hello.from, %remote, envelope = ?message.envelope, local_cluster,
                        "closing a connection of another cluster than the one this node joined");
                    return;
                }
                Err(reason) => {
                    misaddressed += 1;
                    if misaddressed == 1 {
                        warn!(peer = %hello.from, %remote, envelope = ?message.envelope, reason, "dropping misaddressed message");
                    } else {
                        debug!(peer = %hello.from, envelope = ?message.envelope, reason, "dropping misaddressed message");
                    }
                }
            },
            Err(NetError::Closed) => {
                debug!(peer = %hello.from, %remote, "peer closed the connection");
                return;
            }
            Err(error) => {
                warn!(peer = %hello.from, %remote, %error, "closing connection");
                return;
            }
        }
    }
}

/// Why a message's envelope does not fit this connection, if it does not.
/// While this node has no cluster, messages of any cluster pass (the node
/// joins the first leader's); the node itself then drops the others.
/// Why [`check_envelope`] refuses an envelope of another cluster.
const OTHER_CLUSTER: &str = "wrong cluster";

fn check_envelope(
    envelope: &Envelope,
    hello: &Hello,
    config: &NetConfig,
    local_cluster: u64,
) -> Result<(), &'static str> {
    let expect = |ok: bool, reason| if ok { Ok(()) } else { Err(reason) };
    expect(local_cluster == 0 || envelope.cluster_id == local_cluster, OTHER_CLUSTER)?;
    expect(envelope.to == config.node_id, "meant for another node")?;
    expect(envelope.from == hello.from, "sender differs from the connected peer")
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferraft::NodeId;

    fn envelope(cluster_id: u64, from: NodeId, to: NodeId) -> Envelope {
        Envelope { cluster_id, from, to, from_incarnation: 0, to_incarnation: 0 }
    }

    #[test]
    fn an_envelope_for_this_node_from_the_connected_peer_passes() {
        let config = NetConfig::new(7, NodeId(2));
        assert_eq!(
            check_envelope(&envelope(7, NodeId(1), NodeId(2)), &Hello::new(7, NodeId(1), NodeId(2)), &config, 7),
            Ok(())
        );
    }

    #[test]
    fn an_envelope_for_another_node_is_refused() {
        let config = NetConfig::new(7, NodeId(2));
        assert!(check_envelope(&envelope(7, NodeId(1), NodeId(3)), &Hello::new(7, NodeId(1), NodeId(2)), &config, 7)
            .is_err());
    }

    #[test]
    fn an_envelope_from_another_sender_than_the_connected_peer_is_refused() {
        let config = NetConfig::new(7, NodeId(2));
        assert!(check_envelope(&envelope(7, NodeId(3), NodeId(2)), &Hello::new(7, NodeId(1), NodeId(2)), &config, 7)
            .is_err());
    }

    #[test]
    fn an_envelope_of_another_cluster_is_refused() {
        let config = NetConfig::new(7, NodeId(2));
        assert!(check_envelope(&envelope(8, NodeId(1), NodeId(2)), &Hello::new(7, NodeId(1), NodeId(2)), &config, 7)
            .is_err());
    }

    #[test]
    fn a_node_in_no_cluster_yet_lets_any_cluster_through() {
        let config = NetConfig::new(0, NodeId(2));
        assert_eq!(
            check_envelope(&envelope(8, NodeId(1), NodeId(2)), &Hello::new(8, NodeId(1), NodeId(2)), &config, 0),
            Ok(())
        );
    }
}
