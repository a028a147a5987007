//! `ferraft ctl list`: keys in order, by prefix or range, one page or all of
//! them (following the server's `next` key from page to page).

use serde_json::{json, Value};

use crate::client::{encode_component, Client, ClientError};
use crate::ctl::{table, text, Answer, CtlError};

/// Which keys to list.
#[derive(Debug, Clone, Default)]
pub struct Range {
    /// Keys that start with this.
    pub prefix: Option<String>,
    /// The first key (inclusive).
    pub start: Option<String>,
    /// The end key (exclusive).
    pub end: Option<String>,
    /// At most this many keys per page.
    pub limit: Option<u64>,
    /// The read consistency (the server's default when `None`).
    pub consistency: Option<String>,
}

impl Range {
    /// `GET /v1/kv?...` for the page that starts at `from` (else at `start`).
    pub fn path(&self, from: Option<&str>) -> String {
        let mut query = Vec::new();
        let mut add = |name: &str, value: &str| query.push(format!("{name}={}", encode_component(value)));
        if let Some(prefix) = &self.prefix {
            add("prefix", prefix);
        }
        if let Some(start) = from.or(self.start.as_deref()) {
            add("start", start);
        }
        if let Some(end) = &self.end {
            add("end", end);
        }
        if let Some(limit) = self.limit {
            add("limit", &limit.to_string());
        }
        if let Some(consistency) = &self.consistency {
            add("consistency", consistency);
        }
        if query.is_empty() {
            "/v1/kv".into()
        } else {
            format!("/v1/kv?{}", query.join("&"))
        }
    }
}

/// One page, or with `all` every page, merged into one answer of the
/// server's shape (`more` false, `next` null once all were read).
pub(crate) async fn list(client: &Client, range: &Range, all: bool) -> Result<Answer, CtlError> {
    let mut kvs: Vec<Value> = Vec::new();
    let mut from: Option<String> = None;
    loop {
        let page = client.get(&range.path(from.as_deref())).await?;
        let Some(page_kvs) = page["kvs"].as_array() else {
            return Err(unusable(&page, "no kvs list"));
        };
        kvs.extend(page_kvs.iter().cloned());
        let more = page["more"] == true;
        let next = page["next"].as_str().map(str::to_owned);
        if !all || !more {
            return Ok(answer(kvs, more, next));
        }
        let Some(next) = next else { return Err(unusable(&page, "more keys but no next key")) };
        // a server that answers the same page again would keep us here forever
        if from.as_deref().is_some_and(|from| next.as_str() <= from) {
            return Err(unusable(&page, "the next key does not move forward"));
        }
        from = Some(next);
    }
}

fn unusable(page: &Value, why: &str) -> CtlError {
    CtlError::Client(ClientError::Transport(format!("unusable list answer ({why}): {page}")))
}

fn answer(kvs: Vec<Value>, more: bool, next: Option<String>) -> Answer {
    let rows: Vec<Vec<String>> =
        kvs.iter().map(|kv| vec![text(&kv["key"]), text(&kv["index"]), text(&kv["value"])]).collect();
    let mut human = table(&["KEY", "INDEX", "VALUE"], &rows);
    if let Some(next) = next.as_deref().filter(|_| more) {
        human.push_str(&format!("(more keys from {next:?}: --start with it, or --all)\n"));
    }
    Answer { value: json!({ "kvs": kvs, "more": more, "next": next }), human, exit_code: 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_ask_from_the_next_key_and_keep_the_rest_of_the_range() {
        let range = Range { prefix: Some("a/".into()), limit: Some(2), ..Range::default() };
        assert_eq!(range.path(None), "/v1/kv?prefix=a%2F&limit=2");
        assert_eq!(range.path(Some("a/c d")), "/v1/kv?prefix=a%2F&start=a%2Fc%20d&limit=2");
        let range = Range { consistency: Some("local".into()), ..range };
        assert_eq!(range.path(Some("a/d")), "/v1/kv?prefix=a%2F&start=a%2Fd&limit=2&consistency=local");
        let range = Range { start: Some("b".into()), end: Some("f".into()), ..Range::default() };
        assert_eq!(range.path(None), "/v1/kv?start=b&end=f");
        assert_eq!(range.path(Some("d")), "/v1/kv?start=d&end=f");
        assert_eq!(Range::default().path(None), "/v1/kv");
    }
}
