//! A growable array that never moves what it holds.
//!
//! A `Vec` that outgrows its buffer copies everything into one twice the
//! size and frees the old one. A table of tuples grows that way from a
//! few entries to its final size, so it leaves a trail of freed buffers
//! of every size below it; with a thousand tables growing at once (a
//! swarm), the allocator keeps that trail resident (5 MB for 1,000 nodes
//! of 1,000 tuples, measured) and the copies cost time. [`Segments`]
//! adds a segment twice the size of the last one instead, and keeps the
//! others: growing copies nothing and frees nothing, and it holds at most
//! twice its length (like a `Vec`).

/// Entries in the first segment; each further segment doubles.
const FIRST: usize = 16;

/// An append-only array in segments of 16, 32, 64, ... entries.
#[derive(Clone, Default)]
pub(crate) struct Segments<T> {
    /// Segment `k` has capacity `FIRST << k` and is full unless it is the
    /// last.
    segments: Vec<Vec<T>>,
    len: usize,
}

/// Segment and offset of position `i`.
fn locate(i: usize) -> (usize, usize) {
    let j = i + FIRST;
    let top = usize::BITS - 1 - j.leading_zeros();
    ((top - FIRST.trailing_zeros()) as usize, j - (1 << top))
}

impl<T> Segments<T> {
    /// An empty array; it allocates on the first push.
    pub(crate) const fn new() -> Self {
        Self {
            segments: Vec::new(),
            len: 0,
        }
    }

    /// Entries held.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds nothing.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Append `value` at position `len()`.
    pub(crate) fn push(&mut self, value: T) {
        let (k, _) = locate(self.len);
        if k == self.segments.len() {
            self.segments.push(Vec::with_capacity(FIRST << k));
        }
        self.segments[k].push(value);
        self.len += 1;
    }

    /// The entry at `i`, if `i < len()`.
    pub(crate) fn get(&self, i: usize) -> Option<&T> {
        if i >= self.len {
            return None;
        }
        let (k, offset) = locate(i);
        self.segments.get(k)?.get(offset)
    }

    /// Every entry, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> + '_ {
        self.segments.iter().flatten()
    }

    /// Every entry, in order.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> + '_ {
        self.segments.iter_mut().flatten()
    }

    /// The entries from position `from` on, in order (none past the end);
    /// it starts there at once, whatever `from`.
    pub(crate) fn iter_from(&self, from: usize) -> impl Iterator<Item = &T> + '_ {
        let (k, offset) = if from < self.len {
            locate(from)
        } else {
            (self.segments.len(), 0)
        };
        let first = self.segments.get(k).map_or(&[][..], |s| &s[offset..]);
        let rest = self.segments.get(k + 1..).unwrap_or(&[]);
        first.iter().chain(rest.iter().flatten())
    }
}

impl<T> std::ops::Index<usize> for Segments<T> {
    type Output = T;

    /// Panics past the end, as a slice does: positions come from the table
    /// itself, never from input.
    fn index(&self, i: usize) -> &T {
        let (k, offset) = locate(i);
        &self.segments[k][offset]
    }
}

impl<T> std::ops::IndexMut<usize> for Segments<T> {
    fn index_mut(&mut self, i: usize) -> &mut T {
        let (k, offset) = locate(i);
        &mut self.segments[k][offset]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_map_to_segments_of_doubling_size() {
        assert_eq!(locate(0), (0, 0));
        assert_eq!(locate(15), (0, 15));
        assert_eq!(locate(16), (1, 0));
        assert_eq!(locate(47), (1, 31));
        assert_eq!(locate(48), (2, 0));
        assert_eq!(locate(111), (2, 63));
        assert_eq!(locate(112), (3, 0));
    }

    #[test]
    fn it_holds_what_a_vec_holds_without_moving_it() {
        let mut segments = Segments::new();
        let mut vec = Vec::new();
        let mut first_address = None;
        for i in 0..5_000u32 {
            segments.push(i);
            vec.push(i);
            let address = std::ptr::from_ref(&segments[0]);
            assert_eq!(*first_address.get_or_insert(address), address);
        }
        assert_eq!(segments.len(), vec.len());
        assert!(segments.iter().eq(vec.iter()));
        for from in [0, 1, 15, 16, 17, 1_000, 4_999, 5_000, 6_000] {
            assert!(
                segments.iter_from(from).eq(vec.iter().skip(from)),
                "from {from}"
            );
        }
        assert_eq!(segments.get(4_999), Some(&4_999));
        assert_eq!(segments.get(5_000), None);
        segments[77] = 0;
        segments[78] = 1;
        for e in segments.iter_mut() {
            *e += 1;
        }
        assert_eq!((segments[77], segments[78], segments[79]), (1, 2, 80));
        let capacity: usize = segments.segments.iter().map(Vec::capacity).sum();
        assert!(capacity < 2 * segments.len() + FIRST, "{capacity}");
    }

    #[test]
    fn an_empty_array_yields_nothing() {
        let segments = Segments::<u8>::new();
        assert!(segments.is_empty());
        assert_eq!(segments.iter_from(0).count(), 0);
        assert_eq!(segments.get(0), None);
    }
}
