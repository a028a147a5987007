//! `GET /v1/health` and `GET /v1/ready`: whether to keep this process, and
//! whether to send it traffic.

use std::time::Duration;

use axum::body::Body;
use axum::http::Response;
use axum::response::IntoResponse;
use axum::Json;
use ferraft::log_id::index_of;
use ferraft::{LogIndex, ServerState};
use serde_json::json;

use super::Ctx;
use crate::error::{ApiError, Code};
use crate::kv::KvNode;

/// How long readiness waits for the leader's status, and then for this node
/// to apply up to the leader's commit: a node in step with its leader
/// applies it within a heartbeat.
const READY_WAIT: Duration = Duration::from_secs(1);

/// `GET /v1/health`: the process is up and serving HTTP.
pub(super) fn health(ctx: &Ctx) -> Response<Body> {
    match stopped(ctx) {
        Some(error) => error.into_response(),
        None => Json(json!({ "id": ctx.id, "status": "up" })).into_response(),
    }
}

/// A Raft node stopped by a failure (the process exits right after): it
/// is neither up nor ready.
fn stopped(ctx: &Ctx) -> Option<ApiError> {
    let stopped_by = ctx.raft.metrics().borrow().stopped_by.clone()?;
    Some(ApiError::new(Code::Internal, format!("the raft node stopped: {stopped_by}")))
}

/// `GET /v1/ready`: this node is initialized, knows a leader, and has applied
/// what that leader had committed when asked. Otherwise 503 with
/// `not_initialized`, `no_leader` or `not_ready` (behind, or the leader does
/// not answer).
pub(super) async fn ready(ctx: &Ctx) -> Response<Body> {
    match readiness(ctx).await {
        Ok(applied) => Json(json!({ "id": ctx.id, "status": "ready", "applied": applied })).into_response(),
        Err(error) => error.into_response(),
    }
}

fn not_ready(message: String) -> ApiError {
    ApiError::new(Code::NotReady, message)
}

async fn readiness(ctx: &Ctx) -> Result<LogIndex, ApiError> {
    if let Some(error) = stopped(ctx) {
        return Err(error);
    }
    let m = ctx.raft.metrics().borrow().clone();
    ctx.require_initialized()?;
    let Some(leader) = m.current_leader else {
        return Err(ApiError::no_leader());
    };
    let leader_committed =
        if m.state == ServerState::Leader { index_of(m.committed) } else { leader_committed(ctx, leader).await? };
    let applied = |m: &ferraft::RaftMetrics<KvNode>| index_of(m.last_applied) >= leader_committed;
    match ctx.raft.wait(READY_WAIT).metrics(applied, "applied up to the leader's commit").await {
        Ok(m) => Ok(index_of(m.last_applied)),
        Err(_) => {
            let applied = index_of(ctx.raft.metrics().borrow().last_applied);
            Err(not_ready(format!(
                "behind the leader: applied {applied}, leader {leader} committed {leader_committed}"
            ))
            .with("applied", applied)
            .with("leader_committed", leader_committed))
        }
    }
}

/// The commit index of `leader`, asked over its API.
async fn leader_committed(ctx: &Ctx, leader: ferraft::NodeId) -> Result<LogIndex, ApiError> {
    let unreachable = |why: String| not_ready(format!("leader {leader} does not answer: {why}")).with("leader", leader);
    let Some(node) = ctx.member(leader) else {
        return Err(not_ready(format!("the address of leader {leader} is unknown")).with("leader", leader));
    };
    let url = format!("http://{}/v1/cluster/status", node.api);
    let response = ctx.client.get(url).timeout(READY_WAIT).send().await.map_err(|e| unreachable(e.to_string()))?;
    let status: serde_json::Value = response.json().await.map_err(|e| unreachable(e.to_string()))?;
    status["committed"]
        .as_u64()
        .map(LogIndex)
        .ok_or_else(|| unreachable(format!("no commit index in its status: {status}")))
}
