//! Server models: which actions the generated trait hands their message
//! typed (`ServerModel::message_of`).

use std::path::Path;

use zproto_codegen::analyse::{analyse_any, Analysed};
use zproto_codegen::model::server::ServerModel;

fn server(body: &str) -> ServerModel {
    let codec = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/broken/codec");
    let dir = std::env::temp_dir().join(format!("zproto-server-models-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let file = dir.join(format!("s{n}.xml"));
    std::fs::write(
        &file,
        format!(
            "<class name = \"s\" script = \"zproto_server_c\" protocol_class = \"ping_msg\" \
             protocol_dir = \"{}\">{body}</class>",
            codec.display()
        ),
    )
    .expect("model");
    let analysed = analyse_any(&file);
    let _ = std::fs::remove_file(&file);
    match analysed {
        Ok(Analysed::Server(pair)) => pair.0,
        Ok(_) => panic!("not a server"),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn an_action_first_on_one_message_everywhere_takes_it_typed() {
    let model = server(
        r#"
        <state name = "start">
            <event name = "PING" next = "other">
                <action name = "note ping" />
                <action name = "send" message = "PONG" />
                <action name = "after the note" />
            </event>
        </state>
        <state name = "other">
            <event name = "PING">
                <action name = "send" message = "PONG" />
                <action name = "note ping" />
            </event>
        </state>
        "#,
    );
    // A `send` before it leaves the received message where it was.
    assert_eq!(model.message_of("note_ping"), Some("ping"));
    // Another custom action before it may have put a message of its own
    // in the scratchpad.
    assert_eq!(model.message_of("after_the_note"), None);
}

#[test]
fn an_action_run_on_two_messages_or_on_internal_events_takes_none() {
    let model = server(
        r#"
        <state name = "start">
            <before><action name = "on entry" /></before>
            <event name = "PING"><action name = "either" /><action name = "on entry" /></event>
            <event name = "PONG"><action name = "either" /></event>
            <event name = "tick"><action name = "internal" /></event>
            <event name = "*"><action name = "anything" /></event>
        </state>
        <state name = "other">
            <event name = "PING"><action name = "anything" /></event>
        </state>
        "#,
    );
    assert_eq!(model.message_of("either"), None);
    assert_eq!(model.message_of("internal"), None);
    assert_eq!(model.message_of("on_entry"), None, "a before block runs it");
    assert_eq!(model.message_of("anything"), None, "the wildcard runs it");
}
