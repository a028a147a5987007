//! The first exchange on every connection: who is calling whom, in which cluster.
//!
//! A node's address can be wrong (a typo in `SetNodes`, a reused port, a node
//! that replicates to itself). Checking identity once per connection turns
//! such a mistake into a logged, backed-off rejection on both sides instead of
//! one node acting on another's traffic.

use std::time::Duration;

use bytes::BytesMut;
use ferraft::{ClusterId, NodeId, PeerRefusal};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::error::NetError;
use crate::frame::{encode_frame, read_frame};

/// Marks a ferraft transport connection ("FRFT").
pub const PROTOCOL_MAGIC: u32 = u32::from_le_bytes(*b"FRFT");

/// The wire format version; bumped on any incompatible change.
/// Version 2: envelopes carry the sender's and receiver's incarnations,
/// snapshot chunks name the leader's address.
/// Version 3: forwarded writes name the leadership they are handed to;
/// snapshot chunks carry the checksum of the snapshot's bytes (a transfer
/// resumes only onto the same bytes).
/// Version 4: a leader tells a follower it holds its forwarded writes
/// durably (`ForwardOutcome::Flushed`, which a version 3 node cannot decode).
/// Version 5: a probe's answer names a leader the responder knows
/// (`ProbeReply::leader`), which `initialize` needs to refuse a member of a
/// cluster that formed without it.
/// Version 6: that leader is an optional node id (node 0 is a node like any
/// other), where version 5 sent a number with 0 for none.
/// Version 7: a snapshot chunk's metadata carries the remembered change ids
/// (`SnapshotMeta::changes`; whole in the chunk at offset 0 only), which a
/// version 6 node cannot decode.
pub const PROTOCOL_VERSION: u32 = 7;

/// Handshake frames are tiny; anything longer is not a ferraft peer.
const HANDSHAKE_MAX_FRAME_BYTES: usize = 64;

/// The connecting side's first frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// [`PROTOCOL_MAGIC`].
    pub magic: u32,
    /// [`PROTOCOL_VERSION`] of the sender.
    pub version: u32,
    /// The sender's cluster.
    pub cluster_id: u64,
    /// The sending node.
    pub from: NodeId,
    /// The node the sender believes it has reached.
    pub to: NodeId,
}

/// The accepting side's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HelloReply {
    /// Messages may follow.
    Accepted,
    /// The connection will be closed.
    Rejected(Rejection),
}

/// Why a receiver refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Rejection {
    /// Not a ferraft transport, or a wire version this build cannot read.
    #[error("incompatible protocol: magic {magic:#x}, version {version} (receiver speaks version {PROTOCOL_VERSION})")]
    Protocol {
        /// The magic the sender sent.
        magic: u32,
        /// The version the sender sent.
        version: u32,
    },
    /// The two nodes belong to different clusters.
    #[error("sender is in cluster {sender_cluster:016x}, receiver in cluster {receiver_cluster:016x}")]
    WrongCluster {
        /// The sender's cluster.
        sender_cluster: u64,
        /// The receiver's cluster.
        receiver_cluster: u64,
    },
    /// The address leads to another node than the sender meant to reach.
    #[error("sender meant to reach node {expected}, but this is node {actual}")]
    WrongNode {
        /// The node the sender meant to reach.
        expected: NodeId,
        /// The node that answered.
        actual: NodeId,
    },
}

impl Hello {
    /// A hello of the current protocol version.
    pub fn new(cluster_id: u64, from: NodeId, to: NodeId) -> Self {
        Self { magic: PROTOCOL_MAGIC, version: PROTOCOL_VERSION, cluster_id, from, to }
    }

    /// Whether node `local_node` of cluster `local_cluster` should accept this
    /// hello. A cluster id of 0 is a node in no cluster yet: it may talk to
    /// any cluster (it joins the first whose leader reaches it).
    pub fn check(&self, local_cluster: u64, local_node: NodeId) -> Result<(), Rejection> {
        if self.magic != PROTOCOL_MAGIC || self.version != PROTOCOL_VERSION {
            return Err(Rejection::Protocol { magic: self.magic, version: self.version });
        }
        if self.cluster_id != local_cluster && self.cluster_id != 0 && local_cluster != 0 {
            return Err(Rejection::WrongCluster { sender_cluster: self.cluster_id, receiver_cluster: local_cluster });
        }
        if self.to != local_node {
            return Err(Rejection::WrongNode { expected: self.to, actual: local_node });
        }
        Ok(())
    }
}

impl Rejection {
    /// What the connecting side tells its node: who it reached instead.
    pub fn as_refusal(&self) -> PeerRefusal {
        match *self {
            Rejection::WrongCluster { sender_cluster, receiver_cluster } => match ClusterId::new(receiver_cluster) {
                Some(theirs) => PeerRefusal::OtherCluster { theirs, ours: ClusterId::new(sender_cluster) },
                None => PeerRefusal::Incompatible,
            },
            Rejection::WrongNode { actual, .. } => PeerRefusal::OtherNode { reached: actual },
            Rejection::Protocol { .. } => PeerRefusal::Incompatible,
        }
    }
}

/// The connecting side: send `hello`, wait for the verdict.
pub(crate) async fn offer<S>(
    stream: &mut S,
    buf: &mut BytesMut,
    hello: Hello,
    timeout: Duration,
) -> Result<(), NetError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let exchange = async {
        write_one(stream, &hello).await?;
        read_frame::<HelloReply, _>(stream, buf, HANDSHAKE_MAX_FRAME_BYTES).await
    };
    match tokio::time::timeout(timeout, exchange).await {
        Err(_elapsed) => Err(NetError::HandshakeTimeout),
        Ok(Err(error)) => Err(error),
        Ok(Ok(HelloReply::Accepted)) => Ok(()),
        Ok(Ok(HelloReply::Rejected(rejection))) => Err(NetError::Rejected(rejection)),
    }
}

/// The accepting side: read the hello, check it, answer. A rejection is sent
/// to the caller before it is returned, so both sides can log it.
pub(crate) async fn accept<S>(
    stream: &mut S,
    buf: &mut BytesMut,
    local_cluster: u64,
    local_node: NodeId,
    timeout: Duration,
) -> Result<Hello, NetError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let exchange = async {
        let hello = read_frame::<Hello, _>(stream, buf, HANDSHAKE_MAX_FRAME_BYTES).await?;
        match hello.check(local_cluster, local_node) {
            Ok(()) => {
                write_one(stream, &HelloReply::Accepted).await?;
                Ok(hello)
            }
            Err(rejection) => {
                // Best effort: the verdict is ours to log even if it cannot be sent.
                let _ = write_one(stream, &HelloReply::Rejected(rejection)).await;
                Err(NetError::Rejected(rejection))
            }
        }
    };
    tokio::time::timeout(timeout, exchange).await.unwrap_or(Err(NetError::HandshakeTimeout))
}

/// Writes one small frame from its own buffer, so unread input already in the
/// caller's read buffer is kept.
async fn write_one<S, T>(stream: &mut S, value: &T) -> Result<(), NetError>
where
    S: AsyncWrite + Unpin,
    T: Serialize,
{
    let mut out = BytesMut::with_capacity(HANDSHAKE_MAX_FRAME_BYTES);
    encode_frame(&mut out, value, HANDSHAKE_MAX_FRAME_BYTES)?;
    stream.write_all(&out).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_from_the_same_cluster_to_this_node_is_accepted() {
        assert_eq!(Hello::new(7, NodeId(1), NodeId(2)).check(7, NodeId(2)), Ok(()));
    }

    #[test]
    fn hello_from_another_cluster_is_rejected() {
        let rejection = Hello::new(8, NodeId(1), NodeId(2)).check(7, NodeId(2));
        assert_eq!(rejection, Err(Rejection::WrongCluster { sender_cluster: 8, receiver_cluster: 7 }));
    }

    #[test]
    fn a_node_in_no_cluster_yet_talks_to_any_cluster() {
        assert_eq!(Hello::new(0, NodeId(1), NodeId(2)).check(7, NodeId(2)), Ok(()));
        assert_eq!(Hello::new(8, NodeId(1), NodeId(2)).check(0, NodeId(2)), Ok(()));
    }

    #[test]
    fn a_rejection_tells_the_sender_which_cluster_it_reached() {
        let rejection = Hello::new(8, NodeId(1), NodeId(2)).check(7, NodeId(2)).unwrap_err();
        let theirs = ClusterId::new(7).unwrap();
        assert_eq!(rejection.as_refusal(), PeerRefusal::OtherCluster { theirs, ours: ClusterId::new(8) });
    }

    #[test]
    fn hello_meant_for_another_node_is_rejected() {
        assert_eq!(
            Hello::new(7, NodeId(1), NodeId(3)).check(7, NodeId(2)),
            Err(Rejection::WrongNode { expected: NodeId(3), actual: NodeId(2) })
        );
    }

    #[test]
    fn hello_of_another_protocol_version_is_rejected() {
        let hello = Hello { version: PROTOCOL_VERSION + 1, ..Hello::new(7, NodeId(1), NodeId(2)) };
        assert!(matches!(hello.check(7, NodeId(2)), Err(Rejection::Protocol { .. })));
    }

    #[tokio::test]
    async fn both_sides_see_a_rejection() {
        let (mut client, mut server) = tokio::io::duplex(1024);
        let server = tokio::spawn(async move {
            accept(&mut server, &mut BytesMut::new(), 7, NodeId(2), Duration::from_secs(5)).await.map(|_| ())
        });
        let offered =
            offer(&mut client, &mut BytesMut::new(), Hello::new(7, NodeId(1), NodeId(3)), Duration::from_secs(5)).await;
        let expected = Rejection::WrongNode { expected: NodeId(3), actual: NodeId(2) };
        assert!(matches!(offered, Err(NetError::Rejected(r)) if r == expected));
        assert!(matches!(server.await.unwrap(), Err(NetError::Rejected(r)) if r == expected));
    }

    #[tokio::test]
    async fn a_silent_peer_times_out() {
        let (mut client, _server) = tokio::io::duplex(1024);
        let offered =
            offer(&mut client, &mut BytesMut::new(), Hello::new(7, NodeId(1), NodeId(2)), Duration::from_millis(20))
                .await;
        assert!(matches!(offered, Err(NetError::HandshakeTimeout)));
    }
}
