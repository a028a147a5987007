//! The host's snapshots: built on demand or by an off-host job, made
//! current, cut into chunks for a follower, and installed from a leader's.

use std::sync::Arc;

use super::host::NodeHost;
use super::reply::ReplyKind;
use super::snapshot_job::{SnapshotBuilt, SnapshotTask};
use super::snapshot_receiver::ChunkOutcome;
use crate::log_id::index_of;
use crate::message::{Message, MessageBody, SnapshotChunk};
use crate::node::{Node, NodeId};
use crate::snapshot::{Snapshot, SnapshotMeta};
use crate::state_machine::StateMachine;
use crate::storage::StorageError;
use crate::vote::Vote;

impl<SM: StateMachine, N: Node, R: ReplyKind> NodeHost<SM, N, R> {
    /// Where a snapshot taken now stands: the applied log id and the
    /// membership in force there.
    fn snapshot_point(&mut self) -> Result<SnapshotMeta<N>, StorageError> {
        let last_log_id = self.applied;
        let membership = self
            .engine
            .log()
            .membership_at(index_of(last_log_id))
            .cloned()
            .or_else(|| self.engine.membership().cloned());
        let Some(membership) = membership else {
            self.engine.on_snapshot_failed();
            return Err(StorageError::new("building a snapshot", "node is not initialized"));
        };
        Ok(SnapshotMeta { last_log_id, membership })
    }

    /// The current snapshot if it already covers `meta`.
    fn covers(&self, meta: &SnapshotMeta<N>) -> Option<Arc<Snapshot<N>>> {
        self.snapshot.as_ref().filter(|s| index_of(s.meta.last_log_id) >= index_of(meta.last_log_id)).cloned()
    }

    /// Builds and saves a snapshot here, on the host: for an explicit
    /// request and for a follower that needs one when none exists.
    pub(crate) fn build_snapshot(&mut self) -> Result<Arc<Snapshot<N>>, StorageError> {
        let meta = self.snapshot_point()?;
        if let Some(existing) = self.covers(&meta) {
            self.engine.on_snapshot_saved(existing.meta.last_log_id);
            return Ok(existing);
        }
        let data = self.state_machine.snapshot()?;
        self.save_snapshot(Snapshot { meta, data }, false)
    }

    /// Starts a periodic snapshot: the state machine's point-in-time copy is
    /// taken here, encoding and the store's write run off the host (see
    /// [`JobSpawner`](super::JobSpawner)), and
    /// [`snapshot_built`](Self::snapshot_built) makes it current. A big
    /// state used to stall replication for the whole encode and write.
    pub(crate) fn start_snapshot_job(&mut self) -> Result<(), StorageError> {
        if self.snapshot_job_running {
            // The engine hears back when the running one finishes.
            return Ok(());
        }
        let meta = self.snapshot_point()?;
        if let Some(existing) = self.covers(&meta) {
            self.engine.on_snapshot_saved(existing.meta.last_log_id);
            return Ok(());
        }
        let job = self.state_machine.snapshot_job();
        let stager = self.store.snapshot_stager();
        self.snapshot_job_running = true;
        self.spawner.spawn_snapshot(SnapshotTask { meta, job, stager });
        Ok(())
    }

    /// Makes a snapshot built by a spawned job current, unless one installed
    /// meanwhile covers it. A failure stops the node.
    pub fn snapshot_built(&mut self, built: SnapshotBuilt<N>) {
        self.snapshot_job_running = false;
        if let Err(error) = self.finish_snapshot(built) {
            self.fail(error);
        }
    }

    fn finish_snapshot(&mut self, built: SnapshotBuilt<N>) -> Result<(), StorageError> {
        let snapshot = built.result?;
        if let Some(existing) = self.covers(&snapshot.meta) {
            self.engine.on_snapshot_saved(existing.meta.last_log_id);
            return Ok(());
        }
        self.save_snapshot(snapshot, built.staged).map(drop)
    }

    /// Makes `snapshot` the current one: saved by the store (or, when
    /// `staged`, the copy a stager job wrote made current), kept for sending,
    /// and reported to the engine, which then purges the log behind it.
    fn save_snapshot(&mut self, snapshot: Snapshot<N>, staged: bool) -> Result<Arc<Snapshot<N>>, StorageError> {
        if staged {
            self.store.save_staged_snapshot(&snapshot)?;
        } else {
            self.store.save_snapshot(&snapshot)?;
        }
        let snapshot = Arc::new(snapshot);
        self.snapshot = Some(snapshot.clone());
        self.engine.on_snapshot_saved(snapshot.meta.last_log_id);
        Ok(snapshot)
    }

    pub(crate) fn send_snapshot_chunk(
        &mut self,
        to: NodeId,
        offset: u64,
        seq: u64,
        vote: Vote,
    ) -> Result<(), StorageError> {
        let snapshot = match &self.snapshot {
            Some(s) if index_of(s.meta.last_log_id) >= self.engine.snapshot_must_cover() => s.clone(),
            _ => self.build_snapshot()?,
        };
        let leader_node = self.engine.own_node().cloned();
        let chunk = SnapshotChunk::cut(&snapshot, offset, self.engine.config_chunk_bytes(), vote, seq, leader_node);
        let message = Message { envelope: self.engine.envelope(to), body: MessageBody::Snapshot(chunk) };
        self.send(message);
        Ok(())
    }

    pub(crate) fn receive_snapshot_chunk(&mut self, from: NodeId, chunk: SnapshotChunk<N>) -> Result<(), StorageError> {
        // a chunk of a leadership this node has since left behind (a newer vote
        // adopted earlier in the same batch) is answered with no sequence
        // number: echoing it under the new vote would acknowledge the new
        // leader's messages of that number
        let seq = if chunk.vote == self.engine.vote() { chunk.seq } else { 0 };
        let last = chunk.meta.last_log_id;
        match self.receiver.accept(chunk) {
            ChunkOutcome::Continue(next) => self.engine.on_snapshot_chunk_stored(from, last, next, seq),
            ChunkOutcome::Complete(snapshot) => {
                // the transfer is over: say so before the install, which may be long
                let received = snapshot.data.len() as u64;
                self.send(self.engine.snapshot_installing_reply(from, last, received, seq));
                self.store.save_snapshot(&snapshot)?;
                self.state_machine.restore(&snapshot.data)?;
                self.applied = snapshot.meta.last_log_id;
                self.forwards.lost_upto(index_of(self.applied));
                let meta = snapshot.meta.clone();
                self.snapshot = Some(Arc::new(*snapshot));
                self.engine.on_snapshot_installed(from, meta, seq);
            }
        }
        Ok(())
    }
}
