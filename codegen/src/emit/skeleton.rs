//! The one-time handler skeleton of a server or client model (a tera template), as
//! zproto writes `name.c` only when it does not exist yet.

use serde::Serialize;

use crate::error::Error;
use crate::model::client::{ClientModel, Method};
use crate::model::codec::CodecModel;
use crate::model::machine::{Action, State};
use crate::model::server::ServerModel;
use crate::names;

const TEMPLATE: &str = include_str!("../../templates/server_skeleton.rs.tera");
const CLIENT_TEMPLATE: &str = include_str!("../../templates/client_skeleton.rs.tera");

#[derive(Serialize)]
struct Context {
    class: String,
    /// The skeleton's struct: the class in CamelCase (`EchoClient`).
    type_name: String,
    title: Option<String>,
    source: String,
    engine_path: String,
    codec_path: String,
    message_enum: String,
    actions: Vec<ActionContext>,
}

#[derive(Serialize)]
struct ActionContext {
    label: String,
    method: String,
    usage: String,
    /// The message the action takes typed (its struct), if it does.
    message: Option<String>,
    /// What the body may read, send or answer, from where the model runs
    /// it: one comment line each.
    hints: Vec<String>,
}

/// Rust source of a skeleton implementing every action of `model` with an
/// empty body. `engine_path` and `codec_path` are where the generated engine
/// and codec modules are, as seen from the skeleton.
pub fn emit(
    model: &ServerModel,
    codec: &CodecModel,
    engine_path: &str,
    codec_path: &str,
) -> Result<String, Error> {
    let machine = Machine {
        class: &model.class,
        title: &model.title,
        sources: &model.sources,
        states: &model.states,
        actions: &model.actions,
        methods: &[],
        typed: model
            .actions
            .iter()
            .filter_map(|a| Some((a.clone(), model.message_of(a)?.to_owned())))
            .collect(),
    };
    render(
        &machine,
        codec,
        engine_path,
        codec_path,
        "server_skeleton.rs",
        TEMPLATE,
    )
}

/// Rust source of a skeleton implementing every action of the client
/// `model` with an empty body.
pub fn emit_client(
    model: &ClientModel,
    codec: &CodecModel,
    engine_path: &str,
    codec_path: &str,
) -> Result<String, Error> {
    let machine = Machine {
        class: &model.class,
        title: &model.title,
        sources: &model.sources,
        states: &model.states,
        actions: &model.actions,
        methods: &model.methods,
        typed: model
            .actions
            .iter()
            .filter_map(|a| Some((a.clone(), model.message_of(a)?.to_owned())))
            .collect(),
    };
    render(
        &machine,
        codec,
        engine_path,
        codec_path,
        "client_skeleton.rs",
        CLIENT_TEMPLATE,
    )
}

/// What a skeleton shows of a server or client model.
struct Machine<'a> {
    class: &'a str,
    title: &'a Option<String>,
    sources: &'a [std::path::PathBuf],
    states: &'a [State],
    actions: &'a [String],
    /// A client's API methods (none for a server).
    methods: &'a [Method],
    /// Actions that take their message typed: (action, message).
    typed: Vec<(String, String)>,
}

fn render(
    model: &Machine<'_>,
    codec: &CodecModel,
    engine_path: &str,
    codec_path: &str,
    name: &'static str,
    template: &str,
) -> Result<String, Error> {
    let context = Context {
        class: model.class.to_owned(),
        type_name: names::camel(model.class),
        title: model.title.clone(),
        source: super::source_name(model.sources),
        engine_path: engine_path.to_owned(),
        codec_path: codec_path.to_owned(),
        message_enum: names::camel(&codec.class),
        actions: model
            .actions
            .iter()
            .map(|a| ActionContext {
                label: a.replace('_', " "),
                method: names::snake(a),
                usage: super::server::usage(model.states, a),
                message: model
                    .typed
                    .iter()
                    .find(|(action, _)| action == a)
                    .map(|(_, message)| names::camel(message)),
                hints: hints(model, codec, a),
            })
            .collect(),
    };
    super::render(name, template, &context)
}

/// A message's name as the model writes it (`HELLO OK`).
fn shown(name: &str) -> String {
    name.replace('_', " ").to_uppercase()
}

/// `names` as a list for a comment: `a, b and c`.
fn listed(names: &[String]) -> String {
    match names {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// The fields of the codec's message `name`, if it is one.
fn message_fields(codec: &CodecModel, name: &str) -> Option<Vec<String>> {
    codec.messages.iter().find(|m| m.name == name).map(|m| {
        m.fields
            .iter()
            .filter(|f| f.constant.is_none())
            .map(|f| format!("`{}`", f.name))
            .collect()
    })
}

/// What the body of `action` may use, from every place the model runs it:
/// the message that arrived, the method's arguments and the replies it
/// waits for, the message sent after it.
fn hints(model: &Machine<'_>, codec: &CodecModel, action: &str) -> Vec<String> {
    let custom = Action::Custom(action.to_owned());
    let mut hints: Vec<String> = Vec::new();
    let mut add = |hint: String| {
        if !hints.contains(&hint) {
            hints.push(hint);
        }
    };
    for handler in model
        .states
        .iter()
        .flat_map(|s| s.handlers.iter().chain(&s.wildcard))
    {
        let Some(at) = handler.actions.iter().position(|a| *a == custom) else {
            continue;
        };
        let event = handler.event.as_str();
        if let Some(fields) = message_fields(codec, event) {
            let with = if fields.is_empty() {
                String::new()
            } else {
                format!(" (fields {})", listed(&fields))
            };
            let typed = model.typed.iter().any(|(a, _)| a == action);
            let place = if typed { "`message`" } else { "`io.message()`" };
            add(format!(
                "{place} is the {} that arrived{with}.",
                shown(event)
            ));
        } else if let Some(method) = model.methods.iter().find(|m| m.name == event) {
            if !method.fields.is_empty() {
                let fields: Vec<String> = method
                    .fields
                    .iter()
                    .map(|f| format!("`{}`", f.name))
                    .collect();
                add(format!(
                    "`io.args()` holds `{}`'s arguments: {}.",
                    method.name,
                    listed(&fields)
                ));
            }
        } else if event == "expired" || event == "heartbeat" {
            add(format!("Run when the `{event}` timer fires."));
        }
        let is_method = model.methods.iter().any(|m| m.name == event);
        if !model.methods.is_empty() && !is_method {
            let mut replies: Vec<String> = Vec::new();
            for reply in model.methods.iter().flat_map(|m| &m.accepts) {
                let reply = format!("`Reply::{}`", names::camel(reply));
                if !replies.contains(&reply) {
                    replies.push(reply);
                }
            }
            add(format!(
                "A method waiting for an answer gets it from `io.reply(...)`: {}.",
                listed(&replies)
            ));
        }
        // The replies that the methods which can be waiting here accept.
        for method in model.methods {
            if method.name == event && !method.accepts.is_empty() {
                let replies: Vec<String> = method
                    .accepts
                    .iter()
                    .map(|r| format!("`Reply::{}`", names::camel(r)))
                    .collect();
                add(format!(
                    "`{}` waits for {}: answer with `io.reply(...)`.",
                    method.name,
                    listed(&replies)
                ));
            }
        }
        if let Some(Action::Send(message)) = handler.actions[at + 1..]
            .iter()
            .find(|a| matches!(a, Action::Send(_) | Action::Custom(_)))
        {
            let fields = message_fields(codec, message).unwrap_or_default();
            let with = if fields.is_empty() {
                String::new()
            } else {
                format!(" (fields {})", listed(&fields))
            };
            add(format!(
                "{} is sent next: build it with `io.set_message(...)`{with}.",
                shown(message)
            ));
        }
    }
    if hints.is_empty() {
        hints.push("Nothing arrives with it, and nothing is sent after it.".to_owned());
    }
    hints
}
