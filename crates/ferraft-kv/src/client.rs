//! A small client of the HTTP API, used by `ctl`, the demo and the tests.

use std::time::Duration;

use reqwest::Method;
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
    /// No usable answer (connection refused, timeout, not JSON).
    #[error("{0}")]
    Transport(String),
}

impl ClientError {
    /// The API error code, if the server answered.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            ClientError::Transport(_) => None,
        }
    }
}

/// Talks to one node's API.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    endpoint: String,
}

impl Client {
    /// A client of the node at `endpoint` (`host:port` or a URL).
    pub fn new(endpoint: &str) -> Self {
        Self::with_timeout(endpoint, Duration::from_secs(40))
    }

    /// A client whose calls give up after `timeout`.
    pub fn with_timeout(endpoint: &str, timeout: Duration) -> Self {
        let http = reqwest::Client::builder().no_proxy().timeout(timeout).build().expect("a plain HTTP client builds");
        let endpoint = endpoint.trim_end_matches('/');
        let endpoint = if endpoint.contains("://") { endpoint.to_owned() } else { format!("http://{endpoint}") };
        Self { http, endpoint }
    }

    /// The base URL.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Sends a request; `Ok` holds a 2xx answer's JSON.
    pub async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value, ClientError> {
        let mut request = self.http.request(method, format!("{}{path}", self.endpoint));
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| ClientError::Transport(describe(&e)))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| ClientError::Transport(describe(&e)))?;
        let value: Value = serde_json::from_slice(&bytes).map_err(|_| {
            ClientError::Transport(format!("HTTP {status}: not a JSON answer: {}", String::from_utf8_lossy(&bytes)))
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

/// The path of `key` under `/v1/kv/`, percent-encoded.
pub fn kv_path(key: &str) -> String {
    let mut path = String::from("/v1/kv/");
    for byte in key.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~/".contains(&byte) {
            path.push(byte as char);
        } else {
            path.push_str(&format!("%{byte:02X}"));
        }
    }
    path
}

fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        text = format!("{text}: {inner}");
        source = inner.source();
    }
    text
}
