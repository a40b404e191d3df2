//! Malamute, the zproto broker protocol (streams, mailboxes, services),
//! rebuilt with zproto-rs from models of our own (`models/`): the codec
//! and the client state machine are generated at build time; `client`
//! holds the client's actions and the API users call.
//!
//! ```no_run
//! use std::time::Duration;
//! use malamute::client::MlmClient;
//!
//! let mut client = MlmClient::with_defaults()?;
//! client.connect("tcp://127.0.0.1:9999", 2000, "me", Duration::from_secs(5))?;
//! client.set_producer("weather", Duration::from_secs(5))?;
//! client.send_text("temp.london", &["22C"])?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

/// The Malamute protocol's messages (generated from `models/mlm_proto.xml`).
#[deny(warnings, clippy::all)]
pub mod mlm_proto {
    include!(concat!(env!("OUT_DIR"), "/mlm_proto.rs"));
}

/// The client state machine and its typed API (generated from
/// `models/mlm_client.xml`).
#[deny(warnings, clippy::all)]
pub mod mlm_client_engine {
    include!(concat!(env!("OUT_DIR"), "/mlm_client_engine.rs"));
}

pub mod client;

/// The broker's state machine (generated from `models/mlm_server.xml`).
#[deny(warnings, clippy::all)]
pub mod mlm_server_engine {
    include!(concat!(env!("OUT_DIR"), "/mlm_server_engine.rs"));
}

pub mod broker;

pub mod metrics;
