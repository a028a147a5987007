//! `bench cluster --vs-etcd`: an etcd cluster of the same size on loopback,
//! driven by the same closed-loop clients through etcd's HTTP/JSON gateway
//! (`/v3/kv/put`, `/v3/kv/range`, keys and values in base64). No gRPC
//! client, so nothing in the default build needs `protoc`; etcd runs only
//! when asked, and a missing binary is a clear error.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use http::Method;
use tokio::process::{Child, Command};

use super::http_client::HttpConnection;
use ferraft_kv::harness::free_port;

/// The etcd binary: `$ETCD_BIN`, else `etcd` on the `PATH`.
pub fn locate() -> Result<PathBuf, String> {
    if let Some(explicit) = std::env::var_os("ETCD_BIN").map(PathBuf::from) {
        return match explicit.is_file() {
            true => Ok(explicit),
            false => Err(format!("ETCD_BIN={} is not a file; skipping --vs-etcd", explicit.display())),
        };
    }
    let found = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("etcd"))
        .find(|candidate| candidate.is_file());
    found.ok_or_else(|| {
        "etcd not found on the PATH (set ETCD_BIN, or install etcd 3.4: apt-get install etcd-server); \
         skipping --vs-etcd"
            .to_owned()
    })
}

/// A running etcd cluster; its processes are killed when it is dropped.
pub struct EtcdCluster {
    /// `host:port` of each member's client endpoint.
    pub endpoints: Vec<String>,
    children: Vec<Child>,
}

impl EtcdCluster {
    /// Starts `members` etcd processes (fsync on, as etcd always does) with
    /// data and logs under `dir`, and waits until a put succeeds.
    pub async fn start(exe: &Path, members: u64, dir: &Path) -> Result<Self, String> {
        let ports: Vec<(u16, u16)> = (0..members).map(|_| (free_port(), free_port())).collect();
        let initial: Vec<String> =
            ports.iter().enumerate().map(|(i, (_, peer))| format!("e{}=http://127.0.0.1:{peer}", i + 1)).collect();
        let mut cluster = Self { endpoints: Vec::new(), children: Vec::new() };
        for (i, (client, peer)) in ports.iter().enumerate() {
            let name = format!("e{}", i + 1);
            let log = std::fs::File::create(dir.join(format!("{name}.log"))).map_err(|e| e.to_string())?;
            let child = Command::new(exe)
                .args(["--name", &name])
                .arg("--data-dir")
                .arg(dir.join(&name))
                .args(["--listen-client-urls", &format!("http://127.0.0.1:{client}")])
                .args(["--advertise-client-urls", &format!("http://127.0.0.1:{client}")])
                .args(["--listen-peer-urls", &format!("http://127.0.0.1:{peer}")])
                .args(["--initial-advertise-peer-urls", &format!("http://127.0.0.1:{peer}")])
                .args(["--initial-cluster", &initial.join(",")])
                .args(["--initial-cluster-state", "new", "--initial-cluster-token", "ferraft-bench"])
                .args(["--logger", "zap", "--log-level", "warn"])
                .stdout(Stdio::null())
                .stderr(log)
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
            cluster.children.push(child);
            cluster.endpoints.push(format!("127.0.0.1:{client}"));
        }
        cluster.wait_ready().await?;
        Ok(cluster)
    }

    /// The process ids, for CPU and memory figures.
    pub fn pids(&self) -> Vec<u32> {
        self.children.iter().filter_map(Child::id).collect()
    }

    async fn wait_ready(&self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let body = put_body("bench/ready", "1");
        for endpoint in &self.endpoints {
            let mut connection = HttpConnection::new(endpoint, Duration::from_secs(2)).map_err(|e| e.to_string())?;
            loop {
                match connection.send(Method::POST, PUT_PATH, Some(body.as_bytes())).await {
                    Ok(status) if status.is_success() => break,
                    _ if Instant::now() > deadline => return Err(format!("etcd at {endpoint} not ready in 30 s")),
                    _ => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        }
        Ok(())
    }

    /// Which member leads, from each member's `/v3/maintenance/status`
    /// (etcd's JSON writes 64-bit ids as strings); the first if none says.
    pub async fn leader_index(&self) -> usize {
        let http = reqwest::Client::new();
        for (i, endpoint) in self.endpoints.iter().enumerate() {
            let url = format!("http://{endpoint}/v3/maintenance/status");
            let Ok(answer) = http.post(url).body("{}").timeout(Duration::from_secs(2)).send().await else { continue };
            let Ok(status) = answer.json::<serde_json::Value>().await else { continue };
            if status["leader"].is_string() && status["leader"] == status["header"]["member_id"] {
                return i;
            }
        }
        0
    }

    /// Kills every member.
    pub async fn kill(&mut self) {
        for child in &mut self.children {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }
}

/// The gateway path of a put.
pub const PUT_PATH: &str = "/v3/kv/put";
/// The gateway path of a range read (a get of one key).
pub const RANGE_PATH: &str = "/v3/kv/range";

/// The JSON of a put of `key` = `value`.
pub fn put_body(key: &str, value: &str) -> String {
    format!(r#"{{"key":"{}","value":"{}"}}"#, base64(key.as_bytes()), base64(value.as_bytes()))
}

/// The JSON of a put of `key` with a value already in base64 (built once per run).
pub fn put_body_encoded(key: &str, value_base64: &str) -> String {
    format!(r#"{{"key":"{}","value":"{value_base64}"}}"#, base64(key.as_bytes()))
}

/// The JSON of a get of `key`: linearizable, unless `serializable` (etcd's
/// local read).
pub fn range_body(key: &str, serializable: bool) -> String {
    format!(r#"{{"key":"{}","serializable":{serializable}}}"#, base64(key.as_bytes()))
}

/// Standard base64 with padding, as protobuf's JSON mapping writes bytes.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_4648_test_vectors() {
        let vectors =
            [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE=")];
        for (plain, encoded) in vectors {
            assert_eq!(base64(plain.as_bytes()), encoded, "{plain:?}");
        }
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }
}
