//! `GET /v1/cluster/snapshot/download`: this node's latest snapshot, for a
//! backup taken from any node.

use std::path::PathBuf;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderValue, Response};
use axum::response::IntoResponse;
use ferraft::log_id::index_of;
use ferraft::{Snapshot, SnapshotData};

use super::{Ctx, REQUEST_TIMEOUT};
use crate::error::{ApiError, Code};
use crate::kv::KvNode;
use crate::membership_json;

/// The last log index the snapshot covers.
pub const SNAPSHOT_INDEX_HEADER: &str = "x-ferraft-snapshot-index";
/// The term of that entry.
pub const SNAPSHOT_TERM_HEADER: &str = "x-ferraft-snapshot-term";
/// The membership in force at that index, as the API's membership object.
pub const SNAPSHOT_MEMBERSHIP_HEADER: &str = "x-ferraft-snapshot-membership";

/// Answers the latest saved snapshot's state machine bytes (a JSON object
/// `{"key": ["value", index], ...}`) with what it covers in headers; builds
/// one first if the node has none.
pub(super) async fn download(ctx: &Ctx) -> Response<Body> {
    match latest(ctx).await {
        Ok(snapshot) => answer(snapshot),
        Err(error) => error.into_response(),
    }
}

fn answer(snapshot: Snapshot<KvNode>) -> Response<Body> {
    let meta = &snapshot.meta;
    let membership = membership_json::membership(Some(&meta.membership), true).to_string();
    let length = snapshot.data.len();
    let mut response = Response::new(Body::from_stream(stream_data(snapshot.data)));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    // streamed, but with its length, as when it was one buffer
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    headers.insert(SNAPSHOT_INDEX_HEADER, HeaderValue::from(index_of(meta.last_log_id).0));
    headers.insert(SNAPSHOT_TERM_HEADER, HeaderValue::from(meta.last_log_id.map_or(0, |l| l.leader_id.term.0)));
    if let Ok(value) = HeaderValue::from_str(&membership) {
        headers.insert(SNAPSHOT_MEMBERSHIP_HEADER, value);
    }
    response
}

/// Bytes read per piece of the download.
const DOWNLOAD_PIECE_BYTES: usize = 1024 * 1024;

/// The snapshot's bytes a piece at a time, read on blocking threads: a
/// snapshot on disk is never loaded whole.
fn stream_data(
    data: SnapshotData,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send + 'static {
    futures_util::stream::unfold(Some((data, 0u64)), |state| async move {
        let (data, offset) = state?;
        if offset >= data.len() {
            return None;
        }
        let reader = data.clone();
        let piece = tokio::task::spawn_blocking(move || reader.read_chunk(offset, DOWNLOAD_PIECE_BYTES)).await;
        match piece.map_err(std::io::Error::other).and_then(|read| read) {
            Ok(piece) => {
                let next = offset + piece.len() as u64;
                Some((Ok(piece), Some((data, next))))
            }
            Err(error) => Some((Err(error), None)),
        }
    })
}

async fn latest(ctx: &Ctx) -> Result<Snapshot<KvNode>, ApiError> {
    ctx.require_initialized()?;
    let Some(dir) = ctx.wal_dir.clone() else {
        return Err(ApiError::new(Code::Internal, "this node keeps no snapshots on disk"));
    };
    if let Some(snapshot) = read(dir.clone()).await? {
        return Ok(snapshot);
    }
    let built = ctx.raft.trigger_snapshot().await?;
    let Some(built) = built else {
        return Err(ApiError::new(Code::Conflict, "nothing is applied yet: there is nothing to snapshot"));
    };
    // saved once the metrics show it
    let shown = move |m: &ferraft::RaftMetrics<KvNode>| index_of(m.snapshot) >= built.index;
    let waited = ctx.raft.wait(REQUEST_TIMEOUT - Duration::from_secs(1)).metrics(shown, "the snapshot saved").await;
    waited.map_err(|e| ApiError::timeout(e.to_string()))?;
    read(dir).await?.ok_or_else(|| ApiError::new(Code::Internal, "the snapshot built is not on disk"))
}

async fn read(dir: PathBuf) -> Result<Option<Snapshot<KvNode>>, ApiError> {
    let loaded = tokio::task::spawn_blocking(move || ferraft_wal::read_saved_snapshot::<KvNode>(&dir)).await;
    match loaded {
        Ok(Ok(snapshot)) => Ok(snapshot),
        Ok(Err(e)) => Err(ApiError::new(Code::Internal, format!("reading the saved snapshot: {e}"))),
        Err(e) => Err(ApiError::new(Code::Internal, format!("reading the saved snapshot: {e}"))),
    }
}
