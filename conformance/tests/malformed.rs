//! Malformed input gets a typed error naming the message and field; nothing
//! panics, whatever the bytes. Covers the malformed cases of the wire
//! examples (section 5.2), every truncation of every test message, random
//! mutations, and absurd lengths and counts.
// Needs the public models and golden frames (../shared); see shared_material.rs.
#![cfg(shared_models)]

mod common;

use proptest::prelude::*;
use zproto_conformance::golden::decode_hex;
use zproto_conformance::{fmq_msg, mlm_proto, zproto_example as ex, zre_msg};
use zproto_runtime::{Codec, DecodeError, EncodeError};

fn decode(hex: &[&str]) -> Result<ex::ZprotoExample, DecodeError> {
    let frames: Vec<Vec<u8>> = hex.iter().map(|h| decode_hex(h).unwrap()).collect();
    ex::ZprotoExample::decode(&frames)
}

#[test]
fn wrong_signature() {
    assert_eq!(
        decode(&["aaa1017b"]),
        Err(DecodeError::BadSignature {
            class: "zproto_example",
            expected: 0xaaa0,
            found: 0xaaa1
        })
    );
}

#[test]
fn unknown_message_id() {
    assert_eq!(
        decode(&["aaa0097b"]),
        Err(DecodeError::UnknownMessage {
            class: "zproto_example",
            id: 9
        })
    );
}

#[test]
fn wrong_constant() {
    let err = decode(&["aaa001007b0004"]).unwrap_err();
    assert_eq!(
        err,
        DecodeError::BadConstant {
            class: "zproto_example",
            message: "LOG",
            field: "version",
            expected: "3".into(),
            found: "4".into()
        }
    );
    assert_eq!(
        err.to_string(),
        "zproto_example: LOG: field \"version\" is invalid: expected 3, found 4"
    );
}

#[test]
fn zgossip_version_byte_is_checked() {
    use zgossip::msg::ZgossipMsg;
    let err = ZgossipMsg::decode(&[decode_hex("aaa00302").unwrap()]).unwrap_err();
    assert!(
        matches!(
            err,
            DecodeError::BadConstant {
                message: "PING",
                field: "version",
                ..
            }
        ),
        "{err}"
    );
}

/// The C codec returns success here with a half-filled object; we do not.
#[test]
fn truncated_field_names_the_field() {
    assert_eq!(
        decode(&["aaa001007b0003020300"]),
        Err(DecodeError::Truncated {
            class: "zproto_example",
            message: "LOG",
            field: "node",
            needed: 2,
            available: 1
        })
    );
    let err =
        zgossip::msg::ZgossipMsg::decode(&[decode_hex("aaa0020105 6162").unwrap()]).unwrap_err();
    assert!(
        matches!(
            err,
            DecodeError::Truncated {
                message: "ANNOUNCE",
                field: "endpoint",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn frame_too_short_for_an_id() {
    assert_eq!(
        decode(&["aaa0"]),
        Err(DecodeError::TooShort {
            class: "zproto_example",
            len: 2
        })
    );
    assert_eq!(
        decode(&[]),
        Err(DecodeError::NoFrames {
            class: "zproto_example"
        })
    );
}

#[test]
fn missing_frame_field() {
    let body = ex::ZprotoExample::from(ex::Binary::test_value())
        .encode()
        .unwrap()[0]
        .clone();
    assert_eq!(
        ex::ZprotoExample::decode(std::slice::from_ref(&body)),
        Err(DecodeError::MissingFrame {
            class: "zproto_example",
            message: "BINARY",
            field: "address"
        })
    );
    // A frame for `address` and none for `content`: an empty msg field.
    let decoded = ex::ZprotoExample::decode(&[body, b"addr".to_vec()]).unwrap();
    let ex::ZprotoExample::Binary(binary) = decoded else {
        panic!("not BINARY")
    };
    assert_eq!(binary.address, b"addr");
    assert!(binary.content.is_empty());
}

#[test]
fn routed_decode_needs_two_frames() {
    let body = decode_hex("aaa00301").unwrap();
    use zgossip::msg::ZgossipMsg;
    assert_eq!(
        ZgossipMsg::decode_routed(&[body]),
        Err(DecodeError::NoRoutingId {
            class: "zgossip_msg"
        })
    );
}

#[test]
fn invalid_utf8_in_a_string_field() {
    let err = zgossip::msg::ZgossipMsg::decode(&[
        decode_hex("aaa00201 02ff fe 00000000 00000000").unwrap()
    ])
    .unwrap_err();
    assert!(
        matches!(
            err,
            DecodeError::InvalidUtf8 {
                field: "endpoint",
                ..
            }
        ),
        "{err}"
    );
}

/// Claimed lengths and counts far beyond the frame are refused before any
/// allocation (see also tests/allocation.rs, which measures it).
#[test]
fn absurd_lengths_and_counts() {
    // STRUCTURES claiming 4 billion aliases in a 9-byte body.
    let err = decode(&["aaa002007bffffffff"]).unwrap_err();
    assert!(
        matches!(
            err,
            DecodeError::Truncated {
                field: "aliases",
                ..
            }
        ),
        "{err}"
    );
    // BINARY with a chunk claiming 4 GiB.
    let err = decode(&["aaa003007b62333863ffffffff00", "", ""]).unwrap_err();
    assert!(
        matches!(
            err,
            DecodeError::Truncated {
                field: "public_key",
                ..
            }
        ),
        "{err}"
    );
    // A hash claiming 16M entries.
    let err = decode(&["aaa002007b00000000 00ffffff"]).unwrap_err();
    assert!(
        matches!(
            err,
            DecodeError::Truncated {
                field: "headers",
                ..
            }
        ),
        "{err}"
    );
}

/// Every strict prefix of every test message's body is an error.
#[test]
fn every_truncation_is_an_error() {
    fn check<C: Codec + std::fmt::Debug>(messages: Vec<C>) {
        for message in messages {
            let mut frames = message.encode().unwrap();
            let body = frames[0].clone();
            for len in 0..body.len() {
                frames[0] = body[..len].to_vec();
                let result = C::decode(&frames);
                assert!(
                    result.is_err(),
                    "{} cut to {len} bytes decoded: {result:?}",
                    message.command()
                );
            }
        }
    }
    check(vec![
        ex::ZprotoExample::from(ex::Log::test_value()),
        ex::ZprotoExample::from(ex::Structures::test_value()),
        ex::ZprotoExample::from(ex::Binary::test_value()),
        ex::ZprotoExample::from(ex::Types::test_value()),
    ]);
    check(vec![
        mlm_proto::MlmProto::from(mlm_proto::ConnectionOpen::test_value()),
        mlm_proto::MlmProto::from(mlm_proto::MailboxSend::test_value()),
    ]);
    check(vec![zre_msg::ZreMsg::from(zre_msg::Hello::test_value())]);
    check(vec![
        fmq_msg::FmqMsg::from(fmq_msg::Ohai::test_value()),
        fmq_msg::FmqMsg::from(fmq_msg::Cheezburger::test_value()),
    ]);
}

#[test]
fn encoding_refuses_what_the_wire_cannot_carry() {
    let log = ex::Log {
        host: "h".repeat(256),
        ..ex::Log::test_value()
    };
    assert_eq!(
        ex::ZprotoExample::from(log).encode(),
        Err(EncodeError::StringTooLong {
            class: "zproto_example",
            message: "LOG",
            field: "host",
            len: 256
        })
    );
    // Exactly 255 bytes is fine.
    let log = ex::Log {
        host: "h".repeat(255),
        ..ex::Log::test_value()
    };
    assert!(ex::ZprotoExample::from(log).encode().is_ok());
    // A hash key over 255 bytes (the C codec writes a corrupt frame).
    let mut structures = ex::Structures::test_value();
    structures.headers.insert("k".repeat(300), "v".into());
    let err = ex::ZprotoExample::from(structures).encode().unwrap_err();
    assert!(
        matches!(
            err,
            EncodeError::StringTooLong {
                field: "headers",
                len: 300,
                ..
            }
        ),
        "{err}"
    );
}

fn any_frames() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..4)
}

/// Valid messages with some bytes replaced, cut or extended.
fn mutated() -> impl Strategy<Value = Vec<Vec<u8>>> {
    let samples: Vec<Vec<Vec<u8>>> = vec![
        ex::ZprotoExample::from(ex::Log::test_value())
            .encode()
            .unwrap(),
        ex::ZprotoExample::from(ex::Structures::test_value())
            .encode()
            .unwrap(),
        ex::ZprotoExample::from(ex::Binary::test_value())
            .encode()
            .unwrap(),
        ex::ZprotoExample::from(ex::Types::test_value())
            .encode()
            .unwrap(),
    ];
    common::mutated(samples)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_frames_never_panic(frames in any_frames()) {
        let _ = ex::ZprotoExample::decode(&frames);
        let _ = ex::ZprotoExample::decode_routed(&frames);
        let _ = zgossip::msg::ZgossipMsg::decode(&frames);
        let _ = mlm_proto::MlmProto::decode(&frames);
        let _ = zre_msg::ZreMsg::decode(&frames);
    }

    /// A mutated message either fails with an error or decodes to something
    /// that encodes and decodes back to itself.
    #[test]
    fn mutated_messages_error_or_round_trip(frames in mutated()) {
        // The borrowed view agrees with the owned decoder, errors included.
        prop_assert_eq!(
            ex::ZprotoExampleRef::decode(&frames).map(ex::ZprotoExampleRef::into_owned),
            ex::ZprotoExample::decode(&frames)
        );
        if let Ok(message) = ex::ZprotoExample::decode(&frames) {
            let again = message.encode().expect("a decoded message encodes");
            prop_assert_eq!(ex::ZprotoExample::decode(&again), Ok(message));
        }
    }
}
