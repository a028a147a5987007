//! Two clusters on one network (issue 18): two independently initialized
//! clusters, each a whole simulated world with its own checkers, clients and
//! faults, whose machines share one address space, and faults that make them
//! meet:
//!
//! - **Mis-delivery.** A message sent in one cluster is now and then also
//!   delivered to the machine of the same number in the other (a proxy or a
//!   stale connection that sends it to the wrong place).
//! - **Address reuse.** While a machine is down, the other cluster's machine
//!   of the same number restarts at its address: what its cluster sends there
//!   reaches the other cluster's node.
//! - **An operator's mistake.** The operator of one cluster adds a node of the
//!   other as a learner: the leader probes it first, as `Raft::add_learner`
//!   does, and must be refused; a refusal is counted, an acceptance goes on
//!   to the change.
//!
//! The machines of the second cluster have the same node ids and the same
//! incarnation numbers as their twins in the first: only the cluster id tells
//! a node from its twin, so that check stands alone. Each cluster's own
//! checkers run as in any run; across them, no entry of one cluster may be
//! appended to a log of the other (client writes of the second cluster are
//! numbered from [`SECOND_CLUSTER_FIRST_OP`]) and neither cluster's
//! membership may name a node of the other (their addresses differ in
//! prefix: `n<id>` and `m<id>`). The address-reuse and mis-delivery faults
//! stop with the other faults; the liveness phase then runs each cluster
//! alone.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use ferraft::{BasicNode, ChangeMembers, EntryPayload, NodeId, PeerRefusal};
use rand::seq::IteratorRandom;
use rand::Rng;

use super::{Event, Failure, SimMessage, Simulation};
use crate::disk::SimEntry;
use crate::host_parts::SimReply;
use crate::invariants::Violation;
use crate::options::SimOptions;

/// Client writes of the second cluster are numbered from here.
pub const SECOND_CLUSTER_FIRST_OP: u64 = 1_000_000_000;

/// The address prefix and cluster id of each side.
const SIDES: [(char, u64); 2] = [('n', 7), ('m', 9)];

/// Chance per tick that the faults across clusters strike, each.
const ADDRESS_REUSE_PER_TICK: f64 = 0.004;
const FOREIGN_ADD_PER_TICK: f64 = 0.006;
/// Chance that a message sent is also delivered to the other cluster.
const MISDELIVER: f64 = 0.01;
/// How long an operator waits for a probe's answer before giving up.
const PROBE_PATIENCE_MS: u64 = 600;
/// Link ids for traffic to the other cluster start here (FIFO per link).
const FOREIGN_LINK: u64 = 1_000;

/// Where an operator's probe answer lands once it comes.
type ProbeSlot = Rc<RefCell<Option<Result<u64, PeerRefusal>>>>;

/// Which machine an address reaches.
pub(super) enum Route {
    /// One of this cluster's machines.
    Here(NodeId),
    /// The other cluster's machine of this number.
    There(NodeId),
}

/// One side of a two-cluster run: which cluster this world is, and its
/// traffic to the other.
pub(super) struct Crossing {
    side: usize,
    /// While faults last: mis-delivery, and addresses taken over.
    live: bool,
    /// This cluster's addresses (by machine number) that the other
    /// cluster's machine of the same number took over.
    taken: BTreeMap<NodeId, NodeId>,
    /// Messages leaving for the other cluster: arrival time, machine, message.
    outbox: Vec<(u64, NodeId, SimMessage)>,
    /// Operator probes of the other cluster's nodes: asked at, node, answer so far.
    probes: Vec<(u64, NodeId, ProbeSlot)>,
}

impl Crossing {
    fn new(side: usize) -> Self {
        Self { side, live: true, taken: BTreeMap::new(), outbox: Vec::new(), probes: Vec::new() }
    }

    /// This cluster's id.
    pub(super) fn cluster_id(&self) -> u64 {
        SIDES[self.side].1
    }

    /// The first letter of this cluster's addresses.
    pub(super) fn prefix(&self) -> char {
        SIDES[self.side].0
    }

    fn route(&self, addr: &str) -> Option<Route> {
        let (prefix, machine) = parse_addr(addr)?;
        if prefix == self.prefix() {
            Some(self.taken.get(&machine).map_or(Route::Here(machine), |m| Route::There(*m)))
        } else {
            (prefix == SIDES[1 - self.side].0).then_some(Route::There(machine))
        }
    }

    /// Whether `value` was written by this cluster's clients.
    fn owns_op(&self, op: u64) -> bool {
        (op >= SECOND_CLUSTER_FIRST_OP) == (self.side == 1)
    }

    /// An entry on a disk of this cluster must be this cluster's: no client
    /// write of the other, no membership naming one of its nodes.
    fn check_entry(&self, node: NodeId, entry: &SimEntry) -> Result<(), Violation> {
        let foreign = match &entry.payload {
            EntryPayload::Normal(put) => !self.owns_op(put.op),
            EntryPayload::Membership(m) => m.nodes().values().any(|n| !n.addr.starts_with(self.prefix())),
            EntryPayload::Blank => false,
        };
        if !foreign {
            return Ok(());
        }
        let detail =
            format!("cluster {} node {node} appended {} of the other cluster", self.cluster_id(), entry.log_id);
        Err(Violation { rule: "two clusters apart", detail })
    }
}

/// The machine an address names, and its cluster's prefix: `n3`, `m3-17`.
fn parse_addr(addr: &str) -> Option<(char, NodeId)> {
    let mut chars = addr.chars();
    let prefix = chars.next()?;
    let machine = chars.as_str().split('-').next()?.parse().ok()?;
    Some((prefix, machine))
}

/// What a two-cluster run did across clusters, to see that the seeds meet.
#[derive(Debug, Clone, Copy, Default)]
pub struct CrossingStats {
    /// Messages delivered to a machine of the other cluster.
    pub crossed: usize,
    /// Times a machine took over an address of the other cluster.
    pub reused_addresses: usize,
    /// Operator adds of another cluster's node refused at the probe.
    pub refused_adds: usize,
    /// Operator adds whose probe went unanswered (given up).
    pub unanswered_adds: usize,
}

impl Simulation {
    /// The first letter of this cluster's addresses.
    pub(super) fn addr_prefix(&self) -> char {
        self.crossing.as_ref().map_or('n', Crossing::prefix)
    }

    /// Node `id`'s address in this cluster.
    pub(super) fn node_addr(&self, id: NodeId) -> BasicNode {
        BasicNode::new(format!("{}{id}", self.addr_prefix()))
    }

    /// The machine `addr` reaches (in one-cluster runs: always here).
    pub(super) fn route(&self, addr: &str) -> Option<Route> {
        match &self.crossing {
            Some(crossing) => crossing.route(addr),
            None => parse_addr(addr).filter(|(prefix, _)| *prefix == 'n').map(|(_, m)| Route::Here(m)),
        }
    }

    /// Sends `message` to the other cluster's `machine` (lost or delayed as any).
    pub(super) fn send_across(&mut self, machine: NodeId, message: &SimMessage) {
        let from = message.envelope.from;
        let arrivals = self.network.plan(from, NodeId(FOREIGN_LINK + machine.0), self.now, &mut self.rng);
        if let Some(crossing) = self.crossing.as_mut() {
            crossing.outbox.extend(arrivals.into_iter().map(|at| (at, machine, message.clone())));
        }
    }

    /// While faults last, now and then also delivers a message sent to
    /// `machine` here to the other cluster's machine of that number.
    pub(super) fn maybe_misdeliver(&mut self, machine: NodeId, message: &SimMessage) {
        if self.crossing.as_ref().is_some_and(|c| c.live) && self.rng.gen_bool(MISDELIVER) {
            self.trace(|| format!("mis-delivered to the other cluster's n{machine}"));
            self.send_across(machine, message);
        }
    }

    /// The cross-cluster check of entries appended on node `id`'s disk.
    pub(super) fn check_own_entries(&self, id: NodeId, entries: &[SimEntry]) -> Result<(), Violation> {
        let Some(crossing) = &self.crossing else { return Ok(()) };
        entries.iter().try_for_each(|entry| crossing.check_entry(id, entry))
    }

    /// Every live node's log and membership in force hold nothing of the other cluster.
    fn check_apart(&mut self) {
        let Some(crossing) = &self.crossing else { return };
        let mut result = Ok(());
        for node in &self.nodes {
            let Some(engine) = node.engine() else { continue };
            if let Some(m) = engine.membership() {
                if let Some(n) = m.membership.nodes().values().find(|n| !n.addr.starts_with(crossing.prefix())) {
                    let detail =
                        format!("cluster {} node {}'s membership names {}", crossing.cluster_id(), node.id, n.addr);
                    result = result.and(Err(Violation { rule: "two clusters apart", detail }));
                }
            }
            let disk = node.disk.lock().expect("single-threaded").log_state();
            result = result.and(self.check_own_entries(node.id, &disk.entries));
        }
        self.check(result);
    }

    fn crossing_mut(&mut self) -> &mut Crossing {
        self.crossing.as_mut().expect("a two-cluster world")
    }
}

/// Runs one seed of two clusters on one network: each cluster's seed is
/// drawn from `options.seed`, each runs its own faults, clients and checks.
pub fn run_two_clusters(options: &SimOptions) -> Result<CrossingStats, Failure> {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut world = TwoClusters::new(options);
        world.run();
        world.outcome()
    }));
    let failure = |at_ms, message| Failure { seed: options.seed, at_ms, message, test: "two_clusters" };
    match outcome {
        Ok(Ok(stats)) => Ok(stats),
        Ok(Err((at_ms, message))) => Err(failure(at_ms, message)),
        Err(panic) => Err(failure(0, super::panic_text(panic.as_ref()))),
    }
}

/// The two worlds, run in lockstep.
struct TwoClusters {
    sides: [Simulation; 2],
    stats: CrossingStats,
}

impl TwoClusters {
    fn new(options: &SimOptions) -> Self {
        let side = |index: usize| {
            // the second cluster's own schedule, drawn from the same seed
            let seed = options.seed ^ (index as u64 * 0x5EC0_0D00);
            let mut sim = Simulation::new_in(SimOptions { seed, ..options.clone() }, Some(Crossing::new(index)));
            if index == 1 {
                sim.next_op = SECOND_CLUSTER_FIRST_OP;
            }
            sim
        };
        Self { sides: [side(0), side(1)], stats: CrossingStats::default() }
    }

    fn failed(&self) -> bool {
        self.sides.iter().any(|s| s.failure.is_some())
    }

    fn run(&mut self) {
        for sim in &mut self.sides {
            let cluster = sim.crossing.as_ref().map_or(0, Crossing::cluster_id);
            sim.trace(|| format!("cluster {cluster}: seed {}", sim.options.seed));
            sim.bootstrap();
        }
        let chaos_end = self.sides[0].options.chaos_ms;
        while self.sides[0].now < chaos_end && !self.failed() {
            for sim in &mut self.sides {
                sim.advance();
                sim.roll_faults();
                sim.roll_clients();
            }
            for side in 0..2 {
                self.reuse_addresses(side);
                self.add_foreign_learner(side);
                self.settle_probes(side);
                self.exchange(side);
                self.sides[side].check_apart();
            }
        }
        // the faults across clusters stop with the others: each cluster then runs alone
        for sim in &mut self.sides {
            let crossing = sim.crossing_mut();
            crossing.live = false;
            crossing.taken.clear();
            crossing.outbox.clear();
        }
        for sim in &mut self.sides {
            sim.finish();
            if sim.failure.is_none() {
                sim.check_apart();
            }
        }
    }

    /// Hands what side `from` sent across to the other side's queue.
    fn exchange(&mut self, from: usize) {
        let outbox = std::mem::take(&mut self.sides[from].crossing_mut().outbox);
        let to = &mut self.sides[1 - from];
        for (at, machine, message) in outbox {
            self.stats.crossed += 1;
            to.schedule(at.saturating_sub(to.now), Event::Deliver { machine, message: Box::new(message) });
        }
    }

    /// Address reuse: a machine of side `side` that is down has its address
    /// taken by the other side's machine of the same number, which restarts
    /// there; it gets it back once it is up again.
    fn reuse_addresses(&mut self, side: usize) {
        let [a, b] = &mut self.sides;
        let (here, there) = if side == 0 { (a, b) } else { (b, a) };
        let down: Vec<NodeId> = here.nodes.iter().filter(|n| n.host.is_none()).map(|n| n.id).collect();
        here.crossing_mut().taken.retain(|machine, _| down.contains(machine));
        if !here.rng.gen_bool(ADDRESS_REUSE_PER_TICK) {
            return;
        }
        let Some(machine) = down.into_iter().filter(|m| m.0 <= there.scenario.nodes).choose(&mut here.rng) else {
            return;
        };
        there.crash(machine, Some(0));
        let prefix = here.addr_prefix();
        there.trace(|| format!("n{machine} restarts at the other cluster's address {prefix}{machine}"));
        here.crossing_mut().taken.insert(machine, machine);
        self.stats.reused_addresses += 1;
    }

    /// The operator of side `side` adds a node of the other cluster as a
    /// learner: its leader probes it first.
    fn add_foreign_learner(&mut self, side: usize) {
        let [a, b] = &mut self.sides;
        let (here, there) = if side == 0 { (a, b) } else { (b, a) };
        if !here.rng.gen_bool(FOREIGN_ADD_PER_TICK) {
            return;
        }
        let Some(i) = (0..here.nodes.len()).find(|i| here.nodes[*i].engine().is_some_and(|e| e.is_leader())) else {
            return;
        };
        let members = here.nodes[i].engine().and_then(|e| e.membership()).map(|m| m.membership.clone());
        let Some(members) = members else { return };
        // a node of the other cluster (it has its cluster id from its first
        // start) whose id is free here
        let candidates = there.nodes.iter().filter(|n| n.host.is_some() && !members.is_member(n.id)).map(|n| n.id);
        let Some(id) = candidates.choose(&mut here.rng) else { return };
        let node = there.node_addr(id);
        let answer = Rc::new(RefCell::new(None));
        let slot = answer.clone();
        here.trace(|| format!("operator adds {} (the other cluster's n{id}) as learner: probing", node.addr));
        here.call(i, |h| h.probe_peer(id, node, SimReply::new(move |a| *slot.borrow_mut() = Some(a))));
        let now = here.now;
        here.crossing_mut().probes.push((now, id, answer));
    }

    /// Acts on the answers to side `side`'s operator probes: a refusal is
    /// the right answer; an acceptance goes on to add the node (the check
    /// then fails); no answer in time is given up on.
    fn settle_probes(&mut self, side: usize) {
        let sim = &mut self.sides[side];
        let now = sim.now;
        let probes = std::mem::take(&mut sim.crossing_mut().probes);
        for (asked, id, slot) in probes {
            let answer = slot.borrow_mut().take();
            match answer {
                Some(Err(refusal)) => {
                    sim.trace(|| format!("operator's add of the other cluster's n{id} refused: {refusal}"));
                    self.stats.refused_adds += 1;
                }
                Some(Ok(_)) => {
                    let leader = (0..sim.nodes.len()).find(|i| sim.nodes[*i].engine().is_some_and(|e| e.is_leader()));
                    let addr = BasicNode::new(format!("{}{id}", SIDES[1 - side].0));
                    if let Some(i) = leader {
                        let request_id = sim.next_request;
                        sim.next_request += 1;
                        sim.request_change(i, request_id, ChangeMembers::AddNodes([(id, addr)].into()), false);
                    }
                }
                None if now >= asked + PROBE_PATIENCE_MS => self.stats.unanswered_adds += 1,
                None => sim.crossing_mut().probes.push((asked, id, slot)),
            }
        }
    }

    fn outcome(&self) -> Result<CrossingStats, (u64, String)> {
        for sim in &self.sides {
            if let Some(message) = &sim.failure {
                let cluster = sim.crossing.as_ref().map_or(0, Crossing::cluster_id);
                return Err((sim.now, format!("cluster {cluster}: {message}")));
            }
        }
        Ok(self.stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_name_their_cluster_and_machine() {
        let first = Crossing::new(0);
        assert!(matches!(first.route("n3"), Some(Route::Here(NodeId(3)))));
        assert!(matches!(first.route("n3-17"), Some(Route::Here(NodeId(3)))));
        assert!(matches!(first.route("m3"), Some(Route::There(NodeId(3)))));
        assert!(first.route("10.0.0.1:7000").is_none());
        let mut taken = Crossing::new(0);
        taken.taken.insert(NodeId(3), NodeId(3));
        assert!(matches!(taken.route("n3"), Some(Route::There(NodeId(3)))), "an address the other cluster took over");
    }
}
