//! Reading a request: its body (bounded), its query parameters, and the
//! percent-decoding of keys taken from the raw path.

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{Method, Uri};
use ferraft::NodeId;
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;

use super::{FORWARDED_BY_HEADER, FORWARDED_HEADER, MAX_BODY_BYTES, MAX_KEY_BYTES};
use crate::error::ApiError;

/// A request as read: kept whole so it can be forwarded.
pub(super) struct Incoming {
    pub(super) method: Method,
    uri: Uri,
    pub(super) body: Bytes,
    pub(super) hops: u32,
    /// The node that forwarded this request, if any.
    pub(super) from: Option<NodeId>,
    /// The path and query this request is forwarded with, when it differs
    /// from the one received (a key is re-encoded so no hop can change it).
    forward_path: Option<String>,
}

/// How much of a body over [`MAX_BODY_BYTES`] is read and dropped before the
/// refusal is sent: a client that writes its whole body before it reads
/// the answer then gets the `bad_request` instead of a broken pipe. Beyond
/// it, the connection is closed.
const DRAIN_BYTES: usize = 64 * 1024 * 1024;

/// Reads a body of at most [`MAX_BODY_BYTES`]; a larger one is refused once
/// read (up to [`DRAIN_BYTES`]).
async fn read_body(mut body: Body) -> Result<Bytes, ApiError> {
    let mut data = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ApiError::bad_request(format!("reading the request body: {e}")))?;
        let Ok(chunk) = frame.into_data() else { continue };
        seen += chunk.len();
        if seen > DRAIN_BYTES {
            break;
        }
        if seen <= MAX_BODY_BYTES {
            data.extend_from_slice(&chunk);
        }
    }
    if seen > MAX_BODY_BYTES {
        return Err(ApiError::bad_request(format!("request body larger than {MAX_BODY_BYTES} bytes")));
    }
    Ok(Bytes::from(data))
}

impl Incoming {
    pub(super) async fn read(req: Request) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        let body = read_body(body).await?;
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
        let hops: Option<u64> = header(FORWARDED_HEADER);
        Ok(Self {
            method: parts.method,
            hops: hops.map_or(0, |h| u32::try_from(h).unwrap_or(u32::MAX)),
            from: header(FORWARDED_BY_HEADER).map(NodeId),
            uri: parts.uri,
            body,
            forward_path: None,
        })
    }

    /// The path exactly as received: never normalised.
    pub(super) fn raw_path(&self) -> &str {
        self.uri.path()
    }

    /// The path and query to send to the leader.
    pub(super) fn forward_path(&self) -> &str {
        match &self.forward_path {
            Some(path) => path,
            None => self.uri.path_and_query().map_or_else(|| self.uri.path(), |p| p.as_str()),
        }
    }

    /// Forwards this request as `path` (with the query received).
    pub(super) fn forward_as(&mut self, path: String) {
        self.forward_path = Some(match self.uri.query() {
            Some(query) => format!("{path}?{query}"),
            None => path,
        });
    }

    /// The body as `T`; an empty body counts as `{}`.
    pub(super) fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        let body: &[u8] = if self.body.iter().all(u8::is_ascii_whitespace) { b"{}" } else { &self.body };
        serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
    }

    /// The decoded names of the query parameters given.
    pub(super) fn query_names(&self) -> Result<Vec<String>, ApiError> {
        let pairs = self.uri.query().unwrap_or("").split('&').filter(|p| !p.is_empty());
        pairs.map(|pair| query_decode(pair.split_once('=').map_or(pair, |(k, _)| k))).collect()
    }

    /// Refuses a query parameter that is not one of `takes`, naming them:
    /// `what` is the request as the message calls it ("a list").
    pub(super) fn refuse_unknown_params(&self, takes: &[&str], what: &str) -> Result<(), ApiError> {
        let unknown = self.query_names()?.into_iter().find(|n| !takes.contains(&n.as_str()));
        match unknown {
            Some(unknown) if takes.is_empty() => {
                Err(ApiError::bad_request(format!("unknown query parameter {unknown:?}: {what} takes none")))
            }
            Some(unknown) => Err(ApiError::bad_request(format!(
                "unknown query parameter {unknown:?}: {what} takes {}",
                takes.join(", ")
            ))),
            None => Ok(()),
        }
    }

    /// The decoded value of query parameter `name` (the last one if repeated).
    pub(super) fn query_param(&self, name: &str) -> Result<Option<String>, ApiError> {
        let mut found = None;
        for pair in self.uri.query().unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            if query_decode(k)? == name {
                found = Some(query_decode(v)?);
            }
        }
        Ok(found)
    }
}

/// A query component: `+` is a space, as in HTML forms.
fn query_decode(text: &str) -> Result<String, ApiError> {
    let bytes = percent_decode(&text.replace('+', " "))?;
    String::from_utf8(bytes).map_err(|_| ApiError::bad_request("a query parameter is not valid UTF-8"))
}

fn percent_decode(text: &str) -> Result<Vec<u8>, ApiError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
            let byte = hex.and_then(|h| u8::from_str_radix(h, 16).ok());
            let Some(byte) = byte else { return Err(ApiError::bad_request("malformed percent-encoding")) };
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// The key named by `raw` (the raw path after `/v1/kv/`): percent-decoded,
/// nothing else. `.` and `..` are refused: URL-standard clients resolve them
/// away (even encoded as `%2E`), so such a key could not be read back.
pub(super) fn decode_key(raw: &str) -> Result<String, ApiError> {
    let key = String::from_utf8(percent_decode(raw)?)
        .map_err(|_| ApiError::bad_request("the key is not valid UTF-8 once percent-decoded"))?;
    if key.is_empty() {
        return Err(ApiError::bad_request("the key is empty"));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(ApiError::bad_request(format!("the key is {} bytes; at most {MAX_KEY_BYTES} allowed", key.len())));
    }
    if key == "." || key == ".." {
        return Err(ApiError::bad_request(format!("the key {key:?} cannot be addressed in a URL")));
    }
    Ok(key)
}

/// `key` percent-encoded as one path segment (`/` and `.` included), so no
/// hop can read it as path segments: the same encoding `ferraft ctl` sends.
pub(super) fn encode_key(key: &str) -> String {
    crate::client::encode_component(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Code;

    #[test]
    fn keys_are_percent_decoded_and_bounded() {
        assert_eq!(decode_key("a%2Fb").unwrap(), "a/b");
        assert_eq!(decode_key("plain/with/slash").unwrap(), "plain/with/slash");
        assert_eq!(decode_key("/lead/../ing/./x").unwrap(), "/lead/../ing/./x");
        for bad in ["", "%zz", "%ff", "%2", ".", "..", "%2E%2e"] {
            assert_eq!(decode_key(bad).unwrap_err().code(), Code::BadRequest, "{bad}");
        }
        assert_eq!(decode_key(&"k".repeat(MAX_KEY_BYTES + 1)).unwrap_err().code(), Code::BadRequest);
        assert!(decode_key(&"k".repeat(MAX_KEY_BYTES)).is_ok());
    }

    #[test]
    fn an_encoded_key_decodes_to_itself_as_one_segment() {
        for key in ["/etcd/style/key", "a/../b", "x/./y", "sp ace+plus%", "ключ/cas"] {
            let encoded = encode_key(key);
            assert!(!encoded.contains('/'), "{encoded}");
            assert_eq!(decode_key(&encoded).unwrap(), key);
        }
    }
}
