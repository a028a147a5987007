//! ferraft vs openraft, side by side, on openraft's `benchmarks/minimal` workload.
//!
//! For each client count (1, 64, 256, 4096) this runs openraft, then ferraft, in the
//! same process with the same settings (members, writes, tokio worker threads), each
//! on a fresh runtime, and prints put/s, the ratio and p50 / p99 latencies.

mod openraft_side;

use std::process::ExitCode;

use ferraft_bench::minimal::{self, MinimalOptions};

/// One side's result for one client count.
pub struct SideReport {
    /// Writes per second.
    pub puts_per_second: f64,
    /// Median write latency, µs.
    pub p50_us: u32,
    /// 99th percentile write latency, µs.
    pub p99_us: u32,
}

struct Args {
    members: u64,
    operations: Option<u64>,
    workers: usize,
    clients: Vec<u64>,
    rounds: usize,
}

const USAGE: &str =
    "usage: bench-vs-openraft [--members 1|3|5] [--operations N] [--workers W] [--clients 1,64,256,4096]
  --members     cluster size (default 3)
  --operations  total writes per run (default 20000 with 1 client, 200000 otherwise)
  --workers     tokio worker threads for each run (default 2)
  --clients     comma-separated client counts (default 1,64,256,4096)
  --rounds      runs per side and client count, alternating openraft / ferraft;
                the median run (by put/s) is reported (default 3)";

fn parse_args() -> Result<Args, String> {
    let mut args = Args { members: 3, operations: None, workers: 2, clients: vec![1, 64, 256, 4096], rounds: 3 };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            return Err(String::new());
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |e: std::num::ParseIntError| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "-m" | "--members" => args.members = value.parse().map_err(bad)?,
            "-n" | "--operations" => args.operations = Some(value.parse().map_err(bad)?),
            "-w" | "--workers" | "--server-workers" => args.workers = value.parse().map_err(bad)?,
            "-c" | "--clients" => {
                args.clients = value.split(',').map(|c| c.trim().parse()).collect::<Result<_, _>>().map_err(bad)?
            }
            "-r" | "--rounds" => args.rounds = value.parse().map_err(bad)?,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if !(1..=9).contains(&args.members) {
        return Err(format!("--members must be 1..=9, got {}", args.members));
    }
    if args.rounds == 0 {
        return Err("--rounds must be positive".into());
    }
    if args.clients.is_empty() || args.clients.contains(&0) {
        return Err("--clients must be positive".into());
    }
    Ok(args)
}

/// Reads "p50 X µs" / "p99 Y µs" out of ferraft's latency summary.
fn percentile_from_summary(summary: &str, name: &str) -> u32 {
    summary
        .split(',')
        .map(str::trim)
        .find_map(|part| part.strip_prefix(name)?.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn run_ferraft(options: &MinimalOptions) -> Result<SideReport, String> {
    let report = minimal::run(options)?;
    Ok(SideReport {
        puts_per_second: report.puts_per_second,
        p50_us: percentile_from_summary(&report.latency, "p50"),
        p99_us: percentile_from_summary(&report.latency, "p99"),
    })
}

/// The run with the median put/s (the upper one of the middle two for an even count).
fn median(mut runs: Vec<SideReport>) -> SideReport {
    runs.sort_by(|a, b| a.puts_per_second.total_cmp(&b.puts_per_second));
    let middle = runs.len() / 2;
    runs.swap_remove(middle)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("{e}");
            }
            eprintln!("{USAGE}");
            return if e.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(2) };
        }
    };
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    println!(
        "minimal workload: {} member(s), {} tokio worker(s), {} CPU(s); openraft 0.9 vs ferraft, same process, median of {} run(s) each",
        args.members, args.workers, cpus, args.rounds
    );
    println!();
    println!(
        "| {:>7} | {:>10} | {:>14} | {:>13} | {:>11} | {:>19} | {:>18} |",
        "clients",
        "writes",
        "openraft put/s",
        "ferraft put/s",
        "ratio (f/o)",
        "openraft p50/p99 µs",
        "ferraft p50/p99 µs"
    );
    println!("| ------: | ---------: | -------------: | ------------: | ----------: | ------------------: | -----------------: |");
    let mut failed = false;
    for &clients in &args.clients {
        let operations = args.operations.unwrap_or(if clients == 1 { 20_000 } else { 200_000 }).max(clients);
        let options = MinimalOptions { clients, operations, members: args.members, batch: 1, workers: args.workers };
        let mut openraft = Vec::new();
        let mut ferraft = Vec::new();
        let mut error = None;
        for _ in 0..args.rounds {
            match openraft_side::run(&options) {
                Ok(r) => openraft.push(r),
                Err(e) => error = Some(format!("openraft failed: {e}")),
            }
            match run_ferraft(&options) {
                Ok(r) => ferraft.push(r),
                Err(e) => error = Some(format!("ferraft failed: {e}")),
            }
        }
        if let Some(e) = error {
            failed = true;
            eprintln!("clients {clients}: {e}");
            continue;
        }
        let (o, f) = (median(openraft), median(ferraft));
        println!(
            "| {:>7} | {:>10} | {:>14.0} | {:>13.0} | {:>10.2}x | {:>19} | {:>18} |",
            clients,
            operations / clients * clients,
            o.puts_per_second,
            f.puts_per_second,
            f.puts_per_second / o.puts_per_second,
            format!("{} / {}", o.p50_us, o.p99_us),
            format!("{} / {}", f.p50_us, f.p99_us),
        );
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
