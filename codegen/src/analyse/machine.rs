//! States, events and actions of a state machine, as server and client
//! models write them; the two differ only in the rules of [`Rules`].

use std::collections::HashMap;

use super::Problems;
use crate::model::machine::*;
use crate::names;
use crate::xml::{Element, Location};

/// Where server and client machines differ.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rules {
    /// "server" or "client", for messages.
    pub kind: &'static str,
    /// An event name models may not define (the server's `terminate`).
    pub reserved: Option<&'static str>,
    /// Superstates resolved in one pass in document order, as
    /// zproto_client_c does: a state gets what its superstate had *by
    /// then* (its own events, plus its superstate's if that came earlier).
    /// Otherwise chains are followed to the end (zproto_server_c).
    pub one_pass: bool,
}

/// The machine of a model.
#[derive(Debug)]
pub(crate) struct Machine {
    pub states: Vec<State>,
    pub events: Vec<Event>,
    pub actions: Vec<String>,
}

struct RawState<'a> {
    name: String,
    element: &'a Element,
}

/// Read the `<state>`s of `root`; `None` if it has none (reported).
pub(crate) fn analyse(
    root: &Element,
    class: &str,
    messages: &[String],
    rules: Rules,
    p: &mut Problems,
) -> Option<Machine> {
    let mut raw: Vec<RawState<'_>> = Vec::new();
    for e in root.elements().filter(|e| e.name == "state") {
        let Some(name) = e
            .attr("name")
            .map(|n| n.trim().to_lowercase())
            .filter(|n| !n.is_empty())
        else {
            p.push(e.location.error("<state> needs a name attribute"));
            continue;
        };
        if let Some(other) = raw
            .iter()
            .find(|s| names::canonical(&s.name) == names::canonical(&name))
        {
            p.push(e.location.error(format!(
                "state \"{name}\" is already defined at line {}",
                other.element.location.line
            )));
            continue;
        }
        raw.push(RawState { name, element: e });
    }
    if raw.is_empty() {
        p.push(
            root.location
                .error(format!("{} \"{class}\" defines no states", rules.kind)),
        );
        return None;
    }

    let mut events: Vec<Event> = Vec::new();
    let mut actions: Vec<String> = Vec::new();
    // Own handlers per state, before inheritance.
    let mut own: HashMap<String, (Vec<Handler>, Option<Handler>)> = HashMap::new();
    let mut states: Vec<State> = Vec::new();
    for s in &raw {
        let mut handlers: Vec<Handler> = Vec::new();
        let mut wildcard: Option<Handler> = None;
        for e in s.element.elements().filter(|e| e.name == "event") {
            let Some(raw_name) = e.attr("name").map(str::trim).filter(|n| !n.is_empty()) else {
                p.push(e.location.error(format!(
                    "state \"{}\": <event> needs a name attribute",
                    s.name
                )));
                continue;
            };
            let next = e.attr("next").map(|n| n.trim().to_lowercase());
            if let Some(next) = &next {
                if !raw.iter().any(|r| &r.name == next) {
                    p.push(e.location.error(format!(
                        "state \"{}\", event \"{raw_name}\": next state \"{next}\" is not defined",
                        s.name
                    )));
                }
            }
            let handler_actions = action_list(e, &s.name, messages, &mut actions, p);
            if raw_name == "*" {
                if wildcard.is_some() {
                    p.push(
                        e.location
                            .error(format!("state \"{}\": event \"*\" appears twice", s.name)),
                    );
                }
                wildcard = Some(Handler {
                    event: String::new(),
                    next,
                    actions: handler_actions,
                });
                continue;
            }
            let name = names::canonical(raw_name);
            // Messages are written in upper case, internal events in lower
            // case: an upper-case event no message raises is a misspelled
            // message, which would otherwise become an event nothing fires.
            let shouts = raw_name.chars().any(|c| c.is_ascii_uppercase())
                && !raw_name.chars().any(|c| c.is_ascii_lowercase());
            if shouts && !messages.contains(&name) {
                let shown: Vec<String> = messages
                    .iter()
                    .map(|m| m.replace('_', " ").to_uppercase())
                    .collect();
                p.push(e.location.error(format!(
                    "state \"{}\": event \"{raw_name}\" is in upper case, as messages are, but the codec has no such message{}",
                    s.name,
                    super::schema::suggestion(
                        raw_name,
                        &shown.iter().map(String::as_str).collect::<Vec<_>>(),
                        ""
                    )
                )));
                continue;
            }
            if Some(name.as_str()) == rules.reserved {
                p.push(e.location.error(format!(
                    "state \"{}\": event \"{name}\" is reserved for the engine",
                    s.name
                )));
                continue;
            }
            if handlers.iter().any(|h| h.event == name) {
                p.push(e.location.error(format!(
                    "state \"{}\": event \"{raw_name}\" appears twice",
                    s.name
                )));
                continue;
            }
            if !events.iter().any(|ev| ev.name == name) {
                events.push(Event {
                    external: messages.contains(&name),
                    name: name.clone(),
                });
            }
            handlers.push(Handler {
                event: name,
                next,
                actions: handler_actions,
            });
        }
        let block = |tag: &str, p: &mut Problems, actions: &mut Vec<String>| -> Vec<Action> {
            s.element
                .elements()
                .filter(|e| e.name == tag)
                .flat_map(|b| action_list(b, &s.name, messages, actions, p))
                .collect()
        };
        let before = block("before", p, &mut actions);
        let after = block("after", p, &mut actions);
        let inherit = s.element.attr("inherit").map(|i| i.trim().to_lowercase());
        if let Some(parent) = &inherit {
            if !raw.iter().any(|r| &r.name == parent) {
                p.push(s.element.location.error(format!(
                    "state \"{}\": superstate \"{parent}\" is not defined",
                    s.name
                )));
            }
        }
        own.insert(s.name.clone(), (handlers, wildcard));
        states.push(State {
            name: s.name.clone(),
            inherit,
            before,
            after,
            handlers: Vec::new(),
            wildcard: None,
        });
    }

    if rules.one_pass {
        resolve_one_pass(&mut states, &own);
    } else {
        resolve_chains(&mut states, &own, &raw, p);
    }

    // Rust spellings of states and events must stay distinct.
    let mut seen: HashMap<String, &str> = HashMap::new();
    for ev in &events {
        if let Some(other) = seen.insert(names::camel(&ev.name), &ev.name) {
            p.push(root.location.error(format!(
                "events \"{other}\" and \"{}\" would both be spelt {} in Rust; rename one",
                ev.name,
                names::camel(&ev.name)
            )));
        }
    }
    Some(Machine {
        states,
        events,
        actions,
    })
}

type Own = HashMap<String, (Vec<Handler>, Option<Handler>)>;

/// Own events first, then each ancestor's in turn, to the end of the chain.
fn resolve_chains(states: &mut [State], own: &Own, raw: &[RawState<'_>], p: &mut Problems) {
    for i in 0..states.len() {
        let mut chain = vec![states[i].name.clone()];
        let (mut handlers, mut wildcard) = own[&states[i].name].clone();
        let mut parent = states[i].inherit.clone();
        while let Some(name) = parent {
            if chain.contains(&name) {
                chain.push(name);
                p.push(raw[i].element.location.error(format!(
                    "state \"{}\": inheritance cycle {}",
                    states[i].name,
                    chain.join(" -> ")
                )));
                break;
            }
            let Some((inherited, inherited_wildcard)) = own.get(&name) else {
                break;
            };
            merge(&mut handlers, &mut wildcard, inherited, inherited_wildcard);
            chain.push(name.clone());
            parent = states
                .iter()
                .find(|s| s.name == name)
                .and_then(|s| s.inherit.clone());
        }
        states[i].handlers = handlers;
        states[i].wildcard = wildcard;
    }
}

/// zproto_client_c's rule: in document order, each state takes what its
/// superstate holds at that point. A cycle cannot loop here.
fn resolve_one_pass(states: &mut [State], own: &Own) {
    let mut resolved: HashMap<String, (Vec<Handler>, Option<Handler>)> = HashMap::new();
    for state in states.iter_mut() {
        let (mut handlers, mut wildcard) = own[&state.name].clone();
        if let Some(parent) = &state.inherit {
            if let Some((inherited, inherited_wildcard)) =
                resolved.get(parent).or_else(|| own.get(parent))
            {
                merge(&mut handlers, &mut wildcard, inherited, inherited_wildcard);
            }
        }
        resolved.insert(state.name.clone(), (handlers.clone(), wildcard.clone()));
        state.handlers = handlers;
        state.wildcard = wildcard;
    }
}

fn merge(
    handlers: &mut Vec<Handler>,
    wildcard: &mut Option<Handler>,
    inherited: &[Handler],
    inherited_wildcard: &Option<Handler>,
) {
    for h in inherited {
        if !handlers.iter().any(|x| x.event == h.event) {
            handlers.push(h.clone());
        }
    }
    if wildcard.is_none() {
        wildcard.clone_from(inherited_wildcard);
    }
}

pub(crate) fn action_list(
    parent: &Element,
    state: &str,
    messages: &[String],
    custom: &mut Vec<String>,
    p: &mut Problems,
) -> Vec<Action> {
    let mut out = Vec::new();
    for a in parent.elements().filter(|a| a.name == "action") {
        let at: &Location = &a.location;
        let Some(name) = a.attr("name").map(str::trim).filter(|n| !n.is_empty()) else {
            p.push(at.error(format!(
                "state \"{state}\": <action> needs a name attribute"
            )));
            continue;
        };
        match names::canonical(name).as_str() {
            "send" => match a.attr("message") {
                None => p.push(at.error(format!(
                    "state \"{state}\": action send needs a message attribute"
                ))),
                Some(m) if !messages.contains(&names::canonical(m)) => p.push(at.error(format!(
                    "state \"{state}\": send of unknown message \"{m}\" (not in the codec model)"
                ))),
                Some(m) => out.push(Action::Send(names::canonical(m))),
            },
            "terminate" => out.push(Action::Terminate),
            other if a.attr("message").is_some() => p.push(at.error(format!(
                "state \"{state}\": action \"{name}\" has a message attribute, which only send takes{}",
                super::schema::suggestion(other, &["send"], "")
            ))),
            other => {
                if !custom.iter().any(|c| c == other) {
                    custom.push(other.to_owned());
                }
                out.push(Action::Custom(other.to_owned()));
            }
        }
    }
    out
}
