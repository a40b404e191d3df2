//! `zgossip node --config FILE`: a ZPL file configures, binds, connects and
//! announces as the flags do; bad files get errors that name their line;
//! the sample in docs/ is a working config.

use zgossip_testkit as support;

use std::process::Command;

use support::Running;

const BIN: &str = env!("CARGO_BIN_EXE_zgossip");

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("zgossip-config-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    dir
}

#[test]
fn two_nodes_configured_by_files_discover_each_other() {
    let dir = scratch("good");
    let endpoint = format!("ipc://{}", dir.join("a.ipc").display());
    let a_cfg = dir.join("a.cfg");
    std::fs::write(
        &a_cfg,
        format!(
            "server\n    timeout = 5000\nzgossip\n    bind\n        endpoint = {endpoint}\n\
             \x20   announce\n        tuple\n            endpoint = tcp://a:1\n            service = printer A\n"
        ),
    )
    .expect("write");
    let b_cfg = dir.join("b.cfg");
    std::fs::write(
        &b_cfg,
        format!(
            "zgossip\n    connect\n        endpoint = {endpoint}\n\
             \x20   announce\n        tuple\n            endpoint = tcp://b:1\n            service = scanner B\n"
        ),
    )
    .expect("write");
    let mut a = Running::start(BIN, &["node", "--config", &a_cfg.display().to_string()]);
    a.expect(&format!("LOADED {}", a_cfg.display()));
    let mut b = Running::start(BIN, &["node", "--config", &b_cfg.display().to_string()]);
    a.expect("DELIVER tcp://b:1 scanner B");
    b.expect("DELIVER tcp://a:1 printer A");
    a.send("$TERM");
    a.expect_exit();
    b.send("$TERM");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_config_files_get_errors_with_their_line() {
    let dir = scratch("bad");
    for (text, expected) in [
        ("server\n    timeout = soon\n", ":2: "),
        ("limits\n    tuples = -1\n", ":2: "),
        (
            "zgossip\n    connect\n        endpoint = nonsense\n",
            ":3: ",
        ),
        (
            "zgossip\n    listen\n",
            ":2: zgossip has bind, connect and announce",
        ),
        ("server\n  timeout = 5\n", ":2: 3: indentation"),
    ] {
        let file = dir.join("bad.cfg");
        std::fs::write(&file, text).expect("write");
        let out = Command::new(BIN)
            .args(["node", "--no-stdin", "--for", "1", "--config"])
            .arg(&file)
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text:?}: {stderr}");
        assert!(
            stderr.contains(&format!("{}{expected}", file.display())),
            "{text:?}: {stderr}"
        );
    }
    let missing = Command::new(BIN)
        .args([
            "node",
            "--no-stdin",
            "--for",
            "1",
            "--config",
            "/nonexistent.cfg",
        ])
        .output()
        .expect("runs");
    assert_eq!(missing.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_sample_config_in_docs_loads() {
    let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/zgossip.cfg");
    let config = zgossip_cli::config::NodeConfig::load(&sample).expect("the sample parses");
    assert_eq!(config.bind.len(), 1);
    assert_eq!(config.announce.len(), 1);
    // Its settings are ones the node takes.
    let node = zgossip::Node::new("sample").expect("node");
    for (path, value, line) in &config.settings {
        node.set(path, value)
            .unwrap_or_else(|e| panic!("docs/zgossip.cfg:{line}: {e}"));
    }
}
