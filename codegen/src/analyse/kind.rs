//! What kind of model a `<class>` is: a codec (messages), a server or a
//! client (state machines, which name their codec with `protocol_class`).
//!
//! zproto picks its generator from the `script` attribute alone; here the
//! content decides too, so that a model cannot be compiled as what it is
//! not: a client model (with `<method>`s, `<reply>`s) is never compiled as
//! a server, and a model that mixes kinds, or whose kind cannot be told, is
//! a located error.

use crate::error::Diagnostic;
use crate::xml::Element;

/// The kind of a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    /// Messages and fields (`zproto_codec_c`).
    Codec,
    /// A server state machine (`zproto_server_c`).
    Server,
    /// A client state machine with an API (`zproto_client_c`).
    Client,
}

impl ModelKind {
    /// The kind's name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Codec => "codec",
            ModelKind::Server => "server",
            ModelKind::Client => "client",
        }
    }
}

/// Elements that only a client model has.
const CLIENT_ONLY: &[&str] = &["method", "reply", "send", "recv", "custom"];

/// Tell the kind of `root`, or say, at the element that shows it, why it
/// cannot be told.
pub fn model_kind(root: &Element) -> Result<ModelKind, Diagnostic> {
    let first = |names: &[&str]| root.elements().find(|e| names.contains(&e.name.as_str()));
    // What only a codec has, as direct children (a client's <send> and
    // <recv> name messages inside them).
    let message = first(&["message", "header", "type", "define"]);
    let state = first(&["state"]);
    let client_only = first(CLIENT_ONLY);
    let declared = root.attr("script").and_then(|script| {
        let script = script.to_ascii_lowercase();
        if script.contains("client") {
            Some(ModelKind::Client)
        } else if script.contains("server") {
            Some(ModelKind::Server)
        } else if script.contains("codec") {
            Some(ModelKind::Codec)
        } else {
            None
        }
    });
    let machine = state.is_some() || root.attr("protocol_class").is_some();
    // A codec and a state machine at once.
    if let (Some(message), true) = (message, machine) {
        let at = state.unwrap_or(message);
        return Err(at.location.error(format!(
            "a model is a codec (<message>s) or a state machine (<state>s, protocol_class), \
             not both: <{}> in a model that has <{}>",
            at.name, message.name
        )));
    }
    // Client elements in a model declared otherwise.
    if let (Some(element), Some(kind)) = (client_only, declared) {
        if kind != ModelKind::Client {
            return Err(element.location.error(format!(
                "<{}> belongs in a client model, but script = \"{}\" makes this a {} model",
                element.name,
                root.attr("script").unwrap_or(""),
                kind.name()
            )));
        }
    }
    let found = if client_only.is_some() {
        Some(ModelKind::Client)
    } else if machine {
        // A state machine without client elements: what `script` says, a
        // server if it says nothing.
        Some(
            declared
                .filter(|k| *k != ModelKind::Codec)
                .unwrap_or(ModelKind::Server),
        )
    } else if message.is_some() {
        Some(ModelKind::Codec)
    } else {
        None
    };
    match (declared, found) {
        (Some(declared), Some(found)) if declared != found => Err(root.location.error(format!(
            "script = \"{}\" makes this a {} model, but its content is a {}'s{}",
            root.attr("script").unwrap_or(""),
            declared.name(),
            found.name(),
            match found {
                ModelKind::Codec => " (<message>s)",
                _ => " (<state>s, protocol_class)",
            }
        ))),
        (_, Some(found)) => Ok(found),
        (Some(declared), None) => Ok(declared),
        (None, None) => Err(root.location.error(
            "cannot tell what kind of model this is: a codec has <message>s, \
             a server or a client has <state>s and a protocol_class",
        )),
    }
}
