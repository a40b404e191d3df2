//! Client models: what the analyser makes of them beyond the broken corpus.

mod common;

use zproto_codegen::analyse::Analysed;
use zproto_codegen::model::client::ClientModel;

fn client(body: &str) -> ClientModel {
    match common::analysed("zproto_client_c", body) {
        Analysed::Client(pair) => pair.0,
        _ => panic!("not a client"),
    }
}

/// zproto_client_c resolves superstates in one pass, in document order: a
/// state gets what its superstate holds *then*, so the superstate's own
/// superstate counts only if it came first.
#[test]
fn superstates_resolve_in_one_pass_in_document_order() {
    let model = client(
        r#"
        <state name = "a" inherit = "b"><event name = "own" /></state>
        <state name = "b" inherit = "c"><event name = "from b" /></state>
        <state name = "c"><event name = "from c" /></state>
        <state name = "d" inherit = "b" />
        "#,
    );
    let events = |state: &str| -> Vec<String> {
        let s = model
            .states
            .iter()
            .find(|s| s.name == state)
            .expect("state");
        s.handlers.iter().map(|h| h.event.clone()).collect()
    };
    assert_eq!(events("a"), ["own", "from_b"], "b was not resolved yet");
    assert_eq!(events("b"), ["from_b", "from_c"]);
    assert_eq!(events("d"), ["from_b", "from_c"], "b was resolved by then");
}

#[test]
fn methods_replies_and_streams_are_read() {
    let model = client(
        r#"
        <state name = "start"><event name = "set producer" /><event name = "PONG" /></state>
        <method name = "set producer" return = "status">
            Choose a stream.
            <field name = "stream" type = "string" />
            <field name = "timeout" type = "number" />
            <accept reply = "SUCCESS" />
        </method>
        <method name = "wait reply" immediate = "1" />
        <reply name = "SUCCESS"><field name = "status" type = "integer" /></reply>
        <send><message name = "PING" method = "ping now" /></send>
        <recv><message name = "PONG" /></recv>
        "#,
    );
    let m = &model.methods[0];
    assert_eq!(
        (m.name.as_str(), m.returns.as_deref()),
        ("set_producer", Some("status"))
    );
    assert_eq!(m.doc, "Choose a stream.");
    assert_eq!(
        m.fields[1].kind,
        zproto_codegen::model::client::ApiType::Number(4),
        "size 4 by default"
    );
    assert_eq!(m.accepts, ["success"]);
    assert!(
        model.methods[1].immediate,
        "an immediate method needs no event"
    );
    assert_eq!(model.sends[0].method, "ping_now");
    assert_eq!(
        model.recv.as_ref().map(|r| r.messages.clone()),
        Some(vec!["pong".to_owned()])
    );
}

#[test]
fn an_action_runs_on_a_message_typed_unless_a_method_raises_its_event_too() {
    let model = client(
        r#"
        <state name = "start">
            <event name = "PONG"><action name = "note pong" /></event>
            <event name = "PING"><action name = "note ping" /></event>
        </state>
        <method name = "ping">Raises the event PING as a message does.</method>
        "#,
    );
    assert_eq!(model.message_of("note_pong"), Some("pong"));
    // A call raises `ping` with no PING in the scratchpad.
    assert_eq!(model.message_of("note_ping"), None);
}
