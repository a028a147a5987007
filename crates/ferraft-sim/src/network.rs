//! The simulated network's fault model: loss, delay (hence reordering),
//! duplication and partitions. Delivery itself is an event in the simulator's
//! queue; this decides what happens to each message.

use std::collections::HashMap;

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
    /// Group of each node (index `id - 1`); nodes in different groups cannot talk.
    partition: Option<Vec<u8>>,
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
        Self { loss, duplicate, max_delay_ms, partition: None, epoch: 0, reorder: false, last_arrival: HashMap::new() }
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
        match &self.partition {
            None => true,
            Some(groups) => {
                let group = |id: NodeId| groups.get(id as usize - 1).copied().unwrap_or(0);
                group(from) == group(to)
            }
        }
    }

    /// Splits `nodes` nodes into up to three random groups; returns the new epoch.
    pub fn partition(&mut self, nodes: usize, rng: &mut SmallRng) -> u64 {
        let groups = rng.gen_range(2..=3u8);
        self.partition = Some((0..nodes).map(|_| rng.gen_range(0..groups)).collect());
        self.epoch += 1;
        self.epoch
    }

    /// Heals the partition if it is still the one of `epoch`.
    pub fn heal(&mut self, epoch: u64) {
        if self.epoch == epoch {
            self.partition = None;
        }
    }

    /// The current groups, for traces.
    pub fn describe(&self) -> String {
        format!("{:?}", self.partition)
    }

    /// Stops every fault: no loss, no duplicates, no partition.
    pub fn calm(&mut self) {
        self.loss = 0.0;
        self.duplicate = 0.0;
        self.partition = None;
        self.epoch += 1;
    }
}
