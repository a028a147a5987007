//! A node whose thread stalled (a slow store call, a starved CPU) handles
//! what arrived meanwhile before its timers fire: a follower whose leader's
//! heartbeats wait in its queue has heard from its leader, and does not
//! campaign as if it had not.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ferraft::mem::{MemRouter, RecordingStateMachine};
use ferraft::{Config, LeaderIdMode, NodeId, Raft};
use support::hooked_store::{Hooked, Mem, StoreHooks};
use support::{addr, fast_config, nodes, Node, WAIT};

/// How long the stalled follower's thread is held: well past its election
/// timeout (at most 300 ms here).
const STALL: Duration = Duration::from_millis(900);

/// Holds the node's thread in its next append once `armed`.
struct StallNextAppend(Arc<AtomicBool>);

impl StoreHooks for StallNextAppend {
    fn before_append(&mut self) {
        if self.0.swap(false, Ordering::SeqCst) {
            std::thread::sleep(STALL);
        }
    }
}

/// Starts node `id` on a thread and runtime of its own, as a node in its
/// own process runs: its stall holds no other node's tasks.
fn start_on_own_thread(id: NodeId, config: Config, router: Arc<MemRouter<u64>>, armed: Arc<AtomicBool>) -> Node {
    let (started, raft) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            let store = Hooked { store: Mem::new(), hooks: StallNextAppend(armed) };
            let sm = RecordingStateMachine::<u64>::new();
            let raft = Raft::new(id, config, router.network(), Box::new(store), sm).await.unwrap();
            router.register(addr(id), raft.clone());
            started.send(raft).unwrap();
            // runs the node until the test process ends
            std::future::pending::<()>().await
        });
    });
    raft.recv().unwrap()
}

/// Without pre-vote a campaign raises the term at once, so one started by
/// mistake shows in the terms.
#[tokio::test]
async fn a_follower_stalled_past_its_election_timeout_reads_the_queued_heartbeats_before_campaigning() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let config = Config { pre_vote: false, ..fast_config(LeaderIdMode::Standard) };
    let router = MemRouter::new();
    let mut members: Vec<(NodeId, Node, Arc<AtomicBool>)> = Vec::new();
    for id in [1, 2, 3].map(NodeId) {
        let armed = Arc::new(AtomicBool::new(false));
        members.push((id, start_on_own_thread(id, config.clone(), router.clone(), armed.clone()), armed));
    }
    members[0].1.initialize(nodes(&[1, 2, 3])).await.unwrap();
    let leader = members[0].1.wait(WAIT).for_leader().await.unwrap();
    let raft_of = |id: NodeId| members.iter().find(|(n, ..)| *n == id).unwrap().1.clone();
    let leader_raft = raft_of(leader);
    leader_raft.client_write(1).await.unwrap();
    let term = leader_raft.metrics().borrow().current_term;
    let (follower, _, armed) = members.iter().find(|(n, ..)| *n != leader).unwrap();

    // the follower's thread stalls in the append of the next write, while
    // the leader's heartbeats queue up for it; three times, as the stall
    // may end with the timer or with the queue waking the node first
    for write in 2..5 {
        armed.store(true, Ordering::SeqCst);
        leader_raft.client_write(write).await.unwrap();
        tokio::time::sleep(STALL + Duration::from_millis(600)).await;

        let seen = raft_of(*follower).metrics().borrow().clone();
        assert_eq!(
            (seen.current_term, seen.current_leader),
            (term, Some(leader)),
            "follower {follower} campaigned although its leader's heartbeats were waiting for it (stall {})",
            write - 1
        );
        assert_eq!(leader_raft.metrics().borrow().current_term, term, "the leader was disturbed");
    }
    for (_, raft, _) in members {
        raft.shutdown().await.unwrap();
    }
}
