//! `/metrics` in the Prometheus text format.

use std::fmt::Write;

use ferraft::log_id::index_of;
use ferraft::{RaftMetrics, ServerState};

use crate::http_metrics::{EndpointClass, HttpMetrics};
use crate::kv::KvNode;

/// Renders a node's metrics: its Raft state `m`, its advertised addresses
/// `me`, the `keys` of its state machine and what its API counted.
pub fn render(m: &RaftMetrics<KvNode>, me: &KvNode, keys: usize, http: &HttpMetrics) -> String {
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, value: u64| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
    };
    gauge("ferraft_node_id", "This node's id.", m.id.0);
    gauge("ferraft_term", "The current term.", m.current_term.0);
    gauge("ferraft_is_leader", "1 if this node is the leader.", u64::from(m.state == ServerState::Leader));
    gauge(
        "ferraft_leader_id",
        "The leader this node knows of (0: none).",
        m.current_leader.map_or(0, |leader| leader.0),
    );
    gauge("ferraft_last_log_index", "The last log index.", m.last_log_index.0);
    gauge("ferraft_committed_index", "The last committed log index.", index_of(m.committed).0);
    gauge("ferraft_applied_index", "The last applied log index.", index_of(m.last_applied).0);
    gauge("ferraft_snapshot_index", "The last snapshot's log index.", index_of(m.snapshot).0);
    gauge("ferraft_purged_index", "The last purged log index.", index_of(m.purged).0);
    let (voters, learners, joint) = m.membership.as_ref().map_or((0, 0, false), |s| {
        (s.membership.voter_ids().count(), s.membership.learner_ids().count(), s.membership.is_joint())
    });
    gauge("ferraft_voters", "Voters in the membership in force.", voters as u64);
    gauge("ferraft_learners", "Learners in the membership in force.", learners as u64);
    gauge("ferraft_membership_joint", "1 while a joint membership is in force.", u64::from(joint));
    gauge(
        "ferraft_membership_committed",
        "1 when the membership in force is committed.",
        u64::from(m.membership_committed),
    );
    gauge("ferraft_kv_keys", "Keys in the local state machine.", keys as u64);
    let name = "ferraft_http_forwarded_total";
    let _ = writeln!(
        out,
        "# HELP {name} Requests relayed to the leader.\n# TYPE {name} counter\n{name} {}",
        http.forwarded()
    );
    out.push_str(&crate::cluster_identity::cluster_id_metric(m));
    out.push_str(&crate::address_check::mismatch_metric(me, m));
    out.push_str(&crate::incarnation_view::metrics(m));
    let _ = writeln!(out, "# HELP ferraft_http_responses_total HTTP responses by outcome.");
    let _ = writeln!(out, "# TYPE ferraft_http_responses_total counter");
    for (code, count) in http.responses() {
        let _ = writeln!(out, "ferraft_http_responses_total{{code=\"{code}\"}} {count}");
    }
    latency(&mut out, http);
    if let Some(replication) = &m.replication {
        let _ = writeln!(out, "# HELP ferraft_replication_matched_index The last index known to match on a follower.");
        let _ = writeln!(out, "# TYPE ferraft_replication_matched_index gauge");
        for (peer, progress) in replication {
            let _ =
                writeln!(out, "ferraft_replication_matched_index{{peer=\"{peer}\"}} {}", index_of(progress.matched));
        }
        let _ = writeln!(out, "# HELP ferraft_replication_lag_entries Entries a follower is behind the leader.");
        let _ = writeln!(out, "# TYPE ferraft_replication_lag_entries gauge");
        for (peer, progress) in replication {
            let lag = m.last_log_index.saturating_sub(index_of(progress.matched));
            let _ = writeln!(out, "ferraft_replication_lag_entries{{peer=\"{peer}\"}} {lag}");
        }
        crate::catch_up_view::write_metrics(&mut out, replication);
    }
    out
}

/// `ferraft_http_request_duration_seconds`, one histogram per endpoint class.
fn latency(out: &mut String, http: &HttpMetrics) {
    let name = "ferraft_http_request_duration_seconds";
    let _ = writeln!(out, "# HELP {name} HTTP request latency by endpoint class.\n# TYPE {name} histogram");
    for class in EndpointClass::ALL {
        let histogram = http.latency_of(class);
        let endpoint = class.as_str();
        let cumulative = histogram.cumulative();
        for (bound, count) in &cumulative {
            let le = bound.map_or_else(|| "+Inf".to_owned(), |b| b.to_string());
            let _ = writeln!(out, "{name}_bucket{{endpoint=\"{endpoint}\",le=\"{le}\"}} {count}");
        }
        let total = cumulative.last().map_or(0, |(_, count)| *count);
        let _ = writeln!(out, "{name}_sum{{endpoint=\"{endpoint}\"}} {}", histogram.sum_seconds());
        let _ = writeln!(out, "{name}_count{{endpoint=\"{endpoint}\"}} {total}");
    }
}
