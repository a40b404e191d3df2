//! Generates the Malamute codec and client from the crate's own models.

fn main() {
    let models = [
        "models/mlm_proto.xml",
        "models/mlm_server.xml",
        "models/mlm_client.xml",
    ];
    if let Err(e) = zproto_codegen::Config::new().compile(&models) {
        eprintln!("{e}");
        std::process::exit(1);
    }
}
