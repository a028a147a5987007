//! Running a seed set: many independent seeds on a few threads, with the
//! range chosen by the environment (`FERRAFT_SIM_START`, `FERRAFT_SIM_SEEDS`).

use crate::options::SimOptions;
use crate::sim::{run_seed, Failure, RunStats};

/// The value of the environment variable `name` as a number, or `default`.
pub fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The seeds `FERRAFT_SIM_START..+FERRAFT_SIM_SEEDS` (default `0..default_count`)
/// and whether `FERRAFT_SIM_TRACE=1` asks for a trace.
pub fn seeds_from_env(default_count: u64) -> (std::ops::Range<u64>, bool) {
    let start = env_u64("FERRAFT_SIM_START", 0);
    let count = env_u64("FERRAFT_SIM_SEEDS", default_count);
    (start..start + count, std::env::var("FERRAFT_SIM_TRACE").is_ok_and(|v| v == "1"))
}

/// Runs every seed of `seeds` with the options `options` makes for it, on
/// a few threads (one when tracing, so the trace reads in order); results in
/// no particular order. Seeds are independent: threads change only wall time.
pub fn run_seeds(
    seeds: std::ops::Range<u64>,
    trace: bool,
    options: impl Fn(u64) -> SimOptions + Sync,
) -> Vec<Result<RunStats, Failure>> {
    let threads = if trace { 1 } else { std::thread::available_parallelism().map_or(2, |n| n.get()).min(8) as u64 };
    let options = &options;
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let seeds = seeds.clone();
                scope.spawn(move || {
                    (seeds.start + t..seeds.end)
                        .step_by(threads as usize)
                        .map(|seed| run_seed(&SimOptions { trace, ..options(seed) }))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("simulation thread panicked")).collect()
    })
}
