//! TCP transport between ferraft nodes.
//!
//! [`TcpNetwork`] implements [`ferraft::Network`]: `send` queues a message for
//! its peer and returns at once. Each peer gets one persistent connection and
//! one writer task that packs whatever is queued into one buffer and one socket
//! write, reconnecting with capped exponential backoff. [`TcpNetwork::serve`]
//! accepts peers' connections and hands each message to an [`Inbox`], the local
//! node. Every connection starts with a handshake naming cluster, sender and
//! receiver, so a wrong address is refused on both sides, never obeyed.
//!
//! Wire format: a little-endian `u32` length, then the payload in `postcard`.
//! See [`frame`] and [`handshake`].
//!
//! ```
//! use std::sync::{mpsc, Arc, Mutex};
//! use ferraft::message::TimeoutNow;
//! use ferraft::{BasicNode, Envelope, Message, MessageBody, Network, NodeId, Term, Vote};
//! use ferraft_net::{Inbox, NetConfig, TcpNetwork};
//!
//! /// Collects what arrives.
//! struct Collect(Mutex<mpsc::Sender<Message<String, BasicNode>>>);
//! impl Inbox<String, BasicNode> for Collect {
//!     fn deliver(&self, message: Message<String, BasicNode>) {
//!         let _ = self.0.lock().unwrap().send(message);
//!     }
//!     fn unreachable(&self, _peer: NodeId) {}
//! }
//!
//! let runtime = tokio::runtime::Runtime::new().unwrap();
//! let node_1 = TcpNetwork::<String, BasicNode>::new(NetConfig::new(7, NodeId(1)), runtime.handle().clone()).unwrap();
//! let node_2 = TcpNetwork::<String, BasicNode>::new(NetConfig::new(7, NodeId(2)), runtime.handle().clone()).unwrap();
//! let (tx, rx) = mpsc::channel();
//! let (addr_2, _listener) = node_2.serve("127.0.0.1:0", Arc::new(Collect(Mutex::new(tx)))).unwrap();
//!
//! let body = MessageBody::TimeoutNow(TimeoutNow { vote: Vote::new_committed(Term(3), NodeId(1)) });
//! let envelope = Envelope { cluster_id: 7, from: NodeId(1), to: NodeId(2), from_incarnation: 0, to_incarnation: 0 };
//! let message = Message { envelope, body };
//! node_1.send(&BasicNode::new(addr_2.to_string()), message.clone());
//! assert_eq!(rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap(), message);
//! ```
//!
//! With a ferraft node, the node itself is the inbox. Leave `NetConfig::cluster_id`
//! at 0: the handshake then speaks for the node's own cluster id, which it gets
//! at initialize or from the first leader that reaches it. A peer of another
//! cluster is refused on both sides and reported to the node
//! ([`Inbox::refused`]), so `add_learner` of such a node fails at once.
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use ferraft::mem::{MemLogStore, NoopStateMachine};
//! # use ferraft::{BasicNode, Config, NodeId, Raft};
//! # use ferraft_net::{NetConfig, TcpNetwork};
//! # async fn start() -> Result<(), Box<dyn std::error::Error>> {
//! let id = NodeId(1);
//! let network = Arc::new(TcpNetwork::new(NetConfig::new(0, id), tokio::runtime::Handle::current())?);
//! let config = Config::default();
//! let raft: Raft<NoopStateMachine, BasicNode> =
//!     Raft::new(id, config, network.clone(), Box::new(MemLogStore::new()), NoopStateMachine).await?;
//! let (listen_addr, _listener) = network.serve("127.0.0.1:7001", Arc::new(raft.clone()))?;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod addr;
mod backoff;
mod config;
pub mod error;
pub mod frame;
pub mod handshake;
mod inbound;
mod inbox;
mod listener;
mod network;
mod out_batch;
mod peer;
mod queue;
mod raft;

pub use addr::NodeAddr;
pub use config::NetConfig;
pub use error::{FrameError, NetConfigError, NetError};
pub use handshake::{Hello, HelloReply, Rejection};
pub use inbox::Inbox;
pub use network::{PeerStats, TcpNetwork};
