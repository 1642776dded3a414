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
//! Over HTTP/2 a WebSocket is an extended CONNECT (RFC 8441): `:method CONNECT` and
//! `:protocol websocket`, no key, no `Upgrade`. A server that enabled it validates such a
//! request with [`UpgradeRequest::extended_connect`] (the same version and subprotocol rules
//! apply) and answers `200 OK` instead of 101. A `GET` over HTTP/2 asking to upgrade gets 400.

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
    /// The request is not HTTP/1.1: the `Upgrade` mechanism needs it (over HTTP/2, see
    /// [`UpgradeRequest::extended_connect`]).
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
/// assert_eq!(upgrade.accept_key().unwrap(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
/// assert_eq!(upgrade.subprotocols(), ["chat", "superchat"]);
/// ```
#[derive(Debug, Clone)]
pub struct UpgradeRequest {
    /// `None` for an HTTP/2 extended CONNECT, which has no key.
    accept_key: Option<HeaderValue>,
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
        check_version(headers)?;
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
            accept_key: Some(accept_key),
            subprotocols: parse_subprotocols(headers)?,
            deflate_offers: DeflateOffer::parse(headers),
        })
    }

    /// Validates the headers of an HTTP/2 WebSocket request (RFC 8441): an extended CONNECT
    /// whose `:protocol` is `websocket`. The server checks the method, the HTTP version and
    /// `:protocol` (pseudo-headers are not in the header map: hyper puts `:protocol` in the
    /// request's extensions); this checks `Sec-WebSocket-Version` and the subprotocols, and
    /// reads the permessage-deflate offers.
    ///
    /// There is no key: the server answers `200 OK` (not 101), and
    /// [`Accepted::response_headers`](crate::Accepted::response_headers) then holds no
    /// `Upgrade`, `Connection` or `Sec-WebSocket-Accept`.
    ///
    /// # Errors
    ///
    /// [`HandshakeError::MissingVersion`], [`HandshakeError::UnsupportedVersion`] and
    /// [`HandshakeError::InvalidSubprotocol`], answered as over HTTP/1.1.
    ///
    /// # Example
    ///
    /// ```
    /// use asgi_ws::handshake::UpgradeRequest;
    /// use http::{HeaderMap, HeaderValue};
    ///
    /// let mut headers = HeaderMap::new();
    /// headers.insert("sec-websocket-version", HeaderValue::from_static("13"));
    /// headers.insert("sec-websocket-protocol", HeaderValue::from_static("chat"));
    /// let upgrade = UpgradeRequest::extended_connect(&headers).unwrap();
    /// assert_eq!(upgrade.accept_key(), None);
    /// assert_eq!(upgrade.subprotocols(), ["chat"]);
    /// ```
    pub fn extended_connect(headers: &HeaderMap) -> Result<Self, HandshakeError> {
        check_version(headers)?;
        Ok(UpgradeRequest {
            accept_key: None,
            subprotocols: parse_subprotocols(headers)?,
            deflate_offers: DeflateOffer::parse(headers),
        })
    }

    /// The `Sec-WebSocket-Accept` value for the 101 response; `None` for an HTTP/2 extended
    /// CONNECT, which has no key.
    pub fn accept_key(&self) -> Option<&HeaderValue> {
        self.accept_key.as_ref()
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

/// Exactly one `Sec-WebSocket-Version`, and it is 13.
fn check_version(headers: &HeaderMap) -> Result<(), HandshakeError> {
    let mut versions = headers.get_all(header::SEC_WEBSOCKET_VERSION).iter();
    match (versions.next(), versions.next()) {
        (None, _) => Err(HandshakeError::MissingVersion),
        (Some(v), None) if v.as_bytes().trim_ascii() == WEBSOCKET_VERSION.as_bytes() => Ok(()),
        (Some(v), _) => Err(HandshakeError::UnsupportedVersion(
            String::from_utf8_lossy(v.as_bytes()).into_owned(),
        )),
    }
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
