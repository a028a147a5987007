//! ferraft's benchmarks, run by the `ferraft bench ...` commands.
#![deny(missing_docs)]

pub mod closed_loop;
pub mod latency;
pub mod minimal;
