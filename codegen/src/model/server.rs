//! A validated server model: a state machine per client session, with
//! superstates resolved, events classified and actions named.

use std::path::PathBuf;

pub use super::machine::{Action, Event, Handler, State};

/// One server state machine (`<class>` with `script="zproto_server_c"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerModel {
    /// Class name as written, e.g. `zgossip`.
    pub class: String,
    /// One-line title.
    pub title: Option<String>,
    /// The class's own text.
    pub description: String,
    /// The codec model's class name (`protocol_class`).
    pub protocol_class: String,
    /// Canonical names of the protocol's messages.
    pub messages: Vec<String>,
    /// States in document order; the first is the initial state.
    pub states: Vec<State>,
    /// Every event named anywhere, in order of first appearance (not `*`).
    pub events: Vec<Event>,
    /// Custom actions, in order of first appearance.
    pub actions: Vec<String>,
    /// Whether some state handles `expired` (sessions then expire).
    pub has_expiry: bool,
    /// The model file, its includes and the codec model file.
    pub sources: Vec<PathBuf>,
}
