//! The route table: which endpoint a raw path names, which methods it
//! takes, and the answers for an unknown path (404) or a wrong method (405).

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, Response};
use axum::response::IntoResponse;
use axum::Router;

use super::{
    backup, cluster, force_new_cluster, health, keys, list, membership_ext, readmit, watch, Ctx, LEADER_HEADER,
};
use crate::error::{ApiError, Code};
use crate::http_metrics::EndpointClass;

/// The API's routes over `ctx`.
pub fn router(ctx: Arc<Ctx>) -> Router {
    // one handler that picks the endpoint by a plain match on the raw path:
    // on the hot path this costs less than a router and a middleware layer
    // (which boxes the rest of the stack per request), and no router
    // normalises the path, so a key is taken exactly as sent
    Router::new().fallback(dispatch).with_state(ctx)
}

/// The endpoints of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Key,
    Cas,
    List,
    Init,
    Status,
    Learners,
    Membership,
    Prepare,
    Commit,
    Abort,
    Transfer,
    Snapshot,
    SnapshotDownload,
    Metrics,
    Health,
    Ready,
    Watch,
    Replace,
    ChangeStatus,
    Readmit,
    ForceNewCluster,
}

impl Endpoint {
    /// The endpoint `path` (raw, as received) names.
    fn of(path: &str) -> Option<Endpoint> {
        if path.strip_prefix("/v1/cluster/changes/").is_some_and(|id| !id.is_empty()) {
            return Some(Endpoint::ChangeStatus);
        }
        if let Some(rest) = path.strip_prefix("/v1/kv/") {
            // a key's own slashes are sent encoded, so a literal last `/cas` is the CAS endpoint
            return Some(if rest.ends_with("/cas") { Endpoint::Cas } else { Endpoint::Key });
        }
        Some(match path {
            "/v1/kv" => Endpoint::List,
            "/v1/cluster/init" => Endpoint::Init,
            "/v1/cluster/status" => Endpoint::Status,
            "/v1/cluster/learners" => Endpoint::Learners,
            "/v1/cluster/membership" => Endpoint::Membership,
            "/v1/cluster/membership/prepare" => Endpoint::Prepare,
            "/v1/cluster/replace" => Endpoint::Replace,
            "/v1/cluster/readmit" => Endpoint::Readmit,
            "/v1/cluster/force-new-cluster" => Endpoint::ForceNewCluster,
            "/v1/cluster/membership/commit" => Endpoint::Commit,
            "/v1/cluster/membership/abort" => Endpoint::Abort,
            "/v1/cluster/leader/transfer" => Endpoint::Transfer,
            "/v1/cluster/snapshot" => Endpoint::Snapshot,
            "/v1/cluster/snapshot/download" => Endpoint::SnapshotDownload,
            "/metrics" => Endpoint::Metrics,
            "/v1/health" => Endpoint::Health,
            "/v1/ready" => Endpoint::Ready,
            "/v1/watch" => Endpoint::Watch,
            _ => return None,
        })
    }

    fn methods(self) -> &'static [Method] {
        match self {
            Endpoint::Key => &[Method::GET, Method::PUT, Method::DELETE],
            Endpoint::List
            | Endpoint::Status
            | Endpoint::SnapshotDownload
            | Endpoint::Metrics
            | Endpoint::Health
            | Endpoint::Ready
            | Endpoint::ChangeStatus
            | Endpoint::Watch => &[Method::GET],
            Endpoint::Cas
            | Endpoint::Init
            | Endpoint::Learners
            | Endpoint::Membership
            | Endpoint::Prepare
            | Endpoint::Commit
            | Endpoint::Abort
            | Endpoint::Transfer
            | Endpoint::Replace
            | Endpoint::Readmit
            | Endpoint::ForceNewCluster
            | Endpoint::Snapshot => &[Method::POST],
        }
    }

    fn class(self, method: &Method) -> EndpointClass {
        match self {
            Endpoint::Key if method == Method::GET => EndpointClass::KvRead,
            Endpoint::Key | Endpoint::Cas => EndpointClass::KvWrite,
            Endpoint::List => EndpointClass::KvList,
            Endpoint::Watch => EndpointClass::KvWatch,
            Endpoint::Status | Endpoint::Metrics | Endpoint::Health | Endpoint::Ready => EndpointClass::Observe,
            _ => EndpointClass::Cluster,
        }
    }
}

async fn dispatch(State(ctx): State<Arc<Ctx>>, req: Request) -> Response<Body> {
    let started = Instant::now();
    let endpoint = Endpoint::of(req.uri().path());
    let (class, response) = match endpoint {
        None => (EndpointClass::Other, no_such_endpoint(&req)),
        Some(endpoint) if !endpoint.methods().contains(req.method()) => {
            (EndpointClass::Other, method_not_allowed(endpoint, &req))
        }
        Some(endpoint) => (endpoint.class(req.method()), call(endpoint, ctx.clone(), req).await),
    };
    let response = with_leader(&ctx, response);
    ctx.http.record(class, response.status(), started.elapsed());
    response
}

async fn call(endpoint: Endpoint, ctx: Arc<Ctx>, req: Request) -> Response<Body> {
    match endpoint {
        Endpoint::Key => keys::key(ctx, req).await,
        Endpoint::Cas => keys::cas(ctx, req).await,
        Endpoint::List => list::list(ctx, req).await,
        Endpoint::Init => cluster::init(ctx, req).await,
        Endpoint::Status => cluster::status(&ctx),
        Endpoint::Learners => cluster::learners(ctx, req).await,
        Endpoint::Membership => cluster::membership(ctx, req).await,
        Endpoint::Prepare => cluster::prepare(ctx, req).await,
        Endpoint::Commit => cluster::commit(ctx, req).await,
        Endpoint::Abort => cluster::abort(ctx, req).await,
        Endpoint::Transfer => cluster::transfer(ctx, req).await,
        Endpoint::Snapshot => cluster::snapshot(ctx, req).await,
        Endpoint::SnapshotDownload => backup::download(&ctx).await,
        Endpoint::Metrics => cluster::metrics(&ctx),
        Endpoint::Health => health::health(&ctx),
        Endpoint::Ready => health::ready(&ctx).await,
        Endpoint::Watch => watch::watch(ctx, req).await,
        Endpoint::Replace => membership_ext::replace(ctx, req).await,
        Endpoint::Readmit => readmit::readmit(ctx, req).await,
        Endpoint::ForceNewCluster => force_new_cluster::force_new_cluster(ctx, req).await,
        Endpoint::ChangeStatus => {
            let id = req.uri().path().trim_start_matches("/v1/cluster/changes/").to_string();
            membership_ext::change_status(ctx, req, id).await
        }
    }
}

/// Adds `X-Raft-Leader` unless a relayed answer carries the leader's own.
fn with_leader(ctx: &Ctx, mut response: Response<Body>) -> Response<Body> {
    if !response.headers().contains_key(LEADER_HEADER) {
        if let Some(leader) = ctx.raft.metrics().borrow().current_leader {
            response.headers_mut().insert(LEADER_HEADER, HeaderValue::from(leader.0));
        }
    }
    response
}

fn no_such_endpoint(req: &Request) -> Response<Body> {
    ApiError::new(Code::NoSuchEndpoint, format!("no such endpoint: {} {}", req.method(), req.uri().path()))
        .into_response()
}

fn method_not_allowed(endpoint: Endpoint, req: &Request) -> Response<Body> {
    let allowed: Vec<&str> = endpoint.methods().iter().map(Method::as_str).collect();
    let allow = allowed.join(", ");
    let message = format!("{} is not allowed on {}; use {allow}", req.method(), req.uri().path());
    let mut response = ApiError::new(Code::MethodNotAllowed, message).with("allow", allowed).into_response();
    if let Ok(value) = HeaderValue::from_str(&allow) {
        response.headers_mut().insert(header::ALLOW, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_literal_last_cas_segment_names_the_cas_endpoint_and_nothing_else_does() {
        assert_eq!(Endpoint::of("/v1/kv/k/cas"), Some(Endpoint::Cas));
        assert_eq!(Endpoint::of("/v1/kv/k%2Fcas"), Some(Endpoint::Key));
        assert_eq!(Endpoint::of("/v1/kv/cas"), Some(Endpoint::Key));
        assert_eq!(Endpoint::of("/v1/kv/k/cas/x"), Some(Endpoint::Key));
        assert_eq!(Endpoint::of("/v1/kv"), Some(Endpoint::List));
        assert_eq!(Endpoint::of("/v1/kvx"), None);
        assert_eq!(Endpoint::of("/v1/cluster/status/"), None);
    }
}
