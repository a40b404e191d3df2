//! `cfg(netns)` when the tests can make network namespaces (root, and
//! `ip netns` works): without it, `tests/partition.rs` compiles to a test
//! whose name says the suite did not run.

fn main() {
    println!("cargo:rustc-check-cfg=cfg(netns)");
    println!("cargo:rerun-if-env-changed=ZGOSSIP_REQUIRE_NETNS");
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0");
    let ip = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .is_ok_and(|out| out.status.success());
    if root && ip {
        println!("cargo:rustc-cfg=netns");
    }
}
