//! pubsub="1" codecs on our own model (`models/feed_msg.xml`): the
//! reference's own example byte for byte, topics, subscriptions (prefix
//! matching over real PUB/SUB sockets, XPUB subscription frames), and
//! malformed topics.

use zproto_conformance::feed_msg::*;
use zproto_runtime::{reactor, Codec, DecodeError, EncodeError};

#[test]
fn the_references_example_is_byte_exact() {
    let message = FeedMsg::from(Weather { value: 0x1234 });
    let frames = message.encode_with_topic("wx").unwrap();
    assert_eq!(frames, vec![vec![0x01, 0x77, 0x78, 0x00, 0x12, 0x34]]);
    assert_eq!(FeedMsg::subscription(Weather::ID, "wx"), [0x01, 0x77, 0x78]);
    assert_eq!(
        FeedMsg::decode_with_topic(&frames),
        Ok(("wx".to_owned(), message.clone()))
    );
    // The Codec trait reads and writes the same form, with no topic.
    assert_eq!(
        message.encode().unwrap(),
        vec![vec![0x01, 0x00, 0x12, 0x34]]
    );
}

#[test]
fn topics_with_nul_or_without_end_are_refused() {
    let err = FeedMsg::from(Weather { value: 1 })
        .encode_with_topic("w\0x")
        .unwrap_err();
    assert!(
        matches!(err, EncodeError::TopicWithNul { at: 1, .. }),
        "{err}"
    );
    for frame in [vec![0x01, 0x77, 0x78], vec![0x01, 0xff, 0x00, 0, 0], vec![]] {
        let err = FeedMsg::decode_with_topic(std::slice::from_ref(&frame)).unwrap_err();
        assert!(
            matches!(
                err,
                DecodeError::BadTopic { .. } | DecodeError::TooShort { .. }
            ),
            "{frame:?}: {err}"
        );
    }
    assert!(matches!(
        FeedMsg::decode_with_topic(&[vec![0x09, 0x00]]),
        Err(DecodeError::UnknownMessage { id: 9, .. })
    ));
}

#[test]
fn subscriptions_select_by_id_and_topic_prefix_over_pub_sub() {
    let endpoint = format!("inproc://pubsub-feed-{}", std::process::id());
    let publisher = reactor::socket(zmq::XPUB).unwrap();
    publisher.set_linger(0).unwrap();
    publisher.set_rcvtimeo(5000).unwrap();
    publisher.bind(&endpoint).unwrap();
    let subscriber = reactor::socket(zmq::SUB).unwrap();
    subscriber.set_linger(0).unwrap();
    subscriber.set_rcvtimeo(5000).unwrap();
    subscriber.connect(&endpoint).unwrap();
    subscriber
        .set_subscribe(&FeedMsg::subscription(Weather::ID, "wx"))
        .unwrap();
    // The publisher sees the subscription as zproto's XPUB decoder reads it.
    let seen = FeedMsg::decode_subscription(&publisher.recv_bytes(0).unwrap()).unwrap();
    assert_eq!(
        (seen.subscribe, seen.id, seen.topic.as_slice()),
        (true, Weather::ID, &b"wx"[..])
    );

    let news = FeedMsg::from(News {
        headline: "wx".into(),
        body: "not weather".into(),
        tags: vec!["a".into()],
        attachment: vec![9],
    });
    for (message, topic) in [
        (news, "wx"),                                   // another id: filtered
        (FeedMsg::from(Weather { value: 1 }), "w"),     // shorter topic: filtered
        (FeedMsg::from(Weather { value: 2 }), "wx.eu"), // longer topic: delivered
        (FeedMsg::from(Weather { value: 3 }), "wx"),    // delivered
    ] {
        publisher
            .send_multipart(message.encode_with_topic(topic).unwrap(), 0)
            .unwrap();
    }
    let mut got = Vec::new();
    for _ in 0..2 {
        let frames = subscriber.recv_multipart(0).unwrap();
        got.push(FeedMsg::decode_with_topic(&frames).unwrap());
    }
    assert_eq!(
        got,
        vec![
            ("wx.eu".to_owned(), FeedMsg::from(Weather { value: 2 })),
            ("wx".to_owned(), FeedMsg::from(Weather { value: 3 })),
        ]
    );
    subscriber.set_rcvtimeo(50).unwrap();
    assert!(
        subscriber.recv_multipart(0).is_err(),
        "nothing else passed the filter"
    );
}
