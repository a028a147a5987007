//! A leader that is removed steps down once the config without it is
//! committed (DESIGN.md), whatever requests are queued behind its removal.

use super::*;

/// Node 1 leads {1,2,3}; its own removal is proposed and a second change is
/// queued behind it.
fn leader_removing_itself_with_a_change_queued() -> TestEngine {
    let mut engine = leader_of(&[&[1, 2, 3]], &[1, 2, 3, 4]);
    engine.change_membership(7, ChangeMembers::RemoveVoters(set(&[1])), false).unwrap();
    engine.change_membership(8, ChangeMembers::RemoveNodes(set(&[4])), false).unwrap();
    engine
}

/// Nodes 2 and 3 acknowledge the leader's whole log until a config without
/// node 1 is committed (one round, or two through a joint config).
fn commit_removal(engine: &mut TestEngine) {
    for _ in 0..3 {
        let last = engine.log().last_log_id();
        engine.on_log_flushed(last.unwrap());
        ack(engine, 2, last);
        ack(engine, 3, last);
        let committed = engine.log().membership_at(index_of(engine.committed())).unwrap();
        if !committed.membership.is_voter(NodeId(1)) {
            return;
        }
    }
    panic!("the removal never committed");
}

#[test]
fn a_removed_leader_steps_down_once_its_removal_commits_though_a_change_is_queued() {
    let mut engine = leader_removing_itself_with_a_change_queued();
    commit_removal(&mut engine);
    assert!(!engine.is_leader(), "a leader whose removal committed steps down");
    let m = engine.membership().unwrap();
    assert!(m.membership.is_member(NodeId(4)), "it proposed no change after its own removal: {}", m.membership);
}
