//! The opening handshake (RFC 6455 4.2): validating an upgrade request, the
//! `Sec-WebSocket-Accept` value, subprotocols, and the answers for a bad request.
//!
//! A server calls [`UpgradeRequest::from_parts`] on a request that
//! [`is_websocket_upgrade`]. On `Err` it answers with [`HandshakeError::status`] and
//! [`HandshakeError::response_headers`]; on `Ok` it builds the
//! [`WebSocketScope`](asgi_core::WebSocketScope) and calls
//! [`start`](crate::start), which answers the handshake with the app.
//!
//! # What a bad request gets
//!
//! | Problem | Status |
//! |---|---|
//! | method other than `GET`, HTTP/1.0, HTTP/2 or later | 400 |
//! | no `Upgrade: websocket`, no `upgrade` token in `Connection` | 400 |
//! | no `Sec-WebSocket-Key`, or not the base64 form of 16 bytes, or repeated | 400 |
//! | a `Sec-WebSocket-Protocol` element that is not a token | 400 |
//! | no `Sec-WebSocket-Version` | 400, with `Sec-WebSocket-Version: 13` |
//! | a `Sec-WebSocket-Version` other than 13 | 426 Upgrade Required, with `Sec-WebSocket-Version: 13` (RFC 6455 4.4) |
//!
//! WebSockets over HTTP/2 (RFC 8441, extended CONNECT) are not supported: an HTTP/2 request
//! gets 400.

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode, Version};

use crate::deflate::{DeflateConfig, DeflateOffer, DeflateParams, is_tchar};

/// The only WebSocket protocol version (RFC 6455 4.1), as `Sec-WebSocket-Version` carries it.
pub const WEBSOCKET_VERSION: &str = "13";

/// Why an upgrade request is not a valid WebSocket handshake. The server answers it with
/// [`status`](HandshakeError::status) and [`response_headers`](HandshakeError::response_headers);
/// the message is for the response body and logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The request method is not `GET`.
    #[error("a WebSocket handshake must use GET, not {0}")]
    MethodNotGet(Method),
    /// The request is not HTTP/1.1: the `Upgrade` mechanism needs it.
    #[error("a WebSocket handshake needs HTTP/1.1, not {0:?}")]
    HttpVersion(Version),
    /// No `Upgrade` header with the `websocket` token.
    #[error("missing `Upgrade: websocket` header")]
    MissingUpgrade,
    /// No `upgrade` token in the `Connection` header.
    #[error("missing `upgrade` token in the `Connection` header")]
    MissingConnectionUpgrade,
    /// No `Sec-WebSocket-Version` header.
    #[error("missing `Sec-WebSocket-Version` header")]
    MissingVersion,
    /// A `Sec-WebSocket-Version` other than 13.
    #[error("unsupported WebSocket version {0:?}: this server speaks version 13")]
    UnsupportedVersion(String),
    /// No `Sec-WebSocket-Key` header.
    #[error("missing `Sec-WebSocket-Key` header")]
    MissingKey,
    /// A `Sec-WebSocket-Key` that is not the base64 form of 16 bytes, or more than one.
    #[error("invalid `Sec-WebSocket-Key`: it must be the base64 form of 16 bytes, sent once")]
    InvalidKey,
    /// A `Sec-WebSocket-Protocol` element that is not a token.
    #[error("invalid `Sec-WebSocket-Protocol`: each subprotocol must be a token")]
    InvalidSubprotocol,
}

impl HandshakeError {
    /// The HTTP status to answer with: 426 for an unsupported version, 400 otherwise.
    pub fn status(&self) -> StatusCode {
        match self {
            HandshakeError::UnsupportedVersion(_) => StatusCode::UPGRADE_REQUIRED,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// The headers to answer with: `Sec-WebSocket-Version: 13` when the version was missing or
    /// unsupported (RFC 6455 4.4), nothing otherwise.
    pub fn response_headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if matches!(
            self,
            HandshakeError::MissingVersion | HandshakeError::UnsupportedVersion(_)
        ) {
            headers.insert(
                header::SEC_WEBSOCKET_VERSION,
                HeaderValue::from_static(WEBSOCKET_VERSION),
            );
        }
        headers
    }
}

/// A valid WebSocket upgrade request: what the server needs to answer it.
///
/// # Example
///
/// ```
/// use asgi_ws::handshake::UpgradeRequest;
/// use http::Request;
///
/// let request = Request::get("/chat")
///     .header("upgrade", "websocket")
///     .header("connection", "keep-alive, Upgrade")
///     .header("sec-websocket-version", "13")
///     .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
///     .header("sec-websocket-protocol", "chat, superchat")
///     .body(())
///     .unwrap();
/// let (parts, ()) = request.into_parts();
/// let upgrade = UpgradeRequest::from_parts(&parts).unwrap();
/// assert_eq!(upgrade.accept_key(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
/// assert_eq!(upgrade.subprotocols(), ["chat", "superchat"]);
/// ```
#[derive(Debug, Clone)]
pub struct UpgradeRequest {
    accept_key: HeaderValue,
    subprotocols: Vec<String>,
    deflate_offers: Vec<DeflateOffer>,
}

impl UpgradeRequest {
    /// Validates the head of an HTTP request as a WebSocket handshake.
    ///
    /// # Errors
    ///
    /// A [`HandshakeError`] naming the first problem found; see the module docs for the
    /// answer each one gets.
    pub fn from_parts(parts: &http::request::Parts) -> Result<Self, HandshakeError> {
        Self::parse(&parts.method, parts.version, &parts.headers)
    }

    /// Validates a request's method, HTTP version and headers as a WebSocket handshake.
    ///
    /// # Errors
    ///
    /// As [`from_parts`](UpgradeRequest::from_parts).
    pub fn parse(
        method: &Method,
        version: Version,
        headers: &HeaderMap,
    ) -> Result<Self, HandshakeError> {
        if method != Method::GET {
            return Err(HandshakeError::MethodNotGet(method.clone()));
        }
        if version != Version::HTTP_11 {
            return Err(HandshakeError::HttpVersion(version));
        }
        if !is_websocket_upgrade(headers) {
            return Err(HandshakeError::MissingUpgrade);
        }
        if !has_token(headers, header::CONNECTION, "upgrade") {
            return Err(HandshakeError::MissingConnectionUpgrade);
        }
        let mut versions = headers.get_all(header::SEC_WEBSOCKET_VERSION).iter();
        match (versions.next(), versions.next()) {
            (None, _) => return Err(HandshakeError::MissingVersion),
            (Some(v), None) if v.as_bytes().trim_ascii() == WEBSOCKET_VERSION.as_bytes() => {}
            (Some(v), _) => {
                return Err(HandshakeError::UnsupportedVersion(
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                ));
            }
        }
        let mut keys = headers.get_all(header::SEC_WEBSOCKET_KEY).iter();
        let key = match (keys.next(), keys.next()) {
            (None, _) => return Err(HandshakeError::MissingKey),
            (Some(key), None) => key.as_bytes().trim_ascii(),
            (Some(_), Some(_)) => return Err(HandshakeError::InvalidKey),
        };
        if !matches!(data_encoding::BASE64.decode(key), Ok(bytes) if bytes.len() == 16) {
            return Err(HandshakeError::InvalidKey);
        }
        let accept_key = HeaderValue::try_from(accept_key(key))
            // Base64 output is ASCII letters, digits, '+', '/' and '=': a valid header value.
            .expect("base64 is a valid header value");
        Ok(UpgradeRequest {
            accept_key,
            subprotocols: parse_subprotocols(headers)?,
            deflate_offers: DeflateOffer::parse(headers),
        })
    }

    /// The `Sec-WebSocket-Accept` value for the 101 response.
    pub fn accept_key(&self) -> &HeaderValue {
        &self.accept_key
    }

    /// The subprotocols the client offered, in its order: what the scope's `subprotocols`
    /// holds.
    pub fn subprotocols(&self) -> &[String] {
        &self.subprotocols
    }

    /// The client's valid permessage-deflate offers, in its order of preference.
    pub fn deflate_offers(&self) -> &[DeflateOffer] {
        &self.deflate_offers
    }

    /// The permessage-deflate parameters to use: `None` when compression is disabled
    /// (`config` is `None`) or the client made no valid offer.
    pub fn negotiate_deflate(&self, config: Option<&DeflateConfig>) -> Option<DeflateParams> {
        config.and_then(|config| DeflateParams::negotiate(&self.deflate_offers, config))
    }
}

/// True when `headers` ask for a WebSocket (an `Upgrade` header with the `websocket` token,
/// in any case): the request is a handshake attempt, to validate with
/// [`UpgradeRequest::from_parts`] rather than serve as plain HTTP.
pub fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    has_token(headers, header::UPGRADE, "websocket")
}

/// The `Sec-WebSocket-Accept` value for a `Sec-WebSocket-Key` (RFC 6455 4.2.2): the base64
/// SHA-1 of the key and the protocol's GUID.
///
/// # Example
///
/// ```
/// // The example of RFC 6455 1.3.
/// assert_eq!(
///     asgi_ws::handshake::accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
///     "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
/// );
/// ```
pub fn accept_key(key: &[u8]) -> String {
    tungstenite::handshake::derive_accept_key(key)
}

/// The subprotocols of every `Sec-WebSocket-Protocol` line, in order: comma-separated lists
/// and repeated lines both work, whitespace around elements and empty elements are ignored.
///
/// # Errors
///
/// [`HandshakeError::InvalidSubprotocol`] when an element is not a token (RFC 6455 4.1).
///
/// # Example
///
/// ```
/// use asgi_ws::handshake::parse_subprotocols;
/// use http::{HeaderMap, HeaderValue};
///
/// let mut headers = HeaderMap::new();
/// headers.append("sec-websocket-protocol", HeaderValue::from_static("graphql-ws, json"));
/// headers.append("sec-websocket-protocol", HeaderValue::from_static("mqtt"));
/// assert_eq!(parse_subprotocols(&headers).unwrap(), ["graphql-ws", "json", "mqtt"]);
/// ```
pub fn parse_subprotocols(headers: &HeaderMap) -> Result<Vec<String>, HandshakeError> {
    let mut subprotocols = Vec::new();
    for value in headers.get_all(header::SEC_WEBSOCKET_PROTOCOL) {
        for element in value.as_bytes().split(|&b| b == b',') {
            let element = element.trim_ascii();
            if element.is_empty() {
                continue;
            }
            if !element.iter().all(|&b| is_tchar(b)) {
                return Err(HandshakeError::InvalidSubprotocol);
            }
            subprotocols.push(String::from_utf8_lossy(element).into_owned());
        }
    }
    Ok(subprotocols)
}

/// The scope's `scheme` for a WebSocket: `"wss"` over TLS, `"ws"` otherwise.
pub fn scheme(tls: bool) -> &'static str {
    if tls { "wss" } else { "ws" }
}

/// True when a comma-separated header `name` holds `token` (ASCII case-insensitive).
fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|value| {
        value
            .as_bytes()
            .split(|&b| b == b',')
            .any(|element| element.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        h.insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        h.insert(
            header::SEC_WEBSOCKET_KEY,
            HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="),
        );
        h
    }

    fn check(headers: &HeaderMap) -> Result<UpgradeRequest, HandshakeError> {
        UpgradeRequest::parse(&Method::GET, Version::HTTP_11, headers)
    }

    #[test]
    fn valid_request_gives_the_rfc_accept_key() {
        let upgrade = check(&valid()).unwrap();
        assert_eq!(upgrade.accept_key(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert!(upgrade.subprotocols().is_empty());
        assert!(upgrade.deflate_offers().is_empty());
    }

    #[test]
    fn header_tokens_match_in_any_case_and_in_lists() {
        let mut h = valid();
        h.insert(header::UPGRADE, HeaderValue::from_static("WebSocket"));
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, UPGRADE"),
        );
        assert!(check(&h).is_ok());
    }

    #[test]
    fn post_is_rejected_with_400() {
        let err = UpgradeRequest::parse(&Method::POST, Version::HTTP_11, &valid()).unwrap_err();
        assert_eq!(err, HandshakeError::MethodNotGet(Method::POST));
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn http_10_and_http_2_are_rejected_with_400() {
        for version in [Version::HTTP_10, Version::HTTP_2] {
            let err = UpgradeRequest::parse(&Method::GET, version, &valid()).unwrap_err();
            assert_eq!(err, HandshakeError::HttpVersion(version));
            assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        }
    }

    #[test]
    fn missing_upgrade_is_rejected_with_400() {
        let mut h = valid();
        h.insert(header::UPGRADE, HeaderValue::from_static("h2c"));
        assert_eq!(check(&h).unwrap_err(), HandshakeError::MissingUpgrade);
        h.remove(header::UPGRADE);
        let err = check(&h).unwrap_err();
        assert_eq!(err, HandshakeError::MissingUpgrade);
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        assert!(err.response_headers().is_empty());
    }

    #[test]
    fn missing_connection_upgrade_is_rejected_with_400() {
        let mut h = valid();
        h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
        let err = check(&h).unwrap_err();
        assert_eq!(err, HandshakeError::MissingConnectionUpgrade);
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn unsupported_version_gets_426_naming_version_13() {
        let mut h = valid();
        h.insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("8"));
        let err = check(&h).unwrap_err();
        assert_eq!(err, HandshakeError::UnsupportedVersion("8".into()));
        assert_eq!(err.status(), StatusCode::UPGRADE_REQUIRED);
        assert_eq!(err.response_headers()["sec-websocket-version"], "13");
    }

    #[test]
    fn missing_version_gets_400_naming_version_13() {
        let mut h = valid();
        h.remove(header::SEC_WEBSOCKET_VERSION);
        let err = check(&h).unwrap_err();
        assert_eq!(err, HandshakeError::MissingVersion);
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        assert_eq!(err.response_headers()["sec-websocket-version"], "13");
    }

    #[test]
    fn missing_key_is_rejected_with_400() {
        let mut h = valid();
        h.remove(header::SEC_WEBSOCKET_KEY);
        assert_eq!(check(&h).unwrap_err(), HandshakeError::MissingKey);
    }

    #[test]
    fn keys_that_are_not_16_base64_bytes_are_rejected() {
        for bad in [
            "",
            "not base64!",
            "dGhlIHNhbXBsZSBub25jZQ",    // no padding
            "dGhlIHNhbXBsZSBub25jZXg=",  // 17 bytes
            "dGhlIHNhbXBsZSBub25j",      // 15 bytes
            "dGhlIHNhbXBsZSBub25jZQ==x", // trailing garbage
        ] {
            let mut h = valid();
            h.insert(header::SEC_WEBSOCKET_KEY, HeaderValue::from_static(bad));
            let err = check(&h).unwrap_err();
            assert_eq!(err, HandshakeError::InvalidKey, "{bad:?}");
            assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        }
    }

    #[test]
    fn repeated_key_is_rejected() {
        let mut h = valid();
        h.append(
            header::SEC_WEBSOCKET_KEY,
            HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="),
        );
        assert_eq!(check(&h).unwrap_err(), HandshakeError::InvalidKey);
    }

    #[test]
    fn subprotocols_from_lists_and_repeated_headers_keep_order() {
        let mut h = valid();
        h.append(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(" chat ,, v2.chat"),
        );
        h.append(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("superchat"),
        );
        assert_eq!(
            check(&h).unwrap().subprotocols(),
            ["chat", "v2.chat", "superchat"]
        );
    }

    #[test]
    fn subprotocol_that_is_not_a_token_is_rejected() {
        let mut h = valid();
        h.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("chat, two words"),
        );
        let err = check(&h).unwrap_err();
        assert_eq!(err, HandshakeError::InvalidSubprotocol);
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn deflate_offers_are_parsed_and_negotiated() {
        let mut h = valid();
        h.insert(
            header::SEC_WEBSOCKET_EXTENSIONS,
            HeaderValue::from_static("permessage-deflate; client_max_window_bits"),
        );
        let upgrade = check(&h).unwrap();
        assert_eq!(upgrade.deflate_offers().len(), 1);
        assert!(
            upgrade
                .negotiate_deflate(Some(&DeflateConfig::default()))
                .is_some()
        );
        assert!(upgrade.negotiate_deflate(None).is_none());
    }

    #[test]
    fn upgrade_detection_looks_at_the_upgrade_header_only() {
        assert!(is_websocket_upgrade(&valid()));
        let mut h = HeaderMap::new();
        h.insert(header::UPGRADE, HeaderValue::from_static("h2c, WebSocket"));
        assert!(is_websocket_upgrade(&h));
        assert!(!is_websocket_upgrade(&HeaderMap::new()));
    }

    #[test]
    fn scheme_follows_tls() {
        assert_eq!(scheme(true), "wss");
        assert_eq!(scheme(false), "ws");
    }
}
