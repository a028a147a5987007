//! Node incarnations (issue 18): a wiped node under its old id is never
//! counted as its old self.

use super::*;
use crate::incarnation::Incarnation;
use crate::message::{Probe, ProbeReply};

/// The incarnation each node of these tests had before any wipe.
fn first_life(id: impl Into<NodeId>) -> u64 {
    id.into().0 * 11
}

/// A wiped node's incarnation.
fn second_life(id: impl Into<NodeId>) -> u64 {
    id.into().0 * 111
}

/// Membership `voters` (uniform) with every member's first incarnation recorded.
fn recorded_entry(voters: &[u64], all: &[u64]) -> Entry<u64, BasicNode> {
    let incarnations = all.iter().map(|id| (NodeId(*id), first_life(*id))).collect();
    let m = Membership::new(vec![set(voters)], nodes(all)).unwrap().with_incarnations(incarnations);
    Entry { log_id: log_id(1, 1, 1), payload: EntryPayload::Membership(m) }
}

/// Node `id` in its first life, holding `entries` (the recorded membership first).
fn node_with(id: NodeId, entries: Vec<Entry<u64, BasicNode>>, committed: Option<LogId>) -> TestEngine {
    let state = LogState {
        cluster_id: ClusterId::new(CLUSTER),
        incarnation: Incarnation::new(first_life(id)),
        entries,
        committed,
        ..LogState::default()
    };
    let mut engine = Engine::new(id, config(LeaderIdMode::Standard, false), &state, id.0, 0);
    engine.take_outputs();
    engine
}

/// Node `id` after its disk was wiped: nothing but a new incarnation.
fn wiped(id: NodeId) -> TestEngine {
    let state = LogState { incarnation: Incarnation::new(second_life(id)), ..LogState::default() };
    let mut engine = Engine::new(id, config(LeaderIdMode::Standard, false), &state, id.0, 0);
    engine.take_outputs();
    engine
}

/// A message from `from` in incarnation `life` to `to` (its recorded incarnation unknown).
fn from_life(
    from: impl Into<NodeId>,
    life: u64,
    to: impl Into<NodeId>,
    body: MessageBody<u64, BasicNode>,
) -> Message<u64, BasicNode> {
    let (from, to) = (from.into(), to.into());
    let envelope = Envelope { cluster_id: CLUSTER, from, to, from_incarnation: life, to_incarnation: 0 };
    Message { envelope, body }
}

fn command_entry(index: u64) -> Entry<u64, BasicNode> {
    Entry { log_id: log_id(1, 1, index), payload: EntryPayload::Normal(index) }
}

/// Given {1,2,3} with entry 2 committed on nodes 1 and 2 only, when node 2's
/// disk is wiped and node 3 (lacking entry 2) campaigns, the wiped node 2
/// does not vote for it and its vote would not count: node 3 is not elected.
#[test]
fn a_wiped_voter_cannot_help_elect_a_leader_lacking_a_committed_entry() {
    let mut candidate = node_with(NodeId(3), vec![recorded_entry(&[1, 2, 3], &[1, 2, 3])], None);
    let mut wiped_two = wiped(NodeId(2));
    candidate.on_tick(10_000);
    let requests = candidate.take_outputs();
    let to_two = sent(&requests).into_iter().find(|m| m.envelope.to == NodeId(2)).expect("vote request to 2").clone();
    assert_eq!(to_two.envelope.to_incarnation, first_life(NodeId(2)), "addressed to the recorded incarnation");
    wiped_two.on_message(to_two);
    let replies = wiped_two.take_outputs();
    assert!(sent(&replies).is_empty(), "the wiped node answers nothing meant for its old self: {replies:?}");

    // even a granted vote from the new incarnation does not count
    let vote = candidate.vote();
    let reply = VoteReply { vote, granted: true, pre_vote: false, last_log_id: None, not_member: false };
    candidate.on_message(from_life(NodeId(2), second_life(NodeId(2)), NodeId(3), MessageBody::VoteReply(reply)));
    assert!(!candidate.is_leader(), "elected with the vote of a wiped node: entry 2 would be lost");

    // the same vote from the recorded incarnation does count
    candidate.on_message(from_life(NodeId(2), first_life(NodeId(2)), NodeId(3), MessageBody::VoteReply(reply)));
    assert!(candidate.is_leader());
}

/// Given leader 1 of {1,2,3}, an acknowledgement from a new incarnation of
/// node 2 does not commit an entry; one from the recorded incarnation does.
#[test]
fn acks_from_another_incarnation_do_not_count_toward_commit() {
    let mut leader = node_with(NodeId(1), vec![recorded_entry(&[1, 2, 3], &[1, 2, 3])], None);
    leader.on_tick(10_000);
    let vote = leader.vote();
    let granted = VoteReply { vote, granted: true, pre_vote: false, last_log_id: None, not_member: false };
    leader.on_message(from_life(NodeId(3), first_life(NodeId(3)), NodeId(1), MessageBody::VoteReply(granted)));
    assert!(leader.is_leader());
    let vote = leader.vote();
    let last = leader.log().last_log_id();
    leader.on_log_flushed(last.unwrap());
    let matched = AppendReply {
        vote,
        seq: u64::MAX / 2,
        outcome: AppendOutcome::Success { matched: last },
        committed: LogIndex(0),
    };
    leader.on_message(from_life(NodeId(2), second_life(NodeId(2)), NodeId(1), MessageBody::AppendReply(matched)));
    assert!(leader.committed() < last, "committed on the word of a wiped node");
    leader.on_message(from_life(NodeId(2), first_life(NodeId(2)), NodeId(1), MessageBody::AppendReply(matched)));
    assert_eq!(leader.committed(), last);
}

/// A wiped node receiving entries meant for its old self drops them: it
/// never acknowledges what its old self was sent.
#[test]
fn a_follower_drops_appends_meant_for_its_old_incarnation() {
    let mut wiped_two = wiped(NodeId(2));
    let append = AppendEntries {
        vote: Vote::new_committed(Term(2), NodeId(1)),
        prev_log_id: None,
        entries: vec![recorded_entry(&[1, 2, 3], &[1, 2, 3]), command_entry(2)],
        committed: None,
        seq: 1,
        leader_node: Some(BasicNode::new("n1")),
    };
    let mut message = from_life(NodeId(1), first_life(NodeId(1)), NodeId(2), MessageBody::Append(append));
    message.envelope.to_incarnation = first_life(NodeId(2));
    wiped_two.on_message(message);
    assert_eq!(wiped_two.log().last_index(), LogIndex(0));
    assert!(wiped_two.take_outputs().is_empty());
}

/// The operator's path back: the leader learns the new incarnation from a
/// probe, the wiped voter is demoted to learner (retained) and that entry
/// records the new incarnation; from then on its acknowledgements count.
#[test]
fn a_wiped_voter_readmitted_as_learner_is_recorded_with_its_new_incarnation() {
    let entries = vec![recorded_entry(&[1, 2, 3], &[1, 2, 3])];
    let mut leader = node_with(NodeId(1), entries, None);
    leader.on_tick(10_000);
    let vote = leader.vote();
    let granted = VoteReply { vote, granted: true, pre_vote: false, last_log_id: None, not_member: false };
    leader.on_message(from_life(NodeId(3), first_life(NodeId(3)), NodeId(1), MessageBody::VoteReply(granted)));
    let vote = leader.vote();
    let commit_all = |leader: &mut TestEngine| {
        let last = leader.log().last_log_id();
        leader.on_log_flushed(last.unwrap());
        let reply = AppendReply {
            vote,
            seq: u64::MAX / 2,
            outcome: AppendOutcome::Success { matched: last },
            committed: LogIndex(0),
        };
        leader.on_message(from_life(NodeId(3), first_life(NodeId(3)), NodeId(1), MessageBody::AppendReply(reply)));
        assert_eq!(leader.committed(), last);
    };
    commit_all(&mut leader);
    leader.probe(NodeId(2), 9);
    leader.take_outputs();
    let answer = ProbeReply { seq: 9, cluster_id: 0, incarnation: second_life(NodeId(2)), leader: None };
    leader.on_message(from_life(NodeId(2), second_life(NodeId(2)), NodeId(1), MessageBody::ProbeReply(answer)));

    leader.change_membership(5, ChangeMembers::RemoveVoters(set(&[2])), true).unwrap();
    let joint = leader.effective().unwrap().clone();
    assert!(joint.is_joint());
    assert_eq!(
        joint.incarnation(NodeId(2)),
        first_life(NodeId(2)),
        "still a voter of the old config: the old record stands"
    );
    commit_all(&mut leader);
    commit_all(&mut leader);
    let done = leader.effective().unwrap().clone();
    assert_eq!(done.voter_set(), set(&[1, 3]));
    assert_eq!(done.learner_set(), set(&[2]));
    assert_eq!(done.incarnation(NodeId(2)), second_life(NodeId(2)), "a learner now, recorded as the new incarnation");
    assert_eq!(leader.envelope(NodeId(2)).to_incarnation, second_life(NodeId(2)));
}

/// Members named at initialize are recorded once heard from: the leader
/// writes their incarnations in an entry of the same configs.
#[test]
fn a_leader_records_the_incarnations_of_members_named_at_initialize() {
    let mut leader = leader(&[1, 2, 3]);
    let last = leader.log().last_log_id();
    leader.on_log_flushed(last.unwrap());
    let vote = leader.vote();
    for peer in [2, 3] {
        let reply = AppendReply {
            vote,
            seq: u64::MAX / 2,
            outcome: AppendOutcome::Success { matched: last },
            committed: LogIndex(0),
        };
        leader.on_message(from_life(peer, first_life(peer), NodeId(1), MessageBody::AppendReply(reply)));
    }
    assert_eq!(leader.committed(), last);
    leader.on_tick(20_000);
    let recorded = leader.effective().unwrap();
    assert_eq!(recorded.incarnation(NodeId(2)), first_life(NodeId(2)));
    assert_eq!(recorded.incarnation(NodeId(3)), first_life(NodeId(3)));
    assert_eq!(recorded.voter_set(), set(&[1, 2, 3]), "the same config");
}

/// A probe is answered with the node's incarnation, so the leader learns it
/// before adding it.
#[test]
fn a_probe_is_answered_with_the_incarnation() {
    let mut node = wiped(NodeId(4));
    node.on_message(from_life(
        NodeId(1),
        first_life(NodeId(1)),
        NodeId(4),
        MessageBody::Probe(Probe { seq: 3, asker_node: None }),
    ));
    let outputs = node.take_outputs();
    let reply = sent(&outputs).into_iter().find_map(|m| match &m.body {
        MessageBody::ProbeReply(r) => Some(*r),
        _ => None,
    });
    assert_eq!(reply.map(|r| r.incarnation), Some(second_life(NodeId(4))));
}

/// `Raft::initialize` asks the other members who they are first: the initial
/// membership then records them from entry 1, leaving no window in which a
/// member wiped early still counts as its old self.
#[test]
fn initialize_records_the_incarnations_the_caller_learned() {
    let state = LogState { incarnation: Incarnation::new(first_life(NodeId(1))), ..LogState::default() };
    let mut engine: TestEngine = Engine::new(NodeId(1), config(LeaderIdMode::Standard, false), &state, 1, 0);
    let learned = [(NodeId(2), first_life(2)), (NodeId(3), first_life(3))].into();
    let m = Membership::new_uniform(nodes(&[1, 2, 3])).unwrap().with_incarnations(learned);
    engine.initialize(m).unwrap();
    let recorded = engine.effective().unwrap();
    for id in [1, 2, 3] {
        assert_eq!(recorded.incarnation(NodeId(id)), first_life(id), "node {id}");
    }
}

/// Given a wiped node 1, caught up again as a learner only as far as an old
/// committed entry that made node 1 (its first life) the only voter, and then
/// removed, when it restarts it does not campaign as that voter: it would
/// elect itself alone and commit writes the cluster never sees (sim seed
/// 23304 of the wiped-disk runs).
#[test]
fn a_wiped_node_holding_an_old_committed_config_naming_its_old_self_does_not_campaign() {
    let mut old_config = recorded_entry(&[1], &[1, 2, 3]);
    old_config.log_id = log_id(1, 1, 1);
    let state = LogState {
        cluster_id: ClusterId::new(CLUSTER),
        incarnation: Incarnation::new(second_life(NodeId(1))),
        entries: vec![old_config],
        committed: Some(log_id(1, 1, 1)),
        ..LogState::default()
    };
    let mut engine = Engine::new(NodeId(1), config(LeaderIdMode::Standard, false), &state, 1, 0);
    engine.take_outputs();
    engine.on_tick(10_000);
    let outputs = engine.take_outputs();
    assert!(!engine.is_leader(), "a wiped node elected itself as its old self: {outputs:?}");
    assert!(
        !outputs.iter().any(|o| matches!(o, Output::SaveVote(_))),
        "it campaigns as the voter its old self was: {outputs:?}"
    );
}

/// Sim seed 21206 (wiped disks): node 1 was wiped, readmitted, promoted and
/// elected by members recording its new incarnation; node 2 lagged behind
/// the entry that records it and dropped every append of the new leader as
/// "from another incarnation", so it never caught up, and a joint config
/// needing it never committed. A leader's append under a vote at least this
/// node's own was won by election, which already counted only recorded
/// incarnations: it is followed.
#[test]
fn a_lagging_follower_follows_a_leader_elected_in_its_new_incarnation() {
    let mut two = node_with(NodeId(2), vec![recorded_entry(&[1, 2, 3], &[1, 2, 3])], None);
    let incarnations =
        [(NodeId(1), second_life(1)), (NodeId(2), first_life(2)), (NodeId(3), first_life(3))].into_iter().collect();
    let readmitted = Membership::new(vec![set(&[1, 2, 3])], nodes(&[1, 2, 3])).unwrap().with_incarnations(incarnations);
    let append = AppendEntries {
        vote: Vote::new_committed(Term(3), NodeId(1)),
        prev_log_id: Some(log_id(1, 1, 1)),
        entries: vec![Entry { log_id: log_id(3, 1, 2), payload: EntryPayload::Membership(readmitted) }],
        committed: None,
        seq: 1,
        leader_node: Some(BasicNode::new("n1")),
    };
    let mut message = from_life(NodeId(1), second_life(NodeId(1)), NodeId(2), MessageBody::Append(append));
    message.envelope.to_incarnation = first_life(NodeId(2));
    two.on_message(message);
    assert_eq!(two.log().last_index(), LogIndex(2), "the elected leader's entries are taken");
    // an older leadership of another incarnation is still dropped
    let stale = AppendEntries {
        vote: Vote::new_committed(Term(1), NodeId(1)),
        prev_log_id: Some(log_id(3, 1, 2)),
        entries: vec![command_entry(3)],
        committed: None,
        seq: 2,
        leader_node: None,
    };
    two.on_message(from_life(NodeId(1), first_life(NodeId(1)) + 1, NodeId(2), MessageBody::Append(stale)));
    assert_eq!(two.log().last_index(), LogIndex(2));
}

/// Sim seed 21206 again, one step on: the readmitted leader restarted and
/// campaigned; the lagging voter dropped its vote requests as "from another
/// incarnation" and no leader could be elected. A candidate whose log is
/// ahead of this node's holds every entry this node has (the one recording
/// its new incarnation too): its request is judged on the usual rules.
/// A wiped candidate, whose log is empty, is still dropped.
#[test]
fn a_lagging_voter_answers_a_readmitted_candidate_whose_log_is_ahead() {
    let mut two = node_with(NodeId(2), vec![recorded_entry(&[1, 2, 3], &[1, 2, 3])], None);
    let ahead = VoteRequest {
        candidate_node: Some(BasicNode::new("n1")),
        vote: Vote::new(Term(3), NodeId(1)),
        last_log_id: Some(log_id(3, 1, 5)),
        pre_vote: false,
        transfer: false,
    };
    two.on_message(from_life(NodeId(1), second_life(NodeId(1)), NodeId(2), MessageBody::Vote(ahead.clone())));
    let granted = two.take_outputs().iter().any(|o| {
        matches!(o, Output::Send(Message { body: MessageBody::VoteReply(r), .. }) if r.granted)
            || matches!(o, Output::SaveVote(v) if *v == Vote::new(Term(3), NodeId(1)))
    });
    assert!(granted, "a candidate ahead of this node is answered");
    let mut three = node_with(NodeId(3), vec![recorded_entry(&[1, 2, 3], &[1, 2, 3])], None);
    let empty = VoteRequest { last_log_id: None, ..ahead };
    three.on_message(from_life(NodeId(1), second_life(NodeId(1)), NodeId(3), MessageBody::Vote(empty)));
    assert!(three.take_outputs().is_empty(), "a wiped candidate is dropped");
}

/// Node 1 in its second life, voter of {1,2,3} by an entry at index 2 that
/// records its new incarnation; nodes 2 and 3 recorded in their first.
fn readmitted_one(pre_vote: bool) -> TestEngine {
    let incarnations =
        [(NodeId(1), second_life(1)), (NodeId(2), first_life(2)), (NodeId(3), first_life(3))].into_iter().collect();
    let readmitted = Membership::new(vec![set(&[1, 2, 3])], nodes(&[1, 2, 3])).unwrap().with_incarnations(incarnations);
    let entries = vec![
        recorded_entry(&[1, 2, 3], &[1, 2, 3]),
        Entry { log_id: log_id(1, 1, 2), payload: EntryPayload::Membership(readmitted) },
    ];
    let state = LogState {
        cluster_id: ClusterId::new(CLUSTER),
        incarnation: Incarnation::new(second_life(NodeId(1))),
        entries,
        committed: Some(log_id(1, 1, 2)),
        ..LogState::default()
    };
    let mut engine = Engine::new(NodeId(1), config(LeaderIdMode::Standard, pre_vote), &state, 1, 0);
    engine.take_outputs();
    engine
}

/// Delivers every message `outputs` holds for `to`, returning what `to` sends back.
fn deliver(outputs: &[Output<u64, BasicNode>], to: &mut TestEngine) -> Vec<Output<u64, BasicNode>> {
    let id = to.id();
    for message in sent(outputs).into_iter().filter(|m| m.envelope.to == id) {
        to.on_message(message.clone());
    }
    let mut answers = to.take_outputs();
    if let Some(last) = to.log().last_log_id() {
        to.on_log_flushed(last);
        answers.extend(to.take_outputs());
    }
    answers
}

/// Sim seed 21206 (wiped disks), the last step: the readmitted node 1,
/// promoted and then restarted, campaigned; the lagging voter 2 (which has
/// not yet got the entry recording node 1's new incarnation) granted its
/// (pre-)votes but addressed each reply to node 1's old incarnation, so node 1
/// dropped them as "meant for another incarnation" and no leader was ever
/// elected. A reply goes to the incarnation that asked.
#[test]
fn a_readmitted_candidate_counts_the_grant_of_a_voter_lagging_behind_its_record() {
    for pre_vote in [false, true] {
        let mut one = readmitted_one(pre_vote);
        let mut two = node_with(NodeId(2), vec![recorded_entry(&[1, 2, 3], &[1, 2, 3])], None);
        one.on_tick(10_000);
        let requests = one.take_outputs();
        let replies = deliver(&requests, &mut two);
        let reply = sent(&replies).into_iter().find(|m| matches!(m.body, MessageBody::VoteReply(_))).cloned();
        let reply = reply.expect("node 2 answers the candidate");
        assert_eq!(
            reply.envelope.to_incarnation,
            second_life(NodeId(1)),
            "pre-vote {pre_vote}: the reply goes to the asker"
        );
        one.on_message(reply);
        if pre_vote {
            // the pre-vote won: now the real vote, answered the same way
            let requests = one.take_outputs();
            let replies = deliver(&requests, &mut two);
            for reply in sent(&replies) {
                one.on_message(reply.clone());
            }
        }
        assert!(one.is_leader(), "pre-vote {pre_vote}: the grant of a recorded voter was dropped");
    }
}

/// The same lagging voter, as the readmitted leader's follower: its append
/// replies (the mismatch that makes the leader back up, then the match) go
/// to the leader's new incarnation, so it is caught up and counts toward
/// commit; the entry recording the new incarnation reaches it on the way.
#[test]
fn a_readmitted_leader_catches_up_a_voter_lagging_behind_its_record() {
    let mut one = readmitted_one(false);
    let mut two = node_with(NodeId(2), vec![recorded_entry(&[1, 2, 3], &[1, 2, 3])], None);
    one.on_tick(10_000);
    let vote = one.vote();
    let granted = VoteReply { vote, granted: true, pre_vote: false, last_log_id: None, not_member: false };
    one.on_message(from_life(NodeId(3), first_life(NodeId(3)), NodeId(1), MessageBody::VoteReply(granted)));
    assert!(one.is_leader());
    let blank = one.log().last_log_id();
    let mut outputs = one.take_outputs();
    one.on_log_flushed(blank.unwrap());
    outputs.extend(one.take_outputs());
    for _ in 0..6 {
        let replies = deliver(&outputs, &mut two);
        for reply in sent(&replies) {
            assert_eq!(reply.envelope.to_incarnation, second_life(NodeId(1)), "{reply:?}");
            one.on_message(reply.clone());
        }
        outputs = one.take_outputs();
    }
    assert_eq!(two.log().last_log_id(), blank, "node 2 caught up");
    assert_eq!(one.committed(), blank, "on node 2's acknowledgement");
}

/// A probe answered by a node of another cluster (an address reused by
/// another cluster's machine, an operator's typo) says nothing about this
/// cluster's member of that id: its incarnation is not learned. It was, and
/// the leader recorded the other cluster's incarnation for its own member,
/// whose every message was then dropped as another incarnation's (two-cluster
/// simulator, seed 187 with wiped disks: a joint config never committed).
#[test]
fn a_probe_answer_from_another_cluster_teaches_no_incarnation() {
    let mut leader = node_with(NodeId(1), vec![recorded_entry(&[1], &[1, 2])], None);
    leader.on_tick(10_000);
    assert!(leader.is_leader());
    leader.probe(NodeId(2), 9);
    leader.take_outputs();
    let foreign = ProbeReply { seq: 9, cluster_id: CLUSTER + 2, incarnation: second_life(NodeId(2)), leader: None };
    leader.on_message(from_life(NodeId(2), second_life(NodeId(2)), NodeId(1), MessageBody::ProbeReply(foreign)));
    assert_eq!(leader.known_incarnation(NodeId(2)), 0, "learned from another cluster's node");
    let ours = ProbeReply { seq: 10, cluster_id: CLUSTER, incarnation: second_life(NodeId(2)), leader: None };
    leader.on_message(from_life(NodeId(2), second_life(NodeId(2)), NodeId(1), MessageBody::ProbeReply(ours)));
    assert_eq!(leader.known_incarnation(NodeId(2)), second_life(NodeId(2)));
}

/// Sim seed 2806 (forward-heavy runs with wiped disks): node 4 heard node 2
/// in its first life; node 2 was wiped and readmitted as a learner by leader
/// 5, in an entry recording its second life, which node 4 appended. Elected
/// next, node 4 promoted node 2 before hearing from it, and recorded the
/// first life it had last heard itself: node 2 dropped everything meant for
/// that incarnation and the joint config never committed. A record this node
/// appended after hearing from a member is the newer news.
#[test]
fn a_new_leader_promotes_a_readmitted_learner_under_the_incarnation_its_log_records() {
    let mut one = node_with(NodeId(1), vec![recorded_entry(&[1, 3], &[1, 2, 3])], None);
    // node 2's first life is heard (anything it sends)
    let old_news = AppendReply {
        vote: Vote::new_committed(Term(1), NodeId(3)),
        seq: 1,
        outcome: AppendOutcome::Rejected,
        committed: LogIndex(0),
    };
    one.on_message(from_life(NodeId(2), first_life(NodeId(2)), NodeId(1), MessageBody::AppendReply(old_news)));
    assert_eq!(one.known_incarnation(NodeId(2)), first_life(NodeId(2)));
    // then leader 3 readmits node 2, wiped, as a learner in its second life
    let incarnations =
        [(NodeId(1), first_life(1)), (NodeId(2), second_life(2)), (NodeId(3), first_life(3))].into_iter().collect();
    let readmitted = Membership::new(vec![set(&[1, 3])], nodes(&[1, 2, 3])).unwrap().with_incarnations(incarnations);
    let append = AppendEntries {
        vote: Vote::new_committed(Term(2), NodeId(3)),
        prev_log_id: Some(log_id(1, 1, 1)),
        entries: vec![Entry { log_id: log_id(2, 3, 2), payload: EntryPayload::Membership(readmitted) }],
        committed: Some(log_id(2, 3, 2)),
        seq: 1,
        leader_node: Some(BasicNode::new("n3")),
    };
    one.on_message(from_life(NodeId(3), first_life(NodeId(3)), NodeId(1), MessageBody::Append(append)));
    one.on_log_flushed(log_id(2, 3, 2));
    assert_eq!(one.committed(), Some(log_id(2, 3, 2)));
    // node 1 is elected and promotes node 2 before hearing from it
    one.on_tick(20_000);
    let vote = one.vote();
    let granted = VoteReply { vote, granted: true, pre_vote: false, last_log_id: None, not_member: false };
    one.on_message(from_life(NodeId(3), first_life(NodeId(3)), NodeId(1), MessageBody::VoteReply(granted)));
    assert!(one.is_leader());
    one.change_membership(8, ChangeMembers::AddVoterIds(set(&[2])), false).unwrap();
    let blank = one.log().last_log_id();
    one.on_log_flushed(blank.unwrap());
    let vote = one.vote();
    let acked = AppendReply {
        vote,
        seq: u64::MAX / 2,
        outcome: AppendOutcome::Success { matched: blank },
        committed: LogIndex(0),
    };
    one.on_message(from_life(NodeId(3), first_life(NodeId(3)), NodeId(1), MessageBody::AppendReply(acked)));
    let joint = one.effective().unwrap();
    assert!(joint.is_joint() && joint.is_voter(NodeId(2)), "node 2 promoted: {joint}");
    assert_eq!(joint.incarnation(NodeId(2)), second_life(NodeId(2)), "promoted as the incarnation last heard long ago");
    assert_eq!(one.envelope(NodeId(2)).to_incarnation, second_life(NodeId(2)));
}
