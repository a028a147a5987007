//! `GET`, `PUT`, `DELETE /v1/kv/{key}` and `POST /v1/kv/{key}/cas`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{Method, Response};
use axum::response::IntoResponse;
use ferraft::LogIndex;
use serde::{Deserialize, Serialize};

use super::forward::serve;
use super::request::{decode_key, encode_key, Incoming};
use super::{Ctx, MAX_VALUE_BYTES, REQUEST_TIMEOUT};
use crate::error::{ApiError, Code};
use crate::kv::{Command, CommandResponse};

/// The query parameters a read of a key takes.
const READ_PARAMS: [&str; 1] = ["consistency"];

#[derive(Deserialize)]
struct PutBody {
    value: String,
}

/// Both fields are required, `null` allowed: a missing one is refused, not
/// taken as `null` (which would make `{"expect": "v"}` a delete). serde
/// defaults a missing `Option` to `None` unless it has its own deserializer.
#[derive(Deserialize)]
struct CasBody {
    #[serde(deserialize_with = "Option::deserialize")]
    expect: Option<String>,
    #[serde(deserialize_with = "Option::deserialize")]
    value: Option<String>,
}

/// How fresh a read must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Consistency {
    Linearizable,
    Lease,
    Local,
}

/// The answer of a key-value call. The fields are in alphabetical order, as
/// the API has always written them.
#[derive(Serialize)]
#[serde(untagged)]
enum KvReply {
    Put { index: LogIndex },
    Delete { deleted: bool, index: LogIndex },
    Cas { current: Option<String>, index: LogIndex, succeeded: bool },
    Read(ReadReply),
}

#[derive(Serialize)]
struct ReadReply {
    index: LogIndex,
    value: String,
}

/// Reads the request and its key (from the raw path, less `suffix`); the
/// request is forwarded under the key re-encoded, so no hop reads it as
/// path segments.
async fn read_keyed(req: Request, suffix: &str) -> Result<(Incoming, String), ApiError> {
    let mut incoming = Incoming::read(req).await?;
    let raw = incoming.raw_path().strip_prefix("/v1/kv/").unwrap_or("");
    let key = decode_key(raw.strip_suffix(suffix).unwrap_or(raw))?;
    incoming.forward_as(format!("/v1/kv/{}{suffix}", encode_key(&key)));
    Ok((incoming, key))
}

/// `GET`, `PUT` or `DELETE /v1/kv/{key}`.
pub(super) async fn key(ctx: Arc<Ctx>, req: Request) -> Response<Body> {
    let (incoming, key) = match read_keyed(req, "").await {
        Ok(read) => read,
        Err(e) => return e.into_response(),
    };
    let op = async {
        match incoming.method {
            Method::PUT => {
                incoming.refuse_unknown_params(&[], "a write")?;
                let body: PutBody = incoming.json()?;
                check_value(&body.value)?;
                write(&ctx, Command::Put { key, value: body.value.into() }).await
            }
            Method::DELETE => {
                incoming.refuse_unknown_params(&[], "a write")?;
                write(&ctx, Command::Delete { key }).await
            }
            _ => {
                incoming.refuse_unknown_params(&READ_PARAMS, "a read")?;
                read(&ctx, key, consistency(&incoming)?).await.map(KvReply::Read)
            }
        }
    };
    serve(&ctx, &incoming, REQUEST_TIMEOUT, op).await
}

/// `POST /v1/kv/{key}/cas`.
pub(super) async fn cas(ctx: Arc<Ctx>, req: Request) -> Response<Body> {
    let (incoming, key) = match read_keyed(req, "/cas").await {
        Ok(read) => read,
        Err(e) => return e.into_response(),
    };
    let op = async {
        incoming.refuse_unknown_params(&[], "a write")?;
        let body: CasBody = incoming.json()?;
        for value in body.expect.iter().chain(&body.value) {
            check_value(value)?;
        }
        write(&ctx, Command::Cas { key, expect: body.expect, value: body.value }).await
    };
    serve(&ctx, &incoming, REQUEST_TIMEOUT, op).await
}

fn check_value(value: &str) -> Result<(), ApiError> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(ApiError::bad_request(format!(
            "the value is {} bytes; at most {MAX_VALUE_BYTES} allowed",
            value.len()
        )));
    }
    Ok(())
}

/// The `consistency` query parameter (default: linearizable).
pub(super) fn consistency(incoming: &Incoming) -> Result<Consistency, ApiError> {
    match incoming.query_param("consistency")?.as_deref() {
        None | Some("linearizable") => Ok(Consistency::Linearizable),
        Some("lease") => Ok(Consistency::Lease),
        Some("local") => Ok(Consistency::Local),
        Some(other) => {
            Err(ApiError::bad_request(format!("unknown consistency {other:?}: use linearizable, lease or local")))
        }
    }
}

async fn write(ctx: &Ctx, command: Command) -> Result<KvReply, ApiError> {
    ctx.require_initialized()?;
    // on a follower the write goes to the leader over the Raft transport
    let written = ctx.raft.client_write_here(command).await?;
    Ok(match written.response {
        CommandResponse::Put { index } | CommandResponse::Noop { index } => KvReply::Put { index },
        CommandResponse::Delete { index, deleted } => KvReply::Delete { deleted, index },
        CommandResponse::Cas { succeeded, current, index } => KvReply::Cas { current, index, succeeded },
    })
}

/// Waits until this node's state machine may be read at `consistency`.
pub(super) async fn await_consistency(ctx: &Ctx, consistency: Consistency) -> Result<(), ApiError> {
    ctx.require_initialized()?;
    match consistency {
        // served here, on a follower too: the leader only confirms a read index
        Consistency::Linearizable => {
            ctx.raft.ensure_linearizable_here().await?;
        }
        Consistency::Lease => {
            ctx.raft.lease_read_here().await?;
        }
        Consistency::Local => {}
    }
    Ok(())
}

async fn read(ctx: &Ctx, key: String, consistency: Consistency) -> Result<ReadReply, ApiError> {
    await_consistency(ctx, consistency).await?;
    match ctx.store.get(&key) {
        Some((value, index)) => Ok(ReadReply { index, value }),
        None => Err(ApiError::new(Code::NotFound, format!("key {key:?} not found"))),
    }
}
