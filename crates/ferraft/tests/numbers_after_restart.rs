//! Numbers a node puts on requests it sends (probe numbers, forwarded batch
//! ids) are matched against answers and copies that may arrive late. A
//! restarted node must not reuse its earlier life's numbers: a late answer
//! to an old probe would count for a new one, and a leader remembering a
//! follower's old batch ids would drop its new batches as copies.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferraft::message::MessageBody;
use ferraft::{LeaderIdMode, NodeId};
use support::*;

/// The probe numbers node 1 sends, in order.
fn record_probes(cluster: &Cluster) -> Arc<Mutex<Vec<u64>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let tap = seen.clone();
    cluster.router.set_tap(move |message| {
        if let (NodeId(1), MessageBody::Probe(probe)) = (message.envelope.from, &message.body) {
            tap.lock().unwrap().push(probe.seq);
        }
    });
    seen
}

/// Starts node 1's initialize of {1, 2} (node 2 never answers: it is not
/// running) and returns the number of the first probe it sends.
async fn first_probe_of_an_initialize(cluster: &Cluster, probes: &Arc<Mutex<Vec<u64>>>) -> u64 {
    probes.lock().unwrap().clear();
    let raft = cluster.raft(1).clone();
    tokio::spawn(async move { raft.initialize(nodes(&[1, 2])).await });
    for _ in 0..500 {
        if let Some(seq) = probes.lock().unwrap().first() {
            return *seq;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("node 1 sent no probe");
}

#[tokio::test]
async fn a_restarted_node_probes_under_numbers_its_earlier_life_did_not_use() {
    let mut cluster = Cluster::new(fast_config(LeaderIdMode::Standard));
    let probes = record_probes(&cluster);
    cluster.start(1).await;
    let before = first_probe_of_an_initialize(&cluster, &probes).await;
    cluster.crash(1).await;
    // the same data dir (still fresh: the initialize never decided), in
    // the same process, as a restarted `ferraft serve` in a container
    // whose process id repeats
    cluster.start(1).await;
    let after = first_probe_of_an_initialize(&cluster, &probes).await;
    assert_ne!(before, after, "a late answer to the earlier life's probe would count for this one");
}
