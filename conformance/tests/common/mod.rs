//! Strategies the decoding tests share.
#![allow(dead_code)]

use proptest::prelude::*;

/// One of `samples` (encoded messages) with a few bytes of its body
/// replaced, and perhaps cut short and extended.
pub fn mutated(samples: Vec<Vec<Vec<u8>>>) -> impl Strategy<Value = Vec<Vec<u8>>> {
    (
        prop::sample::select(samples),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        any::<prop::sample::Index>(),
        prop::option::of(prop::collection::vec(any::<u8>(), 0..8)),
    )
        .prop_map(|(mut frames, edits, cut, tail)| {
            let body = &mut frames[0];
            for (at, byte) in edits {
                let i = at.index(body.len());
                body[i] = byte;
            }
            if let Some(tail) = tail {
                body.truncate(cut.index(body.len() + 1));
                body.extend(tail);
            }
            frames
        })
}
