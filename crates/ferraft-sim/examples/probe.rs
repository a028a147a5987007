//! Runs seeds one at a time, printing each result and its duration (for profiling).
fn main() {
    let start: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let count: u64 = std::env::args().nth(2).and_then(|s| s.parse().ok()).unwrap_or(10);
    for seed in start..start + count {
        let began = std::time::Instant::now();
        let trace = std::env::var("TRACE").is_ok();
        let reorder = std::env::var("REORDER").ok().map(|v| v == "1");
        let lease_stress = std::env::var("LEASE_STRESS").is_ok();
        let result = ferraft_sim::run_seed(&ferraft_sim::SimOptions {
            trace,
            reorder,
            lease_stress,
            ..ferraft_sim::SimOptions::new(seed)
        });
        let ms = began.elapsed().as_millis();
        match result {
            Ok(s) => println!("seed {seed}: ok in {ms} ms {s:?}"),
            Err(f) => println!("seed {seed}: FAIL in {ms} ms {f}"),
        }
    }
}
