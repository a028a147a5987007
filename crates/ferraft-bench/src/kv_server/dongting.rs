//! `--vs-dongting`: runs dongting's own raft benchmark
//! (`../shared/peers/dongting/run.sh`, Java) with the settings of a
//! `ferraft bench durable` run and parses its result lines.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cli::DurableArgs;

/// What dongting's benchmark printed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DongtingReport {
    /// Successful operations per second.
    pub ops_per_second: f64,
    /// Percentiles as it prints them (10 µs buckets, upper bounds): p50, p90, p99, p999.
    pub latency_us: Option<[u64; 4]>,
    /// Its result lines, verbatim.
    pub lines: Vec<String>,
}

/// Where `run.sh` is: `--dongting-dir`, else `../shared/peers/dongting` from the
/// current dir or from the workspace this binary was built in.
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(dir) = explicit {
        return Ok(dir.to_owned());
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let candidates = [PathBuf::from("../shared/peers/dongting"), workspace.join("../shared/peers/dongting")];
    candidates
        .iter()
        .find(|dir| dir.join("run.sh").is_file())
        .cloned()
        .ok_or_else(|| "cannot find ../shared/peers/dongting/run.sh (use --dongting-dir)".to_owned())
}

/// The `-D` flags matching `args`.
pub fn java_flags(args: &DurableArgs) -> Vec<String> {
    let mut flags = Vec::new();
    match args.clients {
        Some(clients) => {
            flags.push(format!("-Dbench.clientCount={clients}"));
            flags.push("-Dbench.sync=true".to_owned());
        }
        None if args.in_flight == 1 => flags.push("-Dbench.sync=true".to_owned()),
        None => flags.push(format!("-Dbench.maxOut={}", args.in_flight)),
    }
    if args.no_fsync {
        flags.push("-Dbench.syncForce=false".to_owned());
    }
    if args.members != 3 {
        flags.push(format!("-Dbench.nodeCount={}", args.members));
    }
    flags
}

/// Runs dongting's benchmark (building it first if `run.sh` needs to) with
/// the same warm-up, duration and load as `args`.
pub fn run(args: &DurableArgs) -> Result<DongtingReport, String> {
    let dir = locate(args.dongting_dir.as_deref())?;
    let flags = java_flags(args);
    println!("dongting: {} {}", dir.join("run.sh").display(), flags.join(" "));
    let output = Command::new("bash")
        .arg(dir.join("run.sh"))
        .args(&flags)
        .env("TEST_MS", format!("{:.0}", args.duration * 1000.0))
        .env("WARMUP_MS", format!("{:.0}", args.warmup * 1000.0))
        .output()
        .map_err(|e| format!("cannot run dongting's run.sh: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report = parse(&stdout);
    if report.ops_per_second <= 0.0 {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(format!(
            "dongting printed no result ({}): {}{}",
            output.status,
            stdout.trim(),
            stderr.lines().rev().take(5).collect::<Vec<_>>().join(" | ")
        ));
    }
    Ok(report)
}

/// Parses `success sc:N, ops=147,000` and
/// `Percentiles (...): p50.0=12,100 us p90.0=... p99.0=... p99.9=... (n=..)`.
pub fn parse(output: &str) -> DongtingReport {
    let mut report = DongtingReport::default();
    for line in output.lines().map(str::trim).filter(|l| !l.is_empty()) {
        report.lines.push(line.to_owned());
        if let Some(rest) = line.strip_prefix("success sc:") {
            if let Some((_, ops)) = rest.split_once("ops=") {
                report.ops_per_second = ops.trim().replace(',', "").parse().unwrap_or(0.0);
            }
        }
        if line.starts_with("Percentiles") {
            let values: Vec<u64> = ["p50.0=", "p90.0=", "p99.0=", "p99.9="]
                .iter()
                .filter_map(|tag| {
                    let (_, rest) = line.split_once(tag)?;
                    rest.split_whitespace().next()?.replace(',', "").parse().ok()
                })
                .collect();
            if let [p50, p90, p99, p999] = values[..] {
                report.latency_us = Some([p50, p90, p99, p999]);
            }
        }
    }
    report
}

/// dongting's summary line.
pub fn line(report: &DongtingReport) -> String {
    let latency = match report.latency_us {
        Some([p50, p90, p99, p999]) => {
            format!("latency p50 {p50} µs, p90 {p90} µs, p99 {p99} µs, p999 {p999} µs (10 µs buckets)")
        }
        None => "latency not printed".to_owned(),
    };
    format!("dongting: {} put/s; {latency}", super::thousands(report.ops_per_second))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_its_result_lines() {
        let out = "config: nodes=3 clients=1 sync=false maxOut=2000\nsuccess sc:2940000, ops=147,000\n\
                   fail sc:0, ops=0\nMax time: 80,000 us\nAvg time: 12,000 us\n\
                   Percentiles (10us buckets, upper bound): p50.0=12,100 us p90.0=18,000 us p99.0=24,010 us \
                   p99.9=30,000 us (n=2940000)\n";
        let report = parse(out);
        assert_eq!(report.ops_per_second, 147_000.0);
        assert_eq!(report.latency_us, Some([12_100, 18_000, 24_010, 30_000]));
        assert_eq!(report.lines.len(), 6);
    }
}
