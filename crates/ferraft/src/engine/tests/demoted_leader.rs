//! Attacks on the rule that lets a node its pending membership demotes or
//! removes campaign (review of 19c1f79): it must win and commit only with a
//! quorum that leaves its own vote out, hand over once its demotion commits,
//! stop once it knows that, and never depose a live leader.

use super::membership_answers::answers;
use super::*;
use crate::error::{ChangeMembershipError, ReadError};
use crate::membership::ChangeGuard;

/// Node `id` restarted with a log of the memberships `payloads` (entries 1..,
/// term 1, written by node 1), knowing entries up to `committed` committed.
fn restarted(id: u64, payloads: Vec<Membership<BasicNode>>, committed: Option<u64>) -> TestEngine {
    let entries: Vec<Entry<u64, BasicNode>> = (1..)
        .zip(payloads)
        .map(|(i, m)| Entry { log_id: log_id(1, 1, i), payload: EntryPayload::Membership(m) })
        .collect();
    let state = LogState {
        cluster_id: ClusterId::new(CLUSTER),
        vote: Some(Vote::new_committed(Term(1), NodeId(1))),
        committed: committed.map(|i| log_id(1, 1, i)),
        entries,
        ..LogState::default()
    };
    let mut engine = Engine::new(NodeId(id), config(LeaderIdMode::Standard, false), &state, id, 0);
    engine.take_outputs();
    engine
}

fn members(configs: &[&[u64]], all: &[u64]) -> Membership<BasicNode> {
    Membership::new(configs.iter().map(|c| set(c)).collect(), nodes(all)).unwrap()
}

/// `[{1,2,3}]`, the joint `[{1,2,3},{1,3}]`, then `[{1,3}]` over `last_all`
/// (node 2 a learner with `[1,2,3]`, removed with `[1,3]`).
fn leaving_2(last_all: &[u64]) -> Vec<Membership<BasicNode>> {
    vec![members(&[&[1, 2, 3]], &[1, 2, 3]), members(&[&[1, 2, 3], &[1, 3]], &[1, 2, 3]), members(&[&[1, 3]], last_all)]
}

fn sent_kinds(outputs: &[Output<u64, BasicNode>], vote: bool) -> Vec<NodeId> {
    sent(outputs)
        .iter()
        .filter(|m| {
            if vote {
                matches!(m.body, MessageBody::Vote(_))
            } else {
                matches!(m.body, MessageBody::TimeoutNow(_))
            }
        })
        .map(|m| m.envelope.to)
        .collect()
}

fn grant(engine: &mut TestEngine, from: u64) {
    let reply = VoteReply { vote: engine.vote(), granted: true, pre_vote: false, last_log_id: None, not_member: false };
    engine.on_message(msg(from, engine.id(), MessageBody::VoteReply(reply)));
}

#[test]
fn a_demoted_candidate_wins_and_commits_only_with_a_quorum_of_others() {
    for last_all in [&[1, 2, 3][..], &[1, 3][..]] {
        let mut engine = restarted(2, leaving_2(last_all), None);
        engine.on_tick(10_000);
        assert_eq!(sent_kinds(&engine.take_outputs(), true), [NodeId(1), NodeId(3)]);
        // [{1,3}] needs both: node 1's vote and its own would be two of three
        grant(&mut engine, 1);
        assert!(!engine.is_leader(), "its own vote does not count ({last_all:?})");
        grant(&mut engine, 3);
        assert!(engine.is_leader());
        let blank = engine.log().last_log_id().unwrap();
        engine.on_log_flushed(blank);
        ack(&mut engine, 1, Some(blank));
        assert_eq!(engine.committed(), None, "its own copy does not count either ({last_all:?})");
        assert!(engine.lease_read().is_err(), "no lease before its blank entry commits");
        engine.take_outputs();
        ack(&mut engine, 3, Some(blank));
        assert_eq!(engine.committed(), Some(blank));
        let outputs = engine.take_outputs();
        assert_eq!(sent_kinds(&outputs, false).len(), 1, "hands over to one voter holding everything");
        assert!(!engine.is_leader());
        assert!(matches!(engine.lease_read(), Err(ReadError::ForwardToLeader(_))));
        // it now knows its demotion committed: it never campaigns again
        engine.on_tick(100_000);
        assert!(sent_kinds(&engine.take_outputs(), true).is_empty(), "{last_all:?}");
    }
}

#[test]
fn a_node_in_the_old_half_of_a_pending_joint_leads_through_the_exit_and_then_hands_over() {
    let exit = crate::membership::JointExit { automatic: true, keep_as_learners: set(&[2]) };
    let payloads =
        vec![members(&[&[1, 2, 3]], &[1, 2, 3]), members(&[&[1, 2, 3], &[1, 3]], &[1, 2, 3]).with_exit(exit)];
    let mut engine = restarted(2, payloads, Some(1));
    engine.on_tick(10_000);
    engine.take_outputs();
    grant(&mut engine, 1);
    assert!(!engine.is_leader(), "{{1,2}} is a majority of the old half only");
    grant(&mut engine, 3);
    assert!(engine.is_leader());
    let blank = engine.log().last_log_id().unwrap();
    engine.on_log_flushed(blank);
    ack(&mut engine, 1, Some(blank));
    ack(&mut engine, 3, Some(blank));
    assert_eq!(engine.committed(), Some(blank));
    let exit = engine.log().last_log_id().unwrap();
    assert!(exit.index > blank.index, "the joint entry committed: its exit is proposed");
    assert_eq!(engine.effective().unwrap().configs(), [set(&[1, 3])]);
    engine.on_log_flushed(exit);
    ack(&mut engine, 1, Some(exit));
    assert!(engine.is_leader(), "the exit needs node 3 too: node 2 is not its voter");
    ack(&mut engine, 3, Some(exit));
    assert_eq!(engine.committed(), Some(exit));
    assert!(!engine.is_leader());
}

#[test]
fn a_change_asked_of_a_demoted_leader_is_told_nothing_happened_when_it_hands_over() {
    let mut engine = restarted(2, leaving_2(&[1, 2, 3]), None);
    engine.on_tick(10_000);
    grant(&mut engine, 1);
    grant(&mut engine, 3);
    let blank = engine.log().last_log_id().unwrap();
    engine.change_membership(5, ChangeMembers::AddVoterIds(set(&[2])), false).unwrap();
    engine.on_log_flushed(blank);
    ack(&mut engine, 1, Some(blank));
    ack(&mut engine, 3, Some(blank));
    assert!(!engine.is_leader());
    assert_eq!(engine.log().last_log_id(), Some(blank), "nothing proposed after handing over");
    let answered = answers(&engine.take_outputs());
    assert!(matches!(&answered[..], [(5, Err(ChangeMembershipError::ForwardToLeader(_)))]), "{answered:?}");
}

#[test]
fn a_demoted_learner_stops_campaigning_once_a_leader_tells_it_the_commit() {
    let mut engine = restarted(2, leaving_2(&[1, 2, 3]), None);
    engine.on_tick(10_000);
    assert!(!sent_kinds(&engine.take_outputs(), true).is_empty());
    let append = AppendEntries {
        vote: Vote::new_committed(Term(3), NodeId(1)),
        prev_log_id: Some(log_id(1, 1, 3)),
        entries: vec![],
        committed: Some(log_id(1, 1, 3)),
        seq: 1,
        leader_node: None,
    };
    engine.on_message(msg(1, 2, MessageBody::Append(append)));
    assert!(engine.membership_committed());
    engine.take_outputs();
    engine.on_tick(100_000);
    assert!(sent_kinds(&engine.take_outputs(), true).is_empty());
}

#[test]
fn a_live_leader_is_not_deposed_by_a_demoted_learner_campaigning_without_pre_vote() {
    let mut engine = restarted(1, leaving_2(&[1, 2, 3]), Some(3));
    engine.on_tick(10_000);
    grant(&mut engine, 3);
    assert!(engine.is_leader());
    commit_everywhere(&mut engine);
    engine.take_outputs();
    let before = engine.vote();
    engine.on_message(msg(2, 1, vote_request(before.term().0 + 5, 2, engine.log().last_log_id())));
    assert_eq!(granted(&engine.take_outputs()), Some(false));
    assert!(engine.is_leader());
    assert_eq!(engine.vote(), before);
}

#[test]
fn a_removed_node_that_a_quorum_calls_no_member_stops_campaigning() {
    // node 3 holds node 2's log: it refuses as a non-member, keeping its vote
    let mut voter = restarted(3, leaving_2(&[1, 3]), None);
    let last = voter.log().last_log_id();
    let before = voter.vote();
    voter.on_message(msg(2, 3, vote_request(9, 2, last)));
    let outputs = voter.take_outputs();
    let reply = sent(&outputs).iter().find_map(|m| match &m.body {
        MessageBody::VoteReply(r) => Some(*r),
        _ => None,
    });
    assert!(reply.is_some_and(|r| r.not_member && !r.granted));
    assert_eq!(voter.vote(), before);

    let mut engine = restarted(2, leaving_2(&[1, 3]), None);
    engine.on_tick(10_000);
    engine.take_outputs();
    for from in [1, 3] {
        let reply = VoteReply { vote: before, granted: false, pre_vote: false, last_log_id: last, not_member: true };
        engine.on_message(msg(from, 2, MessageBody::VoteReply(reply)));
    }
    engine.on_tick(100_000);
    assert!(sent_kinds(&engine.take_outputs(), true).is_empty());
}

/// The leader's whole log is durable on it and on `others`.
fn commit_all(engine: &mut TestEngine, others: &[u64]) {
    let last = engine.log().last_log_id().unwrap();
    engine.on_log_flushed(last);
    for from in others {
        ack(engine, *from, Some(last));
    }
}

#[test]
fn a_leader_deposed_while_its_own_removal_is_pending_answers_done_after_leading_again_to_finish_it() {
    let state = LogState { entries: vec![membership_entry(&[1, 2, 3], &[1, 2, 3])], ..LogState::default() };
    let mut engine = elected(NodeId(2), state);
    commit_all(&mut engine, &[1, 3]);
    engine.change_membership(7, ChangeMembers::RemoveVoters(set(&[2])), true).unwrap();
    // commit every step but the one that makes node 2 a learner
    while engine.effective().unwrap().is_voter(NodeId(2)) {
        commit_all(&mut engine, &[1, 3]);
    }
    let removal = engine.log().last_log_id().unwrap();
    assert!(!engine.membership_committed());
    engine.take_outputs();
    let vote = Vote { leader_id: LeaderId::new(engine.vote().term().next(), NodeId(3)), committed: true };
    let append = AppendEntries { leader_node: None, vote, seq: 1, prev_log_id: None, entries: vec![], committed: None };
    engine.on_message(msg(3, 2, MessageBody::Append(append)));
    assert!(!engine.is_leader());
    assert!(answers(&engine.take_outputs()).is_empty(), "its removal may still commit");
    // a later leader that never reached node 2 fell silent: node 2 campaigns, leads, finishes it
    engine.on_tick(11_000);
    assert_eq!(sent_kinds(&engine.take_outputs(), true), [NodeId(1), NodeId(3)]);
    grant(&mut engine, 1);
    grant(&mut engine, 3);
    assert!(engine.is_leader());
    commit_all(&mut engine, &[1, 3]);
    assert!(engine.committed() > Some(removal));
    assert!(!engine.is_leader(), "hands over once its removal commits");
    let answered = answers(&engine.take_outputs());
    assert!(matches!(&answered[..], [(7, Ok(m))] if m.log_id == Some(removal)), "{answered:?}");
}

#[test]
fn a_follower_of_a_live_leader_keeps_its_term_against_a_demoted_learner_without_pre_vote() {
    let mut voter = restarted(3, leaving_2(&[1, 2, 3]), Some(3));
    let leader_vote = Vote::new_committed(Term(2), NodeId(1));
    let heartbeat = |seq| AppendEntries {
        vote: leader_vote,
        prev_log_id: Some(log_id(1, 1, 3)),
        entries: vec![],
        committed: Some(log_id(1, 1, 3)),
        seq,
        leader_node: None,
    };
    voter.on_message(msg(1, 3, MessageBody::Append(heartbeat(1))));
    voter.take_outputs();
    voter.on_message(msg(2, 3, vote_request(7, 2, voter.log().last_log_id())));
    assert_eq!(granted(&voter.take_outputs()), Some(false));
    assert_eq!(voter.vote(), leader_vote);
    voter.on_message(msg(1, 3, MessageBody::Append(heartbeat(2))));
    let outputs = voter.take_outputs();
    let accepted = sent(&outputs).iter().any(|m| {
        matches!(&m.body, MessageBody::AppendReply(r) if r.vote == leader_vote && matches!(r.outcome, AppendOutcome::Success { .. }))
    });
    assert!(accepted, "the leader's next heartbeat is still accepted: {outputs:?}");
}

#[test]
fn a_retried_change_id_at_a_demoted_leader_is_answered_done_when_it_commits_its_exit() {
    // the change "x" proposed the joint entry (it leaves by itself, node 2
    // staying a learner); its exit, entry 3, is pending on node 2 alone
    let exit = crate::membership::JointExit { automatic: true, keep_as_learners: set(&[2]) };
    let mut payloads = leaving_2(&[1, 2, 3]);
    payloads[1] = payloads[1].clone().with_exit(exit).with_change_id(Some("x".into()));
    let mut engine = restarted(2, payloads, None);
    engine.on_tick(10_000);
    grant(&mut engine, 1);
    grant(&mut engine, 3);
    assert!(engine.is_leader());
    let guard = ChangeGuard { change_id: Some("x".into()), expect_membership_index: None };
    engine.change_membership_guarded(9, ChangeMembers::RemoveVoters(set(&[2])), true, guard).unwrap();
    assert!(answers(&engine.take_outputs()).is_empty(), "its exit is not committed yet");
    commit_all(&mut engine, &[1, 3]);
    assert!(!engine.is_leader());
    let answered = answers(&engine.take_outputs());
    assert!(matches!(&answered[..], [(9, Ok(m))] if m.log_id == Some(log_id(1, 1, 3))), "{answered:?}");
}
