//! [`Config`]: the builder used from `build.rs` or the command line.

use std::path::{Path, PathBuf};

use proc_macro2::TokenStream;

use crate::analyse;
use crate::emit::{self, EmitOptions};
use crate::error::Error;
use crate::model::codec::CodecModel;
use crate::names;

/// Generation settings, prost-build style:
///
/// ```no_run
/// zproto_codegen::Config::new()
///     .compile(&["protocol/zgossip_msg.xml"])
///     .expect("zproto models");
/// ```
///
/// For each codec model it writes `<class>.rs` and `<class>.bnf` to the output
/// directory (`OUT_DIR` by default), only when their content changed, and
/// prints `cargo:rerun-if-changed` for the model and every file it includes.
#[derive(Debug, Clone)]
pub struct Config {
    out_dir: Option<PathBuf>,
    runtime: String,
    tests: bool,
    abnf: bool,
    cargo_directives: Option<bool>,
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
            cargo_directives: None,
        }
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

    /// Print `cargo:rerun-if-changed` lines; by default only when run from a
    /// build script (`OUT_DIR` set).
    pub fn cargo_directives(&mut self, on: bool) -> &mut Self {
        self.cargo_directives = Some(on);
        self
    }

    fn emit_options(&self) -> Result<EmitOptions, Error> {
        let runtime: TokenStream = syn::parse_str::<syn::Path>(&self.runtime)
            .map(quote::ToTokens::into_token_stream)
            .map_err(|source| Error::GeneratedSyntax {
                model: format!("runtime path {:?}", self.runtime),
                source,
            })?;
        Ok(EmitOptions {
            runtime,
            tests: self.tests,
        })
    }

    /// Generate the Rust source of one codec model, without writing anything.
    pub fn generate_codec(&self, model: &CodecModel) -> Result<String, Error> {
        emit::codec::emit(model, &self.emit_options()?)
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
            match analyse::codec::analyse_file(path) {
                Ok(model) => analysed.push(model),
                Err(d) => problems.extend(d.0),
            }
        }
        if !problems.is_empty() {
            return Err(Error::Model(crate::error::Diagnostics(problems)));
        }
        std::fs::create_dir_all(&out_dir).map_err(|source| Error::Write {
            path: out_dir.clone(),
            source,
        })?;
        let mut out = Vec::new();
        for model in &analysed {
            if directives {
                for source in model.sources.iter().skip(1) {
                    println!("cargo:rerun-if-changed={}", source.display());
                }
            }
            let stem = names::canonical(&model.class);
            let mut generated = Generated {
                class: model.class.clone(),
                files: Vec::new(),
                changed: Vec::new(),
                sources: model.sources.clone(),
            };
            let rust = self.generate_codec(model)?;
            write_if_changed(&out_dir.join(format!("{stem}.rs")), &rust, &mut generated)?;
            if self.abnf {
                let abnf = emit::abnf::emit(model)?;
                write_if_changed(&out_dir.join(format!("{stem}.bnf")), &abnf, &mut generated)?;
            }
            out.push(generated);
        }
        Ok(out)
    }
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
