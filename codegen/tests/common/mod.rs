//! A model of a few lines, analysed: the class element around `body`, for
//! `script` (`zproto_server_c`, `zproto_client_c`), over the small codec
//! `ping_msg` (PING, PONG) of the broken-models corpus.

use std::path::Path;

use zproto_codegen::analyse::{analyse_any, Analysed};

pub fn analysed(script: &str, body: &str) -> Analysed {
    let codec = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/broken/codec");
    let dir = std::env::temp_dir().join(format!("zproto-models-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let file = dir.join(format!("{script}-{n}.xml"));
    std::fs::write(
        &file,
        format!(
            "<class name = \"c\" script = \"{script}\" protocol_class = \"ping_msg\" \
             protocol_dir = \"{}\">{body}</class>",
            codec.display()
        ),
    )
    .expect("model");
    let analysed = analyse_any(&file);
    let _ = std::fs::remove_file(&file);
    analysed.unwrap_or_else(|e| panic!("{e}"))
}
