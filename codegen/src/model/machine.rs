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

/// The one message that `action` (canonical name) always runs on, if there
/// is one: every handler that runs it is for the same external event (one
/// nothing else raises: `raised_otherwise`, a client's method of the same
/// name, say) and runs it before any other custom action (which might put
/// another message in the scratchpad), and no wildcard handler, `before`
/// or `after` block runs it.
pub fn message_of<'a>(
    states: &'a [State],
    events: &[Event],
    action: &str,
    raised_otherwise: impl Fn(&str) -> bool,
) -> Option<&'a str> {
    let custom = Action::Custom(action.to_owned());
    let mut message = None;
    for state in states {
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
            let external = events.iter().any(|e| e.name == handler.event && e.external)
                && !raised_otherwise(&handler.event);
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
