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
//! * [`server`]: the hand-written actions of that state machine;
//! * [`remote`]: the hand-written remote side (our DEALER to another node);
//! * [`node`]: the node, sans I/O: sessions, remotes, tuples, acceptance;
//! * [`api`]: the node as a service of `zproto_runtime`'s ZeroMQ reactor
//!   (one thread, any number of nodes), and [`Node`], the handle an
//!   application holds;
//! * [`mesh`]: the same nodes linked in memory, with simulated time.
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

/// The zgossip messages, generated from `protocol/zgossip_msg.xml`.
pub mod msg {
    include!(concat!(env!("OUT_DIR"), "/zgossip_msg.rs"));
}

/// The server state machine, generated from `protocol/zgossip.xml`.
pub mod engine {
    include!(concat!(env!("OUT_DIR"), "/zgossip_engine.rs"));
}

pub mod api;
pub mod batch;
pub mod clock;
/// CURVE certificates in CZMQ's format (the runtime's, shared with
/// every server the generator builds).
pub use zproto_runtime::cert;
pub mod early;
pub mod limits;
pub mod mesh;
pub mod node;
pub mod plumtree;
pub mod remote;
mod segments;
pub mod server;
pub mod sim;
pub mod text;
pub mod tuples;

pub use api::Node;
pub use api::{Delivery, Error, Metrics, Probe, Reactor, Security};
pub use limits::Limits;
pub use node::{AnnounceError, NodeCore, Output, Peer, PeerKind, RemoteId, Settings, Stats};
pub use zproto_runtime::{Codec, DecodeError, EncodeError};
