//! Wiped disks (issue 18): seeded runs in which some crashes wipe the node's
//! disk, so it comes back empty, as a new incarnation, under its old id. No
//! committed write may be lost, and every other check holds.
//!
//! `FERRAFT_SIM_START` and `FERRAFT_SIM_SEEDS` choose the range (default 0 and
//! 200; thousands locally in release).

use ferraft::config::BrokenRule;
use ferraft_sim::seed_sets::{caught, run_set};
use ferraft_sim::{run_seed, Fault, SimOptions};

#[test]
fn a_wiped_node_under_its_old_id_never_loses_a_committed_write() {
    let run = run_set(200, |seed, trace| run_seed(&SimOptions { wipe_disks: true, trace, ..SimOptions::new(seed) }));
    let wipes = run.sum(|s| s.wipes);
    run.report("wiped disks", &format!("{wipes} wipes"));
    assert!(wipes > run.count() as usize / 5, "too few wipes ({wipes}) for the runs to mean anything");
}

/// The fault has teeth: with the engine counting a wiped node as its old
/// self, some seed loses a committed write (or breaks another safety rule).
#[test]
fn counting_a_wiped_node_as_its_old_self_is_caught() {
    let fault = Fault::Broken(BrokenRule::CountOtherIncarnations);
    let run = |seed| {
        run_seed(&SimOptions { wipe_disks: true, fault, check_membership_answers: false, ..SimOptions::new(seed) })
    };
    // a node counted as its old self may also stall the cluster (the
    // leader sees its log go backwards): only a safety failure counts
    let safety = ["committed entries never lost", "leader completeness", "state machine safety", "linearizab"];
    let is_safety = |failure: &ferraft_sim::Failure| safety.iter().any(|r| failure.message.contains(r));
    caught("counting other incarnations", 0..3_000, run, is_safety);
}

/// The same on the real WAL: a wipe empties the WAL's simulated file system
/// too (before, only the checkers' shadow disk was wiped and the WAL
/// recovered the old vote: about a third of WAL=1 WIPE_DISKS=1 seeds failed
/// "the vote saved last was None").
#[test]
fn a_wiped_node_on_the_wal_comes_back_empty_and_never_loses_a_committed_write() {
    let run = run_set(50, |seed, trace| {
        run_seed(&SimOptions { wal: true, wipe_disks: true, trace, ..SimOptions::new(seed) })
    });
    let wipes = run.sum(|s| s.wipes);
    run.report("wiped disks on the WAL", &format!("{wipes} wipes"));
    assert!(wipes > run.count() as usize / 5, "too few wipes ({wipes}) for the runs to mean anything");
}
