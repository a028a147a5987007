//! The `/v1/cluster/*` endpoints and `/metrics`.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, Response};
use axum::response::IntoResponse;
use axum::Json;
use ferraft::{ChangeMembers, LogIndex, NodeId, ServerState};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::forward::serve;
use super::request::Incoming;
use super::{Ctx, CHANGE_TIMEOUT, LEARNER_TIMEOUT, REQUEST_TIMEOUT};
use crate::error::{ApiError, Code};
use crate::kv::KvNode;
use crate::membership_json;

/// How often a prepare or abort that the leader cannot propose yet is retried.
const READY_POLL: Duration = Duration::from_millis(20);

/// Runs a cluster operation that takes a JSON body on POST.
pub(super) async fn post<T, F, Fut>(ctx: Arc<Ctx>, req: Request, limit: Duration, op: F) -> Response<Body>
where
    T: DeserializeOwned,
    F: FnOnce(Arc<Ctx>, T) -> Fut,
    Fut: Future<Output = Result<Value, ApiError>>,
{
    let incoming = match Incoming::read(req).await {
        Ok(incoming) => incoming,
        Err(e) => return e.into_response(),
    };
    let body = match incoming.json::<T>() {
        Ok(body) => body,
        Err(e) => return e.into_response(),
    };
    serve(&ctx, &incoming, limit, op(ctx.clone(), body)).await
}

/// How long an `init` refused because the cluster formed without this node
/// waits for its leader to reach it, to tell a repeat from a conflict.
const JOIN_WAIT: Duration = Duration::from_secs(2);

/// A node object in a request body: its addresses, and no other field (a
/// misspelt one would otherwise be dropped without a word).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeBody {
    raft: String,
    api: String,
}

/// The nodes of a request body, as the membership records them.
fn kv_nodes(nodes: BTreeMap<NodeId, NodeBody>) -> BTreeMap<NodeId, KvNode> {
    nodes.into_iter().map(|(id, n)| (id, KvNode { raft: n.raft, api: n.api })).collect()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InitBody {
    nodes: Option<BTreeMap<NodeId, NodeBody>>,
    cluster_id: Option<String>,
}

pub(super) async fn init(ctx: Arc<Ctx>, req: Request) -> Response<Body> {
    post(ctx, req, REQUEST_TIMEOUT, |ctx, body: InitBody| async move {
        let members = body.nodes.map(kv_nodes).unwrap_or_else(|| [(ctx.id, ctx.me.clone())].into());
        if members.is_empty() {
            return Err(ApiError::bad_request("\"nodes\" is empty: name at least one voter, or send {}"));
        }
        for (id, node) in &members {
            crate::address_check::check_node(*id, node)?;
        }
        let wanted: BTreeSet<NodeId> = members.keys().copied().collect();
        let cluster_id = crate::cluster_identity::parse_cluster_id(body.cluster_id.as_deref())?;
        match crate::cluster_identity::initialize(&ctx.raft, members, cluster_id).await {
            Ok(log_id) => {
                tracing::info!(id = %ctx.id, voters = ?wanted, log_index = %log_id.index, "initialized the cluster")
            }
            Err(error) => {
                use ferraft::InitializeError::{
                    ClusterFormed, InProgress, JoinedCluster, MemberOfOtherCluster, NotAllowed,
                };
                // the cluster formed without this node (its log was lost, or
                // `init` ran on every member, or on another one first): it
                // joins once the leader reaches it, and an `init` naming that
                // cluster's voters is a repeat, as on a member that holds the
                // log. So is a retry while the first `init` still asks the
                // members, once that one wrote the same voters.
                let may_join = matches!(
                    error,
                    ClusterFormed { .. } | JoinedCluster { .. } | MemberOfOtherCluster { .. } | InProgress
                );
                if may_join {
                    let _ = ctx.raft.wait(JOIN_WAIT).metrics(|m| m.membership.is_some(), "the leader reaches it").await;
                }
                let current = ctx.raft.metrics().borrow().membership.clone();
                let voters = current.as_ref().map(|s| s.membership.voter_set());
                let refusal = match (ctx.raft.cluster_id(), cluster_id) {
                    // a repeat is of an init in the cluster it names: the node
                    // may have joined another one meanwhile
                    (Some(ours), Some(given)) if ours != given => {
                        Some(ApiError::from(ferraft::InitializeError::OtherCluster { ours, given }))
                    }
                    _ => {
                        let repeat = may_join || matches!(error, NotAllowed);
                        (!repeat || voters.as_ref() != Some(&wanted)).then(|| ApiError::from(error))
                    }
                };
                if let Some(error) = refusal {
                    return Err(match voters {
                        Some(voters) => error.with("voters", json!(voters)),
                        None => error,
                    });
                }
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

pub(super) fn status(ctx: &Ctx) -> Response<Body> {
    let metrics = ctx.raft.metrics().borrow().clone();
    Json(membership_json::status_of(&metrics, &ctx.me)).into_response()
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
    promote_when: Option<super::membership_ext::PromoteWhen>,
}

pub(super) async fn learners(ctx: Arc<Ctx>, req: Request) -> Response<Body> {
    post(ctx, req, LEARNER_TIMEOUT, |ctx, body: LearnerBody| async move {
        ctx.require_initialized()?;
        let node = KvNode { raft: body.raft, api: body.api };
        crate::address_check::check_node(body.id, &node)?;
        let options = super::membership_ext::learner_options(body.blocking, body.promote_when);
        let stored = ctx.raft.add_learner_with(body.id, node, options).await;
        let stored = stored.map_err(|e| crate::membership_errors::explain(&ctx.raft, e))?;
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
    AddNodes(BTreeMap<NodeId, NodeBody>),
    RemoveNodes(BTreeSet<NodeId>),
    SetNodes(BTreeMap<NodeId, NodeBody>),
}

impl From<ChangeBody> for ChangeMembers<KvNode> {
    fn from(change: ChangeBody) -> Self {
        match change {
            ChangeBody::AddVoters(ids) => ChangeMembers::AddVoterIds(ids),
            ChangeBody::RemoveVoters(ids) => ChangeMembers::RemoveVoters(ids),
            ChangeBody::ReplaceVoters(ids) => ChangeMembers::ReplaceAllVoters(ids),
            ChangeBody::AddNodes(nodes) => ChangeMembers::AddNodes(kv_nodes(nodes)),
            ChangeBody::RemoveNodes(ids) => ChangeMembers::RemoveNodes(ids),
            ChangeBody::SetNodes(nodes) => ChangeMembers::SetNodes(kv_nodes(nodes)),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MembershipBody {
    change: ChangeBody,
    #[serde(default)]
    retain: bool,
    /// Promote learners that are not caught up.
    #[serde(default)]
    force: bool,
    /// The caller's id for the change: a repeat returns the first outcome.
    change_id: Option<String>,
    /// Apply only if the membership in force is the entry at this index.
    expect_membership_index: Option<LogIndex>,
}

pub(super) async fn membership(ctx: Arc<Ctx>, req: Request) -> Response<Body> {
    post(ctx, req, CHANGE_TIMEOUT, |ctx, body: MembershipBody| async move {
        ctx.require_initialized()?;
        let change = body.change.into();
        crate::address_check::check_change(&change)?;
        let guard =
            ferraft::ChangeGuard { change_id: body.change_id, expect_membership_index: body.expect_membership_index };
        let options = ferraft::ChangeOptions { retain: body.retain, force: body.force, guard };
        let stored = ctx.raft.change_membership_with(change, options).await;
        let stored = stored.map_err(|e| crate::membership_errors::explain(&ctx.raft, e))?;
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

pub(super) async fn prepare(ctx: Arc<Ctx>, req: Request) -> Response<Body> {
    post(ctx, req, REQUEST_TIMEOUT, |ctx, b: PrepareBody| async move {
        let named = [&b.expect_voters, &b.expect_learners, &b.voters, &b.learners];
        named.into_iter().flatten().try_for_each(|id| crate::address_check::check_id(*id))?;
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
    prepare_index: LogIndex,
}

pub(super) async fn commit(ctx: Arc<Ctx>, req: Request) -> Response<Body> {
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
    prepare_index: Option<LogIndex>,
}

pub(super) async fn abort(ctx: Arc<Ctx>, req: Request) -> Response<Body> {
    post(ctx, req, REQUEST_TIMEOUT, |ctx, body: AbortBody| async move {
        ctx.require_initialized()?;
        let prepare_index = match body.prepare_index {
            Some(index) => index,
            None => pending_joint_index(&ctx)?.ok_or_else(|| {
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

/// The log index of the joint membership in force on the leader, if any.
/// Only the leader can say: another node's view may lag a prepare, so the
/// call goes to the leader (or waits for one).
fn pending_joint_index(ctx: &Ctx) -> Result<Option<LogIndex>, ApiError> {
    let metrics = ctx.raft.metrics();
    let m = metrics.borrow();
    if m.state != ServerState::Leader {
        return Err(match m.current_leader.filter(|leader| *leader != ctx.id) {
            Some(leader_id) => ApiError::Forward { leader_id, leader: None },
            None => ApiError::NoLeaderYet,
        });
    }
    let Some(stored) = m.membership.as_ref() else { return Ok(None) };
    Ok(stored.membership.is_joint().then(|| stored.log_id.map_or(LogIndex(0), |l| l.index)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TransferBody {
    to: Option<NodeId>,
}

pub(super) async fn transfer(ctx: Arc<Ctx>, req: Request) -> Response<Body> {
    post(ctx, req, REQUEST_TIMEOUT + Duration::from_secs(1), |ctx, body: TransferBody| async move {
        body.to.map_or(Ok(()), crate::address_check::check_id)?;
        ctx.require_initialized()?;
        let leader = ctx.raft.transfer_leader(body.to).await?;
        Ok(json!({ "leader": leader }))
    })
    .await
}

pub(super) async fn snapshot(ctx: Arc<Ctx>, req: Request) -> Response<Body> {
    post(ctx, req, REQUEST_TIMEOUT, |ctx, _: EmptyBody| async move {
        ctx.require_initialized()?;
        let built = ctx.raft.trigger_snapshot().await?.map_or(LogIndex(0), |log_id| log_id.index);
        // answer once the status shows it too (the metrics follow the save)
        let shown = move |m: &ferraft::RaftMetrics<KvNode>| m.snapshot.map_or(LogIndex(0), |s| s.index) >= built;
        let _ = ctx.raft.wait(Duration::from_secs(2)).metrics(shown, "the snapshot in the metrics").await;
        Ok(json!({ "snapshot_index": built }))
    })
    .await
}

pub(super) fn metrics(ctx: &Ctx) -> Response<Body> {
    let metrics = ctx.raft.metrics().borrow().clone();
    let text = crate::metrics_text::render(&metrics, &ctx.me, ctx.store.len(), &ctx.http);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// Bodies written when node ids and indexes were plain numbers parse as before.
    #[test]
    fn ids_and_indexes_in_a_body_are_plain_numbers() {
        let body = r#"{"change": {"add_nodes": {"4": {"raft": "h:1", "api": "h:2"}}}, "expect_membership_index": 12}"#;
        let parsed: MembershipBody = serde_json::from_str(body).unwrap();
        assert_eq!(parsed.expect_membership_index, Some(LogIndex(12)));
        let ChangeBody::AddNodes(nodes) = parsed.change else { panic!("add_nodes parsed as {:?}", parsed.change) };
        assert_eq!(nodes.keys().copied().collect::<Vec<_>>(), [NodeId(4)]);
        let prepare: PrepareBody = serde_json::from_str(r#"{"expect_voters": [1, 2], "voters": [1, 3]}"#).unwrap();
        assert_eq!(prepare.voters, [NodeId(1), NodeId(3)].into());
    }
}
