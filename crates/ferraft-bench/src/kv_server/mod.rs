//! The benchmarks of the KV server (`ferraft-kv`): `ferraft bench durable`
//! and `ferraft bench cluster`, durable, replicated writes in one process
//! (issue 13) and over the HTTP API against real `ferraft serve` processes
//! (issue 8), and `ferraft bench catch-up`.

pub mod catch_up;
pub mod cluster;
pub mod cluster_table;
pub mod dongting;
pub mod durable;
pub mod etcd;
pub mod http_client;
mod local_nodes;

use std::time::{Duration, Instant};

pub use crate::latency::Latencies;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// CPU time (user + system) of process `pid` (`None`: this process), from
/// `/proc/<pid>/stat`; `None` if it cannot be read (no procfs, process gone).
pub fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    // The command name (field 2) may contain spaces: fields are counted after its ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')': field 3 (state) is index 0, so utime (14) is 11 and stime (15) is 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let ticks = if ticks > 0 { ticks as f64 } else { 100.0 };
    Some((utime + stime) as f64 / ticks)
}

/// A `/proc/<pid>/status` field in KiB (`VmHWM`, `VmRSS`), `None` if unknown.
pub fn status_kib(pid: Option<u32>, field: &str) -> Option<u64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/status"),
        None => "/proc/self/status".to_owned(),
    };
    let status = std::fs::read_to_string(path).ok()?;
    let line = status.lines().find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))?;
    line[field.len() + 1..].trim().trim_end_matches("kB").trim().parse().ok()
}

/// Peak resident memory of this process in MiB (`VmHWM`).
pub fn peak_rss_mib(pid: Option<u32>) -> Option<f64> {
    status_kib(pid, "VmHWM").map(|kib| kib as f64 / 1024.0)
}

/// The write workload: random keys out of `keys`, a fixed value of `value_size` bytes.
#[derive(Debug, Clone)]
pub struct Workload {
    keys: u64,
    value: String,
}

impl Workload {
    /// `keys` distinct keys (at least 1), values of `value_size` bytes.
    pub fn new(keys: u64, value_size: usize) -> Self {
        let value: String = (0..value_size).map(|i| (b'a' + (i % 26) as u8) as char).collect();
        Self { keys: keys.max(1), value }
    }

    /// A per-task random source.
    pub fn rng(seed: u64) -> SmallRng {
        SmallRng::seed_from_u64(seed ^ 0x9e37_79b9_7f4a_7c15)
    }

    /// A random key.
    pub fn key(&self, rng: &mut SmallRng) -> String {
        format!("k{:08}", rng.gen_range(0..self.keys))
    }

    /// The value every put writes.
    pub fn value(&self) -> &str {
        &self.value
    }
}

/// The timeline of a run: warm-up, then the measured window.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// Measurement starts (end of warm-up).
    pub start: Instant,
    /// Measurement ends; clients stop issuing.
    pub end: Instant,
}

impl Window {
    /// A window starting `warmup` from now and lasting `duration`.
    pub fn after(warmup: Duration, duration: Duration) -> Self {
        let start = Instant::now() + warmup;
        Self { start, end: start + duration }
    }

    /// Whether an operation completed at `done` counts (completions inside the window).
    pub fn counts(&self, done: Instant) -> bool {
        done >= self.start && done <= self.end
    }
}

/// Seconds from the command line, checked.
pub fn seconds(what: &str, value: f64) -> Result<Duration, String> {
    if !(0.0..=3600.0).contains(&value) || value.is_nan() {
        return Err(format!("{what} must be between 0 and 3600 seconds, got {value}"));
    }
    Ok(Duration::from_secs_f64(value))
}

/// What a measured window produced, for the report line.
#[derive(Debug, Default)]
pub struct Measured {
    /// Operations that succeeded inside the window.
    pub ok: u64,
    /// Operations that failed inside the window.
    pub failed: u64,
    /// Latencies of the successful ones.
    pub latency: Latencies,
}

impl Measured {
    /// Adds another task's counts.
    pub fn merge(&mut self, other: Measured) {
        self.ok += other.ok;
        self.failed += other.failed;
        self.latency.merge(other.latency);
    }
}

/// Formats `n` with thousands separators.
pub fn thousands(n: f64) -> String {
    let digits = format!("{:.0}", n.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(147_000.4), "147,000");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
    }

    #[test]
    fn proc_stats_of_this_process_are_readable() {
        if std::path::Path::new("/proc/self/stat").exists() {
            assert!(cpu_seconds(None).is_some());
            assert!(peak_rss_mib(None).is_some_and(|m| m > 0.0));
        }
    }
}
