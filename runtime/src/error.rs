//! Typed errors for decoding and encoding zproto messages.
//!
//! Every variant names the protocol class, and where it applies the message and
//! field, so a log line says exactly what arrived and what was wrong with it.

use thiserror::Error;

/// Why a sequence of frames is not a valid message of a protocol.
///
/// Decoding never panics and never allocates more than the bytes present
/// justify: every length and count on the wire is checked against what is left
/// in the frame before anything is copied.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// No frame at all was given.
    #[error("{class}: empty message, no body frame")]
    NoFrames {
        /// Protocol class name.
        class: &'static str,
    },
    /// A ROUTER message must carry a routing-id frame followed by the body.
    #[error("{class}: no routing id: a ROUTER message needs a routing-id frame and a body frame")]
    NoRoutingId {
        /// Protocol class name.
        class: &'static str,
    },
    /// The body frame is shorter than the signature and message id.
    #[error("{class}: body frame of {len} bytes is too short for signature and message id")]
    TooShort {
        /// Protocol class name.
        class: &'static str,
        /// Length of the body frame.
        len: usize,
    },
    /// The first two bytes are not this protocol's signature word.
    #[error("{class}: invalid signature {found:#06x}, expected {expected:#06x}")]
    BadSignature {
        /// Protocol class name.
        class: &'static str,
        /// The signature word of this protocol.
        expected: u16,
        /// The word found in the frame.
        found: u16,
    },
    /// The message id byte names no message of this protocol.
    #[error("{class}: unknown message id {id}")]
    UnknownMessage {
        /// Protocol class name.
        class: &'static str,
        /// The id found.
        id: u8,
    },
    /// A field runs past the end of the body frame.
    #[error("{class}: {message}: field \"{field}\" is truncated: needs {needed} bytes, {available} left")]
    Truncated {
        /// Protocol class name.
        class: &'static str,
        /// Message name.
        message: &'static str,
        /// Field name.
        field: &'static str,
        /// Bytes the field needs (at least).
        needed: u64,
        /// Bytes left in the frame.
        available: usize,
    },
    /// A constant field (`value` in the model) holds another value.
    #[error(
        "{class}: {message}: field \"{field}\" is invalid: expected {expected}, found {found}"
    )]
    BadConstant {
        /// Protocol class name.
        class: &'static str,
        /// Message name.
        message: &'static str,
        /// Field name.
        field: &'static str,
        /// The model's constant, as text.
        expected: String,
        /// The value received, as text.
        found: String,
    },
    /// A string field holds bytes that are not UTF-8.
    #[error("{class}: {message}: field \"{field}\" is not valid UTF-8")]
    InvalidUtf8 {
        /// Protocol class name.
        class: &'static str,
        /// Message name.
        message: &'static str,
        /// Field name.
        field: &'static str,
    },
    /// A `frame` field has no frame of its own.
    #[error("{class}: {message}: frame field \"{field}\" is missing")]
    MissingFrame {
        /// Protocol class name.
        class: &'static str,
        /// Message name.
        message: &'static str,
        /// Field name.
        field: &'static str,
    },
    /// A pubsub body frame whose topic has no terminating NUL, or is not
    /// UTF-8.
    #[error("{class}: topic {problem}")]
    BadTopic {
        /// Protocol class name.
        class: &'static str,
        /// What is wrong.
        problem: &'static str,
    },
}

/// Why a message cannot be put on the wire as it is.
///
/// The C codecs silently cut such values (and so corrupt the frame or lose
/// data); the Rust codecs refuse them instead.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EncodeError {
    /// A `string` field or hash key is longer than its 1-byte length allows.
    #[error("{class}: {message}: field \"{field}\" is {len} bytes, a string carries at most 255")]
    StringTooLong {
        /// Protocol class name.
        class: &'static str,
        /// Message name.
        message: &'static str,
        /// Field name.
        field: &'static str,
        /// The length that was refused.
        len: usize,
    },
    /// A long string, chunk, list or hash is larger than its 4-byte length allows.
    #[error("{class}: {message}: field \"{field}\" has size {len}, over the 4-byte limit")]
    TooLarge {
        /// Protocol class name.
        class: &'static str,
        /// Message name.
        message: &'static str,
        /// Field name.
        field: &'static str,
        /// The size that was refused.
        len: usize,
    },
    /// An optional field is set while an optional field before it is not:
    /// a decoder could not tell which one is absent.
    #[error(
        "{class}: {message}: optional field \"{field}\" is set but \"{missing}\" before it is not"
    )]
    OptionalGap {
        /// Protocol class name.
        class: &'static str,
        /// Message name.
        message: &'static str,
        /// The field that is set.
        field: &'static str,
        /// The earlier optional field that is not.
        missing: &'static str,
    },
    /// A pubsub topic holds a NUL byte, which ends topics on the wire.
    #[error("{class}: {message}: the topic holds a NUL byte at {at}")]
    TopicWithNul {
        /// Protocol class name.
        class: &'static str,
        /// Message name.
        message: &'static str,
        /// Where.
        at: usize,
    },
}
