//! The host's snapshots: built by an off-host job (periodic, on demand, or
//! for a follower that needs one), made current, cut into chunks for a
//! follower, and installed from a leader's. Nothing here encodes or copies
//! the whole state on the host.

use std::sync::Arc;

use super::host::NodeHost;
use super::install_job::{Decode, InstallTask, SnapshotDecoded};
use super::reply::{Answer, ReplyKind};
use super::snapshot_job::{SnapshotBuilt, SnapshotTask};
use super::snapshot_receiver::{ChunkOutcome, Receiving};
use super::snapshot_waits::{SnapshotResult, WaitingChunk};
use crate::log_id::index_of;
use crate::message::SnapshotChunk;
use crate::node::{Node, NodeId};
use crate::snapshot::{Snapshot, SnapshotMeta};
use crate::snapshot_saver::MadeCurrent;
use crate::state_machine::{SnapshotInstall, StateMachine};
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
        let changes = self.engine.log().changes_upto(index_of(last_log_id));
        Ok(SnapshotMeta { last_log_id, membership, changes })
    }

    /// The current snapshot if it already covers `meta`.
    fn covers(&self, meta: &SnapshotMeta<N>) -> Option<Arc<Snapshot<N>>> {
        self.snapshot.as_ref().filter(|s| index_of(s.meta.last_log_id) >= index_of(meta.last_log_id)).cloned()
    }

    /// Answers `reply` with a snapshot covering what is applied now: the
    /// current one if it does, else one a job builds.
    pub(crate) fn snapshot_when_built(&mut self, reply: R::Reply<SnapshotResult>) {
        let current = self.snapshot.as_ref().and_then(|s| s.meta.last_log_id);
        if self.applied.is_some() && index_of(current) >= index_of(self.applied) {
            // as if saved now: the log behind it is purged as far as it may be now
            self.engine.on_snapshot_saved(current);
            return reply.answer(Ok(current));
        }
        if let Err(error) = self.snapshot_point() {
            return reply.answer(Err(self.fail(error)));
        }
        self.snapshot_waits.callers.push((index_of(self.applied), reply));
        if let Err(error) = self.start_snapshot_job() {
            let fatal = self.fail(error);
            for (_, reply) in self.snapshot_waits.callers.drain(..) {
                reply.answer(Err(fatal.clone()));
            }
        }
    }

    /// Starts a snapshot: the state machine's point-in-time copy is taken
    /// here; its encoding streams into the store's sink off the host (see
    /// [`JobSpawner`](super::JobSpawner)), where the store's saver also makes
    /// it current, and [`snapshot_built`](Self::snapshot_built) takes it.
    pub(crate) fn start_snapshot_job(&mut self) -> Result<(), StorageError> {
        if self.snapshot_job_running {
            // the engine, and whoever waits, hear back when the running one finishes
            return Ok(());
        }
        let meta = self.snapshot_point()?;
        if let Some(existing) = self.covers(&meta) {
            self.engine.on_snapshot_saved(existing.meta.last_log_id);
            self.answer_snapshot_waits();
            return Ok(());
        }
        let sink = self.store.snapshot_sink(&meta)?;
        let saver = self.store.snapshot_saver();
        let writer = self.state_machine.snapshot_writer();
        self.snapshot_job_running = true;
        self.spawner.spawn_snapshot(SnapshotTask { meta, writer, sink, saver });
        Ok(())
    }

    /// Takes a snapshot a spawned job built, and made current unless one
    /// installed meanwhile covers it (a store without a saver leaves that
    /// here). The engine learns of it only now, so the log behind it is
    /// purged only once it is durable. A failure stops the node.
    pub fn snapshot_built(&mut self, built: SnapshotBuilt<N>) {
        self.snapshot_job_running = false;
        if let Err(error) = self.finish_snapshot(built) {
            let fatal = self.fail(error);
            for (_, reply) in self.snapshot_waits.callers.drain(..) {
                reply.answer(Err(fatal.clone()));
            }
        }
    }

    fn finish_snapshot(&mut self, built: SnapshotBuilt<N>) -> Result<(), StorageError> {
        let (snapshot, made) = built.result?;
        let covered_here = self.covers(&snapshot.meta);
        match (made, covered_here) {
            (Some(MadeCurrent::Saved), _) => self.adopt_snapshot(snapshot),
            (None, None) => {
                self.store.save_staged_snapshot(&snapshot)?;
                self.adopt_snapshot(snapshot);
            }
            (None | Some(MadeCurrent::Covered), Some(existing)) => {
                self.engine.on_snapshot_saved(existing.meta.last_log_id)
            }
            (Some(MadeCurrent::Covered), None) => {
                // an install made a newer one current and its result is on
                // the way: that answers whoever waits, no new job
                self.engine.on_snapshot_failed();
                return Ok(());
            }
        }
        self.answer_snapshot_waits();
        if self.snapshot_waits.any() {
            // asked for after the job took its copy: one more
            self.start_snapshot_job()?;
        }
        Ok(())
    }

    /// Takes a snapshot made current (durable) as the host's: the engine may
    /// purge the log behind it now.
    fn adopt_snapshot(&mut self, snapshot: Snapshot<N>) {
        let snapshot = Arc::new(snapshot);
        self.snapshot = Some(snapshot.clone());
        self.engine.on_snapshot_saved(snapshot.meta.last_log_id);
        self.forget_finished_sends();
    }

    /// Answers the callers and sends the chunks the current snapshot serves.
    fn answer_snapshot_waits(&mut self) {
        let last = self.snapshot.as_ref().and_then(|s| s.meta.last_log_id);
        for reply in self.snapshot_waits.covered_by(index_of(last)) {
            reply.answer(Ok(last));
        }
        if index_of(last) < self.engine.snapshot_must_cover() {
            // not enough for them: they wait for the next job (or the engine's retry)
            return;
        }
        for WaitingChunk { to, offset, seq, vote } in std::mem::take(&mut self.snapshot_waits.chunks) {
            if vote == self.engine.vote() {
                if let Err(error) = self.send_snapshot_chunk(to, offset, seq, vote) {
                    self.fail(error);
                }
            }
        }
    }

    /// Lets go of the snapshots pinned for nodes this one no longer streams
    /// to (not leading, or the node left): an old snapshot's file is held
    /// open only while a transfer may still need it.
    fn forget_finished_sends(&mut self) {
        let engine = &self.engine;
        self.snapshot_sends.retain(|peer, _| engine.catch_up(*peer).is_some_and(|r| r.snapshot_bytes_sent.is_some()));
    }

    pub(crate) fn send_snapshot_chunk(
        &mut self,
        to: NodeId,
        offset: u64,
        seq: u64,
        vote: Vote,
    ) -> Result<(), StorageError> {
        let must_cover = self.engine.snapshot_must_cover();
        let covers = |s: &&Arc<Snapshot<N>>| index_of(s.meta.last_log_id) >= must_cover;
        // a transfer goes on with the snapshot it started with: a newer one
        // made current meanwhile would send it back to byte 0 (and a long
        // transfer might never end)
        let streaming = self.snapshot_sends.get(&to).filter(|_| offset > 0).filter(covers);
        let snapshot = match streaming.or(self.snapshot.as_ref().filter(covers)) {
            Some(s) => s.clone(),
            None => {
                // none covers what the follower needs: one is built off the host
                self.snapshot_waits.chunks.push(WaitingChunk { to, offset, seq, vote });
                return self.start_snapshot_job();
            }
        };
        if offset > snapshot.data.len() {
            // the window runs ahead of a snapshot whose end the engine does not know
            return Ok(());
        }
        self.snapshot_sends.insert(to, snapshot.clone());
        self.start_chunk_read(to, snapshot, offset, seq, vote);
        Ok(())
    }

    pub(crate) fn receive_snapshot_chunk(&mut self, from: NodeId, chunk: SnapshotChunk<N>) -> Result<(), StorageError> {
        // a chunk of a leadership this node has since left behind (a newer vote
        // adopted earlier in the same batch) is answered with no sequence
        // number: echoing it under the new vote would acknowledge the new
        // leader's messages of that number
        let seq = if chunk.vote == self.engine.vote() { chunk.seq } else { 0 };
        let last = chunk.meta.last_log_id;
        let store = &mut self.store;
        match self.receiver.accept(chunk, |meta, checksum| store.partial_snapshot(meta, checksum))? {
            ChunkOutcome::Continue(next) => self.engine.on_snapshot_chunk_stored(from, last, next, seq),
            ChunkOutcome::Complete(receiving) => self.start_install(from, receiving, seq),
            ChunkOutcome::Installing(last, received) => {
                self.send(self.engine.snapshot_installing_reply(from, last, received, seq))
            }
        }
        Ok(())
    }

    /// Every byte of a leader's snapshot arrived: says so, then checks and
    /// decodes it off the host (see [`InstallTask`]).
    fn start_install(&mut self, from: NodeId, receiving: Receiving<N>, seq: u64) {
        let Receiving { meta, checksum, partial } = receiving;
        // the transfer is over: say so before the install, which may be long
        let received = partial.received();
        self.send(self.engine.snapshot_installing_reply(from, meta.last_log_id, received, seq));
        self.receiver.installing = Some((meta.last_log_id, received));
        let decode: Decode = Box::new(|reader| {
            SM::decode_snapshot(reader).map(|install| Box::new(install) as Box<dyn std::any::Any + Send>)
        });
        let saver = self.store.snapshot_saver();
        self.spawner.spawn_install(InstallTask { from, seq, meta, checksum, partial, decode, saver });
    }

    /// An install job ended: swaps the decoded state in (and makes the
    /// snapshot current, if the job left that to the host), unless this
    /// node got past it meanwhile. A failure stops the node.
    pub fn snapshot_decoded(&mut self, decoded: SnapshotDecoded<N>) {
        self.receiver.installing = None;
        let SnapshotDecoded { from, seq, meta, result } = decoded;
        let installed = result.and_then(|decoded| match decoded {
            Some((snapshot, install, made)) => self.install_decoded(from, seq, snapshot, install, made),
            None => {
                tracing::warn!(node = %self.engine.id(), %from, "received snapshot bytes do not match their checksum");
                self.engine.on_snapshot_chunk_stored(from, meta.last_log_id, 0, seq);
                Ok(())
            }
        });
        if let Err(error) = installed {
            self.fail(error);
        }
    }

    fn install_decoded(
        &mut self,
        from: NodeId,
        seq: u64,
        snapshot: Snapshot<N>,
        install: Box<dyn std::any::Any + Send>,
        made: Option<MadeCurrent>,
    ) -> Result<(), StorageError> {
        let last = snapshot.meta.last_log_id;
        let ahead_of_commit = last > self.engine.committed();
        // Made current by the job, the snapshot is on disk even when this
        // node committed past it meanwhile: the state goes in whenever it is
        // ahead of what is applied, so the host's snapshot and state never
        // trail the one a restart would load. Left to the host, only a
        // snapshot past the commit point is saved and installed.
        let swap_state = match made {
            Some(_) => index_of(last) > index_of(self.applied),
            None => ahead_of_commit,
        };
        if swap_state {
            let install = install
                .downcast::<SnapshotInstall<SM>>()
                .map_err(|_| StorageError::new("installing a snapshot", "decoded for another state machine"))?;
            if made.is_none() {
                self.store.save_staged_snapshot(&snapshot)?;
            }
            install(&mut self.state_machine)?;
            self.applied = last;
            self.forwards.lost_upto(index_of(self.applied));
        }
        let meta = snapshot.meta.clone();
        let adopt = made == Some(MadeCurrent::Saved) || (made.is_none() && swap_state);
        if adopt {
            self.snapshot = Some(Arc::new(snapshot));
        }
        // already past it (a leader's entries arrived meanwhile): only the answer
        self.engine.on_snapshot_installed(from, meta, seq);
        if adopt && !ahead_of_commit {
            // current on disk and applied: the log behind it may go
            self.engine.on_snapshot_saved(last);
        }
        if adopt {
            self.answer_snapshot_waits();
        }
        Ok(())
    }
}
