//! [`WsgiStr`]: an environ value that keeps every byte.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

use bytes::Bytes;

/// A string value of the [`Environ`](crate::Environ) (`PATH_INFO`, `HTTP_*`, ...): the bytes
/// as they came, never re-encoded.
///
/// PEP 3333 passes environ values as "native strings" that are latin-1 decoded bytes: one
/// character per byte, so that no byte is lost whatever the client sent. A Rust `String` must
/// be UTF-8, which would lose (or reject) the bytes of a path such as `/%FF`. So a `WsgiStr`
/// holds the bytes themselves and offers both views:
///
/// - [`as_bytes`](WsgiStr::as_bytes): the bytes, the truth.
/// - [`to_str`](WsgiStr::to_str): the bytes as UTF-8, when they are (what Rust code usually
///   wants: a percent-decoded path of `/caf%C3%A9` is `"/café"`).
/// - [`to_latin1`](WsgiStr::to_latin1) and `Display` (so `to_string()`): PEP 3333's native
///   string, one char per byte (`"/cafÃ©"` for the same path), lossless and reversible with
///   [`from_latin1`](WsgiStr::from_latin1).
///
/// It compares with `&str`, `String`, `&[u8]` and byte-string literals directly, both ways
/// round, with no conversion first: `environ.method() == "GET"`, `environ.query_string() ==
/// b"a=1"`. A `str` compares by its UTF-8 bytes; for ASCII all views agree.
///
/// Cloning is cheap (the bytes are shared).
///
/// # Example
///
/// ```
/// use asgi_wsgi_compat::WsgiStr;
///
/// let path = WsgiStr::from(&b"/caf\xc3\xa9/\xff"[..]);
/// assert_eq!(path.as_bytes(), b"/caf\xc3\xa9/\xff");
/// assert_eq!(path.to_str(), None); // 0xFF is not UTF-8
/// assert_eq!(path.to_string(), "/caf\u{c3}\u{a9}/\u{ff}"); // latin-1: one char per byte
/// assert_eq!(WsgiStr::from_latin1(&path.to_string()), Some(path.clone()));
///
/// let method = WsgiStr::from("GET");
/// assert_eq!(method, "GET");
/// assert_eq!(method, b"GET");
/// assert_eq!("GET", method);
/// ```
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WsgiStr(Bytes);

impl WsgiStr {
    /// An empty value.
    pub const fn new() -> Self {
        WsgiStr(Bytes::new())
    }

    /// A value from a `'static` string, without copying.
    pub const fn from_static(s: &'static str) -> Self {
        WsgiStr(Bytes::from_static(s.as_bytes()))
    }

    /// A value from a PEP 3333 native string: each char must be at most U+00FF and becomes
    /// one byte. `None` when a char is outside latin-1.
    pub fn from_latin1(s: &str) -> Option<Self> {
        s.chars()
            .map(|c| u8::try_from(u32::from(c)).ok())
            .collect::<Option<Vec<u8>>>()
            .map(|v| WsgiStr(Bytes::from(v)))
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The bytes as a shared [`Bytes`] (no copy).
    pub fn to_bytes(&self) -> Bytes {
        self.0.clone()
    }

    /// The bytes as UTF-8, if they are.
    pub fn to_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    /// PEP 3333's native string: one char per byte (latin-1). Lossless for every value.
    pub fn to_latin1(&self) -> String {
        self.0.iter().map(|&b| char::from(b)).collect()
    }

    /// A shared slice of the bytes (no copy).
    pub(crate) fn slice(&self, range: impl std::ops::RangeBounds<usize>) -> WsgiStr {
        WsgiStr(self.0.slice(range))
    }

    /// The length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for an empty value.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Deref for WsgiStr {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for WsgiStr {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Borrow<[u8]> for WsgiStr {
    fn borrow(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Display for WsgiStr {
    /// PEP 3333's native string: one char per byte (latin-1).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write;
        for &b in self.0.iter() {
            f.write_char(char::from(b))?;
        }
        Ok(())
    }
}

impl fmt::Debug for WsgiStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Readable for ASCII, exact for everything else.
        write!(f, "\"{}\"", self.0.escape_ascii())
    }
}

impl From<&str> for WsgiStr {
    fn from(s: &str) -> Self {
        WsgiStr(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl From<String> for WsgiStr {
    fn from(s: String) -> Self {
        WsgiStr(Bytes::from(s))
    }
}

impl From<&[u8]> for WsgiStr {
    fn from(b: &[u8]) -> Self {
        WsgiStr(Bytes::copy_from_slice(b))
    }
}

impl From<Vec<u8>> for WsgiStr {
    fn from(b: Vec<u8>) -> Self {
        WsgiStr(Bytes::from(b))
    }
}

impl From<Bytes> for WsgiStr {
    fn from(b: Bytes) -> Self {
        WsgiStr(b)
    }
}

impl From<WsgiStr> for Bytes {
    fn from(s: WsgiStr) -> Self {
        s.0
    }
}

impl PartialEq<str> for WsgiStr {
    fn eq(&self, other: &str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<&str> for WsgiStr {
    fn eq(&self, other: &&str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<[u8]> for WsgiStr {
    fn eq(&self, other: &[u8]) -> bool {
        self.0 == other
    }
}

impl PartialEq<&[u8]> for WsgiStr {
    fn eq(&self, other: &&[u8]) -> bool {
        self.0 == *other
    }
}

impl PartialEq<WsgiStr> for str {
    fn eq(&self, other: &WsgiStr) -> bool {
        self.as_bytes() == other.0
    }
}

impl PartialEq<WsgiStr> for &str {
    fn eq(&self, other: &WsgiStr) -> bool {
        self.as_bytes() == other.0
    }
}

impl PartialEq<String> for WsgiStr {
    fn eq(&self, other: &String) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<WsgiStr> for String {
    fn eq(&self, other: &WsgiStr) -> bool {
        self.as_bytes() == other.0
    }
}

// Byte-string literals (`b"GET"`) are arrays, not slices.
impl<const N: usize> PartialEq<[u8; N]> for WsgiStr {
    fn eq(&self, other: &[u8; N]) -> bool {
        self.0 == other[..]
    }
}

impl<const N: usize> PartialEq<&[u8; N]> for WsgiStr {
    fn eq(&self, other: &&[u8; N]) -> bool {
        self.0 == other[..]
    }
}

impl PartialEq<WsgiStr> for [u8] {
    fn eq(&self, other: &WsgiStr) -> bool {
        *self == other.0
    }
}

impl PartialEq<WsgiStr> for &[u8] {
    fn eq(&self, other: &WsgiStr) -> bool {
        **self == other.0
    }
}

impl<const N: usize> PartialEq<WsgiStr> for [u8; N] {
    fn eq(&self, other: &WsgiStr) -> bool {
        self[..] == other.0
    }
}

impl<const N: usize> PartialEq<WsgiStr> for &[u8; N] {
    fn eq(&self, other: &WsgiStr) -> bool {
        self[..] == other.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin1_round_trip_keeps_every_byte() {
        let all: Vec<u8> = (0..=255).collect();
        let s = WsgiStr::from(all.clone());
        let native = s.to_latin1();
        assert_eq!(native.chars().count(), 256);
        assert_eq!(WsgiStr::from_latin1(&native).unwrap().as_bytes(), &all[..]);
        assert_eq!(s.to_string(), native);
    }

    #[test]
    fn from_latin1_rejects_chars_above_u_ff() {
        assert_eq!(WsgiStr::from_latin1("\u{100}"), None);
        assert_eq!(WsgiStr::from_latin1("é").unwrap().as_bytes(), b"\xe9");
    }

    #[test]
    fn str_comparison_is_by_utf8_bytes() {
        let s = WsgiStr::from("café");
        assert_eq!(s, "café");
        assert_eq!(s.to_str(), Some("café"));
        assert_eq!(s.to_latin1(), "caf\u{c3}\u{a9}");
    }

    #[test]
    fn compares_with_strings_and_bytes_both_ways_without_conversion() {
        let s = WsgiStr::from(&b"GET"[..]);
        let by_ref: &WsgiStr = &s;
        assert_eq!(s, "GET");
        assert_eq!("GET", s);
        assert_eq!(by_ref, "GET");
        assert_eq!(s, *"GET");
        assert_eq!(*"GET", s);
        assert_eq!(s, String::from("GET"));
        assert_eq!(String::from("GET"), s);
        assert_eq!(s, b"GET");
        assert_eq!(b"GET", s);
        assert_eq!(by_ref, b"GET");
        assert_eq!(s, *b"GET");
        assert_eq!(*b"GET", s);
        assert_eq!(s, &b"GET"[..]);
        assert_eq!(&b"GET"[..], s);
        assert_eq!(by_ref, &b"GET"[..]);
        assert_ne!(s, "POST");
        assert_ne!(s, b"POST");
        assert_ne!(s, &b"GE"[..]);
        let raw = WsgiStr::from(&b"/\xff"[..]);
        assert!(raw == b"/\xff" && raw != "/\u{ff}");
    }

    #[test]
    fn debug_escapes_non_ascii() {
        assert_eq!(format!("{:?}", WsgiStr::from(&b"a\xff"[..])), "\"a\\xff\"");
    }
}
