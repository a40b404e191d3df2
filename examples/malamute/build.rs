//! Generates the Malamute codec and client from the crate's own models.

fn main() {
    c_malamute_available();
    let models = [
        "models/mlm_proto.xml",
        "models/mlm_server.xml",
        "models/mlm_client.xml",
    ];
    // Message contents as Bytes: the broker hands one message to many
    // readers, and a clone then shares it.
    // The client's async twin too (`AsyncClient`).
    if let Err(e) = zproto_codegen::Config::new()
        .bytes(["mlm_proto"])
        .async_clients(true)
        .compile(&models)
    {
        eprintln!("{e}");
        std::process::exit(1);
    }
}

/// `cfg(c_malamute)` when the C Malamute can be built for the tests that
/// compare with it: its sources in the reference material
/// (`../shared/anchors/malamute`, or `$ZPROTO_SHARED_DIR/anchors/malamute`)
/// and the CZMQ it needs. Without it, those comparisons are left out, and
/// `tests/c_malamute.rs` has a test whose name says so.
fn c_malamute_available() {
    println!("cargo:rustc-check-cfg=cfg(c_malamute)");
    println!("cargo:rerun-if-env-changed=ZPROTO_SHARED_DIR");
    let shared = std::env::var_os("ZPROTO_SHARED_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new("../../../shared").to_owned());
    let script = shared.join("anchors/malamute/build.sh");
    println!("cargo:rerun-if-changed={}", script.display());
    let czmq = std::process::Command::new("pkg-config")
        .args(["--exists", "libczmq"])
        .status()
        .is_ok_and(|s| s.success());
    if script.exists() && czmq {
        println!("cargo:rustc-cfg=c_malamute");
    }
}
