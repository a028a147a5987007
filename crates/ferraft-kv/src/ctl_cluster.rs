//! `ferraft ctl status --cluster`: every member's status side by side, so an
//! operator sees at once who leads, who lags and who is down.

use std::time::Duration;

use serde_json::{json, Value};

use crate::client::Client;
use crate::ctl::{table, text, Answer, CtlError};

/// How long one member may take to answer: a down member must not hold the
/// whole view up.
const MEMBER_TIMEOUT: Duration = Duration::from_secs(2);

/// Asks the node behind `client` for the membership, then every member (at
/// its API address) for its status, all at once.
pub(crate) async fn cluster_status(client: &Client) -> Result<Answer, CtlError> {
    let first = client.status().await?;
    let members: Vec<(u64, String)> = first["membership"]["nodes"]
        .as_object()
        .map(|nodes| {
            nodes.iter().filter_map(|(id, node)| Some((id.parse().ok()?, node["api"].as_str()?.to_owned()))).collect()
        })
        .unwrap_or_default();
    if members.is_empty() {
        // not initialized: it is the only node it knows
        let row = json!({ "id": first["id"], "api": client.endpoint(), "status": first });
        return Ok(answer(vec![row]));
    }
    let asks: Vec<_> = members
        .into_iter()
        .map(|(id, api)| {
            let recorded = first["membership"]["incarnations"].clone();
            tokio::spawn(async move {
                let status = Client::with_timeout(&api, MEMBER_TIMEOUT).status().await;
                let mut row = match status {
                    Ok(status) => json!({ "id": id, "api": api, "status": status }),
                    Err(e) => json!({ "id": id, "api": api, "error": crate::ctl::CtlError::from(e).json()["error"] }),
                };
                with_recorded_incarnation(&mut row, &recorded[id.to_string()]);
                row
            })
        })
        .collect();
    let mut rows = Vec::with_capacity(asks.len());
    for ask in asks {
        rows.push(ask.await.unwrap_or_else(|e| json!({ "error": { "code": "internal", "message": e.to_string() } })));
    }
    Ok(answer(rows))
}

/// Adds to a member's row the incarnation the membership records for it
/// and, when the member reports another one, the command that readmits it.
fn with_recorded_incarnation(row: &mut Value, recorded: &Value) {
    row["recorded_incarnation"] = recorded.clone();
    if crate::incarnation_view::differs(recorded, &row["status"]["incarnation"]) {
        row["incarnation_fix"] =
            json!(row["id"].as_u64().map(|id| crate::incarnation_view::readmit_command(ferraft::NodeId(id))));
    }
}

fn answer(rows: Vec<Value>) -> Answer {
    let cells: Vec<Vec<String>> = rows.iter().map(row_cells).collect();
    let header = ["ID", "API", "ROLE", "TERM", "LEADER", "LAST LOG", "COMMITTED", "APPLIED", "INCARNATION", "STATE"];
    let human = table(&header, &cells);
    Answer { value: json!({ "nodes": rows }), human, exit_code: 0 }
}

fn row_cells(row: &Value) -> Vec<String> {
    let s = &row["status"];
    let state = match row["error"]["message"].as_str() {
        Some(message) => message.to_owned(),
        None => "reachable".to_owned(),
    };
    vec![
        text(&row["id"]),
        text(&row["api"]),
        text(&s["role"]),
        text(&s["term"]),
        text(&s["leader"]),
        text(&s["last_log_index"]),
        text(&s["committed"]),
        text(&s["applied"]),
        crate::incarnation_view::cluster_cell(&row["id"], &s["incarnation"], &row["recorded_incarnation"]),
        state,
    ]
}
