//! Analyse stage: element trees to validated models.
//!
//! Checks collect every problem they find (as zproto does) instead of
//! stopping at the first, so one run shows an author all of them.

pub mod client;
pub mod codec;
pub mod kind;
pub(crate) mod machine;
pub(crate) mod schema;
pub mod server;

use std::path::{Path, PathBuf};

use crate::error::{Diagnostic, Diagnostics};
use crate::model::client::ClientModel;
use crate::model::codec::CodecModel;
use crate::model::server::ServerModel;
use crate::xml::{self, Element, Node};

/// A `<class>` root with its `<include>`s resolved.
#[derive(Debug, Clone)]
pub struct LoadedClass {
    /// The `<class>` element; each include replaced by the included root.
    pub root: Element,
    /// The model file and the files it includes, for `rerun-if-changed`.
    pub sources: Vec<PathBuf>,
}

/// Read a model file and resolve its `<include>`s.
///
/// As in zproto, only includes that are direct children of `<class>` are
/// expanded, one level deep, relative to the including file.
pub fn load_class(path: &Path) -> Result<LoadedClass, Diagnostics> {
    load_class_in(path, &[])
}

/// Where an included or referenced file is: beside `base` first, then in
/// each search directory, in order. The first that exists, else the path
/// beside `base` (whose absence the caller reports).
pub fn find(base: &Path, name: &Path, search: &[PathBuf]) -> PathBuf {
    let beside = base.join(name);
    if beside.exists() {
        return beside;
    }
    search
        .iter()
        .map(|dir| dir.join(name))
        .find(|p| p.exists())
        .unwrap_or(beside)
}

/// [`load_class`], looking for includes in `search` too
/// (`Config::include_path`).
pub fn load_class_in(path: &Path, search: &[PathBuf]) -> Result<LoadedClass, Diagnostics> {
    let mut root = xml::parse_file(path)?;
    if root.name != "class" {
        return Err(root
            .location
            .error(format!(
                "the root element must be <class>, found <{}>",
                root.name
            ))
            .into());
    }
    let mut sources = vec![path.to_path_buf()];
    let mut problems = Vec::new();
    let base = path.parent().unwrap_or(Path::new(""));
    for child in &mut root.children {
        let Node::Element(include) = child else {
            continue;
        };
        if include.name != "include" {
            continue;
        }
        let Some(filename) = include.attr("filename") else {
            problems.push(
                include
                    .location
                    .error("<include> needs a filename attribute"),
            );
            continue;
        };
        let target = find(base, Path::new(filename), search);
        match xml::parse_file(&target) {
            Ok(included) => {
                sources.push(target);
                *child = Node::Element(included);
            }
            Err(mut d) => {
                if d.line == 0 {
                    // The file could not be read: point at the <include>.
                    d = include.location.error(format!(
                        "cannot include \"{}\": {}",
                        target.display(),
                        d.message.trim_start_matches("cannot read model: ")
                    ));
                }
                problems.push(d);
            }
        }
    }
    let mut unknown = Problems::default();
    schema::check(&root, &mut unknown);
    problems.extend(unknown.0);
    if problems.is_empty() {
        Ok(LoadedClass { root, sources })
    } else {
        Err(Diagnostics(problems))
    }
}

/// A validated model of either kind.
#[derive(Debug, Clone)]
pub enum Analysed {
    /// A codec model (message set).
    Codec(Box<CodecModel>),
    /// A server model, with the codec model it names.
    Server(Box<(ServerModel, CodecModel)>),
    /// A client model, with the codec model it names.
    Client(Box<(ClientModel, CodecModel)>),
}

/// Load and validate a model of any kind, told apart by its `script` and
/// its content ([`kind::model_kind`]).
pub fn analyse_any(path: &Path) -> Result<Analysed, Diagnostics> {
    analyse_any_in(path, &[])
}

/// [`analyse_any`], looking for included files and codec models in
/// `search` too, after the model's own directory.
pub fn analyse_any_in(path: &Path, search: &[PathBuf]) -> Result<Analysed, Diagnostics> {
    let loaded = load_class_in(path, search)?;
    match kind::model_kind(&loaded.root)? {
        kind::ModelKind::Server => {
            let (server, codec) = server::analyse_file_in(path, search)?;
            Ok(Analysed::Server(Box::new((server, codec))))
        }
        kind::ModelKind::Codec => codec::analyse(loaded).map(|m| Analysed::Codec(Box::new(m))),
        kind::ModelKind::Client => {
            let (client, codec) = client::analyse_file_in(path, search)?;
            Ok(Analysed::Client(Box::new((client, codec))))
        }
    }
}

/// The codec model a state machine names with `protocol_class` (and
/// `protocol_dir`), beside the model or in `search`, validated.
pub(crate) fn protocol_codec(
    root: &Element,
    path: &Path,
    search: &[PathBuf],
    kind: &str,
) -> Result<CodecModel, Diagnostics> {
    let Some(protocol_class) = root.attr("protocol_class").or_else(|| root.attr("proto")) else {
        return Err(root
            .location
            .error(format!(
                "a {kind} model needs protocol_class, the name of its codec model"
            ))
            .into());
    };
    let dir = path.parent().unwrap_or(Path::new(""));
    let codec_path = find(
        dir,
        &Path::new(root.attr("protocol_dir").unwrap_or("")).join(format!("{protocol_class}.xml")),
        search,
    );
    if !codec_path.exists() {
        return Err(root
            .location
            .error(format!(
                "protocol_class \"{protocol_class}\": codec model {} not found",
                codec_path.display()
            ))
            .into());
    }
    codec::analyse_file_in(&codec_path, search)
}

/// The `<class>`'s name, as written; a problem if it has none.
pub(crate) fn class_name(root: &Element, p: &mut Problems) -> String {
    match root.attr("name").map(str::trim) {
        Some(name) if !crate::names::canonical(name).trim_matches('_').is_empty() => {
            name.to_owned()
        }
        _ => {
            p.push(root.location.error("<class> needs a name attribute"));
            "unnamed".to_owned()
        }
    }
}

/// Parse an optional decimal attribute.
pub(crate) fn parse_decimal(text: &str) -> Option<u64> {
    let t = text.trim();
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse().ok()
}

/// Collects diagnostics during one analysis.
#[derive(Debug, Default)]
pub(crate) struct Problems(pub Vec<Diagnostic>);

impl Problems {
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }

    pub fn finish<T>(self, value: T) -> Result<T, Diagnostics> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(Diagnostics(self.0))
        }
    }
}
