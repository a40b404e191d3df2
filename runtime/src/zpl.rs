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
