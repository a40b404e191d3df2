//! Server models: `<class>` with `<state>`s to [`ServerModel`], checked
//! against the codec model named by `protocol_class`.

use std::collections::HashMap;
use std::path::Path;

use super::{class_name, LoadedClass, Problems};
use crate::error::Diagnostics;
use crate::model::codec::CodecModel;
use crate::model::server::*;
use crate::names;
use crate::xml::{Element, Location};

/// The event that stands for "end this session" and for protocol messages no
/// state names; models may not define it.
pub const TERMINATE_EVENT: &str = "terminate";

/// Load a server model, its codec model (`protocol_dir` + `protocol_class` +
/// `.xml`, relative to the server model), and validate both.
pub fn analyse_file(path: &Path) -> Result<(ServerModel, CodecModel), Diagnostics> {
    analyse_file_in(path, &[])
}

/// [`analyse_file`], looking for includes and the codec model in `search`
/// too.
pub fn analyse_file_in(
    path: &Path,
    search: &[std::path::PathBuf],
) -> Result<(ServerModel, CodecModel), Diagnostics> {
    let loaded = super::load_class_in(path, search)?;
    let root = &loaded.root;
    let Some(protocol_class) = root.attr("protocol_class").or_else(|| root.attr("proto")) else {
        return Err(root
            .location
            .error("a server model needs protocol_class, the name of its codec model")
            .into());
    };
    let dir = path.parent().unwrap_or(Path::new(""));
    let codec_path = super::find(
        dir,
        &Path::new(root.attr("protocol_dir").unwrap_or("")).join(format!("{protocol_class}.xml")),
        search,
    );
    if !codec_path.exists() {
        return Err(root
            .location
            .error(format!(
                "protocol_class \"{protocol_class}\": codec model {} not found",
                codec_path.display()
            ))
            .into());
    }
    let codec = super::codec::analyse_file_in(&codec_path, search)?;
    let mut server = analyse(loaded, &codec)?;
    server.sources.extend(codec.sources.iter().cloned());
    Ok((server, codec))
}

/// Whether `root` looks like a state machine (server or client) rather than a
/// codec model; [`super::kind::model_kind`] tells the three apart.
pub fn is_server_model(root: &Element) -> bool {
    root.attr("protocol_class").is_some() || root.elements().any(|e| e.name == "state")
}

struct RawState<'a> {
    name: String,
    element: &'a Element,
}

/// Validate a loaded server `<class>` against its codec.
pub fn analyse(loaded: LoadedClass, codec: &CodecModel) -> Result<ServerModel, Diagnostics> {
    let LoadedClass { root, sources } = loaded;
    let mut p = Problems::default();
    let class = class_name(&root, &mut p);
    let messages: Vec<String> = codec.messages.iter().map(|m| m.name.clone()).collect();

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
                .error(format!("server \"{class}\" defines no states")),
        );
        return Err(Diagnostics(p.0));
    }

    let mut events: Vec<Event> = Vec::new();
    let mut actions: Vec<String> = Vec::new();
    let mut has_expiry = false;
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
            let handler_actions = action_list(e, &s.name, &messages, &mut actions, &mut p);
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
            if name == TERMINATE_EVENT {
                p.push(e.location.error(format!(
                    "state \"{}\": event \"terminate\" is reserved for the engine",
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
            has_expiry |= name == "expired";
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
                .flat_map(|b| action_list(b, &s.name, &messages, actions, p))
                .collect()
        };
        let before = block("before", &mut p, &mut actions);
        let after = block("after", &mut p, &mut actions);
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

    // Resolve superstates: own events first, then each ancestor's in turn.
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
            for h in inherited {
                if !handlers.iter().any(|x| x.event == h.event) {
                    handlers.push(h.clone());
                }
            }
            if wildcard.is_none() {
                wildcard = inherited_wildcard.clone();
            }
            chain.push(name.clone());
            parent = states
                .iter()
                .find(|s| s.name == name)
                .and_then(|s| s.inherit.clone());
        }
        states[i].handlers = handlers;
        states[i].wildcard = wildcard;
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

    let model = ServerModel {
        title: root.attr("title").map(str::to_owned),
        description: root.text(),
        protocol_class: codec.class.clone(),
        messages,
        states,
        events,
        actions,
        has_expiry,
        sources,
        class,
    };
    p.finish(model)
}

fn action_list(
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
