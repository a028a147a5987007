//! Latency percentiles from recorded samples.

use std::time::Duration;

/// Recorded latencies, summarized as percentiles.
#[derive(Debug, Default, Clone)]
pub struct Latencies {
    samples_us: Vec<u32>,
}

impl Latencies {
    /// Records one sample.
    pub fn record(&mut self, latency: Duration) {
        self.samples_us.push(latency.as_micros().min(u32::MAX as u128) as u32);
    }

    /// Adds another set of samples.
    pub fn merge(&mut self, other: Latencies) {
        self.samples_us.extend(other.samples_us);
    }

    /// The `p`-th percentile (0..=100) in microseconds, 0 when empty.
    pub fn percentile_us(&mut self, p: f64) -> u32 {
        if self.samples_us.is_empty() {
            return 0;
        }
        self.samples_us.sort_unstable();
        let rank = ((p / 100.0) * (self.samples_us.len() - 1) as f64).round() as usize;
        self.samples_us[rank.min(self.samples_us.len() - 1)]
    }

    /// "p50 … p99 … p999 …" for a report line.
    pub fn summary(&mut self) -> String {
        format!(
            "p50 {} µs, p90 {} µs, p99 {} µs, p999 {} µs",
            self.percentile_us(50.0),
            self.percentile_us(90.0),
            self.percentile_us(99.0),
            self.percentile_us(99.9)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_ranked_sample() {
        let mut l = Latencies::default();
        for us in 1..=100 {
            l.record(Duration::from_micros(us));
        }
        assert_eq!(l.percentile_us(50.0), 51);
        assert_eq!(l.percentile_us(99.0), 99);
        assert_eq!(l.percentile_us(0.0), 1);
    }
}
