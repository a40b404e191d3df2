//! # zgossip
//!
//! The zgossip discovery protocol, compatible on the wire with CZMQ 4.2's
//! `zgossip`. Nodes exchange endpoint=service tuples so that connecting to
//! any one node is enough to discover the whole network.
//!
//! The codec is generated at build time from `protocol/zgossip_msg.xml` by
//! `zproto-codegen`; see [`msg`].

/// The zgossip messages, generated from `protocol/zgossip_msg.xml`.
pub mod msg {
    include!(concat!(env!("OUT_DIR"), "/zgossip_msg.rs"));
}

pub use zproto_runtime::{Codec, DecodeError, EncodeError};
