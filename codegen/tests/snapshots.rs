//! Snapshot tests of generated code: what the generator emits for the echo
//! models (codec, server and client) and for zgossip's models (codec and
//! server, as the zgossip crate's build script configures them) is checked
//! in under `tests/snapshots/`, so that any change to an emitter shows in
//! review as a change to the code it generates.
//!
//! After a deliberate change, refresh them with
//!
//! ```text
//! ZPROTO_BLESS=1 cargo test -p zproto-codegen --test snapshots
//! ```
//!
//! and commit the files it rewrote.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use zproto_codegen::Config;

/// A set of models generated together, and how.
struct Case {
    /// Its directory under `tests/snapshots/`.
    name: &'static str,
    /// The models, relative to the workspace's root.
    models: &'static [&'static str],
    /// The configuration its real build uses.
    configure: fn(&mut Config),
}

const CASES: &[Case] = &[
    Case {
        name: "echo",
        models: &[
            "conformance/models/echo_msg.xml",
            "conformance/models/echo_server.xml",
            "conformance/models/echo_client.xml",
        ],
        // As the conformance crate's build script configures it.
        configure: |config| {
            config.async_clients(true);
        },
    },
    Case {
        name: "zgossip",
        models: &["protocol/zgossip_msg.xml", "protocol/zgossip.xml"],
        configure: |config| {
            // As zgossip's build script configures it.
            config
                .codec_path("zgossip_msg", "crate::msg")
                .server_effects("zgossip", "crate::server::Effect");
        },
    },
];

/// The workspace's root, relative to this crate's directory (where cargo
/// runs its tests): generated files name their model as it was given, and
/// a relative path reads the same in every clone.
fn workspace() -> PathBuf {
    PathBuf::from("..")
}

fn blessing() -> bool {
    std::env::var_os("ZPROTO_BLESS").is_some_and(|v| v != "0")
}

/// The first line where `expected` and `actual` differ, both ways, for the
/// failure message.
fn first_difference(expected: &str, actual: &str) -> String {
    let (mut e, mut a) = (expected.lines(), actual.lines());
    let mut line = 1;
    loop {
        match (e.next(), a.next()) {
            (Some(x), Some(y)) if x == y => line += 1,
            (None, None) => return "no line differs (line endings?)".into(),
            (x, y) => {
                return format!(
                    "line {line}:\n  expected: {}\n  generated: {}",
                    x.unwrap_or("<end of file>"),
                    y.unwrap_or("<end of file>")
                )
            }
        }
    }
}

/// Generate `case` into a scratch directory: file name to content.
fn generate(case: &Case) -> Vec<(String, String)> {
    let out = std::env::temp_dir().join(format!(
        "zproto-snapshots-{}-{}",
        case.name,
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).expect("scratch directory");
    let models: Vec<PathBuf> = case.models.iter().map(|m| workspace().join(m)).collect();
    assert!(
        models.iter().all(|m| m.exists()),
        "run from the crate's directory, as cargo test does"
    );
    let mut config = Config::new();
    config.out_dir(&out).cargo_directives(false);
    (case.configure)(&mut config);
    let generated = config
        .compile(&models)
        .unwrap_or_else(|e| panic!("{}: {e}", case.name));
    let mut files: Vec<(String, String)> = generated
        .iter()
        .flat_map(|g| g.files.iter())
        .map(|path| {
            let name = path
                .file_name()
                .expect("a file name")
                .to_string_lossy()
                .into_owned();
            let text = std::fs::read_to_string(path).expect("generated file");
            (name, text)
        })
        .collect();
    files.sort();
    files.dedup_by(|a, b| a.0 == b.0);
    let _ = std::fs::remove_dir_all(&out);
    files
}

#[test]
fn generated_code_matches_the_checked_in_snapshots() {
    let bless = blessing();
    let mut stale = Vec::new();
    for case in CASES {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/snapshots")
            .join(case.name);
        let files = generate(case);
        assert!(!files.is_empty(), "{}: nothing generated", case.name);
        if bless {
            std::fs::create_dir_all(&dir).expect("snapshot directory");
        }
        for (name, text) in &files {
            let path = dir.join(name);
            let expected = std::fs::read_to_string(&path).unwrap_or_default();
            if expected == *text {
                continue;
            }
            if bless {
                std::fs::write(&path, text).expect("write snapshot");
                eprintln!("refreshed {}", path.display());
            } else {
                stale.push(format!(
                    "{}: {}",
                    path.display(),
                    first_difference(&expected, text)
                ));
            }
        }
        // A snapshot of a file no longer generated is stale too.
        let generated: BTreeSet<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if generated.contains(name.as_str()) {
                continue;
            }
            if bless {
                std::fs::remove_file(entry.path()).expect("remove stale snapshot");
            } else {
                stale.push(format!("{}: no longer generated", entry.path().display()));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "generated code differs from its snapshots (after a deliberate change: \
         ZPROTO_BLESS=1 cargo test -p zproto-codegen --test snapshots):\n{}",
        stale.join("\n")
    );
}

#[test]
fn a_snapshot_difference_names_its_first_line() {
    assert_eq!(
        first_difference("a\nb\nc\n", "a\nx\nc\n"),
        "line 2:\n  expected: b\n  generated: x"
    );
    assert_eq!(
        first_difference("a\n", "a\nb\n"),
        "line 2:\n  expected: <end of file>\n  generated: b"
    );
}
