//! Changes with identity and preconditions, and changes that end by
//! themselves (issue 23), checked at the engine.

use super::*;
use crate::engine::ChangeStatus;
use crate::error::ChangeMembershipError;
use crate::membership::ChangeGuard;

fn guard(change_id: &str) -> ChangeGuard {
    ChangeGuard { change_id: Some(change_id.to_string()), expect_membership_index: None }
}

fn done(outputs: &[Output<u64, BasicNode>]) -> Vec<(u64, String)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::MembershipDone { request_id, result } => Some((*request_id, format!("{result:?}"))),
            _ => None,
        })
        .collect()
}

/// A new engine for node `id` whose log is `entries`, all committed, elected
/// by every other voter.
fn leader_from_log(id: NodeId, entries: Vec<Entry<u64, BasicNode>>) -> TestEngine {
    let committed = entries.last().map(|e| e.log_id);
    elected(id, LogState { entries, committed, ..LogState::default() })
}

/// Every member acknowledges the whole log of `engine` (any leader id).
fn commit_all(engine: &mut TestEngine) {
    let last = engine.log().last_log_id().unwrap();
    engine.on_log_flushed(last);
    let me = engine.id();
    let peers: Vec<NodeId> = engine.effective().unwrap().nodes().keys().copied().filter(|p| *p != me).collect();
    for peer in peers {
        let outcome = AppendOutcome::Success { matched: Some(last) };
        let reply = AppendReply { vote: engine.vote(), seq: u64::MAX / 2, outcome, committed: last.index };
        engine.on_message(msg(peer, me, MessageBody::AppendReply(reply)));
    }
}

#[test]
fn a_retried_change_id_gets_the_first_outcome_even_from_another_leader() {
    let mut engine = leader_of(&[&[1, 2, 3]], &[1, 2, 3, 4]);
    engine.change_membership_guarded(1, ChangeMembers::AddVoterIds(set(&[4])), false, guard("grow")).unwrap();
    commit_everywhere(&mut engine);
    commit_everywhere(&mut engine);
    let first = done(&engine.take_outputs());
    assert!(matches!(&first[..], [(1, ok)] if ok.starts_with("Ok")), "{first:?}");
    let entries: Vec<_> =
        LogIndex(1).through(engine.log().last_index()).map(|i| engine.log().get(i).unwrap().clone()).collect();
    let last_before = engine.log().last_log_id();
    // the same call again, on node 2 leading after a failover: nothing new is proposed
    let mut other = leader_from_log(NodeId(2), entries);
    commit_all(&mut other);
    other.take_outputs();
    let before = other.log().last_log_id();
    other.change_membership_guarded(2, ChangeMembers::AddVoterIds(set(&[4])), false, guard("grow")).unwrap();
    assert_eq!(other.log().last_log_id(), before, "a retry proposes nothing");
    let retried = done(&other.take_outputs());
    assert!(matches!(&retried[..], [(2, ok)] if ok.starts_with("Ok")), "{retried:?}");
    assert!(matches!(other.change_status("grow"), ChangeStatus::Committed { .. }));
    assert!(before > last_before);
}

#[test]
fn a_retried_change_id_does_not_apply_a_removal_twice() {
    // RemoveVoters({3}) then AddVoterIds({3}) by someone else: retrying the
    // removal with its id must not remove 3 again
    let mut engine = leader_of(&[&[1, 2, 3]], &[1, 2, 3]);
    engine.change_membership_guarded(1, ChangeMembers::RemoveVoters(set(&[3])), true, guard("shrink")).unwrap();
    commit_everywhere(&mut engine);
    commit_everywhere(&mut engine);
    engine.change_membership(2, ChangeMembers::AddVoterIds(set(&[3])), false).unwrap();
    commit_everywhere(&mut engine);
    commit_everywhere(&mut engine);
    assert!(engine.effective().unwrap().is_voter(NodeId(3)));
    engine.take_outputs();
    engine.change_membership_guarded(3, ChangeMembers::RemoveVoters(set(&[3])), true, guard("shrink")).unwrap();
    assert!(engine.effective().unwrap().is_voter(NodeId(3)), "the retry did not run the removal again");
    let answered = done(&engine.take_outputs());
    assert!(matches!(&answered[..], [(3, ok)] if ok.starts_with("Ok")), "{answered:?}");
}

#[test]
fn a_refused_change_id_is_refused_again_with_the_same_reason() {
    let mut engine = leader_of(&[&[1, 2, 3]], &[1, 2, 3]);
    let first = engine.change_membership_guarded(1, ChangeMembers::AddVoterIds(set(&[9])), false, guard("bad"));
    let again = engine.change_membership_guarded(2, ChangeMembers::AddVoterIds(set(&[9])), false, guard("bad"));
    assert!(matches!(first, Err(ChangeMembershipError::Invalid(_))));
    assert_eq!(format!("{first:?}"), format!("{again:?}"));
    assert!(matches!(engine.change_status("bad"), ChangeStatus::Failed { .. }));
    assert_eq!(engine.change_status("never"), ChangeStatus::Unknown);
}

#[test]
fn a_change_whose_precondition_fails_changes_nothing() {
    let mut engine = leader_of(&[&[1, 2, 3]], &[1, 2, 3, 4]);
    let in_force = index_of(engine.membership().unwrap().log_id);
    let stale = ChangeGuard { change_id: None, expect_membership_index: Some(in_force + 7) };
    let last = engine.log().last_log_id();
    let refused = engine.change_membership_guarded(1, ChangeMembers::RemoveNodes(set(&[4])), false, stale);
    assert!(
        matches!(refused, Err(ChangeMembershipError::PreconditionFailed { expected, .. }) if expected == in_force + 7)
    );
    assert_eq!(engine.log().last_log_id(), last, "nothing proposed");
    // checked again when the leader gets to it: a change queued before it
    // moves the membership on, so it is refused then
    engine.change_membership(2, ChangeMembers::AddNodes(nodes(&[5])), false).unwrap();
    let proposed = index_of(engine.membership().unwrap().log_id);
    engine.change_membership(3, ChangeMembers::AddNodes(nodes(&[6])), false).unwrap();
    let current = ChangeGuard { change_id: None, expect_membership_index: Some(proposed) };
    engine.change_membership_guarded(4, ChangeMembers::RemoveNodes(set(&[4])), false, current).unwrap();
    for _ in 0..3 {
        commit_everywhere(&mut engine);
    }
    let answered = done(&engine.take_outputs());
    assert!(answered.iter().any(|(id, a)| *id == 4 && a.contains("PreconditionFailed")), "{answered:?}");
    assert!(engine.effective().unwrap().is_member(NodeId(6)), "the change ahead of it ran");
    assert!(engine.effective().unwrap().is_member(NodeId(4)), "the guarded removal never ran");
}

#[test]
fn a_joint_entry_whose_new_voters_never_answer_is_rolled_back_in_time() {
    let mut engine = leader_of(&[&[1, 2, 3]], &[1, 2, 3, 4, 5]);
    engine.take_outputs();
    engine
        .change_membership_guarded(1, ChangeMembers::ReplaceAllVoters(set(&[1, 4, 5])), false, guard("move"))
        .unwrap();
    let joint = engine.log().last_log_id().unwrap();
    engine.on_log_flushed(joint);
    // the old side answers; 4 and 5 never do, so the joint entry cannot commit
    let timeout = engine.config.joint_exit_timeout_ms;
    let step = engine.config.heartbeat_interval_ms;
    let start = engine.now_ms;
    let mut now = start;
    while engine.log().last_log_id() == Some(joint) {
        now += step;
        assert!(now <= start + timeout + 10 * step, "no revert within the timeout");
        engine.on_tick(now);
        for peer in [2, 3] {
            ack(&mut engine, peer, Some(joint));
        }
    }
    assert!(now >= start + timeout, "not before the timeout");
    assert_eq!(configs_of(&engine), vec![set(&[1, 2, 3])], "back to the old voters");
    let revert = engine.log().last_log_id().unwrap();
    engine.on_log_flushed(revert);
    for peer in [2, 3] {
        ack(&mut engine, peer, Some(revert));
    }
    assert_eq!(engine.committed(), Some(revert), "the old voters alone commit the revert");
    let answered = done(&engine.take_outputs());
    assert!(matches!(&answered[..], [(1, a)] if a.contains("RolledBack")), "the caller learns why: {answered:?}");
    assert!(matches!(engine.change_status("move"), ChangeStatus::RolledBack { .. }));
}

#[test]
fn a_leader_after_a_whole_cluster_restart_finishes_a_committed_joint_config() {
    let mut engine = leader_of(&[&[1, 2, 3]], &[1, 2, 3, 4]);
    engine.change_membership_guarded(1, ChangeMembers::AddVoterIds(set(&[4])), false, guard("grow")).unwrap();
    let joint = engine.log().last_log_id().unwrap();
    let entries: Vec<_> = LogIndex(1).through(joint.index).map(|i| engine.log().get(i).unwrap().clone()).collect();
    // every node restarts with the joint entry committed, nothing after it
    let mut restarted = leader_from_log(NodeId(2), entries);
    commit_all(&mut restarted);
    let m = restarted.membership().unwrap().membership.clone();
    assert_eq!(m.configs(), &[set(&[1, 2, 3, 4])], "the new leader proposed the exit by itself");
    commit_all(&mut restarted);
    assert!(matches!(restarted.change_status("grow"), ChangeStatus::Committed { .. }));
}

#[test]
fn an_uncommitted_prepared_joint_config_can_be_aborted_at_once() {
    let mut engine = leader_of(&[&[1, 2, 3]], &[1, 2, 3, 4, 5]);
    let prepared = engine.prepare_membership(&set(&[1, 2, 3]), &set(&[4, 5]), &set(&[1, 4, 5]), &set(&[])).unwrap();
    // 4 and 5 never answer: the joint entry cannot commit, yet the operator can go back
    let joint = engine.log().last_log_id().unwrap();
    engine.on_log_flushed(joint);
    ack(&mut engine, 2, Some(joint));
    assert!(engine.committed() < Some(joint));
    let aborted = engine.abort_membership(prepared).unwrap();
    assert_eq!(configs_of(&engine), vec![set(&[1, 2, 3])]);
    let revert = engine.log().last_log_id().unwrap();
    engine.on_log_flushed(revert);
    ack(&mut engine, 2, Some(revert));
    assert_eq!(engine.committed(), Some(revert), "the old voters alone commit the abort");
    assert_eq!(engine.abort_membership(prepared).unwrap(), aborted, "and a retry answers the same");
}

/// Seed 7963 (membership stress): n1 led as a non-voter of the committed
/// `[{2,3,4}]` and proposed the joint `[{2,3,4},{1,2,4,6}]`; cut off with 6,
/// it reverted the uncommitted joint to `[{2,3,4}]`. Only 1 and 6 held the
/// revert, and it made neither a voter: the old voters, in the joint config,
/// needed a vote from 1 or 6, whose logs were ahead. No leader for 20 s after
/// every fault stopped. A leader outside the old config does not revert
/// (`may_revert_uncommitted_joint`); and since a removed leader steps down
/// once its removal commits, proposing nothing queued behind it, it never
/// holds such a joint config in the first place.
#[test]
fn a_leader_outside_the_old_config_does_not_revert_an_uncommitted_joint_config() {
    let config = Arc::new(Config { joint_exit_timeout_ms: 100, pre_vote: false, ..Config::default() });
    let state = LogState {
        cluster_id: ClusterId::new(CLUSTER),
        entries: vec![membership_entry(&[1, 2, 3, 4], &[1, 2, 3, 4])],
        ..LogState::default()
    };
    let mut engine = Engine::new(NodeId(1), config, &state, 1, 0);
    engine.on_tick(10_000);
    let vote = engine.vote();
    for peer in [2, 3, 4] {
        let reply = VoteReply { vote, granted: true, pre_vote: false, last_log_id: None, not_member: false };
        engine.on_message(msg(peer, 1, MessageBody::VoteReply(reply)));
    }
    commit_everywhere(&mut engine);
    // 1 leaves the voters, and asks to come back
    engine.change_membership(1, ChangeMembers::RemoveVoters(set(&[1])), true).unwrap();
    engine.change_membership(2, ChangeMembers::AddVoterIds(set(&[1])), false).unwrap();
    // the joint step, then its exit
    commit_everywhere(&mut engine);
    commit_everywhere(&mut engine);
    assert!(!engine.is_leader(), "the removed leader handed over");
    assert_eq!(configs_of(&engine), vec![set(&[2, 3, 4])], "the comeback was not proposed by the removed leader");
    let now = engine.now_ms;
    for step in 1..=6 {
        engine.on_tick(now + step * 30);
    }
    assert_eq!(configs_of(&engine), vec![set(&[2, 3, 4])], "no joint config, so no revert");
}

/// Whether `result` is the refusal of a change id already used for another change.
fn reused(result: &Result<(), ChangeMembershipError<BasicNode>>, id: &str) -> bool {
    matches!(result, Err(ChangeMembershipError::ChangeIdReused { change_id }) if change_id == id)
}

/// A change id names one change: another change under an id still tracked
/// by the leader (queued or proposed, not yet answered) is refused and
/// changes nothing, and the same change again still joins the first call.
/// Before, the other change was answered with the first change's outcome.
#[test]
fn a_change_id_reused_for_another_change_while_tracked_is_refused() {
    let mut engine = leader_of(&[&[1, 2, 3]], &[1, 2, 3, 4, 5]);
    engine.take_outputs();
    engine.change_membership_guarded(1, ChangeMembers::AddVoterIds(set(&[4])), false, guard("grow")).unwrap();
    let proposed = engine.log().last_log_id();
    let other = engine.change_membership_guarded(2, ChangeMembers::AddVoterIds(set(&[5])), false, guard("grow"));
    assert!(reused(&other, "grow"), "{other:?}");
    let retain = engine.change_membership_guarded(3, ChangeMembers::AddVoterIds(set(&[4])), true, guard("grow"));
    assert!(reused(&retain, "grow"), "another retain is another change: {retain:?}");
    assert_eq!(engine.log().last_log_id(), proposed, "nothing proposed for them");
    engine.change_membership_guarded(4, ChangeMembers::AddVoterIds(set(&[4])), false, guard("grow")).unwrap();
    commit_everywhere(&mut engine);
    commit_everywhere(&mut engine);
    let answered = done(&engine.take_outputs());
    assert!(answered.iter().all(|(_, a)| a.starts_with("Ok")), "{answered:?}");
    assert_eq!(answered.iter().map(|(id, _)| *id).collect::<Vec<_>>(), vec![1, 4]);
    assert!(!engine.effective().unwrap().is_voter(NodeId(5)));
}

/// The same rule for an id the leader finds only in its log (after a
/// failover or a restart): the change asked for is checked against the
/// entry the first call proposed.
#[test]
fn a_change_id_reused_for_another_change_found_in_the_log_is_refused() {
    let mut engine = leader_of(&[&[1, 2, 3]], &[1, 2, 3, 4, 5]);
    engine.change_membership_guarded(1, ChangeMembers::RemoveVoters(set(&[3])), true, guard("shrink")).unwrap();
    commit_everywhere(&mut engine);
    commit_everywhere(&mut engine);
    let entries: Vec<_> =
        LogIndex(1).through(engine.log().last_index()).map(|i| engine.log().get(i).unwrap().clone()).collect();
    let mut other = leader_from_log(NodeId(2), entries);
    commit_all(&mut other);
    other.take_outputs();
    let before = other.log().last_log_id();
    for (change, retain) in [
        (ChangeMembers::RemoveVoters(set(&[2])), true),
        (ChangeMembers::RemoveVoters(set(&[3])), false),
        (ChangeMembers::AddVoterIds(set(&[4])), false),
    ] {
        let refused = other.change_membership_guarded(2, change.clone(), retain, guard("shrink"));
        assert!(reused(&refused, "shrink"), "{change:?} retain {retain}: {refused:?}");
    }
    assert_eq!(other.log().last_log_id(), before, "nothing proposed");
    assert!(done(&other.take_outputs()).is_empty());
    other.change_membership_guarded(3, ChangeMembers::RemoveVoters(set(&[3])), true, guard("shrink")).unwrap();
    let retried = done(&other.take_outputs());
    assert!(matches!(&retried[..], [(3, ok)] if ok.starts_with("Ok")), "the same change still retries: {retried:?}");
}

/// And for an id whose first call was refused: the other change is told the
/// id is taken, not the first change's refusal.
#[test]
fn a_change_id_reused_for_another_change_after_a_refusal_is_refused_as_reused() {
    let mut engine = leader_of(&[&[1, 2, 3]], &[1, 2, 3, 4]);
    let first = engine.change_membership_guarded(1, ChangeMembers::AddVoterIds(set(&[9])), false, guard("bad"));
    assert!(matches!(first, Err(ChangeMembershipError::Invalid(_))));
    let last = engine.log().last_log_id();
    let other = engine.change_membership_guarded(2, ChangeMembers::AddVoterIds(set(&[4])), false, guard("bad"));
    assert!(reused(&other, "bad"), "{other:?}");
    assert_eq!(engine.log().last_log_id(), last, "nothing proposed");
    assert!(!engine.effective().unwrap().is_voter(NodeId(4)));
}
