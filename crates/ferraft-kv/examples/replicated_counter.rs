//! A replicated counter, one process per node, on the durable `ferraft-wal`
//! log and the `ferraft-net` TCP transport. Each process reads commands from
//! its standard input.
//!
//! ```text
//! # three terminals:
//! cargo run -p ferraft-kv --example replicated_counter -- 1 /tmp/counter/1 127.0.0.1:7001
//! cargo run -p ferraft-kv --example replicated_counter -- 2 /tmp/counter/2 127.0.0.1:7002
//! cargo run -p ferraft-kv --example replicated_counter -- 3 /tmp/counter/3 127.0.0.1:7003
//!
//! # in node 1's terminal, once:
//! init 1=127.0.0.1:7001 2=127.0.0.1:7002 3=127.0.0.1:7003
//! add 5
//! get
//!
//! # a fourth node joins: start it like the others, then on the leader:
//! learner 4 127.0.0.1:7004
//! voters 1 2 3 4
//!
//! # stop any node with Ctrl-C and start it again with the same arguments:
//! # it reads its log back and rejoins; no command is needed.
//! ```
//!
//! Commands: `init ID=ADDR...`, `add N`, `get` (linearizable), `local` (this
//! node's value, maybe stale), `learner ID ADDR`, `voters ID...`, `status`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ferraft::{BasicNode, ChangeMembers, Config, LogId, NodeId, Raft, StateMachine, StorageError};
use ferraft_net::{NetConfig, TcpNetwork};
use ferraft_wal::{WalOptions, WalStore};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, BufReader};

const CLUSTER_ID: u64 = 42;

#[derive(Debug, Clone, Serialize, Deserialize)]
enum Command {
    Add(u64),
}

/// The replicated state. Kept in memory: on restart ferraft restores the last
/// snapshot from the WAL directory and re-applies the log after it.
#[derive(Debug, Clone, Default)]
struct Counter(Arc<AtomicU64>);

impl StateMachine for Counter {
    type Command = Command;
    type Response = u64;

    fn apply(&mut self, _log_id: LogId, command: &Command) -> u64 {
        let Command::Add(n) = command;
        self.0.fetch_add(*n, Ordering::SeqCst) + n
    }

    fn snapshot(&mut self) -> Result<Bytes, StorageError> {
        Ok(Bytes::copy_from_slice(&self.0.load(Ordering::SeqCst).to_le_bytes()))
    }

    fn restore(&mut self, data: &Bytes) -> Result<(), StorageError> {
        let bytes: [u8; 8] = data[..].try_into().map_err(|e| StorageError::new("decoding a counter snapshot", e))?;
        self.0.store(u64::from_le_bytes(bytes), Ordering::SeqCst);
        Ok(())
    }
}

type Node = Raft<Counter, BasicNode>;

fn parse_ids(words: &[&str]) -> Result<BTreeSet<NodeId>, String> {
    words.iter().map(|w| w.parse().map_err(|_| format!("not a node id: {w}"))).collect()
}

/// Runs one command line; returns what to print.
async fn execute(raft: &Node, counter: &Counter, line: &str) -> Result<String, Box<dyn std::error::Error>> {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["init", members @ ..] => {
            let mut nodes = BTreeMap::new();
            for member in members {
                let (id, addr) = member.split_once('=').ok_or("expected ID=ADDR")?;
                nodes.insert(id.parse::<NodeId>()?, BasicNode::new(addr));
            }
            let log_id = raft.initialize(nodes).await?;
            Ok(format!("initialized (membership at index {})", log_id.index))
        }
        ["add", n] => {
            let written = raft.client_write(Command::Add(n.parse()?)).await?;
            Ok(format!("counter = {} (log index {})", written.response, written.log_id.index))
        }
        ["get"] => {
            let index = raft.ensure_linearizable().await?;
            Ok(format!("counter = {} (read index {index})", counter.0.load(Ordering::SeqCst)))
        }
        ["local"] => Ok(format!("counter = {} on this node (may be stale)", counter.0.load(Ordering::SeqCst))),
        ["learner", id, addr] => {
            let id: NodeId = id.parse()?;
            let timeout = Duration::from_secs(30);
            let membership = tokio::time::timeout(timeout, raft.add_learner(id, BasicNode::new(*addr), true)).await??;
            Ok(format!("node {id} caught up as a learner; membership {}", membership.membership))
        }
        ["voters", ids @ ..] => {
            let change = ChangeMembers::ReplaceAllVoters(parse_ids(ids)?);
            let membership = raft.change_membership(change, false).await?;
            Ok(format!("membership {}", membership.membership))
        }
        ["status"] => {
            let m = raft.metrics().borrow().clone();
            let membership = m.membership.map(|s| s.membership.to_string()).unwrap_or_else(|| "none".into());
            Ok(format!(
                "{:?}, term {}, leader {:?}, applied {:?}, membership {membership}",
                m.state,
                m.current_term,
                m.current_leader,
                m.last_applied.map(|l| l.index)
            ))
        }
        [] => Ok(String::new()),
        _ => Ok("commands: init ID=ADDR..., add N, get, local, learner ID ADDR, voters ID..., status".into()),
    }
}

async fn run(id: NodeId, dir: String, listen: String) -> Result<(), Box<dyn std::error::Error>> {
    let config = Config { cluster_id: CLUSTER_ID, ..Config::default() };
    // The WAL refuses a directory that belongs to another node or cluster.
    let store = WalStore::<Command, BasicNode>::open(&dir, WalOptions::new(id, CLUSTER_ID))?;
    let network = Arc::new(TcpNetwork::new(NetConfig::new(CLUSTER_ID, id), tokio::runtime::Handle::current())?);
    let counter = Counter::default();
    let raft: Node = Raft::new(id, config, network.clone(), Box::new(store), counter.clone()).await?;
    // Incoming messages go straight to the node.
    let (bound, _listener) = network.serve(listen.as_str(), Arc::new(raft.clone()))?;
    let state = raft.metrics().borrow().state;
    println!("node {id} listening on {bound}, data in {dir}, state {state:?}");

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
            line = lines.next_line() => {
                let Some(line) = line? else { break };
                match execute(&raft, &counter, &line).await {
                    Ok(out) if out.is_empty() => {}
                    Ok(out) => println!("{out}"),
                    Err(e) => println!("error: {e}"),
                }
            }
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    raft.shutdown().await?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [id, dir, listen] = args.as_slice() else {
        return Err("usage: replicated_counter NODE_ID DATA_DIR LISTEN_ADDR".into());
    };
    tokio::runtime::Runtime::new()?.block_on(run(id.parse()?, dir.clone(), listen.clone()))
}
