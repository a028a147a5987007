//! `ferraft ctl` for promote-when-ready (issue 23): `add-learner
//! --promote-when-ready`, `replace-voter OLD NEW`, and the catch-up rate and
//! ETA the add-learner progress bar shows.

use std::time::Duration;

use serde_json::{json, Value};

use crate::client::{Client, ClientError};
use crate::ctl::{draw_bar, leader_status};

/// `add-learner` flags for promotion.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct PromoteArgs {
    /// Have the leader promote it to voter once it caught up (waits for it).
    #[arg(long)]
    pub promote_when_ready: bool,
    /// With --promote-when-ready: most entries it may lack to be promoted.
    #[arg(long, requires = "promote_when_ready")]
    pub max_lag: Option<u64>,
    /// With --promote-when-ready: how long (ms) it must stay within the lag.
    #[arg(long, requires = "promote_when_ready", default_value_t = 0)]
    pub hold_ms: u64,
}

/// " 1200 entries/s, ETA 3.4s" (or why it is stuck) from a `replication` entry.
pub fn rate_eta_text(peer: &Value) -> String {
    if let Some(reason) = peer["stall"]["reason"].as_str() {
        return format!("  stalled: {reason}");
    }
    if let (Some(sent), Some(total)) =
        (peer["snapshot"]["bytes_sent"].as_u64(), peer["snapshot"]["bytes_total"].as_u64())
    {
        return format!("  snapshot {sent}/{total} bytes");
    }
    let rate = peer["rate_entries_per_s"].as_f64().unwrap_or(0.0);
    match peer["eta_ms"].as_u64() {
        Some(eta) => format!("  {rate:.0} entries/s, ETA {:.1}s", eta as f64 / 1000.0),
        None => format!("  {rate:.0} entries/s"),
    }
}

/// Adds learner `id` with a readiness rule and waits until the leader
/// promoted it, drawing its catch-up on stderr when `bar`.
pub async fn add_learner_promoted(
    client: &Client,
    id: u64,
    raft: &str,
    api: &str,
    promote: PromoteArgs,
    bar: bool,
) -> Result<Value, ClientError> {
    let mut rule = json!({ "hold_ms": promote.hold_ms });
    if let Some(max_lag) = promote.max_lag {
        rule["lag_entries"] = json!(max_lag);
    }
    let body = json!({ "id": id, "raft": raft, "api": api, "blocking": true, "promote_when": rule });
    let call = client.post("/v1/cluster/learners", &body);
    tokio::pin!(call);
    let mut drawn = false;
    let answer = loop {
        tokio::select! {
            answer = &mut call => break answer,
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
        if !bar {
            continue;
        }
        let Some(status) = leader_status(client).await else { continue };
        let peer = &status["replication"][id.to_string()];
        if let Some(matched) = peer["matched"].as_u64() {
            let last = status["last_log_index"].as_u64().unwrap_or(matched);
            draw_bar(id, matched.min(last), last, &rate_eta_text(peer));
            drawn = true;
        }
    };
    if drawn {
        eprintln!();
    }
    answer
}

/// `replace-voter OLD NEW`.
pub async fn replace_voter(client: &Client, old: u64, new: u64) -> Result<Value, ClientError> {
    client.post("/v1/cluster/replace", &json!({ "old": old, "new": new })).await
}
