//! # zgossip-cli
//!
//! The `zgossip` command's parts, for its binary and its tests: the
//! [`zgossip`] library stays free of what only a command needs (argument
//! parsing, progress bars, charts, CSV, an HTTP server, JSON).
//!
//! * [`command`]: the text commands a node reads on stdin (CZMQ's pipe
//!   commands, and ours);
//! * [`config`]: a node's settings, binds, connections and announcements in
//!   a ZPL file;
//! * [`peers_file`]: zmqnet's peers file;
//! * [`metrics`]: a node's counters over HTTP, in the OpenMetrics format;
//! * [`swarm`]: thousands of nodes in one process, until they converge.
//!
//! ```
//! use zgossip_cli::command::TextCommand;
//!
//! let command = TextCommand::parse("ANNOUNCE tcp://10.0.0.1:5555 printer")?;
//! assert!(matches!(command, Some(TextCommand::Announce(..))));
//! # Ok::<(), zgossip_cli::command::ParseError>(())
//! ```

#![warn(missing_docs)]

pub mod command;
pub mod config;
pub mod metrics;
pub mod peers_file;
pub mod swarm;
