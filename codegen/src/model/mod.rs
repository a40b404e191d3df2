//! Validated models: what the analyse stage produces and emitters consume.

pub mod codec;
pub mod server;
