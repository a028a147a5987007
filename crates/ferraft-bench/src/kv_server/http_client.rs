//! A lean HTTP/1.1 keep-alive connection for the closed-loop clients of
//! `ferraft bench cluster`.
//!
//! reqwest (kept for `ctl`, the demo and the tests) parses a URL, runs IDNA
//! on the host, builds a header map from strings, looks up a pooled
//! connection and hands the request to a connection task on every call: in
//! the profile that cost 64-96 µs of client CPU per put, a third of a 2-core
//! machine taken from the servers under test. Even hyper's own client
//! connection passes each request through a channel to its dispatcher and
//! builds a header map for each answer. Here each closed-loop client owns one
//! connection and one request buffer and one answer buffer, both reused: a
//! request is one `write`, its answer is read into the buffer, its head
//! parsed in place (httparse, which hyper itself uses) for the status and the
//! length, and its body skipped unparsed.

use std::io::Write as _;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The most answer headers read (the API sends four or five).
const MAX_HEADERS: usize = 32;
/// The most bytes of an answer head read.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Why an exchange produced no answer.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// The path is not a valid request target.
    #[error("invalid request path {0:?}")]
    Path(String),
    /// Connecting failed.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The server's address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// Sending or receiving failed.
    #[error("HTTP exchange failed: {0}")]
    Io(#[from] std::io::Error),
    /// The server closed the connection before a complete answer.
    #[error("the server closed the connection")]
    Closed,
    /// The answer is not HTTP/1.1 this client reads (malformed, chunked, no length).
    #[error("unreadable answer: {0}")]
    Answer(String),
    /// No answer within the timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// One keep-alive connection to a server's HTTP API, opened on first use and
/// again after a failure.
pub struct HttpConnection {
    addr: String,
    timeout: Duration,
    stream: Option<TcpStream>,
    /// The request being sent, rebuilt in place for each one.
    request: Vec<u8>,
    /// The answer being read.
    answer: Vec<u8>,
}

/// What an answer's head says.
struct Head {
    status: StatusCode,
    head_bytes: usize,
    body_bytes: usize,
    close: bool,
}

impl HttpConnection {
    /// A connection to `addr` (`host:port`), not opened yet; every exchange
    /// gives up after `timeout`.
    pub fn new(addr: &str, timeout: Duration) -> Result<Self, ExchangeError> {
        if !addr.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ExchangeError::Path(addr.to_owned()));
        }
        Ok(Self {
            addr: addr.to_owned(),
            timeout,
            stream: None,
            request: Vec::with_capacity(1024),
            answer: Vec::with_capacity(4096),
        })
    }

    /// Checks that `path` is a valid request target (origin form, visible ASCII).
    pub fn check_path(path: &str) -> Result<(), ExchangeError> {
        if path.starts_with('/') && path.bytes().all(|b| b.is_ascii_graphic()) {
            return Ok(());
        }
        Err(ExchangeError::Path(path.to_owned()))
    }

    /// PUT `body` (JSON) to `path`; the answer's status.
    pub async fn put(&mut self, path: String, body: Bytes) -> Result<StatusCode, ExchangeError> {
        self.send(Method::PUT, &path, Some(&body)).await
    }

    /// GET `path`; the answer's status.
    pub async fn get(&mut self, path: String) -> Result<StatusCode, ExchangeError> {
        self.send(Method::GET, &path, None).await
    }

    /// Sends one request and reads its whole answer, whose status it returns
    /// (the body is dropped). After an error the connection is closed; the
    /// next call opens a new one.
    pub async fn send(&mut self, method: Method, path: &str, body: Option<&[u8]>) -> Result<StatusCode, ExchangeError> {
        Self::check_path(path)?;
        self.build_request(&method, path, body);
        let result = match tokio::time::timeout(self.timeout, self.exchange()).await {
            Ok(result) => result,
            Err(_) => Err(ExchangeError::Timeout(self.timeout)),
        };
        match &result {
            Ok(head) if !head.close => {}
            _ => self.stream = None,
        }
        result.map(|head| head.status)
    }

    fn build_request(&mut self, method: &Method, path: &str, body: Option<&[u8]>) {
        let request = &mut self.request;
        request.clear();
        request.extend_from_slice(method.as_str().as_bytes());
        request.push(b' ');
        request.extend_from_slice(path.as_bytes());
        request.extend_from_slice(b" HTTP/1.1\r\nhost: ");
        request.extend_from_slice(self.addr.as_bytes());
        if let Some(body) = body {
            request.extend_from_slice(b"\r\ncontent-type: application/json\r\ncontent-length: ");
            let _ = write!(request, "{}", body.len());
            request.extend_from_slice(b"\r\n\r\n");
            request.extend_from_slice(body);
        } else {
            request.extend_from_slice(b"\r\n\r\n");
        }
    }

    async fn exchange(&mut self) -> Result<Head, ExchangeError> {
        if self.stream.is_none() {
            let connect_error = |source| ExchangeError::Connect { addr: self.addr.clone(), source };
            let stream = TcpStream::connect(self.addr.as_str()).await.map_err(connect_error)?;
            stream.set_nodelay(true).map_err(connect_error)?;
            self.stream = Some(stream);
        }
        let Some(stream) = self.stream.as_mut() else { return Err(ExchangeError::Closed) };
        stream.write_all(&self.request).await?;
        self.answer.clear();
        let head = loop {
            if let Some(head) = parse_head(&self.answer)? {
                break head;
            }
            if self.answer.len() > MAX_HEAD_BYTES {
                return Err(ExchangeError::Answer("the head is too long".into()));
            }
            read_more(stream, &mut self.answer).await?;
        };
        let total = head.head_bytes + head.body_bytes;
        while self.answer.len() < total {
            read_more(stream, &mut self.answer).await?;
        }
        if self.answer.len() > total {
            // nothing was asked for beyond this answer
            return Err(ExchangeError::Answer("bytes after the answer".into()));
        }
        Ok(head)
    }
}

async fn read_more(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Result<(), ExchangeError> {
    buffer.reserve(4096);
    if stream.read_buf(buffer).await? == 0 {
        return Err(ExchangeError::Closed);
    }
    Ok(())
}

/// The head of the answer in `bytes`, `None` while it is incomplete.
fn parse_head(bytes: &[u8]) -> Result<Option<Head>, ExchangeError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let head_bytes = match response.parse(bytes) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(ExchangeError::Answer(e.to_string())),
    };
    let code = response.code.unwrap_or(0);
    let status = StatusCode::from_u16(code).map_err(|_| ExchangeError::Answer(format!("status {code}")))?;
    let mut body_bytes = None;
    let mut close = response.version == Some(0);
    for header in response.headers.iter() {
        if header.name.eq_ignore_ascii_case("content-length") {
            let length = std::str::from_utf8(header.value).ok().and_then(|v| v.trim().parse().ok());
            body_bytes = Some(length.ok_or_else(|| ExchangeError::Answer("bad content-length".into()))?);
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(ExchangeError::Answer("chunked answers are not read".into()));
        } else if header.name.eq_ignore_ascii_case("connection") {
            close |= header.value.eq_ignore_ascii_case(b"close");
        }
    }
    let bodiless = status.is_informational() || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED;
    let body_bytes = match body_bytes {
        Some(n) => n,
        None if bodiless => 0,
        None => return Err(ExchangeError::Answer("no content-length".into())),
    };
    Ok(Some(Head { status, head_bytes, body_bytes, close }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server that answers each request on one connection with the next
    /// status of `statuses`, then closes the connection.
    async fn scripted_server(statuses: Vec<u16>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            for status in statuses {
                let mut seen = Vec::new();
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = stream.read(&mut buf).await.unwrap();
                    assert!(n > 0, "the client closed early");
                    seen.extend_from_slice(&buf[..n]);
                }
                let head = String::from_utf8_lossy(&seen).into_owned();
                let length = head
                    .lines()
                    .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length: ").map(str::to_owned))
                    .map_or(0, |n| n.trim().parse::<usize>().unwrap());
                let body_seen = seen.len() - (head.find("\r\n\r\n").unwrap() + 4);
                let mut rest = vec![0u8; length - body_seen];
                stream.read_exact(&mut rest).await.unwrap();
                let answer = format!("HTTP/1.1 {status} X\r\ncontent-length: 11\r\n\r\n{{\"index\":1}}");
                stream.write_all(answer.as_bytes()).await.unwrap();
            }
        });
        addr
    }

    #[tokio::test]
    async fn statuses_are_returned_and_the_connection_is_kept() {
        let addr = scripted_server(vec![200, 503, 200]).await;
        let mut connection = HttpConnection::new(&addr, Duration::from_secs(5)).unwrap();
        let body = Bytes::from_static(br#"{"value":"v"}"#);
        assert_eq!(connection.put("/v1/kv/a".into(), body.clone()).await.unwrap(), StatusCode::OK);
        assert_eq!(connection.put("/v1/kv/b".into(), body).await.unwrap(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(connection.get("/v1/kv/a?consistency=lease".into()).await.unwrap(), StatusCode::OK);
    }

    #[tokio::test]
    async fn an_answer_then_a_close_counts_and_the_next_call_reconnects() {
        let addr = scripted_server(vec![200]).await;
        let mut connection = HttpConnection::new(&addr, Duration::from_secs(5)).unwrap();
        assert_eq!(connection.get("/v1/kv/a".into()).await.unwrap(), StatusCode::OK);
        // the server has closed the kept connection: that call fails, the next one reconnects (refused)
        assert!(connection.get("/v1/kv/a".into()).await.is_err());
        assert!(matches!(connection.get("/v1/kv/a".into()).await, Err(ExchangeError::Connect { .. })));
    }

    #[test]
    fn heads_are_parsed_for_status_length_and_close() {
        let bytes = b"HTTP/1.1 404 Not Found\r\nContent-Length: 5\r\n\r\n";
        let head = parse_head(bytes).unwrap().unwrap();
        assert_eq!(
            (head.status, head.head_bytes, head.body_bytes, head.close),
            (StatusCode::NOT_FOUND, bytes.len(), 5, false)
        );
        let head = parse_head(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").unwrap().unwrap();
        assert!(head.close);
        assert!(parse_head(b"HTTP/1.1 200 OK\r\ncontent-len").unwrap().is_none());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\n\r\n").is_err());
        assert!(parse_head(b"garbage\r\n\r\n").is_err());
    }

    #[tokio::test]
    async fn a_close_without_an_answer_is_an_error() {
        let addr = scripted_server(vec![]).await;
        let mut connection = HttpConnection::new(&addr, Duration::from_secs(5)).unwrap();
        assert!(connection.get("/v1/kv/a".into()).await.is_err());
    }

    #[test]
    fn invalid_paths_are_rejected() {
        assert!(HttpConnection::check_path("/v1/kv/a?consistency=lease").is_ok());
        assert!(HttpConnection::check_path("/v1/kv/a b").is_err());
    }
}
