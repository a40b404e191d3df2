//! Errors of the generator: located model diagnostics, and I/O.

use std::fmt;
use std::path::PathBuf;

use thiserror::Error;

/// One problem in a model, at a place in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The model file (or included file) the problem is in.
    pub file: PathBuf,
    /// 1-based line; 0 when the file could not be read at all.
    pub line: usize,
    /// 1-based column; 0 when the file could not be read at all.
    pub column: usize,
    /// What is wrong, in the words of a protocol author.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                self.line,
                self.column,
                self.message
            )
        }
    }
}

impl std::error::Error for Diagnostic {}

/// Every problem found in a model, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl From<Diagnostic> for Diagnostics {
    fn from(d: Diagnostic) -> Self {
        Self(vec![d])
    }
}

/// Anything that stops generation.
#[derive(Debug, Error)]
pub enum Error {
    /// The model is invalid; each diagnostic says where and why.
    #[error("{0}")]
    Model(Diagnostics),
    /// An output file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// No output directory was given and `OUT_DIR` is not set.
    #[error("no output directory: call Config::out_dir or run from a build script (OUT_DIR)")]
    NoOutDir,
    /// A text template failed to render (a bug in the generator).
    #[error("template {name}: {source}")]
    Template {
        /// The template.
        name: &'static str,
        /// The cause.
        source: tera::Error,
    },
    /// The generated Rust did not parse (a bug in the generator).
    #[error("generated code for {model} does not parse: {source}")]
    GeneratedSyntax {
        /// The model's class name.
        model: String,
        /// The cause.
        source: syn::Error,
    },
}

impl From<Diagnostics> for Error {
    fn from(d: Diagnostics) -> Self {
        Error::Model(d)
    }
}

impl From<Diagnostic> for Error {
    fn from(d: Diagnostic) -> Self {
        Error::Model(d.into())
    }
}

impl Error {
    /// The model diagnostics, if this is a model error.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            Error::Model(d) => &d.0,
            _ => &[],
        }
    }
}
