//! The readiness-aware membership endpoints (issue 23): a learner added with
//! `promote_when`, a change with `force`, and `POST /v1/cluster/replace`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::Response;
use axum::response::IntoResponse;
use ferraft::{AddLearnerOptions, NodeId, Readiness};
use serde::Deserialize;
use serde_json::json;

use super::cluster::post;
use super::forward::serve;
use super::request::{decode_key, Incoming};
use super::{Ctx, CHANGE_TIMEOUT, REQUEST_TIMEOUT};
use crate::error::ApiError;
use crate::membership_json;

/// Lag a learner added with `promote_when` may have, when the rule omits it.
pub const DEFAULT_PROMOTE_LAG_ENTRIES: u64 = 1_000;

/// `"promote_when"` of `POST /v1/cluster/learners`: the leader promotes the
/// learner once it lacks at most `lag_entries` entries and `lag_bytes`
/// bytes, without a break for `hold_ms` (and has no snapshot streaming to
/// it, and was heard from within an election timeout).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromoteWhen {
    #[serde(default = "default_lag_entries")]
    lag_entries: u64,
    #[serde(default)]
    lag_bytes: Option<u64>,
    #[serde(default)]
    hold_ms: u64,
}

fn default_lag_entries() -> u64 {
    DEFAULT_PROMOTE_LAG_ENTRIES
}

/// How to add a learner, from the request's `blocking` and `promote_when`.
pub fn learner_options(blocking: bool, promote_when: Option<PromoteWhen>) -> AddLearnerOptions {
    let promote_when = promote_when.map(|p| Readiness {
        max_lag_entries: p.lag_entries,
        max_lag_bytes: p.lag_bytes.unwrap_or(u64::MAX),
        hold_ms: p.hold_ms,
    });
    AddLearnerOptions { blocking, promote_when }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplaceBody {
    old: NodeId,
    new: NodeId,
}

/// `POST /v1/cluster/replace` `{"old": 3, "new": 4}`: swaps voter `old` for
/// learner `new` in one change; `conflict` with the learner's lag unless it
/// caught up.
pub async fn replace(ctx: Arc<Ctx>, req: Request) -> Response<Body> {
    post(ctx, req, CHANGE_TIMEOUT, |ctx, body: ReplaceBody| async move {
        [body.old, body.new].into_iter().try_for_each(crate::address_check::check_id)?;
        ctx.require_initialized()?;
        let stored = ctx.raft.replace_voter(body.old, body.new).await?;
        Ok(json!({ "membership": membership_json::membership_result(&stored) }))
    })
    .await
}

/// `GET /v1/cluster/changes/{id}`: where the change with client change id
/// `id` (percent-encoded) stands, as the leader's log and queue show it.
pub async fn change_status(ctx: Arc<Ctx>, req: Request, encoded_id: String) -> Response<Body> {
    let incoming = match Incoming::read(req).await {
        Ok(incoming) => incoming,
        Err(e) => return e.into_response(),
    };
    let change_id = match decode_key(&encoded_id) {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    let op = {
        let ctx = ctx.clone();
        async move {
            ctx.require_initialized()?;
            let status = ctx.raft.change_status(&change_id).await?;
            Ok::<_, ApiError>(crate::membership_json::change_status(&change_id, &status))
        }
    };
    serve(&ctx, &incoming, REQUEST_TIMEOUT, op).await
}
