//! Deterministic simulation: the real [`crate::NodeCore`] in a seeded world
//! of faults, with invariants checked as it runs and once it settles.
//!
//! A seed draws a [`Schedule`] (cluster, writes, faults); [`run`] plays it
//! on a [`World`] whose links behave as libzmq's do, and reports the
//! [`Violation`]s. The same seed gives the same run, message for message
//! (the [`Outcome::digest`] says so). A failing schedule [`shrink`]s to
//! fewer nodes and events, and [`Outcome::replay_command`] replays it with
//! a trace. `zgossip simulate` runs this from the command line.

mod check;
mod rng;
mod schedule;
mod world;

use std::time::Duration;

pub use check::{Invariant, Violation};
pub use rng::Rng;
pub use schedule::{
    parse_faults, Action, Attack, FaultKind, Plan, Planned, Schedule, Timers, Topology,
    UnknownFault,
};
pub use world::{Counts, World};

use check::Checker;

use crate::server::Mutation;

/// How to run a schedule.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Keep a readable trace of every event.
    pub trace: bool,
    /// Break node 0 on purpose (to show that the checks catch it).
    pub mutation: Option<Mutation>,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The schedule run.
    pub schedule: Schedule,
    /// A digest of every message delivered and everything the applications
    /// were told, in order.
    pub digest: u64,
    /// Invariants broken (at most one of each).
    pub violations: Vec<Violation>,
    /// Counters.
    pub counts: Counts,
    /// How long after the heal the cluster held what it must, for good.
    pub converged_after: Option<Duration>,
    /// The trace, if asked for.
    pub trace: Vec<String>,
    /// The events kept, if the schedule was shrunk.
    pub kept: Option<Vec<usize>>,
}

impl Outcome {
    /// The command that replays this run with a trace.
    pub fn replay_command(&self) -> String {
        let plan = &self.schedule.plan;
        let faults = if plan.faults.is_empty() {
            "none".to_owned()
        } else {
            plan.faults
                .iter()
                .map(|f| f.name())
                .collect::<Vec<_>>()
                .join(",")
        };
        let mut command = format!(
            "zgossip simulate --seed {} --nodes {} --faults {} --timers {}",
            self.schedule.seed,
            self.schedule.nodes,
            faults,
            plan.timers.name()
        );
        if let Some(kept) = &self.kept {
            let list: Vec<String> = kept.iter().map(usize::to_string).collect();
            command.push_str(&format!(" --keep '{}'", list.join(",")));
        }
        command.push_str(" --trace");
        command
    }
}

/// The bound on convergence after the heal: libzmq's longest reconnection
/// backoff, then a synchronisation per hop (a resync spacing and a few
/// keepalives each), and Plumtree's repair of what a lazy link announced.
pub fn convergence_bound(schedule: &Schedule) -> Duration {
    let s = &schedule.settings;
    let per_hop = s.resync.max(s.ping_interval * 4) * 2;
    let hops = u32::try_from(schedule.diameter().min(64)).unwrap_or(64) + 1;
    let (_, graft_wait) = crate::plumtree::graft_waits(s.lease);
    world::RECONNECT_MAX + per_hop * hops + graft_wait * 2
}

/// Play a schedule.
pub fn run(schedule: &Schedule, options: &Options) -> Outcome {
    let mut settings = schedule.settings;
    let mut world = World::new(
        schedule.seed,
        schedule.nodes,
        &schedule.links,
        settings,
        &schedule.drift_ppm,
        schedule.jitter,
        options.trace,
    );
    if let Some(mutation) = options.mutation {
        settings.mutation = Some(mutation);
        world.set_settings(0, settings);
    }
    let mut checker = Checker::new(schedule.settings.lease);
    for (index, event) in schedule.events.iter().enumerate() {
        world.plan(event.at, index);
    }
    for node in 0..schedule.nodes {
        if !schedule.late.contains(&node) {
            world.start(node);
        }
    }
    // The active phase.
    while let Some(index) = world.run_until(schedule.heal_at) {
        let seen = world.take_seen();
        checker.observe(&world, seen);
        act(&mut world, &mut checker, &schedule.events[index].action);
        let seen = world.take_seen();
        checker.observe(&world, seen);
    }
    // Every open fault ends.
    for link in 0..schedule.links.len() {
        world.set_cut(link, false);
    }
    for node in 0..schedule.nodes {
        world.resume(node);
        world.set_slow(node, false);
    }
    let healed = schedule.heal_at;
    let end = healed + schedule.settle;
    let step = schedule.plan.timers.scale(Duration::from_millis(500));
    let mut converged_at = None;
    let mut t = healed;
    let (mut last_look, mut settled) = (Duration::ZERO, false);
    while t < end {
        t = (t + step).min(end);
        let mut acted = false;
        while let Some(index) = world.run_until(t) {
            // Planned after the heal: none are drawn so, but a replay may.
            act(&mut world, &mut checker, &schedule.events[index].action);
            acted = true;
        }
        let seen = world.take_seen();
        // Tables change only with what the applications are told (or an
        // action); what they must hold changes with time (leases running
        // out): look again after news, and at least every simulated second.
        let news = acted || !seen.is_empty();
        checker.observe(&world, seen);
        if news || t >= last_look + Duration::from_secs(1) || t >= end {
            last_look = t;
            settled = checker.settled(&world, healed, &schedule.links).is_ok();
        }
        if settled {
            converged_at.get_or_insert(t);
        } else {
            converged_at = None;
        }
    }
    let bound = convergence_bound(schedule);
    checker.finish(&world, &schedule.links, healed, converged_at, bound);
    Outcome {
        schedule: schedule.clone(),
        digest: world.digest(),
        violations: checker.violations().to_vec(),
        counts: world.counts(),
        converged_after: converged_at.map(|at| at.saturating_sub(healed)),
        trace: world.take_trace(),
        kept: None,
    }
}

fn act(world: &mut World, checker: &mut Checker, action: &Action) {
    match action {
        Action::Announce {
            node,
            endpoint,
            service,
        } => {
            if world.announce(*node, endpoint, service) {
                checker.wrote(world, *node, endpoint, Some(service));
            }
        }
        Action::Unpublish { node, endpoint } => {
            if world.unpublish(*node, endpoint) {
                checker.wrote(world, *node, endpoint, None);
            }
        }
        Action::Cut(links) => links.iter().for_each(|&l| world.set_cut(l, true)),
        Action::Heal(links) => links.iter().for_each(|&l| world.set_cut(l, false)),
        Action::Crash(node) => {
            if world.is_alive(*node) {
                let incarnation = world.incarnation(*node);
                world.crash(*node);
                checker.died(world, *node, incarnation);
            }
        }
        Action::Restart(node) => {
            if !world.is_alive(*node) {
                let before = world.incarnation(*node);
                world.start(*node);
                // The application announces again what it had announced.
                for (endpoint, service) in checker.announced_by(*node, before) {
                    if world.announce(*node, &endpoint, &service) {
                        checker.wrote(world, *node, &endpoint, Some(&service));
                    }
                }
            }
        }
        Action::Pause(node) => world.pause(*node),
        Action::Resume(node) => world.resume(*node),
        Action::Jump(node, by) => world.jump(*node, *by),
        Action::Slow(node, on) => world.set_slow(*node, *on),
        Action::Hostile { victim, attack } => {
            if *attack == Attack::Pin {
                checker.hostile(world::PINNED);
            }
            for forgery in world.attack(*victim, *attack) {
                checker.forged(forgery);
            }
        }
    }
}

/// Shrink a failing run: fewer nodes (the same seed drawn smaller), then
/// fewer events, while the first invariant it broke still breaks. Returns
/// the smallest failing outcome found (the one given if nothing smaller
/// fails).
pub fn shrink(failing: &Outcome, options: &Options) -> Outcome {
    let Some(first) = failing.violations.first().map(|v| v.invariant) else {
        return failing.clone();
    };
    let breaks = |o: &Outcome| o.violations.iter().any(|v| v.invariant == first);
    let mut best = failing.clone();
    // Fewer nodes: the same seed with a smaller cluster.
    for nodes in 2..failing.schedule.nodes {
        let plan = Plan {
            nodes: Some(nodes),
            ..failing.schedule.plan.clone()
        };
        let outcome = run_caught(&Schedule::draw(failing.schedule.seed, &plan), options);
        if breaks(&outcome) {
            best = outcome;
            break;
        }
    }
    // Fewer events: drop each in turn, keep what still fails.
    let drawn = Schedule::draw(best.schedule.seed, &best.schedule.plan);
    let mut kept: Vec<usize> = match &best.kept {
        Some(kept) => kept.clone(),
        None => (0..drawn.events.len()).collect(),
    };
    let mut i = kept.len();
    while i > 0 {
        i -= 1;
        let mut fewer = kept.clone();
        fewer.remove(i);
        let outcome = run_caught(&drawn.keeping(&fewer), options);
        if breaks(&outcome) {
            kept = fewer;
            best = Outcome {
                kept: Some(kept.clone()),
                ..outcome
            };
        }
    }
    best
}

/// [`run`], with a panic reported as a violation of its own.
pub fn run_caught(schedule: &Schedule, options: &Options) -> Outcome {
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(schedule, options)));
    caught.unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Outcome {
            schedule: schedule.clone(),
            digest: 0,
            violations: vec![Violation {
                invariant: Invariant::NoPanic,
                at: Duration::ZERO,
                detail: format!("panicked: {message}"),
            }],
            counts: Counts::default(),
            converged_after: None,
            trace: Vec::new(),
            kept: None,
        }
    })
}

/// Run the schedules of `count` seeds from `first`, on `threads` threads;
/// outcomes in seed order.
pub fn run_seeds(
    first: u64,
    count: u64,
    plan: &Plan,
    options: &Options,
    threads: usize,
) -> Vec<Outcome> {
    let threads = threads.max(1) as u64;
    let mut outcomes: Vec<Outcome> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|worker| {
                scope.spawn(move || {
                    (0..count)
                        .filter(|i| i % threads == worker)
                        .map(|i| run_caught(&Schedule::draw(first.wrapping_add(i), plan), options))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    });
    outcomes.sort_by_key(|o| o.schedule.seed.wrapping_sub(first));
    outcomes
}
