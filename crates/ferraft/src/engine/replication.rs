//! The leader side of replication: proposing, sending, acknowledgements, commit.

use super::progress::{Progress, ReplicationMode};

/// How long a leader keeps telling a removed node it was removed, in election timeouts.
const DEPARTING_BOUND_ELECTION_TIMEOUTS: u64 = 10;
use super::role::Role;
use super::{Engine, Output};
use crate::entry::{AppData, EntryPayload};
use crate::error::ForwardToLeader;
use crate::log_id::{index_of, LogId};
use crate::message::{AppendEntries, AppendOutcome, AppendReply, MessageBody, SnapshotReply};
use crate::node::{LogIndex, Node, NodeId};

impl<C: AppData, N: Node> Engine<C, N> {
    /// Appends client commands as entries and replicates them. Returns the
    /// log id of the first; the rest follow at consecutive indexes.
    pub fn propose(&mut self, commands: impl IntoIterator<Item = C>) -> Result<Option<LogId>, ForwardToLeader<N>> {
        let Role::Leader(leader) = &self.role else {
            return Err(self.forward_to_leader());
        };
        if leader.transfer.is_some() {
            return Err(ForwardToLeader { leader_id: None, leader_node: None });
        }
        let mut first = None;
        let outputs_before = self.output.len();
        for command in commands {
            let log_id = self.append_local(EntryPayload::Normal(command));
            first.get_or_insert(log_id);
        }
        if first.is_some() {
            // Sends go out before the local append: the followers' writes and
            // syncs then start while this node still encodes its own batch.
            // Safe, as this node counts itself toward commit only once flushed.
            let appends: Vec<_> = self.output.drain(outputs_before..).collect();
            self.replicate_to_all();
            self.output.extend(appends);
            self.leader_maybe_commit();
        }
        Ok(first)
    }

    pub(crate) fn leader_state(&self) -> Option<&super::LeaderState> {
        match &self.role {
            Role::Leader(leader) => Some(leader),
            _ => None,
        }
    }

    /// Sends whatever each follower's window allows.
    pub(crate) fn replicate_to_all(&mut self) {
        let peers: Vec<NodeId> = match &self.role {
            Role::Leader(leader) => leader.progress.keys().copied().collect(),
            _ => return,
        };
        for peer in peers {
            self.replicate_to(peer, false);
        }
    }

    /// Sends a heartbeat (or entries, when some are due) to every follower.
    pub(crate) fn broadcast_append(&mut self) {
        let peers: Vec<NodeId> = match &self.role {
            Role::Leader(leader) => leader.progress.keys().copied().collect(),
            _ => return,
        };
        for peer in peers {
            self.replicate_to(peer, true);
        }
    }

    /// Sends entries to `peer` while its window has room; with `heartbeat`,
    /// sends at least one message even when nothing is due.
    pub(crate) fn replicate_to(&mut self, peer: NodeId, heartbeat: bool) {
        let max_entries = self.config.max_entries_per_append;
        let max_inflight = self.config.max_inflight_appends;
        let now = self.now_ms;
        let last_index = self.log.last_index();
        let committed = self.committed;
        let vote = self.vote;
        let first_index = self.log.first_index();
        let (store_purged, store_reads) = (self.store_purged, self.store_reads);
        let probing =
            self.leader_state().and_then(|l| l.progress.get(&peer)).is_some_and(|p| p.mode == ReplicationMode::Probe);
        // heartbeats and probes name the leader so a follower that lost its
        // membership (new or wiped) can still answer
        let leader_node = if probing || heartbeat { self.own_node().cloned() } else { None };
        let envelope = self.envelope(peer);
        let Role::Leader(leader) = &mut self.role else { return };
        let Some(progress) = leader.progress.get_mut(&peer) else { return };
        if progress.reverted {
            return;
        }
        let mut sent_any = false;
        loop {
            if let ReplicationMode::Snapshot { .. } = progress.mode {
                break;
            }
            let window_full = match progress.mode {
                ReplicationMode::Probe => {
                    !progress.inflight.is_empty()
                        && now < progress.probe_sent_ms + self.config.heartbeat_interval_ms * 2
                }
                _ => progress.inflight.len() >= max_inflight,
            };
            let behind_cache = progress.next_index < first_index;
            if behind_cache {
                use super::store_reads::{behind_cache, BehindCache};
                let (purged, reads) = (store_purged, store_reads);
                match behind_cache(progress, first_index, purged, reads, max_entries, max_inflight, window_full) {
                    BehindCache::Read(read, end) => {
                        progress.store.reading = Some(read);
                        self.output.push(Output::ReadEntries { to: peer, vote, from: read.from, end });
                    }
                    BehindCache::Wait => {}
                    BehindCache::Snapshot => return self.start_snapshot_to(peer),
                }
            }
            // a probe goes out even with nothing new: it is how we find where the logs match
            let has_entries = progress.next_index <= last_index || progress.mode == ReplicationMode::Probe;
            if window_full || !has_entries || behind_cache {
                if heartbeat && !sent_any {
                    // a heartbeat asserts leadership without touching the pipeline
                    leader.seq += 1;
                    let seq = leader.seq;
                    progress.record_sent(seq, now);
                    let message = AppendEntries {
                        vote,
                        prev_log_id: progress.matched,
                        entries: Vec::new(),
                        committed: committed.min(progress.matched),
                        seq,
                        leader_node: leader_node.clone(),
                    };
                    self.output
                        .push(Output::Send(crate::message::Message { envelope, body: MessageBody::Append(message) }));
                }
                break;
            }
            let probing = progress.mode == ReplicationMode::Probe;
            let prev_index = progress.next_index.prev();
            let prev_log_id = self.log.log_id_at(prev_index);
            let batch = if probing { max_entries.min(64) } else { max_entries };
            let entries = self.log.slice_within(progress.next_index, batch, self.config.max_append_bytes as u64);
            let sent_last = entries.last().map_or(prev_index, |e| e.log_id.index);
            leader.seq += 1;
            let seq = leader.seq;
            progress.record_append(seq, sent_last, now);
            let message =
                AppendEntries { vote, prev_log_id, entries, committed, seq, leader_node: leader_node.clone() };
            self.output.push(Output::Send(crate::message::Message { envelope, body: MessageBody::Append(message) }));
            sent_any = true;
            if probing {
                break;
            }
        }
    }

    /// A reply carrying a vote we cannot stand beside: step down.
    fn step_down_if_superseded(&mut self, theirs: crate::vote::Vote) -> bool {
        if theirs == self.vote {
            return false;
        }
        // only a vote that supersedes ours deposes us: a same-term candidate
        // that lost (standard mode) does not
        if self.vote.may_advance_to(&theirs, self.config.leader_id_mode) {
            self.observed_term = self.observed_term.max(theirs.term());
            tracing::info!(node = %self.id, theirs = %theirs, ours = %self.vote, "a peer holds a newer vote");
            self.become_follower();
            return true;
        }
        false
    }

    pub(crate) fn on_append_reply(&mut self, from: NodeId, reply: AppendReply) {
        tracing::trace!(node = %self.id, %from, ?reply, "append reply");
        if !self.is_leader() || self.step_down_if_superseded(reply.vote) || reply.vote != self.vote {
            return;
        }
        if reply.outcome == AppendOutcome::Rejected {
            // under our own vote, a refusal answers a message of an earlier
            // leadership of ours: its sequence number is not one of ours
            return;
        }
        let now = self.now_ms;
        let allow_reversion = self.config.allow_log_reversion;
        let last_log_id = self.log.last_log_id();
        let Role::Leader(leader) = &mut self.role else { return };
        // a message sent after this point is handled by the follower after it
        // sent this reply: causality, whatever the network reorders
        let sent_so_far = leader.seq;
        let Some(progress) = leader.progress.get_mut(&from) else { return };
        progress.record_ack(reply.seq, now);
        progress.committed_seen = progress.committed_seen.max(reply.committed);
        match reply.outcome {
            AppendOutcome::Success { matched } => {
                if matched.is_some_and(|m| m.index > index_of(last_log_id)) {
                    tracing::error!(node = %self.id, %from, "follower claims entries beyond our log; ignoring reply");
                    return;
                }
                progress.record_match(matched, sent_so_far);
            }
            AppendOutcome::Conflict { hint_index, last_index } => {
                // a log shorter than what it acknowledged, in answer to a message
                // sent after that acknowledgement arrived: the follower lost data
                let went_backwards = last_index < progress.matched_index() && reply.seq > progress.matched_seq;
                if went_backwards {
                    if !allow_reversion {
                        if !progress.reverted {
                            tracing::error!(
                                node = %self.id,
                                %from,
                                matched = %progress.matched_index(),
                                now_has = %last_index,
                                "follower's log went backwards (data wiped?): refusing to replicate to it; \
                                 remove and re-add it, or enable allow_log_reversion"
                            );
                        }
                        progress.reverted = true;
                        return;
                    }
                    progress.matched = None;
                    progress.matched_seq = 0;
                }
                // the back-off hint may fall below `matched`; reset_to keeps it above
                progress.reset_to(hint_index + 1);
            }
            AppendOutcome::Rejected => return,
        }
        self.leader_maybe_commit();
        self.maybe_confirm_reads();
        self.maybe_send_timeout_now();
        let tell_commit = self.lags_membership_commit(from);
        self.replicate_to(from, tell_commit);
    }

    pub(crate) fn on_snapshot_reply(&mut self, from: NodeId, reply: SnapshotReply) {
        if !self.is_leader() || self.step_down_if_superseded(reply.vote) || reply.vote != self.vote {
            return;
        }
        let now = self.now_ms;
        let chunk_bytes = self.config.snapshot_chunk_bytes as u64;
        let Role::Leader(leader) = &mut self.role else { return };
        let sent_so_far = leader.seq;
        let Some(progress) = leader.progress.get_mut(&from) else { return };
        progress.record_ack(reply.seq, now);
        if let ReplicationMode::Snapshot { .. } = progress.mode {
            progress.store.snapshot_last = reply.last_log_id;
            if super::install_phase::on_installing(progress, &reply, now) {
                return;
            }
            if reply.next_offset == u64::MAX {
                progress.inflight.clear();
                progress.record_match(reply.last_log_id, sent_so_far);
                progress.next_index = index_of(progress.matched) + 1;
                progress.mode = ReplicationMode::Pipeline;
                self.leader_maybe_commit();
                self.replicate_to(from, false);
            } else {
                let answer = (reply.next_offset, reply.seq);
                super::snapshot_window::on_acknowledged(progress, answer, sent_so_far, chunk_bytes, now);
                self.fill_snapshot_window(from);
            }
        }
    }

    /// The transport cannot reach `peer`: stop streaming to it and fall back
    /// to one probe every other heartbeat until it answers again.
    pub fn on_peer_unreachable(&mut self, peer: NodeId) {
        let now = self.now_ms;
        self.on_leader_unreachable(peer);
        if let Role::Leader(leader) = &mut self.role {
            if let Some(progress) = leader.progress.get_mut(&peer) {
                progress.catch_up.on_unreachable(now);
                if progress.mode == ReplicationMode::Pipeline {
                    progress.reset_to(progress.matched_index() + 1);
                    progress.inflight.push_back((progress.matched_index(), now));
                    progress.probe_sent_ms = now;
                }
            }
        }
    }

    /// Commits what a quorum of every config holds durably, if it is of this term.
    pub(crate) fn leader_maybe_commit(&mut self) {
        let Role::Leader(leader) = &self.role else { return };
        let Some(membership) = self.log.effective_membership() else { return };
        let own = index_of(self.durable);
        let configs = membership.membership.configs();
        let configs = if self.breaks(crate::config::BrokenRule::CommitWithOneConfig) {
            &configs[configs.len() - 1..]
        } else {
            configs
        };
        let index = crate::membership::committed_index(configs, |id| {
            if id == self.id {
                own
            } else {
                leader.progress.get(&id).map_or(LogIndex(0), Progress::matched_index)
            }
        });
        if index <= index_of(self.committed) {
            return;
        }
        // only an entry of our own term commits by counting replicas (Raft §5.4.2)
        let Some(log_id) = self.log.log_id_at(index) else { return };
        if log_id.leader_id != self.vote.leader_id {
            return;
        }
        let membership_before = self.membership_committed();
        self.commit_to(Some(log_id));
        self.maybe_confirm_reads();
        if !membership_before && self.membership_committed() {
            // followers that hold it learn at once that it committed
            let peers: Vec<NodeId> =
                self.leader_state().map(|l| l.progress.keys().copied().collect()).unwrap_or_default();
            for peer in peers {
                if self.lags_membership_commit(peer) {
                    self.replicate_to(peer, true);
                }
            }
            self.on_membership_committed();
        } else {
            // the blank entry of this term committing also unblocks what was
            // queued before it (initial-log rule)
            self.maybe_propose_membership();
        }
    }

    /// Whether `peer` holds the membership in force, which is committed, but
    /// has not said it knows that. It would otherwise learn so only with the
    /// next heartbeat, and until then report the membership as not committed
    /// although the caller of the change has been told it is.
    fn lags_membership_commit(&self, peer: NodeId) -> bool {
        let Some(membership) = self.membership().filter(|_| self.membership_committed()) else { return false };
        let index = index_of(membership.log_id);
        self.leader_state()
            .and_then(|l| l.progress.get(&peer))
            .is_some_and(|p| p.committed_seen < index && p.matched_index() >= index)
    }

    /// Heartbeats, check-quorum, transfer deadline, stalled probes and snapshots.
    pub(crate) fn leader_tick(&mut self) {
        let now = self.now_ms;
        let Role::Leader(leader) = &mut self.role else { return };
        if now < leader.next_heartbeat_ms {
            return;
        }
        leader.next_heartbeat_ms = now + self.config.heartbeat_interval_ms;
        let departing = !leader.departing.is_empty();
        if departing {
            self.drop_departed();
        }
        // a joint config waiting for its new voters is re-examined each heartbeat
        if self.membership_work_pending() {
            self.maybe_propose_membership();
            self.maybe_revert_uncommitted_joint();
        }
        self.maybe_record_incarnations();
        let Role::Leader(leader) = &mut self.role else { return };
        if let Some((_, deadline)) = leader.transfer {
            if now >= deadline {
                tracing::warn!(node = %self.id, "leader transfer timed out; resuming");
                leader.transfer = None;
            }
        }
        if self.config.check_quorum && !self.quorum_heard_within(self.config.election_timeout_max_ms) {
            tracing::warn!(node = %self.id, "check-quorum: no quorum heard within an election timeout; stepping down");
            self.become_follower();
            return;
        }
        self.retry_stalled_snapshots();
        self.restart_stalled_pipelines();
        self.sample_catch_up();
        self.maybe_promote_ready_learners();
        self.broadcast_append();
    }

    /// An append lost on the way would hold the window shut forever.
    fn restart_stalled_pipelines(&mut self) {
        let now = self.now_ms;
        let timeout = self.config.election_timeout_min_ms;
        let Role::Leader(leader) = &mut self.role else { return };
        for progress in leader.progress.values_mut() {
            if progress.pipeline_stalled(now, timeout) {
                progress.reset_to(progress.matched_index() + 1);
            }
        }
    }

    fn retry_stalled_snapshots(&mut self) {
        let now = self.now_ms;
        let vote = self.vote;
        let timeout = self.config.election_timeout_max_ms;
        let chunk_bytes = self.config.snapshot_chunk_bytes as u64;
        let Role::Leader(leader) = &mut self.role else { return };
        for (peer, progress) in leader.progress.iter_mut() {
            if let ReplicationMode::Snapshot { next_offset, sent_ms } = progress.mode {
                if progress.store.pace.waiting.is_some() {
                    // held back by the rate limit, not stalled
                    continue;
                }
                // while it installs, this re-asks from the end (no byte again): the
                // follower answers once installed, and its "installed" reply may be lost
                if now >= sent_ms + timeout {
                    // one chunk from where the receiver stands; its answer reopens the window
                    progress.store.window = super::snapshot_window::SnapshotWindow::restart(next_offset, leader.seq);
                    progress.store.window.sent_until = next_offset.saturating_add(chunk_bytes);
                    leader.seq += 1;
                    progress.record_sent(leader.seq, now);
                    progress.mode = ReplicationMode::Snapshot { next_offset, sent_ms: now };
                    self.output.push(Output::SendSnapshotChunk {
                        to: *peer,
                        offset: next_offset,
                        seq: leader.seq,
                        vote,
                    });
                }
            }
        }
    }

    /// Whether a quorum (counting this node) was heard from within `window_ms`.
    fn quorum_heard_within(&self, window_ms: u64) -> bool {
        let Role::Leader(leader) = &self.role else { return false };
        if self.now_ms < leader.since_ms + window_ms {
            return true;
        }
        let heard = |id: NodeId| {
            id == self.id || leader.progress.get(&id).is_some_and(|p| p.last_heard_ms + window_ms > self.now_ms)
        };
        // a quorum of the membership in force, or of the last committed one:
        // they share a config (old-new-intersect), so a rival leader needs a
        // vote from a node that heard from this one within the window either
        // way. The second keeps a leader in office while an uncommitted joint
        // config's new voters are silent, so it can revert that config.
        let in_force = self.effective().is_some_and(|m| m.is_quorum(heard));
        in_force || self.log.membership_at(index_of(self.committed)).is_some_and(|m| m.membership.is_quorum(heard))
    }

    /// Keeps leader progress in line with the membership in force.
    pub(crate) fn sync_progress_with_membership(&mut self) {
        let now = self.now_ms;
        let next_index = self.log.last_index() + 1;
        let members: Vec<NodeId> = self.effective().map(|m| m.nodes().keys().copied().collect()).unwrap_or_default();
        let id = self.id;
        let removed_at = self.log.last_index();
        let Role::Leader(leader) = &mut self.role else { return };
        // a node the new membership drops keeps being replicated to until it
        // holds that entry committed: so it learns it was removed and stops
        // campaigning, instead of living on in an old joint config
        for peer in leader.progress.keys() {
            if !members.contains(peer) {
                leader.departing.entry(*peer).or_insert((removed_at, now));
            }
        }
        for peer in members {
            if peer == id {
                continue;
            }
            // a departing node added back is a new member: what the leader
            // learned while telling it of its removal (what it held, that its
            // log went backwards after a wipe) must not outlive the removal.
            // A kept `reverted` mark stopped all replication to a wiped node
            // re-added as a learner, and a joint config promoting it never
            // committed (sim seed 1418, forward-heavy runs with wiped disks)
            if leader.departing.remove(&peer).is_some() {
                leader.progress.insert(peer, Progress::new(next_index, now));
            } else {
                leader.progress.entry(peer).or_insert_with(|| Progress::new(next_index, now));
            }
        }
    }

    /// Stops replicating to removed nodes that hold their removal committed,
    /// or that did not take it within a bound (they may be down for good).
    pub(crate) fn drop_departed(&mut self) {
        let now = self.now_ms;
        let bound = self.config.election_timeout_max_ms * DEPARTING_BOUND_ELECTION_TIMEOUTS;
        let Role::Leader(leader) = &mut self.role else { return };
        let progress = &mut leader.progress;
        leader.departing.retain(|peer, (removed_at, since)| {
            let told = match progress.get(peer) {
                Some(p) => p.committed_seen >= *removed_at,
                None => true,
            };
            let keep = !told && now < *since + bound;
            if !keep {
                progress.remove(peer);
            }
            keep
        });
    }
}
