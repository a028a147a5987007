//! `GET /v1/watch?prefix=P&from_index=N`: the changes of the map as a stream
//! of JSON lines, from this node's own state machine (so a leader change does
//! not interrupt it), resumable from any index the history still holds.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, Response};
use axum::response::IntoResponse;
use ferraft::LogIndex;
use serde_json::json;

use super::request::Incoming;
use super::Ctx;
use crate::error::{ApiError, Code};
use crate::kv::KvStore;
use crate::watch_log::{Change, Compacted};

/// The query parameters a watch takes.
const PARAMS: [&str; 3] = ["prefix", "key", "from_index"];
/// Changes written per wake-up at most.
const BATCH: usize = 1000;

/// Which changes a watch follows.
#[derive(Debug, Clone)]
enum Filter {
    Prefix(String),
    Key(String),
}

impl Filter {
    fn keeps(&self, change: &Change) -> bool {
        match self {
            Filter::Prefix(prefix) => change.key.starts_with(prefix.as_str()),
            Filter::Key(key) => &*change.key == key,
        }
    }
}

/// `GET /v1/watch`.
pub(super) async fn watch(ctx: Arc<Ctx>, req: axum::extract::Request) -> Response<Body> {
    match start(&ctx, req).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

fn compacted(c: Compacted, from: LogIndex) -> ApiError {
    let message = format!(
        "changes from index {from} are no longer held (compacted); the oldest is {}: read the current values and watch from after them",
        c.oldest_index
    );
    ApiError::new(Code::Compacted, message).with("oldest_index", c.oldest_index)
}

async fn start(ctx: &Ctx, req: axum::extract::Request) -> Result<Response<Body>, ApiError> {
    let incoming = Incoming::read(req).await?;
    incoming.refuse_unknown_params(&PARAMS, "a watch")?;
    let filter = match (incoming.query_param("prefix")?, incoming.query_param("key")?) {
        (Some(_), Some(_)) => return Err(ApiError::bad_request("give prefix or key, not both")),
        (None, Some(key)) => Filter::Key(key),
        (prefix, None) => Filter::Prefix(prefix.unwrap_or_default()),
    };
    ctx.require_initialized()?;
    let changes = ctx.store.changes();
    let from = match incoming.query_param("from_index")? {
        None => changes.applied() + 1,
        Some(text) => text
            .parse::<LogIndex>()
            .ok()
            .filter(|n| *n > LogIndex(0))
            .ok_or_else(|| ApiError::bad_request(format!("from_index {text:?}: give a log index from 1")))?,
    };
    changes.since(from, 0, |_| false).map_err(|c| compacted(c, from))?;
    let body = Body::from_stream(futures_util::stream::unfold(
        Some(Follow { store: ctx.store.clone(), filter, from, wake: changes.subscribe(), closing: ctx.closing() }),
        |state| async move {
            let mut follow = state?;
            let lines = follow.next_lines().await;
            Some((Ok::<_, std::convert::Infallible>(lines.0), lines.1.then_some(follow)))
        },
    ));
    let mut response = Response::new(body);
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
    Ok(response)
}

/// One watcher's place in the history.
struct Follow {
    store: KvStore,
    filter: Filter,
    from: LogIndex,
    wake: tokio::sync::watch::Receiver<LogIndex>,
    closing: tokio::sync::watch::Receiver<bool>,
}

impl Follow {
    /// The next lines to send, once there are some, and whether the stream
    /// goes on after them.
    async fn next_lines(&mut self) -> (Bytes, bool) {
        loop {
            let filter = &self.filter;
            match self.store.changes().since(self.from, BATCH, |c| filter.keeps(c)) {
                Err(c) => {
                    let line = compacted(c, self.from).body().to_string() + "\n";
                    return (Bytes::from(line), false);
                }
                Ok((kept, next)) => {
                    self.from = next;
                    if !kept.is_empty() {
                        let mut out = String::new();
                        for change in kept {
                            let line =
                                json!({ "index": change.index, "key": &*change.key, "value": change.value.as_deref() });
                            out.push_str(&line.to_string());
                            out.push('\n');
                        }
                        return (Bytes::from(out), true);
                    }
                }
            }
            // the node shuts down: end the stream
            let closing = self.closing.wait_for(|closing| *closing);
            tokio::select! {
                woken = self.wake.changed() => if woken.is_err() { return (Bytes::new(), false) },
                _ = closing => return (Bytes::new(), false),
            }
        }
    }
}
