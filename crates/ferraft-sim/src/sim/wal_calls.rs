//! What the simulator does for nodes on the real WAL: run its writer at each
//! simulated fsync, pass its flush reports to the host, and cut the power
//! (sometimes in the middle of a writer batch) when the node crashes.

use ferraft::NodeId;
use rand::Rng;

use super::{Simulation, MAX_DOWN};

/// How often a simulated fsync of a WAL node is the moment its power goes
/// (while faults last).
const MID_BATCH_CRASH_PER_STEP: f64 = 0.01;

/// How often the power of a WAL node goes a few file operations into a call
/// of its host (a vote or snapshot being saved, say), while faults last.
const CRASH_IN_CALL_PER_CALL: f64 = 0.001;

/// How often the power of a WAL node goes during a snapshot job (its
/// writes, syncs, or the rename that makes the snapshot current), while
/// faults last; and the most file operations into the job it goes.
const CRASH_IN_SNAPSHOT_JOB: f64 = 0.05;
const SNAPSHOT_JOB_OPS: u64 = 12;

impl Simulation {
    /// Node `i`'s disk gets to the WAL's queued batch: write, sync, report.
    pub(super) fn step_wal(&mut self, i: usize) {
        let down = self.nodes.iter().filter(|n| n.host.is_none()).count();
        if self.faults_on && down < MAX_DOWN && self.rng.gen_bool(MID_BATCH_CRASH_PER_STEP) {
            self.crash_mid_batch(i);
            return;
        }
        let Some(wal) = self.nodes[i].wal.as_ref() else { return };
        if let Err(error) = wal.step() {
            self.fail(format!("WAL of n{} failed without a crash: {error}", self.nodes[i].id));
            return;
        }
        self.report_wal_flush(i);
    }

    /// Hands the flush node `i`'s WAL reported (if any) to its host, and
    /// records it on the shadow disk the checkers count durability on.
    pub(super) fn report_wal_flush(&mut self, i: usize) {
        let Some(flushed) = self.nodes[i].wal.as_ref().and_then(|wal| wal.take_flushed()) else { return };
        self.nodes[i].disk.lock().expect("single-threaded").synced_up_to(flushed.index);
        self.trace(|| format!("n{} WAL synced up to {flushed}", self.nodes[i].id));
        self.call(i, |h| h.flushed(flushed));
    }

    /// Maybe schedules a power cut some file operations into the snapshot
    /// job node `i` is about to run (a no-op if the job does fewer).
    pub(super) fn maybe_cut_power_in_job(&mut self, i: usize) {
        if self.nodes[i].wal.is_none() || !self.faults_on {
            return;
        }
        let down = self.nodes.iter().filter(|n| n.host.is_none()).count();
        if down < MAX_DOWN && self.rng.gen_bool(CRASH_IN_SNAPSHOT_JOB) {
            let after_ops = self.rng.gen_range(0..SNAPSHOT_JOB_OPS);
            if let Some(wal) = self.nodes[i].wal.as_ref() {
                wal.fs.crash_after_ops(after_ops);
            }
        }
    }

    /// Maybe schedules a power cut a few file operations into the call node
    /// `i`'s host is about to make (a no-op if the call does fewer).
    pub(super) fn maybe_cut_power_in_call(&mut self, i: usize) {
        if self.nodes[i].wal.is_none() || !self.faults_on {
            return;
        }
        let down = self.nodes.iter().filter(|n| n.host.is_none()).count();
        if down < MAX_DOWN && self.rng.gen_bool(CRASH_IN_CALL_PER_CALL) {
            let after_ops = self.rng.gen_range(0..4);
            if let Some(wal) = self.nodes[i].wal.as_ref() {
                wal.fs.crash_after_ops(after_ops);
            }
        }
    }

    /// After a call of node `i`'s host: if the power went during it (the
    /// host failed on its store), the machine is down.
    pub(super) fn crash_if_power_lost(&mut self, i: usize) {
        let Some(wal) = self.nodes[i].wal.as_mut() else { return };
        if !wal.power_lost() {
            return;
        }
        let reported = wal.take_flushed();
        self.power_cut(i, reported);
        let id = self.nodes[i].id;
        self.trace(|| format!("n{id} loses power inside a call"));
        self.crash(id, None);
    }

    /// The power goes while node `i`'s writer is a few operations into
    /// this batch: the crash a torn write comes from.
    fn crash_mid_batch(&mut self, i: usize) {
        let after_ops = self.rng.gen_range(0..8);
        let id = self.nodes[i].id;
        let Some(wal) = self.nodes[i].wal.as_mut() else { return };
        let reported = wal.crash_mid_batch(after_ops);
        self.power_cut(i, reported);
        self.trace(|| format!("n{id} loses power {after_ops} ops into a WAL batch"));
        self.crash(id, None);
    }

    /// Node `id` is crashing: its file system loses what was not synced, and
    /// half the time the power goes a few file operations into the writer's
    /// next batch. What the WAL reported durable on the way counts as
    /// durable (it told its caller so).
    pub(super) fn cut_wal_power(&mut self, id: NodeId) {
        let i = Self::idx(id);
        // not on the WAL, or the power is already off
        if !self.nodes[i].wal.as_ref().is_some_and(|wal| wal.is_running()) {
            return;
        }
        let mid_batch = self.rng.gen_bool(0.5).then(|| self.rng.gen_range(0..8));
        let Some(wal) = self.nodes[i].wal.as_mut() else { return };
        let reported = match mid_batch {
            Some(after_ops) => wal.crash_mid_batch(after_ops),
            None => {
                wal.crash();
                wal.take_flushed()
            }
        };
        self.power_cut(i, reported);
        self.trace(|| {
            format!("n{id} loses power{}", mid_batch.map_or(String::new(), |n| format!(" {n} ops into a batch")))
        });
    }

    /// Books a power cut on node `i`: what its WAL reported durable on the
    /// way counts as durable (it told its caller so), and the writes torn.
    fn power_cut(&mut self, i: usize, reported: Option<ferraft::LogId>) {
        if let Some(flushed) = reported {
            self.nodes[i].disk.lock().expect("single-threaded").synced_up_to(flushed.index);
        }
        if let Some(wal) = self.nodes[i].wal.as_mut() {
            self.stats.torn_writes += wal.fs.take_torn_writes() as usize;
            self.stats.reordered_files += wal.fs.take_reordered_files() as usize;
        }
    }
}
