//! ferraft's benchmarks, all of them in this crate.
#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod cli;
pub mod closed_loop;
pub mod command;
pub mod kv_server;
pub mod latency;
pub mod minimal;
