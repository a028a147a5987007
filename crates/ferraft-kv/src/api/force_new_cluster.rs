//! `POST /v1/cluster/force-new-cluster` `{"confirm": true}`: guarded
//! recovery of a cluster that lost a majority of its voters for good (issue
//! 18). Runs on the node it is sent to (never forwarded): that node keeps its
//! data, moves to a new cluster id and becomes the only voter of the new
//! cluster. Without `"confirm": true` it is `bad_request` and nothing happens.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::Response;
use serde::Deserialize;
use serde_json::json;

use super::cluster::post;
use super::{Ctx, CHANGE_TIMEOUT};
use crate::error::ApiError;
use crate::membership_json;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ForceBody {
    #[serde(default)]
    confirm: bool,
}

/// Answers `{"cluster_id": "hex", "membership": M}` once this node leads the
/// new cluster and committed its membership.
pub async fn force_new_cluster(ctx: Arc<Ctx>, req: Request) -> Response<Body> {
    post(ctx, req, CHANGE_TIMEOUT, |ctx, body: ForceBody| async move {
        if !body.confirm {
            return Err(ApiError::bad_request(
                "force-new-cluster makes this node the only voter of a new cluster and drops the other members \
                 for good: send {\"confirm\": true} if that is what you want",
            ));
        }
        ctx.require_initialized()?;
        tracing::warn!(node = %ctx.id, "FORCE-NEW-CLUSTER requested over the HTTP API");
        let stored = ctx.raft.force_new_cluster(true).await?;
        let cluster_id = ctx.raft.metrics().borrow().cluster_id.map(|c| c.to_string());
        Ok(json!({ "cluster_id": cluster_id, "membership": membership_json::membership_result(&stored) }))
    })
    .await
}
