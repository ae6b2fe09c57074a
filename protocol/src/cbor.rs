//! The canonical binary encoding: a strict subset of deterministic CBOR (RFC 8949 §4.2).
//!
//! Only these items exist: unsigned integers (major type 0), byte strings (2), UTF-8 text strings (3), arrays (4),
//! maps with unsigned-integer keys (5), and the simple values `false`/`true` (7). Every length and integer uses the
//! shortest form; indefinite lengths, tags, floats, negative integers, `null` and `undefined` do not exist.
//!
//! Structs are maps whose keys are small field numbers in strictly ascending order; an absent optional field is an
//! absent key. The decoder is schema-driven: a [`MapDecoder`] takes fields in ascending order, so a duplicate key, a
//! key out of order or a key the schema does not know is an error. [`Decoder::finish`] rejects trailing bytes.
//!
//! Every variable-length item is checked against a caller-given cap **and** against the bytes that remain before
//! anything is allocated, so a hostile length can never cause a large allocation.

/// Why bytes did not decode. The offset is where in the input the problem was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    #[error("input ends early at byte {offset}")]
    UnexpectedEnd { offset: usize },
    #[error("{count} trailing bytes after the item")]
    TrailingBytes { count: usize },
    #[error("non-minimal integer or length encoding at byte {offset}")]
    NonMinimal { offset: usize },
    #[error("indefinite length at byte {offset}")]
    IndefiniteLength { offset: usize },
    #[error("unsupported or reserved item (major type {major}, info {info}) at byte {offset}")]
    Unsupported { major: u8, info: u8, offset: usize },
    #[error("expected {expected} at byte {offset}")]
    UnexpectedType {
        expected: &'static str,
        offset: usize,
    },
    #[error("integer {value} out of range for {what}")]
    OutOfRange { what: &'static str, value: u64 },
    #[error("{what} has length {len}, the limit is {max}")]
    TooLong {
        what: &'static str,
        len: u64,
        max: u64,
    },
    #[error("{what} must be exactly {expected} bytes, found {found}")]
    WrongLength {
        what: &'static str,
        expected: usize,
        found: usize,
    },
    #[error("text is not valid UTF-8 at byte {offset}")]
    InvalidUtf8 { offset: usize },
    #[error("map key {found} is a duplicate, out of order, or unknown here (expected key {expected} or a later one)")]
    UnexpectedKey { expected: u64, found: u64 },
    #[error("required field {key} is missing")]
    MissingField { key: u64 },
    #[error("{count} unknown map entries remain")]
    UnknownFields { count: u64 },
    #[error("unknown version {0}")]
    UnknownVersion(u64),
    #[error("unknown {what} {value}")]
    UnknownKind { what: &'static str, value: u64 },
    #[error("invalid value: {0}")]
    Invalid(&'static str),
}

const MAJOR_UINT: u8 = 0;
const MAJOR_BYTES: u8 = 2;
const MAJOR_TEXT: u8 = 3;
const MAJOR_ARRAY: u8 = 4;
const MAJOR_MAP: u8 = 5;
const MAJOR_SIMPLE: u8 = 7;
const SIMPLE_FALSE: u8 = 20;
const SIMPLE_TRUE: u8 = 21;

/// Writes canonical items. The caller writes map keys in ascending order; [`Encoder::map`] takes the entry count.
#[derive(Debug, Default, Clone)]
pub struct Encoder {
    buf: Vec<u8>,
}

impl Encoder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    fn head(&mut self, major: u8, n: u64) {
        let m = major << 5;
        if n < 24 {
            self.buf.push(m | n as u8);
        } else if n <= u8::MAX as u64 {
            self.buf.extend_from_slice(&[m | 24, n as u8]);
        } else if n <= u16::MAX as u64 {
            self.buf.push(m | 25);
            self.buf.extend_from_slice(&(n as u16).to_be_bytes());
        } else if n <= u32::MAX as u64 {
            self.buf.push(m | 26);
            self.buf.extend_from_slice(&(n as u32).to_be_bytes());
        } else {
            self.buf.push(m | 27);
            self.buf.extend_from_slice(&n.to_be_bytes());
        }
    }

    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.head(MAJOR_UINT, v);
        self
    }

    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.buf
            .push((MAJOR_SIMPLE << 5) | if v { SIMPLE_TRUE } else { SIMPLE_FALSE });
        self
    }

    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.head(MAJOR_BYTES, v.len() as u64);
        self.buf.extend_from_slice(v);
        self
    }

    pub fn text(&mut self, v: &str) -> &mut Self {
        self.head(MAJOR_TEXT, v.len() as u64);
        self.buf.extend_from_slice(v.as_bytes());
        self
    }

    pub fn array(&mut self, len: usize) -> &mut Self {
        self.head(MAJOR_ARRAY, len as u64);
        self
    }

    pub fn map(&mut self, len: usize) -> &mut Self {
        self.head(MAJOR_MAP, len as u64);
        self
    }

    /// A map key (field number).
    pub fn key(&mut self, k: u64) -> &mut Self {
        self.u64(k)
    }

    /// Bytes that are already one complete canonical item (e.g. a nested signed record), copied verbatim.
    pub fn raw(&mut self, item: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(item);
        self
    }
}

/// Reads canonical items from a byte slice, borrowing strings from it.
#[derive(Debug, Clone)]
pub struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Where the next item starts.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The bytes between two positions (to keep the exact bytes of a nested item).
    pub fn slice(&self, from: usize, to: usize) -> &'a [u8] {
        &self.buf[from..to]
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Fails unless every byte was consumed.
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(DecodeError::TrailingBytes { count }),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() {
            return Err(DecodeError::UnexpectedEnd {
                offset: self.buf.len(),
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// Reads an item head: (major type, argument), enforcing minimal encodings.
    fn head(&mut self) -> Result<(u8, u64, usize), DecodeError> {
        let offset = self.pos;
        let first = *self
            .take(1)?
            .first()
            .ok_or(DecodeError::UnexpectedEnd { offset })?;
        let major = first >> 5;
        let info = first & 0x1f;
        let value = match info {
            0..=23 => info as u64,
            24 => {
                let v = self.take(1)?[0] as u64;
                if v < 24 {
                    return Err(DecodeError::NonMinimal { offset });
                }
                v
            }
            25 => {
                let b = self.take(2)?;
                let v = u16::from_be_bytes([b[0], b[1]]) as u64;
                if v <= u8::MAX as u64 {
                    return Err(DecodeError::NonMinimal { offset });
                }
                v
            }
            26 => {
                let b = self.take(4)?;
                let v = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as u64;
                if v <= u16::MAX as u64 {
                    return Err(DecodeError::NonMinimal { offset });
                }
                v
            }
            27 => {
                let b = self.take(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                let v = u64::from_be_bytes(a);
                if v <= u32::MAX as u64 {
                    return Err(DecodeError::NonMinimal { offset });
                }
                v
            }
            31 => return Err(DecodeError::IndefiniteLength { offset }),
            _ => {
                return Err(DecodeError::Unsupported {
                    major,
                    info,
                    offset,
                })
            }
        };
        match major {
            MAJOR_UINT | MAJOR_BYTES | MAJOR_TEXT | MAJOR_ARRAY | MAJOR_MAP => {}
            MAJOR_SIMPLE if info == SIMPLE_FALSE || info == SIMPLE_TRUE => {}
            _ => {
                return Err(DecodeError::Unsupported {
                    major,
                    info,
                    offset,
                })
            }
        }
        Ok((major, value, offset))
    }

    fn expect(&mut self, major: u8, expected: &'static str) -> Result<u64, DecodeError> {
        let (m, v, offset) = self.head()?;
        if m != major {
            return Err(DecodeError::UnexpectedType { expected, offset });
        }
        Ok(v)
    }

    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        self.expect(MAJOR_UINT, "an unsigned integer")
    }

    pub fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        let v = self.u64()?;
        u32::try_from(v).map_err(|_| DecodeError::OutOfRange { what, value: v })
    }

    pub fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        let v = self.u64()?;
        u16::try_from(v).map_err(|_| DecodeError::OutOfRange { what, value: v })
    }

    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        let (m, v, offset) = self.head()?;
        match (m, v as u8) {
            (MAJOR_SIMPLE, SIMPLE_TRUE) => Ok(true),
            (MAJOR_SIMPLE, SIMPLE_FALSE) => Ok(false),
            _ => Err(DecodeError::UnexpectedType {
                expected: "a boolean",
                offset,
            }),
        }
    }

    fn checked_len(&self, what: &'static str, len: u64, max: usize) -> Result<usize, DecodeError> {
        if len > max as u64 {
            return Err(DecodeError::TooLong {
                what,
                len,
                max: max as u64,
            });
        }
        if len > self.remaining() as u64 {
            return Err(DecodeError::UnexpectedEnd {
                offset: self.buf.len(),
            });
        }
        Ok(len as usize)
    }

    /// A byte string of at most `max` bytes.
    pub fn bytes(&mut self, what: &'static str, max: usize) -> Result<&'a [u8], DecodeError> {
        let len = self.expect(MAJOR_BYTES, "a byte string")?;
        let len = self.checked_len(what, len, max)?;
        self.take(len)
    }

    /// A byte string of exactly `N` bytes.
    pub fn fixed<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let b = self.bytes(what, N)?;
        <[u8; N]>::try_from(b).map_err(|_| DecodeError::WrongLength {
            what,
            expected: N,
            found: b.len(),
        })
    }

    /// A UTF-8 text string of at most `max` bytes.
    pub fn text(&mut self, what: &'static str, max: usize) -> Result<&'a str, DecodeError> {
        let len = self.expect(MAJOR_TEXT, "a text string")?;
        let offset = self.pos;
        let len = self.checked_len(what, len, max)?;
        std::str::from_utf8(self.take(len)?).map_err(|_| DecodeError::InvalidUtf8 { offset })
    }

    /// An array header of at most `max` elements; returns the element count.
    pub fn array(&mut self, what: &'static str, max: usize) -> Result<usize, DecodeError> {
        let len = self.expect(MAJOR_ARRAY, "an array")?;
        // Each element takes at least one byte, so a count beyond the remaining bytes is a lie.
        self.checked_len(what, len, max)
    }

    /// A map header of at most `max` entries, as a schema-driven reader.
    pub fn map(&mut self, max: usize) -> Result<MapDecoder, DecodeError> {
        let len = self.expect(MAJOR_MAP, "a map")?;
        let len = self.checked_len("map", len, max)?;
        Ok(MapDecoder {
            remaining: len as u64,
            next_allowed: 0,
        })
    }

    fn peek_key(&self) -> Result<u64, DecodeError> {
        self.clone().u64()
    }

    /// An array of items decoded by `item`, at most `max` of them.
    pub fn array_of<T>(
        &mut self,
        what: &'static str,
        max: usize,
        mut item: impl FnMut(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        let n = self.array(what, max)?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(item(self)?);
        }
        Ok(out)
    }

    /// Skips one complete item (used only to measure nested items whose bytes are kept verbatim).
    pub fn skip(&mut self, depth_left: u32) -> Result<(), DecodeError> {
        if depth_left == 0 {
            return Err(DecodeError::Invalid("nesting too deep"));
        }
        let (major, v, _) = self.head()?;
        match major {
            MAJOR_BYTES | MAJOR_TEXT => {
                let n = self.checked_len("string", v, usize::MAX)?;
                self.take(n)?;
            }
            MAJOR_ARRAY => {
                self.checked_len("array", v, usize::MAX)?;
                for _ in 0..v {
                    self.skip(depth_left - 1)?;
                }
            }
            MAJOR_MAP => {
                self.checked_len("map", v, usize::MAX)?;
                for _ in 0..v {
                    self.skip(depth_left - 1)?;
                    self.skip(depth_left - 1)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// Reads a struct-like map: fields must be asked for in ascending key order, and every entry must be consumed.
#[derive(Debug)]
pub struct MapDecoder {
    remaining: u64,
    next_allowed: u64,
}

impl MapDecoder {
    /// Positions the decoder at the value of field `key` if it is present. Errors on a key below `key` that was not
    /// asked for (out of order, duplicate or unknown).
    pub fn optional(&mut self, d: &mut Decoder<'_>, key: u64) -> Result<bool, DecodeError> {
        debug_assert!(
            key >= self.next_allowed,
            "fields must be read in ascending order"
        );
        if self.remaining == 0 {
            self.next_allowed = key + 1;
            return Ok(false);
        }
        let found = d.peek_key()?;
        if found < key || found < self.next_allowed {
            return Err(DecodeError::UnexpectedKey {
                expected: key,
                found,
            });
        }
        self.next_allowed = key + 1;
        if found == key {
            d.u64()?;
            self.remaining -= 1;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    /// Positions the decoder at the value of field `key`, which must be present.
    pub fn required(&mut self, d: &mut Decoder<'_>, key: u64) -> Result<(), DecodeError> {
        if self.optional(d, key)? {
            Ok(())
        } else {
            Err(DecodeError::MissingField { key })
        }
    }

    /// Fails if entries remain that the schema did not ask for.
    pub fn end(self) -> Result<(), DecodeError> {
        match self.remaining {
            0 => Ok(()),
            count => Err(DecodeError::UnknownFields { count }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(a: u64, b: &str) -> Vec<u8> {
        let mut e = Encoder::new();
        e.map(2).key(0).u64(a).key(1).text(b);
        e.into_bytes()
    }

    fn read_pair(bytes: &[u8]) -> Result<(u64, String), DecodeError> {
        let mut d = Decoder::new(bytes);
        let mut m = d.map(8)?;
        m.required(&mut d, 0)?;
        let a = d.u64()?;
        m.required(&mut d, 1)?;
        let b = d.text("b", 16)?.to_string();
        m.end()?;
        d.finish()?;
        Ok((a, b))
    }

    #[test]
    fn integers_use_the_shortest_form() {
        for (v, len) in [
            (0u64, 1),
            (23, 1),
            (24, 2),
            (255, 2),
            (256, 3),
            (65535, 3),
            (65536, 5),
            (u32::MAX as u64 + 1, 9),
        ] {
            let mut e = Encoder::new();
            e.u64(v);
            let b = e.into_bytes();
            assert_eq!(b.len(), len, "{v}");
            let mut d = Decoder::new(&b);
            assert_eq!(d.u64(), Ok(v));
            d.finish().unwrap();
        }
    }

    #[test]
    fn round_trip() {
        assert_eq!(read_pair(&pair(300, "hi")), Ok((300, "hi".into())));
    }

    #[test]
    fn non_minimal_integers_are_rejected() {
        // 5 encoded with a one-byte argument, 255 with two, 65535 with four, u32::MAX with eight.
        for bad in [
            &[0x18, 5][..],
            &[0x19, 0, 255],
            &[0x1a, 0, 0, 0xff, 0xff],
            &[0x1b, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff],
        ] {
            assert!(
                matches!(Decoder::new(bad).u64(), Err(DecodeError::NonMinimal { .. })),
                "{bad:?}"
            );
        }
        // A non-minimal length on a byte string.
        assert!(matches!(
            Decoder::new(&[0x58, 1, 7]).bytes("b", 10),
            Err(DecodeError::NonMinimal { .. })
        ));
    }

    #[test]
    fn duplicate_and_unsorted_keys_are_rejected() {
        let mut e = Encoder::new();
        e.map(2).key(0).u64(1).key(0).text("x");
        assert!(matches!(
            read_pair(&e.into_bytes()),
            Err(DecodeError::UnexpectedKey { .. } | DecodeError::UnexpectedType { .. })
        ));
        let mut e = Encoder::new();
        e.map(2).key(1).text("x").key(0).u64(1);
        assert!(matches!(
            read_pair(&e.into_bytes()),
            Err(DecodeError::MissingField { key: 0 } | DecodeError::UnexpectedKey { .. })
        ));
        let mut e = Encoder::new();
        e.map(3).key(0).u64(1).key(1).text("x").key(1).text("y");
        assert_eq!(
            read_pair(&e.into_bytes()),
            Err(DecodeError::UnknownFields { count: 1 })
        );
    }

    #[test]
    fn unknown_fields_indefinite_lengths_and_trailing_bytes_are_rejected() {
        let mut e = Encoder::new();
        e.map(3).key(0).u64(1).key(1).text("x").key(9).u64(0);
        assert_eq!(
            read_pair(&e.into_bytes()),
            Err(DecodeError::UnknownFields { count: 1 })
        );
        // Indefinite-length map.
        assert!(matches!(
            read_pair(&[0xbf, 0x00, 0x01, 0xff]),
            Err(DecodeError::IndefiniteLength { .. })
        ));
        // Indefinite-length text.
        assert!(matches!(
            Decoder::new(&[0x7f, 0x61, b'a', 0xff]).text("t", 9),
            Err(DecodeError::IndefiniteLength { .. })
        ));
        let mut b = pair(1, "x");
        b.push(0);
        assert_eq!(read_pair(&b), Err(DecodeError::TrailingBytes { count: 1 }));
    }

    #[test]
    fn hostile_lengths_fail_before_allocation() {
        // A byte string claiming 2^63 bytes, an array claiming 2^32 elements.
        let huge = [0x5b, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert!(matches!(
            Decoder::new(&huge).bytes("b", usize::MAX),
            Err(DecodeError::UnexpectedEnd { .. })
        ));
        assert!(matches!(
            Decoder::new(&huge).bytes("b", 64),
            Err(DecodeError::TooLong { .. })
        ));
        let arr = [0x9b, 0, 0, 0, 1, 0, 0, 0, 0];
        assert!(matches!(
            Decoder::new(&arr).array_of("a", usize::MAX, |d| d.u64()),
            Err(DecodeError::UnexpectedEnd { .. })
        ));
    }

    #[test]
    fn tags_floats_negatives_and_null_do_not_exist() {
        for bad in [
            &[0xc0, 0x00][..],
            &[0xf9, 0, 0],
            &[0x20],
            &[0xf6],
            &[0xf7],
            &[0x1c],
        ] {
            assert!(Decoder::new(bad).skip(4).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn truncated_and_empty_input_is_an_error() {
        let b = pair(70000, "hello");
        for cut in 0..b.len() {
            assert!(read_pair(&b[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn invalid_utf8_is_rejected() {
        assert!(matches!(
            Decoder::new(&[0x62, 0xc3, 0x28]).text("t", 9),
            Err(DecodeError::InvalidUtf8 { .. })
        ));
    }
}
