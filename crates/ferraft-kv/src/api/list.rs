//! `GET /v1/kv?prefix=P` or `?start=A&end=B`: keys in order, a page at a time.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::Response;
use axum::response::IntoResponse;
use ferraft::LogIndex;
use serde::Serialize;

use super::forward::serve;
use super::keys::{await_consistency, consistency};
use super::request::Incoming;
use super::{Ctx, DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT, MAX_LIST_PAGE_BYTES, REQUEST_TIMEOUT};
use crate::error::ApiError;
use crate::kv::KvMap;

/// The query parameters a list takes.
const PARAMS: [&str; 5] = ["prefix", "start", "end", "limit", "consistency"];

/// Which keys a list names: all of the conditions given hold.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct KeyRange {
    prefix: Option<String>,
    /// Inclusive.
    start: Option<String>,
    /// Exclusive.
    end: Option<String>,
}

impl KeyRange {
    fn contains(&self, key: &str) -> bool {
        self.prefix.as_deref().is_none_or(|p| key.starts_with(p))
            && self.start.as_deref().is_none_or(|s| key >= s)
            && self.end.as_deref().is_none_or(|e| key < e)
    }
}

/// One entry of a page.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub(super) struct Entry {
    key: String,
    value: String,
    index: LogIndex,
}

/// One page of a list: `next` is the `start` of the following page.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub(super) struct Page {
    kvs: Vec<Entry>,
    more: bool,
    next: Option<String>,
}

/// The first keys of `range` in byte order: at most `limit`, and no more
/// than [`MAX_LIST_PAGE_BYTES`] of keys and values past the first entry.
///
/// The map is unordered (point reads and writes are the hot path), so this
/// scans every key: O(keys) under the read lock, then sorts only the page.
pub(super) fn page(map: &KvMap, range: &KeyRange, limit: usize) -> Page {
    let mut matching: Vec<(&str, &str, LogIndex)> =
        map.iter().filter(|(k, _)| range.contains(k)).map(|(k, (v, i))| (&**k, &**v, *i)).collect();
    // the page and the key after it
    let wanted = limit.saturating_add(1);
    if matching.len() > wanted {
        matching.select_nth_unstable_by_key(wanted - 1, |e| e.0);
        matching.truncate(wanted);
    }
    matching.sort_unstable_by_key(|e| e.0);
    let mut kvs = Vec::new();
    let mut bytes = 0;
    for (key, value, index) in matching.iter().take(limit) {
        bytes += key.len() + value.len();
        if !kvs.is_empty() && bytes > MAX_LIST_PAGE_BYTES {
            break;
        }
        kvs.push(Entry { key: (*key).to_owned(), value: (*value).to_owned(), index: *index });
    }
    let next = matching.get(kvs.len()).map(|e| e.0.to_owned());
    Page { more: next.is_some(), next, kvs }
}

fn parse_range(incoming: &Incoming) -> Result<(KeyRange, usize), ApiError> {
    incoming.refuse_unknown_params(&PARAMS, "a list")?;
    let range = KeyRange {
        prefix: incoming.query_param("prefix")?,
        start: incoming.query_param("start")?,
        end: incoming.query_param("end")?,
    };
    let limit = match incoming.query_param("limit")? {
        None => DEFAULT_LIST_LIMIT,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=MAX_LIST_LIMIT).contains(&n) => n,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "limit {text:?}: give a whole number from 1 to {MAX_LIST_LIMIT}"
                )))
            }
        },
    };
    Ok((range, limit))
}

/// `GET /v1/kv`.
pub(super) async fn list(ctx: Arc<Ctx>, req: Request) -> Response<Body> {
    let incoming = match Incoming::read(req).await {
        Ok(incoming) => incoming,
        Err(e) => return e.into_response(),
    };
    let op = async {
        let (range, limit) = parse_range(&incoming)?;
        await_consistency(&ctx, consistency(&incoming)?).await?;
        Ok(page(&ctx.store.read(), &range, limit))
    };
    serve(&ctx, &incoming, REQUEST_TIMEOUT, op).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(keys: &[&str]) -> KvMap {
        keys.iter()
            .enumerate()
            .map(|(i, k)| (Arc::from(*k), (Arc::from(format!("v{i}")), LogIndex(i as u64 + 1))))
            .collect()
    }

    fn keys(page: &Page) -> Vec<&str> {
        page.kvs.iter().map(|e| e.key.as_str()).collect()
    }

    #[test]
    fn a_prefix_lists_its_keys_in_byte_order_a_page_at_a_time() {
        let m = map(&["b/2", "a", "b/1", "b/3", "b0", "b/"]);
        let mut range = KeyRange { prefix: Some("b/".into()), ..KeyRange::default() };
        let first = page(&m, &range, 2);
        assert_eq!((keys(&first), first.more, first.next.as_deref()), (vec!["b/", "b/1"], true, Some("b/2")));
        range.start = first.next;
        let second = page(&m, &range, 2);
        assert_eq!((keys(&second), second.more, second.next.as_deref()), (vec!["b/2", "b/3"], false, None));
    }

    #[test]
    fn a_range_includes_its_start_and_excludes_its_end() {
        let m = map(&["a", "b", "c", "d"]);
        let range = KeyRange { start: Some("b".into()), end: Some("d".into()), ..KeyRange::default() };
        let all = page(&m, &range, 10);
        assert_eq!((keys(&all), all.more), (vec!["b", "c"], false));
        assert_eq!(all.kvs[0], Entry { key: "b".into(), value: "v1".into(), index: LogIndex(2) });
    }

    #[test]
    fn a_page_of_large_values_ends_early_but_holds_at_least_one_entry() {
        let big = "x".repeat(MAX_LIST_PAGE_BYTES);
        let m: KvMap = ["k1", "k2"].iter().map(|k| (Arc::from(*k), (Arc::from(big.as_str()), LogIndex(1)))).collect();
        let first = page(&m, &KeyRange::default(), 10);
        assert_eq!((keys(&first), first.next.as_deref()), (vec!["k1"], Some("k2")));
    }
}
