//! The ferraft server: a replicated key-value store on the `ferraft` library,
//! its HTTP API (see `shared/API.md`), the operator CLI and the demo.

pub mod api;
pub mod bench;
pub mod catch_up_view;
pub mod cli;
pub mod client;
pub mod ctl;
pub mod ctl_promote;
pub mod demo;
pub mod error;
pub mod harness;
pub mod kv;
pub mod membership_json;
pub mod metrics_text;
pub mod server;

pub use kv::{Command, CommandResponse, KvNode, KvStateMachine, KvStore};

/// The Raft handle of a KV node.
pub type KvRaft = ferraft::Raft<KvStateMachine, KvNode>;

/// Every ferraft KV cluster shares this cluster id; the WAL records it beside
/// the node id in the data dir's identity, so a data dir is never opened as
/// another node's.
pub const CLUSTER_ID: u64 = 0x6665_7272_6166_7431;
