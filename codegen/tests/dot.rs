//! State diagrams (`zproto dot`, `Config::emit_dot`): the Graphviz text of
//! a server model, the diagram in docs/ kept in step with zgossip's model,
//! and, where Graphviz is installed, rendered to SVG.

use std::path::Path;
use std::process::{Command, Stdio};

use zproto_codegen::analyse::{analyse_any, Analysed};
use zproto_codegen::emit::dot;

fn diagram(model: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(model);
    match analyse_any(&path).expect("a valid model") {
        Analysed::Server(pair) => dot::emit(&pair.0),
        Analysed::Client(pair) => dot::emit_client(&pair.0),
        Analysed::Codec(_) => panic!("{model} is a codec"),
    }
}

#[test]
fn states_events_actions_and_superstates_are_drawn() {
    let text = diagram("../protocol/zgossip.xml");
    for line in [
        "\"start\" [penwidth = 2];",
        "\"external\" [style = \"rounded,dashed\"];",
        "\"start\" -> \"have tuple\" [label = \"HELLO / send liveness, get first tuple\"];",
        "\"have tuple\" -> \"replaying\" [label = \"pause\"];",
        "\"connected\" -> \"external\" [style = dashed, arrowhead = empty, label = \"inherits\"];",
        "\"external\" -> \"(end)\" [label = \"* / send INVALID, terminate\"];",
        "\"external\" -> \"external\" [label = \"PING / agree extensions, send PONG\\nexpired / send PING\\nbehind\"];",
    ] {
        assert!(text.contains(line), "missing {line}\n{text}");
    }
    // An inherited handler is drawn once, on its superstate.
    assert_eq!(
        text.matches("PING / agree extensions, send PONG").count(),
        2
    );
}

#[test]
fn the_diagram_in_docs_is_zgossips_model() {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/zgossip-server.dot");
    let committed = std::fs::read_to_string(&docs).expect("docs/zgossip-server.dot");
    assert_eq!(
        committed,
        diagram("../protocol/zgossip.xml"),
        "regenerate it: zproto dot protocol/zgossip.xml --out docs/zgossip-server.dot \
         && dot -Tsvg docs/zgossip-server.dot -o docs/zgossip-server.svg"
    );
}

#[test]
fn the_client_diagram_in_docs_is_malamutes_client_model() {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/malamute-client.dot");
    let committed = std::fs::read_to_string(&docs).expect("docs/malamute-client.dot");
    assert_eq!(
        committed,
        diagram("../examples/malamute/models/mlm_client.xml"),
        "regenerate it: zproto dot examples/malamute/models/mlm_client.xml --out docs/malamute-client.dot \
         && dot -Tsvg docs/malamute-client.dot -o docs/malamute-client.svg"
    );
}

#[test]
fn graphviz_renders_it_where_installed() {
    let Ok(mut child) = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        // .ci/run installs Graphviz; ZPROTO_REQUIRE_DOT=1 makes its absence a failure.
        assert!(
            std::env::var("ZPROTO_REQUIRE_DOT").map_or(true, |v| v != "1"),
            "Graphviz (dot) is required here"
        );
        println!("skipped: Graphviz (dot) is not installed");
        return;
    };
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(diagram("../protocol/zgossip.xml").as_bytes())
            .expect("write");
    }
    let out = child.wait_with_output().expect("dot runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let svg = String::from_utf8_lossy(&out.stdout);
    assert!(svg.contains("<svg"), "{svg}");
    assert!(svg.contains("have tuple"));
    // A client's too.
    let mut child = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("dot runs again");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(diagram("../examples/malamute/models/mlm_client.xml").as_bytes())
            .expect("write");
    }
    let out = child.wait_with_output().expect("dot runs");
    assert!(out.status.success());
    let svg = String::from_utf8_lossy(&out.stdout);
    assert!(svg.contains("<svg") && svg.contains("replaying"), "{svg}");
}

#[test]
fn config_writes_the_diagram_beside_the_engine() {
    let out = std::env::temp_dir().join(format!("zproto-dot-{}", std::process::id()));
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../protocol/zgossip.xml");
    let generated = zproto_codegen::Config::new()
        .out_dir(&out)
        .emit_dot(true)
        .cargo_directives(false)
        .compile(&[model])
        .expect("compiles");
    assert!(generated[0]
        .files
        .iter()
        .any(|f| f.ends_with("zgossip.dot")));
    assert_eq!(
        std::fs::read_to_string(out.join("zgossip.dot")).expect("written"),
        diagram("../protocol/zgossip.xml")
    );
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn client_machines_are_drawn_too() {
    let text = diagram("../conformance/models/echo_client.xml");
    for line in [
        "label = \"echo_client (client state machine)\";",
        "\"start\" [penwidth = 2];",
        "\"defaults\" [style = \"rounded,dashed\"];",
        "\"start\" -> \"connecting\" [label = \"connect / connect to server, use connect timeout, send HELLO\"];",
        "\"defaults\" -> \"(end)\" [label = \"destructor / signal success, terminate\"];",
        "\"connected\" -> \"defaults\" [style = dashed, arrowhead = empty, label = \"inherits\"];",
    ] {
        assert!(text.contains(line), "missing {line}\n{text}");
    }
}
