//! `ferraft ctl`: the operator CLI over the HTTP API.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::cli::{parse_node, ChangeCommand, CtlArgs, CtlCommand};
use crate::client::{kv_path, Client, ClientError};

/// How long a KV or status call may take by default: above the server's own
/// 5 s bound on a request, plus a forward to the leader.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a cluster change may take by default: above the server's 30 s
/// bound on a blocking learner, plus a forward to the leader.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(40);

/// Runs one command, prints its answer or its error, and returns the exit
/// code (see [`crate::cli::CTL_AFTER_HELP`]).
pub async fn run(args: CtlArgs) -> u8 {
    let json_out = args.json;
    let timeout = args.timeout.unwrap_or(if is_change(&args.command) { CHANGE_TIMEOUT } else { DEFAULT_TIMEOUT });
    let client = Client::with_endpoints(&args.all_endpoints(), timeout);
    match execute(&client, args.command, json_out).await {
        Ok(answer) => {
            if json_out {
                println!("{}", serde_json::to_string_pretty(&answer.value).unwrap_or_default());
            } else {
                print!("{}", answer.human);
            }
            answer.exit_code
        }
        Err(e) => {
            if json_out {
                println!("{}", serde_json::to_string_pretty(&e.json()).unwrap_or_default());
            } else {
                eprintln!("error: {e}");
            }
            e.exit_code()
        }
    }
}

fn is_change(command: &CtlCommand) -> bool {
    matches!(
        command,
        CtlCommand::Init { .. }
            | CtlCommand::AddLearner { .. }
            | CtlCommand::Change { .. }
            | CtlCommand::Prepare { .. }
            | CtlCommand::Commit { .. }
            | CtlCommand::Abort { .. }
            | CtlCommand::TransferLeader { .. }
            | CtlCommand::Readmit { .. }
            | CtlCommand::ForceNewCluster { .. }
    )
}

/// What a command printed: its JSON answer, the text for people, and the exit code.
pub(crate) struct Answer {
    pub(crate) value: Value,
    pub(crate) human: String,
    pub(crate) exit_code: u8,
}

impl Answer {
    fn new(value: Value, human: String) -> Self {
        Self { value, human, exit_code: 0 }
    }

    fn fields(value: Value) -> Self {
        let human = fields_text(&value);
        Self::new(value, human)
    }

    fn membership(value: Value) -> Self {
        let human = membership_text(&value["membership"]);
        Self::new(value, human)
    }
}

async fn execute(client: &Client, command: CtlCommand, json_out: bool) -> Result<Answer, CtlError> {
    Ok(match command {
        CtlCommand::Status { cluster: false } => {
            let status = client.status().await?;
            let human = status_table(&status);
            Answer::new(status, human)
        }
        CtlCommand::Status { cluster: true } => crate::ctl_cluster::cluster_status(client).await?,
        CtlCommand::Members => {
            let mut status = client.status().await?;
            // the leader's view: its replication progress, and whether the
            // membership is committed before a follower has heard so
            if let Some(leader) = leader_status(client).await {
                status["replication"] = leader["replication"].clone();
                if leader["membership"]["log_index"] == status["membership"]["log_index"] {
                    status["membership"]["committed"] = leader["membership"]["committed"].clone();
                }
            } else if status["role"] != "leader" {
                status["leader"] = Value::Null;
            }
            let human = members_table(&status);
            Answer::new(status["membership"].clone(), human)
        }
        CtlCommand::Put { key, value, file, value_flag } => {
            let value = match (value, file, value_flag) {
                (_, _, Some(literal)) => literal,
                (_, Some(path), None) => read_value(&path)?,
                (Some(dash), None, None) if dash == "-" => read_value(Path::new("-"))?,
                (Some(value), None, None) => value,
                (None, None, None) => return Err(CtlError::Usage("put needs a value, `-`, --file or --value".into())),
            };
            Answer::fields(client.put(&kv_path(&key), &json!({ "value": value })).await?)
        }
        CtlCommand::Get { key, consistency } => {
            let path = format!("{}?consistency={}", kv_path(&key), crate::client::encode_component(&consistency));
            let value = client.get(&path).await?;
            let human = format!("{}\n", value["value"].as_str().unwrap_or_default());
            Answer::new(value, human)
        }
        CtlCommand::List { prefix, start, end, limit, all, consistency } => {
            let range = crate::ctl_list::Range { prefix, start, end, limit, consistency };
            crate::ctl_list::list(client, &range, all).await?
        }
        CtlCommand::Delete { key } => Answer::fields(client.delete(&kv_path(&key)).await?),
        CtlCommand::Cas { key, expect, expect_absent, value, value_file, delete } => {
            if expect.is_none() && !expect_absent {
                return Err(CtlError::Usage("cas needs --expect VALUE or --expect-absent".into()));
            }
            let value = match (value, value_file) {
                (Some(value), _) => Some(value),
                (None, Some(path)) => Some(read_value(&path)?),
                (None, None) if delete => None,
                (None, None) => {
                    return Err(CtlError::Usage("cas needs --value VALUE, --value-file or --delete".into()))
                }
            };
            let path = format!("{}/cas", kv_path(&key));
            let mut answer = Answer::fields(client.post(&path, &json!({ "expect": expect, "value": value })).await?);
            if answer.value["succeeded"] != true {
                answer.exit_code = CAS_FAILED;
            }
            answer
        }
        CtlCommand::Init { nodes, cluster_id } => {
            let body = crate::ctl_identity::init_body(parse_nodes(&nodes)?, cluster_id);
            Answer::membership(client.post("/v1/cluster/init", &body).await?)
        }
        CtlCommand::AddLearner { id, raft, api, no_wait, promote } => {
            let value = if promote.promote_when_ready {
                crate::ctl_promote::add_learner_promoted(client, id, &raft, &api, promote, !json_out).await?
            } else {
                add_learner(client, id, &raft, &api, !no_wait, !json_out).await?
            };
            Answer::membership(value)
        }
        CtlCommand::ForceNewCluster { confirm } => {
            Answer::membership(client.post("/v1/cluster/force-new-cluster", &json!({ "confirm": confirm })).await?)
        }
        CtlCommand::Readmit { id } => {
            Answer::membership(client.post("/v1/cluster/readmit", &json!({ "id": id })).await?)
        }
        CtlCommand::ReplaceVoter { old, new } => {
            Answer::membership(crate::ctl_promote::replace_voter(client, old, new).await?)
        }
        CtlCommand::Change { change, retain, change_id, expect_membership_index, force } => {
            let change = change_body(change)?;
            let mut body = json!({ "change": change, "retain": retain, "force": force });
            if let Some(change_id) = change_id {
                body["change_id"] = json!(change_id);
            }
            if let Some(index) = expect_membership_index {
                body["expect_membership_index"] = json!(index);
            }
            Answer::membership(client.post("/v1/cluster/membership", &body).await?)
        }
        CtlCommand::ChangeStatus { change_id } => {
            let path = format!("/v1/cluster/changes/{}", crate::client::encode_component(&change_id));
            Answer::fields(client.get(&path).await?)
        }
        CtlCommand::Prepare { expect_voters, expect_learners, voters, learners } => {
            let body = json!({
                "expect_voters": expect_voters, "expect_learners": expect_learners,
                "voters": voters, "learners": learners,
            });
            Answer::fields(client.post("/v1/cluster/membership/prepare", &body).await?)
        }
        CtlCommand::Commit { prepare_index } => {
            let body = json!({ "prepare_index": prepare_index });
            Answer::fields(post_when_ready(client, "/v1/cluster/membership/commit", &body).await?)
        }
        CtlCommand::Abort { prepare_index } => {
            let body = match prepare_index {
                Some(index) => json!({ "prepare_index": index }),
                None => json!({}),
            };
            Answer::fields(post_when_ready(client, "/v1/cluster/membership/abort", &body).await?)
        }
        CtlCommand::TransferLeader { to } => {
            let body = match to {
                Some(to) => json!({ "to": to }),
                None => json!({}),
            };
            Answer::fields(client.post("/v1/cluster/leader/transfer", &body).await?)
        }
        CtlCommand::Snapshot => Answer::fields(client.post("/v1/cluster/snapshot", &json!({})).await?),
        CtlCommand::Backup { file } => Answer::fields(crate::ctl_backup::backup(client, &file).await?),
        CtlCommand::Restore { file, concurrency, into_non_empty } => {
            Answer::fields(crate::ctl_backup::restore(client, &file, concurrency, into_non_empty, !json_out).await?)
        }
    })
}

/// A value from a file, or from stdin for `-`, byte for byte.
fn read_value(path: &Path) -> Result<String, CtlError> {
    let mut bytes = Vec::new();
    let (read, source) = if path == Path::new("-") {
        (std::io::stdin().lock().read_to_end(&mut bytes), "stdin".to_string())
    } else {
        (std::fs::File::open(path).and_then(|mut f| f.read_to_end(&mut bytes)), path.display().to_string())
    };
    read.map_err(|e| CtlError::Usage(format!("cannot read the value from {source}: {e}")))?;
    String::from_utf8(bytes).map_err(|_| CtlError::Usage(format!("the value in {source} is not UTF-8")))
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

/// The exit code of a CAS whose expectation did not hold.
const CAS_FAILED: u8 = 10;

/// A ctl failure.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    /// The server said no, or could not be reached.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The command line is incomplete, or its input unreadable.
    #[error("{0}")]
    Usage(String),
}

impl CtlError {
    /// The exit code scripts see (documented in `ferraft ctl --help`).
    pub fn exit_code(&self) -> u8 {
        match self {
            CtlError::Usage(_) => 2,
            CtlError::Client(ClientError::Unreachable { .. }) => 9,
            CtlError::Client(ClientError::Timeout { .. }) => 7,
            CtlError::Client(ClientError::Transport(_)) => 8,
            CtlError::Client(ClientError::Api { code, .. }) => match code.as_str() {
                "bad_request" | "no_such_endpoint" | "method_not_allowed" => 2,
                "not_found" => 3,
                "conflict" => 4,
                "no_leader" => 5,
                "not_initialized" => 6,
                "timeout" => 7,
                "internal" => 8,
                "partially_applied" => 11,
                "not_member" => 12,
                _ => 1,
            },
        }
    }

    /// The error as the API's error object: the server's own, or one with a
    /// ctl code (usage, unreachable, timeout, internal).
    pub fn json(&self) -> Value {
        let code = match self {
            CtlError::Client(ClientError::Api { body, .. }) if body.get("error").is_some() => return body.clone(),
            CtlError::Client(ClientError::Api { code, .. }) => code.as_str(),
            CtlError::Usage(_) => "usage",
            CtlError::Client(ClientError::Unreachable { .. }) => "unreachable",
            CtlError::Client(ClientError::Timeout { .. }) => "timeout",
            CtlError::Client(ClientError::Transport(_)) => "internal",
        };
        json!({ "error": { "code": code, "message": self.to_string() } })
    }
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

pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.len());
        }
    }
    // padded by hand: a format width above 65,535 (a large value) panics
    let line = |cells: Vec<String>| {
        let padded: Vec<String> =
            cells.iter().enumerate().map(|(i, c)| format!("{c}{}", " ".repeat(widths[i] - c.len()))).collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        out.push_str(&line(row.clone()));
    }
    out
}

pub(crate) fn text(value: &Value) -> String {
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
        vec!["cluster id".into(), text(&s["cluster_id"])],
        vec!["role".into(), text(&s["role"])],
        vec!["term".into(), text(&s["term"])],
        vec!["leader".into(), text(&s["leader"])],
        vec!["last log index".into(), text(&s["last_log_index"])],
        vec!["committed".into(), text(&s["committed"])],
        vec!["applied".into(), text(&s["applied"])],
        vec!["snapshot index".into(), text(&s["snapshot_index"])],
        vec!["membership".into(), membership_line(&s["membership"])],
    ];
    let rows = crate::ctl_identity::with_address_mismatch(rows, s);
    let rows = crate::incarnation_view::with_incarnation(rows, s);
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
