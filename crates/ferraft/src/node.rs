//! Node identity and the application-defined node descriptor.

use std::fmt::Debug;

use serde::{de::DeserializeOwned, Deserialize, Serialize};

pub use crate::ids::{LogIndex, NodeId, Term};

/// What the cluster knows about a member besides its id: usually its address.
///
/// The library never interprets it; the transport uses it to reach the node.
pub trait Node: Clone + Debug + Eq + Serialize + DeserializeOwned + Send + Sync + 'static {}

impl<T> Node for T where T: Clone + Debug + Eq + Serialize + DeserializeOwned + Send + Sync + 'static {}

/// The default node descriptor: one network address.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BasicNode {
    /// Where this node's Raft transport listens, e.g. `"127.0.0.1:7001"`.
    pub addr: String,
}

impl BasicNode {
    /// A node reachable at `addr`.
    pub fn new(addr: impl Into<String>) -> Self {
        Self { addr: addr.into() }
    }
}
