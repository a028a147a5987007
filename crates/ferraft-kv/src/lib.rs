//! The ferraft server: a replicated key-value store on the `ferraft` library,
//! its HTTP API (documented in this crate's `API.md`), the operator CLI and the demo.
//! A library: the `ferraft` binary that runs them is the `ferraft-cli` crate.

pub mod address_check;
pub mod api;
pub mod api_listener;
pub mod catch_up_view;
pub mod cli;
pub mod client;
pub mod cluster_identity;
pub mod ctl;
pub mod ctl_backup;
pub mod ctl_cluster;
pub mod ctl_identity;
pub mod ctl_list;
pub mod ctl_promote;
pub mod demo;
pub mod error;
pub mod error_text;
pub mod harness;
pub mod http_metrics;
pub mod incarnation_view;
pub mod kv;
pub mod kv_map;
pub mod membership_errors;
pub mod membership_json;
pub mod metrics_text;
pub mod open_files;
pub mod server;
pub mod snapshot_format;
pub mod snapshot_json;
pub mod watch_log;

pub use kv::{Command, CommandResponse, KvNode, KvStateMachine, KvStore};

/// The Raft handle of a KV node.
pub type KvRaft = ferraft::Raft<KvStateMachine, KvNode>;

/// The tag the WAL's data-dir identity records beside the node id, so a data
/// dir is never opened as another node's. It is not the Raft cluster id, which
/// each cluster gets at `init` (random, or given): but KV clusters created
/// before cluster ids were saved all used this value as their cluster id, and
/// their data dirs still report it as theirs.
pub const CLUSTER_ID: u64 = 0x6665_7272_6166_7431;
