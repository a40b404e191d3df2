//! [`Config`]: the builder used from `build.rs` or the command line.

use std::path::{Path, PathBuf};

use proc_macro2::TokenStream;

use crate::analyse::{self, Analysed};
use crate::emit::{self, EmitOptions};
use crate::error::Error;
use crate::model::client::ClientModel;
use crate::model::codec::CodecModel;
use crate::model::server::ServerModel;
use crate::names;

/// Generation settings, prost-build style:
///
/// ```no_run
/// zproto_codegen::Config::new()
///     .compile(&["protocol/zgossip_msg.xml"])
///     .expect("zproto models");
/// ```
///
/// For each codec model it writes `<class>.rs` and `<class>.bnf`, for each
/// server or client model `<class>_engine.rs` (its codec module is expected beside it,
/// see [`Config::codec_path`]), to the output
/// directory (`OUT_DIR` by default), only when their content changed, and
/// prints `cargo:rerun-if-changed` for the model and every file it includes.
#[derive(Debug, Clone)]
pub struct Config {
    out_dir: Option<PathBuf>,
    runtime: String,
    tests: bool,
    abnf: bool,
    dot: bool,
    cargo_directives: Option<bool>,
    codec_paths: Vec<(String, String)>,
    /// (server class, effect type path).
    server_effects: Vec<(String, String)>,
    async_clients: bool,
    /// (path, attribute text) for types, messages and fields.
    type_attributes: Vec<(String, String)>,
    message_attributes: Vec<(String, String)>,
    field_attributes: Vec<(String, String)>,
    include_paths: Vec<PathBuf>,
    include_file: Option<PathBuf>,
    bytes: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self::new()
    }
}

/// What one model produced.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The model's class name.
    pub class: String,
    /// Files written or confirmed up to date.
    pub files: Vec<PathBuf>,
    /// The files that were actually (re)written.
    pub changed: Vec<PathBuf>,
    /// The model file and its includes.
    pub sources: Vec<PathBuf>,
}

impl Config {
    /// Defaults: output to `OUT_DIR`, runtime at `::zproto_runtime`, tests and
    /// ABNF on.
    pub fn new() -> Self {
        Self {
            out_dir: None,
            runtime: "::zproto_runtime".to_owned(),
            tests: true,
            abnf: true,
            dot: false,
            cargo_directives: None,
            codec_paths: Vec::new(),
            server_effects: Vec::new(),
            async_clients: false,
            type_attributes: Vec::new(),
            message_attributes: Vec::new(),
            field_attributes: Vec::new(),
            include_paths: Vec::new(),
            include_file: None,
            bytes: Vec::new(),
        }
    }

    /// Also look in `dir` for `<include>`d files and for the codec models
    /// that server models name, after the model's own directory.
    pub fn include_path(&mut self, dir: impl Into<PathBuf>) -> &mut Self {
        self.include_paths.push(dir.into());
        self
    }

    /// Also write `name` (in the output directory): a module per generated
    /// file (`pub mod <class> { include!("<class>.rs"); }`, engines as
    /// `<class>_engine`), so that the crate includes that one file.
    pub fn include_file(&mut self, name: impl Into<PathBuf>) -> &mut Self {
        self.include_file = Some(name.into());
        self
    }

    /// Add `attribute` (e.g. `#[derive(serde::Serialize)]`) to the message
    /// enum and message structs that `path` selects: `.` for all, a codec
    /// class (`zgossip_msg`), or one message (`zgossip_msg.ANNOUNCE`).
    pub fn type_attribute(
        &mut self,
        path: impl Into<String>,
        attribute: impl Into<String>,
    ) -> &mut Self {
        self.type_attributes.push((path.into(), attribute.into()));
        self
    }

    /// Add `attribute` to the message structs (not the enum) that `path`
    /// selects.
    pub fn message_attribute(
        &mut self,
        path: impl Into<String>,
        attribute: impl Into<String>,
    ) -> &mut Self {
        self.message_attributes
            .push((path.into(), attribute.into()));
        self
    }

    /// Add `attribute` (e.g. `#[serde(skip)]`) to the fields that `path`
    /// selects: `.`, a class, a message, or one field
    /// (`zgossip_msg.ANNOUNCE.ttl`).
    pub fn field_attribute(
        &mut self,
        path: impl Into<String>,
        attribute: impl Into<String>,
    ) -> &mut Self {
        self.field_attributes.push((path.into(), attribute.into()));
        self
    }

    /// Where generated server engines find the codec of `protocol_class`
    /// (default `super::<protocol_class>`, i.e. a sibling module named after
    /// the codec class).
    pub fn codec_path(
        &mut self,
        protocol_class: impl Into<String>,
        path: impl Into<String>,
    ) -> &mut Self {
        self.codec_paths.push((protocol_class.into(), path.into()));
        self
    }

    /// Let the actions of server `server_class` hand its driver values of
    /// type `effect` (a path, e.g. `crate::server::Effect`) besides
    /// messages and events: its `Io` gets `emit(effect)`, and the driver
    /// takes them from `Sessions::effects` after each call. An action's
    /// result then travels as data, never through a field of the actions'
    /// struct that the driver reads and clears. Without it a server has
    /// none, and its actions take `Io<Event, Message>`.
    pub fn server_effects(
        &mut self,
        server_class: impl Into<String>,
        effect: impl Into<String>,
    ) -> &mut Self {
        self.server_effects
            .push((server_class.into(), effect.into()));
        self
    }

    /// Give every generated client an async twin, `AsyncClient`, beside
    /// the blocking `Client` (default off). Its code needs the runtime's
    /// `async` feature: `zproto-runtime = { features = ["async"] }`.
    pub fn async_clients(&mut self, on: bool) -> &mut Self {
        self.async_clients = on;
        self
    }

    fn codec_tokens(&self, protocol_class: &str) -> Result<TokenStream, Error> {
        let path = self
            .codec_paths
            .iter()
            .rev()
            .find(|(c, _)| c == protocol_class)
            .map(|(_, p)| p.clone())
            .unwrap_or_else(|| format!("super::{}", names::canonical(protocol_class)));
        parse_path(&path)
    }

    /// Write output here instead of `OUT_DIR`.
    pub fn out_dir(&mut self, dir: impl Into<PathBuf>) -> &mut Self {
        self.out_dir = Some(dir.into());
        self
    }

    /// Path of the runtime crate as generated code names it (default
    /// `::zproto_runtime`), for crates that re-export it.
    pub fn runtime_path(&mut self, path: impl Into<String>) -> &mut Self {
        self.runtime = path.into();
        self
    }

    /// Emit `#[cfg(test)]` round-trip tests from the model's `<test>` values
    /// (default on).
    pub fn emit_tests(&mut self, on: bool) -> &mut Self {
        self.tests = on;
        self
    }

    /// Write the ABNF grammar next to the code (default on).
    pub fn emit_abnf(&mut self, on: bool) -> &mut Self {
        self.abnf = on;
        self
    }

    /// Write each state machine's diagram beside its code, as Graphviz
    /// `<class>.dot` (default off).
    pub fn emit_dot(&mut self, on: bool) -> &mut Self {
        self.dot = on;
        self
    }

    /// Print `cargo:rerun-if-changed` lines; by default only when run from a
    /// build script (`OUT_DIR` set).
    pub fn cargo_directives(&mut self, on: bool) -> &mut Self {
        self.cargo_directives = Some(on);
        self
    }

    fn emit_options(&self) -> Result<EmitOptions, Error> {
        let parse = |list: &[(String, String)]| -> Result<Vec<(String, TokenStream)>, Error> {
            list.iter()
                .map(|(path, text)| Ok((path.clone(), parse_attributes(text)?)))
                .collect()
        };
        Ok(EmitOptions {
            // Generated code reaches the runtime through its one facade.
            runtime: parse_path(&format!("{}::__codegen", self.runtime))?,
            tests: self.tests,
            attributes: emit::Attributes {
                types: parse(&self.type_attributes)?,
                messages: parse(&self.message_attributes)?,
                fields: parse(&self.field_attributes)?,
            },
        })
    }

    /// Generate the Rust state machine of one server model.
    pub fn generate_server(
        &self,
        model: &ServerModel,
        codec: &CodecModel,
    ) -> Result<String, Error> {
        let codec_path = self.codec_tokens(&model.protocol_class)?;
        let effect = self
            .server_effects
            .iter()
            .rev()
            .find(|(class, _)| *class == model.class)
            .map(|(_, path)| parse_path(path))
            .transpose()?;
        emit::server::emit(
            model,
            codec,
            &codec_path,
            effect.as_ref(),
            &self.emit_options()?,
        )
    }

    /// Generate the Rust client (machine and API) of one client model.
    pub fn generate_client(
        &self,
        model: &ClientModel,
        codec: &CodecModel,
    ) -> Result<String, Error> {
        let codec_path = self.codec_tokens(&model.protocol_class)?;
        emit::client::emit(
            model,
            codec,
            &codec_path,
            self.async_clients,
            &self.emit_options()?,
        )
    }

    /// Hold the `chunk`, `frame` and `msg` fields that `paths` select as
    /// `bytes::Bytes` (re-exported as `zproto_runtime::bytes`), which
    /// clone by reference count, rather than `Vec<u8>` (prost-build's
    /// `bytes`). A path is `.` (everything), a class, a message of it
    /// (`mlm_proto.STREAM_DELIVER`) or a field (`mlm_proto.STREAM_DELIVER.content`).
    pub fn bytes<I, S>(&mut self, paths: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.bytes.extend(paths.into_iter().map(Into::into));
        self
    }

    /// Generate the Rust source of one codec model, without writing anything.
    pub fn generate_codec(&self, model: &CodecModel) -> Result<String, Error> {
        if self.bytes.is_empty() {
            return emit::codec::emit(model, &self.emit_options()?);
        }
        let mut model = model.clone();
        for message in &mut model.messages {
            for field in &mut message.fields {
                let target = [
                    model.class.as_str(),
                    message.name.as_str(),
                    field.name.as_str(),
                ];
                field.bytes = matches!(
                    field.kind,
                    crate::model::codec::FieldKind::Chunk
                        | crate::model::codec::FieldKind::Frame
                        | crate::model::codec::FieldKind::Msg
                ) && self.bytes.iter().any(|path| emit::selects(path, &target));
            }
        }
        emit::codec::emit(&model, &self.emit_options()?)
    }

    /// The skeleton of the server or client `model`, as text.
    /// `engine_path` is where the generated engine module is, as the
    /// skeleton uses it (default: `crate::<class>_engine`, the module
    /// [`Config::include_file`] names).
    pub fn skeleton(&self, model: &Path, engine_path: Option<&str>) -> Result<String, Error> {
        let analysed = analyse::analyse_any_in(model, &self.include_paths)?;
        let engine_path = |class: &str| {
            engine_path
                .map(str::to_owned)
                .unwrap_or_else(|| format!("crate::{}_engine", names::canonical(class)))
        };
        let codec_path = |protocol_class: &str| {
            self.codec_paths
                .iter()
                .rev()
                .find(|(c, _)| c == protocol_class)
                .map(|(_, p)| p.clone())
                .unwrap_or_else(|| format!("crate::{}", names::canonical(protocol_class)))
        };
        let text = match &analysed {
            Analysed::Server(pair) => emit::skeleton::emit(
                &pair.0,
                &pair.1,
                &engine_path(&pair.0.class),
                &codec_path(&pair.0.protocol_class),
            )?,
            Analysed::Client(pair) => emit::skeleton::emit_client(
                &pair.0,
                &pair.1,
                &engine_path(&pair.0.class),
                &codec_path(&pair.0.protocol_class),
            )?,
            Analysed::Codec(m) => {
                return Err(Error::Model(
                    crate::error::Diagnostic {
                        file: m.sources.first().cloned().unwrap_or_default(),
                        line: 0,
                        column: 0,
                        message: "a codec model has no actions: skeletons are for server \
                                  and client models"
                            .into(),
                    }
                    .into(),
                ))
            }
        };
        Ok(text)
    }

    /// Write the one-time handler skeleton of a server or client model to `path`,
    /// unless a file is already there (it is the application's code).
    /// Returns whether it was written.
    pub fn write_skeleton(
        &self,
        model: &Path,
        path: &Path,
        engine_path: &str,
    ) -> Result<bool, Error> {
        let text = self.skeleton(model, Some(engine_path))?;
        if path.exists() {
            return Ok(false);
        }
        let mut file = match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
        {
            Ok(file) => file,
            // Created meanwhile: still never overwrite.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
            Err(source) => {
                return Err(Error::Write {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        std::io::Write::write_all(&mut file, text.as_bytes()).map_err(|source| Error::Write {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(true)
    }

    /// Validate and generate every model, writing the outputs.
    ///
    /// All models are checked before anything is written, and every problem
    /// of every model is reported.
    pub fn compile(&self, models: &[impl AsRef<Path>]) -> Result<Vec<Generated>, Error> {
        let directives = self
            .cargo_directives
            .unwrap_or_else(|| std::env::var_os("OUT_DIR").is_some());
        let out_dir = match &self.out_dir {
            Some(dir) => dir.clone(),
            None => std::env::var_os("OUT_DIR")
                .map(PathBuf::from)
                .ok_or(Error::NoOutDir)?,
        };
        let mut analysed = Vec::new();
        let mut problems = Vec::new();
        for path in models {
            let path = path.as_ref();
            if directives {
                // Even a broken model must trigger a rebuild once fixed.
                println!("cargo:rerun-if-changed={}", path.display());
            }
            match analyse::analyse_any_in(path, &self.include_paths) {
                Ok(model) => analysed.push(model),
                Err(d) => problems.extend(d.0),
            }
        }
        // A codec named by several models is analysed with each: report
        // each of its problems once.
        let mut seen = std::collections::HashSet::new();
        problems.retain(|d: &crate::error::Diagnostic| seen.insert(d.to_string()));
        if !problems.is_empty() {
            return Err(Error::Model(crate::error::Diagnostics(problems)));
        }
        std::fs::create_dir_all(&out_dir).map_err(|source| Error::Write {
            path: out_dir.clone(),
            source,
        })?;
        let mut out = Vec::new();
        for model in &analysed {
            let (class, sources) = match model {
                Analysed::Codec(m) => (&m.class, &m.sources),
                Analysed::Server(pair) => (&pair.0.class, &pair.0.sources),
                Analysed::Client(pair) => (&pair.0.class, &pair.0.sources),
            };
            if directives {
                for source in sources.iter().skip(1) {
                    println!("cargo:rerun-if-changed={}", source.display());
                }
            }
            let stem = names::canonical(class);
            let mut generated = Generated {
                class: class.clone(),
                files: Vec::new(),
                changed: Vec::new(),
                sources: sources.clone(),
            };
            match model {
                Analysed::Codec(model) => {
                    let rust = self.generate_codec(model)?;
                    write_if_changed(&out_dir.join(format!("{stem}.rs")), &rust, &mut generated)?;
                    if self.abnf {
                        let abnf = emit::abnf::emit(model)?;
                        write_if_changed(
                            &out_dir.join(format!("{stem}.bnf")),
                            &abnf,
                            &mut generated,
                        )?;
                    }
                }
                Analysed::Client(pair) => {
                    let rust = self.generate_client(&pair.0, &pair.1)?;
                    let dot = self.dot.then(|| emit::dot::emit_client(&pair.0));
                    write_machine(&out_dir, &stem, &rust, dot, &mut generated)?;
                }
                Analysed::Server(pair) => {
                    let rust = self.generate_server(&pair.0, &pair.1)?;
                    let dot = self.dot.then(|| emit::dot::emit(&pair.0));
                    write_machine(&out_dir, &stem, &rust, dot, &mut generated)?;
                }
            }
            out.push(generated);
        }
        if let Some(name) = &self.include_file {
            let path = out_dir.join(name);
            let text = include_file_text(&out);
            let mut generated = Generated {
                class: name.display().to_string(),
                files: Vec::new(),
                changed: Vec::new(),
                sources: Vec::new(),
            };
            write_if_changed(&path, &text, &mut generated)?;
            out.push(generated);
        }
        Ok(out)
    }
}

/// A state machine's files: `<stem>_engine.rs`, and `<stem>.dot` if asked.
fn write_machine(
    out_dir: &Path,
    stem: &str,
    rust: &str,
    dot: Option<String>,
    generated: &mut Generated,
) -> Result<(), Error> {
    write_if_changed(&out_dir.join(format!("{stem}_engine.rs")), rust, generated)?;
    if let Some(dot) = dot {
        write_if_changed(&out_dir.join(format!("{stem}.dot")), &dot, generated)?;
    }
    Ok(())
}

/// The `include_file`: a module per generated Rust file, named after it.
fn include_file_text(generated: &[Generated]) -> String {
    let mut text = String::from(
        "// @generated by zproto-codegen: one module per generated file. Do not edit.\n",
    );
    for file in generated.iter().flat_map(|g| &g.files) {
        if file.extension().is_some_and(|e| e == "rs") {
            if let (Some(stem), Some(name)) = (file.file_stem(), file.file_name()) {
                // A program uses a part of each generated API: the rest is
                // not dead code to warn about.
                text.push_str(&format!(
                    "\n#[allow(dead_code)]\npub mod {} {{\n    include!(\"{}\");\n}}\n",
                    stem.to_string_lossy(),
                    name.to_string_lossy()
                ));
            }
        }
    }
    text
}

/// Outer attributes (`#[...]`, one or more), checked to be such.
fn parse_attributes(text: &str) -> Result<TokenStream, Error> {
    use syn::parse::Parser;
    syn::Attribute::parse_outer
        .parse_str(text)
        .map(|attrs| attrs.iter().map(quote::ToTokens::to_token_stream).collect())
        .map_err(|source| Error::GeneratedSyntax {
            model: format!("attribute {text:?}"),
            source,
        })
}

fn parse_path(path: &str) -> Result<TokenStream, Error> {
    syn::parse_str::<syn::Path>(path)
        .map(quote::ToTokens::into_token_stream)
        .map_err(|source| Error::GeneratedSyntax {
            model: format!("path {path:?}"),
            source,
        })
}

/// Write `content` unless the file already holds it, so that cargo and
/// editors do not see a change that is not one.
fn write_if_changed(path: &Path, content: &str, generated: &mut Generated) -> Result<(), Error> {
    generated.files.push(path.to_path_buf());
    if std::fs::read(path).is_ok_and(|old| old == content.as_bytes()) {
        return Ok(());
    }
    std::fs::write(path, content).map_err(|source| Error::Write {
        path: path.to_path_buf(),
        source,
    })?;
    generated.changed.push(path.to_path_buf());
    Ok(())
}
