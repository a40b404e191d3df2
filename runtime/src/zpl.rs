//! ZPL, the ZeroMQ Property Language (rfc.zeromq.org/spec/4): the config
//! file format of zproto servers (`LOAD`) and of CZMQ's `zconfig`.
//!
//! ```text
//! # A comment
//! server
//!     timeout = 5000          # milliseconds
//!     bind
//!         endpoint = "tcp://*:9999"
//! ```
//!
//! Each line is a name, optionally `= value`; indentation (four spaces a
//! level) makes a name the child of the one above it. Values may be quoted
//! with `"` or `'`; unquoted values end at a `#`. A name's path is its
//! ancestors' names and its own, joined by `/` (`server/bind/endpoint`).
//! Input is a file, so hostile: every problem is a [`ZplError`] with its
//! line and column, never a panic.

use std::fmt;

/// A line that is not ZPL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{column}: {message}")]
pub struct ZplError {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// One name of the tree, with its value and children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ZplNode {
    /// Its name.
    pub name: String,
    /// Its value (`None` for a name with no `=`).
    pub value: Option<String>,
    /// Its children, in file order.
    pub children: Vec<ZplNode>,
    /// Its line in the file.
    pub line: usize,
}

/// A parsed ZPL document: the top-level names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Zpl {
    /// Top-level names, in file order.
    pub roots: Vec<ZplNode>,
}

/// Characters a ZPL name may hold besides letters and digits.
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "$-_@.&+/".contains(c)
}

/// Longest accepted line and deepest nesting: a file is hostile input.
const MAX_LINE: usize = 64 * 1024;
const MAX_DEPTH: usize = 64;

/// Read a small text file (a config or passwords file) with
/// [`crate::file::read_text`]: at most `limit` bytes, a regular file only.
/// The error is the reason, for the caller to name the file.
pub fn read_small_file(path: &std::path::Path, limit: u64) -> Result<String, String> {
    crate::file::read_text(path, limit).map_err(|e| e.to_string())
}

impl Zpl {
    /// Parse a document.
    pub fn parse(text: &str) -> Result<Self, ZplError> {
        let mut doc = Zpl::default();
        // The path of nodes (as child indexes) open at each depth.
        let mut open: Vec<usize> = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let fail = |column: usize, message: String| ZplError {
                line,
                column,
                message,
            };
            if raw.len() > MAX_LINE {
                return Err(fail(1, format!("line longer than {MAX_LINE} bytes")));
            }
            let content = raw.trim_start_matches(' ');
            let indent = raw.len() - content.len();
            if content.starts_with('\t') {
                return Err(fail(indent + 1, "indent with spaces, not tabs".into()));
            }
            let content = content.trim_end();
            if content.is_empty() || content.starts_with('#') {
                continue;
            }
            if indent % 4 != 0 {
                return Err(fail(
                    indent + 1,
                    format!("indentation of {indent} spaces is not a multiple of 4"),
                ));
            }
            let depth = indent / 4;
            if depth > open.len() {
                return Err(fail(
                    indent + 1,
                    "indented more than one level below the line above".into(),
                ));
            }
            if depth >= MAX_DEPTH {
                return Err(fail(indent + 1, format!("nested deeper than {MAX_DEPTH}")));
            }
            let node = parse_line(content, line, indent + 1)?;
            open.truncate(depth);
            let siblings = children_at(&mut doc.roots, &open);
            siblings.push(node);
            open.push(siblings.len() - 1);
        }
        Ok(doc)
    }

    /// The node at `path` (`a/b/c`), the first of that name at each level.
    pub fn node(&self, path: &str) -> Option<&ZplNode> {
        let mut names = path.split('/').filter(|n| !n.is_empty());
        let first = names.next()?;
        let mut node = self.roots.iter().find(|n| n.name == first)?;
        for name in names {
            node = node.children.iter().find(|n| n.name == name)?;
        }
        Some(node)
    }

    /// The value at `path`, if the path exists and has one.
    pub fn get(&self, path: &str) -> Option<&str> {
        self.node(path)?.value.as_deref()
    }

    /// Every (path, value) pair, depth first, in file order.
    pub fn values(&self) -> Vec<(String, String)> {
        fn walk(node: &ZplNode, prefix: &str, out: &mut Vec<(String, String)>) {
            let path = if prefix.is_empty() {
                node.name.clone()
            } else {
                format!("{prefix}/{}", node.name)
            };
            if let Some(value) = &node.value {
                out.push((path.clone(), value.clone()));
            }
            for child in &node.children {
                walk(child, &path, out);
            }
        }
        let mut out = Vec::new();
        for root in &self.roots {
            walk(root, "", &mut out);
        }
        out
    }
}

fn children_at<'a>(roots: &'a mut Vec<ZplNode>, open: &[usize]) -> &'a mut Vec<ZplNode> {
    let mut children = roots;
    for &i in open {
        children = &mut children[i].children;
    }
    children
}

/// `name`, `name = value`, `name = "value"`, each with an optional comment.
fn parse_line(content: &str, line: usize, column: usize) -> Result<ZplNode, ZplError> {
    let fail = |offset: usize, message: String| ZplError {
        line,
        column: column + offset,
        message,
    };
    let name_len = content
        .char_indices()
        .find(|&(_, c)| !is_name_char(c))
        .map_or(content.len(), |(i, _)| i);
    if name_len == 0 {
        let c = content.chars().next().unwrap_or(' ');
        return Err(fail(0, format!("a name cannot start with {c:?}")));
    }
    let name = content[..name_len].to_owned();
    let rest = content[name_len..].trim_start();
    let offset = content.len() - rest.len();
    let value = if rest.is_empty() || rest.starts_with('#') {
        None
    } else if let Some(after) = rest.strip_prefix('=') {
        let value_text = after.trim_start();
        let value_offset = content.len() - value_text.len();
        Some(parse_value(value_text).map_err(|m| fail(value_offset, m))?)
    } else {
        return Err(fail(
            offset,
            format!("expected \"=\" or the end of the line after \"{name}\""),
        ));
    };
    Ok(ZplNode {
        name,
        value,
        children: Vec::new(),
        line,
    })
}

fn parse_value(text: &str) -> Result<String, String> {
    let Some(quote) = text.chars().next().filter(|c| *c == '"' || *c == '\'') else {
        // Unquoted: up to a comment.
        let end = text.find('#').unwrap_or(text.len());
        return Ok(text[..end].trim_end().to_owned());
    };
    let body = &text[1..];
    let Some(end) = body.find(quote) else {
        return Err(format!("no closing {quote} for the value"));
    };
    let trailing = body[end + 1..].trim_start();
    if !(trailing.is_empty() || trailing.starts_with('#')) {
        return Err(format!("unexpected \"{trailing}\" after the quoted value"));
    }
    Ok(body[..end].to_owned())
}

impl fmt::Display for Zpl {
    /// Back to ZPL text (values quoted).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn write(node: &ZplNode, depth: usize, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "{:indent$}{}", "", node.name, indent = depth * 4)?;
            if let Some(value) = &node.value {
                let quote = if value.contains('"') { '\'' } else { '"' };
                write!(f, " = {quote}{value}{quote}")?;
            }
            writeln!(f)?;
            node.children
                .iter()
                .try_for_each(|c| write(c, depth + 1, f))
        }
        self.roots.iter().try_for_each(|r| write(r, 0, f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
# Malamute-style configuration
server
    timeout = 5000      # ms
    verbose = 0
mlm_server
    security
        mechanism = plain
    bind
        endpoint = \"tcp://*:9999\"
";

    #[test]
    fn paths_values_and_comments() {
        let zpl = Zpl::parse(SAMPLE).expect("parses");
        assert_eq!(zpl.get("server/timeout"), Some("5000"));
        assert_eq!(zpl.get("mlm_server/bind/endpoint"), Some("tcp://*:9999"));
        assert_eq!(zpl.get("mlm_server/security/mechanism"), Some("plain"));
        assert_eq!(zpl.get("mlm_server/bind"), None);
        assert_eq!(zpl.node("mlm_server/bind").map(|n| n.line), Some(8));
        assert_eq!(zpl.values().len(), 4);
        // It writes back to what it read (comments aside).
        let again = Zpl::parse(&zpl.to_string()).expect("parses");
        assert_eq!(again.values(), zpl.values());
    }

    #[test]
    fn problems_are_located() {
        let cases = [
            (
                "a\n   b = 1\n",
                "2:4: indentation of 3 spaces is not a multiple of 4",
            ),
            (
                "a\n        b = 1\n",
                "2:9: indented more than one level below the line above",
            ),
            ("a = \"open\n", "1:5: no closing \" for the value"),
            (
                "a b\n",
                "1:3: expected \"=\" or the end of the line after \"a\"",
            ),
            ("= 1\n", "1:1: a name cannot start with '='"),
            ("\ta = 1\n", "1:1: indent with spaces, not tabs"),
            (
                "a = 'x' y\n",
                "1:5: unexpected \"y\" after the quoted value",
            ),
        ];
        for (text, expected) in cases {
            let err = Zpl::parse(text).expect_err(text);
            assert_eq!(err.to_string(), expected, "{text:?}");
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2000 {
            let len = (seed % 64) as usize;
            let text: String = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    [' ', ' ', ' ', ' ', '\n', '=', '"', '#', 'a', '/', '\t', 'é']
                        [(seed % 12) as usize]
                })
                .collect();
            let _ = Zpl::parse(&text);
        }
    }
}

/// zproto's text form of messages (`zpl` / `new_zpl` in the C codec): a
/// `message` value naming the message (`CLASS_MESSAGE`), an optional
/// `routing_id` in lower-case hex, and a `content` section with the fields:
/// numbers in decimal; octets, chunk, uuid and frame in lower-case hex; a
/// list as children `0`, `1`, ...; a hash as a child per key; a msg field
/// as children `0`, `1`, ... of hex frames. Generated codecs build on these.
pub mod message {
    use super::{Zpl, ZplNode};

    /// Why a ZPL document is not a message of this protocol.
    #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
    pub enum ZplMessageError {
        /// No `message` value.
        #[error("no \"message\" value naming the message")]
        NoMessage,
        /// A `message` this protocol does not have.
        #[error("unknown message \"{0}\"")]
        UnknownMessage(String),
        /// A field's value is missing or not of its type.
        #[error("field \"{field}\": {reason}")]
        Field {
            /// The field.
            field: &'static str,
            /// What is wrong.
            reason: String,
        },
    }

    fn field_error(field: &'static str, reason: impl Into<String>) -> ZplMessageError {
        ZplMessageError::Field {
            field,
            reason: reason.into(),
        }
    }

    fn leaf(name: &str, value: String) -> ZplNode {
        ZplNode {
            name: name.to_owned(),
            value: Some(value),
            ..ZplNode::default()
        }
    }

    /// Lower-case hex.
    pub fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn unhex(field: &'static str, text: &str) -> Result<Vec<u8>, ZplMessageError> {
        if text.len() % 2 != 0 {
            return Err(field_error(field, "hex of odd length"));
        }
        (0..text.len())
            .step_by(2)
            .map(|i| {
                text.get(i..i + 2)
                    .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                    .ok_or_else(|| field_error(field, format!("\"{text}\" is not hex")))
            })
            .collect()
    }

    /// A document: `message`, the optional `routing_id`, and `content`.
    pub fn document(name: String, routing_id: Option<&[u8]>, content: Vec<ZplNode>) -> Zpl {
        let mut roots = vec![leaf("message", name)];
        if let Some(id) = routing_id {
            roots.push(leaf("routing_id", hex(id)));
        }
        roots.push(ZplNode {
            name: "content".into(),
            children: content,
            ..ZplNode::default()
        });
        Zpl { roots }
    }

    /// The parts of a message document.
    #[derive(Debug)]
    pub struct Opened<'a> {
        /// The `message` value.
        pub name: &'a str,
        /// The routing id, if the document has one.
        pub routing_id: Option<Vec<u8>>,
        /// The `content` section's fields.
        pub content: &'a [ZplNode],
    }

    /// The message name, routing id and content of a document.
    pub fn open(zpl: &Zpl) -> Result<Opened<'_>, ZplMessageError> {
        let name = zpl.get("message").ok_or(ZplMessageError::NoMessage)?;
        let routing_id = zpl
            .get("routing_id")
            .map(|h| unhex("routing_id", h))
            .transpose()?;
        let content = zpl.node("content").map_or(&[][..], |n| &n.children[..]);
        Ok(Opened {
            name,
            routing_id,
            content,
        })
    }

    /// Writes fields into a `content` section.
    #[derive(Debug, Default)]
    pub struct Writer(pub Vec<ZplNode>);

    impl Writer {
        /// A number, in decimal.
        pub fn number(&mut self, field: &str, value: u64) {
            self.0.push(leaf(field, value.to_string()));
        }
        /// A string or long string.
        pub fn text(&mut self, field: &str, value: &str) {
            self.0.push(leaf(field, value.to_owned()));
        }
        /// Octets, chunk, uuid or frame, in hex.
        pub fn bytes(&mut self, field: &str, value: &[u8]) {
            self.0.push(leaf(field, hex(value)));
        }
        /// A list of strings, as children `0`, `1`, ...
        pub fn strings(&mut self, field: &str, value: &[String]) {
            self.0.push(ZplNode {
                name: field.to_owned(),
                children: value
                    .iter()
                    .enumerate()
                    .map(|(i, s)| leaf(&i.to_string(), s.clone()))
                    .collect(),
                ..ZplNode::default()
            });
        }
        /// A hash, as a child per key.
        pub fn hash<'a>(
            &mut self,
            field: &str,
            value: impl IntoIterator<Item = (&'a String, &'a String)>,
        ) {
            self.0.push(ZplNode {
                name: field.to_owned(),
                children: value.into_iter().map(|(k, v)| leaf(k, v.clone())).collect(),
                ..ZplNode::default()
            });
        }
        /// A msg field: frames as children `0`, `1`, ..., in hex.
        pub fn frames(&mut self, field: &str, value: &[Vec<u8>]) {
            self.0.push(ZplNode {
                name: field.to_owned(),
                children: value
                    .iter()
                    .enumerate()
                    .map(|(i, f)| leaf(&i.to_string(), hex(f)))
                    .collect(),
                ..ZplNode::default()
            });
        }
    }

    /// Reads fields from a `content` section; a missing field reads as its
    /// default (zproto's `new_zpl` leaves it unset), a malformed one is an
    /// error.
    #[derive(Debug)]
    pub struct Reader<'a>(pub &'a [ZplNode]);

    impl<'a> Reader<'a> {
        fn node(&self, field: &str) -> Option<&'a ZplNode> {
            self.0.iter().find(|n| n.name == field)
        }
        fn value(&self, field: &str) -> Option<&'a str> {
            self.node(field)?.value.as_deref()
        }
        /// A number that must fit in `T`.
        pub fn number<T: TryFrom<u64> + Default>(
            &self,
            field: &'static str,
        ) -> Result<T, ZplMessageError> {
            let Some(text) = self.value(field) else {
                return Ok(T::default());
            };
            text.trim()
                .parse::<u64>()
                .ok()
                .and_then(|n| T::try_from(n).ok())
                .ok_or_else(|| {
                    field_error(field, format!("\"{text}\" is not a number of its size"))
                })
        }
        /// An optional number: `None` when the text has no such field.
        pub fn optional_number<T: TryFrom<u64> + Default>(
            &self,
            field: &'static str,
        ) -> Result<Option<T>, ZplMessageError> {
            match self.value(field) {
                None => Ok(None),
                Some(_) => self.number(field).map(Some),
            }
        }
        /// A string or long string.
        pub fn text(&self, field: &'static str) -> String {
            self.value(field).unwrap_or_default().to_owned()
        }
        /// Bytes in hex (chunk, frame).
        pub fn bytes(&self, field: &'static str) -> Result<Vec<u8>, ZplMessageError> {
            self.value(field)
                .map_or(Ok(Vec::new()), |h| unhex(field, h))
        }
        /// Exactly `N` bytes in hex (octets, uuid).
        pub fn array<const N: usize>(
            &self,
            field: &'static str,
        ) -> Result<[u8; N], ZplMessageError> {
            let Some(text) = self.value(field) else {
                return Ok([0; N]);
            };
            let bytes = unhex(field, text)?;
            <[u8; N]>::try_from(bytes)
                .map_err(|b| field_error(field, format!("{} bytes, expected {N}", b.len())))
        }
        /// A list of strings.
        pub fn strings(&self, field: &'static str) -> Vec<String> {
            self.node(field).map_or_else(Vec::new, |n| {
                n.children
                    .iter()
                    .map(|c| c.value.clone().unwrap_or_default())
                    .collect()
            })
        }
        /// A hash.
        pub fn hash<C: FromIterator<(String, String)>>(&self, field: &'static str) -> C {
            self.node(field)
                .map(|n| {
                    n.children
                        .iter()
                        .map(|c| (c.name.clone(), c.value.clone().unwrap_or_default()))
                        .collect()
                })
                .unwrap_or_else(|| std::iter::empty().collect())
        }
        /// A msg field's frames.
        pub fn frames(&self, field: &'static str) -> Result<Vec<Vec<u8>>, ZplMessageError> {
            self.node(field).map_or(Ok(Vec::new()), |n| {
                n.children
                    .iter()
                    .map(|c| unhex(field, c.value.as_deref().unwrap_or_default()))
                    .collect()
            })
        }
    }
}
