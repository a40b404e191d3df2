//! README's "A new protocol in 5 minutes", literally: its code blocks
//! (each marked with the file it is) become a crate in a temporary
//! directory outside the workspace, with path dependencies as README says,
//! and nothing else of the repository. It must build without a warning,
//! run its server and client over tcp with CURVE, and get a libzmq with
//! CURVE and eventfd (checked by a small program the test adds).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the repository")
        .to_owned()
}

/// The quick-start's files: each code block after a `<!-- file: PATH -->`
/// line, in its section.
fn quickstart_files() -> Vec<(String, String)> {
    let readme = std::fs::read_to_string(repository().join("README.md")).expect("README.md");
    let start = readme
        .find("## A new protocol in 5 minutes")
        .expect("README has the quick-start");
    let section = &readme[start..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    let mut files = Vec::new();
    let mut lines = section.lines();
    while let Some(line) = lines.next() {
        let Some(name) = line
            .strip_prefix("<!-- file: ")
            .and_then(|rest| rest.strip_suffix(" -->"))
        else {
            continue;
        };
        let fence = lines.next().expect("a code block after the marker");
        assert!(
            fence.starts_with("```"),
            "{name}: no code block after its marker"
        );
        let mut text = String::new();
        for line in lines.by_ref() {
            if line == "```" {
                break;
            }
            text.push_str(line);
            text.push('\n');
        }
        files.push((name.to_owned(), text));
    }
    files
}

/// A small program beside the quick-start's: whether the libzmq it links
/// has CURVE, and uses eventfd (a socket's mailbox is an eventfd then, a
/// socket pair otherwise).
const CHECK_LIBZMQ: &str = r#"
fn main() {
    use zproto_runtime::zmq;
    let ctx = zmq::Context::new();
    let socket = ctx.socket(zmq::PAIR).expect("a socket");
    socket.bind("inproc://check-libzmq").expect("bind");
    let eventfds = std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy().contains("eventfd"))
        .count();
    println!("curve={} eventfd={}", zmq::has("curve") == Some(true), eventfds > 0);
}
"#;

/// `cargo ARGS` in `dir`, bounded by `within`.
fn cargo(dir: &Path, target: &Path, args: &[&str], within: Duration) -> Output {
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO"))
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target)
        // The workspace's settings must not leak in: this is a user's crate.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("cargo runs");
    let output = loop {
        if child.try_wait().expect("wait").is_some() {
            break child.wait_with_output().expect("output");
        }
        if start.elapsed() > within {
            let _ = child.kill();
            panic!("cargo {args:?} still ran after {within:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    output
}

#[test]
fn the_quick_start_builds_outside_the_workspace_and_talks_over_curve() {
    let files = quickstart_files();
    let names: Vec<&str> = files.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "Cargo.toml",
            "models/echo_msg.xml",
            "models/echo_server.xml",
            "models/echo_client.xml",
            "build.rs",
            "src/lib.rs",
            "src/main.rs",
            "src/bin/async_echo.rs"
        ]
    );
    let dir = tempfile::tempdir().expect("a temporary directory");
    let root = repository();
    for (name, text) in &files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("dirs");
        let text = text.replace("PATH/TO/zproto-rs", &root.to_string_lossy());
        std::fs::write(&path, text).expect("write");
    }
    std::fs::create_dir_all(dir.path().join("src/bin")).expect("dirs");
    std::fs::write(dir.path().join("src/bin/check_libzmq.rs"), CHECK_LIBZMQ).expect("write");
    // Its own target directory, kept between runs (libzmq and libsodium
    // take a while to build); a fresh clone builds everything once.
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("quickstart-target");
    let within = Duration::from_secs(20 * 60);

    let build = cargo(dir.path(), &target, &["build", "--bins"], within);
    let stderr = String::from_utf8_lossy(&build.stderr);
    assert!(
        build.status.success(),
        "the quick-start does not build:\n{stderr}"
    );
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("warning"))
        .collect();
    assert!(warnings.is_empty(), "the build warns:\n{stderr}");

    let run = cargo(dir.path(), &target, &["run", "-q", "--bin", "echo"], within);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&run.stdout),
        "echoed \"hello\" over CURVE\n"
    );

    let run = cargo(
        dir.path(),
        &target,
        &["run", "-q", "--bin", "async_echo"],
        within,
    );
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&run.stdout),
        "100 tasks echoed over CURVE\n"
    );

    let check = cargo(
        dir.path(),
        &target,
        &["run", "-q", "--bin", "check_libzmq"],
        within,
    );
    assert_eq!(
        String::from_utf8_lossy(&check.stdout),
        "curve=true eventfd=true\n",
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}
