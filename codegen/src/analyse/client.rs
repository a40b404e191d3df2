//! Client models: `<class script="zproto_client_c">` to [`ClientModel`],
//! checked against the codec model named by `protocol_class`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::machine::{self, Rules};
use super::{class_name, parse_decimal, LoadedClass, Problems};
use crate::error::Diagnostics;
use crate::model::client::*;
use crate::model::codec::CodecModel;
use crate::names;
use crate::xml::{self, Element};

const RULES: Rules = Rules {
    kind: "client",
    reserved: None,
    one_pass: true,
};

/// Names the generated client API uses for itself: methods, `<send>`
/// methods and properties may not take them.
pub const RESERVED_API_NAMES: &[&str] = &[
    "new",
    "on",
    "connected",
    "set_verbose",
    "recv",
    "properties",
    "stats",
    "close",
];

/// Load a client model and its codec model, and validate both.
pub fn analyse_file(path: &Path) -> Result<(ClientModel, CodecModel), Diagnostics> {
    analyse_file_in(path, &[])
}

/// [`analyse_file`], looking for includes, the codec model and custom files
/// in `search` too.
pub fn analyse_file_in(
    path: &Path,
    search: &[PathBuf],
) -> Result<(ClientModel, CodecModel), Diagnostics> {
    let loaded = super::load_class_in(path, search)?;
    let codec = super::protocol_codec(&loaded.root, path, search, "client")?;
    let mut client = analyse(loaded, &codec, search)?;
    client.sources.extend(codec.sources.iter().cloned());
    Ok((client, codec))
}

/// Validate a loaded client `<class>` against its codec.
pub fn analyse(
    loaded: LoadedClass,
    codec: &CodecModel,
    search: &[PathBuf],
) -> Result<ClientModel, Diagnostics> {
    let LoadedClass { root, mut sources } = loaded;
    let mut p = Problems::default();
    let class = class_name(&root, &mut p);
    let messages: Vec<String> = codec.messages.iter().map(|m| m.name.clone()).collect();
    let Some(machine) = machine::analyse(&root, &class, &messages, RULES, &mut p) else {
        return Err(Diagnostics(p.0));
    };

    let replies = replies(&root, &mut p);
    let methods = methods(&root, &machine, &replies, &mut p);
    let sends = sends(&root, &messages, &mut p);
    let recv = recv(&root, &messages, &mut p);
    let base = sources
        .first()
        .and_then(|f| f.parent())
        .unwrap_or(Path::new(""))
        .to_path_buf();
    let custom = custom(&root, &base, search, &mut sources, &mut p);
    check_api_names(&root, &methods, &replies, &sends, &mut p);

    let has = |name: &str| machine.events.iter().any(|e| e.name == name);
    let model = ClientModel {
        title: root.attr("title").map(str::to_owned),
        description: root.text(),
        protocol_class: codec.class.clone(),
        messages,
        has_expiry: has("expired"),
        has_heartbeat: has("heartbeat"),
        states: machine.states,
        events: machine.events,
        actions: machine.actions,
        methods,
        replies,
        sends,
        recv,
        custom,
        sources,
        class,
    };
    p.finish(model)
}

/// A method argument or reply field.
fn api_field(f: &Element, owner: &str, p: &mut Problems) -> Option<ApiField> {
    let Some(name) = f
        .attr("name")
        .map(names::canonical)
        .filter(|n| !n.is_empty())
    else {
        p.push(f.location.error(format!("{owner}: <field> needs a name")));
        return None;
    };
    let ty = f
        .attr("type")
        .unwrap_or("string")
        .trim()
        .to_ascii_lowercase();
    let kind = match ty.as_str() {
        "integer" => ApiType::Integer,
        "number" => {
            // The client's default size is 4 (the codec's is 1).
            let size = f.attr("size").unwrap_or("4");
            match parse_decimal(size) {
                Some(n @ (1 | 2 | 4 | 8)) => ApiType::Number(n as u8),
                _ => {
                    p.push(f.location.error(format!(
                        "{owner}, field \"{name}\": number size must be 1, 2, 4 or 8, found {size}"
                    )));
                    return None;
                }
            }
        }
        "boolean" | "bool" => ApiType::Boolean,
        "string" | "longstr" => ApiType::String,
        "strings" => ApiType::Strings,
        "hash" => ApiType::Hash,
        "chunk" | "frame" => ApiType::Bytes,
        "msg" => ApiType::Msg,
        "uuid" => ApiType::Uuid,
        other => {
            p.push(f.location.error(format!(
                "{owner}, field \"{name}\": type \"{other}\" is not one a client API takes \
                 (integer, number, boolean, string, longstr, strings, hash, chunk, frame, msg, uuid)"
            )));
            return None;
        }
    };
    Some(ApiField {
        name,
        kind,
        doc: f.text(),
    })
}

/// Fields of one name share a slot (method arguments) or a property
/// (reply fields): their types must agree.
fn same_types<'a>(
    fields: impl Iterator<Item = (&'a ApiField, &'a Element)>,
    what: &str,
    p: &mut Problems,
) {
    let mut seen: HashMap<&str, &ApiField> = HashMap::new();
    for (f, at) in fields {
        match seen.get(f.name.as_str()) {
            Some(first) if first.kind != f.kind => p.push(at.location.error(format!(
                "{what} \"{}\" is {:?} here but {:?} elsewhere: fields of one name share one {}",
                f.name,
                f.kind,
                first.kind,
                if what == "property" {
                    "property"
                } else {
                    "argument slot"
                }
            ))),
            _ => {
                seen.insert(&f.name, f);
            }
        }
    }
}

/// The canonical name of a `<reply>` or `<method>`, if it has one that
/// `taken` does not hold yet.
fn new_name<'a>(
    element: &Element,
    mut taken: impl Iterator<Item = &'a str>,
    p: &mut Problems,
) -> Option<String> {
    let what = element.name.as_str();
    let Some(name) = element
        .attr("name")
        .map(names::canonical)
        .filter(|n| !n.is_empty())
    else {
        p.push(element.location.error(format!("<{what}> needs a name")));
        return None;
    };
    if taken.any(|t| t == name) {
        p.push(
            element
                .location
                .error(format!("{what} \"{name}\" is defined twice")),
        );
        return None;
    }
    Some(name)
}

/// The `<field>`s of `parent`, each also kept with its element in
/// `located` for [`same_types`].
fn fields_of(
    parent: &Element,
    owner: &str,
    located: &mut Vec<(ApiField, Element)>,
    p: &mut Problems,
) -> Vec<ApiField> {
    parent
        .elements()
        .filter(|e| e.name == "field")
        .filter_map(|f| {
            let field = api_field(f, owner, p)?;
            located.push((field.clone(), f.clone()));
            Some(field)
        })
        .collect()
}

fn replies(root: &Element, p: &mut Problems) -> Vec<Reply> {
    let mut out: Vec<Reply> = Vec::new();
    let mut located: Vec<(ApiField, Element)> = Vec::new();
    for r in root.elements().filter(|e| e.name == "reply") {
        let Some(name) = new_name(r, out.iter().map(|o| o.name.as_str()), p) else {
            continue;
        };
        let owner = format!("reply \"{}\"", names::upper(&name));
        let fields = fields_of(r, &owner, &mut located, p);
        out.push(Reply {
            name,
            doc: r.text(),
            fields,
        });
    }
    same_types(located.iter().map(|(f, e)| (f, e)), "property", p);
    out
}

fn methods(
    root: &Element,
    machine: &machine::Machine,
    replies: &[Reply],
    p: &mut Problems,
) -> Vec<Method> {
    let mut out: Vec<Method> = Vec::new();
    let mut located: Vec<(ApiField, Element)> = Vec::new();
    for m in root.elements().filter(|e| e.name == "method") {
        let Some(name) = new_name(m, out.iter().map(|o| o.name.as_str()), p) else {
            continue;
        };
        let immediate = m.attr("immediate").is_some_and(|v| v.trim() == "1");
        if !immediate && !machine.events.iter().any(|e| e.name == name) {
            p.push(m.location.error(format!(
                "method \"{name}\" raises event \"{name}\", which no state handles \
                 (add the event, or make the method immediate=\"1\")"
            )));
        }
        let owner = format!("method \"{name}\"");
        let fields = fields_of(m, &owner, &mut located, p);
        let mut accepts = Vec::new();
        for a in m.elements().filter(|e| e.name == "accept") {
            let reply = a.attr("reply").map(names::canonical).unwrap_or_default();
            if !replies.iter().any(|r| r.name == reply) {
                p.push(a.location.error(format!(
                    "method \"{name}\" accepts reply \"{}\", which no <reply> defines",
                    names::upper(&reply)
                )));
                continue;
            }
            if !accepts.contains(&reply) {
                accepts.push(reply);
            }
        }
        let returns = m
            .attr("return")
            .map(names::canonical)
            .filter(|r| !r.is_empty());
        if let Some(property) = &returns {
            let found = accepts.iter().any(|a| {
                replies
                    .iter()
                    .any(|r| &r.name == a && r.fields.iter().any(|f| &f.name == property))
            });
            if !found {
                p.push(m.location.error(format!(
                    "method \"{name}\" returns \"{property}\", which none of its accepted replies carries"
                )));
            }
        }
        out.push(Method {
            name,
            doc: m.text(),
            returns,
            immediate,
            fields,
            accepts,
        });
    }
    same_types(located.iter().map(|(f, e)| (f, e)), "argument", p);
    out
}

fn sends(root: &Element, messages: &[String], p: &mut Problems) -> Vec<SendMessage> {
    let mut out = Vec::new();
    for s in root.elements().filter(|e| e.name == "send") {
        for m in s.elements().filter(|e| e.name == "message") {
            let message = m.attr("name").map(names::canonical).unwrap_or_default();
            if !messages.contains(&message) {
                p.push(m.location.error(format!(
                    "<send> names message \"{}\", which the codec model does not define",
                    names::upper(&message)
                )));
                continue;
            }
            let method = m
                .attr("method")
                .map(names::canonical)
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| message.clone());
            out.push(SendMessage { message, method });
        }
    }
    out
}

fn recv(root: &Element, messages: &[String], p: &mut Problems) -> Option<Recv> {
    let mut found: Option<Recv> = None;
    for r in root.elements().filter(|e| e.name == "recv") {
        let list = found.get_or_insert(Recv {
            messages: Vec::new(),
        });
        for m in r.elements().filter(|e| e.name == "message") {
            let message = m.attr("name").map(names::canonical).unwrap_or_default();
            if !messages.contains(&message) {
                p.push(m.location.error(format!(
                    "<recv> names message \"{}\", which the codec model does not define",
                    names::upper(&message)
                )));
                continue;
            }
            list.messages.push(message);
        }
    }
    found
}

/// `<custom language="Rust">` files: the text of their `<source>`s.
/// Other languages are zproto's C and have no meaning here.
fn custom(
    root: &Element,
    base: &Path,
    search: &[PathBuf],
    sources: &mut Vec<PathBuf>,
    p: &mut Problems,
) -> Vec<String> {
    let mut out = Vec::new();
    for c in root.elements().filter(|e| e.name == "custom") {
        let rust = c
            .attr("language")
            .is_some_and(|l| l.trim().eq_ignore_ascii_case("rust"));
        if !rust {
            continue;
        }
        let Some(filename) = c.attr("filename") else {
            p.push(c.location.error("<custom> needs a filename"));
            continue;
        };
        let file = super::find(base, Path::new(filename), search);
        match xml::parse_file(&file) {
            Ok(element) => {
                sources.push(file);
                let blocks = std::iter::once(&element)
                    .filter(|e| e.name == "source")
                    .chain(element.elements().filter(|e| e.name == "source"));
                for block in blocks {
                    out.push(block.text());
                }
            }
            Err(mut d) => {
                if d.line == 0 {
                    d = c.location.error(format!(
                        "cannot read custom file \"{}\": {}",
                        file.display(),
                        d.message
                    ));
                }
                p.push(d);
            }
        }
    }
    out
}

/// Generated API names must be distinct and leave the client's own alone.
fn check_api_names(
    root: &Element,
    methods: &[Method],
    replies: &[Reply],
    sends: &[SendMessage],
    p: &mut Problems,
) {
    let mut taken: HashMap<String, String> = RESERVED_API_NAMES
        .iter()
        .map(|n| (n.to_string(), "the client itself".to_owned()))
        .collect();
    let mut claim = |name: String, what: String, p: &mut Problems| {
        if let Some(other) = taken.get(&name) {
            p.push(root.location.error(format!(
                "{what} and {other} would both be the client method {name}(); rename one"
            )));
        } else {
            taken.insert(name, what);
        }
    };
    for m in methods {
        claim(names::snake(&m.name), format!("method \"{}\"", m.name), p);
    }
    for s in sends {
        claim(
            names::snake(&s.method),
            format!("<send> method \"{}\"", s.method),
            p,
        );
    }
    let mut properties: Vec<&str> = Vec::new();
    for f in replies.iter().flat_map(|r| &r.fields) {
        if !properties.contains(&f.name.as_str()) {
            properties.push(&f.name);
            claim(names::snake(&f.name), format!("property \"{}\"", f.name), p);
        }
    }
}
