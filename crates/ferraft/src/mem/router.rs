//! An in-process network with fault injection.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::entry::AppData;
use crate::message::Message;
use crate::network::Network;
use crate::node::{BasicNode, NodeId};
use crate::runtime::Raft;
use crate::state_machine::StateMachine;

type Sink<C> = Arc<dyn Fn(Message<C, BasicNode>) + Send + Sync>;
type Tap<C> = Arc<dyn Fn(&Message<C, BasicNode>) + Send + Sync>;

struct Faults {
    isolated: HashSet<NodeId>,
    blocked: HashSet<(NodeId, NodeId)>,
    drop_rate: f64,
    delay: Option<Duration>,
    rng: SmallRng,
}

/// Routes messages between nodes of one process by their `BasicNode::addr`,
/// with controllable partitions, loss and delay.
pub struct MemRouter<C> {
    sinks: RwLock<HashMap<String, Sink<C>>>,
    faults: Mutex<Faults>,
    faulty: std::sync::atomic::AtomicBool,
    tap: RwLock<Option<Tap<C>>>,
}

impl<C: AppData> MemRouter<C> {
    /// A router with no nodes and no faults.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            sinks: RwLock::new(HashMap::new()),
            faults: Mutex::new(Faults {
                isolated: HashSet::new(),
                blocked: HashSet::new(),
                drop_rate: 0.0,
                delay: None,
                rng: SmallRng::seed_from_u64(7),
            }),
            faulty: std::sync::atomic::AtomicBool::new(false),
            tap: RwLock::new(None),
        })
    }

    /// The network a node uses to send through this router.
    pub fn network(self: &Arc<Self>) -> Arc<MemNetwork<C>> {
        Arc::new(MemNetwork { router: self.clone() })
    }

    /// Makes `raft` reachable at `addr`.
    pub fn register<SM: StateMachine<Command = C>>(&self, addr: impl Into<String>, raft: Raft<SM, BasicNode>) {
        let sink: Sink<C> = Arc::new(move |message| raft.receive(message));
        self.sinks.write().unwrap_or_else(|p| p.into_inner()).insert(addr.into(), sink);
    }

    /// Shows every message handed to the router to `tap` (before faults):
    /// how a test counts what was sent.
    pub fn set_tap(&self, tap: impl Fn(&Message<C, BasicNode>) + Send + Sync + 'static) {
        *self.tap.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(tap));
    }

    /// Makes `addr` unreachable (the node crashed).
    pub fn unregister(&self, addr: &str) {
        self.sinks.write().unwrap_or_else(|p| p.into_inner()).remove(addr);
    }

    fn with_faults(&self, change: impl FnOnce(&mut Faults)) {
        let mut faults = self.faults.lock().unwrap_or_else(|p| p.into_inner());
        change(&mut faults);
        let any = !faults.isolated.is_empty()
            || !faults.blocked.is_empty()
            || faults.drop_rate > 0.0
            || faults.delay.is_some();
        self.faulty.store(any, std::sync::atomic::Ordering::Relaxed);
    }

    /// Cuts `id` off from every other node, both ways.
    pub fn isolate(&self, id: NodeId) {
        self.with_faults(|f| {
            f.isolated.insert(id);
        });
    }

    /// Undoes [`MemRouter::isolate`].
    pub fn restore(&self, id: NodeId) {
        self.with_faults(|f| {
            f.isolated.remove(&id);
        });
    }

    /// Splits the cluster: messages between `side` and the rest are dropped.
    pub fn partition(&self, side: &[NodeId], all: &[NodeId]) {
        self.with_faults(|f| {
            for a in side {
                for b in all.iter().filter(|b| !side.contains(b)) {
                    f.blocked.insert((*a, *b));
                    f.blocked.insert((*b, *a));
                }
            }
        });
    }

    /// Removes every partition and isolation.
    pub fn heal(&self) {
        self.with_faults(|f| {
            f.blocked.clear();
            f.isolated.clear();
        });
    }

    /// Drops each message with probability `rate`.
    pub fn set_drop_rate(&self, rate: f64) {
        self.with_faults(|f| f.drop_rate = rate);
    }

    /// Delays every message by `delay`.
    pub fn set_delay(&self, delay: Option<Duration>) {
        self.with_faults(|f| f.delay = delay);
    }

    fn deliver(&self, target: &BasicNode, message: Message<C, BasicNode>) {
        if let Some(tap) = self.tap.read().unwrap_or_else(|p| p.into_inner()).as_ref() {
            tap(&message);
        }
        let mut delay = None;
        if self.faulty.load(std::sync::atomic::Ordering::Relaxed) {
            let mut faults = self.faults.lock().unwrap_or_else(|p| p.into_inner());
            let (from, to) = (message.envelope.from, message.envelope.to);
            if faults.isolated.contains(&from) || faults.isolated.contains(&to) || faults.blocked.contains(&(from, to))
            {
                return;
            }
            let drop_rate = faults.drop_rate;
            if drop_rate > 0.0 && faults.rng.gen_bool(drop_rate) {
                return;
            }
            delay = faults.delay;
        }
        let sink = self.sinks.read().unwrap_or_else(|p| p.into_inner()).get(&target.addr).cloned();
        let Some(sink) = sink else { return };
        match delay {
            None => sink(message),
            Some(delay) => {
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    sink(message);
                });
            }
        }
    }
}

/// One node's handle on a [`MemRouter`].
pub struct MemNetwork<C> {
    router: Arc<MemRouter<C>>,
}

impl<C: AppData> Network<C, BasicNode> for MemNetwork<C> {
    fn send(&self, target: &BasicNode, message: Message<C, BasicNode>) {
        self.router.deliver(target, message);
    }
}
