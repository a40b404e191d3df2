//! Borrowed views of `strings` and `hash` fields.
//!
//! A generated message view (`AnnounceRef<'a>`, say) borrows its strings
//! and chunks from the received frames; its lists cannot be slices of
//! `&str` without allocating, so they are these: the field's bytes on the
//! wire, checked whole when the message was decoded (lengths and UTF-8), and
//! read again only when iterated.

use std::collections::BTreeMap;
use std::fmt;

/// Split a 4-byte length and that many bytes off the front of `bytes`.
/// `None` only for bytes that were not checked by the decoder.
#[inline]
fn split_long(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let len: [u8; 4] = bytes.get(..4)?.try_into().ok()?;
    let len = usize::try_from(u32::from_be_bytes(len)).ok()?;
    split(&bytes[4..], len)
}

/// `bytes` split after `len` bytes, if it has that many.
#[inline]
fn split(bytes: &[u8], len: usize) -> Option<(&[u8], &[u8])> {
    (len <= bytes.len()).then(|| bytes.split_at(len))
}

/// UTF-8 checked again: views hold only bytes the decoder checked, so
/// this never meets invalid text; if it did, it would yield "" rather than
/// panic.
#[inline]
fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap_or_default()
}

/// A `strings` field, borrowed: the long strings in wire order.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct StringsRef<'a> {
    /// The entries as on the wire (after the count), all checked.
    bytes: &'a [u8],
    count: usize,
}

impl<'a> StringsRef<'a> {
    /// A view over `count` checked long strings in `bytes`.
    #[inline]
    pub(crate) fn new(bytes: &'a [u8], count: usize) -> Self {
        Self { bytes, count }
    }

    /// How many strings the list holds.
    #[inline]
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the list is empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The strings, in wire order.
    #[inline]
    pub fn iter(&self) -> StringsIter<'a> {
        StringsIter {
            bytes: self.bytes,
            left: self.count,
        }
    }

    /// The list, owned: what the owned decoder builds.
    #[inline]
    pub fn to_vec(&self) -> Vec<String> {
        self.iter().map(str::to_owned).collect()
    }
}

impl fmt::Debug for StringsRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a> IntoIterator for StringsRef<'a> {
    type Item = &'a str;
    type IntoIter = StringsIter<'a>;
    #[inline]
    fn into_iter(self) -> StringsIter<'a> {
        self.iter()
    }
}

/// The strings of a [`StringsRef`].
#[derive(Debug, Clone)]
pub struct StringsIter<'a> {
    bytes: &'a [u8],
    left: usize,
}

impl<'a> Iterator for StringsIter<'a> {
    type Item = &'a str;

    #[inline]
    fn next(&mut self) -> Option<&'a str> {
        if self.left == 0 {
            return None;
        }
        let (value, rest) = split_long(self.bytes)?;
        self.bytes = rest;
        self.left -= 1;
        Some(text(value))
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for StringsIter<'_> {}

/// A `hash` field, borrowed: (key, value) pairs in wire order.
///
/// The wire may repeat a key; as the owned decoder (and zproto's C codecs)
/// do, [`HashRef::get`] and [`HashRef::to_map`] keep its first value, while
/// [`HashRef::iter`] shows every pair as sent.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct HashRef<'a> {
    /// The pairs as on the wire (after the count), all checked.
    bytes: &'a [u8],
    count: usize,
}

impl<'a> HashRef<'a> {
    /// A view over `count` checked (string, long string) pairs in `bytes`.
    #[inline]
    pub(crate) fn new(bytes: &'a [u8], count: usize) -> Self {
        Self { bytes, count }
    }

    /// How many pairs the wire holds (a repeated key counts each time).
    #[inline]
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether there are no pairs.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The pairs, in wire order.
    #[inline]
    pub fn iter(&self) -> HashIter<'a> {
        HashIter {
            bytes: self.bytes,
            left: self.count,
        }
    }

    /// The first value sent for `key`.
    #[inline]
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// The map, owned: what the owned decoder builds.
    #[inline]
    pub fn to_map(&self) -> BTreeMap<String, String> {
        let mut map = BTreeMap::new();
        for (key, value) in self.iter() {
            map.entry(key.to_owned())
                .or_insert_with(|| value.to_owned());
        }
        map
    }
}

impl fmt::Debug for HashRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<'a> IntoIterator for HashRef<'a> {
    type Item = (&'a str, &'a str);
    type IntoIter = HashIter<'a>;
    #[inline]
    fn into_iter(self) -> HashIter<'a> {
        self.iter()
    }
}

/// The pairs of a [`HashRef`].
#[derive(Debug, Clone)]
pub struct HashIter<'a> {
    bytes: &'a [u8],
    left: usize,
}

impl<'a> Iterator for HashIter<'a> {
    type Item = (&'a str, &'a str);

    #[inline]
    fn next(&mut self) -> Option<(&'a str, &'a str)> {
        if self.left == 0 {
            return None;
        }
        let (&len, rest) = self.bytes.split_first()?;
        let (key, rest) = split(rest, usize::from(len))?;
        let (value, rest) = split_long(rest)?;
        self.bytes = rest;
        self.left -= 1;
        Some((text(key), text(value)))
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for HashIter<'_> {}
