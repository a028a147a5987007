//! The HTTP API of `ferraft serve` (see `shared/API.md`).

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{to_bytes, Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, Response, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::{Json, Router};
use ferraft::{ChangeMembers, LogIndex, NodeId, ReadError, ServerState};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::{ApiError, Code};
use crate::kv::{Command, CommandResponse, KvNode, KvStore};
use crate::membership_json;
use crate::KvRaft;

#[path = "api_membership_ext.rs"]
mod membership_ext;

/// Longest key, in bytes.
pub const MAX_KEY_BYTES: usize = 4096;
/// Longest value, in bytes.
pub const MAX_VALUE_BYTES: usize = 1024 * 1024;
/// Largest request body read.
const MAX_BODY_BYTES: usize = 4 * MAX_VALUE_BYTES;
/// The bound of an ordinary request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// The bound of a membership change (up to two committed steps).
pub const CHANGE_TIMEOUT: Duration = Duration::from_secs(10);
/// The bound of a blocking learner addition (the learner catches up first).
pub const LEARNER_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a prepare or abort that the leader cannot propose yet is retried.
const READY_POLL: Duration = Duration::from_millis(20);
/// Counts the hops of a request forwarded between nodes.
pub const FORWARDED_HEADER: &str = "x-ferraft-forwarded";
/// A request is forwarded at most this many times (leadership may move once
/// while it travels; more means something is wrong).
const MAX_HOPS: u32 = 3;
/// Names the node that forwarded a request.
pub const FORWARDED_BY_HEADER: &str = "x-ferraft-forwarded-by";
/// How long a request waits for a leader to be known before it is answered
/// `no_leader` (an election usually takes a few hundred milliseconds).
const LEADER_WAIT: Duration = Duration::from_secs(3);
/// Names the leader this node knows of.
pub const LEADER_HEADER: &str = "x-raft-leader";

/// What every handler shares.
pub struct Ctx {
    /// This node's id.
    pub id: NodeId,
    /// The Raft node.
    pub raft: KvRaft,
    /// The local state machine's map.
    pub store: KvStore,
    /// This node's advertised addresses.
    pub me: KvNode,
    /// Client for forwarding to the leader.
    pub client: reqwest::Client,
    /// Responses served, by outcome.
    pub responses: ResponseCounts,
    /// Requests relayed to the leader.
    pub forwarded: AtomicU64,
}

impl Ctx {
    /// A context for `raft`.
    pub fn new(raft: KvRaft, store: KvStore, me: KvNode) -> Self {
        let client = reqwest::Client::builder().no_proxy().build().expect("a plain HTTP client builds");
        Self {
            id: raft.id(),
            raft,
            store,
            me,
            client,
            responses: ResponseCounts::default(),
            forwarded: AtomicU64::new(0),
        }
    }

    /// Fails unless this node is part of a cluster.
    fn require_initialized(&self) -> Result<(), ApiError> {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        if m.state == ServerState::Uninitialized || m.membership.is_none() {
            return Err(ApiError::not_initialized());
        }
        if m.state == ServerState::Removed {
            // it would forward to a leader it no longer follows, or serve a
            // state that no longer advances
            return Err(ApiError::not_member());
        }
        Ok(())
    }

    fn leader_node(&self, leader_id: NodeId) -> Option<KvNode> {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        m.membership.as_ref().and_then(|s| s.membership.node(leader_id).cloned())
    }
}

/// The API's routes over `ctx`.
pub fn router(ctx: Arc<Ctx>) -> Router {
    // one handler that picks the endpoint by a plain match on the path: on the
    // hot path this costs less than a router and a middleware layer (which
    // boxes the rest of the stack per request)
    Router::new().fallback(dispatch).with_state(ctx)
}

async fn dispatch(State(ctx): State<Arc<Ctx>>, req: Request) -> Response<Body> {
    let response = route(&ctx, req).await;
    decorate(&ctx, response)
}

async fn route(ctx: &Arc<Ctx>, req: Request) -> Response<Body> {
    let path = req.uri().path();
    if path == "/v1/kv" || path.starts_with("/v1/kv/") {
        return kv(ctx, req).await;
    }
    let ctx = ctx.clone();
    match path {
        "/v1/cluster/init" => init(ctx, req).await,
        "/v1/cluster/status" => status(ctx, req),
        "/v1/cluster/learners" => learners(ctx, req).await,
        "/v1/cluster/membership" => membership(ctx, req).await,
        "/v1/cluster/membership/prepare" => prepare(ctx, req).await,
        "/v1/cluster/replace" => membership_ext::replace(ctx, req).await,
        "/v1/cluster/membership/commit" => commit(ctx, req).await,
        "/v1/cluster/membership/abort" => abort(ctx, req).await,
        "/v1/cluster/leader/transfer" => transfer(ctx, req).await,
        "/v1/cluster/snapshot" => snapshot(ctx, req).await,
        "/metrics" => metrics(ctx, req),
        _ => unknown_route(req),
    }
}

/// Responses served, by outcome, for `/metrics`.
#[derive(Debug, Default)]
pub struct ResponseCounts {
    counts: [AtomicU64; OUTCOMES.len()],
}

/// The outcomes counted, in the order `/metrics` lists them.
const OUTCOMES: [&str; 7] = ["bad_request", "conflict", "internal", "not_found", "ok", "timeout", "unavailable"];

impl ResponseCounts {
    fn count(&self, status: StatusCode) {
        let outcome = match status {
            s if s.is_success() => "ok",
            StatusCode::BAD_REQUEST => "bad_request",
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::CONFLICT => "conflict",
            StatusCode::SERVICE_UNAVAILABLE => "unavailable",
            StatusCode::GATEWAY_TIMEOUT => "timeout",
            _ => "internal",
        };
        if let Some(i) = OUTCOMES.iter().position(|o| *o == outcome) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The outcomes seen so far and their counts.
    pub fn seen(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        OUTCOMES.iter().zip(&self.counts).map(|(o, c)| (*o, c.load(Ordering::Relaxed))).filter(|(_, c)| *c > 0)
    }
}

/// A request as read: kept whole so it can be forwarded.
struct Incoming {
    method: Method,
    uri: Uri,
    body: Bytes,
    hops: u32,
    /// The node that forwarded this request, if any.
    from: Option<NodeId>,
}

impl Incoming {
    async fn read(req: Request) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        let body = to_bytes(body, MAX_BODY_BYTES)
            .await
            .map_err(|_| ApiError::bad_request(format!("request body larger than {MAX_BODY_BYTES} bytes")))?;
        Ok(Self {
            method: parts.method,
            uri: parts.uri,
            body,
            hops: parts
                .headers
                .get(FORWARDED_HEADER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            from: parts.headers.get(FORWARDED_BY_HEADER).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()),
        })
    }

    fn path(&self) -> &str {
        self.uri.path()
    }

    fn path_and_query(&self) -> &str {
        self.uri.path_and_query().map_or_else(|| self.uri.path(), |p| p.as_str())
    }

    fn require(&self, method: Method) -> Result<(), ApiError> {
        if self.method == method {
            return Ok(());
        }
        Err(ApiError::bad_request(format!("{} is not allowed on {}; use {method}", self.method, self.path())))
    }

    /// The body as `T`; an empty body counts as `{}`.
    fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        let body: &[u8] = if self.body.iter().all(u8::is_ascii_whitespace) { b"{}" } else { &self.body };
        serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
    }

    fn query_param(&self, name: &str) -> Option<&str> {
        self.uri
            .query()
            .unwrap_or("")
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }
}

/// Runs `op` bounded by `limit`, answers with its JSON, and relays the request
/// to the leader when `op` says this node is not it.
async fn serve<T, Fut>(ctx: &Arc<Ctx>, incoming: &Incoming, limit: Duration, op: Fut) -> Response<Body>
where
    T: Serialize,
    Fut: Future<Output = Result<T, ApiError>>,
{
    let result = match tokio::time::timeout(limit, op).await {
        Ok(result) => result,
        Err(_) => {
            Err(ApiError::timeout(format!("no outcome within {limit:?}: the request may or may not take effect")))
        }
    };
    match result {
        Ok(value) => Json(value).into_response(),
        // a stale view (this node, or the node that sent us the request): wait for the election's outcome
        Err(ApiError::Forward { leader_id, .. }) if leader_id == ctx.id || incoming.from == Some(leader_id) => {
            respond_after_election(ctx, incoming, limit).await
        }
        Err(ApiError::Forward { leader_id, leader }) => {
            forward(ctx, incoming, leader_id, leader, limit + Duration::from_secs(1)).await
        }
        Err(ApiError::NoLeaderYet) => respond_after_election(ctx, incoming, limit).await,
        Err(error) => error.into_response(),
    }
}

/// No leader is known (or only this node's stale self): waits for an
/// election's outcome, then relays the request to the winner, maybe this node.
async fn respond_after_election(ctx: &Ctx, incoming: &Incoming, limit: Duration) -> Response<Body> {
    let (id, avoid) = (ctx.id, incoming.from);
    let known = move |m: &ferraft::RaftMetrics<KvNode>| match m.current_leader {
        Some(leader) => (leader != id || m.state == ServerState::Leader) && Some(leader) != avoid,
        None => false,
    };
    let waited = ctx.raft.wait(LEADER_WAIT).metrics(known, "a leader").await;
    let leader = match waited {
        Ok(m) => m.current_leader,
        // still the stale sender? relay to it anyway (the hop limit stops a loop)
        Err(_) => ctx.raft.metrics().borrow().current_leader.filter(|l| *l != id),
    };
    match leader {
        Some(leader_id) => forward(ctx, incoming, leader_id, None, limit + Duration::from_secs(1)).await,
        None => ApiError::no_leader().into_response(),
    }
}

async fn forward(
    ctx: &Ctx,
    incoming: &Incoming,
    leader_id: NodeId,
    leader: Option<KvNode>,
    limit: Duration,
) -> Response<Body> {
    if incoming.hops >= MAX_HOPS {
        let message = format!("node {} is not the leader either (leadership is moving); retry", ctx.id);
        return ApiError::new(Code::NoLeader, message).with("leader", leader_id).into_response();
    }
    let own = (leader_id == ctx.id).then(|| ctx.me.clone());
    let Some(node) = leader.or(own).or_else(|| ctx.leader_node(leader_id)) else {
        return ApiError::new(Code::NoLeader, format!("the address of leader {leader_id} is unknown"))
            .with("leader", leader_id)
            .into_response();
    };
    ctx.forwarded.fetch_add(1, Ordering::Relaxed);
    let url = format!("http://{}{}", node.api, incoming.path_and_query());
    let request = ctx
        .client
        .request(incoming.method.clone(), url)
        .header(FORWARDED_HEADER, (incoming.hops + 1).to_string())
        .header(FORWARDED_BY_HEADER, ctx.id.to_string())
        .header(header::CONTENT_TYPE, "application/json")
        .body(incoming.body.clone())
        .timeout(limit);
    match request.send().await {
        Ok(response) => {
            let status = response.status();
            let leader_header = response.headers().get(LEADER_HEADER).cloned();
            match response.bytes().await {
                Ok(body) => {
                    let mut relayed = Response::new(Body::from(body));
                    *relayed.status_mut() = status;
                    relayed.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                    if let Some(value) = leader_header {
                        relayed.headers_mut().insert(LEADER_HEADER, value);
                    }
                    relayed
                }
                Err(e) => relay_error(leader_id, &node, e).into_response(),
            }
        }
        Err(e) => relay_error(leader_id, &node, e).into_response(),
    }
}

fn relay_error(leader_id: NodeId, node: &KvNode, e: reqwest::Error) -> ApiError {
    let message = format!("forwarding to leader {leader_id} at {}: {e}", node.api);
    let error = if e.is_connect() {
        ApiError::new(Code::NoLeader, message)
    } else if e.is_timeout() {
        ApiError::timeout(message)
    } else {
        ApiError::new(Code::Internal, message)
    };
    error.with("leader", leader_id)
}

/// Adds `X-Raft-Leader` and counts responses by outcome.
fn decorate(ctx: &Ctx, mut response: Response<Body>) -> Response<Body> {
    ctx.responses.count(response.status());
    if !response.headers().contains_key(LEADER_HEADER) {
        if let Some(leader) = ctx.raft.metrics().borrow().current_leader {
            response.headers_mut().insert(LEADER_HEADER, HeaderValue::from(leader));
        }
    }
    response
}

fn unknown_route(req: Request) -> Response<Body> {
    ApiError::new(Code::NotFound, format!("no such endpoint: {} {}", req.method(), req.uri().path())).into_response()
}

// ---------------------------------------------------------------- key-value

#[derive(Deserialize)]
struct PutBody {
    value: String,
}

#[derive(Deserialize)]
struct CasBody {
    expect: Option<String>,
    value: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Consistency {
    Linearizable,
    Lease,
    Local,
}

async fn kv(ctx: &Arc<Ctx>, req: Request) -> Response<Body> {
    let incoming = match Incoming::read(req).await {
        Ok(incoming) => incoming,
        Err(e) => return e.into_response(),
    };
    let raw = incoming.path().strip_prefix("/v1/kv").unwrap_or("").trim_start_matches('/');
    let (raw, is_cas) = match (incoming.method.clone(), raw.strip_suffix("/cas")) {
        (Method::POST, Some(key)) => (key, true),
        _ => (raw, false),
    };
    let key = match decode_key(raw) {
        Ok(key) => key,
        Err(e) => return e.into_response(),
    };
    let op = {
        let ctx = ctx.clone();
        let incoming = &incoming;
        async move {
            match (incoming.method.clone(), is_cas) {
                (Method::PUT, _) => {
                    let body: PutBody = incoming.json()?;
                    check_value(&body.value)?;
                    write(&ctx, Command::Put { key, value: body.value }).await
                }
                (Method::GET, _) => read(&ctx, key, consistency(incoming)?).await.map(KvReply::Read),
                (Method::DELETE, _) => write(&ctx, Command::Delete { key }).await,
                (Method::POST, true) => {
                    let body: CasBody = incoming.json()?;
                    for value in body.expect.iter().chain(&body.value) {
                        check_value(value)?;
                    }
                    write(&ctx, Command::Cas { key, expect: body.expect, value: body.value }).await
                }
                (method, _) => Err(ApiError::bad_request(format!(
                    "{method} is not allowed on /v1/kv/{{key}}: use GET, PUT, DELETE or POST /v1/kv/{{key}}/cas"
                ))),
            }
        }
    };
    serve(ctx, &incoming, REQUEST_TIMEOUT, op).await
}

/// The answer of a key-value call. The fields are in alphabetical order, as
/// the API has always written them.
#[derive(Serialize)]
#[serde(untagged)]
enum KvReply {
    Put { index: LogIndex },
    Delete { deleted: bool, index: LogIndex },
    Cas { current: Option<String>, index: LogIndex, succeeded: bool },
    Read(ReadReply),
}

#[derive(Serialize)]
struct ReadReply {
    index: LogIndex,
    value: String,
}

fn decode_key(raw: &str) -> Result<String, ApiError> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
            let byte = hex.and_then(|h| u8::from_str_radix(h, 16).ok());
            let Some(byte) = byte else { return Err(ApiError::bad_request("malformed percent-encoding in the key")) };
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let key = String::from_utf8(out).map_err(|_| ApiError::bad_request("the key is not valid UTF-8"))?;
    if key.is_empty() {
        return Err(ApiError::bad_request("the key is empty"));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(ApiError::bad_request(format!("the key is {} bytes; at most {MAX_KEY_BYTES} allowed", key.len())));
    }
    Ok(key)
}

fn check_value(value: &str) -> Result<(), ApiError> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(ApiError::bad_request(format!(
            "the value is {} bytes; at most {MAX_VALUE_BYTES} allowed",
            value.len()
        )));
    }
    Ok(())
}

fn consistency(incoming: &Incoming) -> Result<Consistency, ApiError> {
    match incoming.query_param("consistency") {
        None | Some("linearizable") => Ok(Consistency::Linearizable),
        Some("lease") => Ok(Consistency::Lease),
        Some("local") => Ok(Consistency::Local),
        Some(other) => {
            Err(ApiError::bad_request(format!("unknown consistency {other:?}: use linearizable, lease or local")))
        }
    }
}

async fn write(ctx: &Ctx, command: Command) -> Result<KvReply, ApiError> {
    ctx.require_initialized()?;
    let written = ctx.raft.client_write(command).await?;
    Ok(match written.response {
        CommandResponse::Put { index } | CommandResponse::Noop { index } => KvReply::Put { index },
        CommandResponse::Delete { index, deleted } => KvReply::Delete { deleted, index },
        CommandResponse::Cas { succeeded, current, index } => KvReply::Cas { current, index, succeeded },
    })
}

async fn read(ctx: &Ctx, key: String, consistency: Consistency) -> Result<ReadReply, ApiError> {
    ctx.require_initialized()?;
    match consistency {
        Consistency::Linearizable => {
            ctx.raft.ensure_linearizable().await?;
        }
        Consistency::Lease => match ctx.raft.lease_read().await {
            Ok(_) => {}
            Err(ReadError::LeaseExpired) => {
                ctx.raft.ensure_linearizable().await?;
            }
            Err(e) => return Err(e.into()),
        },
        Consistency::Local => {}
    }
    match ctx.store.get(&key) {
        Some((value, index)) => Ok(ReadReply { index, value }),
        None => Err(ApiError::new(Code::NotFound, format!("key {key:?} not found"))),
    }
}

// ---------------------------------------------------------------- cluster

/// Runs a cluster operation that takes a JSON body on POST.
async fn post<T, F, Fut>(ctx: Arc<Ctx>, req: Request, limit: Duration, op: F) -> Response<Body>
where
    T: DeserializeOwned,
    F: FnOnce(Arc<Ctx>, T) -> Fut,
    Fut: Future<Output = Result<Value, ApiError>>,
{
    let incoming = match Incoming::read(req).await {
        Ok(incoming) => incoming,
        Err(e) => return e.into_response(),
    };
    let body = incoming.require(Method::POST).and_then(|()| incoming.json::<T>());
    let body = match body {
        Ok(body) => body,
        Err(e) => return e.into_response(),
    };
    serve(&ctx, &incoming, limit, op(ctx.clone(), body)).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InitBody {
    nodes: Option<BTreeMap<NodeId, KvNode>>,
}

async fn init(ctx: Arc<Ctx>, req: Request) -> Response<Body> {
    post(ctx, req, REQUEST_TIMEOUT, |ctx, body: InitBody| async move {
        let members = body.nodes.unwrap_or_else(|| [(ctx.id, ctx.me.clone())].into());
        if members.is_empty() {
            return Err(ApiError::bad_request("\"nodes\" is empty: name at least one voter, or send {}"));
        }
        let wanted: BTreeSet<NodeId> = members.keys().copied().collect();
        if let Err(error) = ctx.raft.initialize(members).await {
            let current = ctx.raft.metrics().borrow().membership.clone();
            let voters = current.as_ref().map(|s| s.membership.voter_set());
            if !matches!(error, ferraft::InitializeError::NotAllowed) || voters.as_ref() != Some(&wanted) {
                let error = ApiError::from(error);
                return Err(match voters {
                    Some(voters) => error.with("voters", json!(voters)),
                    None => error,
                });
            }
        }
        // answer once the cluster works: a leader is elected and the initial membership committed
        let ready = |m: &ferraft::RaftMetrics<KvNode>| {
            m.membership.is_some() && m.membership_committed && m.current_leader.is_some()
        };
        let m = ctx
            .raft
            .wait(REQUEST_TIMEOUT - Duration::from_millis(500))
            .metrics(ready, "a leader and the initial membership committed")
            .await
            .map_err(|e| ApiError::timeout(e.to_string()))?;
        Ok(json!({ "membership": membership_json::membership(m.membership.as_ref(), m.membership_committed) }))
    })
    .await
}

fn status(ctx: Arc<Ctx>, req: Request) -> Response<Body> {
    if req.method() != Method::GET {
        return ApiError::bad_request("use GET /v1/cluster/status").into_response();
    }
    let metrics = ctx.raft.metrics().borrow().clone();
    Json(membership_json::status(&metrics)).into_response()
}

fn default_true() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LearnerBody {
    id: NodeId,
    raft: String,
    api: String,
    #[serde(default = "default_true")]
    blocking: bool,
    #[serde(default)]
    promote_when: Option<membership_ext::PromoteWhen>,
}

async fn learners(ctx: Arc<Ctx>, req: Request) -> Response<Body> {
    post(ctx, req, LEARNER_TIMEOUT, |ctx, body: LearnerBody| async move {
        ctx.require_initialized()?;
        let node = KvNode { raft: body.raft, api: body.api };
        let options = membership_ext::learner_options(body.blocking, body.promote_when);
        let stored = ctx.raft.add_learner_with(body.id, node, options).await?;
        Ok(json!({ "membership": membership_json::membership_result(&stored) }))
    })
    .await
}

/// `CHANGE` of the API: exactly one of these.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum ChangeBody {
    AddVoters(BTreeSet<NodeId>),
    RemoveVoters(BTreeSet<NodeId>),
    ReplaceVoters(BTreeSet<NodeId>),
    AddNodes(BTreeMap<NodeId, KvNode>),
    RemoveNodes(BTreeSet<NodeId>),
    SetNodes(BTreeMap<NodeId, KvNode>),
}

impl From<ChangeBody> for ChangeMembers<KvNode> {
    fn from(change: ChangeBody) -> Self {
        match change {
            ChangeBody::AddVoters(ids) => ChangeMembers::AddVoterIds(ids),
            ChangeBody::RemoveVoters(ids) => ChangeMembers::RemoveVoters(ids),
            ChangeBody::ReplaceVoters(ids) => ChangeMembers::ReplaceAllVoters(ids),
            ChangeBody::AddNodes(nodes) => ChangeMembers::AddNodes(nodes),
            ChangeBody::RemoveNodes(ids) => ChangeMembers::RemoveNodes(ids),
            ChangeBody::SetNodes(nodes) => ChangeMembers::SetNodes(nodes),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MembershipBody {
    change: ChangeBody,
    #[serde(default)]
    retain: bool,
    #[serde(default)]
    force: bool,
}

async fn membership(ctx: Arc<Ctx>, req: Request) -> Response<Body> {
    post(ctx, req, CHANGE_TIMEOUT, |ctx, body: MembershipBody| async move {
        ctx.require_initialized()?;
        let options = ferraft::ChangeOptions { retain: body.retain, force: body.force };
        let stored = ctx.raft.change_membership_with(body.change.into(), options).await?;
        Ok(json!({ "membership": membership_json::membership_result(&stored) }))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PrepareBody {
    expect_voters: BTreeSet<NodeId>,
    #[serde(default)]
    expect_learners: BTreeSet<NodeId>,
    voters: BTreeSet<NodeId>,
    #[serde(default)]
    learners: BTreeSet<NodeId>,
}

async fn prepare(ctx: Arc<Ctx>, req: Request) -> Response<Body> {
    post(ctx, req, REQUEST_TIMEOUT, |ctx, b: PrepareBody| async move {
        ctx.require_initialized()?;
        // right after a leader change or another membership change the leader
        // cannot propose yet: that passes within a round trip, so wait for it
        let index = loop {
            let prepared = ctx
                .raft
                .prepare_membership(
                    b.expect_voters.clone(),
                    b.expect_learners.clone(),
                    b.voters.clone(),
                    b.learners.clone(),
                )
                .await;
            match prepared {
                Err(ferraft::ChangeMembershipError::NotReady) => tokio::time::sleep(READY_POLL).await,
                other => break other?,
            }
        };
        Ok(json!({ "prepare_index": index }))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommitBody {
    prepare_index: u64,
}

async fn commit(ctx: Arc<Ctx>, req: Request) -> Response<Body> {
    post(ctx, req, REQUEST_TIMEOUT, |ctx, body: CommitBody| async move {
        ctx.require_initialized()?;
        let index = ctx.raft.commit_membership(body.prepare_index).await?;
        Ok(json!({ "commit_index": index }))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmptyBody {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AbortBody {
    /// The prepare to abort; without it, the joint config pending now (a
    /// retried call of that form may abort a later prepare).
    prepare_index: Option<u64>,
}

async fn abort(ctx: Arc<Ctx>, req: Request) -> Response<Body> {
    post(ctx, req, REQUEST_TIMEOUT, |ctx, body: AbortBody| async move {
        ctx.require_initialized()?;
        let prepare_index = match body.prepare_index {
            Some(index) => index,
            None => pending_joint_index(&ctx).ok_or_else(|| {
                ApiError::new(Code::Conflict, "no prepared (joint) membership is pending").with("pending", Value::Null)
            })?,
        };
        let index = loop {
            match ctx.raft.abort_membership(prepare_index).await {
                Err(ferraft::ChangeMembershipError::NotReady) => tokio::time::sleep(READY_POLL).await,
                other => break other?,
            }
        };
        Ok(json!({ "abort_index": index }))
    })
    .await
}

/// The log index of the joint membership in force on this (leader) node, if any.
fn pending_joint_index(ctx: &Ctx) -> Option<u64> {
    let metrics = ctx.raft.metrics();
    let m = metrics.borrow();
    let stored = m.membership.as_ref()?;
    stored.membership.is_joint().then(|| stored.log_id.map_or(0, |l| l.index))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TransferBody {
    to: Option<NodeId>,
}

async fn transfer(ctx: Arc<Ctx>, req: Request) -> Response<Body> {
    post(ctx, req, REQUEST_TIMEOUT + Duration::from_secs(1), |ctx, body: TransferBody| async move {
        ctx.require_initialized()?;
        let leader = ctx.raft.transfer_leader(body.to).await?;
        Ok(json!({ "leader": leader }))
    })
    .await
}

async fn snapshot(ctx: Arc<Ctx>, req: Request) -> Response<Body> {
    post(ctx, req, REQUEST_TIMEOUT, |ctx, _: EmptyBody| async move {
        ctx.require_initialized()?;
        let built = ctx.raft.trigger_snapshot().await?.map_or(0, |log_id| log_id.index);
        // answer once the status shows it too (the metrics follow the save)
        let shown = move |m: &ferraft::RaftMetrics<KvNode>| m.snapshot.map_or(0, |s| s.index) >= built;
        let _ = ctx.raft.wait(Duration::from_secs(2)).metrics(shown, "the snapshot in the metrics").await;
        Ok(json!({ "snapshot_index": built }))
    })
    .await
}

fn metrics(ctx: Arc<Ctx>, req: Request) -> Response<Body> {
    if req.method() != Method::GET {
        return ApiError::bad_request("use GET /metrics").into_response();
    }
    let text = crate::metrics_text::render(&ctx);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_percent_decoded_and_bounded() {
        assert_eq!(decode_key("a%2Fb").unwrap(), "a/b");
        assert_eq!(decode_key("plain/with/slash").unwrap(), "plain/with/slash");
        assert_eq!(decode_key("").unwrap_err().code(), Code::BadRequest);
        assert_eq!(decode_key("%zz").unwrap_err().code(), Code::BadRequest);
        assert_eq!(decode_key("%ff").unwrap_err().code(), Code::BadRequest);
        assert_eq!(decode_key(&"k".repeat(MAX_KEY_BYTES + 1)).unwrap_err().code(), Code::BadRequest);
        assert!(decode_key(&"k".repeat(MAX_KEY_BYTES)).is_ok());
    }

    #[test]
    fn a_change_is_exactly_one_kind() {
        let one: MembershipBody = serde_json::from_str(r#"{"change": {"add_voters": [4]}}"#).unwrap();
        assert!(matches!(one.change, ChangeBody::AddVoters(_)));
        let two = serde_json::from_str::<MembershipBody>(r#"{"change": {"add_voters": [4], "remove_voters": [1]}}"#);
        assert!(two.is_err());
        let nodes: MembershipBody =
            serde_json::from_str(r#"{"change": {"set_nodes": {"2": {"raft": "h:1", "api": "h:2"}}}, "retain": true}"#)
                .unwrap();
        assert!(matches!(nodes.change, ChangeBody::SetNodes(_)) && nodes.retain);
    }
}
