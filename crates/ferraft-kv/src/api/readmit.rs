//! `POST /v1/cluster/readmit` `{"id": 2}`: brings back a member whose data
//! dir was wiped or whose machine was replaced (issue 18).
//!
//! Such a node starts as a new incarnation of its id and counts for nothing
//! (its votes and acknowledgements are dropped) until this call records its
//! new incarnation, as a learner: a voter is demoted on the way. Promote it
//! once it caught up (`change add-voters`, or `add-learner --promote-when-ready`).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::Response;
use ferraft::NodeId;
use serde::Deserialize;
use serde_json::json;

use super::cluster::post;
use super::{Ctx, CHANGE_TIMEOUT};
use crate::membership_json;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadmitBody {
    id: NodeId,
}

/// Answers `{"membership": M}`, M recording the node as a learner of its new
/// incarnation; `conflict` when the node did not say who it is (down).
pub async fn readmit(ctx: Arc<Ctx>, req: Request) -> Response<Body> {
    post(ctx, req, CHANGE_TIMEOUT, |ctx, body: ReadmitBody| async move {
        crate::address_check::check_id(body.id)?;
        ctx.require_initialized()?;
        let stored = ctx.raft.readmit(body.id).await?;
        Ok(json!({ "membership": membership_json::membership_result(&stored) }))
    })
    .await
}
