//! An in-memory network of nodes: the same [`NodeCore`]s, with frames passed
//! between them directly instead of through sockets. Deterministic (time is
//! given, not read), so tests can replay scenarios exactly, and free of file
//! descriptors, so one process can hold very many nodes (every libzmq socket
//! holds one, and a process may have at most 20,000 here).
//!
//! A link from node `a`'s remote `r` to node `b`'s server carries the routing
//! id `a` (4 bytes) + `r` (4 bytes), as a ROUTER would give a connection.

use std::collections::VecDeque;
use std::time::Instant;

use smallvec::SmallVec;
use zproto_runtime::Packet;

use crate::node::{AnnounceError, NodeCore, Output, RemoteId, Settings};
use crate::tuples::Interner;

/// Frames on their way, as the sender packed them (one allocation each).
#[derive(Debug)]
enum Hop {
    /// To node `to`'s server, from the remote with routing id `from`.
    ToServer {
        to: usize,
        from: RoutingId,
        frames: Packet,
    },
    /// To node `to`'s server, as they are (routing id first).
    Injected { to: usize, frames: Packet },
    /// To node `to`'s remote `remote`: the frames after the first (the
    /// routing id the sending ROUTER was given).
    ToRemote {
        to: usize,
        remote: usize,
        frames: Packet,
    },
}

/// The routing id of a remote's link.
type RoutingId = [u8; 8];

/// A delivery: node `node` learned a tuple, or no longer holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The node.
    pub node: usize,
    /// Endpoint.
    pub endpoint: String,
    /// Service (for a removal, the one it had).
    pub service: String,
    /// Removed or expired.
    pub removed: bool,
}

/// One node of the mesh and its links.
#[derive(Debug)]
struct Slot {
    /// The node, while it is up.
    core: Option<NodeCore>,
    settings: Settings,
    /// The nodes it connects to, in connection order; its remote `r` is
    /// linked to `targets[r]`.
    targets: Vec<usize>,
    /// The (node, remote) pairs connected to its server.
    incoming: Vec<(usize, usize)>,
}

/// Nodes and the links between them.
#[derive(Debug, Default)]
pub struct Mesh {
    slots: Vec<Slot>,
    queue: VecDeque<Hop>,
    deliveries: Vec<Delivery>,
    /// Whether deliveries are kept for [`Mesh::take_deliveries`].
    forget_deliveries: bool,
    /// Frames passed between nodes so far.
    pub frames_moved: u64,
    /// The tuple strings of every node of the mesh, held once.
    interner: Interner,
}

fn routing_id(node: usize, remote: usize) -> RoutingId {
    let mut id = [0; 8];
    id[..4].copy_from_slice(&(node as u32).to_be_bytes());
    id[4..].copy_from_slice(&(remote as u32).to_be_bytes());
    id
}

fn parse_routing_id(id: &[u8]) -> Option<(usize, usize)> {
    let node = u32::from_be_bytes(id.get(0..4)?.try_into().ok()?) as usize;
    let remote = u32::from_be_bytes(id.get(4..8)?.try_into().ok()?) as usize;
    Some((node, remote))
}

impl Mesh {
    /// An empty mesh.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a node; returns its index.
    pub fn add(&mut self, settings: Settings) -> usize {
        let index = self.slots.len();
        self.slots.push(Slot {
            core: Some(NodeCore::with_interner(
                format!("node-{index}"),
                settings,
                self.interner.clone(),
            )),
            settings,
            targets: Vec::new(),
            incoming: Vec::new(),
        });
        index
    }

    /// The node at `index`, if it is up.
    pub fn node(&self, index: usize) -> Option<&NodeCore> {
        self.slots.get(index).and_then(|s| s.core.as_ref())
    }

    /// The node at `index`, mutably, if it is up.
    pub fn node_mut(&mut self, index: usize) -> Option<&mut NodeCore> {
        self.slots.get_mut(index).and_then(|s| s.core.as_mut())
    }

    /// Whether node `index` is up.
    pub fn is_up(&self, index: usize) -> bool {
        self.node(index).is_some()
    }

    /// Number of nodes, up or down.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether the mesh has no node.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// `from` connects to `to`'s server.
    pub fn connect(&mut self, from: usize, to: usize, now: Instant) {
        if from >= self.slots.len() || to >= self.slots.len() {
            return;
        }
        let remote = self.slots[from].targets.len();
        self.slots[from].targets.push(to);
        self.slots[to].incoming.push((from, remote));
        self.open_remote(from, to, now);
    }

    /// Open `from`'s session with `to` (its next remote). Links behave as
    /// tcp connections do: the server learns of the connection before its
    /// first message, and of its end when `from` stops.
    fn open_remote(&mut self, from: usize, to: usize, now: Instant) {
        let Some(node) = self.node_mut(from) else {
            return;
        };
        let remote = node.connect(&format!("mesh://{to}"), now);
        if let Some(server) = self.node_mut(to) {
            server.on_peer_connected(&routing_id(from, remote.index()));
        }
        self.collect(from, now);
    }

    /// The application of node `node` announces a tuple (nothing if the
    /// node is down).
    pub fn announce(
        &mut self,
        node: usize,
        endpoint: &str,
        service: &str,
        now: Instant,
    ) -> Result<(), AnnounceError> {
        if let Some(n) = self.node_mut(node) {
            n.announce(endpoint, service, now)?;
            self.collect(node, now);
        }
        Ok(())
    }

    /// Take node `node` down: its state is lost and frames to it are dropped
    /// until [`Mesh::restart`]; the servers it was connected to see its
    /// connections end.
    pub fn stop(&mut self, node: usize) {
        let Some(slot) = self.slots.get_mut(node) else {
            return;
        };
        if slot.core.take().is_none() {
            return;
        }
        for (remote, to) in self.slots[node].targets.clone().into_iter().enumerate() {
            if let Some(server) = self.node_mut(to) {
                server.on_peer_disconnected(&routing_id(node, remote));
            }
        }
    }

    /// Bring a stopped node back, empty: it connects again to the nodes it
    /// had connected to, and every node connected to it learns that its
    /// connection is re-established (as libzmq reconnects).
    pub fn restart(&mut self, node: usize, now: Instant) {
        let Some(slot) = self.slots.get_mut(node) else {
            return;
        };
        if slot.core.is_some() {
            return;
        }
        let mut core =
            NodeCore::with_interner(format!("node-{node}"), slot.settings, self.interner.clone());
        let targets = slot.targets.clone();
        for &(from, remote) in &slot.incoming {
            core.on_peer_connected(&routing_id(from, remote));
        }
        slot.core = Some(core);
        // The new node's remotes are numbered from 0 again, in the same order.
        for to in targets {
            self.open_remote(node, to, now);
        }
        for (from, remote) in self.slots[node].incoming.clone() {
            if let Some(n) = self.node_mut(from) {
                n.on_remote_reconnected(RemoteId::of(remote), now);
                self.collect(from, now);
            }
        }
    }

    fn collect(&mut self, from: usize, now: Instant) {
        let Some(node) = self.slots.get_mut(from).and_then(|s| s.core.as_mut()) else {
            return;
        };
        let mut refused = Vec::new();
        for output in node.take_outputs() {
            match output {
                Output::ToPeer(frames) => {
                    let peer = frames.first().and_then(parse_routing_id);
                    let Some((to, remote)) = peer.filter(|&(to, remote)| {
                        self.slots
                            .get(to)
                            .is_some_and(|s| s.core.is_some() && s.targets.len() > remote)
                    }) else {
                        // No such peer: a ROUTER_MANDATORY send says so.
                        refused.push(Output::ToPeer(frames));
                        continue;
                    };
                    self.queue.push_back(Hop::ToRemote { to, remote, frames });
                }
                Output::ToRemote { remote, frames } => {
                    if let Some(&to) = self.slots[from].targets.get(remote.index()) {
                        self.queue.push_back(Hop::ToServer {
                            to,
                            from: routing_id(from, remote.index()),
                            frames,
                        });
                    }
                }
                Output::Peer(_) => {}
                Output::Deliver { .. } if self.forget_deliveries => {}
                Output::Deliver { endpoint, service } => self.deliveries.push(Delivery {
                    node: from,
                    endpoint,
                    service,
                    removed: false,
                }),
                Output::Remove { .. } if self.forget_deliveries => {}
                Output::Remove {
                    endpoint, service, ..
                } => self.deliveries.push(Delivery {
                    node: from,
                    endpoint,
                    service,
                    removed: true,
                }),
            }
        }
        if refused.is_empty() {
            return;
        }
        if let Some(node) = self.node_mut(from) {
            node.on_refused(refused.into_iter().map(|output| (output, true)), now);
            self.collect(from, now);
        }
    }

    /// Frames in flight.
    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }

    /// Pass frames until none is in flight. Returns how many moved.
    pub fn run(&mut self, now: Instant) -> u64 {
        self.step(u64::MAX, now)
    }

    /// Pass at most `budget` frames. Returns how many moved.
    pub fn step(&mut self, budget: u64, now: Instant) -> u64 {
        let mut moved = 0;
        while moved < budget {
            let Some(hop) = self.queue.pop_front() else {
                break;
            };
            moved += 1;
            let to = match hop {
                Hop::ToServer { to, from, frames } => {
                    let Some(node) = self.node_mut(to) else {
                        continue;
                    };
                    let mut routed: SmallVec<[&[u8]; 4]> = SmallVec::new();
                    routed.push(&from);
                    routed.extend(frames.frames());
                    node.on_peer_frames(&routed, now);
                    to
                }
                Hop::Injected { to, frames } => {
                    let Some(node) = self.node_mut(to) else {
                        continue;
                    };
                    frames.with_frames(0, |frames| node.on_peer_frames(frames, now));
                    to
                }
                Hop::ToRemote { to, remote, frames } => {
                    let Some(node) = self.node_mut(to) else {
                        continue;
                    };
                    frames.with_frames(1, |frames| {
                        node.on_remote_frames(RemoteId::of(remote), frames, now)
                    });
                    to
                }
            };
            self.collect(to, now);
        }
        self.frames_moved += moved;
        moved
    }

    /// Let time pass: timers of every node, then the frames they cause.
    pub fn tick(&mut self, now: Instant) {
        self.tick_nodes(now);
        self.run(now);
    }

    /// Timers of every node whose deadline is due; frames stay queued.
    pub fn tick_nodes(&mut self, now: Instant) {
        for index in 0..self.slots.len() {
            let Some(node) = self.node_mut(index) else {
                continue;
            };
            if node.next_deadline().is_some_and(|at| at <= now) {
                node.tick(now);
                self.collect(index, now);
            }
        }
    }

    /// Drop deliveries instead of keeping them (a swarm counts tuples
    /// instead, and a million deliveries would weigh more than the nodes).
    pub fn forget_deliveries(&mut self) {
        self.forget_deliveries = true;
        self.deliveries = Vec::new();
    }

    /// Deliveries so far, taken.
    pub fn take_deliveries(&mut self) -> Vec<Delivery> {
        std::mem::take(&mut self.deliveries)
    }

    /// Inject raw frames into node `to`'s server as if from a peer.
    pub fn inject_to_server(&mut self, to: usize, frames: Vec<Vec<u8>>, now: Instant) {
        self.queue.push_back(Hop::Injected {
            to,
            frames: Packet::from_frames(&frames),
        });
        self.run(now);
    }
}
