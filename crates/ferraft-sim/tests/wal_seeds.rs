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

use ferraft_sim::{run_seed, SimOptions};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[test]
fn nodes_on_the_wal_over_a_crashing_file_system_keep_every_rule() {
    let start = env_u64("FERRAFT_SIM_START", 0);
    let count = env_u64("FERRAFT_SIM_SEEDS", 200);
    let trace = std::env::var("FERRAFT_SIM_TRACE").is_ok_and(|v| v == "1");
    let threads = if trace { 1 } else { std::thread::available_parallelism().map_or(2, |n| n.get()).min(8) as u64 };
    let began = std::time::Instant::now();
    let results: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    (start + t..start + count)
                        .step_by(threads as usize)
                        .map(|seed| run_seed(&SimOptions { wal: true, trace, ..SimOptions::new(seed) }))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("simulation thread panicked")).collect()
    });
    let stats: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    let crashes: usize = stats.iter().map(|s| s.crashes).sum();
    let torn: usize = stats.iter().map(|s| s.torn_writes).sum();
    let writes: usize = stats.iter().map(|s| s.writes).sum();
    let failures: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    println!(
        "WAL seeds: {count} from {start} in {:.1}s; {writes} writes, {crashes} crashes, {torn} torn writes, {} failed",
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
