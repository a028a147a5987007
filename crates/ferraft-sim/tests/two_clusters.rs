//! Two clusters on one network (issue 18): seeded runs of two independently
//! initialized clusters sharing one simulated address space, with messages
//! mis-delivered across them, addresses of one taken over by machines of the
//! other, and operators adding a node of the other cluster as a learner.
//! Each cluster keeps every check of a one-cluster run; neither ever holds
//! an entry of the other or names one of its nodes.
//!
//! `FERRAFT_SIM_START` and `FERRAFT_SIM_SEEDS` choose the range (default 0
//! and [`CI_SEEDS`]); `FERRAFT_SIM_TRACE=1` prints every event (one seed);
//! `FERRAFT_SIM_WIPE=1` wipes disks too (see `tests/wiped_disks.rs`).

use ferraft::config::BrokenRule;
use ferraft_sim::seed_sets::{caught, env_flag, run_set};
use ferraft_sim::{run_two_clusters, CrossingStats, Fault, SimOptions};

/// The CI set: its debug run stays well under a minute on two cores.
const CI_SEEDS: u64 = 150;

#[test]
fn two_clusters_on_one_network_never_mix() {
    let wipe_disks = env_flag("FERRAFT_SIM_WIPE");
    let run =
        run_set(CI_SEEDS, |seed, trace| run_two_clusters(&SimOptions { trace, wipe_disks, ..SimOptions::new(seed) }));
    let total = CrossingStats {
        crossed: run.sum(|s| s.crossed),
        reused_addresses: run.sum(|s| s.reused_addresses),
        refused_adds: run.sum(|s| s.refused_adds),
        unanswered_adds: run.sum(|s| s.unanswered_adds),
    };
    run.report("two clusters", &format!("{total:?}"));
    // the faults must make the clusters meet, or the runs prove nothing
    let count = run.count() as usize;
    assert!(total.crossed > count * 10, "too few messages crossed: {total:?}");
    assert!(total.reused_addresses > count / 4, "too few addresses reused: {total:?}");
    assert!(total.refused_adds > count / 4, "too few operator adds refused: {total:?}");
}

/// The runs have teeth: with the cluster-id check skipped (messages of
/// another cluster let in, a probe's answer from another cluster taken as
/// a yes), some CI seed mixes the clusters.
#[test]
fn skipping_the_cluster_id_check_is_caught() {
    let fault = Fault::Broken(BrokenRule::SkipClusterCheck);
    let run = |seed| run_two_clusters(&SimOptions { fault, ..SimOptions::new(seed) });
    caught("skipping the cluster-id check", 0..CI_SEEDS, run, |f| f.message.contains("two clusters apart"));
}

/// Seeds of the runs with wiped disks that found bugs, pinned.
/// 187: a leader learned the incarnation a probe's answer from the other
/// cluster gave (its own member 4's address was reused), recorded it for its
/// member 4, and dropped every message of the real one: a joint config
/// needing it never committed. 1214: a probe of the other cluster's node 2
/// and one of this cluster's own (wiped) node 2 were in flight at once; the
/// first answer (this cluster's) answered both, and the other cluster's node
/// was added.
#[test]
fn found_seeds_with_wiped_disks_stay_fixed() {
    for seed in [187, 1214] {
        if let Err(failure) = run_two_clusters(&SimOptions { wipe_disks: true, ..SimOptions::new(seed) }) {
            panic!("{failure}");
        }
    }
}
