//! Request targets as ASGI wants them: `path` percent-decoded, `raw_path` and `query_string`
//! as the raw bytes.

use std::borrow::Cow;

use bytes::Bytes;

/// The parts of a request target (`/a%20b?x=1`) that go into a scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `path`: percent-decoded, UTF-8. Bytes that do not decode to UTF-8 become U+FFFD, as
    /// Python's `urllib.parse.unquote` (what uvicorn uses) does; `raw_path` keeps them.
    pub path: String,
    /// `raw_path`: the path exactly as it came, without the query.
    pub raw_path: Bytes,
    /// `query_string`: the bytes after the first `?`, not decoded; empty when there is none.
    pub query_string: Bytes,
}

/// Splits a request target into `path`, `raw_path` and `query_string`.
///
/// # Example
///
/// ```
/// use asgi_http::path::split_target;
///
/// let t = split_target(b"/caf%C3%A9/a%2Fb?q=%20x&y");
/// assert_eq!(t.path, "/caf\u{e9}/a/b");
/// assert_eq!(&t.raw_path[..], b"/caf%C3%A9/a%2Fb");
/// assert_eq!(&t.query_string[..], b"q=%20x&y");
///
/// // Invalid UTF-8 after decoding does not panic: it becomes U+FFFD.
/// assert_eq!(split_target(b"/%FF").path, "/\u{fffd}");
/// ```
pub fn split_target(target: &[u8]) -> Target {
    let (raw_path, query) = match target.iter().position(|&b| b == b'?') {
        Some(i) => (&target[..i], &target[i + 1..]),
        None => (target, &[][..]),
    };
    Target {
        path: decode_path(raw_path),
        raw_path: bytes_of(raw_path),
        query_string: bytes_of(query),
    }
}

/// [`split_target`] for a target that is already a string (a parsed URI's): the same parts,
/// without checking again that a path with no escapes is UTF-8.
pub(crate) fn split_str_target(target: &str) -> Target {
    // One pass over the path finds both its end and whether it has escapes: a request's path
    // is short, and two searches cost more than one.
    let bytes = target.as_bytes();
    let mut escaped = false;
    let mut end = bytes.len();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'?' {
            end = i;
            break;
        }
        escaped |= b == b'%';
    }
    let (raw_path, query) = match target.get(end + 1..) {
        Some(query) => (&target[..end], query),
        None => (target, ""),
    };
    let path = if escaped {
        decode_path(raw_path.as_bytes())
    } else {
        raw_path.to_owned()
    };
    Target {
        path,
        raw_path: bytes_of(raw_path.as_bytes()),
        query_string: bytes_of(query.as_bytes()),
    }
}

/// `bytes` copied into a new buffer; none for no bytes (most requests have no query), where
/// `Bytes::copy_from_slice` still goes through a vector's conversion.
fn bytes_of(bytes: &[u8]) -> Bytes {
    if bytes.is_empty() {
        Bytes::new()
    } else {
        Bytes::copy_from_slice(bytes)
    }
}

/// Percent-decodes a raw path into a UTF-8 string; invalid sequences become U+FFFD.
pub fn decode_path(raw_path: &[u8]) -> String {
    // Fast path: most paths have no escapes and are ASCII.
    if !raw_path.contains(&b'%') {
        if let Ok(s) = std::str::from_utf8(raw_path) {
            return s.to_owned();
        }
    }
    let decoded: Cow<'_, [u8]> = percent_encoding::percent_decode(raw_path).into();
    String::from_utf8_lossy(&decoded).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_string_target_splits_as_its_bytes_do() {
        for target in [
            "/",
            "/a/b",
            "/a?x=1",
            "/a?",
            "/?x=1?y=2",
            "/plain?q=%20",
            "/caf%C3%A9/a%2Fb?q=%20x&y",
            "/%FF",
            "/caf\u{e9}",
        ] {
            assert_eq!(
                split_str_target(target),
                split_target(target.as_bytes()),
                "{target}"
            );
        }
    }
}
