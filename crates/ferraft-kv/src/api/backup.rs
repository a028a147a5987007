//! `GET /v1/cluster/snapshot/download`: this node's latest snapshot, for a
//! backup taken from any node.

use std::io::{BufReader, Write};
use std::path::PathBuf;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderValue, Response};
use axum::response::IntoResponse;
use bytes::Bytes;
use ferraft::log_id::index_of;
use ferraft::{Snapshot, SnapshotData};

use super::{Ctx, REQUEST_TIMEOUT};
use crate::error::{ApiError, Code};
use crate::kv::KvNode;
use crate::{membership_json, snapshot_format, snapshot_json};

/// The last log index the snapshot covers.
pub const SNAPSHOT_INDEX_HEADER: &str = "x-ferraft-snapshot-index";
/// The term of that entry.
pub const SNAPSHOT_TERM_HEADER: &str = "x-ferraft-snapshot-term";
/// The membership in force at that index, as the API's membership object.
pub const SNAPSHOT_MEMBERSHIP_HEADER: &str = "x-ferraft-snapshot-membership";

/// Answers the latest saved snapshot's state machine as JSON (`{"last_command":
/// N, "kvs": {"key": ["value", index], ...}}`) with what it covers in headers;
/// builds one first if the node has none.
pub(super) async fn download(ctx: &Ctx) -> Response<Body> {
    match latest(ctx).await {
        Ok((snapshot, binary)) => answer(snapshot, binary),
        Err(error) => error.into_response(),
    }
}

/// A binary snapshot is transcoded to the JSON this endpoint always
/// answered; one saved as JSON by an earlier version goes out as it is.
fn answer(snapshot: Snapshot<KvNode>, binary: bool) -> Response<Body> {
    let meta = &snapshot.meta;
    let membership = membership_json::membership(Some(&meta.membership), true).to_string();
    let length = snapshot.data.len();
    let mut response = match binary {
        true => Response::new(Body::from_stream(transcoded(snapshot.data))),
        false => {
            let mut response = Response::new(Body::from_stream(stream_data(snapshot.data)));
            // streamed, but with its length, as when it was one buffer
            response.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(length));
            response
        }
    };
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
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

/// The JSON of a binary snapshot, transcoded a key at a time on a blocking
/// thread and handed over a piece at a time: the snapshot is never held whole.
fn transcoded(data: SnapshotData) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    let (pieces, received) = tokio::sync::mpsc::channel(2);
    tokio::task::spawn_blocking(move || {
        let mut out = PieceWriter { pending: Vec::with_capacity(DOWNLOAD_PIECE_BYTES), pieces };
        let reader = BufReader::with_capacity(DOWNLOAD_PIECE_BYTES, data.reader());
        let written = snapshot_json::transcode(reader, &mut out).map_err(std::io::Error::other);
        if let Err(error) = written.and_then(|()| out.flush()) {
            // the body breaks off instead of ending as if complete
            let _ = out.pieces.blocking_send(Err(error));
        }
    });
    futures_util::stream::unfold(received, |mut received| async move {
        received.recv().await.map(|piece| (piece, received))
    })
}

/// Sends what is written as pieces of about [`DOWNLOAD_PIECE_BYTES`].
struct PieceWriter {
    pending: Vec<u8>,
    pieces: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
}

impl Write for PieceWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(buf);
        if self.pending.len() >= DOWNLOAD_PIECE_BYTES {
            self.flush()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let piece = Bytes::from(std::mem::replace(&mut self.pending, Vec::with_capacity(DOWNLOAD_PIECE_BYTES)));
        let gone = |_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the download was dropped");
        self.pieces.blocking_send(Ok(piece)).map_err(gone)
    }
}

/// The latest snapshot, and whether it is binary (else JSON of an earlier version).
async fn latest(ctx: &Ctx) -> Result<(Snapshot<KvNode>, bool), ApiError> {
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

async fn read(dir: PathBuf) -> Result<Option<(Snapshot<KvNode>, bool)>, ApiError> {
    let loaded = tokio::task::spawn_blocking(move || -> Result<_, String> {
        let snapshot = ferraft_wal::read_saved_snapshot::<KvNode>(&dir).map_err(|e| e.to_string())?;
        let Some(snapshot) = snapshot else { return Ok(None) };
        let head = snapshot.data.read_chunk(0, snapshot_format::MAGIC.len()).map_err(|e| e.to_string())?;
        let binary = head.starts_with(snapshot_format::MAGIC);
        Ok(Some((snapshot, binary)))
    })
    .await;
    match loaded {
        Ok(Ok(snapshot)) => Ok(snapshot),
        Ok(Err(e)) => Err(ApiError::new(Code::Internal, format!("reading the saved snapshot: {e}"))),
        Err(e) => Err(ApiError::new(Code::Internal, format!("reading the saved snapshot: {e}"))),
    }
}
