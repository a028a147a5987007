//! The HTTP API of `ferraft serve`, as documented in this crate's `API.md`.
//!
//! The plumbing (routing, reading requests, forwarding to the leader) lives
//! apart from the endpoint handlers, so a new endpoint is a handler and a
//! line in the route table.
//!
//! What follows is the API as clients see it (`API.md`).
//!
#![doc = include_str!("../API.md")]

use std::time::Duration;

mod backup;
mod cluster;
mod ctx;
mod force_new_cluster;
mod forward;
mod health;
mod keys;
mod list;
mod membership_ext;
mod readmit;
mod request;
mod routes;
mod watch;

pub use backup::{SNAPSHOT_INDEX_HEADER, SNAPSHOT_MEMBERSHIP_HEADER, SNAPSHOT_TERM_HEADER};
pub use ctx::Ctx;
pub use routes::router;

/// Longest key, in bytes.
pub const MAX_KEY_BYTES: usize = 4096;
/// Longest value, in bytes.
pub const MAX_VALUE_BYTES: usize = 1024 * 1024;
/// Largest request body read.
const MAX_BODY_BYTES: usize = 4 * MAX_VALUE_BYTES;
/// The bound of an ordinary request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// The bound of a membership change (up to two committed steps).
pub const CHANGE_TIMEOUT: Duration = Duration::from_secs(10);
/// The bound of a blocking learner addition (the learner catches up first).
pub const LEARNER_TIMEOUT: Duration = Duration::from_secs(30);
/// Counts the hops of a request forwarded between nodes.
pub const FORWARDED_HEADER: &str = "x-ferraft-forwarded";
/// Names the node that forwarded a request.
pub const FORWARDED_BY_HEADER: &str = "x-ferraft-forwarded-by";
/// Names the leader this node knows of.
pub const LEADER_HEADER: &str = "x-raft-leader";
/// Keys a list answers when the caller names no limit.
pub const DEFAULT_LIST_LIMIT: usize = 1000;
/// The most keys one list call answers.
pub const MAX_LIST_LIMIT: usize = 10_000;
/// A list page ends once its keys and values reach this many bytes (it
/// always holds at least one entry), so a page of large values stays small.
pub const MAX_LIST_PAGE_BYTES: usize = 4 * MAX_VALUE_BYTES;
