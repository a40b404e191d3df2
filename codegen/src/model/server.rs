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

impl ServerModel {
    /// The one message that `action` (canonical name) always runs on, if
    /// there is one ([`super::machine::message_of`]). Its generated method
    /// then takes that message typed.
    pub fn message_of(&self, action: &str) -> Option<&str> {
        super::machine::message_of(&self.states, &self.events, action, |_| false)
    }
}
