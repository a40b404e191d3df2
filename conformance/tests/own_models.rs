//! Decoding robustness on the project's own model with every field type
//! (`models/every_type.xml`), so that it is tested with the repository
//! alone: every truncation of a message is an error, random frames never
//! panic, and a mutated message either fails or decodes to a message that
//! round-trips. (The same checks run on the public models in malformed.rs
//! when the reference material is there.)

mod common;

use proptest::prelude::*;
use zproto_conformance::every_type::{EveryType, EveryTypeRef, Grown, Type, A};
use zproto_runtime::Codec;

fn samples() -> Vec<EveryType> {
    vec![
        EveryType::from(A::test_value()),
        EveryType::from(Type::test_value()),
    ]
}

#[test]
fn every_truncation_of_the_body_is_an_error() {
    for message in samples() {
        let mut frames = message.encode().expect("encodes");
        let body = frames[0].clone();
        for len in 0..body.len() {
            frames[0] = body[..len].to_vec();
            let result = EveryType::decode(&frames);
            assert!(
                result.is_err(),
                "{} cut to {len} bytes decoded: {result:?}",
                message.command()
            );
        }
        // Without its frame and msg fields, A is incomplete too.
        if frames.len() > 1 {
            frames[0] = body;
            let result = EveryType::decode(&frames[..1]);
            assert!(result.is_err(), "{result:?}");
        }
    }
}

/// Optional numbers at the end of a body (`optional="1"`): a frame from a
/// peer built without them decodes with `None`, each prefix of them round
/// trips, a field cut in the middle is an error, and setting a later one
/// without an earlier one is refused rather than sent ambiguous.
#[test]
fn optional_fields_grow_a_message_without_breaking_older_peers() {
    let grown = |since_v2, since_v3| Grown {
        seq: 7,
        s: "x".into(),
        since_v2,
        since_v3,
        tail: b"t".to_vec(),
    };
    let old = EveryType::from(grown(None, None)).encode().unwrap();
    let v2 = EveryType::from(grown(Some(0x0102_0304), None))
        .encode()
        .unwrap();
    let v3 = EveryType::from(grown(Some(1), Some(u64::MAX)))
        .encode()
        .unwrap();
    // What an older peer sends is the prefix; each version adds its bytes.
    assert_eq!(v2[0].len(), old[0].len() + 4);
    assert_eq!(v3[0].len(), old[0].len() + 12);
    assert_eq!(&v2[0][..old[0].len()], &old[0][..]);
    assert_eq!(&v2[0][old[0].len()..], &[1, 2, 3, 4]);
    for (frames, message) in [
        (&old, grown(None, None)),
        (&v2, grown(Some(0x0102_0304), None)),
        (&v3, grown(Some(1), Some(u64::MAX))),
    ] {
        assert_eq!(frames[0].len(), message.body_len());
        assert_eq!(
            EveryType::decode(frames),
            Ok(EveryType::from(message.clone()))
        );
        let view = EveryTypeRef::decode(frames).unwrap();
        assert_eq!(view.into_owned(), EveryType::from(message.clone()));
        let text = EveryType::from(message.clone()).to_zpl().to_string();
        let zpl = zproto_runtime::zpl::Zpl::parse(&text).unwrap();
        assert_eq!(
            EveryType::from_zpl(&zpl),
            Ok((None, EveryType::from(message)))
        );
    }
    // Cut inside an optional field: truncated, not absent.
    for cut in 1..4 {
        let mut frames = v2.clone();
        frames[0].truncate(old[0].len() + cut);
        assert!(EveryType::decode(&frames).is_err(), "cut {cut}");
        assert!(EveryTypeRef::decode(&frames).is_err(), "cut {cut}");
    }
    // A gap: refused with the fields named.
    let gap = EveryType::from(grown(None, Some(3))).encode();
    let error = gap.expect_err("a gap is refused").to_string();
    assert!(
        error.contains("since_v3") && error.contains("since_v2"),
        "{error}"
    );
}

/// `Config::type_attribute` and `message_attribute` (conformance/build.rs)
/// reached the generated types: these derives are theirs.
#[test]
fn config_attributes_apply_to_the_generated_types() {
    let set: std::collections::HashSet<EveryType> = samples().into_iter().collect();
    assert_eq!(set.len(), 2);
    let (a, mut b) = (A::test_value(), A::test_value());
    b.n1 = a.n1.wrapping_add(1);
    assert_ne!(a.cmp(&b), std::cmp::Ordering::Equal);
}

/// `Config::include_file` (conformance/build.rs): the same models through
/// one include file give the same codec and a working engine.
#[test]
fn the_include_file_modules_are_the_generated_code() {
    use zproto_conformance::rules_msg;
    use zproto_conformance::via_include_file::{rules_msg as included, rules_server_engine};
    let direct = rules_msg::RulesMsg::from(rules_msg::Data::test_value());
    let through = included::RulesMsg::from(included::Data::test_value());
    assert_eq!(direct.encode().unwrap(), through.encode().unwrap());
    assert_eq!(
        rules_server_engine::Event::from_message(&through),
        rules_server_engine::Event::Data
    );
}

fn mutated() -> impl Strategy<Value = Vec<Vec<u8>>> {
    common::mutated(
        samples()
            .iter()
            .map(|m| m.encode().expect("encodes"))
            .collect(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_frames_never_panic(
        frames in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..96), 0..5)
    ) {
        let _ = EveryType::decode(&frames);
        let _ = EveryType::decode_routed(&frames);
    }

    #[test]
    fn mutated_messages_error_or_round_trip(frames in mutated()) {
        if let Ok(message) = EveryType::decode(&frames) {
            let again = message.encode().expect("a decoded message encodes");
            prop_assert_eq!(EveryType::decode(&again), Ok(message));
        }
    }
}

/// zproto's text form (`zpl`/`new_zpl`): what it looks like, and what a
/// wrong value gets.
#[test]
fn the_text_form_reads_as_zprotos_and_refuses_bad_values() {
    use zproto_runtime::zpl::message::ZplMessageError;
    use zproto_runtime::zpl::Zpl;
    let text = EveryType::from(A::test_value()).to_zpl().to_string();
    assert!(
        text.starts_with("message = \"EVERY_TYPE_A\"\ncontent\n"),
        "{text}"
    );
    assert!(text.contains("\n    n1 = \""), "{text}");
    assert!(text.contains("\n    list\n        0 = \"a\"\n"), "{text}");
    assert!(text.contains("\n    h\n        k = \"v\"\n"), "{text}");
    let bad = text.replacen("    n1 = \"", "    n1 = \"300", 1);
    let err = EveryType::from_zpl(&Zpl::parse(&bad).unwrap()).unwrap_err();
    assert!(
        matches!(err, ZplMessageError::Field { field: "n1", .. }),
        "{err}"
    );
    let unknown = Zpl::parse("message = \"EVERY_TYPE_Z\"\n").unwrap();
    assert_eq!(
        EveryType::from_zpl(&unknown),
        Err(ZplMessageError::UnknownMessage("EVERY_TYPE_Z".into()))
    );
}

/// `Config::bytes`: the same model with `chunk`, `frame` and `msg` fields
/// as `Bytes` is the same wire, and its fields share memory when cloned.
#[test]
fn bytes_fields_are_the_same_wire_and_clone_by_reference() {
    use zproto_conformance::{every_type, every_type_bytes};
    use zproto_runtime::Codec;
    let vec_message = every_type::EveryType::from(every_type::A::test_value());
    let frames = vec_message.encode().expect("encodes");
    let bytes_message = every_type_bytes::EveryType::decode(&frames).expect("decodes");
    assert_eq!(
        bytes_message.encode().expect("encodes"),
        frames,
        "same wire"
    );
    let every_type_bytes::EveryType::A(a) = &bytes_message else {
        panic!("an A");
    };
    let every_type::EveryType::A(v) = &vec_message else {
        panic!("an A");
    };
    assert_eq!((&a.c[..], &a.f[..]), (&v.c[..], &v.f[..]));
    assert_eq!(a.m.len(), v.m.len());
    let copy = a.clone();
    assert_eq!(copy.c.as_ptr(), a.c.as_ptr(), "a clone shares the chunk");
}
