//! The per-node driver task: the tokio event loop around a [`NodeHost`]. It
//! batches events into the host, lets the host execute the engine's outputs,
//! and publishes metrics.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use super::event::Event;
use super::host::{HostParts, NodeHost, C};
use super::job_spawner::JobSpawner;
use super::log_reader::ReadTask;
use super::metrics::{RaftMetrics, ReplicationMetrics};
use super::reply::Oneshot;
use super::snapshot_job::SnapshotTask;
use super::StartError;
use crate::config::Config;
use crate::engine::Role;
use crate::log_id::index_of;
use crate::network::Network;
use crate::node::{LogIndex, Node, NodeId, Term};
use crate::state_machine::StateMachine;
use crate::storage::{FlushNotifier, LogStore};

/// Most events handled before outputs are executed: bounds latency under load.
const MAX_EVENTS_PER_BATCH: usize = 4096;

/// Most delay before progress-only metric changes are published while
/// events keep coming; a loop about to wait publishes them at once.
const METRICS_INTERVAL: Duration = Duration::from_millis(1);

pub(crate) struct Driver<SM: StateMachine, N: Node> {
    host: NodeHost<SM, N, Oneshot>,
    rx: mpsc::UnboundedReceiver<Event<SM, N>>,
    metrics: watch::Sender<RaftMetrics<N>>,
    started: Instant,
    /// When metrics were last published.
    published_at: Instant,
    published_progress: [u64; 6],
    stopping: Option<super::event::Reply<()>>,
}

/// Runs the host's jobs (snapshots, log reads) off the async threads, at a
/// lower priority (see [`low_priority`](super::low_priority)); each result
/// comes back as an event.
struct BlockingSpawner<SM: StateMachine, N: Node> {
    /// Weak, so the channel still closes when every handle is gone.
    events: mpsc::WeakUnboundedSender<Event<SM, N>>,
    /// [`Config::background_job_nice`].
    nice: u8,
    /// Snapshot chunk reads, in the order they are asked for.
    chunk_reads: super::low_priority::InOrder,
}

impl<SM: StateMachine, N: Node> BlockingSpawner<SM, N> {
    fn run_blocking(&self, job: impl FnOnce() -> Event<SM, N> + Send + 'static) {
        let events = self.events.clone();
        super::low_priority::spawn_job(self.nice, move || {
            let event = job();
            if let Some(events) = events.upgrade() {
                let _ = events.send(event);
            }
        });
    }
}

impl<SM: StateMachine, N: Node> JobSpawner<SM::Command, N> for BlockingSpawner<SM, N> {
    fn spawn_snapshot(&mut self, task: SnapshotTask<N>) {
        self.run_blocking(move || Event::SnapshotBuilt(task.run()));
    }

    fn spawn_read(&mut self, task: ReadTask<SM::Command, N>) {
        self.run_blocking(move || Event::EntriesRead(task.run()));
    }

    fn spawn_install(&mut self, task: super::InstallTask<N>) {
        self.run_blocking(move || Event::SnapshotDecoded(task.run()));
    }

    fn spawn_chunk_read(&mut self, task: super::ChunkTask<N>) {
        let events = self.events.clone();
        self.chunk_reads.run(self.nice, move || {
            let read = task.run();
            if let Some(events) = events.upgrade() {
                let _ = events.send(Event::ChunkRead(read));
            }
        });
    }
}

impl<SM: StateMachine, N: Node> Driver<SM, N> {
    pub(crate) fn start(
        id: NodeId,
        config: Arc<Config>,
        network: Arc<dyn Network<C<SM>, N>>,
        store: Box<dyn LogStore<C<SM>, N>>,
        state_machine: SM,
        tx: mpsc::UnboundedSender<Event<SM, N>>,
        rx: mpsc::UnboundedReceiver<Event<SM, N>>,
    ) -> Result<(Self, watch::Receiver<RaftMetrics<N>>), StartError> {
        let spawner = Box::new(BlockingSpawner {
            events: tx.downgrade(),
            nice: config.background_job_nice,
            chunk_reads: Default::default(),
        });
        let failures = tx.clone();
        let notifier = FlushNotifier::new(move |log_id| {
            let _ = tx.send(Event::Flushed(log_id));
        })
        .on_failure(move |error| {
            let _ = failures.send(Event::StoreFailed(error));
        });
        let parts = HostParts { network, store, state_machine, spawner, notifier };
        let host = NodeHost::new(id, config, parts, start_seed(), 0)?;
        let engine = host.engine();
        let (metrics, metrics_rx) = watch::channel(RaftMetrics {
            id,
            cluster_id: engine.cluster_id(),
            incarnation: engine.incarnation(),
            state: engine.server_state(),
            current_term: Term(0),
            vote: engine.vote(),
            current_leader: None,
            last_log_index: LogIndex(0),
            committed: None,
            last_applied: None,
            snapshot: None,
            purged: None,
            membership: None,
            membership_committed: false,
            replication: None,
            refused_peers: BTreeMap::new(),
            stopped: false,
            stopped_by: None,
        });
        let driver = Self {
            host,
            rx,
            metrics,
            started: Instant::now(),
            published_at: Instant::now(),
            published_progress: [0; 6],
            stopping: None,
        };
        Ok((driver, metrics_rx))
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    pub(crate) async fn run(mut self) {
        self.host.tick(self.now_ms());
        self.host.execute_outputs();
        self.publish_metrics(true);
        // one timer, moved rather than re-created on every turn of the loop
        let sleep = tokio::time::sleep_until(self.started.into());
        tokio::pin!(sleep);
        let mut armed_for = None;
        while self.host.fatal.is_none() && self.stopping.is_none() {
            let deadline = self.started + Duration::from_millis(self.host.next_deadline_ms());
            if armed_for != Some(deadline) {
                sleep.as_mut().reset(deadline.into());
                armed_for = Some(deadline);
            }
            let event = tokio::select! {
                event = self.rx.recv() => event,
                _ = &mut sleep => None,
            };
            // what arrived by now is handled before the timers run, also
            // when the timer woke the loop: a node that stalled reads the
            // heartbeats that waited for it before its election timer
            // judges the silence, and a pending initialize hears the
            // answers that came by its deadline
            let now = self.now_ms();
            let mut next = event.or_else(|| self.rx.try_recv().ok());
            if next.is_none() && self.rx.is_closed() {
                break;
            }
            let mut handled = 0;
            while let Some(event) = next.take() {
                // the clock as of this event: the turn may have been held up
                // (a slow state machine call, the process descheduled) while
                // this one waited, and what it means depends on when it is
                // handled; a follower counts a heartbeat as heard now, and
                // refuses other candidates from now on for the leader's lease
                // (test lease_clock)
                self.host.advance_clock(self.now_ms());
                self.handle(event);
                handled += 1;
                if handled < MAX_EVENTS_PER_BATCH {
                    next = self.rx.try_recv().ok();
                }
            }
            self.host.tick(now);
            self.host.flush_write_batch();
            self.host.set_nothing_else_waiting(self.rx.is_empty());
            self.host.execute_outputs();
            // about to wait: nothing later would publish what changed
            let idle = self.rx.is_empty();
            self.publish_metrics(idle);
        }
        self.stop();
    }

    fn handle(&mut self, event: Event<SM, N>) {
        let host = &mut self.host;
        if !matches!(event, Event::Write(..) | Event::WriteHere(..)) {
            host.flush_write_batch();
        }
        match event {
            Event::Write(command, reply) => host.client_write(command, reply),
            Event::WriteHere(command, reply) => host.client_write_here(command, reply),
            Event::ReadHere(lease, reply) => host.read_here(lease, reply),
            Event::Undelivered(peer, ids) => host.engine.on_forward_undelivered(peer, &ids),
            Event::Message(message) => host.receive(message),
            Event::Flushed(log_id) => host.flushed(log_id),
            Event::StoreFailed(error) => {
                host.fail(error);
            }
            Event::Unreachable(peer) => host.unreachable(peer),
            Event::Refused(peer, refusal) => host.refused(peer, refusal),
            Event::ProbePeer(peer, node, reply) => host.probe_peer(peer, node, reply),
            Event::ReadIndex(reply) => host.read_index(reply),
            Event::LeaseRead(reply) => host.lease_read(reply),
            Event::ForceNewCluster(cluster, reply) => {
                let _ = reply.send(host.force_new_cluster(cluster));
            }
            Event::Initialize(members, given, fresh, reply) => host.initialize(members, given, fresh, reply),
            Event::ChangeMembership(change, retain, reply) => host.change_membership(change, retain, reply),
            Event::MembershipExt(call, reply) => host.membership_call(call, reply),
            Event::Prepare(p, reply) => {
                host.prepare_membership((&p.expect_voters, &p.expect_learners), &p.voters, &p.learners, reply);
            }
            Event::CommitJoint(index, reply) => {
                host.commit_membership(index, reply);
            }
            Event::AbortJoint(index, reply) => {
                host.abort_membership(index, reply);
            }
            Event::ChangeStatus(change_id, reply) => {
                let _ = reply.send(host.change_status(&change_id));
            }
            Event::TransferLeader(to, reply) => {
                let _ = reply.send(host.transfer_leader(to));
            }
            Event::Elect => host.elect(),
            Event::Heartbeat => host.heartbeat(),
            Event::Snapshot(reply) => {
                host.snapshot_now(reply);
            }
            Event::SnapshotBuilt(built) => host.snapshot_built(built),
            Event::SnapshotDecoded(decoded) => host.snapshot_decoded(decoded),
            Event::EntriesRead(read) => host.entries_read(read),
            Event::ChunkRead(read) => host.snapshot_chunk_read(read),
            Event::Shutdown(reply) => self.stopping = Some(reply),
        }
    }

    /// Publishes metrics. Changes of role, vote, leader or membership go out at
    /// once; progress-only changes (indexes) when `now` (the loop is about to
    /// wait) or at most every millisecond while events keep coming, so a busy
    /// leader does not rebuild them for every batch. No timer: a timer armed
    /// for them cost one put at a time an eventfd write (arming it earlier
    /// than the runtime's next wake-up unparks the runtime) and a wake-up a
    /// millisecond later.
    fn publish_metrics(&mut self, now: bool) {
        let structural = {
            let m = self.metrics.borrow();
            m.state != self.host.engine.server_state()
                || m.cluster_id != self.host.engine.cluster_id()
                || m.refused_peers != self.host.refused
                || m.vote != self.host.engine.vote()
                || m.current_leader != self.host.engine.current_leader()
                || m.membership.as_ref().map(|s| s.log_id) != self.host.engine.membership().map(|s| s.log_id)
                || m.membership_committed != self.host.engine.membership_committed()
        };
        let progress = self.progress_fingerprint();
        if !structural && progress == self.published_progress {
            return;
        }
        if !now && !structural && self.published_at.elapsed() < METRICS_INTERVAL {
            return;
        }
        self.published_at = Instant::now();
        self.published_progress = progress;
        if structural {
            self.log_structural_change();
        }
        let engine = &self.host.engine;
        let snapshot_bytes = self.host.snapshot.as_ref().map_or(0, |s| s.data.len());
        let replication = match engine.role() {
            Role::Leader(leader) => Some(
                leader
                    .progress
                    .iter()
                    .filter_map(|(id, p)| Some((*id, replication_metrics(p, engine.catch_up(*id)?, snapshot_bytes))))
                    .collect::<BTreeMap<_, _>>(),
            ),
            _ => None,
        };
        let membership = engine.membership();
        let state = engine.server_state();
        let applied = self.host.applied;
        let snapshot = self.host.snapshot.as_ref().and_then(|s| s.meta.last_log_id);
        let refused = &self.host.refused;
        self.metrics.send_if_modified(|m| {
            let changed = m.state != state
                || m.cluster_id != engine.cluster_id()
                || &m.refused_peers != refused
                || m.vote != engine.vote()
                || m.current_leader != engine.current_leader()
                || m.last_log_index != engine.log().last_index()
                || m.committed != engine.committed()
                || m.last_applied != applied
                || m.snapshot != snapshot
                || m.purged != engine.log().purged()
                || m.membership.as_ref().map(|s| s.log_id) != membership.map(|s| s.log_id)
                || m.membership_committed != engine.membership_committed()
                || m.replication != replication;
            if changed {
                m.state = state;
                m.cluster_id = engine.cluster_id();
                if &m.refused_peers != refused {
                    m.refused_peers = refused.clone();
                }
                m.vote = engine.vote();
                m.current_term = engine.vote().term();
                m.current_leader = engine.current_leader();
                m.last_log_index = engine.log().last_index();
                m.committed = engine.committed();
                m.last_applied = applied;
                m.snapshot = snapshot;
                m.purged = engine.log().purged();
                // most publishes are of progress: the membership (nodes
                // and their addresses) is copied only when it changed
                if m.membership.as_ref().map(|s| s.log_id) != membership.map(|s| s.log_id) {
                    m.membership = membership.cloned();
                }
                m.membership_committed = engine.membership_committed();
                m.replication = replication;
            }
            changed
        });
    }

    /// An INFO line for an operator when the role or the membership in force
    /// changes (compared with the last published metrics).
    fn log_structural_change(&self) {
        let (id, term) = (self.host.engine.id(), self.host.engine.vote().term());
        let m = self.metrics.borrow();
        let role = self.host.engine.server_state();
        if m.state != role {
            let leader = self.host.engine.current_leader();
            tracing::info!(node = %id, %term, from = ?m.state, to = ?role, ?leader, "role changed");
        }
        let membership = self.host.engine.membership();
        let committed = self.host.engine.membership_committed();
        if m.membership.as_ref().map(|s| s.log_id) != membership.map(|s| s.log_id)
            || m.membership_committed != committed
        {
            if let Some(s) = membership {
                let (log_index, configs) = (index_of(s.log_id), s.membership.configs());
                tracing::info!(node = %id, %term, %log_index, ?configs, %committed, "membership in force");
            }
        }
    }

    /// A cheap summary of every progress-only metric: equal means nothing to publish.
    fn progress_fingerprint(&self) -> [u64; 6] {
        let replication = match self.host.engine.role() {
            // the heartbeat time: catch-up rates and stalls are sampled per heartbeat
            Role::Leader(leader) => leader.progress.values().fold(leader.next_heartbeat_ms, |acc, p| {
                acc.wrapping_mul(31).wrapping_add(p.matched_index().0 * 2 + p.reverted as u64)
            }),
            _ => 0,
        };
        [
            self.host.engine.log().last_index().0,
            index_of(self.host.engine.committed()).0,
            index_of(self.host.applied).0,
            index_of(self.host.snapshot.as_ref().and_then(|s| s.meta.last_log_id)).0,
            index_of(self.host.engine.log().purged()).0,
            replication,
        ]
    }

    fn stop(mut self) {
        self.host.stop();
        let stopped_by = self.host.fatal().map(|fatal| fatal.to_string());
        self.metrics.send_modify(|m| {
            m.stopped = true;
            m.stopped_by = stopped_by;
        });
        if let Some(reply) = self.stopping.take() {
            let _ = reply.send(());
        }
        tracing::info!(node = %self.host.engine.id(), "stopped");
    }
}

/// What the metrics say of one follower: its progress and catch-up report.
fn replication_metrics(
    progress: &crate::engine::Progress,
    report: crate::engine::CatchUpReport,
    snapshot_bytes: u64,
) -> ReplicationMetrics {
    let snapshot = report.snapshot_bytes_sent.map(|sent| super::SnapshotTransfer {
        bytes_sent: sent,
        bytes_total: snapshot_bytes.max(sent),
        installing: report.snapshot_installing,
    });
    ReplicationMetrics {
        matched: progress.matched,
        reverted: progress.reverted,
        lag_entries: report.lag_entries,
        lag_bytes: report.lag_bytes,
        rate_entries_per_s: report.rate_entries_per_s,
        eta_ms: report.eta_ms,
        snapshot,
        stall: report.stall,
        entries_from_store: report.entries_from_store,
        snapshots_started: report.snapshots_started,
    }
}

/// Fresh randomness for each start of a node (election timeouts, the
/// starts of the numbers it puts on requests). Not derived from the node
/// id and process id: a node restarted in a container runs under the same
/// process id, and its numbers would repeat those of its earlier life.
fn start_seed() -> u64 {
    rand::random()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_starts_in_one_process_draw_different_seeds() {
        assert_ne!(start_seed(), start_seed());
    }
}
