//! Server models: `<class>` with `<state>`s to [`ServerModel`], checked
//! against the codec model named by `protocol_class`.

use std::path::Path;

use super::machine::{self, Rules};
use super::{class_name, LoadedClass, Problems};
use crate::error::Diagnostics;
use crate::model::codec::CodecModel;
use crate::model::server::*;
use crate::xml::Element;

/// The event that stands for "end this session" and for protocol messages no
/// state names; models may not define it.
pub const TERMINATE_EVENT: &str = "terminate";

const RULES: Rules = Rules {
    kind: "server",
    reserved: Some(TERMINATE_EVENT),
    one_pass: false,
};

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
    let codec = super::protocol_codec(&loaded.root, path, search, "server")?;
    let mut server = analyse(loaded, &codec)?;
    server.sources.extend(codec.sources.iter().cloned());
    Ok((server, codec))
}

/// Whether `root` looks like a state machine (server or client) rather than a
/// codec model; [`super::kind::model_kind`] tells the three apart.
pub fn is_server_model(root: &Element) -> bool {
    root.attr("protocol_class").is_some() || root.elements().any(|e| e.name == "state")
}

/// Validate a loaded server `<class>` against its codec.
pub fn analyse(loaded: LoadedClass, codec: &CodecModel) -> Result<ServerModel, Diagnostics> {
    let LoadedClass { root, sources } = loaded;
    let mut p = Problems::default();
    let class = class_name(&root, &mut p);
    let messages: Vec<String> = codec.messages.iter().map(|m| m.name.clone()).collect();
    let Some(machine) = machine::analyse(&root, &class, &messages, RULES, &mut p) else {
        return Err(Diagnostics(p.0));
    };
    let model = ServerModel {
        title: root.attr("title").map(str::to_owned),
        description: root.text(),
        protocol_class: codec.class.clone(),
        messages,
        has_expiry: machine.events.iter().any(|e| e.name == "expired"),
        states: machine.states,
        events: machine.events,
        actions: machine.actions,
        sources,
        class,
    };
    p.finish(model)
}
