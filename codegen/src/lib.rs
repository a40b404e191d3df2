//! # zproto-codegen
//!
//! Generate Rust from [zproto](https://github.com/zeromq/zproto) XML models,
//! byte-compatible with the C code zproto generates: codecs from codec
//! models (message sets), state machines from server models, an ABNF grammar
//! per codec, and a one-time handler skeleton per server.
//!
//! The generator runs in distinct stages, one module each:
//!
//! 1. [`xml`]: parse model text into an element tree that keeps positions;
//! 2. [`analyse`]: resolve includes, expand headers and composite types,
//!    assign ids, normalise names and check everything, producing a
//!    validated [`model`] (or located [`Diagnostic`]s);
//! 3. [`emit`]: build Rust with `quote!` (formatted by prettyplease) and text
//!    artefacts such as the ABNF grammar with tera.
//!
//! [`Config`] drives them from a `build.rs`, the `zproto` binary from a shell.
//! Generated code depends on the small `zproto-runtime` crate.

#![warn(missing_docs)]

pub mod analyse;
pub mod config;
pub mod emit;
pub mod error;
pub mod model;
pub mod names;
pub mod xml;

pub use config::{Config, Generated};
pub use error::{Diagnostic, Diagnostics, Error};
