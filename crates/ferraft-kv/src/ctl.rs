//! `ferraft ctl`: the operator CLI over the HTTP API.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::cli::{parse_node, ChangeCommand, CtlArgs, CtlCommand};
use crate::client::{kv_path, Client, ClientError};

/// Runs one command; `Err` is the one-line error to print.
pub async fn run(args: CtlArgs) -> Result<(), String> {
    let client = Client::new(&args.endpoint);
    let json_out = args.json;
    let answer = execute(&client, args.command, json_out).await.map_err(|e| e.to_string())?;
    if let Some((value, human)) = answer {
        if json_out {
            println!("{}", serde_json::to_string_pretty(&value).unwrap_or_default());
        } else {
            print!("{human}");
        }
    }
    Ok(())
}

type Answer = Option<(Value, String)>;

async fn execute(client: &Client, command: CtlCommand, json_out: bool) -> Result<Answer, CtlError> {
    let value = match command {
        CtlCommand::Status => {
            let status = client.status().await?;
            return Ok(Some((status.clone(), status_table(&status))));
        }
        CtlCommand::Members => {
            let mut status = client.status().await?;
            if status.get("replication").is_none() {
                if let Some(leader) = leader_status(client).await {
                    status["replication"] = leader["replication"].clone();
                }
            }
            return Ok(Some((status["membership"].clone(), members_table(&status))));
        }
        CtlCommand::Put { key, value } => client.put(&kv_path(&key), &json!({ "value": value })).await?,
        CtlCommand::Get { key, consistency } => {
            let value = client.get(&format!("{}?consistency={consistency}", kv_path(&key))).await?;
            let human = format!("{}\n", value["value"].as_str().unwrap_or_default());
            return Ok(Some((value, human)));
        }
        CtlCommand::Delete { key } => client.delete(&kv_path(&key)).await?,
        CtlCommand::Cas { key, expect, expect_absent, value, delete } => {
            if expect.is_none() && !expect_absent {
                return Err(CtlError::Usage("cas needs --expect VALUE or --expect-absent".into()));
            }
            if value.is_none() && !delete {
                return Err(CtlError::Usage("cas needs --value VALUE or --delete".into()));
            }
            let path = format!("{}/cas", kv_path(&key));
            client.post(&path, &json!({ "expect": expect, "value": value })).await?
        }
        CtlCommand::Init { nodes } => {
            let body = if nodes.is_empty() { json!({}) } else { json!({ "nodes": parse_nodes(&nodes)? }) };
            let value = client.post("/v1/cluster/init", &body).await?;
            return Ok(Some((value.clone(), membership_text(&value["membership"]))));
        }
        CtlCommand::AddLearner { id, raft, api, no_wait, promote } => {
            let value = if promote.promote_when_ready {
                crate::ctl_promote::add_learner_promoted(client, id, &raft, &api, promote, !json_out).await?
            } else {
                add_learner(client, id, &raft, &api, !no_wait, !json_out).await?
            };
            return Ok(Some((value.clone(), membership_text(&value["membership"]))));
        }
        CtlCommand::ReplaceVoter { old, new } => {
            let value = crate::ctl_promote::replace_voter(client, old, new).await?;
            return Ok(Some((value.clone(), membership_text(&value["membership"]))));
        }
        CtlCommand::Change { change, retain } => {
            let change = change_body(change)?;
            let value = client.post("/v1/cluster/membership", &json!({ "change": change, "retain": retain })).await?;
            return Ok(Some((value.clone(), membership_text(&value["membership"]))));
        }
        CtlCommand::Prepare { expect_voters, expect_learners, voters, learners } => {
            let body = json!({
                "expect_voters": expect_voters, "expect_learners": expect_learners,
                "voters": voters, "learners": learners,
            });
            client.post("/v1/cluster/membership/prepare", &body).await?
        }
        CtlCommand::Commit { prepare_index } => {
            let body = json!({ "prepare_index": prepare_index });
            post_when_ready(client, "/v1/cluster/membership/commit", &body).await?
        }
        CtlCommand::Abort => post_when_ready(client, "/v1/cluster/membership/abort", &json!({})).await?,
        CtlCommand::TransferLeader { to } => {
            let body = match to {
                Some(to) => json!({ "to": to }),
                None => json!({}),
            };
            client.post("/v1/cluster/leader/transfer", &body).await?
        }
        CtlCommand::Snapshot => client.post("/v1/cluster/snapshot", &json!({})).await?,
    };
    let human = fields_text(&value);
    Ok(Some((value, human)))
}

/// POSTs, retrying for a few seconds while the server answers that the
/// prepared membership is not applied widely enough yet (a `conflict` that
/// resolves itself once replication catches up).
async fn post_when_ready(client: &Client, path: &str, body: &Value) -> Result<Value, ClientError> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match client.post(path, body).await {
            Err(e)
                if e.code() == Some("conflict") && e.to_string().contains("not yet") && Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => return other,
        }
    }
}

/// A ctl failure.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    /// The server said no, or could not be reached.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The command line is incomplete.
    #[error("{0}")]
    Usage(String),
}

fn parse_nodes(specs: &[String]) -> Result<BTreeMap<String, crate::KvNode>, CtlError> {
    specs.iter().map(|s| parse_node(s).map(|(id, node)| (id.to_string(), node)).map_err(CtlError::Usage)).collect()
}

fn change_body(change: ChangeCommand) -> Result<Value, CtlError> {
    Ok(match change {
        ChangeCommand::AddVoters { ids } => json!({ "add_voters": ids }),
        ChangeCommand::RemoveVoters { ids } => json!({ "remove_voters": ids }),
        ChangeCommand::ReplaceVoters { ids } => json!({ "replace_voters": ids }),
        ChangeCommand::AddNodes { nodes } => json!({ "add_nodes": parse_nodes(&nodes)? }),
        ChangeCommand::RemoveNodes { ids } => json!({ "remove_nodes": ids }),
        ChangeCommand::SetNodes { nodes } => json!({ "set_nodes": parse_nodes(&nodes)? }),
    })
}

/// Adds a learner; with `wait`, follows its catch-up on the leader (drawing a
/// progress bar on stderr when `bar`) and then confirms with a blocking call.
pub async fn add_learner(
    client: &Client,
    id: u64,
    raft: &str,
    api: &str,
    wait: bool,
    bar: bool,
) -> Result<Value, ClientError> {
    let body = |blocking| json!({ "id": id, "raft": raft, "api": api, "blocking": blocking });
    let added = client.post("/v1/cluster/learners", &body(false)).await?;
    if !wait {
        return Ok(added);
    }
    follow_catch_up(client, id, bar).await;
    client.post("/v1/cluster/learners", &body(true)).await
}

/// Polls the leader's replication progress of `id` until it has the leader's
/// log as of the first poll (or 30 s pass), drawing a bar on stderr.
pub async fn follow_catch_up(client: &Client, id: u64, bar: bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut target = None;
    let mut drawn = None;
    while Instant::now() < deadline {
        let Some(leader_status) = leader_status(client).await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let last = leader_status["last_log_index"].as_u64().unwrap_or(0);
        let target = *target.get_or_insert(last);
        let matched = leader_status["replication"][id.to_string()]["matched"].as_u64().unwrap_or(0);
        if bar && drawn != Some(matched) {
            let peer = &leader_status["replication"][id.to_string()];
            draw_bar(id, matched.min(target), target, &crate::ctl_promote::rate_eta_text(peer));
            drawn = Some(matched);
        }
        if matched >= target {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if bar {
        eprintln!();
    }
}

/// Draws learner `id`'s catch-up bar on stderr, followed by `detail`.
pub(crate) fn draw_bar(id: u64, done: u64, total: u64, detail: &str) {
    const WIDTH: u64 = 30;
    let filled = (done * WIDTH).checked_div(total).unwrap_or(WIDTH);
    let bar: String = (0..WIDTH).map(|i| if i < filled { '#' } else { '.' }).collect();
    eprint!("\r  learner {id} catching up [{bar}] {done}/{total}{detail:<36}");
    let _ = std::io::stderr().flush();
}

/// The status of the leader, found through `client`'s node.
pub async fn leader_status(client: &Client) -> Option<Value> {
    let status = client.status().await.ok()?;
    if status["role"] == "leader" {
        return Some(status);
    }
    let leader = status["leader"].as_u64()?;
    let api = status["membership"]["nodes"][leader.to_string()]["api"].as_str()?;
    let status = Client::with_timeout(api, Duration::from_secs(2)).status().await.ok()?;
    (status["role"] == "leader").then_some(status)
}

fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.len());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells.iter().enumerate().map(|(i, c)| format!("{c:<w$}", w = widths[i])).collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        out.push_str(&line(row.clone()));
    }
    out
}

fn text(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn fields_text(value: &Value) -> String {
    let Some(object) = value.as_object() else { return format!("{value}\n") };
    let rows: Vec<Vec<String>> = object.iter().map(|(k, v)| vec![k.clone(), text(v)]).collect();
    table(&["FIELD", "VALUE"], &rows)
}

/// One line describing a membership object.
pub fn membership_line(m: &Value) -> String {
    let configs: Vec<String> =
        m["configs"].as_array().map(|cs| cs.iter().map(|c| format!("{{{}}}", ids(c))).collect()).unwrap_or_default();
    let kind = if configs.len() > 1 { "joint" } else { "uniform" };
    let learners = ids(&m["learners"]);
    let committed = if m["committed"] == true { "committed" } else { "not yet committed" };
    format!(
        "{kind} [{}]{} at log index {} ({committed})",
        configs.join(", "),
        if learners.is_empty() { String::new() } else { format!(" learners {{{learners}}}") },
        m["log_index"]
    )
}

fn ids(list: &Value) -> String {
    list.as_array().map(|a| a.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(",")).unwrap_or_default()
}

fn membership_text(m: &Value) -> String {
    format!("membership: {}\n", membership_line(m))
}

fn status_table(s: &Value) -> String {
    let rows = vec![
        vec!["id".into(), text(&s["id"])],
        vec!["role".into(), text(&s["role"])],
        vec!["term".into(), text(&s["term"])],
        vec!["leader".into(), text(&s["leader"])],
        vec!["last log index".into(), text(&s["last_log_index"])],
        vec!["committed".into(), text(&s["committed"])],
        vec!["applied".into(), text(&s["applied"])],
        vec!["snapshot index".into(), text(&s["snapshot_index"])],
        vec!["membership".into(), membership_line(&s["membership"])],
    ];
    table(&["FIELD", "VALUE"], &rows)
}

fn members_table(s: &Value) -> String {
    let m = &s["membership"];
    let Some(nodes) = m["nodes"].as_object() else { return "no members (node not initialized)\n".into() };
    let configs: Vec<Vec<u64>> = m["configs"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .map(|c| c.as_array().map(|a| a.iter().filter_map(Value::as_u64).collect()).unwrap_or_default())
                .collect()
        })
        .unwrap_or_default();
    let leader = s["leader"].as_u64();
    let rows: Vec<Vec<String>> = nodes
        .iter()
        .map(|(id, node)| {
            let numeric: u64 = id.parse().unwrap_or(0);
            let in_configs: Vec<String> = configs
                .iter()
                .enumerate()
                .filter(|(_, c)| c.contains(&numeric))
                .map(|(i, _)| if i == 0 { "old".to_string() } else { "new".to_string() })
                .collect();
            let mut role = if in_configs.is_empty() { "learner".to_string() } else { "voter".to_string() };
            if configs.len() > 1 && !in_configs.is_empty() {
                role = format!("voter ({})", in_configs.join("+"));
            }
            if leader == Some(numeric) {
                role.push_str(", leader");
            }
            let matched = s["replication"][id]["matched"].as_u64().map_or("-".into(), |m| m.to_string());
            vec![id.clone(), role, text(&node["raft"]), text(&node["api"]), matched]
        })
        .collect();
    let mut out = format!("membership: {}\n", membership_line(m));
    out.push_str(&table(&["ID", "ROLE", "RAFT", "API", "MATCHED"], &rows));
    out
}
