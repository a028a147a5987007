//! The simulated network's fault model: loss, delay (hence reordering),
//! duplication and partitions. Delivery itself is an event in the simulator's
//! queue; this decides what happens to each message.

use std::collections::{BTreeSet, HashMap};

use ferraft::NodeId;
use rand::rngs::SmallRng;
use rand::Rng;

/// Link behaviour and the current partition.
#[derive(Debug, Clone)]
pub struct Network {
    /// Chance that a message is dropped.
    pub loss: f64,
    /// Chance that a message is delivered twice.
    pub duplicate: f64,
    /// Longest one-way delay; each copy gets a uniform delay up to it.
    pub max_delay_ms: u64,
    /// Directed links that drop everything: a partition into groups, or
    /// one-way cuts (a node that can send but not receive, say).
    blocked: BTreeSet<(NodeId, NodeId)>,
    /// Bumped on every partition change, so a scheduled heal of an older one is ignored.
    pub epoch: u64,
    /// Whether messages on one link may overtake each other. Off, each link is
    /// FIFO like a TCP connection: a message never arrives before one sent
    /// earlier on the same link (messages may still be lost or duplicated).
    pub reorder: bool,
    /// Per link, the latest arrival time scheduled so far (FIFO links).
    last_arrival: HashMap<(NodeId, NodeId), u64>,
}

impl Network {
    /// A network with these link settings and no partition.
    pub fn new(loss: f64, duplicate: f64, max_delay_ms: u64) -> Self {
        Self {
            loss,
            duplicate,
            max_delay_ms,
            blocked: BTreeSet::new(),
            epoch: 0,
            reorder: false,
            last_arrival: HashMap::new(),
        }
    }

    /// Arrival times of the copies of a message sent now on `from -> to`:
    /// none (lost), one, or two (duplicated).
    pub fn plan(&mut self, from: NodeId, to: NodeId, now: u64, rng: &mut SmallRng) -> Vec<u64> {
        if rng.gen_bool(self.loss) {
            return Vec::new();
        }
        let copies = if rng.gen_bool(self.duplicate) { 2 } else { 1 };
        let mut arrivals = Vec::with_capacity(copies);
        for _ in 0..copies {
            let mut at = now + rng.gen_range(1..=self.max_delay_ms);
            if !self.reorder {
                let last = self.last_arrival.entry((from, to)).or_insert(0);
                at = at.max(*last);
                *last = at;
            }
            arrivals.push(at);
        }
        arrivals
    }

    /// Whether `from` can reach `to` now.
    pub fn connected(&self, from: NodeId, to: NodeId) -> bool {
        !self.blocked.contains(&(from, to))
    }

    /// Cuts links among nodes `1..=nodes`: either splits them into up to three
    /// random groups, or cuts random directed links one way. Returns the new epoch.
    pub fn partition(&mut self, nodes: u64, rng: &mut SmallRng) -> u64 {
        self.blocked.clear();
        if rng.gen_bool(0.7) {
            let groups = rng.gen_range(2..=3u8);
            let group: Vec<u8> = (0..nodes).map(|_| rng.gen_range(0..groups)).collect();
            for from in 1..=nodes {
                for to in 1..=nodes {
                    if group[from as usize - 1] != group[to as usize - 1] {
                        self.blocked.insert((NodeId(from), NodeId(to)));
                    }
                }
            }
        } else {
            for from in 1..=nodes {
                for to in 1..=nodes {
                    if from != to && rng.gen_bool(0.25) {
                        self.blocked.insert((NodeId(from), NodeId(to)));
                    }
                }
            }
        }
        self.epoch += 1;
        self.epoch
    }

    /// Cuts the link between `a` and `b` both ways (on top of any partition);
    /// returns the new epoch, whose heal clears every cut.
    pub fn cut_pair(&mut self, a: NodeId, b: NodeId) -> u64 {
        self.blocked.insert((a, b));
        self.blocked.insert((b, a));
        self.epoch += 1;
        self.epoch
    }

    /// Heals the partition if it is still the one of `epoch`.
    pub fn heal(&mut self, epoch: u64) {
        if self.epoch == epoch {
            self.blocked.clear();
        }
    }

    /// The cut links, for traces.
    pub fn describe(&self) -> String {
        format!("cut {:?}", self.blocked)
    }

    /// Stops every fault: no loss, no duplicates, no partition.
    pub fn calm(&mut self) {
        self.loss = 0.0;
        self.duplicate = 0.0;
        self.blocked.clear();
        self.epoch += 1;
    }
}
