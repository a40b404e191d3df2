//! Generates Rust from every public codec model in `../shared/models` (or
//! `$ZPROTO_SHARED_DIR/models`), so that compiling this crate proves they all
//! generate code that compiles without warnings.

use std::path::PathBuf;

/// Codec and server models of public ZeroMQ projects, relative to the models directory.
const MODELS: &[&str] = &[
    "zproto/src/zproto_example.xml",
    "czmq/src/zgossip_msg.xml",
    "malamute/src/mlm_proto.xml",
    "zyre/src/zre_msg.xml",
    "filemq/src/fmq_msg.xml",
    "zproto/src/zyre_peer_example/src/example_peer_msg.xml",
    // Server models (state machines); each names its codec above.
    "czmq/src/zgossip.xml",
    "malamute/src/mlm_server.xml",
    "filemq/src/fmq_server.xml",
];

fn main() {
    println!("cargo:rerun-if-env-changed=ZPROTO_SHARED_DIR");
    let shared = std::env::var_os("ZPROTO_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    let mut models: Vec<PathBuf> = MODELS
        .iter()
        .map(|m| shared.join("models").join(m))
        .collect();
    if let Some(missing) = models.iter().find(|m| !m.exists()) {
        eprintln!(
            "conformance models not found: {} is missing.\n\
             The conformance suite needs the shared reference material beside the \
             repository (../shared) or ZPROTO_SHARED_DIR pointing at it.",
            missing.display()
        );
        std::process::exit(1);
    }
    for own in ["every_type", "rules_msg", "rules_server"] {
        models.push(PathBuf::from(format!("models/{own}.xml")));
    }
    if let Err(e) = zproto_codegen::Config::new().compile(&models) {
        eprintln!("{e}");
        std::process::exit(1);
    }
    // A handler skeleton, compiled by src/lib.rs to prove it is valid Rust
    // for the generated engine. Removed first: skeletons never overwrite.
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let skeleton = out.join("rules_skeleton.rs");
    let _ = std::fs::remove_file(&skeleton);
    let written = zproto_codegen::Config::new()
        .codec_path("rules_msg", "super::rules_msg")
        .write_skeleton(
            "models/rules_server.xml".as_ref(),
            &skeleton,
            "super::rules_server_engine",
        );
    if let Err(e) = written {
        eprintln!("{e}");
        std::process::exit(1);
    }
    // The golden frames, for the tests.
    println!(
        "cargo:rustc-env=ZPROTO_GOLDEN_DIR={}",
        shared.join("spec/golden").display()
    );
}
