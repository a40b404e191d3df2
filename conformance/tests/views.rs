//! Borrowed views (`EveryTypeRef<'a>` beside `EveryType`): they point into
//! the frames, allocate nothing (a `msg` field's list of frames excepted),
//! and agree with the owned decoder on every input, errors included.
//! Allocations are counted by a global allocator (this test binary only).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use zproto_conformance::every_type::{EveryType, EveryTypeRef, Type, A};
use zproto_conformance::every_type_bytes;
use zproto_conformance::feed_msg::{FeedMsg, FeedMsgRef, News};
use zproto_runtime::Codec;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

struct Counting;

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// How many allocations `f` makes on this thread's watch. Tests run on
/// several threads; the one that measures retries until a run is quiet.
fn allocations<T>(mut f: impl FnMut() -> T) -> usize {
    (0..20)
        .map(|_| {
            let before = ALLOCATIONS.load(Ordering::SeqCst);
            std::hint::black_box(f());
            ALLOCATIONS.load(Ordering::SeqCst) - before
        })
        .min()
        .unwrap_or(usize::MAX)
}

fn inside(frames: &[Vec<u8>], bytes: &[u8]) -> bool {
    let span = bytes.as_ptr_range();
    frames.iter().any(|f| {
        let Range { start, end } = f.as_ptr_range();
        start <= span.start && span.end <= end
    })
}

/// An A with a repeated hash key on the wire and two msg frames.
fn sample_a() -> A {
    let mut a = A::test_value();
    a.s = "short text".into();
    a.l = "a longer text, still borrowed".into();
    a.list = vec!["one".into(), "".into(), "three".into()];
    a.c = b"chunk bytes".to_vec();
    a.f = b"a frame".to_vec();
    a.m = vec![b"first".to_vec(), b"second".to_vec()];
    a
}

#[test]
fn a_view_points_into_the_frames_and_reads_as_the_owned_message() {
    let a = sample_a();
    let frames = EveryType::from(a.clone()).encode().expect("encodes");
    let Ok(EveryTypeRef::A(view)) = EveryTypeRef::decode(&frames) else {
        panic!("not an A");
    };
    for text in [view.s, view.l, view.who_name] {
        assert!(inside(&frames, text.as_bytes()), "{text:?} was copied");
    }
    for bytes in [view.c, view.f, &view.o[..], &view.u[..]] {
        assert!(inside(&frames, bytes), "{bytes:?} was copied");
    }
    assert!(view.m.iter().all(|f| inside(&frames, f)));
    assert_eq!((view.n1, view.n4, view.n8), (a.n1, a.n4, a.n8));
    assert_eq!(view.s, a.s);
    assert_eq!(view.list.len(), 3);
    assert_eq!(view.list.iter().collect::<Vec<_>>(), ["one", "", "three"]);
    assert_eq!(view.list.to_vec(), a.list);
    assert_eq!(view.h.get("k"), Some("v"));
    assert_eq!(view.h.get("nope"), None);
    assert_eq!(view.m, [&b"first"[..], b"second"]);
    assert_eq!(view.clone().into_owned(), a);
    assert_eq!(
        EveryTypeRef::decode(&frames).map(EveryType::from),
        Ok(EveryType::from(a))
    );
}

#[test]
fn a_repeated_hash_key_shows_as_sent_and_keeps_its_first_value() {
    // A hash of one entry, re-written on the wire as two with one key.
    let mut a = A::test_value();
    a.h = [("k".to_owned(), "first".to_owned())].into();
    let mut frames = EveryType::from(a).encode().expect("encodes");
    let entry = b"\x01k\x00\x00\x00\x05first";
    let at = frames[0]
        .windows(entry.len())
        .position(|w| w == entry)
        .expect("the entry");
    frames[0][at - 1] = 2; // the count's low byte
    let second = b"\x01k\x00\x00\x00\x06second";
    frames[0].splice(at + entry.len()..at + entry.len(), second.iter().copied());
    let Ok(EveryTypeRef::A(view)) = EveryTypeRef::decode(&frames) else {
        panic!("not an A");
    };
    assert_eq!(
        view.h.iter().collect::<Vec<_>>(),
        [("k", "first"), ("k", "second")]
    );
    assert_eq!(view.h.get("k"), Some("first"));
    let owned = EveryType::decode(&frames).expect("decodes");
    assert_eq!(EveryType::from(view.into_owned()), owned);
}

#[test]
fn decoding_a_view_allocates_nothing() {
    // No msg field: nothing at all. Type has no fields; NEWS has text, a
    // list and a frame (a pubsub model).
    let news = News {
        headline: "rain".into(),
        body: "all day".into(),
        tags: vec!["wx".into(), "today".into()],
        attachment: b"map".to_vec(),
    };
    let news = FeedMsg::from(news)
        .encode_with_topic("wx")
        .expect("encodes");
    assert_eq!(
        allocations(|| FeedMsgRef::decode(&news).expect("decodes")),
        0
    );
    let (topic, view) = FeedMsgRef::decode_with_topic(&news).expect("decodes");
    assert_eq!(topic, "wx");
    assert_eq!(view.into_owned(), FeedMsg::decode(&news).expect("decodes"));
    let empty = EveryType::from(Type::test_value())
        .encode()
        .expect("encodes");
    assert_eq!(
        allocations(|| EveryTypeRef::decode(&empty).expect("decodes")),
        0
    );
    // A msg field: one, the list of its borrowed frames.
    let a = EveryType::from(sample_a()).encode().expect("encodes");
    assert_eq!(
        allocations(|| EveryTypeRef::decode(&a).expect("decodes")),
        1
    );
    // The owned decoder, for scale: a string, list, map or chunk each.
    assert!(allocations(|| EveryType::decode(&a).expect("decodes")) > 10);
    // Routed: the routing id is borrowed too.
    let routed = FeedMsg::decode(&news)
        .expect("decodes")
        .encode_routed(b"peer")
        .expect("encodes");
    let routed: Vec<&[u8]> = routed.iter().map(Vec::as_slice).collect();
    let (id, _) = FeedMsgRef::decode_routed(&routed).expect("decodes");
    assert!(std::ptr::eq(id, routed[0]));
}

#[test]
fn a_packet_is_one_allocation_with_the_frames_of_the_frame_list() {
    // Body, a frame field and a two-frame msg field: a list and a buffer
    // per frame encoded the old way, one buffer as a packet (and, past
    // four frames, the list of where they start).
    let message = EveryType::from(sample_a());
    let routed = message.encode_routed(b"peer").expect("encodes");
    let packet = message.encode_packet_routed(b"peer").expect("encodes");
    assert_eq!(packet.to_vec(), routed);
    assert_eq!(
        packet.byte_len(),
        routed.iter().map(Vec::len).sum::<usize>()
    );
    assert_eq!(
        allocations(|| message.encode_packet_routed(b"peer").expect("encodes")),
        2
    );
    // The list (grown as frames are pushed) and each of the five frames.
    assert!(allocations(|| message.encode_routed(b"peer").expect("encodes")) >= 6);
    assert_eq!(allocations(|| message.encode_packet().expect("encodes")), 1);
    // Bytes fields and a body-only message alike.
    let shared = every_type_bytes::EveryType::decode(&routed[1..]).expect("decodes");
    let packet = shared.encode_packet().expect("encodes");
    assert_eq!(packet.to_vec(), routed[1..]);
    assert_eq!(allocations(|| shared.encode_packet().expect("encodes")), 1);
    let empty = EveryType::from(Type::test_value());
    assert_eq!(
        empty.encode_packet().expect("encodes").to_vec(),
        empty.encode().expect("encodes")
    );
    // A message that cannot be encoded leaves nothing half-sent: an error.
    let mut bad = sample_a();
    bad.s = "x".repeat(256);
    assert!(EveryType::from(bad).encode_packet().is_err());
}

fn samples() -> Vec<Vec<Vec<u8>>> {
    [
        EveryType::from(sample_a()),
        EveryType::from(Type::test_value()),
    ]
    .iter()
    .map(|m| m.encode().expect("encodes"))
    .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// On any input the view and the owned decoder agree: the same message
    /// or the same error (field, needed and available bytes alike).
    #[test]
    fn views_and_owned_decoding_agree_on_mutated_messages(frames in common::mutated(samples())) {
        prop_assert_eq!(
            EveryTypeRef::decode(&frames).map(EveryTypeRef::into_owned),
            EveryType::decode(&frames)
        );
        // Fields held as Bytes: the same view, converted to Bytes.
        prop_assert_eq!(
            every_type_bytes::EveryTypeRef::decode(&frames).map(every_type_bytes::EveryType::from),
            every_type_bytes::EveryType::decode(&frames)
        );
    }

    #[test]
    fn views_and_owned_decoding_agree_on_random_frames(
        frames in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..96), 0..5)
    ) {
        prop_assert_eq!(
            EveryTypeRef::decode_routed(&frames).map(|(id, m)| (id, m.into_owned())),
            EveryType::decode_routed(&frames)
        );
        prop_assert_eq!(
            FeedMsgRef::decode_with_topic(&frames).map(|(t, m)| (t.to_owned(), m.into_owned())),
            FeedMsg::decode_with_topic(&frames)
        );
    }
}

/// `Config::bytes` fields from frames held as `Bytes` (here one received
/// into a `zmq::Message`): `decode_shared` hands them over without a copy.
#[test]
fn bytes_fields_share_the_frames_they_were_decoded_from() {
    use every_type_bytes::{EveryType as Shared, EveryTypeRef as SharedRef};
    use zproto_runtime::bytes::Bytes;

    /// A libzmq message as the owner of a `Bytes`.
    struct ZmqFrame(zmq::Message);
    impl AsRef<[u8]> for ZmqFrame {
        fn as_ref(&self) -> &[u8] {
            &self.0
        }
    }

    let encoded = EveryType::from(sample_a()).encode().expect("encodes");
    let frames: Vec<Bytes> = encoded
        .iter()
        .map(|f| Bytes::from_owner(ZmqFrame(zmq::Message::from(&f[..]))))
        .collect();
    let decoded = Shared::decode_shared(&frames).expect("decodes");
    assert_eq!(decoded, Shared::decode(&encoded).expect("decodes"));
    let Shared::A(a) = decoded else {
        panic!("not an A")
    };
    let within = |frame: &Bytes, part: &Bytes| {
        let (whole, part) = (frame.as_ptr_range(), part.as_ptr_range());
        whole.start <= part.start && part.end <= whole.end
    };
    assert!(within(&frames[0], &a.c), "the chunk shares the body frame");
    assert!(within(&frames[1], &a.f), "the frame field shares its frame");
    assert!(within(&frames[2], &a.m[0]) && within(&frames[3], &a.m[1]));
    // The view gives the same, given the frames.
    let view = SharedRef::decode(&frames).expect("decodes");
    assert_eq!(view.into_shared(&frames), Shared::A(a));
    // Frames it was not decoded from: a copy, still equal.
    let view = SharedRef::decode(&encoded).expect("decodes");
    assert_eq!(
        view.into_shared(&frames[..0]),
        Shared::decode(&encoded).expect("decodes")
    );
}
