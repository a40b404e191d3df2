//! Validated models: what the analyse stage produces and emitters consume.

pub mod client;
pub mod codec;
pub mod machine;
pub mod server;
