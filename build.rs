//! Compiles the zgossip models in `protocol/` into `OUT_DIR`.

fn main() {
    let models = ["protocol/zgossip_msg.xml", "protocol/zgossip.xml"];
    let result = zproto_codegen::Config::new()
        .codec_path("zgossip_msg", "crate::msg")
        // What session actions tell the node: accepted tuples, refusals,
        // heartbeats to pass on, sessions to flush.
        .server_effects("zgossip", "crate::server::Effect")
        .compile(&models);
    if let Err(e) = result {
        // cargo shows build-script output on failure; keep the diagnostics
        // one per line so they read like compiler errors.
        eprintln!("{e}");
        std::process::exit(1);
    }
}
