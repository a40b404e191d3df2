//! The [`Codec`] trait that every generated message enum implements, and the
//! frame-level plumbing shared by all of them (body frame, frame fields,
//! ROUTER envelopes).

use crate::error::{DecodeError, EncodeError};
use crate::packet::{FrameSink, Packet};
use crate::wire::{signature_word, Context, Reader};

/// One ZeroMQ message part.
pub type Frame = Vec<u8>;

/// A protocol's message set, as generated from a zproto codec model.
///
/// The wire format is byte-identical to what zproto's C codecs produce.
pub trait Codec: Sized {
    /// The model's class name, e.g. `zgossip_msg`.
    const CLASS: &'static str;
    /// The model's signature (0..15), sent as `0xAAA0 | signature`.
    const SIGNATURE: u8;

    /// The message id on the wire.
    fn id(&self) -> u8;

    /// The message name, upper case, e.g. `ANNOUNCE`.
    fn command(&self) -> &'static str;

    /// Append this message's frames (body first) to `out`. On an error
    /// `out` may hold part of the message: discard it.
    fn encode_into<S: FrameSink>(&self, out: &mut S) -> Result<(), EncodeError>;

    /// Bytes of all of this message's frames together (what
    /// [`Codec::encode_packet`] allocates).
    fn encoded_len(&self) -> usize;

    /// Decode one message from its frames (body first, no routing id).
    fn decode<F: AsRef<[u8]>>(frames: &[F]) -> Result<Self, DecodeError>;

    /// The frames of this message, as a DEALER or PAIR socket sends them.
    #[inline]
    fn encode(&self) -> Result<Vec<Frame>, EncodeError> {
        let mut frames = Vec::with_capacity(1);
        self.encode_into(&mut frames)?;
        Ok(frames)
    }

    /// The frames of this message for a ROUTER socket: `routing_id` first.
    #[inline]
    fn encode_routed(&self, routing_id: &[u8]) -> Result<Vec<Frame>, EncodeError> {
        let mut frames = Vec::with_capacity(2);
        frames.push(routing_id.to_vec());
        self.encode_into(&mut frames)?;
        Ok(frames)
    }

    /// This message in one buffer ([`Packet`]), as a DEALER or PAIR socket
    /// sends it: one allocation.
    #[inline]
    fn encode_packet(&self) -> Result<Packet, EncodeError> {
        let mut packet = Packet::with_capacity(self.encoded_len());
        self.encode_into(&mut packet)?;
        Ok(packet)
    }

    /// This message in one buffer for a ROUTER socket, `routing_id` first:
    /// one allocation.
    #[inline]
    fn encode_packet_routed(&self, routing_id: &[u8]) -> Result<Packet, EncodeError> {
        let mut packet = Packet::with_capacity(routing_id.len() + self.encoded_len());
        packet.push_frame(routing_id);
        self.encode_into(&mut packet)?;
        Ok(packet)
    }

    /// Decode a message received on a ROUTER socket: the routing id
    /// (borrowed from `frames`) and the message.
    #[inline]
    fn decode_routed<F: AsRef<[u8]>>(frames: &[F]) -> Result<(&[u8], Self), DecodeError> {
        match frames {
            [routing_id, rest @ ..] if !rest.is_empty() => {
                Ok((routing_id.as_ref(), Self::decode(rest)?))
            }
            _ => Err(DecodeError::NoRoutingId { class: Self::CLASS }),
        }
    }
}

/// The frames of one message, opened: the message id, a reader over the rest
/// of the body frame, and a cursor over the frames after it.
///
/// Generated decoders call [`open`] and then read fields from both.
#[derive(Debug)]
pub struct Opened<'a, F> {
    /// The message id byte.
    pub id: u8,
    /// The body frame after signature and id.
    pub body: &'a [u8],
    /// The frames after the body frame.
    pub frames: FrameCursor<'a, F>,
}

/// Check the body frame's signature and split off the message id.
#[inline]
pub fn open<'a, F: AsRef<[u8]>>(
    frames: &'a [F],
    class: &'static str,
    signature: u8,
) -> Result<Opened<'a, F>, DecodeError> {
    let (body, rest) = frames
        .split_first()
        .ok_or(DecodeError::NoFrames { class })?;
    let body = body.as_ref();
    if body.len() < 3 {
        // Still report a wrong signature when there are two bytes to compare.
        if body.len() == 2 {
            check_signature(body, class, signature)?;
        }
        return Err(DecodeError::TooShort {
            class,
            len: body.len(),
        });
    }
    check_signature(body, class, signature)?;
    Ok(Opened {
        id: body[2],
        body: &body[3..],
        frames: FrameCursor {
            frames: rest,
            class,
        },
    })
}

/// Split a pubsub body frame (zproto's `pubsub="1"`): the id, then the
/// topic up to its NUL, then the fields. No signature. A topic with no NUL
/// is malformed (the C decoder does not check it), and so is one that is
/// not UTF-8.
#[inline]
pub fn open_pubsub<'a, F: AsRef<[u8]>>(
    frames: &'a [F],
    class: &'static str,
) -> Result<(Opened<'a, F>, &'a str), DecodeError> {
    let (body, rest) = frames
        .split_first()
        .ok_or(DecodeError::NoFrames { class })?;
    let body = body.as_ref();
    let Some((&id, after)) = body.split_first() else {
        return Err(DecodeError::TooShort { class, len: 0 });
    };
    let end = after
        .iter()
        .position(|&b| b == 0)
        .ok_or(DecodeError::BadTopic {
            class,
            problem: "has no terminating NUL",
        })?;
    let topic = std::str::from_utf8(&after[..end]).map_err(|_| DecodeError::BadTopic {
        class,
        problem: "is not UTF-8",
    })?;
    Ok((
        Opened {
            id,
            body: &after[end + 1..],
            frames: FrameCursor {
                frames: rest,
                class,
            },
        },
        topic,
    ))
}

/// Check a message's optional fields, `(name, is set)` in wire order,
/// before encoding: the set ones must come first, since a decoder knows a
/// field is absent only because the body ends before it.
pub fn check_optional(
    class: &'static str,
    message: &'static str,
    fields: &[(&'static str, bool)],
) -> Result<(), EncodeError> {
    let Some(missing) = fields.iter().position(|(_, set)| !set) else {
        return Ok(());
    };
    match fields[missing..].iter().find(|(_, set)| *set) {
        Some(&(field, _)) => Err(EncodeError::OptionalGap {
            class,
            message,
            field,
            missing: fields[missing].0,
        }),
        None => Ok(()),
    }
}

/// The subscription prefix that selects messages `id` on `topic` (and, as
/// ZeroMQ filters by prefix, on every topic that starts with it): the id
/// and the topic, with no NUL. Pass it to `SUB`'s `ZMQ_SUBSCRIBE`.
pub fn subscription(id: u8, topic: &[u8]) -> Vec<u8> {
    let mut prefix = Vec::with_capacity(topic.len() + 1);
    prefix.push(id);
    prefix.extend_from_slice(topic);
    prefix
}

/// A subscription as an `XPUB` socket receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// Subscribe (true) or unsubscribe.
    pub subscribe: bool,
    /// The message id.
    pub id: u8,
    /// The topic prefix, raw: a prefix may end inside a UTF-8 character.
    pub topic: Vec<u8>,
}

/// Read a subscription frame from an `XPUB` socket: 1 (subscribe) or 0
/// (unsubscribe), the message id, the topic to the end of the frame.
pub fn decode_subscription(frame: &[u8], class: &'static str) -> Result<Subscription, DecodeError> {
    match frame {
        [flag @ (0 | 1), id, topic @ ..] => Ok(Subscription {
            subscribe: *flag == 1,
            id: *id,
            topic: topic.to_vec(),
        }),
        [_, _, ..] => Err(DecodeError::BadTopic {
            class,
            problem: "subscription does not start with 0 or 1",
        }),
        _ => Err(DecodeError::TooShort {
            class,
            len: frame.len(),
        }),
    }
}

#[inline]
fn check_signature(body: &[u8], class: &'static str, signature: u8) -> Result<(), DecodeError> {
    let found = u16::from_be_bytes([body[0], body[1]]);
    let expected = signature_word(signature);
    if found == expected {
        Ok(())
    } else {
        Err(DecodeError::BadSignature {
            class,
            expected,
            found,
        })
    }
}

impl<'a, F> Opened<'a, F> {
    /// A reader over the body fields of message `message`.
    #[inline]
    pub fn reader(&self, message: &'static str) -> Reader<'a> {
        Reader::new(
            self.body,
            Context {
                class: self.frames.class,
                message,
            },
        )
    }
}

/// The frames that follow the body frame, taken in order by `frame` and `msg`
/// fields.
#[derive(Debug)]
pub struct FrameCursor<'a, F> {
    frames: &'a [F],
    class: &'static str,
}

impl<'a, F: AsRef<[u8]>> FrameCursor<'a, F> {
    /// The next frame, borrowed, for a `frame` field. A missing frame is an
    /// error.
    #[inline]
    pub fn frame_ref(
        &mut self,
        message: &'static str,
        field: &'static str,
    ) -> Result<&'a [u8], DecodeError> {
        match self.frames.split_first() {
            Some((first, rest)) => {
                self.frames = rest;
                Ok(first.as_ref())
            }
            None => Err(DecodeError::MissingFrame {
                class: self.class,
                message,
                field,
            }),
        }
    }

    /// The next frame, borrowed, or an empty one if there is none: `frame`
    /// fields of a `virtual` protocol, whose C decoder accepts a missing
    /// frame.
    #[inline]
    pub fn frame_or_empty_ref(&mut self) -> &'a [u8] {
        match self.frames.split_first() {
            Some((first, rest)) => {
                self.frames = rest;
                first.as_ref()
            }
            None => &[],
        }
    }

    /// Every remaining frame, borrowed, for a `msg` field (possibly none).
    #[inline]
    pub fn rest_ref(&mut self) -> Vec<&'a [u8]> {
        let rest = std::mem::take(&mut self.frames);
        rest.iter().map(AsRef::as_ref).collect()
    }

    /// The next frame, for a `frame` field. A missing frame is an error.
    #[inline]
    pub fn frame(
        &mut self,
        message: &'static str,
        field: &'static str,
    ) -> Result<Frame, DecodeError> {
        self.frame_ref(message, field).map(<[u8]>::to_vec)
    }

    /// The next frame, or an empty one if there is none (see
    /// [`Self::frame_or_empty_ref`]).
    #[inline]
    pub fn frame_or_empty(&mut self) -> Frame {
        self.frame_or_empty_ref().to_vec()
    }

    /// Every remaining frame, for a `msg` field (possibly none).
    #[inline]
    pub fn rest(&mut self) -> Vec<Frame> {
        let rest = std::mem::take(&mut self.frames);
        rest.iter().map(|f| f.as_ref().to_vec()).collect()
    }
}

/// `part` (a field's bytes, borrowed from one of `frames`) as a `Bytes`
/// that shares that frame's buffer: no copy. A part found in none of the
/// frames (which a view never holds) is copied.
pub fn share(frames: &[bytes::Bytes], part: &[u8]) -> bytes::Bytes {
    let span = part.as_ptr_range();
    frames
        .iter()
        .find(|frame| {
            let whole = frame.as_ptr_range();
            whole.start <= span.start && span.end <= whole.end
        })
        .map(|frame| frame.slice_ref(part))
        .unwrap_or_else(|| bytes::Bytes::copy_from_slice(part))
}
