//! In-memory parts for tests, examples and benchmarks: a log store, an
//! in-process network with fault injection, and small state machines.
//! Nothing here is durable.

mod log_store;
mod router;
mod state_machines;

pub use log_store::MemLogStore;
pub use router::{MemNetwork, MemRouter};
pub use state_machines::{NoopStateMachine, RecordingStateMachine};
