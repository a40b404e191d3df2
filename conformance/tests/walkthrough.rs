//! README's "A new protocol in 5 minutes", step by step, on the echo
//! protocol it describes: the models generate (step 2's build.rs call),
//! the skeleton lists every action the hand-written side implements (step
//! 3), and the server and client talk (step 4, its code as printed).

use std::path::{Path, PathBuf};
use std::time::Duration;

use zproto_conformance::echo::{EchoClient, EchoServer};
use zproto_conformance::echo_client_engine::Client;
use zproto_conformance::echo_server_engine;
use zproto_runtime::host::ServerHandle;

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn readme() -> String {
    std::fs::read_to_string(crate_dir().join("../README.md")).expect("README.md")
}

fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("zproto-walkthrough-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

const MODELS: [&str; 3] = [
    "models/echo_msg.xml",
    "models/echo_server.xml",
    "models/echo_client.xml",
];

#[test]
fn step_2_the_build_rs_call_generates_what_the_crate_compiles() {
    let text = readme();
    let call = format!(
        ".compile(&[{}])",
        MODELS.map(|m| format!("\"{m}\"")).join(", ")
    );
    assert!(text.contains(&call), "README's build.rs step names {call}");
    let out = scratch("generate");
    let models: Vec<PathBuf> = MODELS.iter().map(|m| crate_dir().join(m)).collect();
    zproto_codegen::Config::new()
        .out_dir(&out)
        .cargo_directives(false)
        .compile(&models)
        .expect("the walkthrough's models generate");
    for (file, built) in [
        (
            "echo_msg.rs",
            include_str!(concat!(env!("OUT_DIR"), "/echo_msg.rs")),
        ),
        (
            "echo_server_engine.rs",
            include_str!(concat!(env!("OUT_DIR"), "/echo_server_engine.rs")),
        ),
        (
            "echo_client_engine.rs",
            include_str!(concat!(env!("OUT_DIR"), "/echo_client_engine.rs")),
        ),
    ] {
        let generated = std::fs::read_to_string(out.join(file)).expect(file);
        // The banner names the model by the path it was given.
        let body = |text: &str| text.split_once('\n').map(|(_, rest)| rest.to_owned());
        assert!(
            body(&generated) == body(built),
            "{file} differs from what the crate compiles"
        );
    }
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn step_3_the_skeleton_lists_every_action_the_handlers_implement() {
    let out = scratch("skeleton");
    let skeleton = out.join("echo.rs");
    let written = zproto_codegen::Config::new()
        .write_skeleton(
            &crate_dir().join("models/echo_client.xml"),
            &skeleton,
            "crate::echo_client_engine",
        )
        .expect("skeleton");
    assert!(written);
    let skeleton = std::fs::read_to_string(&skeleton).expect("skeleton");
    let handlers = std::fs::read_to_string(crate_dir().join("src/echo.rs")).expect("src/echo.rs");
    let actions: Vec<&str> = skeleton
        .lines()
        .filter_map(|l| l.trim().strip_prefix("fn "))
        .filter_map(|l| l.split('(').next())
        .collect();
    assert_eq!(actions.len(), 10, "{skeleton}");
    for action in actions {
        assert!(
            handlers.contains(&format!("fn {action}(&mut self, io: &mut Io)")),
            "src/echo.rs implements {action}"
        );
    }
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn step_4_server_and_client_talk() -> Result<(), Box<dyn std::error::Error>> {
    let server =
        ServerHandle::<echo_server_engine::Machine<EchoServer>>::start("echo_server", EchoServer)?;
    let port = server.bind("tcp://127.0.0.1:*")?;
    let mut client = Client::new(EchoClient::default())?;
    client.connect(
        &format!("tcp://127.0.0.1:{port}"),
        2000,
        Duration::from_secs(5),
    )?;
    assert_eq!(client.echo("hello", Duration::from_secs(5))?, "hello");
    Ok(())
}
