//! A validated client model (`script="zproto_client_c"`): one state machine
//! per client, driven by API methods, protocol messages and timers, with
//! the API the application calls.

use std::path::PathBuf;

pub use super::machine::{Action, Event, Handler, State};

/// One client state machine and its API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientModel {
    /// Class name as written, e.g. `mlm_client`.
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
    /// Whether some state handles `expired` (the expiry timer exists).
    pub has_expiry: bool,
    /// Whether some state handles `heartbeat` (the heartbeat timer exists).
    pub has_heartbeat: bool,
    /// API methods, in document order.
    pub methods: Vec<Method>,
    /// Replies from the machine to the API, in document order.
    pub replies: Vec<Reply>,
    /// Protocol messages the API sends straight to the server (`<send>`).
    pub sends: Vec<SendMessage>,
    /// Protocol messages actions pass to the API (`<recv>`), if any.
    pub recv: Option<Recv>,
    /// Rust text from `<custom language="Rust">` files, pasted into the
    /// generated module.
    pub custom: Vec<String>,
    /// The model file, its includes, the codec model and custom files.
    pub sources: Vec<PathBuf>,
}

impl ClientModel {
    /// The one message from the server that `action` (canonical name)
    /// always runs on, if there is one ([`super::machine::message_of`]; an
    /// event a method also raises is not one). Its generated method then
    /// takes that message typed.
    pub fn message_of(&self, action: &str) -> Option<&str> {
        super::machine::message_of(&self.states, &self.events, action, |event| {
            self.methods.iter().any(|m| m.name == event)
        })
    }
}

/// An API method (`<method>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Method {
    /// Canonical name, e.g. `set_producer`; the event it raises has the
    /// same name.
    pub name: String,
    /// The method's text.
    pub doc: String,
    /// The reply property it returns (`return`), if any.
    pub returns: Option<String>,
    /// `immediate="1"`: waits for a reply without running the machine.
    pub immediate: bool,
    /// Arguments, in order; stored by name in the shared `Args`.
    pub fields: Vec<ApiField>,
    /// Canonical names of the replies it waits for (`<accept>`).
    pub accepts: Vec<String>,
}

/// A reply from the machine to the API (`<reply>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Canonical name, e.g. `success`.
    pub name: String,
    /// The reply's text.
    pub doc: String,
    /// Fields, in order; each is also a property of the client.
    pub fields: Vec<ApiField>,
}

/// A method argument or reply field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiField {
    /// Canonical name.
    pub name: String,
    /// Type.
    pub kind: ApiType,
    /// The field's text.
    pub doc: String,
}

/// Types of method arguments and reply fields (zproto_client_c's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiType {
    /// `integer`: a C `int`.
    Integer,
    /// `number` of 1, 2, 4 (the default here) or 8 bytes.
    Number(u8),
    /// `boolean`.
    Boolean,
    /// `string` and `longstr`.
    String,
    /// `strings`: a list of strings.
    Strings,
    /// `hash`: string keys to string values.
    Hash,
    /// `chunk` and `frame`: bytes.
    Bytes,
    /// `msg`: frames.
    Msg,
    /// `uuid`: 16 bytes.
    Uuid,
}

/// A message of `<send>`: the API sends it to the server as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendMessage {
    /// Canonical message name.
    pub message: String,
    /// Canonical API method name (`method`, else the message's name).
    pub method: String,
}

/// `<recv>`: messages that actions pass to the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recv {
    /// Canonical message names.
    pub messages: Vec<String>,
}
