//! A validated codec model: the message set of one protocol, with header
//! fields copied into every message, composite types expanded, ids assigned
//! and names normalised. Emitters read only this.

use std::path::PathBuf;

/// One protocol's message set (`<class>` with `script="zproto_codec_c"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecModel {
    /// Class name as written in the model, e.g. `zgossip_msg`.
    pub class: String,
    /// One-line title.
    pub title: Option<String>,
    /// The class's own text.
    pub description: String,
    /// Text of an included `<license>`, copied into file banners.
    pub license: Option<String>,
    /// Signature, 0..15.
    pub signature: u8,
    /// `virtual="1"`: a missing `frame` field decodes as empty.
    pub is_virtual: bool,
    /// `pubsub="1"`: body frames start with the id and a NUL-terminated
    /// topic instead of the signature.
    pub pubsub: bool,
    /// `<define>` constants.
    pub defines: Vec<Define>,
    /// `<grammar>` text, for the ABNF file.
    pub grammar: Option<String>,
    /// Messages in document order.
    pub messages: Vec<Message>,
    /// Composite `<type>`s, for the ABNF file (already expanded in messages).
    pub types: Vec<CompositeType>,
    /// The model file and every file it includes.
    pub sources: Vec<PathBuf>,
}

/// A `<define>` constant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Define {
    /// Canonical name (`max keys` becomes `max_keys`).
    pub name: String,
    /// Its value.
    pub value: DefineValue,
    /// Its text.
    pub description: String,
}

/// The value of a `<define>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DefineValue {
    /// A decimal number.
    Integer(u64),
    /// Anything else, kept as text.
    Text(String),
}

/// Which side sends a message; only used by the default ABNF rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `role="client"`.
    Client,
    /// `role="server"`.
    Server,
}

/// One `<message>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Canonical name (`CONNECTION OPEN` becomes `connection_open`).
    pub name: String,
    /// Message id on the wire.
    pub id: u8,
    /// Optional sender role.
    pub role: Option<Role>,
    /// The message's text.
    pub description: String,
    /// Header fields first, then the message's own, composites expanded.
    pub fields: Vec<Field>,
}

/// One field of a message, after expansion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Canonical name (`public key` becomes `public_key`).
    pub name: String,
    /// Wire type.
    pub kind: FieldKind,
    /// A `value` constant: written on encode, checked on decode, no slot in
    /// the message struct.
    pub constant: Option<Constant>,
    /// The field's text.
    pub description: String,
    /// Self-test value, from `<test>` or zproto's default.
    pub test: TestValue,
    /// Where the field came from.
    pub origin: Origin,
    /// A `chunk`, `frame` or `msg` field held as `bytes::Bytes` (cheap to
    /// clone) rather than `Vec<u8>`: `Config::bytes`.
    pub bytes: bool,
    /// `optional="1"`, on a number at the end of a message's body: an
    /// `Option`, absent when the body frame ends before it. zproto's C
    /// codecs ignore bytes after their last field, so a model can grow
    /// such fields without breaking peers built from the older model.
    pub optional: bool,
}

/// Where a field of a message was declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The class `<header>`.
    Header,
    /// The message itself.
    Message,
    /// A sub-field of a composite-typed message field.
    Composite {
        /// The message field's canonical name (`client`).
        field: String,
        /// The `<type>`'s canonical name (`person`).
        type_name: String,
    },
}

/// Wire type of a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// Unsigned big-endian number of 1, 2, 4 or 8 bytes.
    Number(u8),
    /// Fixed-size raw bytes.
    Octets(usize),
    /// Up to 255 bytes of text with a 1-byte length.
    String,
    /// Text with a 4-byte length.
    Longstr,
    /// List of longstrs with a 4-byte count.
    Strings,
    /// Map of string keys to longstr values with a 4-byte count.
    Hash,
    /// Bytes with a 4-byte length.
    Chunk,
    /// 16 raw bytes.
    Uuid,
    /// A ZeroMQ frame of its own.
    Frame,
    /// All remaining frames; always the last field.
    Msg,
}

impl FieldKind {
    /// Whether its Rust type is `Copy` (numbers, octets, uuids).
    pub fn is_copy(&self) -> bool {
        matches!(
            self,
            FieldKind::Number(_) | FieldKind::Octets(_) | FieldKind::Uuid
        )
    }

    /// The zproto type name, as in the model.
    pub fn model_name(&self) -> &'static str {
        match self {
            FieldKind::Number(_) => "number",
            FieldKind::Octets(_) => "octets",
            FieldKind::String => "string",
            FieldKind::Longstr => "longstr",
            FieldKind::Strings => "strings",
            FieldKind::Hash => "hash",
            FieldKind::Chunk => "chunk",
            FieldKind::Uuid => "uuid",
            FieldKind::Frame => "frame",
            FieldKind::Msg => "msg",
        }
    }

    /// Whether the field travels in the body frame.
    pub fn in_body(&self) -> bool {
        !matches!(self, FieldKind::Frame | FieldKind::Msg)
    }
}

impl std::fmt::Display for FieldKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FieldKind::Number(size) => write!(
                f,
                "number of {size} byte{}",
                if *size == 1 { "" } else { "s" }
            ),
            FieldKind::Octets(size) => write!(f, "octets of {size} bytes"),
            other => f.write_str(other.model_name()),
        }
    }
}

/// A constant (`value`) field's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Constant {
    /// For a number field.
    Number(u64),
    /// For a string field.
    String(String),
}

/// A field's self-test value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestValue {
    /// number.
    Number(u64),
    /// string, longstr.
    Text(String),
    /// octets (zero-padded), chunk, frame.
    Bytes(Vec<u8>),
    /// uuid.
    Uuid([u8; 16]),
    /// strings.
    List(Vec<String>),
    /// hash (first value of a repeated key wins, as on the wire).
    Hash(Vec<(String, String)>),
    /// msg: its frames.
    Frames(Vec<Vec<u8>>),
    /// A constant field has none.
    None,
}

/// A composite `<type>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompositeType {
    /// Canonical name.
    pub name: String,
    /// The type's text.
    pub description: String,
    /// Sub-fields: canonical name, type, text.
    pub fields: Vec<(String, FieldKind, String)>,
}
