//! Wire primitives: the byte-level encoding of zproto fields.
//!
//! All numbers are unsigned big-endian. `string` is a 1-byte length and bytes,
//! `longstr` and `chunk` a 4-byte length and bytes, `strings` a 4-byte count of
//! longstrs, `hash` a 4-byte count of (string key, longstr value) pairs. Nothing
//! is NUL-terminated.

use std::collections::BTreeMap;

use crate::error::{DecodeError, EncodeError};
use crate::view::{HashRef, StringsRef};

/// The 16-bit word that opens every body frame: `0xAAA0 | signature`.
#[inline]
pub const fn signature_word(signature: u8) -> u16 {
    0xAAA0 | signature as u16
}

/// Where a reader or writer is, for error messages.
#[derive(Debug, Clone, Copy)]
pub struct Context {
    /// Protocol class name.
    pub class: &'static str,
    /// Message name.
    pub message: &'static str,
}

/// A cursor over a body frame that decodes fields in order.
///
/// Every read checks the bytes left before copying or allocating anything.
#[derive(Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    ctx: Context,
}

impl<'a> Reader<'a> {
    /// A reader over `bytes`, the part of the body frame after the message id.
    #[inline]
    pub fn new(bytes: &'a [u8], ctx: Context) -> Self {
        Self { bytes, ctx }
    }

    /// Bytes not yet read.
    #[inline]
    pub fn remaining(&self) -> usize {
        self.bytes.len()
    }

    fn truncated(&self, field: &'static str, needed: u64) -> DecodeError {
        DecodeError::Truncated {
            class: self.ctx.class,
            message: self.ctx.message,
            field,
            needed,
            available: self.bytes.len(),
        }
    }

    /// Take exactly `n` bytes, or fail naming `field`.
    #[inline]
    pub fn take(&mut self, field: &'static str, n: u64) -> Result<&'a [u8], DecodeError> {
        match usize::try_from(n) {
            Ok(n) if n <= self.bytes.len() => {
                let (head, tail) = self.bytes.split_at(n);
                self.bytes = tail;
                Ok(head)
            }
            _ => Err(self.truncated(field, n)),
        }
    }

    #[inline]
    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let bytes = self.take(field, N as u64)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// A 1-byte number.
    #[inline]
    pub fn number1(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        self.array::<1>(field).map(|b| b[0])
    }

    /// A 2-byte number.
    #[inline]
    pub fn number2(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        self.array(field).map(u16::from_be_bytes)
    }

    /// A 4-byte number.
    #[inline]
    pub fn number4(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        self.array(field).map(u32::from_be_bytes)
    }

    /// An 8-byte number.
    #[inline]
    pub fn number8(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        self.array(field).map(u64::from_be_bytes)
    }

    /// A fixed-size block of `N` raw bytes.
    #[inline]
    pub fn octets<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        self.array(field)
    }

    /// A 16-byte UUID.
    #[inline]
    pub fn uuid(&mut self, field: &'static str) -> Result<[u8; 16], DecodeError> {
        self.array(field)
    }

    #[inline]
    fn text(&self, field: &'static str, bytes: &'a [u8]) -> Result<&'a str, DecodeError> {
        // Protocol text is mostly ASCII: a word-at-a-time check, inlined,
        // is several times quicker than the general validation on short
        // strings.
        if bytes.is_ascii() {
            // SAFETY: every ASCII byte sequence is valid UTF-8.
            return Ok(unsafe { std::str::from_utf8_unchecked(bytes) });
        }
        std::str::from_utf8(bytes).map_err(|_| DecodeError::InvalidUtf8 {
            class: self.ctx.class,
            message: self.ctx.message,
            field,
        })
    }

    /// A `string`, borrowed: 1-byte length, then that many bytes of UTF-8.
    #[inline]
    pub fn string_ref(&mut self, field: &'static str) -> Result<&'a str, DecodeError> {
        let len = self.number1(field)?;
        let bytes = self.take(field, u64::from(len))?;
        self.text(field, bytes)
    }

    /// A `longstr`, borrowed: 4-byte length, then that many bytes of UTF-8.
    #[inline]
    pub fn longstr_ref(&mut self, field: &'static str) -> Result<&'a str, DecodeError> {
        let bytes = self.chunk_ref(field)?;
        self.text(field, bytes)
    }

    /// A `chunk`, borrowed: 4-byte length, then that many raw bytes.
    #[inline]
    pub fn chunk_ref(&mut self, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let len = self.number4(field)?;
        self.take(field, u64::from(len))
    }

    /// A fixed-size block of `N` raw bytes, borrowed.
    #[inline]
    pub fn octets_ref<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<&'a [u8; N], DecodeError> {
        let bytes = self.take(field, N as u64)?;
        bytes
            .try_into()
            .map_err(|_| self.truncated(field, N as u64))
    }

    /// A `string`: 1-byte length, then that many bytes of UTF-8.
    #[inline]
    pub fn string(&mut self, field: &'static str) -> Result<String, DecodeError> {
        self.string_ref(field).map(str::to_owned)
    }

    /// A `longstr`: 4-byte length, then that many bytes of UTF-8.
    #[inline]
    pub fn longstr(&mut self, field: &'static str) -> Result<String, DecodeError> {
        self.longstr_ref(field).map(str::to_owned)
    }

    /// A `chunk`: 4-byte length, then that many raw bytes.
    #[inline]
    pub fn chunk(&mut self, field: &'static str) -> Result<Vec<u8>, DecodeError> {
        self.chunk_ref(field).map(<[u8]>::to_vec)
    }

    /// How many entries of at least `min_size` bytes a claimed `count` may
    /// really hold: never more than the bytes left can carry.
    #[inline]
    fn bounded_count(
        &self,
        field: &'static str,
        count: u32,
        min_size: u64,
    ) -> Result<usize, DecodeError> {
        let needed = u64::from(count) * min_size;
        if needed > self.bytes.len() as u64 {
            return Err(self.truncated(field, needed));
        }
        Ok(count as usize)
    }

    /// A `strings` list, borrowed: 4-byte count, then that many longstrs,
    /// all checked now (lengths and UTF-8) and read again when iterated.
    #[inline]
    pub fn strings_ref(&mut self, field: &'static str) -> Result<StringsRef<'a>, DecodeError> {
        let count = self.number4(field)?;
        let count = self.bounded_count(field, count, 4)?;
        let start = self.bytes;
        for _ in 0..count {
            self.longstr_ref(field)?;
        }
        let used = start.len() - self.bytes.len();
        Ok(StringsRef::new(&start[..used], count))
    }

    /// A `strings` list: 4-byte count, then that many longstrs.
    #[inline]
    pub fn strings(&mut self, field: &'static str) -> Result<Vec<String>, DecodeError> {
        let count = self.number4(field)?;
        let count = self.bounded_count(field, count, 4)?;
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            out.push(self.longstr(field)?);
        }
        Ok(out)
    }

    /// A `hash`, borrowed: 4-byte count, then (string key, longstr value)
    /// pairs, all checked now and read again when iterated.
    #[inline]
    pub fn hash_ref(&mut self, field: &'static str) -> Result<HashRef<'a>, DecodeError> {
        let count = self.number4(field)?;
        let count = self.bounded_count(field, count, 1 + 4)?;
        let start = self.bytes;
        for _ in 0..count {
            self.string_ref(field)?;
            self.longstr_ref(field)?;
        }
        let used = start.len() - self.bytes.len();
        Ok(HashRef::new(&start[..used], count))
    }

    /// A `hash`: 4-byte count, then (string key, longstr value) pairs.
    ///
    /// As in the C codecs, when a key repeats the first value is kept.
    #[inline]
    pub fn hash(&mut self, field: &'static str) -> Result<BTreeMap<String, String>, DecodeError> {
        let count = self.number4(field)?;
        let count = self.bounded_count(field, count, 1 + 4)?;
        let mut out = BTreeMap::new();
        for _ in 0..count {
            let key = self.string_ref(field)?;
            let value = self.longstr_ref(field)?;
            if !out.contains_key(key) {
                out.insert(key.to_owned(), value.to_owned());
            }
        }
        Ok(out)
    }

    fn bad_constant(&self, field: &'static str, expected: String, found: String) -> DecodeError {
        DecodeError::BadConstant {
            class: self.ctx.class,
            message: self.ctx.message,
            field,
            expected,
            found,
        }
    }

    /// A constant number field of `size` bytes that must equal `expected`.
    #[inline]
    pub fn constant_number(
        &mut self,
        field: &'static str,
        size: u8,
        expected: u64,
    ) -> Result<(), DecodeError> {
        let found = match size {
            1 => u64::from(self.number1(field)?),
            2 => u64::from(self.number2(field)?),
            4 => u64::from(self.number4(field)?),
            _ => self.number8(field)?,
        };
        if found == expected {
            Ok(())
        } else {
            Err(self.bad_constant(field, expected.to_string(), found.to_string()))
        }
    }

    /// A constant `string` field that must equal `expected`.
    #[inline]
    pub fn constant_string(
        &mut self,
        field: &'static str,
        expected: &str,
    ) -> Result<(), DecodeError> {
        let len = self.number1(field)?;
        let found = self.take(field, u64::from(len))?;
        if found == expected.as_bytes() {
            Ok(())
        } else {
            let found = String::from_utf8_lossy(found);
            Err(self.bad_constant(field, format!("{expected:?}"), format!("{found:?}")))
        }
    }
}

/// Encodes fields into a body frame, refusing what the wire cannot carry.
#[derive(Debug)]
pub struct Writer<'a> {
    buf: &'a mut Vec<u8>,
    ctx: Context,
}

impl<'a> Writer<'a> {
    /// A writer that appends to `buf`.
    #[inline]
    pub fn new(buf: &'a mut Vec<u8>, ctx: Context) -> Self {
        Self { buf, ctx }
    }

    /// Write the signature word and the message id that open a body frame.
    #[inline]
    pub fn head(&mut self, signature: u8, id: u8) {
        self.buf
            .extend_from_slice(&signature_word(signature).to_be_bytes());
        self.buf.push(id);
    }

    /// The head of a pubsub body frame (zproto's `pubsub="1"`): the id, the
    /// topic and a NUL; no signature. A topic holding a NUL is refused.
    #[inline]
    pub fn head_pubsub(&mut self, id: u8, topic: &str) -> Result<(), EncodeError> {
        if let Some(at) = topic.bytes().position(|b| b == 0) {
            return Err(EncodeError::TopicWithNul {
                class: self.ctx.class,
                message: self.ctx.message,
                at,
            });
        }
        self.buf.push(id);
        self.buf.extend_from_slice(topic.as_bytes());
        self.buf.push(0);
        Ok(())
    }

    fn too_large(&self, field: &'static str, len: usize) -> EncodeError {
        EncodeError::TooLarge {
            class: self.ctx.class,
            message: self.ctx.message,
            field,
            len,
        }
    }

    #[inline]
    fn length4(&mut self, field: &'static str, len: usize) -> Result<(), EncodeError> {
        let len32 = u32::try_from(len).map_err(|_| self.too_large(field, len))?;
        self.number4(len32);
        Ok(())
    }

    /// A 1-byte number.
    #[inline]
    pub fn number1(&mut self, value: u8) {
        self.buf.push(value);
    }

    /// A 2-byte number.
    #[inline]
    pub fn number2(&mut self, value: u16) {
        self.buf.extend_from_slice(&value.to_be_bytes());
    }

    /// A 4-byte number.
    #[inline]
    pub fn number4(&mut self, value: u32) {
        self.buf.extend_from_slice(&value.to_be_bytes());
    }

    /// An 8-byte number.
    #[inline]
    pub fn number8(&mut self, value: u64) {
        self.buf.extend_from_slice(&value.to_be_bytes());
    }

    /// Raw bytes with no length: `octets` and `uuid` fields.
    #[inline]
    pub fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// A `string`: at most 255 bytes.
    #[inline]
    pub fn string(&mut self, field: &'static str, value: &str) -> Result<(), EncodeError> {
        let len = u8::try_from(value.len()).map_err(|_| EncodeError::StringTooLong {
            class: self.ctx.class,
            message: self.ctx.message,
            field,
            len: value.len(),
        })?;
        self.buf.push(len);
        self.buf.extend_from_slice(value.as_bytes());
        Ok(())
    }

    /// A `longstr` or `chunk`: 4-byte length and the bytes.
    #[inline]
    pub fn longstr(&mut self, field: &'static str, value: &[u8]) -> Result<(), EncodeError> {
        self.length4(field, value.len())?;
        self.buf.extend_from_slice(value);
        Ok(())
    }

    /// A `strings` list.
    #[inline]
    pub fn strings(&mut self, field: &'static str, values: &[String]) -> Result<(), EncodeError> {
        self.length4(field, values.len())?;
        for value in values {
            self.longstr(field, value.as_bytes())?;
        }
        Ok(())
    }

    /// A `hash`, in key order.
    #[inline]
    pub fn hash(
        &mut self,
        field: &'static str,
        values: &BTreeMap<String, String>,
    ) -> Result<(), EncodeError> {
        self.length4(field, values.len())?;
        for (key, value) in values {
            self.string(field, key)?;
            self.longstr(field, value.as_bytes())?;
        }
        Ok(())
    }
}

/// Encoded sizes of variable-length fields, for sizing a body frame once.
pub mod size {
    use std::collections::BTreeMap;

    /// Encoded size of a `string` field.
    #[inline]
    pub fn string(value: &str) -> usize {
        1 + value.len()
    }

    /// Encoded size of a `longstr` or `chunk` field.
    #[inline]
    pub fn longstr(value: &[u8]) -> usize {
        4 + value.len()
    }

    /// Encoded size of a `strings` field.
    #[inline]
    pub fn strings(values: &[String]) -> usize {
        4 + values.iter().map(|v| longstr(v.as_bytes())).sum::<usize>()
    }

    /// Encoded size of a `hash` field.
    #[inline]
    pub fn hash(values: &BTreeMap<String, String>) -> usize {
        4 + values
            .iter()
            .map(|(k, v)| string(k) + longstr(v.as_bytes()))
            .sum::<usize>()
    }
}
