//! What the metrics channel shows, and when.

mod support;

use std::time::Duration;

use ferraft::LeaderIdMode;
use support::*;

/// A node that answers a write and then waits for its next event has
/// published the write's progress already: an idle node owes nobody a
/// stale index, and no timer is needed to catch up later.
#[tokio::test]
async fn an_idle_node_has_published_the_progress_of_a_write_it_answered() {
    let ids = [1];
    let cluster = Cluster::start_initialized(fast_config(LeaderIdMode::Standard), &ids).await;
    let leader = cluster.leader_among(&ids).await;
    let raft = cluster.raft(leader);
    raft.client_write(0).await.expect("write");
    // let the leader's start-up changes (structural ones) settle
    tokio::time::sleep(Duration::from_millis(20)).await;
    for i in 1..=20 {
        let written = raft.client_write(i).await.expect("write").log_id;
        let applied = raft.metrics().borrow().last_applied;
        assert_eq!(applied, Some(written), "write {i}: the metrics lag the answered write");
    }
}
