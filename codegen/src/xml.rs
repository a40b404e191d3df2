//! Parse stage: XML text to a small element tree that remembers where every
//! element starts, so that later stages can report `file:line:column`.
//!
//! zproto models have no schema; only elements, attributes and free text
//! matter. Comments, processing instructions and the like are dropped here.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use crate::error::Diagnostic;

/// A position in a model file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file, as the user named it (or as an include resolved it).
    pub file: Arc<Path>,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

impl Location {
    /// A diagnostic at this location.
    pub fn error(&self, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: self.file.to_path_buf(),
            line: self.line,
            column: self.column,
            message: message.into(),
        }
    }
}

/// One child of an element: another element or a run of text.
#[derive(Debug, Clone)]
pub enum Node {
    /// A child element.
    Element(Element),
    /// Character data (entities already resolved).
    Text(String),
}

/// An XML element with its attributes, children and start position.
#[derive(Debug, Clone)]
pub struct Element {
    /// Tag name.
    pub name: String,
    /// Attributes in document order.
    pub attributes: Vec<(String, String)>,
    /// Children in document order.
    pub children: Vec<Node>,
    /// Where the `<` of the start tag is.
    pub location: Location,
}

impl Element {
    /// The value of attribute `name`, if present.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Child elements, in order.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// The element's own text (not its children's), dedented and trimmed:
    /// zproto uses it as the description.
    pub fn text(&self) -> String {
        let raw: String = self
            .children
            .iter()
            .filter_map(|n| match n {
                Node::Text(t) => Some(t.as_str()),
                Node::Element(_) => None,
            })
            .collect::<Vec<_>>()
            .join("\n");
        dedent(&raw)
    }
}

/// Trim blank lines at both ends and the common indentation of the rest.
pub fn dedent(text: &str) -> String {
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    let first = lines.iter().position(|l| !l.is_empty());
    let last = lines.iter().rposition(|l| !l.is_empty());
    let (Some(first), Some(last)) = (first, last) else {
        return String::new();
    };
    let lines = &lines[first..=last];
    let indent = lines
        .iter()
        .filter(|l| !l.is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    let mut out = Vec::with_capacity(lines.len());
    let mut blank = false;
    for line in lines {
        // Collapse runs of blank lines into one paragraph break.
        if line.is_empty() {
            if !blank {
                out.push("");
            }
            blank = true;
        } else {
            out.push(line.get(indent..).unwrap_or(line.trim_start()));
            blank = false;
        }
    }
    out.join("\n")
}

/// Maps byte offsets to line and column.
struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    fn new(text: &'a str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self { text, starts }
    }

    fn locate(&self, file: &Arc<Path>, offset: usize) -> Location {
        let offset = offset.min(self.text.len());
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        let start = self.starts[line - 1];
        let column = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count())
            + 1;
        Location {
            file: file.clone(),
            line,
            column,
        }
    }
}

/// Read and parse the model file at `path`.
pub fn parse_file(path: &Path) -> Result<Element, Diagnostic> {
    let file: Arc<Path> = Arc::from(path);
    let text = std::fs::read_to_string(path).map_err(|e| Diagnostic {
        file: PathBuf::from(path),
        line: 0,
        column: 0,
        message: format!("cannot read model: {e}"),
    })?;
    parse_str(&text, file)
}

/// Parse model text; `file` is only used in locations.
pub fn parse_str(text: &str, file: Arc<Path>) -> Result<Element, Diagnostic> {
    let index = LineIndex::new(text);
    let mut reader = Reader::from_str(text);
    reader.config_mut().check_end_names = true;
    // Elements under construction: the root is the first, the innermost last.
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let start = reader.buffer_position() as usize;
        let at = |offset: usize| index.locate(&file, offset);
        let event = reader.read_event().map_err(|e| {
            at(reader.error_position() as usize).error(format!("malformed XML: {e}"))
        })?;
        match event {
            Event::Start(tag) => {
                let element = start_element(&tag, at(start))?;
                stack.push(element);
            }
            Event::Empty(tag) => {
                let element = start_element(&tag, at(start))?;
                close(element, &mut stack, &mut root, at(start))?;
            }
            Event::End(_) => {
                // quick-xml has already checked that the names match.
                if let Some(element) = stack.pop() {
                    close(element, &mut stack, &mut root, at(start))?;
                }
            }
            Event::Text(t) => {
                let text = t
                    .unescape()
                    .map_err(|e| at(start).error(format!("malformed XML text: {e}")))?;
                push_text(&mut stack, &text, at(start))?;
            }
            Event::CData(t) => {
                let text = String::from_utf8_lossy(&t).into_owned();
                push_text(&mut stack, &text, at(start))?;
            }
            Event::Eof => break,
            // Comments, declarations, processing instructions, doctypes.
            _ => {}
        }
    }
    if let Some(open) = stack.last() {
        return Err(open.location.error(format!(
            "malformed XML: element <{}> is never closed",
            open.name
        )));
    }
    root.ok_or_else(|| {
        index
            .locate(&file, 0)
            .error("malformed XML: no root element")
    })
}

fn start_element(tag: &BytesStart<'_>, location: Location) -> Result<Element, Diagnostic> {
    let name = String::from_utf8_lossy(tag.name().as_ref()).into_owned();
    let mut attributes = Vec::new();
    for attr in tag.attributes() {
        let attr =
            attr.map_err(|e| location.error(format!("malformed attribute in <{name}>: {e}")))?;
        let key = String::from_utf8_lossy(attr.key.as_ref()).into_owned();
        let value = attr
            .unescape_value()
            .map_err(|e| location.error(format!("malformed attribute \"{key}\" in <{name}>: {e}")))?
            .into_owned();
        attributes.push((key, value));
    }
    Ok(Element {
        name,
        attributes,
        children: Vec::new(),
        location,
    })
}

fn close(
    element: Element,
    stack: &mut [Element],
    root: &mut Option<Element>,
    at: Location,
) -> Result<(), Diagnostic> {
    match stack.last_mut() {
        Some(parent) => parent.children.push(Node::Element(element)),
        None if root.is_none() => *root = Some(element),
        None => return Err(at.error("malformed XML: more than one root element")),
    }
    Ok(())
}

fn push_text(stack: &mut [Element], text: &str, at: Location) -> Result<(), Diagnostic> {
    match stack.last_mut() {
        Some(parent) => parent.children.push(Node::Text(text.to_owned())),
        None if text.trim().is_empty() => {}
        None => return Err(at.error("malformed XML: text outside the root element")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Element, Diagnostic> {
        parse_str(text, Arc::from(Path::new("m.xml")))
    }

    #[test]
    fn positions_point_at_the_start_tag() {
        let root =
            parse("<class name=\"x\">\n    <message name=\"a\"/>\n  <b>t</b>\n</class>").unwrap();
        let kids: Vec<_> = root.elements().collect();
        assert_eq!((kids[0].location.line, kids[0].location.column), (2, 5));
        assert_eq!((kids[1].location.line, kids[1].location.column), (3, 3));
        assert_eq!(kids[1].text(), "t");
        assert_eq!(root.attr("name"), Some("x"));
    }

    #[test]
    fn broken_xml_is_a_located_error() {
        let err = parse("<class>\n  <message>\n</class>").unwrap_err();
        assert_eq!(err.line, 3, "{err}");
        assert!(err.message.starts_with("malformed XML"), "{err}");
        let err = parse("<class><a/></class><other/>").unwrap_err();
        assert!(err.message.contains("more than one root"), "{err}");
        let err = parse("").unwrap_err();
        assert!(err.message.contains("no root element"), "{err}");
        let err = parse("<class a=\"1\" a=\"2\"/>").unwrap_err();
        assert!(err.message.contains("malformed attribute"), "{err}");
    }

    #[test]
    fn dedent_keeps_paragraphs() {
        assert_eq!(
            dedent("\n    one\n      two\n\n\n    three\n  "),
            "one\n  two\n\nthree"
        );
        assert_eq!(dedent("  \n "), "");
    }
}
