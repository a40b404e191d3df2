//! Builds the CZMQ programs (`c/`) against Debian's libczmq when it is
//! installed: the other side of the interop tests and of the benchmark.
//! They live in this crate, which is never published, so that no library's
//! build script compiles C test programs.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    build_czmq_programs();
}

/// `c/czmq_node.c`, `czmq_bench.c`, `czmq_swarm.c` and `czmq_bind.c`
/// against Debian's libczmq, for `tests/czmq_interop.rs`, `tests/bind.rs`
/// and zgossip-cli's benchmark; sets `cfg(czmq)`, `CZMQ_NODE_BIN`,
/// `CZMQ_BENCH_BIN`, `CZMQ_SWARM_BIN` and `CZMQ_BIND_BIN` when built.
/// With `ZGOSSIP_REQUIRE_CZMQ=1` (as in CI) a missing libczmq is an error.
fn build_czmq_programs() {
    println!("cargo:rustc-check-cfg=cfg(czmq)");
    println!("cargo:rerun-if-changed=c/czmq_node.c");
    println!("cargo:rerun-if-changed=c/czmq_bench.c");
    println!("cargo:rerun-if-changed=c/czmq_swarm.c");
    println!("cargo:rerun-if-changed=c/czmq_bind.c");
    println!("cargo:rerun-if-env-changed=ZGOSSIP_REQUIRE_CZMQ");
    let required = std::env::var("ZGOSSIP_REQUIRE_CZMQ").is_ok_and(|v| v == "1");
    let flags = Command::new("pkg-config")
        .args(["--cflags", "--libs", "libczmq", "libzmq"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    // Rebuild when libczmq is installed or removed: watch its .pc file, or,
    // while it is missing, a path that does not exist (cargo then reruns
    // this script on every build, which costs one pkg-config call).
    let pc_dir = Command::new("pkg-config")
        .args(["--variable=pcfiledir", "libczmq"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    match &pc_dir {
        Some(dir) => println!("cargo:rerun-if-changed={dir}/libczmq.pc"),
        None => println!("cargo:rerun-if-changed=libczmq-is-not-installed"),
    }
    let Some(flags) = flags else {
        if required {
            eprintln!("ZGOSSIP_REQUIRE_CZMQ=1 but pkg-config finds no libczmq: apt-get install libczmq-dev");
            std::process::exit(1);
        }
        return;
    };
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    let mut built = true;
    for (program, variable) in [
        ("czmq_node", "CZMQ_NODE_BIN"),
        ("czmq_bench", "CZMQ_BENCH_BIN"),
        ("czmq_swarm", "CZMQ_SWARM_BIN"),
        ("czmq_bind", "CZMQ_BIND_BIN"),
    ] {
        let out = out_dir.join(program);
        let status = Command::new(&cc)
            .args(["-O2", "-Wall", "-Werror", "-o"])
            .arg(&out)
            .arg(format!("c/{program}.c"))
            .args(flags.split_whitespace())
            .status();
        match status {
            Ok(s) if s.success() => println!("cargo:rustc-env={variable}={}", out.display()),
            other => {
                eprintln!("cannot build {program} with {cc}: {other:?}");
                built = false;
            }
        }
    }
    if built {
        println!("cargo:rustc-cfg=czmq");
    } else if required {
        std::process::exit(1);
    }
}
