//! ferraft: Raft consensus with dynamic membership done right.
#![deny(missing_docs)]

pub mod config;
pub mod engine;
pub mod entry;
pub mod error;
pub mod leader_id;
pub mod log_id;
pub mod mem;
pub mod membership;
pub mod message;
pub mod network;
pub mod node;
pub mod runtime;
pub mod snapshot;
pub mod state_machine;
pub mod storage;
pub mod vote;

pub use config::{Config, ConfigError};
pub use engine::ServerState;
pub use entry::{AppData, Entry, EntryPayload};
pub use error::{ChangeMembershipError, Fatal, ForwardToLeader, InitializeError, ReadError, TransferError, WriteError};
pub use leader_id::{LeaderId, LeaderIdMode};
pub use log_id::LogId;
pub use membership::{ChangeMembers, ChangeMembersError, Membership, StoredMembership};
pub use message::{Envelope, Message, MessageBody};
pub use network::Network;
pub use node::{BasicNode, LogIndex, Node, NodeId, Term};
pub use runtime::{Raft, RaftMetrics, StartError, Wait, WaitError, WriteResponse};
pub use snapshot::{Snapshot, SnapshotMeta};
pub use state_machine::StateMachine;
pub use storage::{AppendDurability, FlushNotifier, LogState, LogStore, StorageError};
pub use vote::Vote;
