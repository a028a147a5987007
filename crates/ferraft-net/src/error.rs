//! Transport errors.
//!
//! They never reach Raft (`send` cannot fail); they decide what the peer writer
//! does next and what gets logged. The split that matters is
//! [`NetError::is_unreachable`]: an unreachable peer is backed off and reported
//! once, a transient failure is retried at once.

use std::io;

use ferraft::NodeId;

use crate::handshake::Rejection;

/// A frame that cannot be encoded or decoded. The connection carrying it is
/// closed: after a bad frame the stream position can no longer be trusted.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The length prefix exceeds the configured bound; a corrupt or hostile
    /// stream must not make the reader allocate without limit.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// The announced length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The payload is not a valid encoding of the expected type.
    #[error("malformed frame: {0}")]
    Decode(postcard::Error),
    /// The payload decoded but left bytes over: the sender and receiver disagree
    /// on the format.
    #[error("frame has {0} trailing bytes")]
    TrailingBytes(usize),
    /// The value could not be encoded (the sender drops that one message).
    #[error("cannot encode frame: {0}")]
    Encode(postcard::Error),
}

/// Why a connection to a peer failed or ended.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// Nothing answered at the peer's address (refused, timed out, no such
    /// host). The writer backs off and reports the peer unreachable once.
    #[error("peer {peer} at {addr} is unreachable: {source}")]
    Unreachable {
        /// The peer.
        peer: NodeId,
        /// The address tried.
        addr: String,
        /// What the operating system said.
        source: io::Error,
    },
    /// The process at the peer's address is not the node we meant (or not in
    /// our cluster). Usually a wrong address in the membership: back off.
    #[error("handshake rejected: {0}")]
    Rejected(Rejection),
    /// The peer accepted the connection but did not finish the handshake in time.
    #[error("handshake timed out")]
    HandshakeTimeout,
    /// The peer stopped reading; the connection is abandoned and rebuilt.
    #[error("write timed out")]
    WriteTimeout,
    /// The other side closed the connection.
    #[error("connection closed by peer")]
    Closed,
    /// The other side sent something the protocol does not allow here.
    #[error("protocol violation: unexpected data")]
    UnexpectedData,
    /// A frame was bad; the connection is closed.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The connection broke; retry at once.
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl NetError {
    /// True when the peer should be backed off and reported to Raft as
    /// unreachable; false for a transient failure of an established connection.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Self::Unreachable { .. } | Self::Rejected(_) | Self::HandshakeTimeout)
    }
}

/// A [`crate::NetConfig`] that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetConfigError {
    /// A limit that must be positive is zero.
    #[error("{name} must be greater than zero")]
    Zero {
        /// The setting.
        name: &'static str,
    },
    /// The frame limit does not fit the 32-bit length prefix.
    #[error("max_frame_bytes ({0}) must fit in a u32")]
    FrameTooLarge(usize),
    /// The bulk queue could never hold one maximal frame, so large messages
    /// (snapshot chunks) would always be dropped.
    #[error("peer_queue_bytes ({queue_bytes}) must be at least max_frame_bytes ({max_frame_bytes})")]
    QueueSmallerThanFrame {
        /// The bulk queue bound.
        queue_bytes: usize,
        /// The frame bound.
        max_frame_bytes: usize,
    },
    /// The backoff range is inverted.
    #[error("backoff_min ({min_ms} ms) must not exceed backoff_max ({max_ms} ms)")]
    BackoffRange {
        /// The minimum.
        min_ms: u128,
        /// The maximum.
        max_ms: u128,
    },
}
