//! Property test: random messages of every field type encode and decode back
//! equal, and their body is exactly `body_len()` bytes.
// Needs the public models and golden frames (../shared); see shared_material.rs.
#![cfg(shared_models)]

use std::collections::BTreeMap;

use proptest::prelude::*;
use zproto_conformance::{fmq_msg, zproto_example as ex};
use zproto_runtime::Codec;

/// Any UTF-8 text of at most `max_chars` characters (up to 4 bytes each).
fn text(max_chars: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(any::<char>(), 0..=max_chars).prop_map(String::from_iter)
}

/// A `string` field: at most 255 bytes.
fn short() -> impl Strategy<Value = String> {
    text(63)
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..100)
}

fn example() -> impl Strategy<Value = ex::ZprotoExample> {
    let log = (any::<(u16, u8, u8, u16, u16, u64)>(), short(), text(200)).prop_map(
        |((sequence, level, event, node, peer, time), host, data)| {
            ex::Log {
                sequence,
                level,
                event,
                node,
                peer,
                time,
                host,
                data,
            }
            .into()
        },
    );
    let structures = (
        any::<u16>(),
        prop::collection::vec(text(30), 0..6),
        prop::collection::btree_map(short(), text(30), 0..6),
    )
        .prop_map(
            |(sequence, aliases, headers): (u16, Vec<String>, BTreeMap<String, String>)| {
                ex::Structures {
                    sequence,
                    aliases,
                    headers,
                }
                .into()
            },
        );
    let binary = (
        any::<u16>(),
        any::<[u8; 4]>(),
        bytes(),
        any::<[u8; 16]>(),
        bytes(),
        prop::collection::vec(bytes(), 0..4),
    )
        .prop_map(
            |(sequence, flags, public_key, identifier, address, content)| {
                ex::Binary {
                    sequence,
                    flags,
                    public_key,
                    identifier,
                    address,
                    content,
                }
                .into()
            },
        );
    let types = (any::<u16>(), prop::collection::vec(short(), 8)).prop_map(|(sequence, s)| {
        ex::Types {
            sequence,
            client_forename: s[0].clone(),
            client_surname: s[1].clone(),
            client_mobile: s[2].clone(),
            client_email: s[3].clone(),
            supplier_forename: s[4].clone(),
            supplier_surname: s[5].clone(),
            supplier_mobile: s[6].clone(),
            supplier_email: s[7].clone(),
        }
        .into()
    });
    prop_oneof![log, structures, binary, types]
}

fn body_len(message: &ex::ZprotoExample) -> usize {
    match message {
        ex::ZprotoExample::Log(m) => m.body_len(),
        ex::ZprotoExample::Structures(m) => m.body_len(),
        ex::ZprotoExample::Binary(m) => m.body_len(),
        ex::ZprotoExample::Types(m) => m.body_len(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn zproto_example_round_trips(message in example(), routing_id in prop::collection::vec(any::<u8>(), 1..8)) {
        let frames = message.encode().unwrap();
        prop_assert_eq!(frames[0].len(), body_len(&message));
        prop_assert_eq!(ex::ZprotoExample::decode(&frames), Ok(message.clone()));
        let routed = message.encode_routed(&routing_id).unwrap();
        prop_assert_eq!(ex::ZprotoExample::decode_routed(&routed), Ok((routing_id.as_slice(), message)));
    }

    /// Number fields of 4 and 8 bytes, a string constant and a numeric constant
    /// that names a define.
    #[test]
    fn fmq_numbers_and_constants_round_trip(sequence in any::<u64>(), offset in any::<u64>(), operation in any::<u8>(), credit in any::<u64>()) {
        let messages: Vec<fmq_msg::FmqMsg> = vec![
            fmq_msg::Cheezburger { sequence, operation, offset, ..fmq_msg::Cheezburger::test_value() }.into(),
            fmq_msg::Nom { credit, sequence }.into(),
            fmq_msg::Ohai.into(),
        ];
        for message in messages {
            let frames = message.encode().unwrap();
            prop_assert_eq!(fmq_msg::FmqMsg::decode(&frames), Ok(message));
        }
    }

    #[test]
    fn zgossip_announce_round_trips(
        endpoint in short(),
        service in text(300),
        ttl in any::<u32>(),
        stamp in proptest::option::of((any::<u64>(), any::<u64>(), any::<u32>(), any::<u8>())),
    ) {
        use zgossip::msg::*;
        let mut announce = Announce { endpoint, service, ttl, ..Announce::default() };
        if let Some((origin, revision, lease, flags)) = stamp {
            announce.origin = Some(origin);
            announce.revision = Some(revision);
            announce.lease = Some(lease);
            announce.flags = Some(flags);
        }
        let message = ZgossipMsg::from(announce);
        let frames = message.encode().unwrap();
        prop_assert_eq!(ZgossipMsg::decode(&frames), Ok(message));
    }
}

#[test]
fn fmq_version_constant_comes_from_its_define() {
    let frames = fmq_msg::FmqMsg::from(fmq_msg::Ohai).encode().unwrap();
    // signature AA A3, id 1, "FILEMQ", version FMQ_MSG_VERSION = 2.
    assert_eq!(frames[0], b"\xaa\xa3\x01\x06FILEMQ\x00\x02");
    assert_eq!(fmq_msg::VERSION, 2);
}
