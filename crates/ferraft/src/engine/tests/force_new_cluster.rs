//! Force-new-cluster (issue 18): a survivor of a lost majority restarts the
//! cluster from its own data, alone, under a new cluster id.

use super::*;
use crate::error::ForceNewClusterError;

/// Given node 1 of {1,2,3} holding an entry nobody acknowledged, with 2 and
/// 3 gone, when it is forced into a new cluster, then it leads alone, commits
/// its whole log and the new membership, and its old peers are outsiders.
#[test]
fn a_forced_survivor_leads_alone_in_a_new_cluster_and_commits_its_log() {
    let mut survivor = member(1, &[1, 2, 3], config(LeaderIdMode::Standard, false));
    let entry = Entry { log_id: log_id(1, 1, 2), payload: EntryPayload::Normal(7) };
    survivor.log.push(entry);
    let new_cluster = ClusterId::new(0xbeef).unwrap();
    let at = survivor.force_new_cluster(new_cluster).unwrap();
    assert_eq!(at.index, LogIndex(3), "the new membership follows the survivor's log");
    let outputs = survivor.take_outputs();
    let saved_cluster = outputs.iter().position(|o| matches!(o, Output::SaveClusterId(c) if *c == new_cluster));
    let saved_vote = outputs.iter().position(|o| matches!(o, Output::SaveVote(_)));
    assert!(saved_cluster.is_some() && saved_cluster < saved_vote, "the new cluster id is saved first: {outputs:?}");
    assert!(survivor.is_leader(), "the only voter elects itself");
    let last = survivor.log().last_log_id().unwrap();
    survivor.on_log_flushed(last);
    assert_eq!(survivor.committed(), Some(last), "its whole log is committed, alone");
    let m = survivor.effective().unwrap();
    assert_eq!(m.voter_set(), set(&[1]));
    assert_eq!(survivor.cluster_id(), Some(new_cluster));

    // a lost member coming back on its old data speaks for the old cluster: dropped
    survivor.take_outputs();
    survivor.on_message(msg(2, 1, vote_request(50, 2, Some(log_id(1, 1, 2)))));
    assert!(sent(&survivor.take_outputs()).is_empty(), "a node of the old cluster is answered");
    assert!(survivor.is_leader());
}

#[test]
fn force_new_cluster_needs_a_membership_naming_this_node() {
    let state = LogState::default();
    let mut fresh: TestEngine = Engine::new(NodeId(1), config(LeaderIdMode::Standard, false), &state, 1, 0);
    let cluster = ClusterId::new(9).unwrap();
    assert!(matches!(fresh.force_new_cluster(cluster), Err(ForceNewClusterError::NotInitialized)));
    let mut learner = member(4, &[1, 2, 3], config(LeaderIdMode::Standard, false));
    assert!(matches!(learner.force_new_cluster(cluster), Err(ForceNewClusterError::NotMember)));
}
