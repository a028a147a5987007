//! Every node serves clients: writes on a follower go to the leader over the
//! Raft transport, linearizable reads are served on the follower itself.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use ferraft::{LeaderIdMode, LogIndex, NodeId, ReadError, WriteError};
use support::*;

fn followers(ids: &[NodeId], leader: NodeId) -> Vec<NodeId> {
    ids.iter().copied().filter(|id| *id != leader).collect()
}

#[tokio::test]
async fn writes_on_followers_are_applied_once_everywhere_and_answered_with_their_log_index() {
    let ids = [1, 2, 3].map(NodeId);
    let cluster = Cluster::start_initialized(fast_config(LeaderIdMode::Standard), &ids).await;
    let leader = cluster.leader_among(&ids).await;
    let mut calls = Vec::new();
    for (n, follower) in followers(&ids, leader).into_iter().enumerate() {
        for i in 0..100u64 {
            let raft = cluster.raft(follower).clone();
            let command = n as u64 * 1000 + i;
            calls.push((command, tokio::spawn(async move { raft.client_write_here(command).await })));
        }
    }
    let mut answered = BTreeMap::new();
    for (command, call) in calls {
        let written = call.await.unwrap().expect("the write succeeds");
        assert_eq!(written.response, written.log_id.index, "the response of this node's state machine");
        answered.insert(written.log_id.index, command);
    }
    let last = *answered.keys().last().unwrap();
    cluster.wait_applied(&ids, last).await;
    let reference = cluster.members[&leader].sm.applied();
    assert_eq!(reference.len(), 200, "each write applied once");
    for (log_id, command) in &reference {
        assert_eq!(answered.get(&log_id.index), Some(command), "answered at the index it sits at");
    }
    cluster.assert_applied_everywhere(&ids, &cluster.applied(leader));
}

#[tokio::test]
async fn a_linearizable_read_on_a_follower_sees_every_write_acknowledged_before_it() {
    let ids = [1, 2, 3].map(NodeId);
    let cluster = Cluster::start_initialized(fast_config(LeaderIdMode::Standard), &ids).await;
    let leader = cluster.leader_among(&ids).await;
    for follower in followers(&ids, leader) {
        for i in 0..20u64 {
            let written = cluster.raft(leader).client_write(i).await.unwrap();
            let read_index = cluster.raft(follower).ensure_linearizable_here().await.expect("follower read");
            assert!(read_index >= written.log_id.index);
            let seen = cluster.members[&follower].sm.applied();
            assert!(seen.iter().any(|(log_id, _)| *log_id == written.log_id), "the write is applied on the follower");
            let lease = cluster.raft(follower).lease_read_here().await.expect("follower lease read");
            assert!(lease >= written.log_id.index);
        }
    }
}

#[tokio::test]
async fn a_follower_cut_off_from_the_leader_answers_errors_never_stale_data() {
    let ids = [1, 2, 3].map(NodeId);
    let cluster = Cluster::start_initialized(fast_config(LeaderIdMode::Standard), &ids).await;
    let leader = cluster.leader_among(&ids).await;
    let follower = followers(&ids, leader)[0];
    cluster.raft(follower).client_write_here(1).await.expect("write before the cut");
    cluster.router.isolate(follower);
    // the rest go on writing: the follower's state falls behind
    cluster.raft(leader).client_write(2).await.unwrap();
    let read = tokio::time::timeout(WAIT, cluster.raft(follower).ensure_linearizable_here()).await;
    assert!(
        matches!(read, Ok(Err(ReadError::NotConfirmed | ReadError::ForwardToLeader(_)))),
        "an error within the bound, not a read index: {read:?}"
    );
    let write = tokio::time::timeout(WAIT, cluster.raft(follower).client_write_here(3)).await;
    assert!(
        matches!(write, Ok(Err(WriteError::LeadershipLost | WriteError::ForwardToLeader(_)))),
        "an error within the bound: {write:?}"
    );
    cluster.router.restore(follower);
}

#[tokio::test]
async fn writes_forwarded_while_the_leader_crashes_are_never_answered_wrongly() {
    let ids = [1, 2, 3].map(NodeId);
    let mut cluster = Cluster::start_initialized(fast_config(LeaderIdMode::Standard), &ids).await;
    let leader = cluster.leader_among(&ids).await;
    let follower = followers(&ids, leader)[0];
    let raft = cluster.raft(follower).clone();
    let writer = tokio::spawn(async move {
        let mut answers = Vec::new();
        for command in 0..400u64 {
            answers.push((command, raft.client_write_here(command).await));
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        answers
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    cluster.crash(leader).await;
    let answers = writer.await.unwrap();
    let rest = followers(&ids, leader);
    let new = cluster.leader_among(&rest).await;
    let last = cluster.raft(new).client_write(10_000).await.unwrap().log_id.index;
    cluster.wait_applied(&rest, last).await;
    let applied: BTreeMap<LogIndex, u64> =
        cluster.members[&new].sm.applied().into_iter().map(|(log_id, c)| (log_id.index, c)).collect();
    let (mut ok, mut failed) = (0, 0);
    for (command, answer) in answers {
        match answer {
            Ok(written) => {
                ok += 1;
                assert_eq!(applied.get(&written.log_id.index), Some(&command), "an acknowledged write is there");
            }
            Err(WriteError::ForwardToLeader(_)) => {
                failed += 1;
                assert!(!applied.values().any(|c| *c == command), "refused, yet applied: {command}");
            }
            Err(_) => failed += 1,
        }
    }
    assert!(ok > 0 && failed > 0, "the crash fell among the writes: {ok} ok, {failed} failed");
    let mut commands: Vec<u64> = applied.values().copied().collect();
    let count = commands.len();
    commands.dedup();
    commands.sort();
    commands.dedup();
    assert_eq!(commands.len(), count, "no write applied twice");
}

#[tokio::test]
async fn a_follower_splits_its_forwarded_writes_so_no_message_exceeds_max_append_bytes() {
    // a transport drops a message above its frame limit: one turn's writes
    // of many clients must not add up to one oversized message
    let max_bytes = 16;
    let config = ferraft::Config { max_append_bytes: max_bytes, ..fast_config(LeaderIdMode::Standard) };
    let ids = [1, 2, 3].map(NodeId);
    let cluster = Cluster::start_initialized(config, &ids).await;
    let leader = cluster.leader_among(&ids).await;
    let follower = followers(&ids, leader)[0];
    let batches = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = batches.clone();
    cluster.router.set_tap(move |message| {
        if let ferraft::MessageBody::ForwardWrite(forward) = &message.body {
            seen.lock().unwrap().push(forward.commands.clone());
        }
    });
    let calls: Vec<_> = (0..100u64)
        .map(|i| {
            let raft = cluster.raft(follower).clone();
            tokio::spawn(async move { raft.client_write_here(u64::MAX - i).await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().expect("every write succeeds");
    }
    let batches = batches.lock().unwrap();
    let sent: usize = batches.iter().map(Vec::len).sum();
    assert_eq!(sent, 100, "each write handed over once");
    for commands in batches.iter() {
        let bytes: usize = commands.iter().map(|c| postcard::to_allocvec(c).unwrap().len()).sum();
        assert!(commands.len() == 1 || bytes <= max_bytes, "{} commands, {bytes} bytes in one message", commands.len());
    }
    assert!(batches.len() >= 100 * 10 / max_bytes, "u64::MAX - i takes 10 bytes: at most one per message");
}
