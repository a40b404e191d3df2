//! The zgossip library leaves the command's dependencies to the command
//! (zgossip-cli): a library user compiles no argument parser, progress bar,
//! chart, CSV writer, HTTP server, metrics encoder or log subscriber; and
//! without its reactor feature, no libzmq.

use std::process::Command;

/// Crates only the `zgossip` command needs.
const COMMAND_ONLY: [&str; 8] = [
    "clap",
    "indicatif",
    "plotters",
    "csv",
    "tiny_http",
    "hyper",
    "prometheus-client",
    "tracing-subscriber",
];

/// Every crate in `cargo tree -p zgossip` with `options`, by name.
fn zgossip_tree(options: &[&str]) -> Vec<String> {
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml");
    let out = Command::new(env!("CARGO"))
        .args(["tree", "--offline", "--prefix", "none"])
        .args(["--manifest-path", manifest, "--package", "zgossip"])
        .args(options)
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    let crates: Vec<String> = tree
        .lines()
        .filter_map(|line| line.split(' ').next())
        .map(str::to_owned)
        .collect();
    assert!(
        crates.iter().any(|c| c == "zproto-runtime"),
        "an unexpected tree:\n{tree}"
    );
    crates
}

#[test]
fn the_library_depends_on_none_of_the_commands_crates() {
    let crates = zgossip_tree(&["--edges", "all"]);
    for name in COMMAND_ONLY {
        assert!(
            !crates.iter().any(|c| c == name),
            "zgossip depends on {name}: {crates:?}"
        );
    }
}

#[test]
fn without_its_reactor_feature_the_library_needs_no_libzmq() {
    let crates = zgossip_tree(&["--edges", "normal", "--no-default-features"]);
    for name in ["zproto-zmq", "zproto-zmq-sys"] {
        assert!(
            !crates.iter().any(|c| c == name),
            "zgossip without its reactor depends on {name}: {crates:?}"
        );
    }
}
