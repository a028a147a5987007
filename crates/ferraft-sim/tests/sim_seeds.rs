//! The CI seed set: many seeded runs of the simulator, each checked after every
//! step, for liveness once faults stop, and for linearizability at the end.
//!
//! `FERRAFT_SIM_START` and `FERRAFT_SIM_SEEDS` choose the range (default 0 and
//! 500), `FERRAFT_SIM_TRACE=1` prints every event (use with one seed).

use std::time::Instant;

use ferraft_sim::{run_seed, Failure, RunStats, SimOptions};

/// Issue 17: today's engine fails the membership answer check on 52 of the
/// 500 CI seeds (see `tests/membership_answers.rs`); on again once fixed.
const CHECK_MEMBERSHIP_ANSWERS: bool = true;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Runs `seeds` on a few threads; seeds are independent, so this only changes wall time.
fn run_all(seeds: Vec<u64>, trace: bool) -> (Vec<RunStats>, Vec<Failure>) {
    let threads = if trace { 1 } else { std::thread::available_parallelism().map_or(2, |n| n.get()).min(8) };
    let results: Vec<Result<RunStats, Failure>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let mine: Vec<u64> = seeds.iter().copied().skip(t).step_by(threads).collect();
                scope.spawn(move || {
                    mine.into_iter()
                        .map(|seed| {
                            let check_membership_answers = CHECK_MEMBERSHIP_ANSWERS;
                            run_seed(&SimOptions { trace, check_membership_answers, ..SimOptions::new(seed) })
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("simulation thread panicked")).collect()
    });
    let mut stats = Vec::new();
    let mut failures = Vec::new();
    for result in results {
        match result {
            Ok(s) => stats.push(s),
            Err(f) => failures.push(f),
        }
    }
    failures.sort_by_key(|f| f.seed);
    (stats, failures)
}

#[test]
fn sim_seeds() {
    let start = env_u64("FERRAFT_SIM_START", 0);
    let count = env_u64("FERRAFT_SIM_SEEDS", 500);
    let trace = std::env::var("FERRAFT_SIM_TRACE").is_ok_and(|v| v == "1");
    let began = Instant::now();
    let (stats, failures) = run_all((start..start + count).collect(), trace);
    let secs = began.elapsed().as_secs_f64();
    let sum = |f: fn(&RunStats) -> usize| stats.iter().map(f).sum::<usize>();
    println!(
        "ferraft-sim: {count} seeds from {start} in {secs:.1}s ({:.1} seeds/s); {} writes, {} reads, {} leaders, \
         {} crashes, {} memberships committed, {} snapshots installed, {} messages",
        count as f64 / secs,
        sum(|s| s.writes),
        sum(|s| s.reads),
        sum(|s| s.leaders),
        sum(|s| s.crashes),
        sum(|s| s.memberships),
        sum(|s| s.snapshots_installed),
        sum(|s| s.delivered),
    );
    for failure in &failures {
        eprintln!("{failure}");
    }
    assert!(failures.is_empty(), "{} of {count} seeds failed; first: {}", failures.len(), failures[0]);
}
