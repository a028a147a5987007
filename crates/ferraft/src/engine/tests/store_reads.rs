//! A follower behind the in-memory cache is fed from the store (issue 22).

use super::*;
use crate::engine::ReplicationMode;

/// Node 1 leads {1,2,3} with a cache of 8 entries, appends of 4 and a
/// window of 2; 30 commands committed by node 3 alone, node 2 refusing them
/// back to index 2 (it lost them), and memory trimmed to the cache. Returns
/// the engine and the entries 2..=32 as the store holds them.
pub(super) fn leader_with_follower_behind_cache() -> (TestEngine, Vec<Entry<u64, BasicNode>>) {
    let config = Config {
        log_cache_entries: 8,
        max_entries_per_append: 4,
        max_inflight_appends: 2,
        purge_keep_entries: 0,
        pre_vote: false,
        // one chunk at a time: the window has its own tests (snapshot_window)
        snapshot_chunks_in_flight: 1,
        ..Config::default()
    };
    let state = LogState { entries: vec![membership_entry(&[1, 2, 3], &[1, 2, 3])], ..LogState::default() };
    let mut engine: TestEngine = Engine::new(NodeId(1), Arc::new(config), &state, 1, 0);
    engine.on_tick(10_000);
    let vote = engine.vote();
    for peer in [2, 3] {
        let reply = VoteReply { vote, granted: true, pre_vote: false, last_log_id: None, not_member: false };
        engine.on_message(msg(peer, 1, MessageBody::VoteReply(reply)));
    }
    commit_everywhere(&mut engine);
    engine.propose(0..30u64).unwrap();
    let last = engine.log().last_log_id().unwrap();
    engine.on_log_flushed(last);
    ack(&mut engine, 3, Some(last));
    let stored = engine.log().slice(LogIndex(2), 100);
    engine.trim_applied(last.index);
    assert_eq!(engine.log().first_index(), last.index - 8 + 1);
    let conflict = AppendOutcome::Conflict { hint_index: LogIndex(2), last_index: LogIndex(2) };
    let reply = AppendReply { vote: engine.vote(), seq: u64::MAX / 2, outcome: conflict, committed: LogIndex(2) };
    engine.take_outputs();
    engine.on_message(msg(2, 1, MessageBody::AppendReply(reply)));
    (engine, stored)
}

fn reads(outputs: &[Output<u64, BasicNode>]) -> Vec<(NodeId, LogIndex, LogIndex)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::ReadEntries { to, from, end, .. } => Some((*to, *from, *end)),
            _ => None,
        })
        .collect()
}

fn snapshot_sends(outputs: &[Output<u64, BasicNode>]) -> usize {
    outputs.iter().filter(|o| matches!(o, Output::SendSnapshotChunk { .. })).count()
}

/// The (prev index, entry indexes) of every append to `to`.
fn appends_to(outputs: &[Output<u64, BasicNode>], to: NodeId) -> Vec<(u64, Vec<u64>)> {
    sent(outputs)
        .into_iter()
        .filter(|m| m.envelope.to == to)
        .filter_map(|m| match &m.body {
            MessageBody::Append(a) if !a.entries.is_empty() => {
                Some((crate::log_id::index_of(a.prev_log_id).0, a.entries.iter().map(|e| e.log_id.index.0).collect()))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_follower_behind_the_cache_is_fed_from_the_store_not_a_snapshot() {
    let (mut engine, stored) = leader_with_follower_behind_cache();
    let outputs = engine.take_outputs();
    // probing: one append's worth, starting a step early to learn prev_log_id
    assert_eq!(reads(&outputs), vec![(NodeId(2), LogIndex(2), LogIndex(7))]);
    assert_eq!(snapshot_sends(&outputs), 0);
    let vote = engine.vote();
    engine.on_entries_read(NodeId(2), vote, LogIndex(2), stored[..5].to_vec());
    let outputs = engine.take_outputs();
    assert_eq!(appends_to(&outputs, NodeId(2)), vec![(2, vec![3, 4, 5, 6])]);
    assert!(reads(&outputs).is_empty(), "a probe is in flight: nothing more until it is answered");

    // the probe succeeds: the window (2 appends of 4) is filled from the store
    ack(&mut engine, 2, Some(stored[4].log_id));
    let outputs = engine.take_outputs();
    assert_eq!(reads(&outputs), vec![(NodeId(2), LogIndex(6), LogIndex(15))]);
    engine.on_entries_read(NodeId(2), vote, LogIndex(6), stored[4..13].to_vec());
    let outputs = engine.take_outputs();
    assert_eq!(appends_to(&outputs, NodeId(2)), vec![(6, vec![7, 8, 9, 10]), (10, vec![11, 12, 13, 14])]);
    let report = engine.catch_up(NodeId(2)).unwrap();
    assert_eq!((report.entries_from_store, report.snapshots_started), (12, 0));
}

#[test]
fn a_probe_from_the_store_lost_on_the_way_is_read_and_sent_again() {
    let (mut engine, stored) = leader_with_follower_behind_cache();
    engine.take_outputs();
    let vote = engine.vote();
    engine.on_entries_read(NodeId(2), vote, LogIndex(2), stored[..5].to_vec());
    assert_eq!(appends_to(&engine.take_outputs(), NodeId(2)), vec![(2, vec![3, 4, 5, 6])]);
    // the probe is lost: no answer; two heartbeats later it is read again
    let heartbeat = engine.config.heartbeat_interval_ms;
    engine.on_tick(engine.now_ms + heartbeat);
    assert!(reads(&engine.take_outputs()).is_empty(), "a probe in flight is waited for");
    engine.on_tick(engine.now_ms + heartbeat);
    assert_eq!(reads(&engine.take_outputs()), vec![(NodeId(2), LogIndex(2), LogIndex(7))]);
}

#[test]
fn an_answer_of_another_leadership_or_a_moved_follower_is_dropped() {
    let (mut engine, stored) = leader_with_follower_behind_cache();
    engine.take_outputs();
    let stale = Vote::new(Term(engine.vote().term().0 - 1), NodeId(1));
    engine.on_entries_read(NodeId(2), stale, LogIndex(2), stored[..5].to_vec());
    assert!(engine.take_outputs().is_empty(), "a read asked under another vote sends nothing");
    engine.on_entries_read(NodeId(2), engine.vote(), LogIndex(3), stored[1..5].to_vec());
    assert!(engine.take_outputs().is_empty(), "an answer to no read in flight sends nothing");
    engine.on_entries_read(NodeId(2), engine.vote(), LogIndex(2), stored[..5].to_vec());
    assert_eq!(
        appends_to(&engine.take_outputs(), NodeId(2)),
        vec![(2, vec![3, 4, 5, 6])],
        "the read in flight still counts"
    );
}

/// A read starts one entry early to learn the previous log id, and the hold
/// lets the store drop entries up to the follower's match: a snapshot whose
/// purge reaches that entry while the read is in flight leaves the read
/// without it (a store answers such a read with nothing, or with what
/// follows). The purge point names it now: the entries are read again from
/// the follower's next one, not replaced by a snapshot (the catch-up test
/// saw a snapshot here on a loaded machine, 9 runs in 30).
#[test]
fn a_purge_of_the_entry_before_a_read_in_flight_costs_no_snapshot() {
    for answer in [0..0, 1..5] {
        let (mut engine, stored) = leader_with_follower_behind_cache();
        assert_eq!(reads(&engine.take_outputs()), vec![(NodeId(2), LogIndex(2), LogIndex(7))]);
        engine.on_snapshot_saved(engine.log().last_log_id());
        let purged = engine.take_outputs().iter().any(|o| matches!(o, Output::PurgeLog(p) if p.index == LogIndex(2)));
        assert!(purged, "the hold lets the store drop the follower's match, entry 2");
        engine.on_entries_read(NodeId(2), engine.vote(), LogIndex(2), stored[answer.clone()].to_vec());
        let outputs = engine.take_outputs();
        assert_eq!(snapshot_sends(&outputs), 0, "{answer:?}: {outputs:?}");
        assert_eq!(reads(&outputs), vec![(NodeId(2), LogIndex(3), LogIndex(7))], "{answer:?}");
        engine.on_entries_read(NodeId(2), engine.vote(), LogIndex(3), stored[1..5].to_vec());
        assert_eq!(appends_to(&engine.take_outputs(), NodeId(2)), vec![(2, vec![3, 4, 5, 6])], "{answer:?}");
    }
}

#[test]
fn entries_gone_from_the_store_mean_a_snapshot() {
    let (mut engine, _) = leader_with_follower_behind_cache();
    engine.take_outputs();
    engine.on_entries_read(NodeId(2), engine.vote(), LogIndex(2), Vec::new());
    let outputs = engine.take_outputs();
    assert_eq!(snapshot_sends(&outputs), 1);
    let progress = &engine.leader_state().unwrap().progress[&NodeId(2)];
    assert!(matches!(progress.mode, ReplicationMode::Snapshot { next_offset: 0, .. }));
    assert_eq!(engine.catch_up(NodeId(2)).unwrap().snapshots_started, 1);
}

#[test]
fn a_store_that_cannot_read_ranges_means_a_snapshot() {
    let (mut engine, _) = leader_with_follower_behind_cache();
    engine.take_outputs();
    engine.on_store_reads_unsupported();
    engine.on_entries_read(NodeId(2), engine.vote(), LogIndex(2), Vec::new());
    assert_eq!(snapshot_sends(&engine.take_outputs()), 1);
    assert_eq!(engine.snapshot_must_cover(), engine.log().first_index() - 1, "a snapshot must reach the cache");
}

#[test]
fn a_follower_behind_the_stores_purge_point_gets_a_snapshot_at_once() {
    let (mut engine, _) = leader_with_follower_behind_cache();
    engine.take_outputs();
    engine.store_purged = Some(log_id(1, 1, 20));
    if let Role::Leader(leader) = &mut engine.role {
        leader.progress.get_mut(&NodeId(2)).unwrap().store.reading = None;
    }
    engine.replicate_to(NodeId(2), false);
    let outputs = engine.take_outputs();
    assert!(reads(&outputs).is_empty());
    assert_eq!(snapshot_sends(&outputs), 1);
}

/// A follower that lost its data (readmitted, or new) knows no addresses: a
/// probe read from the store must name the leader, as a probe from memory
/// does, or the follower cannot answer it and never catches up.
#[test]
fn a_probe_from_the_store_names_the_leader() {
    let (mut engine, stored) = leader_with_follower_behind_cache();
    engine.take_outputs();
    let vote = engine.vote();
    engine.on_entries_read(NodeId(2), vote, LogIndex(2), stored[..5].to_vec());
    let outputs = engine.take_outputs();
    let probes: Vec<bool> = outputs
        .iter()
        .filter_map(|o| match o {
            Output::Send(Message { envelope, body: MessageBody::Append(a) }) if envelope.to == NodeId(2) => {
                Some(a.leader_node.is_some())
            }
            _ => None,
        })
        .collect();
    assert_eq!(probes, vec![true], "the probe names the leader's address");
}
