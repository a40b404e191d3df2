//! # zgossip
//!
//! The zgossip discovery protocol, compatible on the wire with CZMQ 4.2's
//! `zgossip`. Nodes exchange endpoint=service tuples so that connecting to
//! any one node is enough to discover the whole network.
//!
//! Layers, from the models up:
//!
//! * [`msg`] and [`engine`]: the codec and the server state machine,
//!   generated at build time from `protocol/zgossip_msg.xml` and
//!   `protocol/zgossip.xml` by `zproto-codegen`;
//! * [`Gossip`]: the hand-written actions of that state machine, which
//!   hand the node their [`Effect`]s;
//! * [`NodeCore`]: the node, sans I/O (time, origin and interner given by
//!   its driver): sessions, remotes (our DEALERs to other nodes), tuples,
//!   acceptance, within its [`Limits`];
//! * [`Node`]: the node as a service of `zproto_runtime`'s ZeroMQ reactor
//!   ([`Reactor`]: one thread, any number of nodes), the handle an
//!   application holds;
//! * [`mesh`]: the same nodes linked in memory, with simulated time;
//! * [`sim`]: seeded schedules of faults on simulated clusters, with the
//!   invariants checked.
//!
//! Two nodes in one process: one binds, the other connects, and what one
//! announces the other delivers.
//!
//! ```
//! use std::time::Duration;
//! use zgossip::Node;
//!
//! let hub = Node::new("hub")?;
//! hub.bind("inproc://zgossip-doc-hub")?;
//! let edge = Node::new("edge")?;
//! edge.connect("inproc://zgossip-doc-hub")?;
//! hub.announce("tcp://10.0.0.1:5555", "printer")?;
//! let delivery = edge
//!     .recv_delivery(Duration::from_secs(5))
//!     .expect("delivered within 5 s");
//! assert_eq!(
//!     (delivery.endpoint.as_str(), delivery.service.as_str()),
//!     ("tcp://10.0.0.1:5555", "printer")
//! );
//! assert!(!delivery.removed);
//! # Ok::<(), zgossip::Error>(())
//! ```

#![warn(missing_docs)]

/// The zgossip messages, generated from `protocol/zgossip_msg.xml`, and
/// the unpacking of the batches (ANNOUNCES, ALIVES) peers that agreed them
/// send.
pub mod msg {
    pub use crate::batch::{unpack as unpack_announces, unpack_alives};

    include!(concat!(env!("OUT_DIR"), "/zgossip_msg.rs"));
}

/// The server state machine, generated from `protocol/zgossip.xml`.
pub mod engine {
    include!(concat!(env!("OUT_DIR"), "/zgossip_engine.rs"));
}

#[cfg(feature = "reactor")]
mod api;
#[cfg(feature = "async")]
mod async_node;
mod batch;
pub mod clock;
/// CURVE certificates in CZMQ's format (the runtime's, shared with
/// every server the generator builds).
#[cfg(feature = "reactor")]
pub use zproto_runtime::cert;
mod early;
pub mod limits;
pub mod mesh;
mod node;
mod plumtree;
mod remote;
mod segments;
mod server;
pub mod sim;
pub mod text;
mod tuples;

#[cfg(feature = "reactor")]
pub use api::{Delivery, Error, GossipService, Metrics, Node, Probe, Reactor, Security};
#[cfg(feature = "async")]
pub use async_node::{AsyncNode, Counted};
pub use limits::Limits;
pub use node::{
    AnnounceError, NodeCore, Output, Peer, PeerKind, RemoteId, SettingError, Settings, Stats,
    MESSAGE_KINDS, MESSAGE_TYPES, RECONNECT_MAX, SETTINGS,
};
/// A deliberate defect, for the simulator's checks that it catches them.
#[doc(hidden)]
pub use server::Mutation;
pub use server::{Change, Effect, Gossip, Refusal, DEFAULT_LEASE, EXTENSIONS};
pub use tuples::Interner;
pub use zproto_runtime::{Codec, DecodeError, EncodeError};
