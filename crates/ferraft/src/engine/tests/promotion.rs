//! Catch-up you can watch and promote when ready (issue 23), at the engine.

use super::membership_answers::answers;
use super::*;
use crate::engine::catch_up::NO_PROGRESS_HEARTBEATS;
use crate::engine::{CatchUpStall, ChangeOptions, Readiness};
use crate::error::ChangeMembershipError;
use crate::membership::ChangeMembersError;

/// Node 1 leads {1,2,3} with learner 4, all caught up, then appends `extra`
/// commands that only the voters acknowledge: learner 4 lacks them.
fn leader_with_learner_lagging(extra: u64) -> TestEngine {
    let mut engine = leader_of(&[&[1, 2, 3]], &[1, 2, 3, 4]);
    engine.propose(0..extra).unwrap();
    let last = engine.log().last_log_id();
    engine.on_log_flushed(last.unwrap());
    ack(&mut engine, 2, last);
    ack(&mut engine, 3, last);
    engine.take_outputs();
    engine
}

/// Runs heartbeats for `ms`, the voters holding the whole log and the
/// learner acknowledging `acked(now)` each time.
fn heartbeats(engine: &mut TestEngine, ms: u64, mut acked: impl FnMut(u64) -> Option<LogIndex>) {
    let end = engine.now_ms + ms;
    while engine.now_ms < end {
        let now = engine.now_ms + engine.config.heartbeat_interval_ms;
        engine.on_tick(now);
        let last = engine.log().last_log_id();
        engine.on_log_flushed(last.unwrap());
        ack(engine, 2, last);
        ack(engine, 3, last);
        if let Some(index) = acked(now) {
            let log_id = engine.log().log_id_at(index);
            ack(engine, 4, log_id);
        }
    }
}

fn learner_4_matched_at(engine: &mut TestEngine, index: LogIndex) {
    let log_id = engine.log().log_id_at(index);
    ack(engine, 4, log_id);
}

#[test]
fn catch_up_reports_lag_in_entries_and_encoded_bytes() {
    let mut engine = leader_with_learner_lagging(100);
    let last = engine.log().last_index();
    learner_4_matched_at(&mut engine, last - 40);
    let report = engine.catch_up(NodeId(4)).unwrap();
    assert_eq!(report.lag_entries, 40);
    let expected: u64 =
        (last - 39).through(last).map(|i| crate::engine::entry_bytes::encoded_size(engine.log().get(i).unwrap())).sum();
    assert_eq!(report.lag_bytes, expected);
    assert_eq!(engine.catch_up(NodeId(2)).unwrap().lag_entries, 0);
    assert_eq!(engine.catch_up(NodeId(2)).unwrap().lag_bytes, 0);
}

#[test]
fn catch_up_rate_is_the_slope_over_the_window_and_eta_follows_from_it() {
    let mut engine = leader_with_learner_lagging(1000);
    let start = engine.log().last_index() - 1000;
    learner_4_matched_at(&mut engine, start);
    // the learner gains 10 entries per 50 ms heartbeat: 200 entries/s
    let mut matched = start;
    heartbeats(&mut engine, 1000, |_| {
        matched += 10;
        Some(matched)
    });
    let report = engine.catch_up(NodeId(4)).unwrap();
    assert!((180.0..=220.0).contains(&report.rate_entries_per_s), "{report:?}");
    let eta = report.eta_ms.unwrap();
    let expected = report.lag_entries * 1000 / 200;
    assert!(eta.abs_diff(expected) <= expected / 10 + 50, "eta {eta} for {report:?}");
    assert_eq!(report.stall, None);
}

#[test]
fn a_learner_that_answers_but_does_not_advance_is_reported_stalled() {
    let mut engine = leader_with_learner_lagging(100);
    let at = engine.log().last_index() - 100;
    let heartbeat = engine.config.heartbeat_interval_ms;
    heartbeats(&mut engine, heartbeat * (NO_PROGRESS_HEARTBEATS - 2), |_| Some(at));
    assert_eq!(engine.catch_up(NodeId(4)).unwrap().stall, None, "not before N heartbeats");
    heartbeats(&mut engine, heartbeat * 3, |_| Some(at));
    let report = engine.catch_up(NodeId(4)).unwrap();
    assert!(
        matches!(report.stall, Some(CatchUpStall::NoProgress { heartbeats }) if heartbeats >= NO_PROGRESS_HEARTBEATS)
    );
    assert_eq!(report.eta_ms, None, "no ETA without progress");
}

#[test]
fn a_silent_learner_is_reported_unreachable() {
    let mut engine = leader_with_learner_lagging(10);
    let patience = engine.config.heartbeat_interval_ms * NO_PROGRESS_HEARTBEATS;
    heartbeats(&mut engine, patience - 50, |_| None);
    assert_eq!(engine.catch_up(NodeId(4)).unwrap().stall, None, "not before N heartbeats of silence");
    heartbeats(&mut engine, 100, |_| None);
    let stall = engine.catch_up(NodeId(4)).unwrap().stall;
    assert!(matches!(stall, Some(CatchUpStall::Unreachable { silent_ms }) if silent_ms >= patience), "{stall:?}");
    assert_eq!(engine.catch_up(NodeId(2)).unwrap().stall, None, "a voter that answers is not");
}

#[test]
fn the_transport_saying_unreachable_is_reported_at_once_and_cleared_by_an_answer() {
    let mut engine = leader_with_learner_lagging(10);
    engine.on_peer_unreachable(NodeId(4));
    assert!(matches!(engine.catch_up(NodeId(4)).unwrap().stall, Some(CatchUpStall::Unreachable { .. })));
    let now = engine.now_ms + 1;
    engine.on_tick(now);
    learner_4_matched_at(&mut engine, LogIndex(1));
    assert_eq!(engine.catch_up(NodeId(4)).unwrap().stall, None);
}

#[test]
fn promoting_a_lagging_learner_is_refused_with_its_lag() {
    let mut engine = leader_with_learner_lagging(2000);
    let last = engine.log().last_index();
    learner_4_matched_at(&mut engine, last - 1500);
    let change = ChangeMembers::AddVoterIds(set(&[4]));
    let err = engine.change_membership_with(7, change, ChangeOptions::default()).unwrap_err();
    let lag_bytes = engine.log().bytes_after(last - 1500);
    assert!(
        matches!(err, ChangeMembershipError::LearnerNotReady { node_id: NodeId(4), lag_entries: 1500, lag_bytes: b } if b == lag_bytes),
        "{err:?}"
    );
    assert!(!engine.effective().unwrap().is_voter(NodeId(4)), "nothing proposed");
    // prepare with it as a new voter is refused the same way
    let err = engine.prepare_membership_with(&set(&[1, 2, 3]), &set(&[4]), &set(&[2, 3, 4]), &set(&[]), false);
    assert!(matches!(err, Err(ChangeMembershipError::LearnerNotReady { node_id: NodeId(4), lag_entries: 1500, .. })));
}

/// A prepare is checked against what the caller expected before the new
/// voters' readiness: a stale expectation says `Mismatch`, and a new voter
/// that is no member says so (`NotLearner`), not that it lags. Before, both
/// were answered "learner N is not ready", naming the wrong reason.
#[test]
fn a_prepare_checks_the_expected_membership_and_membership_before_readiness() {
    let mut engine = leader_with_learner_lagging(2000);
    let last = engine.log().log_id_at(LogIndex(1));
    ack(&mut engine, 4, last);
    let before = engine.log().last_log_id();
    let stale = engine.prepare_membership_with(&set(&[1, 2]), &set(&[4]), &set(&[2, 3, 4]), &set(&[]), false);
    assert!(matches!(stale, Err(ChangeMembershipError::Mismatch { .. })), "{stale:?}");
    let stranger = engine.prepare_membership_with(&set(&[1, 2, 3]), &set(&[4]), &set(&[2, 3, 9]), &set(&[]), false);
    assert!(
        matches!(stranger, Err(ChangeMembershipError::Invalid(ChangeMembersError::NotLearner { node_id: NodeId(9) }))),
        "{stranger:?}"
    );
    let lagging = engine.prepare_membership_with(&set(&[1, 2, 3]), &set(&[4]), &set(&[2, 3, 4]), &set(&[]), false);
    assert!(matches!(lagging, Err(ChangeMembershipError::LearnerNotReady { node_id: NodeId(4), .. })), "{lagging:?}");
    assert_eq!(engine.log().last_log_id(), before, "nothing proposed");
}

#[test]
fn a_forced_promotion_of_a_lagging_learner_is_proposed() {
    let mut engine = leader_with_learner_lagging(2000);
    learner_4_matched_at(&mut engine, LogIndex(1));
    let change = ChangeMembers::AddVoterIds(set(&[4]));
    engine
        .change_membership_with(7, change, ChangeOptions { retain: false, force: true, ..Default::default() })
        .unwrap();
    assert!(engine.effective().unwrap().is_voter(NodeId(4)));
}

#[test]
fn a_caught_up_learner_is_promoted_by_a_plain_change() {
    let mut engine = leader_with_learner_lagging(10);
    let last = engine.log().last_index();
    learner_4_matched_at(&mut engine, last);
    let change = ChangeMembers::AddVoterIds(set(&[4]));
    engine.change_membership_with(7, change, ChangeOptions::default()).unwrap();
    assert!(engine.effective().unwrap().is_voter(NodeId(4)));
}

#[test]
fn a_learner_is_promoted_once_its_rule_held_for_the_hold_time_and_not_before() {
    let mut engine = leader_with_learner_lagging(500);
    let last = engine.log().last_index();
    let rule = Readiness { max_lag_entries: 50, max_lag_bytes: u64::MAX, hold_ms: 300 };
    engine.promote_when_ready(9, NodeId(4), rule).unwrap();
    learner_4_matched_at(&mut engine, last - 400);
    heartbeats(&mut engine, 500, |_| Some(last - 400));
    assert!(!engine.effective().unwrap().is_voter(NodeId(4)), "lagging 400 > 50: not promoted");
    // within the rule now, but only for less than hold_ms
    heartbeats(&mut engine, 250, |_| Some(last - 10));
    assert!(!engine.effective().unwrap().is_voter(NodeId(4)), "not before the rule held for 300 ms");
    // a break (lag back above 50) restarts the hold
    heartbeats(&mut engine, 50, |_| None);
    engine.propose(0..100).unwrap();
    heartbeats(&mut engine, 50, |_| None);
    let last = engine.log().last_index();
    heartbeats(&mut engine, 250, |_| Some(last));
    assert!(!engine.effective().unwrap().is_voter(NodeId(4)), "the hold restarted after the break");
    // ready since the second of those heartbeats (the first saw the lag
    // before the learner's answer)
    let since = engine.promotions[0].ready_since_ms.unwrap();
    while engine.now_ms + engine.config.heartbeat_interval_ms < since + 300 {
        heartbeats(&mut engine, 50, |_| Some(last));
        assert!(!engine.effective().unwrap().is_voter(NodeId(4)), "held {} ms", engine.now_ms - since);
    }
    heartbeats(&mut engine, 50, |_| Some(last));
    assert_eq!(engine.now_ms, since + 300);
    let m = engine.effective().unwrap();
    assert!(m.is_voter(NodeId(4)), "promoted once the rule held 300 ms: {m}");
    commit_everywhere(&mut engine);
    commit_everywhere(&mut engine);
    let answered = answers(&engine.take_outputs());
    assert!(
        matches!(&answered[..], [(9, Ok(m))] if m.membership.configs() == [set(&[1, 2, 3, 4])]),
        "the caller is answered with the promotion: {answered:?}"
    );
}

#[test]
fn a_leader_change_cancels_a_pending_promotion_as_partially_applied() {
    let mut engine = leader_with_learner_lagging(500);
    let rule = Readiness { max_lag_entries: 0, max_lag_bytes: 0, hold_ms: 0 };
    engine.promote_when_ready(9, NodeId(4), rule).unwrap();
    let vote = Vote { leader_id: LeaderId::new(engine.vote().term().next(), NodeId(2)), committed: true };
    let append = AppendEntries { leader_node: None, vote, seq: 1, prev_log_id: None, entries: vec![], committed: None };
    engine.on_message(msg(2, 1, MessageBody::Append(append)));
    let now = engine.now_ms + 1;
    engine.on_tick(now);
    let answered = answers(&engine.take_outputs());
    assert!(
        matches!(&answered[..], [(9, Err(ChangeMembershipError::PartiallyApplied { membership }))] if membership.membership.is_member(NodeId(4)) && !membership.membership.is_voter(NodeId(4))),
        "{answered:?}"
    );
}

#[test]
fn a_learner_that_never_gets_ready_is_given_up_on_within_the_bound() {
    let mut engine = leader_with_learner_lagging(500);
    let rule = Readiness { max_lag_entries: 0, max_lag_bytes: 0, hold_ms: 0 };
    engine.promote_when_ready(9, NodeId(4), rule).unwrap();
    let bound = engine.config.election_timeout_max_ms * 100;
    heartbeats(&mut engine, bound - 200, |_| Some(LogIndex(1)));
    assert!(answers(&engine.take_outputs()).is_empty(), "still waiting before the bound");
    heartbeats(&mut engine, 400, |_| Some(LogIndex(1)));
    let answered = answers(&engine.take_outputs());
    assert!(
        matches!(&answered[..], [(9, Err(ChangeMembershipError::PartiallyApplied { membership }))] if !membership.membership.is_voter(NodeId(4))),
        "answered, the learner still a learner: {answered:?}"
    );
}

#[test]
fn replace_voter_is_refused_while_the_learner_lags_and_is_one_joint_change_once_ready() {
    let mut engine = leader_with_learner_lagging(2000);
    learner_4_matched_at(&mut engine, LogIndex(1));
    let err = engine.replace_voter(5, NodeId(3), NodeId(4), false).unwrap_err();
    assert!(matches!(err, ChangeMembershipError::LearnerNotReady { node_id: NodeId(4), .. }), "{err:?}");
    assert_eq!(configs_of(&engine), [set(&[1, 2, 3])]);
    assert!(matches!(
        engine.replace_voter(5, NodeId(9), NodeId(4), false),
        Err(ChangeMembershipError::NotVoter { node_id: NodeId(9) })
    ));

    let last = engine.log().last_index();
    learner_4_matched_at(&mut engine, last);
    engine.replace_voter(5, NodeId(3), NodeId(4), false).unwrap();
    assert_eq!(configs_of(&engine), [set(&[1, 2, 3]), set(&[1, 2, 4])], "one joint step, never {{1,2,3,4}} or {{1,2}}");
    commit_everywhere(&mut engine);
    assert_eq!(configs_of(&engine), [set(&[1, 2, 4])]);
    commit_everywhere(&mut engine);
    let answered = answers(&engine.take_outputs());
    assert!(matches!(&answered[..], [(5, Ok(m))] if m.membership.configs() == [set(&[1, 2, 4])]), "{answered:?}");
}

/// Learner 4 (matched at `matched`) needs entries the leader purged: the
/// leader streams it a snapshot.
fn streaming_a_snapshot_to_learner_4(matched: impl Into<LogIndex>) -> TestEngine {
    let matched = matched.into();
    let mut engine = leader_with_learner_lagging(50);
    engine.config = Arc::new(Config { purge_keep_entries: 0, catch_up_retain_entries: 0, ..(*engine.config).clone() });
    let last = engine.log().last_log_id();
    engine.on_snapshot_saved(last);
    assert!(engine.log().first_index() > matched + 1, "the entries learner 4 needs are purged");
    let reply = AppendReply {
        vote: engine.vote(),
        seq: u64::MAX / 2,
        outcome: AppendOutcome::Conflict { hint_index: matched, last_index: matched },
        committed: LogIndex(0),
    };
    engine.on_message(msg(4, 1, MessageBody::AppendReply(reply)));
    let outputs = engine.take_outputs();
    assert!(outputs.iter().any(|o| matches!(o, Output::SendSnapshotChunk { to: NodeId(4), offset: 0, .. })));
    engine
}

fn snapshot_reply(engine: &mut TestEngine, next_offset: u64) {
    let (vote, seq) = (engine.vote(), u64::MAX / 2);
    let reply = crate::message::SnapshotReply { vote, last_log_id: None, next_offset, seq, installing: false };
    engine.on_message(msg(4, 1, MessageBody::SnapshotReply(reply)));
}

#[test]
fn snapshot_transfer_progress_is_the_bytes_the_follower_acknowledged() {
    let mut engine = streaming_a_snapshot_to_learner_4(2);
    assert_eq!(engine.catch_up(NodeId(4)).unwrap().snapshot_bytes_sent, Some(0));
    snapshot_reply(&mut engine, 4096);
    assert_eq!(engine.catch_up(NodeId(4)).unwrap().snapshot_bytes_sent, Some(4096));
    assert_eq!(engine.catch_up(NodeId(2)).unwrap().snapshot_bytes_sent, None, "none streams to a follower in the log");
    // a learner still receiving a snapshot is not ready, whatever its rule
    let rule = Readiness { max_lag_entries: u64::MAX, max_lag_bytes: u64::MAX, hold_ms: 0 };
    assert!(matches!(
        engine.check_ready(NodeId(4), &rule),
        Err(ChangeMembershipError::LearnerNotReady { node_id: NodeId(4), .. })
    ));
}

#[test]
fn a_snapshot_stream_that_does_not_advance_is_reported_failing() {
    let mut engine = streaming_a_snapshot_to_learner_4(2);
    snapshot_reply(&mut engine, 4096);
    // the learner keeps answering, but never past byte 4096
    let timeout = engine.config.election_timeout_max_ms;
    let end = engine.now_ms + timeout;
    while engine.now_ms < end {
        heartbeats(&mut engine, 50, |_| None);
        snapshot_reply(&mut engine, 4096);
        assert_eq!(engine.catch_up(NodeId(4)).unwrap().stall, None, "not before an election timeout");
    }
    heartbeats(&mut engine, 100, |_| None);
    snapshot_reply(&mut engine, 4096);
    let stall = engine.catch_up(NodeId(4)).unwrap().stall;
    assert!(matches!(stall, Some(CatchUpStall::SnapshotFailing { stalled_ms }) if stalled_ms >= timeout), "{stall:?}");
}

#[test]
fn a_learner_whose_log_went_backwards_is_reported_reverted_and_is_not_ready() {
    let mut engine = leader_with_learner_lagging(10);
    let last = engine.log().last_index();
    learner_4_matched_at(&mut engine, last);
    // its data was wiped: it now answers with an empty log
    let reply = AppendReply {
        vote: engine.vote(),
        seq: u64::MAX / 2 + 1,
        outcome: AppendOutcome::Conflict { hint_index: LogIndex(0), last_index: LogIndex(0) },
        committed: LogIndex(0),
    };
    engine.on_message(msg(4, 1, MessageBody::AppendReply(reply)));
    assert_eq!(engine.catch_up(NodeId(4)).unwrap().stall, Some(CatchUpStall::LogReverted));
    let rule = Readiness { max_lag_entries: u64::MAX, max_lag_bytes: u64::MAX, hold_ms: 0 };
    assert!(matches!(
        engine.check_ready(NodeId(4), &rule),
        Err(ChangeMembershipError::LearnerNotReady { node_id: NodeId(4), .. })
    ));
}

/// Red team (real processes, `tools/fault-injection/retry_not_ready.py`): a
/// promotion under a change id committed, node 4 was demoted again and fell
/// behind; a repeat of the promotion was answered "learner 4 is not ready"
/// (a refusal, as if it had never happened) instead of its first outcome,
/// and another change under the id got the same answer instead of
/// `ChangeIdReused`: readiness was checked before the id was looked up.
#[test]
fn a_repeat_of_a_promotion_is_answered_by_its_id_before_readiness() {
    let mut engine = leader_with_learner_lagging(0);
    let with_id = |force| ChangeOptions { force, guard: guard("p"), ..ChangeOptions::default() };
    engine.change_membership_with(7, ChangeMembers::AddVoterIds(set(&[4])), with_id(true)).unwrap();
    commit_everywhere(&mut engine);
    commit_everywhere(&mut engine);
    let first = match &answers(&engine.take_outputs())[..] {
        [(7, Ok(m))] => m.clone(),
        other => panic!("{other:?}"),
    };
    engine.change_membership(8, ChangeMembers::RemoveVoters(set(&[4])), true).unwrap();
    commit_everywhere(&mut engine);
    // node 4, a learner again, falls far behind
    engine.propose(0..2000).unwrap();
    let last = engine.log().last_log_id();
    engine.on_log_flushed(last.unwrap());
    ack(&mut engine, 2, last);
    ack(&mut engine, 3, last);
    engine.take_outputs();
    let before = engine.log().last_log_id();
    engine.change_membership_with(9, ChangeMembers::AddVoterIds(set(&[4])), with_id(false)).unwrap();
    let repeat = answers(&engine.take_outputs());
    assert!(matches!(&repeat[..], [(9, Ok(m))] if *m == first), "the first outcome: {repeat:?}");
    let other = engine.change_membership_with(10, ChangeMembers::RemoveVoters(set(&[2])), with_id(false));
    assert!(matches!(other, Err(ChangeMembershipError::ChangeIdReused { .. })), "{other:?}");
    assert_eq!(engine.log().last_log_id(), before, "nothing proposed");
}

fn guard(change_id: &str) -> crate::membership::ChangeGuard {
    crate::membership::ChangeGuard { change_id: Some(change_id.to_string()), expect_membership_index: None }
}
