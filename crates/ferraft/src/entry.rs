//! Log entries.

use serde::{Deserialize, Serialize};

use crate::log_id::LogId;
use crate::membership::Membership;

/// The application's command type: what clients write.
///
/// Keep clones cheap (e.g. hold payloads as `bytes::Bytes`): an entry is cloned
/// once per follower message.
pub trait AppData: Clone + std::fmt::Debug + Serialize + serde::de::DeserializeOwned + Send + Sync + 'static {}

impl<T> AppData for T where T: Clone + std::fmt::Debug + Serialize + serde::de::DeserializeOwned + Send + Sync + 'static {}

/// What an entry carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound = "C: AppData, N: crate::Node")]
pub enum EntryPayload<C, N> {
    /// Written by a new leader to commit everything before its term (initial-log rule).
    Blank,
    /// An application command.
    Normal(C),
    /// A membership, in force as soon as it is in the log (use-at-once rule).
    Membership(Membership<N>),
}

/// One replicated log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound = "C: AppData, N: crate::Node")]
pub struct Entry<C, N> {
    /// Where the entry sits and who proposed it.
    pub log_id: LogId,
    /// What it carries.
    pub payload: EntryPayload<C, N>,
}

impl<C: AppData, N: crate::Node> Entry<C, N> {
    /// The membership this entry carries, if any.
    pub fn membership(&self) -> Option<&Membership<N>> {
        match &self.payload {
            EntryPayload::Membership(m) => Some(m),
            _ => None,
        }
    }
}
