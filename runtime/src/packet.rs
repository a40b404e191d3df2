//! [`Packet`]: one multipart message in one buffer, and [`FrameSink`], where
//! generated codecs write frames.
//!
//! A message sent to a ROUTER peer is a routing id, a body frame and
//! sometimes frame fields. Held as `Vec<Vec<u8>>` that is an allocation per
//! frame plus one for the list; a packet holds the frames back to back in
//! one buffer, sized up front from the message (`Codec::encoded_len`), and
//! where each frame starts inline: one allocation per message.

use smallvec::SmallVec;

use crate::codec::Frame;

/// Frame offsets kept inline: a routing id, a body and two frame fields.
const INLINE_FRAMES: usize = 4;

/// Where an encoder writes a message's frames, one after the other.
///
/// Implemented by `Vec<Frame>` (a buffer per frame) and by [`Packet`] (one
/// buffer for all). If encoding fails part-way the sink holds a partial
/// message, which the caller discards.
pub trait FrameSink {
    /// Start the next frame, `capacity` bytes expected, and return the
    /// buffer to append its bytes to (what it already holds is not part of
    /// the frame).
    fn next_frame(&mut self, capacity: usize) -> &mut Vec<u8>;

    /// Append a whole frame.
    #[inline]
    fn push_frame(&mut self, frame: &[u8]) {
        self.next_frame(frame.len()).extend_from_slice(frame);
    }
}

impl FrameSink for Vec<Frame> {
    #[inline]
    fn next_frame(&mut self, capacity: usize) -> &mut Vec<u8> {
        let index = self.len();
        self.push(Vec::with_capacity(capacity));
        &mut self[index]
    }
}

/// One multipart message: its frames' bytes back to back in one buffer.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Packet {
    bytes: Vec<u8>,
    /// Where each frame starts in `bytes`; a frame ends where the next
    /// starts, the last at the end of `bytes`.
    starts: SmallVec<[usize; INLINE_FRAMES]>,
}

impl Packet {
    /// An empty packet (no frames), allocating nothing yet.
    #[inline]
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty packet with room for `bytes` bytes of frames.
    #[inline]
    pub fn with_capacity(bytes: usize) -> Self {
        Self {
            bytes: Vec::with_capacity(bytes),
            starts: SmallVec::new(),
        }
    }

    /// A packet of these frames.
    pub fn from_frames<F: AsRef<[u8]>>(frames: &[F]) -> Self {
        let mut packet =
            Self::with_capacity(frames.iter().map(|f| f.as_ref().len()).sum::<usize>());
        for frame in frames {
            packet.push_frame(frame.as_ref());
        }
        packet
    }

    /// How many frames.
    #[inline]
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    /// Whether it has no frame at all.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// Total bytes of all frames.
    #[inline]
    pub fn byte_len(&self) -> usize {
        self.bytes.len()
    }

    /// Frame number `index`.
    #[inline]
    pub fn frame(&self, index: usize) -> Option<&[u8]> {
        let start = *self.starts.get(index)?;
        let end = self
            .starts
            .get(index + 1)
            .copied()
            .unwrap_or(self.bytes.len());
        self.bytes.get(start..end)
    }

    /// The first frame (for a ROUTER message, the routing id).
    #[inline]
    pub fn first(&self) -> Option<&[u8]> {
        self.frame(0)
    }

    /// The frames, in order.
    #[inline]
    pub fn frames(&self) -> Frames<'_> {
        Frames {
            packet: self,
            next: 0,
        }
    }

    /// The frames, each copied into a buffer of its own.
    pub fn to_vec(&self) -> Vec<Frame> {
        self.frames().map(<[u8]>::to_vec).collect()
    }

    /// Call `f` with the frames from number `skip` on, as slices (on the
    /// stack for the usual few frames), e.g. `skip` 1 for a ROUTER
    /// message's frames after its routing id, which is what a decoder takes.
    pub fn with_frames<R>(&self, skip: usize, f: impl FnOnce(&[&[u8]]) -> R) -> R {
        let frames: SmallVec<[&[u8]; INLINE_FRAMES]> = self.frames().skip(skip).collect();
        f(&frames)
    }

    /// Empty it, keeping its buffer for the next message.
    #[inline]
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.starts.clear();
    }
}

impl FrameSink for Packet {
    #[inline]
    fn next_frame(&mut self, capacity: usize) -> &mut Vec<u8> {
        self.starts.push(self.bytes.len());
        self.bytes.reserve(capacity);
        &mut self.bytes
    }
}

impl std::fmt::Debug for Packet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.frames()).finish()
    }
}

impl<F: AsRef<[u8]>> From<&[F]> for Packet {
    fn from(frames: &[F]) -> Self {
        Self::from_frames(frames)
    }
}

impl From<Vec<Frame>> for Packet {
    fn from(frames: Vec<Frame>) -> Self {
        Self::from_frames(&frames)
    }
}

/// The frames of a [`Packet`], in order.
#[derive(Debug, Clone)]
pub struct Frames<'a> {
    packet: &'a Packet,
    next: usize,
}

impl<'a> Iterator for Frames<'a> {
    type Item = &'a [u8];

    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        let frame = self.packet.frame(self.next)?;
        self.next += 1;
        Some(frame)
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.packet.len().saturating_sub(self.next);
        (left, Some(left))
    }
}

impl ExactSizeIterator for Frames<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_come_back_as_written_including_empty_ones() {
        let mut packet = Packet::with_capacity(16);
        packet.push_frame(b"\x00id");
        packet.next_frame(3).extend_from_slice(b"abc");
        packet.push_frame(b"");
        packet.push_frame(b"z");
        assert_eq!(packet.len(), 4);
        assert_eq!(packet.byte_len(), 7);
        let frames: Vec<&[u8]> = packet.frames().collect();
        assert_eq!(frames, [&b"\x00id"[..], b"abc", b"", b"z"]);
        assert_eq!(packet.first(), Some(&b"\x00id"[..]));
        assert_eq!(packet.frame(4), None);
        assert_eq!(packet.frames().len(), 4);
        packet.with_frames(1, |rest| assert_eq!(rest, [&b"abc"[..], b"", b"z"]));
        packet.with_frames(9, |rest| assert!(rest.is_empty()));
    }

    #[test]
    fn many_frames_spill_past_the_inline_offsets() {
        let frames: Vec<Vec<u8>> = (0..50u8).map(|i| vec![i; usize::from(i)]).collect();
        let packet = Packet::from_frames(&frames);
        assert_eq!(packet.to_vec(), frames);
        assert_eq!(Packet::from(frames.clone()), packet);
    }

    #[test]
    fn a_cleared_packet_keeps_its_buffer() {
        let mut packet = Packet::from_frames(&[b"hello".as_slice(), b"world"]);
        let capacity = packet.bytes.capacity();
        packet.clear();
        assert!(packet.is_empty());
        assert_eq!(packet.frames().next(), None);
        packet.push_frame(b"again");
        assert_eq!(packet.bytes.capacity(), capacity);
        assert_eq!(packet.to_vec(), vec![b"again".to_vec()]);
    }

    #[test]
    fn the_two_sinks_hold_the_same_frames() {
        let mut packet = Packet::new();
        let mut list: Vec<Frame> = Vec::new();
        for sink in [&mut packet as &mut dyn FrameSink, &mut list] {
            sink.push_frame(b"one");
            sink.next_frame(0).extend_from_slice(b"two");
        }
        assert_eq!(packet.to_vec(), list);
    }
}
