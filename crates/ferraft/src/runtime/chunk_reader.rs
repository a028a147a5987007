//! Snapshot chunks read off the host, for a node being sent a snapshot.
//!
//! Reading a 1 MiB chunk from the snapshot file (and filling a fresh buffer
//! for it) took 15–27% of a leader's Raft thread while it streamed a
//! snapshot to a learner, in front of its clients' writes. The host now
//! hands each read to its [`JobSpawner`](super::JobSpawner) and sends the
//! chunk when it comes back through [`NodeHost::snapshot_chunk_read`]. A
//! runtime keeps the reads of one node in order (the learner takes chunks
//! in order only); one out of order costs a resend, never a wrong snapshot.

use std::sync::Arc;

use super::host::NodeHost;
use super::reply::ReplyKind;
use crate::message::{Message, MessageBody, SnapshotChunk};
use crate::node::{Node, NodeId};
use crate::snapshot::Snapshot;
use crate::state_machine::StateMachine;
use crate::storage::StorageError;
use crate::vote::Vote;

/// One chunk to read for node `to`, ready to run on any thread.
pub struct ChunkTask<N> {
    to: NodeId,
    snapshot: Arc<Snapshot<N>>,
    offset: u64,
    chunk_bytes: usize,
    vote: Vote,
    seq: u64,
    leader_node: Option<N>,
}

impl<N> std::fmt::Debug for ChunkTask<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkTask").field("to", &self.to).field("offset", &self.offset).finish_non_exhaustive()
    }
}

impl<N: Node> ChunkTask<N> {
    /// Reads the chunk.
    pub fn run(self) -> ChunkRead<N> {
        let Self { to, snapshot, offset, chunk_bytes, vote, seq, leader_node } = self;
        let result = SnapshotChunk::cut(&snapshot, offset, chunk_bytes, vote, seq, leader_node)
            .map_err(|e| StorageError::new("reading a snapshot chunk", e));
        ChunkRead { to, result }
    }
}

/// A chunk a [`ChunkTask`] read, for the host to send.
pub struct ChunkRead<N> {
    to: NodeId,
    result: Result<SnapshotChunk<N>, StorageError>,
}

impl<N> std::fmt::Debug for ChunkRead<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkRead").field("to", &self.to).finish_non_exhaustive()
    }
}

impl<SM: StateMachine, N: Node, R: ReplyKind> NodeHost<SM, N, R> {
    /// Starts reading the chunk at `offset` of `snapshot` for `to`.
    pub(crate) fn start_chunk_read(
        &mut self,
        to: NodeId,
        snapshot: Arc<Snapshot<N>>,
        offset: u64,
        seq: u64,
        vote: Vote,
    ) {
        let leader_node = self.engine.own_node().cloned();
        let chunk_bytes = self.engine.config_chunk_bytes();
        self.spawner.spawn_chunk_read(ChunkTask { to, snapshot, offset, chunk_bytes, vote, seq, leader_node });
    }

    /// Sends a chunk read off the host, unless this node left the
    /// leadership it was read for (the receiver would refuse it anyway). A
    /// snapshot that cannot be read is a storage failure and stops the node,
    /// as when the host read chunks itself.
    pub fn snapshot_chunk_read(&mut self, read: ChunkRead<N>) {
        match read.result {
            Ok(chunk) if chunk.vote == self.engine.vote() => {
                let message = Message { envelope: self.engine.envelope(read.to), body: MessageBody::Snapshot(chunk) };
                self.send(message);
            }
            Ok(_) => {}
            Err(error) => {
                self.fail(error);
            }
        }
    }
}
