//! Reassembles a snapshot arriving in chunks.

use bytes::{Bytes, BytesMut};

use crate::message::SnapshotChunk;
use crate::snapshot::{Snapshot, SnapshotMeta};

/// The snapshot being received, if any.
pub(crate) struct SnapshotReceiver<N> {
    current: Option<(SnapshotMeta<N>, BytesMut)>,
}

impl<N> Default for SnapshotReceiver<N> {
    fn default() -> Self {
        Self { current: None }
    }
}

/// What a chunk amounts to.
pub(crate) enum ChunkOutcome<N> {
    /// Continue from this offset.
    Continue(u64),
    /// The snapshot is complete.
    Complete(Box<Snapshot<N>>),
}

impl<N: crate::Node> SnapshotReceiver<N> {
    /// Adds a chunk; a chunk at offset 0 (re)starts a transfer, a chunk of
    /// another snapshot or out of order asks the sender to resume where we are.
    pub(crate) fn accept(&mut self, chunk: SnapshotChunk<N>) -> ChunkOutcome<N> {
        if chunk.offset == 0 {
            self.current = Some((chunk.meta.clone(), BytesMut::new()));
        }
        let Some((meta, buffer)) = self.current.as_mut() else { return ChunkOutcome::Continue(0) };
        if *meta != chunk.meta {
            return ChunkOutcome::Continue(0);
        }
        if chunk.offset != buffer.len() as u64 {
            return ChunkOutcome::Continue(buffer.len() as u64);
        }
        buffer.extend_from_slice(&chunk.data);
        if !chunk.done {
            return ChunkOutcome::Continue(buffer.len() as u64);
        }
        let (meta, buffer) = self.current.take().expect("checked above");
        ChunkOutcome::Complete(Box::new(Snapshot { meta, data: Bytes::from(buffer) }))
    }
}
