//! Generates Rust from every public codec model in `../shared/models` (or
//! `$ZPROTO_SHARED_DIR/models`), so that compiling this crate proves they all
//! generate code that compiles without warnings.

use std::path::PathBuf;

/// Codec, server and client models of public ZeroMQ projects, relative to the models directory.
const MODELS: &[&str] = &[
    "zproto/src/zproto_example.xml",
    "czmq/src/zgossip_msg.xml",
    "malamute/src/mlm_proto.xml",
    "zyre/src/zre_msg.xml",
    "filemq/src/fmq_msg.xml",
    "zproto/src/zyre_peer_example/src/example_peer_msg.xml",
    "pubsub/pubsub_example_msg.xml",
    // Server models (state machines); each names its codec above.
    "czmq/src/zgossip.xml",
    "malamute/src/mlm_server.xml",
    "filemq/src/fmq_server.xml",
    // Client models (state machines with an API).
    "malamute/src/mlm_client.xml",
    "filemq/src/fmq_client.xml",
];

fn main() {
    println!("cargo:rerun-if-env-changed=ZPROTO_SHARED_DIR");
    println!("cargo:rerun-if-env-changed=ZPROTO_REQUIRE_SHARED");
    println!("cargo:rustc-check-cfg=cfg(shared_models)");
    let shared = std::env::var_os("ZPROTO_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    // Our own models: the suite means something with the repository alone.
    let own: Vec<PathBuf> = [
        "every_type",
        "rules_msg",
        "rules_server",
        "feed_msg",
        "echo_msg",
        "echo_server",
        "echo_client",
    ]
    .iter()
    .map(|m| PathBuf::from(format!("models/{m}.xml")))
    .collect();
    // With prost-style attributes, which tests/own_models.rs relies on.
    let compiled = zproto_codegen::Config::new()
        .async_clients(true)
        .type_attribute("every_type", "#[derive(Hash)]")
        .message_attribute("every_type.A", "#[derive(PartialOrd, Ord)]")
        .field_attribute("every_type.A.n1", "#[doc(alias = \"first_number\")]")
        .compile(&own);
    if let Err(e) = compiled {
        eprintln!("{e}");
        std::process::exit(1);
    }
    // every_type again with its chunk, frame and msg fields as Bytes
    // (Config::bytes): src/lib.rs compiles it as `every_type_bytes`, with
    // its own round-trip tests.
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let with_bytes = zproto_codegen::Config::new()
        .out_dir(out_dir.join("bytes"))
        .emit_abnf(false)
        .bytes(["every_type"])
        .compile(&own[..1]);
    if let Err(e) = with_bytes {
        eprintln!("{e}");
        std::process::exit(1);
    }
    // The rules models again, through an include file (Config::include_file):
    // src/lib.rs compiles it as `via_include_file`.
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let included = zproto_codegen::Config::new()
        .out_dir(out.join("included"))
        .emit_abnf(false)
        .emit_tests(false)
        .include_file("mod.rs")
        .compile(&own[1..3]);
    if let Err(e) = included {
        eprintln!("{e}");
        std::process::exit(1);
    }
    // The public models and golden frames, when the reference material is
    // beside the repository. Without it, the tests that need it are left
    // out and `tests/shared_material.rs` says so in one line; with
    // ZPROTO_REQUIRE_SHARED=1 (as CI sets) its absence is an error.
    let public: Vec<PathBuf> = MODELS
        .iter()
        .map(|m| shared.join("models").join(m))
        .collect();
    // Watch the directory, so that reference material that appears later
    // is picked up.
    println!("cargo:rerun-if-changed={}", shared.display());
    match public.iter().find(|m| !m.exists()) {
        None => {
            // Every client gets its async twin too (Malamute's, FileMQ's).
            let compiled = zproto_codegen::Config::new()
                .async_clients(true)
                .compile(&public);
            if let Err(e) = compiled {
                eprintln!("{e}");
                std::process::exit(1);
            }
            println!("cargo:rustc-cfg=shared_models");
            println!(
                "cargo:rustc-env=ZPROTO_GOLDEN_DIR={}",
                shared.join("spec/golden").display()
            );
        }
        Some(missing) if std::env::var_os("ZPROTO_REQUIRE_SHARED").is_some_and(|v| v == "1") => {
            eprintln!(
                "conformance models not found: {} is missing, and ZPROTO_REQUIRE_SHARED=1.\n\
                 The public models and golden frames are expected in ../shared beside the \
                 repository, or where ZPROTO_SHARED_DIR points.",
                missing.display()
            );
            std::process::exit(1);
        }
        Some(missing) => println!(
            "cargo:warning=reference material not found ({} is missing): \
             the public-model conformance tests are left out",
            missing.display()
        ),
    }
    // A handler skeleton, compiled by src/lib.rs to prove it is valid Rust
    // for the generated engine. Removed first: skeletons never overwrite.
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
}
