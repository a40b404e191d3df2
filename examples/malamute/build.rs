//! Generates the Malamute codec and client from the crate's own models.

fn main() {
    let models = [
        "models/mlm_proto.xml",
        "models/mlm_server.xml",
        "models/mlm_client.xml",
    ];
    // Message contents as Bytes: the broker hands one message to many
    // readers, and a clone then shares it.
    if let Err(e) = zproto_codegen::Config::new()
        .bytes(["mlm_proto"])
        .compile(&models)
    {
        eprintln!("{e}");
        std::process::exit(1);
    }
}
