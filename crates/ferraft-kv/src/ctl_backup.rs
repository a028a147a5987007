//! `ferraft ctl backup FILE` and `ferraft ctl restore FILE`: a node's snapshot
//! saved to a file, and every key of such a file written into a cluster.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::client::{kv_path, Client};
use crate::ctl::CtlError;

/// Writers that restore keys at the same time.
pub const DEFAULT_RESTORE_CONCURRENCY: usize = 32;

/// A progress line every this many keys.
const PROGRESS_EVERY: usize = 1000;

/// The snapshot format `GET /v1/cluster/snapshot/download` answers.
#[derive(Deserialize)]
struct Backup {
    last_command: u64,
    kvs: BTreeMap<String, (String, u64)>,
}

/// Saves the node's latest snapshot to `path` (written to a temporary file
/// beside it, then renamed, so a crash never leaves half a backup).
pub async fn backup(client: &Client, path: &Path) -> Result<Value, CtlError> {
    let snapshot = client.get("/v1/cluster/snapshot/download").await?;
    let parsed: Backup = serde_json::from_value(snapshot.clone())
        .map_err(|e| CtlError::Usage(format!("the node answered something that is not a snapshot: {e}")))?;
    let bytes = serde_json::to_vec(&snapshot).expect("a JSON value serializes");
    let temporary = path.with_extension("partial");
    std::fs::write(&temporary, &bytes)
        .and_then(|()| std::fs::rename(&temporary, path))
        .map_err(|e| CtlError::Usage(format!("cannot write {}: {e}", path.display())))?;
    Ok(
        json!({ "file": path.display().to_string(), "keys": parsed.kvs.len(), "last_command": parsed.last_command, "bytes": bytes.len() }),
    )
}

/// Writes every key of the backup at `path` into the cluster `client`
/// reaches. Refuses a cluster that already holds keys unless `into_non_empty`.
pub async fn restore(
    client: &Client,
    path: &Path,
    concurrency: usize,
    into_non_empty: bool,
    progress: bool,
) -> Result<Value, CtlError> {
    let text = std::fs::read(path).map_err(|e| CtlError::Usage(format!("cannot read {}: {e}", path.display())))?;
    let backup: Backup = serde_json::from_slice(&text)
        .map_err(|e| CtlError::Usage(format!("{} is not a ferraft backup: {e}", path.display())))?;
    if !into_non_empty {
        let present = client.get("/v1/kv?limit=1").await?;
        if present["kvs"].as_array().is_some_and(|kvs| !kvs.is_empty()) {
            return Err(CtlError::Usage(
                "the cluster already holds keys: restore into a fresh cluster, or pass --into-non-empty to overwrite"
                    .into(),
            ));
        }
    }
    let total = backup.kvs.len();
    let pending = Arc::new(std::sync::Mutex::new(backup.kvs.into_iter()));
    let done = Arc::new(AtomicUsize::new(0));
    let mut writers = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (client, pending, done) = (client.clone(), pending.clone(), done.clone());
        writers.spawn(async move {
            loop {
                let next = pending.lock().expect("no writer panics holding it").next();
                let Some((key, (value, _index))) = next else { return Ok::<(), CtlError>(()) };
                client.put(&kv_path(&key), &json!({ "value": value })).await?;
                let restored = done.fetch_add(1, Ordering::Relaxed) + 1;
                if progress && restored % PROGRESS_EVERY == 0 {
                    eprintln!("restored {restored}/{total} keys");
                }
            }
        });
    }
    while let Some(finished) = writers.join_next().await {
        finished.map_err(|e| CtlError::Usage(format!("a restore writer failed: {e}")))??;
    }
    Ok(json!({ "file": path.display().to_string(), "restored": done.load(Ordering::Relaxed), "keys": total }))
}
