//! A lean HTTP/1.1 keep-alive connection for the closed-loop clients of
//! `ferraft bench cluster`.
//!
//! reqwest (kept for `ctl`, the demo and the tests) parses a URL, runs IDNA
//! on the host, builds a header map from strings, looks up a pooled
//! connection and hands the request to a connection task on every call: in
//! the profile that cost 64-96 µs of client CPU per put, a third of a 2-core
//! machine taken from the servers under test. Here each client owns one
//! connection and drives it in its own task (no connection task, no pool):
//! the path is a plain string, the body prebuilt bytes, and a successful
//! answer's body is read and dropped unparsed.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, Connection, SendRequest};
use hyper::header::{HeaderValue, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

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
    /// The connection failed or was closed mid-exchange.
    #[error("HTTP exchange failed: {0}")]
    Http(#[from] hyper::Error),
    /// No answer within the timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// One open connection: the request sender and the connection it feeds,
/// polled by whoever sends (see [`HttpConnection::send`]).
struct Open {
    sender: SendRequest<Full<Bytes>>,
    connection: Connection<TokioIo<TcpStream>, Full<Bytes>>,
}

/// One keep-alive connection to a server's HTTP API, opened on first use and
/// again after a failure.
pub struct HttpConnection {
    addr: String,
    host: HeaderValue,
    timeout: Duration,
    open: Option<Open>,
}

impl HttpConnection {
    /// A connection to `addr` (`host:port`), not opened yet; every exchange
    /// gives up after `timeout`.
    pub fn new(addr: &str, timeout: Duration) -> Result<Self, ExchangeError> {
        let host = HeaderValue::from_str(addr).map_err(|_| ExchangeError::Path(addr.to_owned()))?;
        Ok(Self { addr: addr.to_owned(), host, timeout, open: None })
    }

    /// Checks that `path` is a valid request target (origin form).
    pub fn check_path(path: &str) -> Result<(), ExchangeError> {
        Uri::try_from(path).map(drop).map_err(|_| ExchangeError::Path(path.to_owned()))
    }

    /// PUT `body` (JSON) to `path`; the answer's status.
    pub async fn put(&mut self, path: String, body: Bytes) -> Result<StatusCode, ExchangeError> {
        self.send(Method::PUT, path, Some(body)).await
    }

    /// GET `path`; the answer's status.
    pub async fn get(&mut self, path: String) -> Result<StatusCode, ExchangeError> {
        self.send(Method::GET, path, None).await
    }

    /// Sends one request and reads its whole answer, whose status it returns
    /// (the body is dropped). After an error the connection is closed; the
    /// next call opens a new one.
    pub async fn send(
        &mut self,
        method: Method,
        path: String,
        body: Option<Bytes>,
    ) -> Result<StatusCode, ExchangeError> {
        let uri = Uri::try_from(path).map_err(|e| ExchangeError::Path(e.to_string()))?;
        let mut request = Request::new(Full::new(body.clone().unwrap_or_default()));
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        request.headers_mut().insert(HOST, self.host.clone());
        if body.is_some() {
            request.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        match tokio::time::timeout(self.timeout, self.exchange(request)).await {
            Ok(result) => result,
            Err(_) => Err(ExchangeError::Timeout(self.timeout)),
        }
    }

    /// One request and its answer; the connection is put back only after a
    /// complete exchange, so an error or a timeout leaves it closed.
    async fn exchange(&mut self, request: Request<Full<Bytes>>) -> Result<StatusCode, ExchangeError> {
        let Open { mut sender, mut connection } = match self.open.take() {
            Some(open) => open,
            None => self.connect().await?,
        };
        let (result, reusable) = {
            let answered = answer(&mut sender, request);
            tokio::pin!(answered);
            // The connection is polled here, beside the exchange, instead of
            // in a task of its own: a request then wakes one task, not two.
            tokio::select! {
                result = &mut answered => (result, true),
                ended = &mut connection => {
                    // a server may answer and close at once: the answer may be complete
                    let result = answered.await.map_err(|answer_error| match ended {
                        Ok(()) => answer_error,
                        Err(e) => ExchangeError::Http(e),
                    });
                    (result, false)
                }
            }
        };
        if reusable && result.is_ok() {
            self.open = Some(Open { sender, connection });
        }
        result
    }

    async fn connect(&self) -> Result<Open, ExchangeError> {
        let connect_error = |source| ExchangeError::Connect { addr: self.addr.clone(), source };
        let stream = TcpStream::connect(self.addr.as_str()).await.map_err(connect_error)?;
        stream.set_nodelay(true).map_err(connect_error)?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        Ok(Open { sender, connection })
    }
}

/// Sends `request` once the connection takes one and reads the answer to its end.
async fn answer(
    sender: &mut SendRequest<Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> Result<StatusCode, ExchangeError> {
    sender.ready().await?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let mut body = response.into_body();
    while let Some(frame) = body.frame().await {
        frame?;
    }
    Ok(status)
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
        // the scripted server is gone: reconnecting is refused, never a hang
        assert!(matches!(connection.get("/v1/kv/a".into()).await, Err(ExchangeError::Connect { .. })));
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
