//! How byte values appear in the serde form of scopes and events.
//!
//! ASGI's byte strings (bodies, `raw_path`, `query_string`, header names and values) serialize
//! as strings with one char per byte, U+0000 to U+00FF (latin-1, as PEP 3333 does for WSGI):
//! lossless, readable for ASCII, and the same text a Python ASGI server would show for
//! `bytes.decode("latin-1")`. Deserializing also accepts a list of integers 0-255.
//! Headers are a list of `[name, value]` pairs in order.

use std::fmt;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeSeq, SerializeTuple, Serializer};
use serde::{Deserialize, Serialize};

/// Renders bytes as a latin-1 string: each byte becomes the char with that code point.
pub(crate) fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

fn from_latin1<E: de::Error>(s: &str) -> Result<Vec<u8>, E> {
    s.chars()
        .map(|c| {
            u8::try_from(u32::from(c)).map_err(|_| {
                E::custom(format!(
                    "character {c:?} is not latin-1: byte strings are one char per byte"
                ))
            })
        })
        .collect()
}

struct BytesVisitor;

impl<'de> Visitor<'de> for BytesVisitor {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a latin-1 string or a list of bytes")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<u8>, E> {
        from_latin1(v)
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
        Ok(v.to_vec())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(b) = seq.next_element::<u8>()? {
            out.push(b);
        }
        Ok(out)
    }
}

fn deserialize_byte_vec<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    d.deserialize_any(BytesVisitor)
}

/// `Bytes` as a latin-1 string.
pub(crate) mod bytes_latin1 {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(v: &Bytes, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&latin1(v))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        deserialize_byte_vec(d).map(Bytes::from)
    }
}

/// `Option<Bytes>` as a latin-1 string or null.
pub(crate) mod opt_bytes_latin1 {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(v: &Option<Bytes>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_some(&latin1(b)),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Bytes>, D::Error> {
        struct Opt;
        impl<'de> Visitor<'de> for Opt {
            type Value = Option<Bytes>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("null, a latin-1 string or a list of bytes")
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
                deserialize_byte_vec(d).map(|v| Some(Bytes::from(v)))
            }
        }
        d.deserialize_option(Opt)
    }
}

struct Latin1<'a>(&'a [u8]);

impl Serialize for Latin1<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&latin1(self.0))
    }
}

struct RawBytes(Vec<u8>);

impl<'de> Deserialize<'de> for RawBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_byte_vec(d).map(RawBytes)
    }
}

/// `HeaderMap` as a list of `[name, value]` pairs, in order, duplicates kept.
pub(crate) mod headers {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(map: &HeaderMap, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(map.len()))?;
        for (name, value) in map {
            seq.serialize_element(&(Latin1(name.as_str().as_bytes()), Latin1(value.as_bytes())))?;
        }
        seq.end()
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<HeaderMap, D::Error> {
        let pairs = Vec::<(RawBytes, RawBytes)>::deserialize(d)?;
        let mut map = HeaderMap::with_capacity(pairs.len());
        for (name, value) in pairs {
            let name = HeaderName::from_bytes(&name.0).map_err(|_| {
                de::Error::custom(format!("invalid header name {:?}", latin1(&name.0)))
            })?;
            let value = HeaderValue::from_bytes(&value.0)
                .map_err(|_| de::Error::custom(format!("invalid value for header {name}")))?;
            map.append(name, value);
        }
        Ok(map)
    }
}

/// `StatusCode` as an integer.
pub(crate) mod status {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(v: &StatusCode, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u16(v.as_u16())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<StatusCode, D::Error> {
        let code = u16::deserialize(d)?;
        StatusCode::from_u16(code)
            .map_err(|_| de::Error::custom(format!("invalid HTTP status code {code}")))
    }
}

/// `http::Method` as its uppercase name.
pub(crate) mod method {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(v: &http::Method, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v.as_str())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<http::Method, D::Error> {
        let name = String::deserialize(d)?;
        http::Method::from_bytes(name.as_bytes())
            .map_err(|_| de::Error::custom(format!("invalid HTTP method {name:?}")))
    }
}

/// `Option<SocketAddr>` as `[host, port]` or null.
pub(crate) mod opt_socket_addr {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        v: &Option<SocketAddr>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            Some(addr) => {
                let mut t = s.serialize_tuple(2)?;
                t.serialize_element(&addr.ip().to_string())?;
                t.serialize_element(&addr.port())?;
                t.end()
            }
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<SocketAddr>, D::Error> {
        let pair = Option::<(String, u16)>::deserialize(d)?;
        pair.map(|(host, port)| {
            host.parse::<std::net::IpAddr>()
                .map(|ip| SocketAddr::new(ip, port))
                .map_err(|_| de::Error::custom(format!("invalid IP address {host:?}")))
        })
        .transpose()
    }
}
