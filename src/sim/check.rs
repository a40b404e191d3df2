//! The invariants a run must keep, checked as it goes and once it settles
//! (docs/zgossip.md, "Correctness under faults"):
//!
//! 1. **Converged**: once every fault has healed and the cluster settled,
//!    every live node holds the same tuples, and they are exactly the live
//!    owners' latest writes (for an endpoint two live owners wrote, one of
//!    their values, the same everywhere);
//! 2. **No resurrection**: a node that removed an unpublished tuple (by
//!    its tombstone) never delivers it again (unless someone writes it
//!    again); a dead owner's
//!    tuples are gone everywhere within lease + bound of the heal;
//! 3. **Owner kept**: the only owner of an endpoint, while alive, never
//!    sees its tuple removed or replaced;
//! 4. **Bounded**: no node's table holds more entries than endpoints were
//!    ever written;
//! 5. **Converged in time**: convergence comes within the stated bound of
//!    the heal.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use super::world::{Seen, World, RECONNECT_MAX};

/// Which invariant a run broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Invariant {
    /// 1: live nodes disagree, or differ from the live owners' writes.
    Converged,
    /// 2: an unpublished tuple came back, or a dead owner's outlived its
    /// bound.
    NoResurrection,
    /// 3: a live sole owner's tuple was removed or replaced.
    OwnerKept,
    /// 4: a table grew past what was ever written.
    Bounded,
    /// 5: convergence took longer than the bound.
    ConvergedInTime,
    /// A node panicked (never allowed).
    NoPanic,
}

impl Invariant {
    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Invariant::Converged => "converged",
            Invariant::NoResurrection => "no-resurrection",
            Invariant::OwnerKept => "owner-kept",
            Invariant::Bounded => "bounded",
            Invariant::ConvergedInTime => "converged-in-time",
            Invariant::NoPanic => "no-panic",
        }
    }
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A broken invariant: which, when, and what was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The invariant.
    pub invariant: Invariant,
    /// Simulated time.
    pub at: Duration,
    /// What was seen.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {:?}: {}", self.invariant, self.at, self.detail)
    }
}

/// An application's write: a service, or `None` for UNPUBLISH.
#[derive(Debug, Clone)]
struct Write {
    at: Duration,
    node: usize,
    incarnation: u32,
    service: Option<String>,
}

/// What a settled node must hold for an endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expect {
    /// One of these services (the live owners' latest writes).
    Present(BTreeSet<String>),
    /// Nothing.
    Absent,
    /// Either: a dead owner's tuple within its lease.
    Either,
}

/// The checks of one run.
#[derive(Debug)]
pub struct Checker {
    writes: BTreeMap<String, Vec<Write>>,
    /// (node, incarnation) → when it died.
    deaths: BTreeMap<(usize, u32), Duration>,
    /// (node, incarnation, endpoint) → when a tombstone last removed it
    /// there (a restarted process remembers nothing of it).
    removed: BTreeMap<(usize, u32, String), Duration>,
    /// How long a dead owner's tuples may live past the heal or the death.
    expiry_bound: Duration,
    /// Endpoints only a hostile peer wrote: held or not, as it chose their
    /// lease; counted for the bound on tables.
    hostile: BTreeSet<String>,
    /// Endpoints a hostile peer wrote in an owner's name, and until when
    /// that write may live where the owner cannot answer it (the lease it
    /// claims), with the process it names, if that was running.
    forged: BTreeMap<String, (Duration, Option<(usize, u32)>)>,
    violations: Vec<Violation>,
}

impl Checker {
    /// Checks for nodes whose tuples live `lease`.
    pub fn new(lease: Option<Duration>) -> Self {
        let lease = lease.unwrap_or(Duration::from_secs(86_400));
        Self {
            writes: BTreeMap::new(),
            deaths: BTreeMap::new(),
            removed: BTreeMap::new(),
            hostile: BTreeSet::new(),
            forged: BTreeMap::new(),
            // A stale heartbeat or copy may wait in a DEALER's pipe until
            // the last reconnection (libzmq's backoff), and then lives a
            // lease.
            expiry_bound: lease + RECONNECT_MAX + lease / 3 + Duration::from_millis(100),
            violations: Vec::new(),
        }
    }

    /// The violations so far.
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    fn violation(&mut self, invariant: Invariant, at: Duration, detail: String) {
        // One of each kind is enough to report a run; keep the first.
        if !self.violations.iter().any(|v| v.invariant == invariant) {
            self.violations.push(Violation {
                invariant,
                at,
                detail,
            });
        }
    }

    /// The application of `node` wrote (`service`) or removed (`None`).
    pub fn wrote(&mut self, world: &World, node: usize, endpoint: &str, service: Option<&str>) {
        self.writes
            .entry(endpoint.to_owned())
            .or_default()
            .push(Write {
                at: world.now(),
                node,
                incarnation: world.incarnation(node),
                service: service.map(str::to_owned),
            });
    }

    /// What incarnation `incarnation` of `node` had announced last, endpoint
    /// by endpoint (what its application announces again at a restart).
    pub fn announced_by(&self, node: usize, incarnation: u32) -> Vec<(String, String)> {
        self.writes
            .keys()
            .filter_map(|endpoint| {
                let last = self.last_writes(endpoint);
                let service = last.get(&(node, incarnation))?.service.clone()?;
                Some((endpoint.clone(), service))
            })
            .collect()
    }

    /// A hostile peer wrote an endpoint nobody else did.
    pub fn hostile(&mut self, endpoint: &str) {
        self.hostile.insert(endpoint.to_owned());
    }

    /// A hostile peer wrote an endpoint in its owner's name: no node can
    /// tell it from the owner's write, and only the owner can answer it.
    pub fn forged(&mut self, forgery: super::world::Forgery) {
        let entry = self
            .forged
            .entry(forgery.endpoint)
            .or_insert((forgery.until, forgery.owner));
        entry.0 = entry.0.max(forgery.until);
        if entry.1 != forgery.owner {
            entry.1 = None;
        }
    }

    /// Incarnation `incarnation` of `node` died.
    pub fn died(&mut self, world: &World, node: usize, incarnation: u32) {
        self.deaths.insert((node, incarnation), world.now());
    }

    /// The last write of each (node, incarnation) for an endpoint.
    fn last_writes(&self, endpoint: &str) -> BTreeMap<(usize, u32), &Write> {
        let mut last = BTreeMap::new();
        for w in self.writes.get(endpoint).into_iter().flatten() {
            last.insert((w.node, w.incarnation), w);
        }
        last
    }

    fn is_live(world: &World, node: usize, incarnation: u32) -> bool {
        world.is_alive(node) && world.incarnation(node) == incarnation
    }

    /// The services of live owners (last write a service).
    fn live_services(&self, world: &World, endpoint: &str) -> BTreeSet<String> {
        self.last_writes(endpoint)
            .into_iter()
            .filter(|((n, i), _)| Self::is_live(world, *n, *i))
            .filter_map(|(_, w)| w.service.clone())
            .collect()
    }

    /// Whether only `node` (in any incarnation) ever wrote the endpoint.
    fn sole_writer(&self, endpoint: &str, node: usize) -> bool {
        self.writes
            .get(endpoint)
            .is_some_and(|ws| ws.iter().all(|w| w.node == node))
    }

    /// What the applications were told; checked as it happens.
    pub fn observe(&mut self, world: &World, seen: Vec<Seen>) {
        for s in seen {
            match s {
                Seen::Remove {
                    at,
                    node,
                    endpoint,
                    expired,
                    remover,
                } => {
                    let now = at;
                    let mine = self
                        .last_writes(&endpoint)
                        .get(&(node, world.incarnation(node)))
                        .and_then(|w| w.service.clone());
                    if mine.is_some() && self.sole_writer(&endpoint, node) {
                        self.violation(
                            Invariant::OwnerKept,
                            now,
                            format!("node {node} owns {endpoint} alone and never removed it, but it was removed there"),
                        );
                    }
                    // A node that saw the tombstone must keep it out; one
                    // whose copy merely expired may yet hear of a newer
                    // write that was on its way, and so may one whose
                    // tuple a hostile peer's tombstone removed.
                    let forged = remover.is_some_and(|origin| !world.is_a_process_origin(origin));
                    if !expired && !forged {
                        self.removed
                            .insert((node, world.incarnation(node), endpoint), now);
                    }
                }
                Seen::Deliver {
                    at: now,
                    node,
                    endpoint,
                    service,
                } => {
                    let mine = self
                        .last_writes(&endpoint)
                        .get(&(node, world.incarnation(node)))
                        .and_then(|w| w.service.clone());
                    if let Some(mine) = mine.filter(|m| *m != service) {
                        if self.sole_writer(&endpoint, node) {
                            self.violation(
                                Invariant::OwnerKept,
                                now,
                                format!("node {node} owns {endpoint} alone (service {mine}), but it now holds {service}"),
                            );
                        }
                    }
                    self.check_resurrection(world, now, node, &endpoint, &service);
                }
            }
        }
    }

    fn check_resurrection(
        &mut self,
        world: &World,
        now: Duration,
        node: usize,
        endpoint: &str,
        service: &str,
    ) {
        let key = (node, world.incarnation(node), endpoint.to_owned());
        let Some(&removed_at) = self.removed.get(&key) else {
            return;
        };
        let writes = self.writes.get(endpoint).map(Vec::as_slice).unwrap_or(&[]);
        // A value no application wrote (a hostile peer's forgery) is a new
        // write, answered by the owner, not the removed tuple come back.
        if !writes.iter().any(|w| w.service.as_deref() == Some(service)) {
            return;
        }
        // The last UNPUBLISH, with no write after it, before the removal.
        let Some(last) = writes.last() else {
            return;
        };
        if last.service.is_some() || last.at > removed_at {
            return;
        }
        if !self.live_services(world, endpoint).is_empty() {
            return;
        }
        self.violation(
            Invariant::NoResurrection,
            now,
            format!(
                "node {node} delivered {endpoint} {service} again after removing it at {removed_at:?} (UNPUBLISH by node {} at {:?})",
                last.node, last.at
            ),
        );
    }

    /// What a settled node in `component` must hold for `endpoint`, the
    /// faults having healed at `healed`. Only live owners in the same
    /// component (nodes linked through live nodes) can be required: a
    /// dead node may have cut the cluster in two for good.
    fn expect(
        &self,
        world: &World,
        endpoint: &str,
        healed: Duration,
        component: usize,
        components: &[usize],
    ) -> Expect {
        if self.hostile.contains(endpoint) && !self.writes.contains_key(endpoint) {
            return Expect::Either;
        }
        // A forgery lives its lease where its owner cannot answer it: the
        // owner is gone, or in another part of the cluster.
        let now = world.now();
        if let Some(&(until, owner)) = self.forged.get(endpoint) {
            let answerable = owner.is_some_and(|(node, incarnation)| {
                !self.deaths.contains_key(&(node, incarnation)) && components[node] == component
            });
            if now < until && !answerable {
                return Expect::Either;
            }
        }
        let last = self.last_writes(endpoint);
        let live: Vec<(usize, &Write)> = last
            .iter()
            .filter(|((n, i), _)| Self::is_live(world, *n, *i))
            .filter(|(_, w)| w.service.is_some())
            .map(|((n, _), w)| (*n, *w))
            .collect();
        let here: BTreeSet<String> = live
            .iter()
            .filter(|(n, _)| components[*n] == component)
            .filter_map(|(_, w)| w.service.clone())
            .collect();
        if !here.is_empty() {
            return Expect::Present(here);
        }
        if !live.is_empty() {
            // Owned in another part of a cluster that a death split.
            return Expect::Either;
        }
        // No live owner: removed by UNPUBLISH, or dead owners' tuples that
        // expire within the bound.
        for ((node, incarnation), w) in last {
            if w.service.is_none() {
                continue;
            }
            let died = self
                .deaths
                .get(&(node, incarnation))
                .copied()
                .unwrap_or(now);
            if now < died.max(healed) + self.expiry_bound {
                return Expect::Either;
            }
        }
        Expect::Absent
    }

    /// Whether the live nodes hold what they must at `now`; the first
    /// difference otherwise.
    pub fn settled(
        &self,
        world: &World,
        healed: Duration,
        links: &[(usize, usize)],
    ) -> Result<(), String> {
        let components = components(world, links);
        let mut tables = Vec::new();
        for node in 0..world.nodes() {
            if let Some(core) = world.core(node) {
                let table: BTreeMap<String, String> = core
                    .tuples()
                    .to_vec()
                    .into_iter()
                    .map(|(e, s)| (e.to_string(), s.to_string()))
                    .collect();
                tables.push((node, table));
            }
        }
        let mut endpoints: BTreeSet<&str> = self.writes.keys().map(String::as_str).collect();
        for (_, table) in &tables {
            endpoints.extend(table.keys().map(String::as_str));
        }
        for endpoint in endpoints {
            // Per component: the node and service the others must agree
            // with, and what they must hold (worked out once).
            let mut agreed: BTreeMap<usize, (usize, &String)> = BTreeMap::new();
            let mut expected: BTreeMap<usize, Expect> = BTreeMap::new();
            for (node, table) in &tables {
                let component = components[*node];
                let expect = expected.entry(component).or_insert_with(|| {
                    self.expect(world, endpoint, healed, component, &components)
                });
                let held = table.get(endpoint);
                match (&*expect, held) {
                    (Expect::Either, _) => {}
                    (Expect::Absent, None) => {}
                    (Expect::Absent, Some(s)) => {
                        return Err(format!(
                            "node {node} holds {endpoint} {s}, which no live owner wrote"
                        ));
                    }
                    (Expect::Present(_), None) => {
                        return Err(format!("node {node} lacks {endpoint}"));
                    }
                    (Expect::Present(services), Some(s)) => {
                        if !services.contains(s) {
                            return Err(format!(
                                "node {node} holds {endpoint} {s}, not a live owner's latest ({services:?})"
                            ));
                        }
                        match agreed.get(&component) {
                            Some((other, t)) if *t != s => {
                                return Err(format!(
                                    "nodes disagree on {endpoint}: node {other} holds {t}, node {node} holds {s}"
                                ));
                            }
                            _ => {
                                agreed.insert(component, (*node, s));
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// At the end of a run: the settled state, the bound on tables, and
    /// the time convergence took.
    pub fn finish(
        &mut self,
        world: &World,
        links: &[(usize, usize)],
        healed: Duration,
        converged_at: Option<Duration>,
        bound: Duration,
    ) {
        let now = world.now();
        if let Err(detail) = self.settled(world, healed, links) {
            self.violation(Invariant::Converged, now, detail);
        } else if let Some(at) = converged_at {
            let took = at.saturating_sub(healed);
            if took > bound {
                self.violation(
                    Invariant::ConvergedInTime,
                    at,
                    format!("converged {took:?} after the heal; the bound is {bound:?}"),
                );
            }
        }
        let endpoints = self.writes.len() + self.hostile.len();
        for node in 0..world.nodes() {
            if let Some(core) = world.core(node) {
                let slots = core.tuples().slots();
                if slots > endpoints {
                    self.violation(
                        Invariant::Bounded,
                        now,
                        format!("node {node}'s table has {slots} entries; {endpoints} endpoints were ever written"),
                    );
                }
            }
        }
    }
}

/// Each node's component: nodes linked through live nodes share one (dead
/// nodes are each alone).
fn components(world: &World, links: &[(usize, usize)]) -> Vec<usize> {
    let n = world.nodes();
    let mut component: Vec<usize> = (0..n).collect();
    fn root(component: &mut [usize], mut a: usize) -> usize {
        while component[a] != a {
            component[a] = component[component[a]];
            a = component[a];
        }
        a
    }
    for &(a, b) in links {
        if world.is_alive(a) && world.is_alive(b) {
            let (ra, rb) = (root(&mut component, a), root(&mut component, b));
            component[ra.max(rb)] = ra.min(rb);
        }
    }
    (0..n).map(|a| root(&mut component, a)).collect()
}
