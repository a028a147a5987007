//! The WAL seed set: seeded runs in which every node stores its log in the
//! real WAL (`ferraft_wal::WalStore`, stepped) on a simulated file system
//! that loses unsynced data and tears writes when a node crashes (half the
//! disks writing pages back out of order, see `sim_fs.rs`), some crashes
//! landing in the middle of a writer batch. Every check of the other sets
//! holds, and each restart checks what the WAL recovered against the
//! LogStore durability contract.
//!
//! `FERRAFT_SIM_START` and `FERRAFT_SIM_SEEDS` choose the range (default 0
//! and [`CI_SEEDS`]; thousands locally in release), `FERRAFT_SIM_TRACE=1`
//! prints every event (use with one seed).

use ferraft_sim::seed_sets::run_set;
use ferraft_sim::{run_seed, SimOptions};

/// The CI set (the teeth tests in `tests/wal_teeth.rs` hunt in it too).
const CI_SEEDS: u64 = 200;

#[test]
fn nodes_on_the_wal_over_a_crashing_file_system_keep_every_rule() {
    let run = run_set(CI_SEEDS, |seed, trace| run_seed(&SimOptions { wal: true, trace, ..SimOptions::new(seed) }));
    let crashes = run.sum(|s| s.crashes);
    let torn = run.sum(|s| s.torn_writes);
    let writes = run.sum(|s| s.writes);
    let reordered = run.sum(|s| s.reordered_files);
    run.report(
        "WAL seeds",
        &format!("{writes} writes, {crashes} crashes, {torn} torn writes, {reordered} files written back out of order"),
    );
    assert!(crashes > run.count() as usize, "too few crashes ({crashes}) for the runs to mean anything");
    assert!(torn > 0, "no write was ever torn");
}
