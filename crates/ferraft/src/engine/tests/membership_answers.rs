//! Membership requests are always answered, and answered truthfully (issue 17):
//! one scenario per misbehaviour seen before, each checked at the engine.

use super::*;
use crate::error::ChangeMembershipError;
use crate::membership::JointExit;

pub(super) type Answer = Result<StoredMembership<BasicNode>, ChangeMembershipError<BasicNode>>;

/// The answers to membership requests among `outputs`.
pub(super) fn answers(outputs: &[Output<u64, BasicNode>]) -> Vec<(u64, Answer)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::MembershipDone { request_id, result } => Some((*request_id, result.clone())),
            _ => None,
        })
        .collect()
}

/// Node 1 leads `membership` (entry 1, committed before the election), elected
/// by every other voter, with its blank entry not yet committed.
fn fresh_leader_of(membership: Membership<BasicNode>) -> TestEngine {
    let entry = Entry { log_id: log_id(1, 1, 1), payload: EntryPayload::Membership(membership) };
    let mut engine =
        elected(NodeId(1), LogState { entries: vec![entry], committed: Some(log_id(1, 1, 1)), ..LogState::default() });
    engine.take_outputs();
    engine
}

/// A leader elected in a higher term deposes node 1 with an empty heartbeat
/// that matches nothing (so nothing of node 1's log is confirmed or removed).
fn depose(engine: &mut TestEngine, new_leader: NodeId) {
    let vote = Vote { leader_id: LeaderId::new(engine.vote().term().next(), new_leader), committed: true };
    let append = AppendEntries { leader_node: None, vote, seq: 1, prev_log_id: None, entries: vec![], committed: None };
    engine.on_message(msg(new_leader, 1, MessageBody::Append(append)));
    assert!(!engine.is_leader());
}

/// Node 1 leads {1,2,3} with learner 4, its blank entry committed.
fn leader_with_learner_4() -> TestEngine {
    let mut engine = leader_of(&[&[1, 2, 3]], &[1, 2, 3, 4]);
    engine.take_outputs();
    engine
}

#[test]
fn a_change_queued_before_the_blank_entry_commits_is_proposed_once_it_does() {
    let mut engine = fresh_leader_of(Membership::new_uniform(nodes(&[1, 2, 3])).unwrap());
    let blank = engine.log().last_log_id().unwrap();
    engine.change_membership(7, ChangeMembers::AddNodes(nodes(&[4])), false).unwrap();
    assert_eq!(engine.log().last_log_id(), Some(blank), "initial-log rule: nothing before the blank entry commits");
    engine.on_log_flushed(blank);
    ack(&mut engine, 2, Some(blank));
    assert_eq!(engine.committed(), Some(blank));
    let proposed = engine.log().last_log_id().unwrap();
    assert!(proposed.index > blank.index, "the queued change is proposed as soon as the blank entry commits");
    assert!(engine.effective().unwrap().is_member(NodeId(4)));
    commit_everywhere(&mut engine);
    let answered = answers(&engine.take_outputs());
    assert!(matches!(&answered[..], [(7, Ok(m))] if m.log_id == Some(proposed)), "{answered:?}");
}

#[test]
fn a_change_whose_joint_step_committed_is_finished_by_whoever_leads() {
    let mut engine = leader_with_learner_4();
    engine.change_membership(8, ChangeMembers::AddVoterIds(set(&[4])), false).unwrap();
    let joint = engine.log().last_log_id().unwrap();
    assert!(engine.effective().unwrap().leaves_automatically(), "the joint entry says it leaves by itself");
    // a second change queues behind the first
    engine.change_membership(9, ChangeMembers::RemoveVoters(set(&[2])), true).unwrap();
    commit_everywhere(&mut engine);
    let exit = engine.log().last_log_id().unwrap();
    assert!(exit.index > joint.index, "the exit is proposed once the joint entry commits");
    engine.take_outputs();
    depose(&mut engine, NodeId(2));
    let answered = answers(&engine.take_outputs());
    assert!(
        matches!(&answered[..], [(9, Err(ChangeMembershipError::ForwardToLeader(_)))]),
        "only the change never proposed hears 'nothing happened'; the first one's joint step committed: {answered:?}"
    );
    // the new leader holds and commits the exit: node 1 learns it as a follower
    let vote = engine.vote();
    let entries = vec![engine.log().get(exit.index).unwrap().clone()];
    let append =
        AppendEntries { leader_node: None, vote, seq: 2, prev_log_id: Some(joint), entries, committed: Some(exit) };
    engine.on_message(msg(2, 1, MessageBody::Append(append)));
    let answered = answers(&engine.take_outputs());
    assert!(
        matches!(&answered[..], [(8, Ok(m))] if m.log_id == Some(exit) && m.membership.voter_set() == set(&[1, 2, 3, 4])),
        "{answered:?}"
    );
}

#[test]
fn a_deposed_leader_answers_a_committed_joint_step_as_unknown_after_its_bound() {
    let mut engine = leader_with_learner_4();
    engine.change_membership(8, ChangeMembers::AddVoterIds(set(&[4])), false).unwrap();
    commit_everywhere(&mut engine);
    let exit = engine.log().last_log_id().unwrap();
    assert_eq!(configs_of(&engine), vec![set(&[1, 2, 3, 4])], "it proposed the exit itself");
    engine.take_outputs();
    depose(&mut engine, NodeId(2));
    let later = engine.now_ms + engine.config.election_timeout_max_ms * 5;
    engine.on_tick(later);
    // the joint config leaves by itself: the new leader may well commit the
    // exit this node holds (the change is then done) or revert it; nothing
    // here says which, so the answer is "unknown", not "not all of it"
    let answered = answers(&engine.take_outputs());
    assert!(
        matches!(&answered[..], [(8, Err(ChangeMembershipError::LeadershipLost))]),
        "expected the unknown outcome, got {answered:?}"
    );
    assert!(engine.log().contains(Some(exit)), "it holds the exit it proposed, not known committed");
}

#[test]
fn a_change_never_proposed_is_answered_forward_to_leader_when_leadership_moves() {
    let mut engine = fresh_leader_of(Membership::new_uniform(nodes(&[1, 2, 3])).unwrap());
    engine.change_membership(9, ChangeMembers::AddNodes(nodes(&[4])), false).unwrap();
    depose(&mut engine, NodeId(2));
    let answered = answers(&engine.take_outputs());
    assert!(
        matches!(&answered[..], [(9, Err(ChangeMembershipError::ForwardToLeader(f)))] if f.leader_id == Some(NodeId(2))),
        "{answered:?}"
    );
}

#[test]
fn a_proposed_entry_truncated_by_the_next_leader_is_answered_nothing_happened() {
    let mut engine = leader_with_learner_4();
    engine.change_membership(10, ChangeMembers::RemoveNodes(set(&[4])), false).unwrap();
    let proposed = engine.log().last_log_id().unwrap();
    depose(&mut engine, NodeId(2));
    assert!(answers(&engine.take_outputs()).is_empty(), "the entry may still commit: no answer yet");
    // the new leader's log has a blank entry of its own at that index
    let vote = engine.vote();
    let prev = engine.log().log_id_at(proposed.index - 1);
    let replaced = Entry { log_id: LogId::new(vote.leader_id, proposed.index), payload: EntryPayload::Blank };
    let replaced_id = replaced.log_id;
    let append = AppendEntries {
        leader_node: None,
        vote,
        seq: 2,
        prev_log_id: prev,
        entries: vec![replaced],
        committed: Some(replaced_id),
    };
    engine.on_message(msg(2, 1, MessageBody::Append(append)));
    let answered = answers(&engine.take_outputs());
    assert!(matches!(&answered[..], [(10, Err(ChangeMembershipError::ForwardToLeader(_)))]), "{answered:?}");
}

/// Truncated here is not dead: in five voters, the entry on nodes 1 and 3
/// only, node 2 elected by 2, 4 and 5 (their logs as long, one term older
/// entry) overwrites it on node 1 and dies; node 3 is then elected by 3, 4
/// and 5 and commits the entry. Only a committed replacement proves that
/// nothing happened.
#[test]
fn a_proposed_entry_truncated_by_an_uncommitted_replacement_is_not_answered_nothing_happened() {
    let mut engine = leader_of(&[&[1, 2, 3, 4, 5]], &[1, 2, 3, 4, 5, 6]);
    engine.take_outputs();
    engine.change_membership(10, ChangeMembers::AddVoterIds(set(&[6])), false).unwrap();
    let proposed = engine.log().last_log_id().unwrap();
    depose(&mut engine, NodeId(2));
    let vote = engine.vote();
    let prev = engine.log().log_id_at(proposed.index - 1);
    let replaced = Entry { log_id: LogId::new(vote.leader_id, proposed.index), payload: EntryPayload::Blank };
    let append =
        AppendEntries { leader_node: None, vote, seq: 2, prev_log_id: prev, entries: vec![replaced], committed: None };
    engine.on_message(msg(2, 1, MessageBody::Append(append)));
    let answered = answers(&engine.take_outputs());
    assert!(
        !answered.iter().any(|(_, a)| matches!(a, Err(ChangeMembershipError::ForwardToLeader(_)))),
        "the replacement is not committed: the entry may still commit through another leader: {answered:?}"
    );
    // within its bound the caller still hears an answer, 'unknown'
    let later = engine.now_ms + engine.config.election_timeout_max_ms * 5;
    engine.on_tick(later);
    let answered = answers(&engine.take_outputs());
    assert!(matches!(&answered[..], [(10, Err(ChangeMembershipError::LeadershipLost))]), "{answered:?}");
}

#[test]
fn the_learners_a_prepare_keeps_survive_a_failover_before_commit() {
    let mut engine = leader_of(&[&[1, 2, 3]], &[1, 2, 3, 4]);
    let prepare_index = engine.prepare_membership(&set(&[1, 2, 3]), &set(&[4]), &set(&[1, 2, 4]), &set(&[3])).unwrap();
    assert_eq!(index_of(engine.membership().unwrap().log_id), prepare_index);
    let joint = engine.membership().unwrap().membership.clone();
    assert_eq!(joint.exit(), Some(&JointExit { automatic: false, keep_as_learners: set(&[3]) }));
    // another leader, after a restart, holds only what the log holds (here
    // the joint entry at index 1)
    let entry = Entry { log_id: log_id(1, 1, 1), payload: EntryPayload::Membership(joint) };
    let mut other = elected(NodeId(1), LogState { entries: vec![entry], ..LogState::default() });
    commit_everywhere(&mut other);
    // nodes 2 and 4 report the joint entry committed: a majority of old and new
    report_committed(&mut other, &[2, 4]);
    other.commit_membership(LogIndex(1)).unwrap();
    let m = other.membership().unwrap().membership.clone();
    assert_eq!(m.configs(), &[set(&[1, 2, 4])]);
    assert_eq!(m.learner_set(), set(&[3]), "node 3 stays as the prepare asked, on a leader that never saw it");
}

/// `peers` acknowledge leader 1's log up to its commit point and report
/// that point committed (what `commit_membership` waits for).
fn report_committed(engine: &mut TestEngine, peers: &[u64]) {
    let committed = engine.committed().unwrap();
    for peer in peers {
        let outcome = AppendOutcome::Success { matched: Some(committed) };
        let reply = AppendReply { vote: engine.vote(), seq: u64::MAX / 2, outcome, committed: committed.index };
        engine.on_message(msg(*peer, 1, MessageBody::AppendReply(reply)));
    }
}

#[test]
fn a_retried_abort_never_reverts_a_later_prepare() {
    let mut engine = leader_of(&[&[1, 2, 3]], &[1, 2, 3, 4]);
    let prepare = |e: &mut TestEngine| e.prepare_membership(&set(&[1, 2, 3]), &set(&[4]), &set(&[1, 2, 4]), &set(&[]));
    let first = prepare(&mut engine).unwrap();
    commit_everywhere(&mut engine);
    let aborted = engine.abort_membership(first).unwrap();
    commit_everywhere(&mut engine);
    let second = prepare(&mut engine).unwrap();
    assert!(second > aborted);
    commit_everywhere(&mut engine);
    assert_eq!(engine.abort_membership(first).unwrap(), aborted, "the retry answers the first abort again");
    assert_eq!(index_of(engine.membership().unwrap().log_id), second, "and leaves the second prepare in force");
    assert!(engine.membership().unwrap().membership.is_joint());
}

/// A prepare repeated after its joint config was committed out (the retry
/// of a call whose answer was lost, while the operator went on) answers the
/// index it took effect at, as the contract's "idempotent" asks; before, it
/// was `Mismatch` (conflict), as if it had never happened. Once anything
/// changed after the commit, the same prepare is a new request again.
#[test]
fn a_prepare_repeated_after_its_commit_answers_the_same_index() {
    let mut engine = leader_of(&[&[1, 2, 3]], &[1, 2, 3, 4]);
    let prepare = |e: &mut TestEngine| e.prepare_membership(&set(&[1, 2, 3]), &set(&[4]), &set(&[1, 2, 4]), &set(&[]));
    let first = prepare(&mut engine).unwrap();
    commit_everywhere(&mut engine);
    // nodes 2 and 4 report the joint entry committed: a majority of old and new
    report_committed(&mut engine, &[2, 4]);
    let committed = engine.commit_membership(first).unwrap();
    commit_everywhere(&mut engine);
    assert_eq!(configs_of(&engine), vec![set(&[1, 2, 4])]);
    assert_eq!(prepare(&mut engine).unwrap(), first, "the repeat answers the prepare that took effect");
    assert_eq!(index_of(engine.membership().unwrap().log_id), committed, "and proposes nothing");
    // the membership moved on: the old prepare no longer describes it
    engine.change_membership(21, ChangeMembers::RemoveVoters(set(&[4])), true).unwrap();
    commit_everywhere(&mut engine);
    let moved_on = prepare(&mut engine);
    assert!(matches!(moved_on, Err(ChangeMembershipError::Mismatch { .. })), "{moved_on:?}");
}

/// Simulator seed 3403094 (WAL, wiped disks, membership stress): a prepare
/// {1} -> {1} dropping learner 2 was aborted, which left {1} with learner 2;
/// then a prepare {1} -> {1} keeping 2 was answered with the aborted
/// prepare's index, as if it were a repeat whose commit produced what is in
/// force. With the same voters on both sides an abort leaves the
/// membership a commit would, but not the learners this call keeps: only a
/// prepare that asked the same (voters and learners) is the same request.
#[test]
fn a_prepare_is_not_taken_for_an_aborted_one_that_kept_other_learners() {
    let mut engine = leader_of(&[&[1]], &[1, 2]);
    let first = engine.prepare_membership(&set(&[1]), &set(&[2]), &set(&[1]), &set(&[])).unwrap();
    commit_everywhere(&mut engine);
    let aborted = engine.abort_membership(first).unwrap();
    commit_everywhere(&mut engine);
    assert_eq!(engine.membership().unwrap().membership.learner_set(), set(&[2]), "the abort kept learner 2");
    let second = engine.prepare_membership(&set(&[1]), &set(&[2]), &set(&[1]), &set(&[2])).unwrap();
    assert!(second > aborted, "a new prepare, not the aborted one at {first}: answered {second}");
    let joint = engine.membership().unwrap().membership.clone();
    assert_eq!(joint.exit(), Some(&JointExit { automatic: false, keep_as_learners: set(&[2]) }));
}

#[test]
fn a_joint_config_reverts_to_its_old_side_in_one_step() {
    let mut engine = leader_of(&[&[1, 2, 3], &[3, 4, 5]], &[1, 2, 3, 4, 5]);
    engine.change_membership(11, ChangeMembers::ReplaceAllVoters(set(&[1, 2, 3])), false).unwrap();
    assert_eq!(configs_of(&engine), vec![set(&[1, 2, 3])], "[c1,c2] -> c1 directly, not via [c2,c1]");
    let proposed = engine.log().last_log_id().unwrap();
    engine.on_log_flushed(proposed);
    ack(&mut engine, 2, Some(proposed));
    assert_eq!(engine.committed(), Some(proposed), "c1's majority alone commits it");
    let answered = answers(&engine.take_outputs());
    assert!(matches!(&answered[..], [(11, Ok(_))]), "{answered:?}");
}

#[test]
fn a_removed_node_is_sent_its_removal_until_it_holds_it_committed() {
    let mut engine = leader_of(&[&[1, 2, 3]], &[1, 2, 3]);
    engine.change_membership(12, ChangeMembers::RemoveVoters(set(&[3])), false).unwrap();
    let joint = engine.log().last_log_id().unwrap();
    engine.on_log_flushed(joint);
    ack(&mut engine, 2, Some(joint));
    ack(&mut engine, 3, Some(joint));
    let exit = engine.log().last_log_id().unwrap();
    assert!(!engine.effective().unwrap().is_member(NodeId(3)), "the exit drops node 3");
    engine.on_log_flushed(exit);
    ack(&mut engine, 2, Some(exit));
    assert_eq!(engine.committed(), Some(exit));
    engine.take_outputs();
    let later = engine.now_ms + engine.config.heartbeat_interval_ms;
    engine.on_tick(later);
    let to_3 = sent(&engine.take_outputs()).iter().filter(|m| m.envelope.to == NodeId(3)).count();
    assert!(to_3 >= 1, "node 3 is still sent the log: it must learn it was removed");
    // node 3 acknowledges the exit and reports it committed
    let reply = AppendReply {
        vote: engine.vote(),
        seq: u64::MAX / 2,
        outcome: AppendOutcome::Success { matched: Some(exit) },
        committed: exit.index,
    };
    engine.on_message(msg(3, 1, MessageBody::AppendReply(reply)));
    let later = engine.now_ms + engine.config.heartbeat_interval_ms;
    engine.on_tick(later);
    engine.take_outputs();
    let later = engine.now_ms + engine.config.heartbeat_interval_ms;
    engine.on_tick(later);
    let to_3 = sent(&engine.take_outputs()).iter().filter(|m| m.envelope.to == NodeId(3)).count();
    assert_eq!(to_3, 0, "once it holds its removal committed it is left alone");
}

#[test]
fn a_node_whose_removal_committed_says_removed_and_never_campaigns() {
    let mut engine = member(3, &[1, 2, 3], config(LeaderIdMode::Standard, false));
    let removal = Membership::new_uniform(nodes(&[1, 2])).unwrap();
    let vote = Vote { leader_id: LeaderId::new(Term(2), NodeId(1)), committed: true };
    let entry = Entry { log_id: log_id(2, 1, 2), payload: EntryPayload::Membership(removal) };
    let append = AppendEntries {
        leader_node: None,
        vote,
        seq: 1,
        prev_log_id: Some(log_id(1, 1, 1)),
        entries: vec![entry],
        // committed, and node 3 is told so: while it does not know, it may
        // still be needed to elect a leader (see `campaign_rights`)
        committed: Some(log_id(2, 1, 2)),
    };
    engine.on_message(msg(1, 3, MessageBody::Append(append)));
    engine.on_log_flushed(log_id(2, 1, 2));
    assert_eq!(engine.server_state(), ServerState::Removed);
    engine.take_outputs();
    engine.on_tick(1_000_000);
    assert!(sent(&engine.take_outputs()).is_empty(), "a removed node sends no vote request");
}

/// The term is still remembered for this node's own next campaign. Sim seed
/// 3477 (membership stress): node 5 needed the vote of node 4, whose log
/// lagged so far that it still counted removed node 3 as a voter and granted
/// it a vote in every new term; node 5 learned each term only from node 4's
/// refusals, one round late, and campaigned for 20 s in terms node 4 had
/// already given away.
#[test]
fn a_vote_request_from_a_non_member_is_refused_without_adopting_its_term() {
    let mut engine = member(2, &[1, 2], config(LeaderIdMode::Standard, false));
    let before = engine.vote();
    // node 3 is unknown here and its log is no further than ours: a removed node
    engine.on_message(msg(3, 2, vote_request(50, 3, Some(log_id(1, 1, 1)))));
    let outputs = engine.take_outputs();
    let reply = vote_reply(&outputs).expect("the non-member is answered");
    assert!(!reply.granted && reply.not_member);
    assert_eq!(engine.vote(), before, "its term is not adopted: it cannot depose anyone");
    engine.on_tick(10_000);
    assert!(engine.vote().term() > Term(50), "campaigns in a term the removed node already took: {}", engine.vote());
}

#[test]
fn a_candidate_unknown_here_but_with_a_longer_log_is_heard_normally() {
    // node 3 was added by entries this node has not received yet
    let mut engine = member(2, &[1, 2], config(LeaderIdMode::Standard, false));
    engine.on_message(msg(3, 2, vote_request(5, 3, Some(log_id(1, 1, 9)))));
    let outputs = engine.take_outputs();
    let reply = vote_reply(&outputs).expect("answered");
    assert!(reply.granted && !reply.not_member, "a lagging voter must not block a newer member's election");
}

#[test]
fn a_candidate_that_a_quorum_does_not_know_stops_campaigning() {
    // node 3 still holds the old joint config [{1,2,3},{1,2}] and campaigns
    let joint = Membership::new(vec![set(&[1, 2, 3]), set(&[1, 2])], nodes(&[1, 2, 3])).unwrap();
    let entry = Entry { log_id: log_id(1, 1, 1), payload: EntryPayload::Membership(joint) };
    let state = LogState { entries: vec![entry], ..LogState::default() };
    let mut engine = Engine::new(NodeId(3), config(LeaderIdMode::Standard, false), &state, 3, 0);
    engine.on_tick(10_000);
    let vote = engine.vote();
    for peer in [1, 2] {
        let reply = VoteReply {
            vote: Vote::new(Term(1), NodeId(1)),
            granted: false,
            pre_vote: false,
            last_log_id: None,
            not_member: true,
        };
        engine.on_message(msg(peer, 3, MessageBody::VoteReply(reply)));
    }
    assert_eq!(engine.server_state(), ServerState::Removed);
    assert_eq!(engine.vote(), vote);
    engine.take_outputs();
    engine.on_tick(1_000_000);
    assert!(sent(&engine.take_outputs()).is_empty(), "told by a quorum, it stops campaigning");
}

/// Sim seed 7307 (forward-heavy runs): a removal without retain entered the
/// joint config `[{1,2,3,4,5},{1,2,3}]`, planning to drop nodes 4 and 5.
/// While its new side was not ready, a queued removal of the same voters with
/// retain went first and left it for `[{1,2,3}]` keeping them as learners.
/// The first change was answered done, though the nodes it removed are still
/// members: another change left its joint config, the partial outcome.
#[test]
fn a_joint_config_left_by_another_change_that_keeps_other_nodes_is_a_partial_outcome() {
    let mut engine = leader_of(&[&[1, 2, 3, 4, 5]], &[1, 2, 3, 4, 5]);
    engine.take_outputs();
    let before = engine.log().last_log_id();
    engine.change_membership(8, ChangeMembers::RemoveVoters(set(&[4, 5])), false).unwrap();
    let joint = engine.log().last_log_id().unwrap();
    assert_eq!(configs_of(&engine), vec![set(&[1, 2, 3, 4, 5]), set(&[1, 2, 3])]);
    engine.change_membership(9, ChangeMembers::RemoveVoters(set(&[4, 5])), true).unwrap();
    engine.on_log_flushed(joint);
    // node 2 holds the joint entry, then falls silent; nodes 4 and 5 keep
    // answering and commit it with the old side: the new side is not ready
    ack(&mut engine, 2, Some(joint));
    for _ in 0..7 {
        let now = engine.now_ms + 100;
        engine.on_tick(now);
        ack(&mut engine, 4, before);
        ack(&mut engine, 5, before);
    }
    ack(&mut engine, 4, Some(joint));
    ack(&mut engine, 5, Some(joint));
    assert_eq!(engine.committed(), Some(joint));
    let exit = engine.log().last_log_id().unwrap();
    assert_eq!(configs_of(&engine), vec![set(&[1, 2, 3])]);
    assert_eq!(engine.effective().unwrap().learner_set(), set(&[4, 5]), "the retaining change went first");
    engine.take_outputs();
    engine.on_log_flushed(exit);
    ack(&mut engine, 3, Some(exit));
    assert_eq!(engine.committed(), Some(exit));
    let answered = answers(&engine.take_outputs());
    assert!(answered.iter().any(|(id, a)| *id == 9 && a.is_ok()), "{answered:?}");
    let first = answered.iter().find(|(id, _)| *id == 8).map(|(_, a)| a);
    assert!(
        matches!(first, Some(Err(ChangeMembershipError::PartiallyApplied { .. }))),
        "a removal without retain answered by an exit that keeps the nodes: {first:?}"
    );
}
