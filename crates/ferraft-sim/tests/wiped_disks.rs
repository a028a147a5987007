//! Wiped disks (issue 18): seeded runs in which some crashes wipe the node's
//! disk, so it comes back empty, as a new incarnation, under its old id. No
//! committed write may be lost, and every other check holds.
//!
//! `FERRAFT_SIM_START` and `FERRAFT_SIM_SEEDS` choose the range (default 0 and
//! 200; thousands locally in release).

use ferraft::config::BrokenRule;
use ferraft_sim::{run_seed, Fault, SimOptions};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[test]
fn a_wiped_node_under_its_old_id_never_loses_a_committed_write() {
    let start = env_u64("FERRAFT_SIM_START", 0);
    let count = env_u64("FERRAFT_SIM_SEEDS", 200);
    let trace = std::env::var("FERRAFT_SIM_TRACE").is_ok_and(|v| v == "1");
    let threads = if trace { 1 } else { std::thread::available_parallelism().map_or(2, |n| n.get()).min(8) as u64 };
    let results: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    (start + t..start + count)
                        .step_by(threads as usize)
                        .map(|seed| run_seed(&SimOptions { wipe_disks: true, trace, ..SimOptions::new(seed) }))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("simulation thread panicked")).collect()
    });
    let wipes: usize = results.iter().filter_map(|r| r.as_ref().ok()).map(|s| s.wipes).sum();
    let failures: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    println!("wiped disks: {count} seeds from {start}, {wipes} wipes, {} failed", failures.len());
    for failure in &failures {
        eprintln!("{failure}");
    }
    assert!(wipes > count as usize / 5, "too few wipes ({wipes}) for the runs to mean anything");
    assert!(failures.is_empty(), "{} of {count} seeds failed; first: {}", failures.len(), failures[0]);
}

/// The fault has teeth: with the engine counting a wiped node as its old
/// self, some seed loses a committed write (or breaks another safety rule).
#[test]
fn counting_a_wiped_node_as_its_old_self_is_caught() {
    let fault = Fault::Broken(BrokenRule::CountOtherIncarnations);
    for seed in 0..3_000 {
        let options = SimOptions { wipe_disks: true, fault, check_membership_answers: false, ..SimOptions::new(seed) };
        // a node counted as its old self may also stall the cluster (the
        // leader sees its log go backwards): only a safety failure counts
        let safety = ["committed entries never lost", "leader completeness", "state machine safety", "linearizab"];
        if let Err(failure) = run_seed(&options) {
            if safety.iter().any(|r| failure.message.contains(r)) {
                println!("caught: {failure}");
                return;
            }
        }
    }
    panic!("counting other incarnations broke no safety rule in 3000 seeds");
}
