//! The C Malamute 1.2 for interop tests: built once per test binary from
//! `../shared/anchors/malamute` (`build.sh`, against Debian's libczmq),
//! run as a child process with a config file, killed on drop.
//!
//! Without the reference material or libczmq the suite says so in one line
//! and does not run; with `ZPROTO_REQUIRE_SHARED=1` (as `.ci/run` sets)
//! that is a failure.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long a test waits for anything.
pub const WAIT: Duration = Duration::from_secs(10);

/// The built C binaries, or why there are none.
fn built() -> &'static Result<PathBuf, String> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT.get_or_init(|| {
        let anchors = std::env::var_os("ZPROTO_SHARED_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
            .join("anchors/malamute");
        let script = anchors.join("build.sh");
        if !script.exists() {
            return Err(format!("{} is missing", script.display()));
        }
        // Integration tests have a scratch directory in target/; benches
        // use the system's.
        let out = option_env!("CARGO_TARGET_TMPDIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| std::env::temp_dir().join("zproto-malamute"))
            .join("malamute-c");
        let programs = ["mlm_peer", "mlm_bench"];
        let source = |program: &str| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/c/{program}.c"))
        };
        let fresh = |program: &str| {
            let built = std::fs::metadata(out.join(program)).and_then(|m| m.modified());
            let source = std::fs::metadata(source(program)).and_then(|m| m.modified());
            matches!((built, source), (Ok(b), Ok(s)) if b >= s)
        };
        if out.join("malamute").exists()
            && out.join("mshell").exists()
            && programs.iter().all(|p| fresh(p))
        {
            return Ok(out);
        }
        let status = Command::new("bash")
            .arg(&script)
            .arg(&out)
            .stdout(Stdio::null())
            .status()
            .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        if !status.success() {
            return Err(format!(
                "{} failed (libczmq-dev and pkg-config installed?)",
                script.display()
            ));
        }
        // Our own C programs on libmlm.a, built as build.sh builds mshell.
        let pkg = |flag: &str| -> Result<Vec<String>, String> {
            let out = Command::new("pkg-config")
                .args([flag, "libczmq"])
                .output()
                .map_err(|e| format!("pkg-config: {e}"))?;
            Ok(String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .map(str::to_owned)
                .collect())
        };
        for program in programs {
            let status = Command::new("gcc")
                .args(["-O2", "-w"])
                .arg(format!("-I{}", anchors.join("include").display()))
                .arg(format!("-I{}", anchors.join("src").display()))
                .arg(format!("-I{}", out.join("obj").display()))
                .args(pkg("--cflags")?)
                .arg(source(program))
                .arg(out.join("libmlm.a"))
                .args(pkg("--libs")?)
                .arg("-lzmq")
                .arg("-o")
                .arg(out.join(program))
                .status()
                .map_err(|e| format!("cannot run gcc: {e}"))?;
            if !status.success() {
                return Err(format!("gcc could not build tests/c/{program}.c"));
            }
        }
        Ok(out)
    })
}

/// The directory with `malamute`, `mshell` and `libmlm.a`, or `None` after
/// printing why the test does not run (a panic under ZPROTO_REQUIRE_SHARED).
pub fn c_malamute(test: &str) -> Option<PathBuf> {
    match built() {
        Ok(dir) => Some(dir.clone()),
        Err(why) => {
            if std::env::var("ZPROTO_REQUIRE_SHARED").is_ok_and(|v| v == "1") {
                panic!("{test}: the C Malamute is required: {why}");
            }
            eprintln!("SKIPPED {test}: no C Malamute to test against ({why})");
            None
        }
    }
}

/// A scratch directory for configs and ipc endpoints, removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("mlm-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Self(dir)
    }

    /// An ipc endpoint in the directory.
    pub fn ipc(&self, name: &str) -> String {
        format!("ipc://{}", self.0.join(name).display())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Which broker a test runs against.
#[derive(Debug, Clone)]
pub enum Kind {
    /// Ours: the `malamute` binary of this crate.
    Ours,
    /// The C Malamute 1.2, built in this directory.
    C(PathBuf),
}

impl Kind {
    /// Ours, and the C broker if it can be built (else a line says so,
    /// or, under ZPROTO_REQUIRE_SHARED=1, the test fails).
    pub fn all(test: &str) -> Vec<Kind> {
        let mut kinds = vec![Kind::Ours];
        kinds.extend(c_malamute(test).map(Kind::C));
        kinds
    }

    pub fn name(&self) -> &'static str {
        match self {
            Kind::Ours => "ours",
            Kind::C(_) => "C",
        }
    }
}

/// A running broker process, killed on drop.
pub struct Broker {
    child: Child,
}

impl Broker {
    /// A broker of `kind` bound to `endpoint`, with the same config file
    /// for both kinds; `plain` is a passwords file for PLAIN security.
    pub fn start(kind: &Kind, scratch: &Scratch, endpoint: &str, plain: Option<&Path>) -> Self {
        Self::start_with(kind, scratch, endpoint, plain, "")
    }

    /// [`Broker::start`] with more `server` settings (indented ZPL lines).
    pub fn start_with(
        kind: &Kind,
        scratch: &Scratch,
        endpoint: &str,
        plain: Option<&Path>,
        server: &str,
    ) -> Self {
        Self::start_configured(kind, scratch, endpoint, plain, server, "")
    }

    /// [`Broker::start_with`], and more `mlm_server` settings.
    pub fn start_configured(
        kind: &Kind,
        scratch: &Scratch,
        endpoint: &str,
        plain: Option<&Path>,
        server: &str,
        mlm_server: &str,
    ) -> Self {
        let config = scratch.0.join(format!("broker-{}.cfg", kind.name()));
        let security = match plain {
            Some(passwords) => format!(
                "server\n    timeout = 10000\n    verbose = 0\n{server}    auth\n        plain = {}\n\
                 mlm_server\n{mlm_server}    security\n        mechanism = plain\n    bind\n        endpoint = {endpoint}\n",
                passwords.display()
            ),
            None => format!(
                "server\n    timeout = 10000\n    verbose = 0\n{server}\
                 mlm_server\n{mlm_server}    security\n        mechanism = null\n    bind\n        endpoint = {endpoint}\n"
            ),
        };
        std::fs::write(&config, security).expect("config");
        let program = match kind {
            Kind::Ours => PathBuf::from(env!("CARGO_BIN_EXE_malamute")),
            Kind::C(dir) => dir.join("malamute"),
        };
        let child = Command::new(program)
            .arg(&config)
            .current_dir(&scratch.0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the broker starts");
        Self { child }
    }
}

impl Broker {
    /// The broker's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Wait for `done`, at most [`WAIT`]; whether it came.
pub fn eventually(mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    done()
}
