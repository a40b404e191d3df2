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
//! [`Config`] drives them from a `build.rs`, the `zproto` binary from a shell
//! (feature `cli`, on by default; a build script needs only the library:
//! `default-features = false`). Generated code depends on the small
//! `zproto-runtime` crate.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = std::env::temp_dir().join(format!("zproto-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let model = dir.join("hello_msg.xml");
//! std::fs::write(
//!     &model,
//!     r#"<class name = "hello_msg" signature = "3">
//!            <message name = "HELLO"><field name = "name" type = "string" /></message>
//!        </class>"#,
//! )?;
//! // In a build script, OUT_DIR is the default and cargo directives are on.
//! let generated = zproto_codegen::Config::new()
//!     .out_dir(&dir)
//!     .cargo_directives(false)
//!     .compile(&[&model])?;
//! let rust = std::fs::read_to_string(dir.join("hello_msg.rs"))?;
//! assert!(rust.contains("pub struct Hello"));
//! assert_eq!(generated.len(), 1);
//! // A mistake is a located error, as a compiler prints one.
//! std::fs::write(&model, "<class name = \"x\"><message name = \"A\"><feild /></message></class>")?;
//! let error = zproto_codegen::Config::new().out_dir(&dir).compile(&[&model]).unwrap_err();
//! assert!(error.to_string().contains("unknown element <feild> in <message> (did you mean <field>?)"));
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

pub mod analyse;
mod config;
/// The emitters (stage 3), for the `zproto` command and the model fuzzer:
/// not an API; [`Config`] is.
#[doc(hidden)]
pub mod emit;
mod error;
pub mod model;
mod names;
/// The XML reader (stage 1), for the model fuzzer: not an API.
#[doc(hidden)]
pub mod xml;

pub use config::{Config, Generated};
pub use error::{Diagnostic, Diagnostics, Error};
