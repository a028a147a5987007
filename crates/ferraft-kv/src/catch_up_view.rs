//! How the server shows a follower's catch-up: in the status object's
//! `replication` entries and as `/metrics` gauges.

use std::collections::BTreeMap;
use std::fmt::Write;

use ferraft::log_id::index_of;
use ferraft::{CatchUpStall, NodeId, ReplicationMetrics};
use serde_json::{json, Value};

/// One `replication` entry of the status object.
pub fn peer_json(r: &ReplicationMetrics) -> Value {
    json!({
        "matched": index_of(r.matched),
        "reverted": r.reverted,
        "lag_entries": r.lag_entries,
        "lag_bytes": r.lag_bytes,
        "rate_entries_per_s": r.rate_entries_per_s,
        "eta_ms": r.eta_ms,
        "snapshot": r.snapshot.map(|s| json!({"bytes_sent": s.bytes_sent, "bytes_total": s.bytes_total})),
        "stall": r.stall,
    })
}

/// The stall reason as a label value.
pub fn stall_reason(stall: Option<CatchUpStall>) -> &'static str {
    match stall {
        None => "none",
        Some(CatchUpStall::Unreachable { .. }) => "unreachable",
        Some(CatchUpStall::LogReverted) => "log_reverted",
        Some(CatchUpStall::SnapshotFailing { .. }) => "snapshot_failing",
        Some(CatchUpStall::NoProgress { .. }) => "no_progress",
        #[allow(unreachable_patterns)]
        Some(_) => "other",
    }
}

/// Appends the catch-up gauges of every follower to `out`.
pub fn write_metrics(out: &mut String, replication: &BTreeMap<NodeId, ReplicationMetrics>) {
    let mut family = |name: &str, help: &str, value: &dyn Fn(&ReplicationMetrics) -> Option<String>| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (peer, r) in replication {
            if let Some(value) = value(r) {
                let _ = writeln!(out, "{name}{{peer=\"{peer}\"}} {value}");
            }
        }
    };
    family("ferraft_replication_lag_bytes", "Encoded bytes a follower lacks.", &|r| Some(r.lag_bytes.to_string()));
    family(
        "ferraft_replication_catch_up_rate_entries_per_second",
        "Entries per second a follower gained over the last few seconds.",
        &|r| Some(format!("{:.3}", r.rate_entries_per_s)),
    );
    family(
        "ferraft_replication_catch_up_eta_seconds",
        "When a follower should hold the leader's log at its rate (absent while it gains nothing).",
        &|r| r.eta_ms.map(|ms| format!("{:.3}", ms as f64 / 1000.0)),
    );
    family(
        "ferraft_replication_snapshot_bytes_sent",
        "Snapshot bytes a follower acknowledged, while one streams to it.",
        &|r| r.snapshot.map(|s| s.bytes_sent.to_string()),
    );
    family("ferraft_replication_snapshot_bytes_total", "Size of the snapshot streaming to a follower.", &|r| {
        r.snapshot.map(|s| s.bytes_total.to_string())
    });
    let name = "ferraft_replication_stalled";
    let _ = writeln!(out, "# HELP {name} 1 when a follower's catch-up is stuck, with the reason.\n# TYPE {name} gauge");
    for (peer, r) in replication {
        let reason = stall_reason(r.stall);
        let _ = writeln!(out, "{name}{{peer=\"{peer}\",reason=\"{reason}\"}} {}", u64::from(r.stall.is_some()));
    }
}
