//! What a model may contain: every element and attribute zproto's models
//! use, and nothing else. A misspelled element (`<feild>`) or attribute
//! (`siz = "4"`) would otherwise be ignored, and the wire format would
//! silently change; here it is an error naming the nearest known name.

use super::Problems;
use crate::xml::Element;

/// An element's attributes and child elements.
struct Shape {
    attributes: &'static [&'static str],
    children: &'static [&'static str],
}

/// Attributes of `<class>` that zproto's other generators (C project
/// layout, other languages) read: accepted, and of no effect here.
const CLASS_ATTRIBUTES: &[&str] = &[
    "name",
    "title",
    "script",
    "signature",
    "pubsub",
    "virtual",
    "protocol_class",
    "proto",
    "protocol_dir",
    "use_zmq_msg",
    "package_dir",
    "source_dir",
    "header_ext",
    "source_ext",
    "project_header",
    "export_macro",
    "export_header",
    "include_dir",
    "project",
    "test_dir",
    "namespace",
    "module",
];

fn shape(element: &str) -> Option<Shape> {
    let shape = |attributes, children| {
        Some(Shape {
            attributes,
            children,
        })
    };
    match element {
        "class" => shape(
            CLASS_ATTRIBUTES,
            &[
                "message", "type", "header", "include", "define", "grammar", "license", "custom",
                "state", "method", "reply", "send", "recv",
            ],
        ),
        "message" => shape(&["name", "id", "role", "digest", "method"], &["field"]),
        "field" => shape(&["name", "type", "size", "value", "optional"], &["test"]),
        "test" => shape(&["name"], &[]),
        "type" => shape(&["name"], &["field"]),
        "header" => shape(&[], &["field"]),
        "include" => shape(&["filename"], &[]),
        "define" => shape(&["name", "value"], &[]),
        "grammar" | "license" => shape(&[], &[]),
        "custom" => shape(&["filename", "language"], &["header", "source", "api"]),
        "state" => shape(&["name", "inherit"], &["event", "before", "after"]),
        "event" => shape(&["name", "next"], &["action"]),
        "before" | "after" => shape(&[], &["action"]),
        "action" => shape(&["name", "message"], &[]),
        "method" => shape(&["name", "return", "immediate"], &["field", "accept"]),
        "accept" => shape(&["reply"], &[]),
        "reply" => shape(&["name"], &["field"]),
        "send" => shape(&[], &["message"]),
        "recv" => shape(&["virtual"], &["message"]),
        _ => None,
    }
}

/// Every element and attribute under `root` (a `<class>` with its includes
/// resolved) checked against what zproto models use.
pub(crate) fn check(root: &Element, p: &mut Problems) {
    walk(root, p);
}

fn walk(element: &Element, p: &mut Problems) {
    let Some(shape) = shape(&element.name) else {
        return;
    };
    for (attribute, _) in &element.attributes {
        if !shape.attributes.contains(&attribute.as_str()) {
            p.push(element.location.error(format!(
                "unknown attribute {attribute} on <{}>{}",
                element.name,
                suggestion(attribute, shape.attributes, "")
            )));
        }
    }
    for child in element.elements() {
        if shape.children.contains(&child.name.as_str()) {
            walk(child, p);
        } else {
            let known: &[&str] = shape.children;
            let hint = if known.is_empty() {
                format!(" (<{}> holds no elements)", element.name)
            } else {
                suggestion(&child.name, known, "<")
            };
            p.push(child.location.error(format!(
                "unknown element <{}> in <{}>{hint}",
                child.name, element.name
            )));
        }
    }
}

/// ` (did you mean X?)` for the candidate nearest `word`, if one is near
/// enough to be a misspelling; `bracket` is `<` for element names.
pub(crate) fn suggestion(word: &str, candidates: &[&str], bracket: &str) -> String {
    match nearest(word, candidates.iter().copied()) {
        Some(near) => {
            let close = if bracket.is_empty() { "" } else { ">" };
            format!(" (did you mean {bracket}{near}{close}?)")
        }
        None => String::new(),
    }
}

/// The candidate nearest `word` by edit distance, if within a third of its
/// length (at least 1, at most 3).
pub(crate) fn nearest<'a>(
    word: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    let limit = (word.chars().count() / 3).clamp(1, 3);
    candidates
        .map(|c| (distance(&word, &c.to_ascii_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance, with a transposition counting as one edit.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_names_are_suggested_and_far_ones_are_not() {
        assert_eq!(
            nearest("feild", ["field", "test"].into_iter()),
            Some("field")
        );
        assert_eq!(nearest("siz", ["size", "name"].into_iter()), Some("size"));
        assert_eq!(
            nearest("CONUT", ["COUNT", "HELLO"].into_iter()),
            Some("COUNT")
        );
        assert_eq!(nearest("banana", ["field", "test"].into_iter()), None);
    }
}
