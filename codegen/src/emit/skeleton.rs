//! The one-time handler skeleton of a server or client model (a tera template), as
//! zproto writes `name.c` only when it does not exist yet.

use serde::Serialize;

use crate::error::Error;
use crate::model::client::ClientModel;
use crate::model::codec::CodecModel;
use crate::model::machine::State;
use crate::model::server::ServerModel;
use crate::names;

const TEMPLATE: &str = include_str!("../../templates/server_skeleton.rs.tera");
const CLIENT_TEMPLATE: &str = include_str!("../../templates/client_skeleton.rs.tera");

#[derive(Serialize)]
struct Context {
    class: String,
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
            })
            .collect(),
    };
    super::render(name, template, &context)
}
