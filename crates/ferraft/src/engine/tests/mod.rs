//! Engine scenarios: one event in, the state and the outputs checked.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::*;
use crate::leader_id::{LeaderId, LeaderIdMode};
use crate::membership::ChangeMembers;
use crate::message::{AppendEntries, AppendOutcome, AppendReply, VoteReply, VoteRequest};
use crate::node::BasicNode;

pub(super) type TestEngine = Engine<u64, BasicNode>;

/// The cluster of the nodes built by `member`.
pub(super) const CLUSTER: u64 = 7;

// Scenarios name nodes, terms and indexes by plain numbers, as the docs do;
// a helper taking one also takes the typed value.

pub(super) fn nodes(ids: &[u64]) -> BTreeMap<NodeId, BasicNode> {
    ids.iter().map(|id| (NodeId(*id), BasicNode::new(format!("n{id}")))).collect()
}

pub(super) fn set(ids: &[u64]) -> BTreeSet<NodeId> {
    ids.iter().copied().map(NodeId).collect()
}

pub(super) fn config(mode: LeaderIdMode, pre_vote: bool) -> Arc<Config> {
    Arc::new(Config { leader_id_mode: mode, pre_vote, ..Config::default() })
}

pub(super) fn log_id(term: impl Into<Term>, leader: impl Into<NodeId>, index: impl Into<LogIndex>) -> LogId {
    LogId::new(LeaderId::new(term.into(), leader.into()), index.into())
}

pub(super) fn vote(term: impl Into<Term>, node: impl Into<NodeId>) -> Vote {
    Vote::new(term.into(), node.into())
}

pub(super) fn membership_entry(voters: &[u64], all: &[u64]) -> Entry<u64, BasicNode> {
    let m = Membership::new(vec![set(voters)], nodes(all)).unwrap();
    Entry { log_id: log_id(1, 1, 1), payload: EntryPayload::Membership(m) }
}

/// A node whose log holds the initial membership `voters` (entry 1) and nothing else.
pub(super) fn member(id: impl Into<NodeId>, voters: &[u64], config: Arc<Config>) -> TestEngine {
    let id = id.into();
    let state = LogState {
        cluster_id: ClusterId::new(CLUSTER),
        entries: vec![membership_entry(voters, voters)],
        ..LogState::default()
    };
    let mut engine = Engine::new(id, config, &state, id.0, 0);
    engine.take_outputs();
    engine
}

pub(super) fn msg(
    from: impl Into<NodeId>,
    to: impl Into<NodeId>,
    body: MessageBody<u64, BasicNode>,
) -> Message<u64, BasicNode> {
    let (from, to) = (from.into(), to.into());
    Message { envelope: Envelope { cluster_id: CLUSTER, from, to, from_incarnation: 0, to_incarnation: 0 }, body }
}

pub(super) fn vote_request(
    term: impl Into<Term>,
    candidate: impl Into<NodeId>,
    last: Option<LogId>,
) -> MessageBody<u64, BasicNode> {
    MessageBody::Vote(VoteRequest {
        candidate_node: None,
        vote: vote(term, candidate),
        last_log_id: last,
        pre_vote: false,
        transfer: false,
    })
}

pub(super) fn sent(outputs: &[Output<u64, BasicNode>]) -> Vec<&Message<u64, BasicNode>> {
    outputs.iter().filter_map(|o| if let Output::Send(m) = o { Some(m) } else { None }).collect()
}

/// The first vote reply among `outputs`.
fn vote_reply(outputs: &[Output<u64, BasicNode>]) -> Option<VoteReply> {
    sent(outputs).iter().find_map(|m| if let MessageBody::VoteReply(r) = &m.body { Some(*r) } else { None })
}

pub(super) fn granted(outputs: &[Output<u64, BasicNode>]) -> Option<bool> {
    vote_reply(outputs).map(|r| r.granted)
}

/// Makes node 1 of `voters` leader: campaigns and collects every vote.
pub(super) fn leader(voters: &[u64]) -> TestEngine {
    let mut engine = member(1, voters, config(LeaderIdMode::Standard, false));
    engine.on_tick(10_000);
    let vote = engine.vote();
    for peer in voters.iter().filter(|id| **id != 1) {
        let reply = VoteReply { vote, granted: true, pre_vote: false, last_log_id: None, not_member: false };
        engine.on_message(msg(*peer, 1, MessageBody::VoteReply(reply)));
    }
    assert!(engine.is_leader());
    engine.take_outputs();
    engine
}

pub(super) fn ack(engine: &mut TestEngine, from: impl Into<NodeId>, matched: Option<LogId>) {
    let reply = AppendReply {
        vote: engine.vote(),
        seq: u64::MAX / 2,
        outcome: AppendOutcome::Success { matched },
        committed: LogIndex(0),
    };
    engine.on_message(msg(from, engine.id(), MessageBody::AppendReply(reply)));
}

#[test]
fn standard_mode_grants_one_vote_per_term() {
    let mut engine = member(3, &[1, 2, 3], config(LeaderIdMode::Standard, false));
    engine.on_message(msg(1, 3, vote_request(5, 1, Some(log_id(1, 1, 1)))));
    assert_eq!(granted(&engine.take_outputs()), Some(true));
    engine.on_message(msg(2, 3, vote_request(5, 2, Some(log_id(1, 1, 1)))));
    assert_eq!(granted(&engine.take_outputs()), Some(false), "second candidate of term 5 refused");
    assert_eq!(engine.vote(), vote(5, 1));
}

#[test]
fn advanced_mode_lets_a_greater_candidate_of_the_same_term_win() {
    let mut engine = member(3, &[1, 2, 3], config(LeaderIdMode::Advanced, false));
    engine.on_message(msg(1, 3, vote_request(5, 1, Some(log_id(1, 1, 1)))));
    engine.take_outputs();
    engine.on_message(msg(2, 3, vote_request(5, 2, Some(log_id(1, 1, 1)))));
    assert_eq!(granted(&engine.take_outputs()), Some(true));
    engine.on_message(msg(1, 3, vote_request(5, 1, Some(log_id(1, 1, 1)))));
    assert_eq!(granted(&engine.take_outputs()), Some(false), "never back to a smaller leader id");
}

#[test]
fn vote_is_refused_to_a_less_up_to_date_log_and_saved_before_the_reply() {
    let mut engine = member(3, &[1, 2, 3], config(LeaderIdMode::Standard, false));
    engine.on_message(msg(1, 3, vote_request(5, 1, None)));
    assert_eq!(granted(&engine.take_outputs()), Some(false));
    engine.on_message(msg(1, 3, vote_request(5, 1, Some(log_id(1, 1, 1)))));
    let outputs = engine.take_outputs();
    let save = outputs.iter().position(|o| matches!(o, Output::SaveVote(_))).expect("vote saved");
    let reply = outputs.iter().position(|o| matches!(o, Output::Send(_))).expect("reply sent");
    assert!(save < reply, "the vote is persisted before the reply leaves");
}

#[test]
fn pre_vote_changes_no_state_on_the_voter() {
    let mut engine = member(3, &[1, 2, 3], config(LeaderIdMode::Standard, true));
    let before = engine.vote();
    let body = MessageBody::Vote(VoteRequest {
        candidate_node: None,
        vote: vote(9, 1),
        last_log_id: Some(log_id(1, 1, 1)),
        pre_vote: true,
        transfer: false,
    });
    engine.on_message(msg(1, 3, body));
    let outputs = engine.take_outputs();
    assert_eq!(granted(&outputs), Some(true));
    assert_eq!(engine.vote(), before);
    assert!(!outputs.iter().any(|o| matches!(o, Output::SaveVote(_))));
}

#[test]
fn follower_with_a_live_leader_refuses_votes_unless_it_is_a_transfer() {
    let mut engine = member(3, &[1, 2, 3], config(LeaderIdMode::Standard, false));
    let append = AppendEntries {
        vote: Vote::new_committed(Term(2), NodeId(1)),
        prev_log_id: Some(log_id(1, 1, 1)),
        entries: vec![],
        committed: None,
        seq: 1,
        leader_node: None,
    };
    engine.on_message(msg(1, 3, MessageBody::Append(append)));
    engine.take_outputs();
    engine.on_message(msg(2, 3, vote_request(3, 2, Some(log_id(1, 1, 1)))));
    assert_eq!(granted(&engine.take_outputs()), Some(false), "leader stickiness");
    let transfer = MessageBody::Vote(VoteRequest {
        candidate_node: None,
        vote: vote(3, 2),
        last_log_id: Some(log_id(1, 1, 1)),
        pre_vote: false,
        transfer: true,
    });
    engine.on_message(msg(2, 3, transfer));
    assert_eq!(granted(&engine.take_outputs()), Some(true));
}

#[test]
fn new_leader_appends_a_blank_entry_of_its_term_first() {
    let engine = leader(&[1, 2, 3]);
    let last = engine.log().get(engine.log().last_index()).unwrap();
    assert!(matches!(last.payload, EntryPayload::Blank));
    assert_eq!(last.log_id.leader_id, engine.vote().leader_id);
}

#[test]
fn follower_answers_an_append_only_once_the_entries_are_durable() {
    let mut engine = member(3, &[1, 2, 3], config(LeaderIdMode::Standard, false));
    let entry = Entry { log_id: log_id(2, 1, 2), payload: EntryPayload::Normal(7) };
    let append = AppendEntries {
        vote: Vote::new_committed(Term(2), NodeId(1)),
        prev_log_id: Some(log_id(1, 1, 1)),
        entries: vec![entry],
        committed: None,
        seq: 1,
        leader_node: None,
    };
    engine.on_message(msg(1, 3, MessageBody::Append(append)));
    let outputs = engine.take_outputs();
    assert!(outputs.iter().any(|o| matches!(o, Output::AppendLog(e) if e.len() == 1)));
    assert!(sent(&outputs).is_empty(), "no reply before the entry is durable");
    engine.on_log_flushed(log_id(2, 1, 2));
    let outputs = engine.take_outputs();
    let replies = sent(&outputs);
    assert!(
        matches!(&replies[..], [m] if matches!(m.body, MessageBody::AppendReply(AppendReply { outcome: AppendOutcome::Success { matched: Some(l) }, .. }) if l == log_id(2, 1, 2)))
    );
}

#[test]
fn leader_counts_itself_only_once_its_own_log_is_durable() {
    let mut engine = leader(&[1, 2, 3]);
    let first = engine.propose([5]).unwrap().unwrap();
    engine.take_outputs();
    ack(&mut engine, 2, Some(first));
    assert!(engine.committed() < Some(first), "one follower plus an undurable leader is not a quorum");
    engine.on_log_flushed(first);
    assert_eq!(engine.committed(), Some(first));
}

#[test]
fn a_leader_sends_new_entries_before_its_own_append() {
    let mut engine = leader(&[1, 2, 3]);
    let first = engine.propose([5]).unwrap().unwrap();
    engine.on_log_flushed(first);
    ack(&mut engine, 2, Some(first));
    ack(&mut engine, 3, Some(first));
    engine.take_outputs();
    let next = engine.propose([6, 7]).unwrap().unwrap();
    let outputs = engine.take_outputs();
    let append_at = outputs.iter().position(|o| matches!(o, Output::AppendLog(e) if e[0].log_id == next));
    let carries_next = |o: &Output<u64, BasicNode>| matches!(o, Output::Send(m) if matches!(&m.body, MessageBody::Append(a) if a.entries.first().is_some_and(|e| e.log_id == next)));
    let sends: Vec<usize> = outputs.iter().enumerate().filter(|(_, o)| carries_next(o)).map(|(i, _)| i).collect();
    assert_eq!(sends.len(), 2, "both followers get the new entries: {outputs:?}");
    assert!(sends.iter().all(|s| Some(*s) < append_at), "sends first, then the local append: {outputs:?}");
}

#[test]
fn entries_of_an_earlier_term_commit_only_through_an_entry_of_the_current_term() {
    // node 1's log: membership (term 1), an old entry of term 1 at index 2
    let mut state = LogState { entries: vec![membership_entry(&[1, 2, 3], &[1, 2, 3])], ..LogState::default() };
    state.entries.push(Entry { log_id: log_id(1, 1, 2), payload: EntryPayload::Normal(1) });
    state.vote = Some(vote(1, 1));
    let mut engine = Engine::new(NodeId(1), config(LeaderIdMode::Standard, false), &state, 1, 0);
    engine.on_tick(10_000);
    let vote = engine.vote();
    engine.on_message(msg(
        2,
        1,
        MessageBody::VoteReply(VoteReply {
            vote,
            granted: true,
            pre_vote: false,
            last_log_id: None,
            not_member: false,
        }),
    ));
    assert!(engine.is_leader());
    engine.on_log_flushed(engine.log().last_log_id().unwrap());
    // a follower confirms the old entry only: it must not commit (Raft §5.4.2)
    ack(&mut engine, 2, Some(log_id(1, 1, 2)));
    assert!(engine.committed() < Some(log_id(1, 1, 2)));
    // once the blank entry of this term is on a majority, both commit
    let blank = engine.log().last_log_id();
    ack(&mut engine, 2, blank);
    assert_eq!(engine.committed(), blank);
}

#[test]
fn conflicting_uncommitted_entries_are_truncated_and_replaced() {
    let mut engine = member(3, &[1, 2, 3], config(LeaderIdMode::Standard, false));
    let old = Entry { log_id: log_id(2, 2, 2), payload: EntryPayload::Normal(1) };
    let append = |vote, prev, entries| AppendEntries {
        vote,
        prev_log_id: prev,
        entries,
        committed: None,
        seq: 1,
        leader_node: None,
    };
    engine.on_message(msg(
        2,
        3,
        MessageBody::Append(append(Vote::new_committed(Term(2), NodeId(2)), Some(log_id(1, 1, 1)), vec![old])),
    ));
    engine.take_outputs();
    let new = Entry { log_id: log_id(3, 1, 2), payload: EntryPayload::Normal(2) };
    engine.on_message(msg(
        1,
        3,
        MessageBody::Append(append(Vote::new_committed(Term(3), NodeId(1)), Some(log_id(1, 1, 1)), vec![new])),
    ));
    let outputs = engine.take_outputs();
    assert!(matches!(
        outputs.iter().find(|o| matches!(o, Output::TruncateLog(_))),
        Some(Output::TruncateLog(LogIndex(2)))
    ));
    assert_eq!(engine.log().log_id_at(LogIndex(2)), Some(log_id(3, 1, 2)));
}

#[test]
fn a_message_for_another_node_or_cluster_is_dropped() {
    let mut engine = member(3, &[1, 2, 3], config(LeaderIdMode::Standard, false));
    engine.on_message(msg(1, 2, vote_request(5, 1, Some(log_id(1, 1, 1)))));
    let mut other_cluster = msg(1, 3, vote_request(5, 1, Some(log_id(1, 1, 1))));
    other_cluster.envelope.cluster_id = 99;
    engine.on_message(other_cluster);
    assert!(engine.take_outputs().is_empty());
    assert_eq!(engine.vote(), Vote::default());
}

#[test]
fn a_learner_never_campaigns() {
    let state = LogState { entries: vec![membership_entry(&[1, 2], &[1, 2, 3])], ..LogState::default() };
    let mut engine: TestEngine = Engine::new(NodeId(3), config(LeaderIdMode::Standard, false), &state, 3, 0);
    engine.on_tick(1_000_000);
    assert!(sent(&engine.take_outputs()).is_empty());
    assert_eq!(engine.server_state(), ServerState::Learner);
}

#[test]
fn a_restarted_leader_campaigns_at_once_under_a_new_term() {
    let state = LogState {
        entries: vec![membership_entry(&[1, 2, 3], &[1, 2, 3])],
        vote: Some(Vote::new_committed(Term(4), NodeId(1))),
        ..LogState::default()
    };
    let mut engine: TestEngine = Engine::new(NodeId(1), config(LeaderIdMode::Standard, true), &state, 1, 0);
    engine.on_tick(0);
    assert_eq!(engine.vote(), vote(5, 1), "no reuse of its old leader id, no pre-vote delay");
}

#[test]
fn a_membership_is_proposed_only_after_the_previous_one_commits() {
    let mut engine = leader(&[1, 2, 3]);
    let blank = engine.log().last_log_id();
    engine.on_log_flushed(blank.unwrap());
    ack(&mut engine, 2, blank);
    engine.take_outputs();
    // learners 4 and 5 join
    engine.change_membership(1, ChangeMembers::AddNodes(nodes(&[4, 5])), false).unwrap();
    let m1 = engine.log().last_log_id().unwrap();
    // a second change queues behind the uncommitted first (propose-after-commit)
    engine.change_membership(2, ChangeMembers::AddVoterIds(set(&[4])), false).unwrap();
    assert_eq!(engine.log().last_log_id(), Some(m1));
    engine.on_log_flushed(m1);
    ack(&mut engine, 2, Some(m1));
    let m2 = engine.log().last_log_id().unwrap();
    assert!(m2.index > m1.index, "proposed once the first committed");
    assert_eq!(engine.membership().unwrap().membership.configs(), &[set(&[1, 2, 3]), set(&[1, 2, 3, 4])]);
}

#[test]
fn joint_config_commits_only_with_a_majority_of_both_configs() {
    let mut engine = leader(&[1, 2, 3]);
    let blank = engine.log().last_log_id();
    engine.on_log_flushed(blank.unwrap());
    ack(&mut engine, 2, blank);
    engine.change_membership(1, ChangeMembers::AddNodes(nodes(&[4, 5])), false).unwrap();
    let m1 = engine.log().last_log_id().unwrap();
    engine.on_log_flushed(m1);
    ack(&mut engine, 2, Some(m1));
    engine.change_membership(2, ChangeMembers::ReplaceAllVoters(set(&[3, 4, 5])), false).unwrap();
    let joint = engine.log().last_log_id().unwrap();
    engine.on_log_flushed(joint);
    ack(&mut engine, 2, Some(joint));
    assert!(engine.committed() < Some(joint), "{{1,2}} is a majority of the old config only");
    ack(&mut engine, 4, Some(joint));
    assert!(engine.committed() < Some(joint), "{{4}} alone is no majority of {{3,4,5}}");
    ack(&mut engine, 3, Some(joint));
    assert_eq!(engine.committed(), Some(joint));
}

#[test]
fn an_unreachable_follower_gets_one_probe_per_two_heartbeats_not_a_stream() {
    let mut engine = leader(&[1, 2, 3]);
    let blank = engine.log().last_log_id();
    engine.on_log_flushed(blank.unwrap());
    ack(&mut engine, 2, blank);
    engine.take_outputs();
    engine.on_peer_unreachable(NodeId(2));
    engine.propose([1, 2, 3]).unwrap();
    let to_2 = |outputs: &[Output<u64, BasicNode>]| sent(outputs).iter().filter(|m| m.envelope.to == NodeId(2)).count();
    assert_eq!(to_2(&engine.take_outputs()), 0, "no append streams to an unreachable peer");
    let later = engine.now_ms + engine.config.heartbeat_interval_ms * 2;
    engine.on_tick(later);
    assert!(to_2(&engine.take_outputs()) >= 1, "it is probed again after a pause");
}

/// Node 1 leads a cluster whose initial membership is `configs` over `all`,
/// with its blank entry committed by every other voter.
fn leader_of(configs: &[&[u64]], all: &[u64]) -> TestEngine {
    let m = Membership::new(configs.iter().map(|c| set(c)).collect(), nodes(all)).unwrap();
    let entry = Entry { log_id: log_id(1, 1, 1), payload: EntryPayload::Membership(m) };
    let mut engine = elected(NodeId(1), LogState { entries: vec![entry], ..LogState::default() });
    commit_everywhere(&mut engine);
    engine
}

/// Node `id` started from `state` and elected by every other voter of its
/// membership (its blank entry appended, not yet committed).
fn elected(id: NodeId, state: LogState<u64, BasicNode>) -> TestEngine {
    let mut engine = Engine::new(id, config(LeaderIdMode::Standard, false), &state, id.0, 0);
    engine.on_tick(10_000);
    let vote = engine.vote();
    let voters: Vec<NodeId> = engine.effective().unwrap().voter_ids().filter(|v| *v != id).collect();
    for peer in voters {
        let reply = VoteReply { vote, granted: true, pre_vote: false, last_log_id: None, not_member: false };
        engine.on_message(msg(peer, id, MessageBody::VoteReply(reply)));
    }
    assert!(engine.is_leader());
    engine
}

/// Every member acknowledges the leader's whole log.
fn commit_everywhere(engine: &mut TestEngine) {
    let last = engine.log().last_log_id();
    engine.on_log_flushed(last.unwrap());
    let peers: Vec<NodeId> =
        engine.effective().unwrap().nodes().keys().copied().filter(|id| *id != NodeId(1)).collect();
    for peer in peers {
        ack(engine, peer, last);
    }
    assert_eq!(engine.committed(), last);
}

fn configs_of(engine: &TestEngine) -> Vec<BTreeSet<NodeId>> {
    engine.membership().unwrap().membership.configs().to_vec()
}

#[test]
fn extended_path_c1c2c3_to_c3c4_to_c4() {
    // c1 = {1}, c2 = {2}, c3 = {3}, c4 = {4}; node 1 leads [c1,c2,c3]
    let mut engine = leader_of(&[&[1], &[2], &[3]], &[1, 2, 3, 4]);
    engine.change_membership(7, ChangeMembers::ReplaceAllVoters(set(&[4])), false).unwrap();
    assert_eq!(configs_of(&engine), vec![set(&[3]), set(&[4])], "c1c2c3 -> c3c4 keeps c3 (old-new-intersect)");
    commit_everywhere(&mut engine);
    assert_eq!(configs_of(&engine), vec![set(&[4])], "then c3c4 -> c4");
}

#[test]
fn reverting_c1c2c3_to_c1() {
    let mut engine = leader_of(&[&[1], &[2], &[3]], &[1, 2, 3]);
    let index = engine.abort_membership(LogIndex(1)).unwrap();
    assert_eq!(configs_of(&engine), vec![set(&[1])]);
    commit_everywhere(&mut engine);
    assert_eq!(engine.abort_membership(LogIndex(1)).unwrap(), index, "abort is idempotent");
}

#[test]
fn disjoint_proposals_from_c1c2_never_both_commit() {
    // c1 = {1,2,3}, c2 = {4,5,6}; node 1 leads [c1,c2] and proposes [c2,c3]
    // with c3 = {7}, but is cut off from c2: it cannot commit without a
    // majority of c2, which a rival leader in c2 would need too for [c2,c4]
    let all = [1, 2, 3, 4, 5, 6, 7];
    let mut engine = leader_of(&[&[1, 2, 3], &[4, 5, 6]], &all);
    engine.prepare_membership(&set(&[1, 2, 3, 4, 5, 6]), &set(&[7]), &set(&[7]), &set(&[])).unwrap_err();
    engine.change_membership(9, ChangeMembers::ReplaceAllVoters(set(&[7])), false).unwrap();
    let proposed = engine.log().last_log_id().unwrap();
    assert_eq!(configs_of(&engine), vec![set(&[4, 5, 6]), set(&[7])]);
    engine.on_log_flushed(proposed);
    ack(&mut engine, 2, Some(proposed));
    ack(&mut engine, 3, Some(proposed));
    ack(&mut engine, 7, Some(proposed));
    assert!(engine.committed() < Some(proposed), "c1 and c3 cannot commit while c2 is in the config");
    ack(&mut engine, 4, Some(proposed));
    ack(&mut engine, 5, Some(proposed));
    assert_eq!(engine.committed(), Some(proposed));
}

#[test]
fn trimming_the_log_cache_keeps_the_store_until_a_snapshot_covers_it() {
    let config = Arc::new(Config { log_cache_entries: 8, purge_keep_entries: 0, ..Config::default() });
    let state = LogState { entries: vec![membership_entry(&[1], &[1])], ..LogState::default() };
    let mut engine: TestEngine = Engine::new(NodeId(1), config, &state, 1, 0);
    engine.on_tick(10_000);
    assert!(engine.is_leader());
    let first = engine.propose(0..30u64).unwrap().unwrap();
    let last = engine.log().last_log_id().unwrap();
    engine.on_log_flushed(last);
    assert_eq!(engine.committed(), Some(last));
    engine.take_outputs();
    engine.trim_applied(last.index);
    assert_eq!(engine.log().first_index(), last.index - 8 + 1, "memory keeps the cache only");
    assert!(engine.log().get(first.index).is_none());
    assert!(!engine.take_outputs().iter().any(|o| matches!(o, Output::PurgeLog(_))), "the store keeps them");
    // a snapshot at `last` lets the store drop what memory already dropped
    engine.on_snapshot_saved(Some(last));
    let purged =
        engine.take_outputs().into_iter().find_map(|o| if let Output::PurgeLog(p) = o { Some(p) } else { None });
    assert_eq!(purged, engine.log().purged());
}

/// The applied indexes at which a lone node `id` asks for snapshots while
/// applying `entries` entries, with a snapshot every `every`.
fn snapshot_points(id: u64, every: u64, entries: u64) -> Vec<LogIndex> {
    let config = Arc::new(Config { snapshot_logs_since_last: every, ..Config::default() });
    let mut engine = member(id, &[id], config);
    engine.on_tick(10_000);
    assert!(engine.is_leader());
    let (mut points, mut applied) = (Vec::new(), None);
    for n in 0..entries {
        let log_id = engine.propose([n]).unwrap().unwrap();
        engine.on_log_flushed(log_id);
        for output in engine.take_outputs() {
            match output {
                Output::Apply { upto } => applied = Some(upto),
                Output::BuildSnapshot => {
                    points.push(index_of(applied));
                    engine.on_snapshot_saved(applied);
                }
                _ => {}
            }
        }
    }
    points
}

#[test]
fn nodes_snapshot_at_staggered_points_every_interval() {
    let every = 100;
    let points: Vec<Vec<LogIndex>> = (1..=4).map(|id| snapshot_points(id, every, 500)).collect();
    for (id, node) in (1..=4).zip(&points) {
        assert!(node.len() >= 3, "node {id}: {node:?}");
        assert!(node.windows(2).all(|w| w[1] - w[0] == every), "node {id} keeps its interval: {node:?}");
    }
    // Four ids, four distinct phases a quarter of the interval apart.
    let mut phases: Vec<u64> = points.iter().map(|node| node[0].0 % every).collect();
    phases.sort_unstable();
    assert_eq!(phases, [0, 25, 50, 75], "{points:?}");
}

#[test]
fn entries_applied_while_a_snapshot_is_built_start_the_next_one_once_it_is_saved() {
    let config = Arc::new(Config { snapshot_logs_since_last: 10, ..Config::default() });
    let mut engine = member(1, &[1], config);
    engine.on_tick(10_000);
    assert!(engine.is_leader());
    let apply_and_ask = |engine: &mut TestEngine, n: u64| {
        let log_id = engine.propose([n]).unwrap().unwrap();
        engine.on_log_flushed(log_id);
        let asked = engine.take_outputs().iter().any(|o| matches!(o, Output::BuildSnapshot));
        (log_id, asked)
    };
    let mut n = 0;
    let started = loop {
        n += 1;
        if let (log_id, true) = apply_and_ask(&mut engine, n) {
            break log_id;
        }
    };
    // a slow job: 30 entries are applied meanwhile, then the writes stop
    for _ in 0..30 {
        n += 1;
        assert!(!apply_and_ask(&mut engine, n).1, "one job at a time");
    }
    engine.on_snapshot_saved(Some(started));
    let asked = engine.take_outputs().iter().any(|o| matches!(o, Output::BuildSnapshot));
    assert!(asked, "30 entries past the saved snapshot, the policy of one every 10 asks for the next at once");
}

mod append_bytes;
mod campaign_rights;
mod change_identity;
mod change_ids_after_compaction;
mod demoted_leader;
mod force_new_cluster;
mod forwarding;
mod incarnations;
mod initialize_durability;
mod install_phase;
mod membership_answers;
mod named_sender;
mod promotion;
mod purge_hold;
mod removed_leader;
mod restart_state;
mod snapshot_held;
mod snapshot_pace;
mod snapshot_window;
mod store_reads;

/// Seed 3682 (membership stress): n2 led term 2, crashed, restarted and led
/// term 3; n1, already following term 3, refused a term-2 append still in
/// flight and echoed its sequence number (233) under the term-3 vote. Taken as
/// an acknowledgement, it confirmed every later read of the new leadership
/// (seq 109..117) without any round trip: n2, cut off, served a stale value
/// after n1 had been elected and committed a newer one.
#[test]
fn a_refusal_of_an_earlier_leaderships_message_confirms_no_read() {
    // elected and its blank entry committed by acks of its first message (seq 1)
    let mut engine = leader(&[1, 2, 3]);
    let blank = engine.log().last_log_id();
    engine.on_log_flushed(blank.unwrap());
    let vote = engine.vote();
    for peer in [2, 3] {
        let ack =
            AppendReply { vote, seq: 1, outcome: AppendOutcome::Success { matched: blank }, committed: LogIndex(0) };
        engine.on_message(msg(peer, 1, MessageBody::AppendReply(ack)));
    }
    assert_eq!(engine.committed(), blank);
    engine.take_outputs();
    engine.read_index(77).unwrap();
    for peer in [2, 3] {
        let stale = AppendReply { vote, seq: u64::MAX / 2, outcome: AppendOutcome::Rejected, committed: LogIndex(0) };
        engine.on_message(msg(peer, 1, MessageBody::AppendReply(stale)));
    }
    // any later event that re-examines the reads: an old acknowledgement from 2
    let matched = engine.committed();
    let old = AppendReply { vote, seq: 1, outcome: AppendOutcome::Success { matched }, committed: LogIndex(0) };
    engine.on_message(msg(2, 1, MessageBody::AppendReply(old)));
    let ready = engine.take_outputs().iter().any(|o| matches!(o, Output::ReadReady { request_id: 77, .. }));
    assert!(!ready, "no peer acknowledged a message sent after the read arrived");
}

/// The follower side of the same: a refusal acknowledges nothing, so it
/// carries no sequence number of the refused message.
#[test]
fn a_follower_refusing_a_stale_leader_echoes_no_sequence_number() {
    let mut engine = member(2, &[1, 2, 3], config(LeaderIdMode::Standard, false));
    let current = Vote { leader_id: LeaderId::new(Term(3), NodeId(1)), committed: true };
    let append =
        AppendEntries { leader_node: None, vote: current, seq: 1, prev_log_id: None, entries: vec![], committed: None };
    engine.on_message(msg(1, 2, MessageBody::Append(append)));
    engine.take_outputs();
    let stale_vote = Vote { leader_id: LeaderId::new(Term(2), NodeId(1)), committed: true };
    let stale = AppendEntries {
        leader_node: None,
        vote: stale_vote,
        seq: 233,
        prev_log_id: None,
        entries: vec![],
        committed: None,
    };
    engine.on_message(msg(1, 2, MessageBody::Append(stale)));
    let outputs = engine.take_outputs();
    let replies: Vec<_> = sent(&outputs)
        .into_iter()
        .filter_map(|m| if let MessageBody::AppendReply(r) = &m.body { Some(*r) } else { None })
        .collect();
    assert!(
        matches!(&replies[..], [r] if r.outcome == AppendOutcome::Rejected && r.vote == current && r.seq == 0),
        "{replies:?}"
    );
}
