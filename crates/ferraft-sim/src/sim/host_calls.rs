//! Calls into a node's host, and what the simulator does with the host's
//! journal afterwards: the checkers see every append, truncation, apply,
//! snapshot and answer, in the order the host made them.

use std::collections::BTreeSet;

use ferraft::log_id::index_of;
use ferraft::{
    EntryPayload, InitializeError, LeaderId, LogId, LogIndex, Membership, MessageBody, NodeId, StoredMembership,
    WriteError,
};
use rand::seq::IteratorRandom;
use rand::Rng;

use super::two_clusters::Route;
use super::{describe, Event, SimHost, SimMessage, Simulation};
use crate::invariants::Violation;
use crate::journal::{Committed, Record};
use crate::known_bugs;
use crate::model::{fingerprint, KvState, Put};
use crate::options::Fault;

impl Simulation {
    /// Calls the host of node `i` (if up), lets it execute the engine's
    /// outputs, and checks what happened.
    pub(super) fn call<R>(&mut self, i: usize, f: impl FnOnce(&mut SimHost) -> R) -> Option<R> {
        self.nodes[i].host.as_ref()?;
        self.maybe_cut_power_in_call(i);
        let host = self.nodes[i].host.as_mut()?;
        let before = host.engine().membership().and_then(|m| m.log_id);
        let led_before = host.engine().is_leader().then(|| host.engine().vote().term());
        let result = f(host);
        self.observe(i, before, led_before);
        // sometimes other events wait for the node (its appends are then
        // handed to the WAL's writer), sometimes none (a follower's may run at once)
        let nothing_else_waiting = self.rng.gen_bool(0.5);
        if let Some(host) = self.nodes[i].host.as_mut() {
            host.set_nothing_else_waiting(nothing_else_waiting);
            host.execute_outputs();
        }
        self.observe(i, before, led_before);
        self.drain(i);
        let truncated = std::mem::take(&mut self.nodes[i].truncated);
        if !truncated.is_empty() {
            // the vote of the leader whose append or snapshot truncated
            let term = self.nodes[i].host.as_ref().map_or(ferraft::Term(u64::MAX), |h| h.engine().vote().term());
            let result = self.checkers.committed.observe_truncate(self.nodes[i].id, term, truncated);
            self.check(result);
        }
        self.crash_if_power_lost(i);
        Some(result)
    }

    /// Runs every checker on node `i`'s state after a call.
    /// `led_before`: the term the node led in when the call began (it may
    /// have committed as leader and stepped down within the call, in that
    /// term; deposed by a later term, it committed as that term's follower).
    fn observe(&mut self, i: usize, membership_before: Option<LogId>, led_before: Option<ferraft::Term>) {
        let node = &mut self.nodes[i];
        let Some(engine) = node.host.as_ref().map(|h| h.engine()) else { return };
        let id = node.id;
        let checkers = &mut self.checkers;
        let mut result = engine.check_invariants().map_err(|e| Violation { rule: "engine invariants", detail: e });
        // on the WAL, a save can fail (the power went in the call): a
        // leadership whose vote never reached the disk never took effect
        let vote_on_disk =
            node.wal.is_none() || node.disk.lock().expect("single-threaded").vote() == Some(engine.vote());
        if result.is_ok() && engine.is_leader() && vote_on_disk {
            let leader_id = engine.vote().leader_id;
            result = checkers.election.observe_leader(id, node.incarnation, leader_id);
            if result.is_ok() && node.leading_as != Some(leader_id) {
                node.leading_as = Some(leader_id);
                self.leaders_seen.insert(leader_id);
                result =
                    checkers.leader_completeness.observe_new_leader(id, leader_id, engine.log(), &checkers.committed);
            }
        }
        let mut new_marks = Vec::new();
        if let ferraft::engine::Role::Leader(leader) = engine.role() {
            let leader_id = engine.vote().leader_id;
            let judged = &self.reverted_judged;
            new_marks = (leader.progress.iter())
                .filter(|(peer, p)| p.reverted && !judged.contains(&(leader_id, **peer)))
                .map(|(peer, p)| (leader_id, *peer, p.matched))
                .collect();
        }
        let committed = engine.committed();
        // a commit no node made before, by a node that did not lead: only the
        // commit on the leader's flush notice does that; check it against the disks
        let leads = engine.is_leader() || led_before == Some(engine.vote().term());
        let first_off_leader = !leads && index_of(committed) > checkers.committed.last_index();
        if result.is_ok() && index_of(committed) > node.seen_committed {
            let term = engine.vote().term();
            for index in node.seen_committed.next().through(index_of(committed)) {
                let Some(entry) = engine.log().get(index) else {
                    if let Some(log_id) = engine.log().log_id_at(index) {
                        result = result.and(checkers.committed.observe_commit(id, log_id, term));
                    }
                    continue;
                };
                result = result.and(checkers.committed.observe_commit(id, entry.log_id, term));
                if let EntryPayload::Membership(m) = &entry.payload {
                    result = result.and(checkers.membership.observe_committed(index, m.configs()));
                }
            }
            node.seen_committed = index_of(committed);
            if result.is_ok() && first_off_leader {
                let log_id = committed.expect("advanced");
                self.stats.follower_first_commits += 1;
                let holders = self.durable_holders(log_id);
                let engine = self.nodes[i].host.as_ref().expect("checked").engine();
                let at = engine.log().membership_at(log_id.index).map(|m| m.membership.configs().to_vec());
                let at = at.unwrap_or_default();
                result = self.checkers.membership.observe_commit_on_notice(id, log_id, &at, &holders);
            }
            if result.is_ok() && leads {
                let log_id = committed.expect("advanced");
                let holders = self.durable_holders(log_id);
                let engine = self.nodes[i].host.as_ref().expect("checked").engine();
                let now = engine.membership().map(|m| m.membership.configs().to_vec()).unwrap_or_default();
                let before = engine
                    .log()
                    .membership_at(index_of(membership_before))
                    .map(|m| m.membership.configs().to_vec())
                    .unwrap_or_else(|| now.clone());
                // the config the entry itself came under: one call may propose,
                // commit (an append durable at once) and move past a membership
                let at_commit = engine
                    .log()
                    .membership_at(log_id.index)
                    .map(|m| m.membership.configs().to_vec())
                    .unwrap_or_else(|| now.clone());
                result =
                    self.checkers.membership.observe_leader_commit(id, log_id, &[&before, &at_commit, &now], &holders);
            }
        }
        self.judge_reverted_marks(new_marks);
        self.check(result);
    }

    /// Judges each new mark of a leader that a follower's log went backwards,
    /// once, right after the call that made it: the stale-conflict bug's
    /// symptom only when the follower's disk still holds what it matched.
    fn judge_reverted_marks(&mut self, marks: Vec<(LeaderId, NodeId, Option<LogId>)>) {
        for (leader_id, peer, matched) in marks {
            self.reverted_judged.insert((leader_id, peer));
            let disk = self.nodes[Self::idx(peer)].disk.lock().expect("single-threaded");
            if self.reverted_seen.is_none() && known_bugs::marks_a_log_that_did_not_go_backwards(matched, &disk) {
                let matched = matched.map_or("nothing".to_string(), |m| m.to_string());
                self.reverted_seen = Some(format!(
                    "leader {leader_id} marked n{peer} reverted at {} ms, its disk holding {matched}",
                    self.now
                ));
            }
        }
    }

    /// Acts on what node `i`'s host did, in order.
    fn drain(&mut self, i: usize) {
        let id = self.nodes[i].id;
        for record in self.nodes[i].journal.take() {
            match record {
                Record::Appended { entries, prev, committed, synced } => {
                    self.appended(i, entries, prev, committed, synced)
                }
                Record::Truncated(removed) => {
                    self.trace(|| format!("n{id} truncate: {} entries", removed.len()));
                    self.nodes[i].truncated.extend(removed);
                }
                Record::Purged(upto) => self.nodes[i].truncated.retain(|t| t.index > upto.index),
                Record::SnapshotSaved { index, data } => {
                    let digest = KvState::decode(&data).digest();
                    self.nodes[i].saved_snapshot = (index, digest);
                    self.trace(|| format!("n{id} saved snapshot at {index}"));
                    let result = self.checkers.state_machine.observe_snapshot(id, index, digest);
                    self.check(result);
                }
                Record::Restored => {
                    let (index, digest) = self.nodes[i].saved_snapshot;
                    self.nodes[i].applied_seen = index;
                    self.stats.snapshots_installed += 1;
                    self.trace(|| format!("n{id} installs snapshot at {index}"));
                    let result = self.checkers.state_machine.observe_state(id, index, digest);
                    self.check(result);
                }
                Record::Applied { log_id, op, wrote } => {
                    self.applied_up_to(i, log_id.index - 1);
                    let result = self.checkers.state_machine.observe_apply(id, log_id, fingerprint_of_write(op));
                    self.check(result);
                    self.nodes[i].applied_seen = log_id.index;
                    if !self.history.write_applied(op, wrote) {
                        self.fail(format!(
                            "write answers: write {op} was answered as not made, yet applied at {log_id}"
                        ));
                    }
                }
                Record::Sent { message, target } => self.send(*message, &target),
                Record::SnapshotTask(task) => {
                    let generation = self.nodes[i].incarnation;
                    let delay = self.rng.gen_range(0..=self.scenario.fsync_max_ms * 2) + self.disk_latency(id);
                    self.schedule(delay, Event::SnapshotJob { node: id, generation, task });
                }
                Record::InstallTask(task) => {
                    let generation = self.nodes[i].incarnation;
                    let delay = self.rng.gen_range(0..=self.scenario.fsync_max_ms * 2) + self.disk_latency(id);
                    self.schedule(delay, Event::InstallJob { node: id, generation, task });
                }
                Record::ReadTask(task) => {
                    let generation = self.nodes[i].incarnation;
                    let delay = self.rng.gen_range(0..=self.scenario.fsync_max_ms) + self.disk_latency(id);
                    self.schedule(delay, Event::ReadJob { node: id, generation, task });
                }
                Record::ChunkTask(task) => {
                    let generation = self.nodes[i].incarnation;
                    let delay = self.rng.gen_range(0..=self.scenario.fsync_max_ms) + self.disk_latency(id);
                    self.schedule(delay, Event::ChunkJob { node: id, generation, task });
                }
                Record::WriteAnswered { op, result } => self.write_answered(id, op, result),
                Record::ReadAnswered { key, invoke, value } => {
                    if let Some(value) = value {
                        self.history.read_done(key, invoke, value);
                    }
                }
                Record::MembershipAnswered { request_id, result } => {
                    self.trace(|| match &result {
                        Ok(m) => format!("n{id} membership request {request_id} done: {}", m.membership),
                        Err(e) => format!("n{id} membership request {request_id} failed: {e}"),
                    });
                    let check = self.checkers.answers.observe_done(id, request_id, &result);
                    self.check(check);
                    self.id_call_answered(request_id, &result);
                }
                Record::InitializeAnswered(result) => {
                    self.trace(|| format!("n{id} initialize answered: {result:?}"));
                    // the operator's script names valid members and this node among them
                    if let Err(e @ (InitializeError::Invalid(_) | InitializeError::NotInMembers { .. })) = result {
                        self.fail(format!("n{id} failed to initialize: {e}"));
                    }
                }
                Record::StepAnswered { handle, result } => {
                    self.trace(|| format!("n{id} joint step answered: {result:?}"));
                    let result = self.checkers.answers.step_answered(handle, &result, &self.checkers.committed);
                    self.check(result);
                }
            }
        }
        let applied = self.nodes[i].host.as_ref().map_or(LogIndex(0), |h| index_of(h.applied()));
        self.applied_up_to(i, applied);
    }

    /// Node `i` applied every entry up to `index`: the ones the state machine
    /// did not see (blank and membership entries) are checked from its disk.
    fn applied_up_to(&mut self, i: usize, index: LogIndex) {
        let id = self.nodes[i].id;
        while self.nodes[i].applied_seen < index {
            let next = self.nodes[i].applied_seen + 1;
            let written = self.nodes[i]
                .disk
                .lock()
                .expect("single-threaded")
                .written_at(next)
                .map(|e| (e.log_id, fingerprint(&e.payload)));
            let result = match written {
                Some((log_id, fingerprint)) => self.checkers.state_machine.observe_apply(id, log_id, fingerprint),
                None => Err(Violation {
                    rule: "apply",
                    detail: format!("node {id} applied {next}, which is not in its log"),
                }),
            };
            self.check(result);
            self.nodes[i].applied_seen = next;
        }
    }

    /// A write was answered: a success must name the caller's own write, a
    /// "forward to the leader" means it was never proposed.
    fn write_answered(
        &mut self,
        id: NodeId,
        op: u64,
        result: Result<ferraft::WriteResponse<u64>, WriteError<ferraft::BasicNode>>,
    ) {
        match result {
            Ok(response) if response.response != op => self.fail(format!(
                "write answers: write {op} to n{id} answered with the entry at {}, which holds write {}",
                response.log_id, response.response
            )),
            Ok(_) | Err(WriteError::LeadershipLost) | Err(WriteError::Fatal(_)) => {}
            Err(WriteError::ForwardToLeader(_)) => self.history.cancel_write(op),
        }
    }

    fn appended(
        &mut self,
        i: usize,
        entries: Vec<crate::disk::SimEntry>,
        prev: Option<Option<LogId>>,
        committed: Committed,
        synced: bool,
    ) {
        let id = self.nodes[i].id;
        let Some(first) = entries.first() else { return };
        let mut prev = prev;
        let mut result = Ok(());
        for entry in &entries {
            result = result.and(self.checkers.log_matching.observe_append(
                id,
                entry.log_id,
                fingerprint(&entry.payload),
                prev,
            ));
            prev = Some(Some(entry.log_id));
            if let EntryPayload::Membership(next) = &entry.payload {
                result = result.and(self.check_proposal(i, entry.log_id, next, &committed));
                let own_prev = self.own_proposal_base(i, entry.log_id).map(|prev| prev.membership.clone());
                self.checkers.answers.observe_append(entry.log_id, next, own_prev.as_ref());
                self.checkers.change_ids.observe_append(entry.log_id, next);
            }
        }
        let result = result.and(self.check_own_entries(id, &entries));
        self.check(result);
        self.trace(|| {
            let last = entries.last().map(|e| e.log_id.to_string()).unwrap_or_default();
            format!("n{id} append {}..{last} ({} entries)", first.log_id, entries.len())
        });
        let node = &mut self.nodes[i];
        if !synced && !node.fsync_pending {
            node.fsync_pending = true;
            let generation = node.incarnation;
            let delay = self.rng.gen_range(0..=self.scenario.fsync_max_ms) + self.disk_latency(id);
            self.schedule(delay, Event::Fsync { node: id, generation });
        }
    }

    /// The nodes whose simulated disks hold `log_id` durably.
    fn durable_holders(&self, log_id: LogId) -> BTreeSet<NodeId> {
        self.nodes
            .iter()
            .filter(|n| n.disk.lock().expect("single-threaded").durably_holds(log_id))
            .map(|n| n.id)
            .collect()
    }

    /// The extra latency of node `id`'s disk (the slow disk's, while faults last).
    fn disk_latency(&self, id: NodeId) -> u64 {
        let slow = self.scenario.slow_disk.filter(|(slow, _)| self.faults_on && *slow == id);
        slow.map_or(0, |(_, ms)| ms)
    }

    /// The membership before `log_id` if node `i` appended it as its own proposal (as leader).
    fn own_proposal_base(&self, i: usize, log_id: LogId) -> Option<&StoredMembership<ferraft::BasicNode>> {
        let engine = self.nodes[i].host.as_ref()?.engine();
        if !engine.is_leader() || engine.vote().leader_id != log_id.leader_id {
            return None;
        }
        engine.log().membership_at(log_id.index - 1)
    }

    /// Checks a membership entry this node proposed as leader; `committed`:
    /// the committed log id on its disk when it appended it, and the
    /// membership there.
    fn check_proposal(
        &self,
        i: usize,
        log_id: LogId,
        next: &Membership<ferraft::BasicNode>,
        committed: &Committed,
    ) -> Result<(), Violation> {
        let node = &self.nodes[i];
        let Some(prev) = self.own_proposal_base(i, log_id) else { return Ok(()) };
        self.trace(|| format!("n{} proposes membership {next} at {log_id}", node.id));
        let (committed, last_committed) = committed;
        self.checkers.membership.observe_proposal(
            log_id.leader_id,
            log_id.index,
            next.configs(),
            (index_of(prev.log_id), prev.membership.configs()),
            last_committed.as_deref(),
            *committed,
        )
    }

    /// Sends `message` to the machine at address `target` (`n<id>`, or
    /// `n<id>-<anything>` for an address a `SetNodes` gave it): a host that
    /// resolved the wrong address reaches the wrong machine, whose engine
    /// drops a message addressed to another node.
    fn send(&mut self, mut message: SimMessage, target: &ferraft::BasicNode) {
        if self.options.fault == Fault::ForgeAckSender
            && matches!(message.body, MessageBody::AppendReply(_))
            && self.rng.gen_bool(0.2)
        {
            let to = message.envelope.to;
            let other = (1..=self.scenario.nodes).map(NodeId).filter(|id| *id != to).choose(&mut self.rng);
            if let Some(other) = other {
                message.envelope.from = other;
            }
        }
        let (from, to) = (message.envelope.from, message.envelope.to);
        let machine = match self.route(&target.addr) {
            Some(Route::Here(machine)) => machine,
            Some(Route::There(machine)) => {
                self.trace(|| {
                    format!("send {from}->{to} (at the other cluster's n{machine}) {}", describe(&message.body))
                });
                return self.send_across(machine, &message);
            }
            None => {
                self.trace(|| format!("send {from}->{to} to unknown address {}: dropped", target.addr));
                return;
            }
        };
        self.trace(|| format!("send {from}->{to} (at n{machine}) {}", describe(&message.body)));
        for at in self.network.plan(from, machine, self.now, &mut self.rng) {
            self.schedule(at - self.now, Event::Deliver { machine, message: Box::new(message.clone()) });
        }
        self.maybe_misdeliver(machine, &message);
    }
}

/// The fingerprint of a client write's entry (see [`fingerprint`]).
fn fingerprint_of_write(op: u64) -> u64 {
    fingerprint(&EntryPayload::Normal(Put::write(op, 0)))
}
