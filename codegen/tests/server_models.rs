//! Server models: which actions the generated trait hands their message
//! typed (`ServerModel::message_of`).

mod common;

use zproto_codegen::analyse::Analysed;
use zproto_codegen::model::server::ServerModel;

fn server(body: &str) -> ServerModel {
    match common::analysed("zproto_server_c", body) {
        Analysed::Server(pair) => pair.0,
        _ => panic!("not a server"),
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
