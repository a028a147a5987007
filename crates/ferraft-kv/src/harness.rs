//! Local `ferraft serve` processes on loopback, for the demo and the tests.

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::process::{Child, Command};

use crate::client::Client;
use crate::kv::KvNode;

/// Picks a free loopback port (bind to port 0, then release it), never the
/// same one twice in this process: the kernel may hand a released port out again.
pub fn free_port() -> u16 {
    static GIVEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let mut given = GIVEN.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free loopback port");
        if given.insert(port) {
            return port;
        }
    }
}

/// Starts nodes `1..=n` of the `ferraft` binary `exe` (data and logs under
/// `dir`) and waits until each one's API answers.
pub async fn start_nodes(exe: &Path, n: u64, dir: &Path) -> std::io::Result<BTreeMap<u64, LocalNode>> {
    let mut nodes = BTreeMap::new();
    for id in 1..=n {
        let mut node = LocalNode::new(exe, id, dir);
        node.spawn()?;
        nodes.insert(id, node);
    }
    for node in nodes.values() {
        node.wait_ready(Duration::from_secs(10)).await.map_err(std::io::Error::other)?;
    }
    Ok(nodes)
}

/// One `ferraft serve` process.
pub struct LocalNode {
    /// Node id.
    pub id: u64,
    /// Raft transport address.
    pub raft: String,
    /// HTTP API address.
    pub api: String,
    /// Data dir.
    pub data_dir: PathBuf,
    /// Where its stderr goes.
    pub log: PathBuf,
    /// A client of its API.
    pub client: Client,
    /// Its `--workers` (`None`: the server's default).
    pub workers: Option<u16>,
    /// More `serve` flags, as given.
    pub serve_args: Vec<String>,
    /// A cap on the size of any file the process writes (`ulimit -f`, with
    /// SIGXFSZ ignored): writes past it fail as on a full disk.
    pub file_size_limit: Option<u64>,
    /// A cap on the process's open files, soft and hard (`ulimit -n`).
    pub open_files_limit: Option<u64>,
    exe: PathBuf,
    child: Option<Child>,
}

impl LocalNode {
    /// A node `id` of the `ferraft` binary `exe`, with fresh ports and its data
    /// under `dir`; not started.
    pub fn new(exe: &Path, id: u64, dir: &Path) -> Self {
        let raft = format!("127.0.0.1:{}", free_port());
        let api = format!("127.0.0.1:{}", free_port());
        Self {
            id,
            client: Client::with_timeout(&api, Duration::from_secs(8)),
            raft,
            api,
            data_dir: dir.join(format!("node-{id}")),
            log: dir.join(format!("node-{id}.log")),
            workers: None,
            serve_args: Vec::new(),
            file_size_limit: None,
            open_files_limit: None,
            exe: exe.to_owned(),
            child: None,
        }
    }

    /// The descriptor of this node.
    pub fn node(&self) -> KvNode {
        KvNode { raft: self.raft.clone(), api: self.api.clone() }
    }

    /// `{"raft": .., "api": ..}`.
    pub fn spec(&self) -> Value {
        json!({ "raft": self.raft, "api": self.api })
    }

    /// Whether the process runs (as far as this handle knows).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Starts the process (its stderr appended to `log`).
    pub fn spawn(&mut self) -> std::io::Result<()> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log)?;
        // a shell sets the limits (and the ignored signal), which exec keeps
        let mut limits = String::new();
        if let Some(bytes) = self.file_size_limit {
            limits += &format!("trap '' XFSZ; ulimit -f {}; ", bytes.div_ceil(512));
        }
        if let Some(files) = self.open_files_limit {
            limits += &format!("ulimit -n {files}; ");
        }
        let mut command = if limits.is_empty() {
            Command::new(&self.exe)
        } else {
            let mut command = Command::new("sh");
            command.arg("-c").arg(format!("{limits}exec \"$0\" \"$@\"")).arg(&self.exe);
            command
        };
        command.arg("serve").args(["--id", &self.id.to_string()]).arg("--data-dir").arg(&self.data_dir).args([
            "--raft-listen",
            &self.raft,
            "--api-listen",
            &self.api,
        ]);
        if let Some(workers) = self.workers {
            command.args(["--workers", &workers.to_string()]);
        }
        command.args(&self.serve_args);
        let child = command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(log).kill_on_drop(true).spawn()?;
        self.child = Some(child);
        Ok(())
    }

    /// Waits until the API answers.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.client.status().await {
                Ok(status) if status["id"] == self.id => return Ok(()),
                Ok(status) => {
                    return Err(format!(
                        "another node answers at {} (id {}), not node {}",
                        self.api, status["id"], self.id
                    ))
                }
                Err(e) if Instant::now() >= deadline => {
                    return Err(format!("node {} did not start: {e} (log: {})", self.id, self.log.display()))
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    /// Waits until this node is initialized (holds a membership) and knows a
    /// leader; returns the leader's id. A voter named at `init` learns both
    /// from the leader, but not at once: the leader's first message to its
    /// empty log is refused (a log mismatch) yet names the leader, and the
    /// membership comes with the next append, which a loaded machine may
    /// deliver late. In between the node answers requests `not_initialized`.
    pub async fn wait_initialized_with_leader(&self, timeout: Duration) -> Result<u64, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let status = self.client.status().await.map_err(|e| format!("node {}: {e}", self.id))?;
            let initialized = status["role"].is_string() && status["role"] != "uninitialized";
            if let (true, Some(leader)) = (initialized, status["leader"].as_u64()) {
                return Ok(leader);
            }
            if Instant::now() >= deadline {
                return Err(format!("node {} is not initialized with a known leader: {status}", self.id));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `kill -9`: the process dies at once, without flushing anything.
    pub async fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }

    /// SIGSTOP: the process freezes (it neither sends nor answers) until
    /// [`LocalNode::resume`], as if cut off by a partition. Returns once
    /// every thread of it has stopped: kill(2) only starts the stop, which
    /// one thread carries to the others when it runs, and meanwhile they go
    /// on answering (on a loaded machine, for milliseconds).
    pub async fn pause(&self) -> Result<(), String> {
        let Some(pid) = self.pid() else { return Err(format!("node {} is not running", self.id)) };
        self.signal(libc::SIGSTOP);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !every_thread_stopped(pid) {
            if Instant::now() >= deadline {
                return Err(format!("node {} (pid {pid}) did not stop", self.id));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Ok(())
    }

    /// SIGCONT: a paused process goes on.
    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, signal: libc::c_int) {
        if let Some(pid) = self.pid() {
            // SAFETY: kill(2) on the pid of our own child, which has not been reaped yet.
            unsafe { libc::kill(pid as libc::pid_t, signal) };
        }
    }

    /// Waits up to `timeout` for the process to exit on its own; its exit code.
    pub async fn exited(&mut self, timeout: Duration) -> Option<i32> {
        let child = self.child.as_mut()?;
        let status = tokio::time::timeout(timeout, child.wait()).await.ok()?.ok()?;
        self.child = None;
        status.code()
    }

    /// SIGTERM, then waits for the exit; returns the exit code.
    pub async fn terminate(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        if let Some(pid) = child.id() {
            // SAFETY: kill(2) on the pid of our own child, which has not been reaped yet.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
        }
        match tokio::time::timeout(Duration::from_secs(10), child.wait()).await {
            Ok(Ok(status)) => status.code(),
            _ => {
                let _ = child.start_kill();
                let _ = child.wait().await;
                None
            }
        }
    }
}

/// Whether every thread of process `pid` is stopped (state `T` in
/// `/proc/PID/task/*/stat`).
fn every_thread_stopped(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return false };
    tasks.flatten().all(|task| {
        // "tid (comm) STATE ...": the name may hold a ')', the state follows the last one
        std::fs::read_to_string(task.path().join("stat"))
            .is_ok_and(|stat| stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('T')))
    })
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::routing::get;
    use axum::Json;

    use super::*;

    /// A stand-in for a node's API whose status answers `status`.
    async fn status_server(status: Arc<Mutex<Value>>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api = listener.local_addr().unwrap().to_string();
        let app = axum::Router::new()
            .route("/v1/cluster/status", get(move || async move { Json(status.lock().unwrap().clone()) }));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        api
    }

    #[tokio::test]
    async fn a_node_that_knows_its_leader_but_no_membership_yet_is_waited_for() {
        let status = Arc::new(Mutex::new(json!({ "id": 2, "role": "uninitialized", "leader": 1 })));
        let mut node = LocalNode::new(Path::new("ferraft"), 2, Path::new("/nonexistent"));
        node.client = Client::with_timeout(&status_server(status.clone()).await, Duration::from_secs(5));
        let waited = node.wait_initialized_with_leader(Duration::from_millis(200)).await;
        assert!(waited.is_err(), "returned before the node was initialized: {waited:?}");
        *status.lock().unwrap() = json!({ "id": 2, "role": "follower", "leader": 1 });
        assert_eq!(node.wait_initialized_with_leader(Duration::from_secs(5)).await, Ok(1));
    }

    /// A node whose `exe` is a shell loop that keeps a CPU busy.
    fn busy_node(dir: &Path) -> LocalNode {
        let exe = dir.join("busy");
        std::fs::write(&exe, "#!/bin/sh\nwhile :; do :; done\n").unwrap();
        std::fs::set_permissions(&exe, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        LocalNode::new(&exe, 1, dir)
    }

    #[tokio::test]
    async fn a_paused_node_has_stopped_when_pause_returns() {
        let dir = tempfile::tempdir().unwrap();
        let mut node = busy_node(dir.path());
        node.spawn().unwrap();
        let pid = node.pid().unwrap();
        for round in 0..20 {
            node.pause().await.unwrap();
            assert!(every_thread_stopped(pid), "round {round}: pause returned before the process stopped");
            node.resume();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        node.kill9().await;
    }
}
