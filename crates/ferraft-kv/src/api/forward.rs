//! Answering a request where it can be answered: here, or at the leader,
//! whose answer is relayed.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderValue, Response};
use axum::response::IntoResponse;
use axum::Json;
use ferraft::{NodeId, ServerState};
use serde::Serialize;

use super::request::Incoming;
use super::{Ctx, FORWARDED_BY_HEADER, FORWARDED_HEADER, LEADER_HEADER};
use crate::error::{ApiError, Code};
use crate::kv::KvNode;

/// A request is forwarded at most this many times (leadership may move once
/// while it travels; more means something is wrong).
const MAX_HOPS: u32 = 3;
/// How long a request waits for a leader to be known before it is answered
/// `no_leader` (an election usually takes a few hundred milliseconds).
const LEADER_WAIT: Duration = Duration::from_secs(3);

/// Runs `op` bounded by `limit`, answers with its JSON, and relays the request
/// to the leader when `op` says this node is not it.
pub(super) async fn serve<T, Fut>(ctx: &Arc<Ctx>, incoming: &Incoming, limit: Duration, op: Fut) -> Response<Body>
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
    match elected(ctx, incoming.from).await {
        Some(leader_id) => forward(ctx, incoming, leader_id, None, limit + Duration::from_secs(1)).await,
        None => ApiError::no_leader().into_response(),
    }
}

/// The leader once one other than `avoid` (a stale view) is known, waiting up
/// to [`LEADER_WAIT`]; still `avoid` if nothing else is known by then (the
/// hop limit stops a loop).
async fn elected(ctx: &Ctx, avoid: Option<NodeId>) -> Option<NodeId> {
    let id = ctx.id;
    let known = move |m: &ferraft::RaftMetrics<KvNode>| match m.current_leader {
        Some(leader) => (leader != id || m.state == ServerState::Leader) && Some(leader) != avoid,
        None => false,
    };
    match ctx.raft.wait(LEADER_WAIT).metrics(known, "a leader").await {
        Ok(m) => m.current_leader,
        Err(_) => ctx.raft.metrics().borrow().current_leader.filter(|l| *l != id),
    }
}

async fn forward(
    ctx: &Ctx,
    incoming: &Incoming,
    mut leader_id: NodeId,
    mut leader: Option<KvNode>,
    limit: Duration,
) -> Response<Body> {
    if incoming.hops >= MAX_HOPS {
        let message = format!("node {} is not the leader either (leadership is moving); retry", ctx.id);
        return ApiError::new(Code::NoLeader, message).with("leader", leader_id).into_response();
    }
    // a leader that refuses the connection never saw the request: once, wait
    // for the next leader and send it there
    let mut redirected = false;
    loop {
        let Some(node) = leader.take().or_else(|| ctx.member(leader_id)) else {
            return ApiError::new(Code::NoLeader, format!("the address of leader {leader_id} is unknown"))
                .with("leader", leader_id)
                .into_response();
        };
        match relay(ctx, incoming, &node, limit).await {
            Err(e) if e.is_connect() && !redirected => {
                redirected = true;
                match elected(ctx, Some(leader_id)).await {
                    Some(next) if next != leader_id => leader_id = next,
                    _ => return relay_error(leader_id, &node, e).into_response(),
                }
            }
            Err(e) => return relay_error(leader_id, &node, e).into_response(),
            Ok(response) => return response,
        }
    }
}

/// Sends the request to `node` and relays its answer.
async fn relay(
    ctx: &Ctx,
    incoming: &Incoming,
    node: &KvNode,
    limit: Duration,
) -> Result<Response<Body>, reqwest::Error> {
    ctx.http.count_forwarded();
    let url = format!("http://{}{}", node.api, incoming.forward_path());
    let response = ctx
        .client
        .request(incoming.method.clone(), url)
        .header(FORWARDED_HEADER, (incoming.hops + 1).to_string())
        .header(FORWARDED_BY_HEADER, ctx.id.to_string())
        .header(header::CONTENT_TYPE, "application/json")
        .body(incoming.body.clone())
        .timeout(limit)
        .send()
        .await?;
    let status = response.status();
    let leader_header = response.headers().get(LEADER_HEADER).cloned();
    let body = response.bytes().await?;
    let mut relayed = Response::new(Body::from(body));
    *relayed.status_mut() = status;
    relayed.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(value) = leader_header {
        relayed.headers_mut().insert(LEADER_HEADER, value);
    }
    Ok(relayed)
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
