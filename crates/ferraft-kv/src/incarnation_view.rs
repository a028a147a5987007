//! Incarnations shown to operators (issue 18): this node's own, each
//! member's as the membership in force records it, and a member recorded as
//! another incarnation than the one it reports (its data dir was wiped or
//! its machine replaced) flagged with the fix. Such a member counts for
//! nothing (its votes and acknowledgements are dropped) until it is
//! readmitted, so an operator must see it at a glance.

use std::fmt::Write;

use ferraft::{NodeId, RaftMetrics};
use serde_json::{json, Value};

use crate::kv::KvNode;

/// An incarnation as the API writes it: sixteen hex digits.
pub fn hex(incarnation: u64) -> String {
    format!("{incarnation:016x}")
}

/// The command that records a member's new incarnation (as a learner).
pub fn readmit_command(id: NodeId) -> String {
    format!("ferraft ctl readmit {id}")
}

/// Whether a member the membership records as `recorded` but that reports
/// `reported` (both hex, as in the status object) is another incarnation;
/// either one unknown proves nothing.
pub fn differs(recorded: &Value, reported: &Value) -> bool {
    match (recorded.as_str(), reported.as_str()) {
        (Some(recorded), Some(reported)) => recorded != reported,
        _ => false,
    }
}

/// The status object's `incarnation_mismatch`: what the membership records
/// for this node when that is another incarnation than its own, with the fix;
/// null when they agree or none is recorded.
pub fn self_mismatch(m: &RaftMetrics<KvNode>) -> Value {
    let recorded = m.membership.as_ref().map_or(0, |s| s.membership.incarnation(m.id));
    if recorded == 0 || m.incarnation == 0 || recorded == m.incarnation {
        return Value::Null;
    }
    json!({ "recorded": hex(recorded), "reported": hex(m.incarnation), "fix": readmit_command(m.id) })
}

/// The `/metrics` lines: this node's incarnation, each member's recorded
/// one, and whether the membership records another one for this node.
pub fn metrics(m: &RaftMetrics<KvNode>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# HELP ferraft_incarnation_info This node's incarnation (the life of its data dir).");
    let _ = writeln!(out, "# TYPE ferraft_incarnation_info gauge");
    let _ = writeln!(out, "ferraft_incarnation_info{{incarnation=\"{}\"}} 1", hex(m.incarnation));
    let recorded = m.membership.as_ref().map(|s| s.membership.incarnations().clone()).unwrap_or_default();
    let name = "ferraft_member_incarnation_info";
    let _ = writeln!(
        out,
        "# HELP {name} Each member's incarnation as the membership in force records it (a member not \
         listed is not recorded yet); a member reporting another one counts for nothing until \
         `ferraft ctl readmit <id>`.\n# TYPE {name} gauge"
    );
    for (id, incarnation) in &recorded {
        let _ = writeln!(out, "{name}{{id=\"{id}\",incarnation=\"{}\"}} 1", hex(*incarnation));
    }
    let mismatch = u64::from(!self_mismatch(m).is_null());
    let _ = writeln!(
        out,
        "# HELP ferraft_incarnation_mismatch 1 when the membership records another incarnation for this \
         node than its own: `ferraft ctl readmit {}`.\n# TYPE ferraft_incarnation_mismatch gauge\n\
         ferraft_incarnation_mismatch {mismatch}",
        m.id
    );
    out
}

/// The status table's rows, plus this node's incarnation and, when the
/// membership records another one for it, the fix.
pub fn with_incarnation(mut rows: Vec<Vec<String>>, status: &Value) -> Vec<Vec<String>> {
    rows.push(vec!["incarnation".into(), crate::ctl::text(&status["incarnation"])]);
    let mismatch = &status["incarnation_mismatch"];
    if let Some(recorded) = mismatch["recorded"].as_str() {
        let fix = crate::ctl::text(&mismatch["fix"]);
        rows.push(vec!["incarnation mismatch".into(), format!("membership records {recorded}: {fix}")]);
    }
    rows
}

/// The INCARNATION cell of a member in `ctl status --cluster`: what it
/// reports, flagged with the fix when the membership records another one.
pub fn cluster_cell(id: &Value, reported: &Value, recorded: &Value) -> String {
    let shown = crate::ctl::text(reported);
    match id.as_u64() {
        Some(id) if differs(recorded, reported) => {
            format!("{shown} (membership records {}: {})", crate::ctl::text(recorded), readmit_command(NodeId(id)))
        }
        _ => shown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_reporting_another_incarnation_than_recorded_is_flagged_with_readmit() {
        let recorded = json!(hex(11));
        assert_eq!(cluster_cell(&json!(2), &json!(hex(11)), &recorded), hex(11));
        let flagged = cluster_cell(&json!(2), &json!(hex(12)), &recorded);
        assert!(flagged.contains("ferraft ctl readmit 2"), "{flagged}");
        // not recorded yet, or not reachable: nothing to say
        assert_eq!(cluster_cell(&json!(2), &json!(hex(12)), &Value::Null), hex(12));
        assert_eq!(cluster_cell(&json!(2), &Value::Null, &recorded), "-");
    }
}
