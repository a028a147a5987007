//! ferraft-sim: a deterministic simulator for ferraft's sans-IO [`Engine`].
//!
//! One seed is one reproducible run. The simulator owns every source of
//! nondeterminism (clock, network, disks, crashes, clients, membership churn)
//! and drives the runtime's own node host (`ferraft::runtime::NodeHost`),
//! which runs the *real* engine and executes each [`Output`], over a
//! simulated disk, network, state machine, snapshot spawner and reply
//! channels: a bug in output execution or reply matching shows in the seeds. After every engine call it runs the
//! safety checkers in [`invariants`]; at the end it checks liveness once faults
//! stop and that the client history is linearizable ([`linearizability`]).
//!
//! Why a simulator and not more cluster tests: the bugs that matter in Raft
//! hide in rare interleavings (a vote lost in a crash, an ack arriving after a
//! truncation, a membership change racing an election). Only a search over
//! many seeded schedules finds them, and only determinism makes them fixable.
//!
//! [`Engine`]: ferraft::engine::Engine
//! [`Output`]: ferraft::engine::Output
#![deny(missing_docs)]

pub mod disk;
pub mod history;
mod host_parts;
pub mod invariants;
mod journal;
pub mod known_bugs;
mod kv_machine;
pub mod linearizability;
pub mod model;
pub mod network;
pub mod options;
pub mod seed_sets;
pub mod sim;
pub mod sim_fs;
#[cfg(test)]
mod store_conformance;
mod wal_store;

pub use options::{Fault, SimOptions};
pub use sim::{run_seed, run_two_clusters, CrossingStats, Failure, RunStats, SECOND_CLUSTER_FIRST_OP};
