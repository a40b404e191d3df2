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
    /// there is one: every handler that runs it is for the same external
    /// event and runs it before any other custom action (which might put
    /// another message in the scratchpad), and no wildcard handler,
    /// `before` or `after` block runs it. Its generated method then takes
    /// that message typed.
    pub fn message_of(&self, action: &str) -> Option<&str> {
        let custom = Action::Custom(action.to_owned());
        let mut message = None;
        for state in &self.states {
            let elsewhere = state.before.contains(&custom)
                || state.after.contains(&custom)
                || state
                    .wildcard
                    .as_ref()
                    .is_some_and(|w| w.actions.contains(&custom));
            if elsewhere {
                return None;
            }
            for handler in state
                .handlers
                .iter()
                .filter(|h| h.actions.contains(&custom))
            {
                let external = self
                    .events
                    .iter()
                    .any(|e| e.name == handler.event && e.external);
                let first = handler
                    .actions
                    .iter()
                    .find(|a| matches!(a, Action::Custom(_)))
                    == Some(&custom);
                match message {
                    _ if !external || !first => return None,
                    None => message = Some(handler.event.as_str()),
                    Some(m) if m == handler.event => {}
                    Some(_) => return None,
                }
            }
        }
        message
    }
}
