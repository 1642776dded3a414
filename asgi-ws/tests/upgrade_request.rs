//! Validating upgrade requests as a server would: every rejection with its status and
//! headers, subprotocol lists, and the accept key.

use asgi_ws::deflate::DeflateConfig;
use asgi_ws::handshake::{
    HandshakeError, UpgradeRequest, is_websocket_upgrade, parse_subprotocols, scheme,
};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode, Version};

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
    assert_eq!(
        upgrade.accept_key().unwrap(),
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
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

#[test]
fn request_parts_from_a_server_validate() {
    let request = http::Request::get("/chat")
        .header("upgrade", "websocket")
        .header("connection", "keep-alive, Upgrade")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "x3JJHMbDL1EzLkh9GBhXDw==")
        .body(())
        .unwrap();
    let (parts, ()) = request.into_parts();
    let upgrade = UpgradeRequest::from_parts(&parts).unwrap();
    // RFC 6455 4.2.2 example key pair, computed independently.
    assert_eq!(
        upgrade.accept_key().unwrap(),
        "HSmrc0sMlYUkAGmm5OPpG2HaGWk="
    );
}

#[test]
fn subprotocol_parsing_on_its_own_reads_every_line() {
    let mut h = HeaderMap::new();
    h.append(
        header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static("a,b"),
    );
    h.append(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(""));
    h.append(
        header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static("c"),
    );
    assert_eq!(parse_subprotocols(&h).unwrap(), ["a", "b", "c"]);
    assert_eq!(
        parse_subprotocols(&HeaderMap::new()).unwrap(),
        Vec::<String>::new()
    );
}

fn h2_headers(version: &'static str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        header::SEC_WEBSOCKET_VERSION,
        HeaderValue::from_static(version),
    );
    h
}

#[test]
fn extended_connect_needs_no_key_and_has_no_accept_key() {
    let mut h = h2_headers("13");
    h.insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static("chat, json"),
    );
    let upgrade = UpgradeRequest::extended_connect(&h).unwrap();
    assert_eq!(upgrade.accept_key(), None);
    assert_eq!(upgrade.subprotocols(), ["chat", "json"]);
}

#[test]
fn extended_connect_with_another_version_is_rejected_with_426() {
    let err = UpgradeRequest::extended_connect(&h2_headers("8")).unwrap_err();
    assert_eq!(err, HandshakeError::UnsupportedVersion("8".to_owned()));
    assert_eq!(err.status(), StatusCode::UPGRADE_REQUIRED);
    assert_eq!(err.response_headers()[header::SEC_WEBSOCKET_VERSION], "13");
}

#[test]
fn extended_connect_without_version_is_rejected_with_400() {
    let err = UpgradeRequest::extended_connect(&HeaderMap::new()).unwrap_err();
    assert_eq!(err, HandshakeError::MissingVersion);
    assert_eq!(err.status(), StatusCode::BAD_REQUEST);
}
