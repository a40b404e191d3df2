//! Compiles the zgossip models in `protocol/` into `OUT_DIR`.

fn main() {
    let models = ["protocol/zgossip_msg.xml"];
    if let Err(e) = zproto_codegen::Config::new().compile(&models) {
        // cargo shows build-script output on failure; keep the diagnostics
        // one per line so they read like compiler errors.
        eprintln!("{e}");
        std::process::exit(1);
    }
}
