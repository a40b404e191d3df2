//! An in-memory network of nodes: the same [`NodeCore`]s, with frames passed
//! between them directly instead of through sockets. Deterministic (time is
//! given, not read), so tests can replay scenarios exactly, and free of file
//! descriptors, so one process can hold very many nodes.
//!
//! A link from node `a`'s remote `r` to node `b`'s server carries the routing
//! id `a` (4 bytes) + `r` (4 bytes), as a ROUTER would give a connection.

use std::collections::VecDeque;
use std::time::Instant;

use crate::node::{NodeCore, Output, Settings};

/// Where a frame goes.
#[derive(Debug)]
enum Hop {
    /// To node `to`'s server, from node `from`'s remote `remote`.
    ToServer { to: usize, frames: Vec<Vec<u8>> },
    /// To node `to`'s remote `remote`.
    ToRemote {
        to: usize,
        remote: usize,
        frames: Vec<Vec<u8>>,
    },
}

/// A delivery: node `node` learned a tuple.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The node.
    pub node: usize,
    /// Endpoint.
    pub endpoint: String,
    /// Service.
    pub service: String,
}

/// Nodes and the links between them.
#[derive(Debug)]
pub struct Mesh {
    nodes: Vec<Option<NodeCore>>,
    /// Per node, per remote: the node it is connected to.
    links: Vec<Vec<Option<usize>>>,
    queue: VecDeque<Hop>,
    deliveries: Vec<Delivery>,
    /// Frames passed between nodes.
    pub frames_moved: u64,
}

fn routing_id(node: usize, remote: usize) -> Vec<u8> {
    let mut id = (node as u32).to_be_bytes().to_vec();
    id.extend((remote as u32).to_be_bytes());
    id
}

fn parse_routing_id(id: &[u8]) -> Option<(usize, usize)> {
    let node = u32::from_be_bytes(id.get(0..4)?.try_into().ok()?) as usize;
    let remote = u32::from_be_bytes(id.get(4..8)?.try_into().ok()?) as usize;
    Some((node, remote))
}

impl Default for Mesh {
    fn default() -> Self {
        Self::new()
    }
}

impl Mesh {
    /// An empty mesh.
    pub fn new() -> Self {
        Self {
            nodes: Vec::new(),
            links: Vec::new(),
            queue: VecDeque::new(),
            deliveries: Vec::new(),
            frames_moved: 0,
        }
    }

    /// Add a node; returns its index.
    pub fn add(&mut self, settings: Settings) -> usize {
        let index = self.nodes.len();
        self.nodes
            .push(Some(NodeCore::new(format!("node-{index}"), settings)));
        self.links.push(Vec::new());
        index
    }

    /// The node at `index`, if it is up.
    pub fn node(&self, index: usize) -> Option<&NodeCore> {
        self.nodes.get(index).and_then(Option::as_ref)
    }

    /// The node at `index`, mutably, if it is up.
    pub fn node_mut(&mut self, index: usize) -> Option<&mut NodeCore> {
        self.nodes.get_mut(index).and_then(Option::as_mut)
    }

    /// Number of nodes, up or down.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the mesh has no node.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// `from` connects to `to`'s server.
    pub fn connect(&mut self, from: usize, to: usize, now: Instant) {
        let Some(node) = self.node_mut(from) else {
            return;
        };
        let endpoint = format!("mesh://{to}");
        let remote = node.connect(&endpoint, now);
        let links = &mut self.links[from];
        if links.len() <= remote {
            links.resize(remote + 1, None);
        }
        links[remote] = Some(to);
        self.collect(from);
    }

    /// The application of node `node` announces a tuple.
    pub fn announce(&mut self, node: usize, endpoint: &str, service: &str, now: Instant) {
        if let Some(n) = self.node_mut(node) {
            n.announce(endpoint, service, now);
            self.collect(node);
        }
    }

    /// Take node `node` down: its state is lost, frames to it are dropped,
    /// and links to it stay dead until [`Mesh::restart`].
    pub fn stop(&mut self, node: usize) {
        if let Some(slot) = self.nodes.get_mut(node) {
            *slot = None;
        }
    }

    /// Bring a stopped node back, empty, and tell every node linked to it
    /// that its connection is re-established (as libzmq reconnects).
    pub fn restart(&mut self, node: usize, settings: Settings, now: Instant) {
        if self.nodes.get(node).is_some_and(Option::is_some) {
            return;
        }
        self.nodes[node] = Some(NodeCore::new(format!("node-{node}"), settings));
        self.links[node].clear();
        for from in 0..self.nodes.len() {
            for remote in 0..self.links[from].len() {
                if self.links[from][remote] == Some(node) {
                    if let Some(n) = self.node_mut(from) {
                        n.on_remote_reconnected(remote, now);
                        self.collect(from);
                    }
                }
            }
        }
    }

    fn collect(&mut self, from: usize) {
        let Some(node) = self.nodes.get_mut(from).and_then(Option::as_mut) else {
            return;
        };
        for output in node.take_outputs() {
            match output {
                Output::ToPeer(mut frames) => {
                    let Some((to, remote)) = frames.first().and_then(|id| parse_routing_id(id))
                    else {
                        continue;
                    };
                    frames.remove(0);
                    self.queue.push_back(Hop::ToRemote { to, remote, frames });
                }
                Output::ToRemote { remote, frames } => {
                    if let Some(Some(to)) = self.links[from].get(remote) {
                        let mut routed = Vec::with_capacity(frames.len() + 1);
                        routed.push(routing_id(from, remote));
                        routed.extend(frames);
                        self.queue.push_back(Hop::ToServer {
                            to: *to,
                            frames: routed,
                        });
                    }
                }
                Output::Deliver { endpoint, service } => self.deliveries.push(Delivery {
                    node: from,
                    endpoint,
                    service,
                }),
            }
        }
    }

    /// Pass frames until none is in flight. Returns how many moved.
    pub fn run(&mut self, now: Instant) -> u64 {
        let mut moved = 0;
        while let Some(hop) = self.queue.pop_front() {
            moved += 1;
            let to = match hop {
                Hop::ToServer { to, frames } => {
                    let Some(node) = self.node_mut(to) else {
                        continue;
                    };
                    node.on_peer_frames(&frames, now);
                    to
                }
                Hop::ToRemote { to, remote, frames } => {
                    let Some(node) = self.node_mut(to) else {
                        continue;
                    };
                    node.on_remote_frames(remote, &frames, now);
                    to
                }
            };
            self.collect(to);
        }
        self.frames_moved += moved;
        moved
    }

    /// Let time pass: timers of every node, then the frames they cause.
    pub fn tick(&mut self, now: Instant) {
        for index in 0..self.nodes.len() {
            if let Some(node) = self.node_mut(index) {
                node.tick(now);
                self.collect(index);
            }
        }
        self.run(now);
    }

    /// Deliveries so far, taken.
    pub fn take_deliveries(&mut self) -> Vec<Delivery> {
        std::mem::take(&mut self.deliveries)
    }

    /// Inject raw frames into node `to`'s server as if from a peer.
    pub fn inject_to_server(&mut self, to: usize, frames: Vec<Vec<u8>>, now: Instant) {
        self.queue.push_back(Hop::ToServer { to, frames });
        self.run(now);
    }
}
