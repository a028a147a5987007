//! Runs seeds one at a time, printing each result and its duration: for profiling
//! and bug hunts. Usage: `probe START COUNT`; env `TRACE`, `REORDER=0/1`,
//! `LEASE_STRESS`, `MEMBERSHIP_STRESS`, `CHAOS_MS`, `WIPE_DISKS`, `WAL`, `CAS`,
//! `FORWARD_HEAVY`.
fn main() {
    if std::env::var("RUST_LOG").is_ok() {
        tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    }
    let start: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let count: u64 = std::env::args().nth(2).and_then(|s| s.parse().ok()).unwrap_or(10);
    for seed in start..start + count {
        let began = std::time::Instant::now();
        let trace = std::env::var("TRACE").is_ok();
        let reorder = std::env::var("REORDER").ok().map(|v| v == "1");
        let lease_stress = std::env::var("LEASE_STRESS").is_ok();
        let membership_stress = std::env::var("MEMBERSHIP_STRESS").is_ok();
        let chaos_ms = std::env::var("CHAOS_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(6_000);
        let result = ferraft_sim::run_seed(&ferraft_sim::SimOptions {
            trace,
            reorder,
            lease_stress,
            membership_stress,
            chaos_ms,
            wipe_disks: std::env::var("WIPE_DISKS").is_ok(),
            wal: std::env::var("WAL").is_ok(),
            cas: std::env::var("CAS").is_ok(),
            forward_heavy: std::env::var("FORWARD_HEAVY").is_ok(),
            change_ids: std::env::var("CHANGE_IDS").is_ok(),
            ..ferraft_sim::SimOptions::new(seed)
        });
        let ms = began.elapsed().as_millis();
        match result {
            Ok(s) => println!("seed {seed}: ok in {ms} ms {s:?}"),
            Err(f) => println!("seed {seed}: FAIL in {ms} ms {f}"),
        }
    }
}
