//! ferraft: Raft consensus with dynamic membership done right.
//!
//! You write a [`StateMachine`]; ferraft replicates the commands it receives to
//! every node, in one order, and applies each command once it is committed by a
//! quorum. Around that core it gives you:
//!
//! - a [`Raft`] handle per node: [`Raft::client_write`], linearizable and lease
//!   reads ([`Raft::ensure_linearizable`], [`Raft::lease_read`]), leader transfer,
//!   snapshots and a metrics channel ([`Raft::metrics`], [`Raft::wait`]);
//! - dynamic membership: learners ([`Raft::add_learner`]), planned changes by the
//!   extended joint-consensus algorithm ([`Raft::change_membership`]) and explicit
//!   prepare / commit / abort steps for operators;
//! - two traits to plug in storage and transport: [`LogStore`] and [`Network`]
//!   (`ferraft-wal` and `ferraft-net` implement them for real deployments, [`mem`]
//!   in memory for tests and examples);
//! - a sans-IO [`engine`] holding every protocol rule, which the tokio
//!   [`runtime`] (and the `ferraft-sim` simulator) drives.
//!
//! # A three-node cluster in one process
//!
//! Three nodes on the in-memory store and network: start them, initialize the
//! cluster on one of them, write through the leader, and watch every node apply
//! the write.
//!
//! ```
//! use std::collections::BTreeMap;
//! use std::time::Duration;
//!
//! use ferraft::mem::{MemLogStore, MemRouter, RecordingStateMachine};
//! use ferraft::{BasicNode, Config, NodeId, Raft};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let runtime = tokio::runtime::Runtime::new()?;
//! runtime.block_on(async {
//!     // Short timeouts: everything is in one process.
//!     let config = Config {
//!         heartbeat_interval_ms: 20,
//!         election_timeout_min_ms: 100,
//!         election_timeout_max_ms: 200,
//!         ..Config::default()
//!     };
//!     // The router delivers messages between nodes by their `BasicNode::addr`.
//!     let router = MemRouter::<String>::new();
//!     let mut nodes = BTreeMap::new();
//!     let mut rafts = BTreeMap::new();
//!     for id in [1, 2, 3].map(NodeId) {
//!         let addr = format!("node-{id}");
//!         let store = Box::new(MemLogStore::new());
//!         let state_machine = RecordingStateMachine::<String>::new();
//!         let raft = Raft::new(id, config.clone(), router.network(), store, state_machine.clone()).await?;
//!         router.register(addr.clone(), raft.clone());
//!         nodes.insert(id, BasicNode::new(addr));
//!         rafts.insert(id, (raft, state_machine));
//!     }
//!
//!     // Make the three fresh nodes a cluster: once, on one node.
//!     rafts[&NodeId(1)].0.initialize(nodes).await?;
//!     let leader_id = rafts[&NodeId(1)].0.wait(Duration::from_secs(5)).for_leader().await?;
//!     let leader = &rafts[&leader_id].0;
//!
//!     // Writes go to the leader and return once applied there.
//!     let written = leader.client_write("x = 1".to_string()).await?;
//!     let index = written.log_id.index;
//!
//!     // Every node applies the same command at the same index.
//!     for (raft, state_machine) in rafts.values() {
//!         raft.wait(Duration::from_secs(5)).applied_at_least(index).await?;
//!         let applied = state_machine.applied();
//!         assert_eq!(applied.last().map(|(_, command)| command.as_str()), Some("x = 1"));
//!     }
//!     for (raft, _) in rafts.values() {
//!         raft.shutdown().await?;
//!     }
//!     Ok::<(), Box<dyn std::error::Error>>(())
//! })?;
//! # Ok(())
//! # }
//! ```
//!
//! `cargo run -p ferraft --example three_nodes_in_memory` runs a longer version,
//! with a restart, a learner and membership changes; `--example custom_node` shows
//! your own node type and network.
//!
//! # Guides
//!
//! - [Getting started](docs::getting_started): from an empty crate to a
//!   replicated service.
//! - [Cluster initialization](docs::cluster_initialization): all voters at once,
//!   or one node and grow.
//! - [Dynamic membership](docs::membership): learners, the extended algorithm,
//!   concurrent changes, prepare / commit / abort, removing nodes, addresses.
//! - [Storage and network](docs::storage_and_network): implementing
//!   [`LogStore`], [`Network`] and [`StateMachine`]; the durability contract.
//! - [Reads](docs::reads): linearizable, lease and local reads.
//! - [Operations](docs::operations): restarts, wiped nodes, misconfiguration,
//!   metrics.
//! - [FAQ](docs::faq).
#![deny(missing_docs)]

#[macro_use]
mod testing_pub;

pub mod cluster_id;
pub mod config;
pub mod docs;
pub mod engine;
pub mod entry;
pub mod error;
pub mod ids;
pub mod incarnation;
pub mod leader_id;
pub mod log_id;
pub mod mem;
pub mod membership;
pub mod message;
pub mod network;
pub mod node;
mod nonzero_id;
pub mod peer_refusal;
pub mod runtime;
pub mod shared_bytes;
pub mod snapshot;
mod snapshot_data;
pub mod snapshot_saver;
pub mod snapshot_sink;
pub mod state_machine;
pub mod storage;
#[cfg(feature = "testing")]
pub mod testing;
pub mod vote;

pub use cluster_id::{ClusterId, ParseClusterIdError};
pub use config::{Config, ConfigError};
pub use engine::{CatchUpReport, CatchUpStall, ChangeOptions, ChangeStatus, Readiness, ServerState};
pub use entry::{AppData, Entry, EntryPayload};
pub use error::{
    ChangeMembershipError, Fatal, ForceNewClusterError, ForwardToLeader, InitializeError, ReadError, TransferError,
    WriteError,
};
pub use incarnation::Incarnation;
pub use leader_id::{LeaderId, LeaderIdMode};
pub use log_id::LogId;
pub use membership::{
    ChangeGuard, ChangeMembers, ChangeMembersError, JointExit, Membership, RememberedChange, RememberedChanges,
    StoredMembership,
};
pub use message::{Envelope, Message, MessageBody};
pub use network::Network;
pub use node::{BasicNode, LogIndex, Node, NodeId, Term};
pub use peer_refusal::PeerRefusal;
pub use runtime::{
    AddLearnerOptions, Raft, RaftMetrics, ReplicationMetrics, SnapshotTransfer, StartError, Wait, WaitError,
    WriteResponse,
};
pub use snapshot::{Snapshot, SnapshotData, SnapshotMeta, SnapshotReader, SnapshotSource};
pub use snapshot_saver::{MadeCurrent, SnapshotSaver};
pub use snapshot_sink::{MemorySnapshot, PartialSnapshot, SnapshotSink};
pub use state_machine::{SnapshotInstall, SnapshotJob, SnapshotWriter, StateMachine};
pub use storage::{AppendDurability, FlushNotifier, LogState, LogStore, ReadRange, StorageError};
pub use vote::Vote;
