//! The generated codecs reproduce, byte for byte, the frames captured from
//! zproto's C codec and from CZMQ 4.2.1's zgossip, and decode them back equal.
// Needs the public models and golden frames (../shared); see shared_material.rs.
#![cfg(shared_models)]

use zproto_conformance::golden::{self, Capture};
use zproto_conformance::{zgossip_msg as czmq, zproto_example as ex};
use zproto_runtime::Codec;

fn find<'a>(captures: &'a [Capture], label: &str) -> &'a Capture {
    captures
        .iter()
        .find(|c| c.label.starts_with(label))
        .unwrap_or_else(|| panic!("no capture labelled {label}"))
}

fn assert_wire<C: Codec + std::fmt::Debug + PartialEq>(message: C, capture: &Capture) {
    let frames = message.encode().expect("encodes");
    assert_eq!(
        frames, capture.frames,
        "{}: encoded frames differ",
        capture.label
    );
    assert_eq!(
        C::decode(&capture.frames).as_ref(),
        Ok(&message),
        "{}",
        capture.label
    );
}

#[test]
fn zproto_example_test_values_match_the_c_codec() {
    let captures = golden::load("zproto_example.frames.txt").unwrap();
    assert_eq!(captures.len(), 4);
    assert_wire(
        ex::ZprotoExample::from(ex::Log::test_value()),
        find(&captures, "LOG"),
    );
    assert_wire(
        ex::ZprotoExample::from(ex::Structures::test_value()),
        find(&captures, "STRUCTURES"),
    );
    assert_wire(
        ex::ZprotoExample::from(ex::Binary::test_value()),
        find(&captures, "BINARY"),
    );
    assert_wire(
        ex::ZprotoExample::from(ex::Types::test_value()),
        find(&captures, "TYPES"),
    );
}

/// The tuple the CZMQ node held when the capture was taken.
const ENDPOINT: &str = "inproc://alpha-1";
const SERVICE: &str = "service1";

#[test]
fn our_zgossip_model_matches_czmq_on_the_wire() {
    use zgossip::msg::*;
    let captures = golden::load("czmq_zgossip.frames.txt").unwrap();
    assert_eq!(captures.len(), 4);
    assert_wire(ZgossipMsg::from(Hello), find(&captures, "node->remote #1"));
    let announce = Announce {
        endpoint: ENDPOINT.into(),
        service: SERVICE.into(),
        ttl: 0,
        ..Default::default()
    };
    assert_wire(
        ZgossipMsg::from(announce),
        find(&captures, "node->remote #2"),
    );
    assert_wire(
        ZgossipMsg::from(Pong::default()),
        find(&captures, "server reply to PING"),
    );
    assert_wire(
        ZgossipMsg::from(Invalid),
        find(&captures, "server reply to PUBLISH"),
    );
}

#[test]
fn czmqs_own_zgossip_model_matches_czmq_on_the_wire() {
    let captures = golden::load("czmq_zgossip.frames.txt").unwrap();
    assert_wire(
        czmq::ZgossipMsg::from(czmq::Hello),
        find(&captures, "node->remote #1"),
    );
    let publish = czmq::Publish {
        key: ENDPOINT.into(),
        value: SERVICE.into(),
        ttl: 0,
    };
    assert_wire(
        czmq::ZgossipMsg::from(publish),
        find(&captures, "node->remote #2"),
    );
    assert_wire(
        czmq::ZgossipMsg::from(czmq::Pong),
        find(&captures, "server reply to PING"),
    );
    assert_wire(
        czmq::ZgossipMsg::from(czmq::Invalid),
        find(&captures, "server reply to PUBLISH"),
    );
}

#[test]
fn routed_frames_carry_the_routing_id_first() {
    use zgossip::msg::*;
    let capture = golden::load("czmq_zgossip.frames.txt").unwrap();
    let body = &find(&capture, "node->remote #2").frames[0];
    let routing_id = [0x00, 0xfe, 0x1a, 0x45, 0xb6];
    let routed = vec![routing_id.to_vec(), body.clone()];
    let (id, message) = ZgossipMsg::decode_routed(&routed).unwrap();
    assert_eq!(id, routing_id);
    assert_eq!(message.encode_routed(&routing_id).unwrap(), routed);
    assert_eq!(message.command(), "ANNOUNCE");
    assert_eq!(message.id(), 2);
}

/// The extra zgossip vectors of the wire examples (section 2.7).
#[test]
fn zgossip_self_test_and_left_over_ttl_vectors() {
    use zgossip::msg::*;
    let text = "4c69666520697320 73686f7274206275 74204e6f77206c61 737473 20666f7220657665 72";
    let self_test =
        golden::decode_hex(&format!("aaa0020124 {text} 00000024 {text} 0000007b")).unwrap();
    assert_eq!(self_test.len(), 85);
    let message = ZgossipMsg::from(Announce::test_value());
    assert_eq!(message.encode().unwrap(), vec![self_test]);

    let left_over = golden::decode_hex("aaa002 01 026b32 000000027632 00001388").unwrap();
    let decoded = ZgossipMsg::decode(&[left_over]).unwrap();
    assert_eq!(
        decoded,
        ZgossipMsg::Announce(Announce {
            endpoint: "k2".into(),
            service: "v2".into(),
            ttl: 5000,
            ..Default::default()
        })
    );
}

/// Unset fields encode as the C codec encodes them (wire examples 5.1),
/// except that an empty `msg` field sends no frame (Rust has no NULL message).
#[test]
fn default_binary_encodes_zeroed_fields() {
    let frames = ex::ZprotoExample::from(ex::Binary::default())
        .encode()
        .unwrap();
    let mut body = vec![0xaa, 0xa0, 0x03, 0x00, 0x00];
    body.extend([0u8; 4 + 4 + 16]);
    assert_eq!(frames, vec![body, vec![]]);
}

/// pubsub="1": frames from zproto's own C codec for the pubsub test model,
/// each under its topic, reproduced and decoded back with the topic.
#[test]
fn pubsub_frames_match_the_c_codec() {
    use zproto_conformance::pubsub_example_msg::*;
    let captures = golden::load("pubsub_example.frames.txt").unwrap();
    let cases: Vec<(PubsubExampleMsg, &str, &str)> = vec![
        (
            Quote {
                symbol: "EURUSD".into(),
                price: 108_250,
                venue: "ECN-1".into(),
            }
            .into(),
            "eu.fx",
            "QUOTE",
        ),
        (
            Trade {
                symbol: "IBM".into(),
                quantity: 300,
                tags: [("side".to_owned(), "buy".to_owned())].into(),
                payload: vec![1, 2, 3],
            }
            .into(),
            "us.eq.nyse",
            "TRADE",
        ),
        (Heartbeat.into(), "", "HEARTBEAT"),
    ];
    for (message, topic, label) in cases {
        let capture = find(&captures, label);
        assert_eq!(
            message.encode_with_topic(topic).unwrap(),
            capture.frames,
            "{label}"
        );
        assert_eq!(
            PubsubExampleMsg::decode_with_topic(&capture.frames),
            Ok((topic.to_owned(), message)),
            "{label}"
        );
    }
    // QUOTE on "eu." subscribes to 51 65 75 2e.
    assert_eq!(
        PubsubExampleMsg::subscription(Quote::ID, "eu."),
        [0x51, 0x65, 0x75, 0x2e]
    );
}
