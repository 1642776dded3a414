//! The WebSocket handshake checks: any request head (as hyper would hand it over) is
//! accepted or refused with 400 or 426 without a panic; an accepted one has a 28-byte
//! accept key and token subprotocols; and the permessage-deflate answer the server would
//! send parses back, as an offer, to the parameters agreed (a round trip).

#![no_main]

use asgi_ws::deflate::{DeflateConfig, DeflateOffer, DeflateParams};
use asgi_ws::handshake::{self, UpgradeRequest};
use http::header::SEC_WEBSOCKET_EXTENSIONS;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Version};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut request = httparse::Request::new(&mut headers);
    if !matches!(request.parse(data), Ok(httparse::Status::Complete(_))) {
        return;
    }
    let method = request
        .method
        .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
        .unwrap_or(Method::GET);
    let version = match request.version {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    let mut map = HeaderMap::new();
    for header in request.headers.iter() {
        // hyper refuses a request whose header names or values it cannot hold.
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(header.name.as_bytes()),
            HeaderValue::from_bytes(header.value),
        ) else {
            return;
        };
        map.append(name, value);
    }

    let upgrade = handshake::is_websocket_upgrade(&map);
    match UpgradeRequest::parse(&method, version, &map) {
        Ok(accepted) => {
            assert!(upgrade);
            let key = accepted
                .accept_key()
                .expect("an HTTP/1.1 handshake has a key");
            assert_eq!(key.len(), 28);
            check_accepted(&accepted);
        }
        Err(error) => {
            let status = error.status().as_u16();
            assert!(status == 400 || status == 426, "{error}: {status}");
            let _ = error.response_headers();
        }
    }
    match UpgradeRequest::extended_connect(&map) {
        Ok(accepted) => {
            assert!(accepted.accept_key().is_none());
            check_accepted(&accepted);
        }
        Err(error) => {
            let status = error.status().as_u16();
            assert!(status == 400 || status == 426, "{error}: {status}");
        }
    }
});

fn check_accepted(accepted: &UpgradeRequest) {
    for subprotocol in accepted.subprotocols() {
        assert!(!subprotocol.is_empty());
        assert!(
            subprotocol
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b"\"(),/:;<=>?@[\\]{}".contains(&b)),
            "{subprotocol:?} is not a token"
        );
    }
    for offer in accepted.deflate_offers() {
        for bits in [offer.server_max_window_bits, offer.client_max_window_bits]
            .into_iter()
            .flatten()
        {
            assert!((8..=15).contains(&bits), "window bits {bits}");
        }
    }
    let mut config = DeflateConfig::default();
    for (no_takeover, window) in [(false, 15), (true, 8), (false, 11)] {
        config.server_no_context_takeover = no_takeover;
        config.client_no_context_takeover = no_takeover;
        config.server_max_window_bits = window;
        let Some(params) = accepted.negotiate_deflate(Some(&config)) else {
            assert!(accepted.deflate_offers().is_empty());
            continue;
        };
        round_trip(&params);
    }
    assert!(accepted.negotiate_deflate(None).is_none());
}

/// The response header, read back as an offer, says what the parameters say.
fn round_trip(params: &DeflateParams) {
    let mut headers = HeaderMap::new();
    headers.insert(SEC_WEBSOCKET_EXTENSIONS, params.response_header());
    let offers = DeflateOffer::parse(&headers);
    assert_eq!(offers.len(), 1, "{:?}", params.response_header());
    let offer = offers[0];
    assert_eq!(
        offer.server_no_context_takeover,
        params.server_no_context_takeover()
    );
    assert_eq!(
        offer.client_no_context_takeover,
        params.client_no_context_takeover()
    );
    assert_eq!(
        offer.server_max_window_bits,
        params.server_max_window_bits()
    );
    assert_eq!(offer.client_max_window_bits, None);
}
