//! What server and client models share: states with superstates resolved,
//! handlers, events and actions.

/// A state, with its superstates' events already copied in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    /// Lower-case name, spaces kept (`have tuple`).
    pub name: String,
    /// Its superstate, if any.
    pub inherit: Option<String>,
    /// Actions run on entering the state.
    pub before: Vec<Action>,
    /// Actions run on leaving the state.
    pub after: Vec<Action>,
    /// Named handlers: own first, then inherited, in declaration order.
    pub handlers: Vec<Handler>,
    /// The `*` handler, own or inherited.
    pub wildcard: Option<Handler>,
}

/// What a state does on one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handler {
    /// Canonical event name (empty for `*`).
    pub event: String,
    /// Next state, if any (`next` even to the same state runs after/before).
    pub next: Option<String>,
    /// Actions in order.
    pub actions: Vec<Action>,
}

/// An event and whether a protocol message raises it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Canonical name.
    pub name: String,
    /// True when a protocol message of the same name raises it.
    pub external: bool,
}

/// One action of a handler or a before/after block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Built-in: send the named message (canonical name) to the session.
    Send(String),
    /// Built-in: end the session (server), stop the machine (client).
    Terminate,
    /// An application action (canonical name, e.g. `get_first_tuple`).
    Custom(String),
}
