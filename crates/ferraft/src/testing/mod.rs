//! Helpers for testing code built on ferraft (behind the `testing` feature).
//!
//! [`conformance`]: the rules every [`LogStore`](crate::LogStore) must keep,
//! one function per rule, so each store crate runs the same suite.

pub mod conformance;
