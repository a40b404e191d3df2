//! Conformance suite for `zproto-codegen`: our own models (every field
//! type, every engine rule), and the codec and server models of public
//! ZeroMQ projects (zproto, CZMQ, Malamute, Zyre, FileMQ) when the
//! reference material is beside the repository, generated at build time.
//!
//! Each module denies warnings, so a generated codec that compiles with a
//! warning fails the build. Each module also carries the round-trip tests
//! generated from its model's `<test>` values; `tests/` holds the golden-frame
//! and robustness tests.

macro_rules! generated {
    ($(#[$doc:meta] $name:ident),* $(,)?) => {
        generated!(@cfg all(), $(#[$doc] $name),*);
    };
    (@cfg $cfg:meta, $(#[$doc:meta] $name:ident),* $(,)?) => {
        $(
            #[$doc]
            #[cfg($cfg)]
            #[deny(warnings, clippy::all)]
            pub mod $name {
                include!(concat!(env!("OUT_DIR"), "/", stringify!($name), ".rs"));
            }
        )*
    };
}

// Our own models, always here.
generated! {
    /// Our own model with every field type and naming corner case.
    every_type,
    /// Our own codec for the engine-rules tests.
    rules_msg,
    /// Our own server model exercising every execution rule.
    rules_server_engine,
    /// Our own pubsub codec.
    feed_msg,
    /// Our own small protocol for the host and client tests.
    echo_msg,
    /// Its server.
    echo_server_engine,
    /// Its client.
    echo_client_engine,
}

// The public models, when the reference material is beside the repository.
generated! {
    @cfg shared_models,
    /// zproto's example protocol (every field type).
    zproto_example,
    /// CZMQ's zgossip messages.
    zgossip_msg,
    /// Malamute's broker protocol (composite types, constants, msg fields).
    mlm_proto,
    /// Zyre's ZRE protocol (two header fields, hashes, lists).
    zre_msg,
    /// FileMQ's protocol (ids over 127, a constant naming a define).
    fmq_msg,
    /// zproto's peer example (a virtual protocol).
    example_peer_msg,
    /// The pubsub test model (a market feed).
    pubsub_example_msg,
    /// CZMQ's zgossip server state machine.
    zgossip_engine,
    /// Malamute's broker state machine.
    mlm_server_engine,
    /// FileMQ's server state machine.
    fmq_server_engine,
    /// Malamute's client (machine and API).
    mlm_client_engine,
    /// FileMQ's client (machine and API).
    fmq_client_engine,
}

/// `every_type` with its `chunk`, `frame` and `msg` fields as `Bytes`
/// (`Config::bytes`).
#[deny(warnings, clippy::all)]
pub mod every_type_bytes {
    include!(concat!(env!("OUT_DIR"), "/bytes/every_type.rs"));
}

/// The rules models, generated with `Config::include_file`: one file that
/// declares a module per generated file (the engine finds its codec as a
/// sibling).
#[deny(warnings, clippy::all)]
pub mod via_include_file {
    include!(concat!(env!("OUT_DIR"), "/included/mod.rs"));
}

pub mod echo;
pub mod golden;

/// The handler skeleton `zproto skeleton` writes for `rules_server.xml`,
/// compiled as is.
#[deny(warnings, clippy::all)]
pub mod rules_skeleton {
    include!(concat!(env!("OUT_DIR"), "/rules_skeleton.rs"));
}

/// The directory of golden frame captures (`shared/spec/golden`).
#[cfg(shared_models)]
pub const GOLDEN_DIR: &str = env!("ZPROTO_GOLDEN_DIR");

/// Whether the public models and golden frames were found at build time.
pub const HAS_SHARED: bool = cfg!(shared_models);
