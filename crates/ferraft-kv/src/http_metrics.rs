//! What the HTTP API counts for `/metrics`: responses by outcome, requests
//! relayed to the leader, and request latency by endpoint class.
//!
//! Plain atomics, updated once per request: no lock on the request path.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::http::StatusCode;

/// The outcomes counted, in the order `/metrics` lists them.
const OUTCOMES: [&str; 10] = [
    "bad_request",
    "compacted",
    "conflict",
    "internal",
    "method_not_allowed",
    "no_such_endpoint",
    "not_found",
    "ok",
    "timeout",
    "unavailable",
];

/// The kinds of request whose latency is measured apart: a read, a write and
/// a membership change differ by orders of magnitude.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointClass {
    /// `GET /v1/kv/{key}`.
    KvRead,
    /// `PUT`, `DELETE /v1/kv/{key}` and `POST /v1/kv/{key}/cas`.
    KvWrite,
    /// `GET /v1/kv?...`.
    KvList,
    /// `GET /v1/watch` (the time to start the stream, not its length).
    KvWatch,
    /// `/v1/cluster/*` calls that change or inspect the cluster.
    Cluster,
    /// Status, health, readiness and metrics.
    Observe,
    /// Unknown paths and wrong methods.
    Other,
}

impl EndpointClass {
    /// Every class, in the order `/metrics` lists them.
    pub const ALL: [EndpointClass; 7] = [
        EndpointClass::KvRead,
        EndpointClass::KvWrite,
        EndpointClass::KvList,
        EndpointClass::KvWatch,
        EndpointClass::Cluster,
        EndpointClass::Observe,
        EndpointClass::Other,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            EndpointClass::KvRead => "kv_read",
            EndpointClass::KvWrite => "kv_write",
            EndpointClass::KvList => "kv_list",
            EndpointClass::KvWatch => "kv_watch",
            EndpointClass::Cluster => "cluster",
            EndpointClass::Observe => "observe",
            EndpointClass::Other => "other",
        }
    }
}

/// Upper bounds of the latency buckets, in seconds (`+Inf` is implied): from
/// a local read (~100 µs) to a blocking learner addition (tens of seconds).
pub const LATENCY_BUCKETS_SECONDS: [f64; 14] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// A Prometheus histogram of durations.
#[derive(Debug, Default)]
pub struct Histogram {
    /// Per bucket (not cumulative; the last is `+Inf`).
    buckets: [AtomicU64; LATENCY_BUCKETS_SECONDS.len() + 1],
    sum_micros: AtomicU64,
}

impl Histogram {
    /// Counts one observation.
    pub fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let bucket =
            LATENCY_BUCKETS_SECONDS.iter().position(|bound| seconds <= *bound).unwrap_or(LATENCY_BUCKETS_SECONDS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    /// Cumulative counts per upper bound (`None`: `+Inf`), as Prometheus
    /// writes them; the last one is the total count.
    pub fn cumulative(&self) -> Vec<(Option<f64>, u64)> {
        let mut total = 0;
        let bounds = LATENCY_BUCKETS_SECONDS.iter().copied().map(Some).chain([None]);
        bounds
            .zip(&self.buckets)
            .map(|(bound, count)| {
                total += count.load(Ordering::Relaxed);
                (bound, total)
            })
            .collect()
    }

    /// The sum of the observations, in seconds.
    pub fn sum_seconds(&self) -> f64 {
        self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
    }
}

/// Everything the API counts.
#[derive(Debug, Default)]
pub struct HttpMetrics {
    responses: [AtomicU64; OUTCOMES.len()],
    forwarded: AtomicU64,
    latency: [Histogram; EndpointClass::ALL.len()],
}

impl HttpMetrics {
    /// Counts a response of `class` with `status` that took `elapsed`.
    pub fn record(&self, class: EndpointClass, status: StatusCode, elapsed: Duration) {
        let outcome = match status {
            s if s.is_success() => "ok",
            StatusCode::BAD_REQUEST => "bad_request",
            StatusCode::NOT_FOUND if class == EndpointClass::Other => "no_such_endpoint",
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
            StatusCode::CONFLICT => "conflict",
            StatusCode::GONE => "compacted",
            StatusCode::SERVICE_UNAVAILABLE => "unavailable",
            StatusCode::GATEWAY_TIMEOUT => "timeout",
            _ => "internal",
        };
        if let Some(i) = OUTCOMES.iter().position(|o| *o == outcome) {
            self.responses[i].fetch_add(1, Ordering::Relaxed);
        }
        self.latency_of(class).observe(elapsed);
    }

    /// Counts a request relayed to the leader.
    pub fn count_forwarded(&self) {
        self.forwarded.fetch_add(1, Ordering::Relaxed);
    }

    /// Requests relayed to the leader so far.
    pub fn forwarded(&self) -> u64 {
        self.forwarded.load(Ordering::Relaxed)
    }

    /// The outcomes seen so far and their counts.
    pub fn responses(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        OUTCOMES.iter().zip(&self.responses).map(|(o, c)| (*o, c.load(Ordering::Relaxed))).filter(|(_, c)| *c > 0)
    }

    /// The latency histogram of `class`.
    pub fn latency_of(&self, class: EndpointClass) -> &Histogram {
        let i = EndpointClass::ALL.iter().position(|c| *c == class).unwrap_or(EndpointClass::ALL.len() - 1);
        &self.latency[i]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_counts_each_observation_in_its_bucket_and_all_above() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(300));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(60));
        let cumulative = h.cumulative();
        assert_eq!(cumulative[0], (Some(0.0005), 1));
        assert_eq!(cumulative[3], (Some(0.005), 2));
        assert_eq!(cumulative[13], (Some(10.0), 2));
        assert_eq!(cumulative[14], (None, 3));
        assert!((h.sum_seconds() - 60.0033).abs() < 1e-9);
    }
}
