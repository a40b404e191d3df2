//! The zgossip library leaves the command's dependencies to the command
//! (zgossip-cli): a library user compiles no argument parser, progress bar,
//! chart, CSV writer, HTTP server, metrics encoder or log subscriber.

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

#[test]
fn the_library_depends_on_none_of_the_commands_crates() {
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml");
    let out = Command::new(env!("CARGO"))
        .args(["tree", "--offline", "--prefix", "none", "--edges", "all"])
        .args(["--manifest-path", manifest, "--package", "zgossip"])
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    let crates: Vec<&str> = tree
        .lines()
        .filter_map(|line| line.split(' ').next())
        .collect();
    assert!(
        crates.contains(&"zproto-runtime"),
        "an unexpected tree:\n{tree}"
    );
    for name in COMMAND_ONLY {
        assert!(
            !crates.contains(&name),
            "zgossip depends on {name}:\n{tree}"
        );
    }
}

#[test]
fn without_its_reactor_feature_the_library_needs_no_libzmq() {
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml");
    let out = Command::new(env!("CARGO"))
        .args(["tree", "--offline", "--prefix", "none", "--edges", "normal"])
        .args(["--manifest-path", manifest, "--package", "zgossip"])
        .arg("--no-default-features")
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    let crates: Vec<&str> = tree
        .lines()
        .filter_map(|line| line.split(' ').next())
        .collect();
    assert!(
        crates.contains(&"zproto-runtime"),
        "an unexpected tree:\n{tree}"
    );
    for name in ["zproto-zmq", "zproto-zmq-sys"] {
        assert!(
            !crates.contains(&name),
            "zgossip without its reactor depends on {name}:\n{tree}"
        );
    }
}
