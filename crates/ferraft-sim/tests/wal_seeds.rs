//! The WAL seed set: seeded runs in which every node stores its log in the
//! real WAL (`ferraft_wal::WalStore`, stepped) on a simulated file system
//! that loses unsynced data and tears writes when a node crashes, some
//! crashes landing in the middle of a writer batch. Every check of the other
//! sets holds, and each restart checks what the WAL recovered against the
//! LogStore durability contract.
//!
//! `FERRAFT_SIM_START` and `FERRAFT_SIM_SEEDS` choose the range (default 0
//! and 200; thousands locally in release), `FERRAFT_SIM_TRACE=1` prints
//! every event (use with one seed).

use ferraft_sim::seed_sets::{run_seeds, seeds_from_env};
use ferraft_sim::SimOptions;

#[test]
fn nodes_on_the_wal_over_a_crashing_file_system_keep_every_rule() {
    let (seeds, trace) = seeds_from_env(200);
    let began = std::time::Instant::now();
    let results = run_seeds(seeds.clone(), trace, |seed| SimOptions { wal: true, ..SimOptions::new(seed) });
    let stats: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    let crashes: usize = stats.iter().map(|s| s.crashes).sum();
    let torn: usize = stats.iter().map(|s| s.torn_writes).sum();
    let writes: usize = stats.iter().map(|s| s.writes).sum();
    let mut failures: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    failures.sort_by_key(|f| f.seed);
    let count = seeds.end - seeds.start;
    println!(
        "WAL seeds: {count} from {} in {:.1}s; {writes} writes, {crashes} crashes, {torn} torn writes, {} failed",
        seeds.start,
        began.elapsed().as_secs_f64(),
        failures.len()
    );
    for failure in &failures {
        eprintln!("{failure}");
    }
    assert!(crashes > count as usize, "too few crashes ({crashes}) for the runs to mean anything");
    assert!(torn > 0, "no write was ever torn");
    assert!(failures.is_empty(), "{} of {count} seeds failed; first: {}", failures.len(), failures[0]);
}
