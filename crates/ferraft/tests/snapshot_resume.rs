//! A snapshot transfer cut by a leader change resumes: the new leader, which
//! holds the same snapshot bytes, goes on from what the learner already
//! holds instead of sending every byte again.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ferraft::{BasicNode, LeaderIdMode, MessageBody};
use support::{addr, fast_config, Cluster, WAIT};

const CHUNK_BYTES: usize = 256;
/// Ten chunks a second: the transfer takes seconds, long enough to move
/// the leadership in the middle of it.
const RATE: u64 = 10 * CHUNK_BYTES as u64;

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn a_transfer_cut_by_a_leader_change_resumes_from_the_bytes_the_learner_holds() {
    let config = ferraft::Config {
        snapshot_logs_since_last: 0,
        purge_keep_entries: 0,
        catch_up_retain_entries: 0,
        snapshot_chunk_bytes: CHUNK_BYTES,
        snapshot_max_bytes_per_s: RATE,
        ..fast_config(LeaderIdMode::Standard)
    };
    let voters = [1, 2, 3];
    let mut cluster = Cluster::start_initialized(config, &voters).await;
    let leader = cluster.leader_among(&voters).await;
    for i in 0..150 {
        cluster.raft(leader).client_write(i).await.unwrap();
    }
    let last = cluster.read_index(leader).await;
    cluster.wait_applied(&voters, last).await;
    // every voter snapshots the same applied state: the same bytes
    let mut covered = Vec::new();
    for id in voters {
        covered.push(cluster.raft(id).trigger_snapshot().await.unwrap());
    }
    assert!(covered.windows(2).all(|w| w[0] == w[1]), "the voters' snapshots cover the same entries: {covered:?}");

    let sent_to_learner = Arc::new(AtomicU64::new(0));
    let counted = sent_to_learner.clone();
    cluster.router.set_tap(move |message| {
        if let MessageBody::Snapshot(chunk) = &message.body {
            if message.envelope.to == 4 {
                counted.fetch_add(chunk.data.len() as u64, Ordering::Relaxed);
            }
        }
    });
    cluster.start(4).await;
    cluster.raft(leader).add_learner(4, BasicNode::new(addr(4)), false).await.unwrap();
    let total = {
        let mut metrics = cluster.raft(leader).metrics();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let report = metrics.borrow().replication.as_ref().and_then(|r| r.get(&4).copied());
            if let Some(transfer) = report.and_then(|r| r.snapshot) {
                if transfer.bytes_sent >= transfer.bytes_total / 3 {
                    break transfer.bytes_total;
                }
            }
            assert!(tokio::time::Instant::now() < deadline, "the transfer did not get a third through");
            let _ = tokio::time::timeout(Duration::from_millis(20), metrics.changed()).await;
        }
    };
    assert!(total > 20 * CHUNK_BYTES as u64, "a transfer of many chunks: {total} bytes");
    let next = voters.into_iter().find(|id| *id != leader).unwrap();
    cluster.raft(leader).transfer_leader(Some(next)).await.unwrap();
    cluster.raft(4).wait(WAIT * 3).applied_at_least(last).await.unwrap();

    let sent = sent_to_learner.load(Ordering::Relaxed);
    // one chunk at offset 0 from the new leader before the learner says
    // where it stands, and one resent when the leadership moved
    assert!(sent <= total + 2 * CHUNK_BYTES as u64, "{sent} bytes sent for a {total}-byte snapshot");
    assert_eq!(cluster.applied(4)[..150], (0..150).collect::<Vec<u64>>()[..]);
}
