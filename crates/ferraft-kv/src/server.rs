//! `ferraft serve`: one KV node with its Raft transport and HTTP API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ferraft::{ClusterId, Config, Message, NodeId};
use ferraft_net::{Inbox, NetConfig, Rejection, TcpNetwork};
use ferraft_wal::{WalOptions, WalStore};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::api::{self, Ctx};
use crate::api_listener::ApiListener;
use crate::kv::{Command, KvNode, KvStateMachine, KvStore};
use crate::{KvRaft, CLUSTER_ID};

/// How to start a node.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The node id.
    pub id: NodeId,
    /// Where the WAL (and the node's identity) lives.
    pub data_dir: PathBuf,
    /// Where the Raft transport listens.
    pub raft_listen: String,
    /// Where the HTTP API listens.
    pub api_listen: String,
    /// The Raft address reported to peers (default: the bound listen address).
    pub raft_advertise: Option<String>,
    /// The API address reported to peers and clients (default: the bound listen address).
    pub api_advertise: Option<String>,
    /// See [`ferraft::Config::snapshot_max_bytes_per_s`]; 0: no limit.
    pub snapshot_max_bytes_per_s: u64,
    /// See [`ferraft::Config::snapshot_logs_since_last`]; `None`: the
    /// server's default ([`raft_config`]).
    pub snapshot_every: Option<u64>,
    /// See [`ferraft::Config::background_job_nice`]; 0: jobs at the node's
    /// own priority.
    pub background_job_nice: u8,
    /// See [`ferraft::Config::follower_sync_inline`].
    pub follower_sync_inline: bool,
    /// Most API connections served at once (see [`crate::open_files`]);
    /// `None`: all but a reserve of the open-file limit.
    pub max_api_connections: Option<usize>,
}

/// The API connection cap where the open-file limit cannot be read.
const DEFAULT_API_CONNECTIONS: usize = 10_000;

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// A listen address cannot be bound.
    #[error("cannot listen on {addr} ({what}): {source}")]
    Listen {
        /// Which listener.
        what: &'static str,
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// An advertised address is not `host:port`: peers could never reach it.
    #[error("--{what}-advertise {addr:?} is not host:port")]
    Advertise {
        /// Which address (`raft` or `api`).
        what: &'static str,
        /// The address given.
        addr: String,
    },
    /// The data dir cannot be used.
    #[error("unusable data dir {path}: {reason}")]
    DataDir {
        /// The dir.
        path: String,
        /// Why.
        reason: String,
    },
    /// The node cannot start.
    #[error("cannot start the raft node: {0}")]
    Raft(String),
}

/// The WAL's place in the data dir.
const WAL_DIR: &str = "wal";

/// Hands inbound messages to the Raft node once it exists.
#[derive(Default)]
struct RaftInbox {
    raft: OnceLock<KvRaft>,
}

impl Inbox<Command, KvNode> for RaftInbox {
    fn deliver(&self, message: Message<Command, KvNode>) {
        if let Some(raft) = self.raft.get() {
            raft.receive(message);
        }
    }

    fn unreachable(&self, peer: NodeId) {
        if let Some(raft) = self.raft.get() {
            raft.report_unreachable(peer);
        }
    }

    fn refused(&self, peer: NodeId, rejection: Rejection) {
        if let Some(raft) = self.raft.get() {
            raft.report_refused(peer, rejection.as_refusal());
        }
    }

    /// A write handed to the leader was dropped unsent (its peer queue was
    /// full, or the write larger than the queue takes): nothing was proposed,
    /// so the node sends it the HTTP way instead of answering "outcome unknown".
    fn undelivered(&self, peer: NodeId, forward_ids: Vec<u64>) {
        if let Some(raft) = self.raft.get() {
            raft.report_undelivered(peer, forward_ids);
        }
    }

    fn cluster_id(&self) -> Option<ClusterId> {
        self.raft.get().and_then(KvRaft::cluster_id)
    }
}

/// A running node.
pub struct Server {
    /// The Raft handle.
    pub raft: KvRaft,
    /// Where the Raft transport listens.
    pub raft_addr: SocketAddr,
    /// Where the HTTP API listens.
    pub api_addr: SocketAddr,
    /// What this node advertises.
    pub me: KvNode,
    ctx: Arc<Ctx>,
    network: Arc<TcpNetwork<Command, KvNode>>,
    raft_listener: JoinHandle<()>,
    http: JoinHandle<()>,
    stop_http: Option<oneshot::Sender<()>>,
}

/// The Raft settings of a KV node.
pub fn raft_config() -> Config {
    Config {
        // the cluster id comes from `init` or from the first leader (see `cluster_identity`)
        // A snapshot copies the map on the Raft task (~10 ms at 100k keys)
        // and encodes it on another thread: rare enough at this interval.
        snapshot_logs_since_last: 100_000,
        // Entries kept in memory for a lagging follower: ~0.8 s of writes at
        // 25k puts/s, ~6 MiB per node at 256-byte values. A follower further
        // behind is fed from the WAL, off the Raft task. 50,000 put the durable benchmark at
        // 2000 in flight near 290 MiB peak RSS, against 250 MiB with this.
        log_cache_entries: 20_000,
        ..Config::default()
    }
}

impl Server {
    /// Binds both listeners, opens the WAL and starts the node and its API.
    pub async fn start(options: ServeOptions) -> Result<Self, StartupError> {
        for (what, addr) in [("raft", &options.raft_advertise), ("api", &options.api_advertise)] {
            if let Some(addr) = addr.as_ref().filter(|addr| !crate::address_check::is_host_port(addr)) {
                return Err(StartupError::Advertise { what, addr: addr.clone() });
            }
        }
        let network = TcpNetwork::<Command, KvNode>::new(
            // 0: the handshake speaks for the node's own cluster id, learnt late
            NetConfig::new(0, options.id),
            tokio::runtime::Handle::current(),
        )
        .map_err(|e| StartupError::Raft(e.to_string()))?;
        let network = Arc::new(network);
        let inbox = Arc::new(RaftInbox::default());
        let listen_error = |what, addr: &str| {
            let addr = addr.to_owned();
            move |source| StartupError::Listen { what, addr, source }
        };
        let (raft_addr, raft_listener) = network
            .serve(options.raft_listen.as_str(), inbox.clone())
            .map_err(listen_error("raft", &options.raft_listen))?;
        let api_listener = match tokio::net::TcpListener::bind(options.api_listen.as_str()).await {
            Ok(listener) => listener,
            Err(e) => {
                raft_listener.abort();
                return Err(listen_error("api", &options.api_listen)(e));
            }
        };
        let api_addr = api_listener.local_addr().map_err(listen_error("api", &options.api_listen))?;
        let me = KvNode {
            raft: options.raft_advertise.clone().unwrap_or_else(|| raft_addr.to_string()),
            api: options.api_advertise.clone().unwrap_or_else(|| api_addr.to_string()),
        };
        let started = Self::start_raft(&options, network.clone()).await;
        let (raft, store) = match started {
            Ok(started) => started,
            Err(e) => {
                raft_listener.abort();
                return Err(e);
            }
        };
        let _ = inbox.raft.set(raft.clone());
        crate::address_check::spawn_mismatch_warnings(raft.clone(), me.clone());
        let ctx = Arc::new(Ctx::new(raft.clone(), store, me.clone()).with_wal_dir(options.data_dir.join(WAL_DIR)));
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let app = api::router(ctx.clone());
        let max_connections = options.max_api_connections.unwrap_or_else(|| {
            crate::open_files::current_limit()
                .map_or(DEFAULT_API_CONNECTIONS, crate::open_files::default_api_connections)
        });
        let http = tokio::spawn(async move {
            let api_listener = ApiListener::new(api_listener, max_connections);
            let served = axum::serve(api_listener, app).with_graceful_shutdown(async {
                let _ = stop_rx.await;
            });
            if let Err(e) = served.await {
                tracing::error!(error = %e, "http server failed");
            }
        });
        tracing::info!(id = %options.id, raft = %raft_addr, api = %api_addr, max_api_connections = max_connections, "node started");
        Ok(Self { raft, raft_addr, api_addr, me, ctx, network, raft_listener, http, stop_http: Some(stop_tx) })
    }

    async fn start_raft(
        options: &ServeOptions,
        network: Arc<TcpNetwork<Command, KvNode>>,
    ) -> Result<(KvRaft, KvStore), StartupError> {
        let data_error =
            |reason: String| StartupError::DataDir { path: options.data_dir.display().to_string(), reason };
        std::fs::create_dir_all(&options.data_dir).map_err(|e| data_error(e.to_string()))?;
        if !options.data_dir.is_dir() {
            return Err(data_error("not a directory".into()));
        }
        let wal_dir = options.data_dir.join(WAL_DIR);
        let wal = WalStore::<Command, KvNode>::open(&wal_dir, WalOptions::new(options.id, CLUSTER_ID))
            .map_err(|e| data_error(e.to_string()))?;
        let store = KvStore::default();
        let mut config = Config {
            snapshot_max_bytes_per_s: options.snapshot_max_bytes_per_s,
            background_job_nice: options.background_job_nice,
            follower_sync_inline: options.follower_sync_inline,
            ..raft_config()
        };
        if let Some(every) = options.snapshot_every {
            config.snapshot_logs_since_last = every;
        }
        let raft = KvRaft::new(options.id, config, network, Box::new(wal), KvStateMachine::new(store.clone()))
            .await
            .map_err(|e| match e {
                ferraft::StartError::Storage(e) => data_error(e.to_string()),
                other => StartupError::Raft(other.to_string()),
            })?;
        Ok((raft, store))
    }

    /// Resolves when a failure (of the disk, mostly) stopped the Raft node,
    /// with what failed; never after a clean shutdown. The process should
    /// then exit: a node that can no longer write its log only looks alive.
    pub async fn failed(&self) -> String {
        let mut metrics = self.raft.metrics();
        let failure = match metrics.wait_for(|m| m.stopped_by.is_some()).await {
            Ok(m) => m.stopped_by.clone(),
            Err(_) => None,
        };
        match failure {
            Some(failure) => failure,
            None => std::future::pending().await,
        }
    }

    /// Stops accepting requests, lets the ones in flight finish (briefly),
    /// stops the node (flushing its log) and closes the transport.
    pub async fn shutdown(mut self) {
        tracing::info!(id = %self.raft.id(), "shutting down: no new requests");
        self.ctx.close_streams();
        if let Some(stop) = self.stop_http.take() {
            let _ = stop.send(());
        }
        if tokio::time::timeout(Duration::from_secs(3), &mut self.http).await.is_err() {
            self.http.abort();
        }
        let _ = self.raft.shutdown().await;
        self.raft_listener.abort();
        drop(self.network);
        tracing::info!(id = %self.raft.id(), "shut down: log flushed, transport closed");
    }
}
