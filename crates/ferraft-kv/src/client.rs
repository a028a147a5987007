//! A small client of the HTTP API, used by `ctl`, the demo and the tests.
//!
//! It sends each request target exactly as given (hyper's client): a client
//! that parses targets as URLs (reqwest) removes `.` and `..` segments even
//! when they are percent-encoded, so the keys `.` and `..` could not be sent.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
pub use hyper::Method;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// A failed call.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error object.
    #[error("{code}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// The error code.
        code: String,
        /// The message.
        message: String,
        /// The whole error body.
        body: Value,
    },
    /// No connection could be made: nothing was sent, so nothing happened.
    #[error("cannot reach {addr}: {reason}")]
    Unreachable {
        /// The `host:port` tried.
        addr: String,
        /// Why, in a few words ("connection refused").
        reason: String,
    },
    /// No answer in time: the request may or may not have taken effect.
    #[error("no answer from {addr} within {timeout:?}; the outcome is unknown")]
    Timeout {
        /// The `host:port` asked.
        addr: String,
        /// How long the client waited.
        timeout: Duration,
    },
    /// No usable answer (the connection broke after the request, not JSON).
    #[error("{0}")]
    Transport(String),
}

impl ClientError {
    /// The API error code, if the server answered.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Whether another node may be asked instead: this one took nothing in
    /// (unreachable, no leader known, not part of the cluster).
    fn nothing_happened(&self) -> bool {
        matches!(self, ClientError::Unreachable { .. }) || matches!(self.code(), Some("no_leader" | "not_initialized"))
    }
}

/// One node's API.
#[derive(Debug)]
struct Endpoint {
    /// `http://host:port`.
    base: String,
    /// `host:port`, for messages.
    addr: String,
}

/// Talks to a cluster's API through one or more of its nodes.
#[derive(Debug, Clone)]
pub struct Client {
    http: hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>>,
    endpoints: Arc<[Endpoint]>,
    /// The endpoint that answered last: asked first next time.
    preferred: Arc<AtomicUsize>,
    timeout: Duration,
}

impl Client {
    /// A client of the node at `endpoint` (`host:port` or a URL).
    pub fn new(endpoint: &str) -> Self {
        Self::with_timeout(endpoint, Duration::from_secs(40))
    }

    /// A client whose calls give up after `timeout`.
    pub fn with_timeout(endpoint: &str, timeout: Duration) -> Self {
        Self::with_endpoints(&[endpoint], timeout)
    }

    /// A client of several nodes of one cluster: a call goes to the node that
    /// answered last, and moves on to the next one when a node cannot be
    /// reached, knows no leader or is not initialized (nothing happened
    /// there, so asking another is safe). Each attempt gives up after `timeout`.
    pub fn with_endpoints<S: AsRef<str>>(endpoints: &[S], timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let http = hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(connector);
        let endpoints: Arc<[Endpoint]> = endpoints
            .iter()
            .map(|e| {
                let e = e.as_ref().trim().trim_end_matches('/');
                let base = if e.contains("://") { e.to_owned() } else { format!("http://{e}") };
                let addr = base.split_once("://").map_or(e, |(_, rest)| rest).to_owned();
                Endpoint { base, addr }
            })
            .collect();
        Self { http, endpoints, preferred: Arc::new(AtomicUsize::new(0)), timeout }
    }

    /// The base URL of the endpoint asked first.
    pub fn endpoint(&self) -> &str {
        self.endpoints.get(self.first()).map_or("", |e| e.base.as_str())
    }

    fn first(&self) -> usize {
        self.preferred.load(Ordering::Relaxed) % self.endpoints.len().max(1)
    }

    /// Sends a request; `Ok` holds a 2xx answer's JSON.
    pub async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value, ClientError> {
        let body = body.map(|b| Bytes::from(serde_json::to_vec(b).unwrap_or_default()));
        let first = self.first();
        let count = self.endpoints.len();
        let mut result = Err(ClientError::Transport("no endpoint given".into()));
        let mut unreachable = Vec::new();
        for turn in 0..count {
            let at = (first + turn) % count;
            result = self.call_one(&self.endpoints[at], method.clone(), path, body.clone()).await;
            match &result {
                Err(ClientError::Unreachable { addr, reason }) => unreachable.push(format!("{addr} ({reason})")),
                Err(e) if e.nothing_happened() => {}
                _ => {
                    self.preferred.store(at, Ordering::Relaxed);
                    break;
                }
            }
        }
        if count > 1 && unreachable.len() == count {
            return Err(ClientError::Unreachable { addr: "any endpoint".into(), reason: unreachable.join(", ") });
        }
        result
    }

    async fn call_one(
        &self,
        endpoint: &Endpoint,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<Value, ClientError> {
        let uri = format!("{}{path}", endpoint.base);
        let mut request = hyper::Request::builder().method(method).uri(&uri);
        if body.is_some() {
            request = request.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|e| ClientError::Transport(format!("cannot send to {uri}: {e}")))?;
        let exchange = async {
            let response = self.http.request(request).await.map_err(|e| failed(&endpoint.addr, &e))?;
            let status = response.status();
            let bytes = response.into_body().collect().await.map_err(|e| {
                ClientError::Transport(format!("{}: the answer broke off: {e}; the outcome is unknown", endpoint.addr))
            })?;
            Ok((status, bytes.to_bytes()))
        };
        let timed_out = |_| ClientError::Timeout { addr: endpoint.addr.clone(), timeout: self.timeout };
        let (status, bytes) = tokio::time::timeout(self.timeout, exchange).await.map_err(timed_out)??;
        let value: Value = serde_json::from_slice(&bytes).map_err(|_| {
            ClientError::Transport(format!(
                "{}: HTTP {status}: not a JSON answer: {}",
                endpoint.addr,
                String::from_utf8_lossy(&bytes)
            ))
        })?;
        if status.is_success() {
            return Ok(value);
        }
        let error = &value["error"];
        Err(ClientError::Api {
            status: status.as_u16(),
            code: error["code"].as_str().unwrap_or("unknown").to_owned(),
            message: error["message"].as_str().unwrap_or("").to_owned(),
            body: value.clone(),
        })
    }

    /// GET `path`.
    pub async fn get(&self, path: &str) -> Result<Value, ClientError> {
        self.call(Method::GET, path, None).await
    }

    /// POST `body` to `path`.
    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        self.call(Method::POST, path, Some(body)).await
    }

    /// PUT `body` to `path`.
    pub async fn put(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        self.call(Method::PUT, path, Some(body)).await
    }

    /// DELETE `path`.
    pub async fn delete(&self, path: &str) -> Result<Value, ClientError> {
        self.call(Method::DELETE, path, None).await
    }

    /// Reads `key` from this node's own state machine until it holds
    /// `value`; an error says what it held instead, or why it could not be
    /// read, once `timeout` has passed. A follower learns that the newest
    /// writes are committed a heartbeat after the leader acknowledged them,
    /// and the leader's status can lag them by a metrics tick, so an
    /// acknowledged write may be missing for a moment without being lost.
    pub async fn wait_local_value(&self, key: &str, value: &str, timeout: Duration) -> Result<(), String> {
        let path = format!("{}?consistency=local", kv_path(key));
        let deadline = std::time::Instant::now() + timeout;
        loop {
            match self.get(&path).await {
                Ok(read) if read["value"] == value => return Ok(()),
                _ if std::time::Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(10)).await,
                Ok(read) => return Err(format!("has {key} = {}, expected {value}", read["value"])),
                Err(e) => return Err(format!("lost {key}: {e}")),
            }
        }
    }

    /// GET the node's status.
    pub async fn status(&self) -> Result<Value, ClientError> {
        self.get("/v1/cluster/status").await
    }
}

/// The path of `key` under `/v1/kv/`: every byte but RFC 3986's unreserved
/// characters is percent-encoded, `/` and `.` too, so no hop on the way can
/// read the key as path segments and normalise it (`a/../b`, `..`, `//k`).
pub fn kv_path(key: &str) -> String {
    let mut path = String::from("/v1/kv/");
    path.push_str(&encode_component(key));
    path
}

/// `text` with every byte but ASCII letters, digits, `-`, `_` and `~`
/// percent-encoded, for a path segment or a query value.
pub fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The error of a request that got no answer: before a connection was made
/// nothing was sent (unreachable); after, the outcome is unknown.
fn failed(addr: &str, e: &hyper_util::client::legacy::Error) -> ClientError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    let mut io = None;
    while let Some(inner) = source {
        if let Some(found) = inner.downcast_ref::<std::io::Error>() {
            io = Some(found);
        }
        source = inner.source();
    }
    let reason = io.map_or_else(|| e.to_string(), short_io_reason);
    if e.is_connect() {
        ClientError::Unreachable { addr: addr.to_owned(), reason }
    } else {
        ClientError::Transport(format!("{addr}: no answer ({reason}); the outcome is unknown"))
    }
}

/// "Connection refused (os error 111)" as "connection refused".
fn short_io_reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text);
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| first.to_lowercase().chain(chars).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_encoded_as_one_segment_that_no_hop_normalises() {
        assert_eq!(kv_path("/etcd/style/key"), "/v1/kv/%2Fetcd%2Fstyle%2Fkey");
        assert_eq!(kv_path("a/../b"), "/v1/kv/a%2F%2E%2E%2Fb");
        assert_eq!(kv_path(".."), "/v1/kv/%2E%2E");
        assert_eq!(kv_path("a b~c_d-e9"), "/v1/kv/a%20b~c_d-e9");
        assert_eq!(kv_path("é"), "/v1/kv/%C3%A9");
    }

    #[tokio::test]
    async fn a_refused_connection_is_one_short_line() {
        let port = crate::harness::free_port();
        let client = Client::with_timeout(&format!("127.0.0.1:{port}"), Duration::from_secs(5));
        let error = client.status().await.unwrap_err();
        assert_eq!(error.to_string(), format!("cannot reach 127.0.0.1:{port}: connection refused"));
    }
}
