//! The proxy-headers parser: for any trusted-proxy list, peer and `Forwarded` /
//! `X-Forwarded-For` / `X-Forwarded-Proto` headers, resolving does not panic; a peer that
//! is not trusted changes nothing; a forwarded host is a valid authority; the scheme written
//! into a scope is one of the four; and every node read from `X-Forwarded-For`, written back
//! in RFC 7239 form, reads back to itself (a round trip).

#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use asgi_core::{HttpScope, Scope, WebSocketScope};
use asgi_fuzz::Input;
use asgi_http::middleware::proxy_headers::{
    Forwarding, Node, TrustedProxies, forwarded_elements, x_forwarded_for_entry,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use libfuzzer_sys::fuzz_target;

const NAMES: [&str; 5] = [
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-proto",
    "host",
    "x-real-ip",
];

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let flags = input.byte();
    let Ok(list) = std::str::from_utf8(input.piece()) else {
        return;
    };
    let trusted = TrustedProxies::from_str(list).unwrap_or_default();
    let peer = match flags & 0x03 {
        0 => None,
        1 => Some(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::from(u32::from(input.u16()) | 0x7f00_0000)),
            input.u16(),
        )),
        _ => Some(SocketAddr::new(
            IpAddr::V6(Ipv6Addr::from(u128::from(input.u16()))),
            input.u16(),
        )),
    };
    let mut headers = HeaderMap::new();
    while !input.is_empty() {
        let name = HeaderName::from_static(NAMES[usize::from(input.byte()) % NAMES.len()]);
        let Ok(value) = HeaderValue::from_bytes(input.piece()) else {
            return;
        };
        headers.append(name, value);
    }

    let forwarding = trusted.resolve(peer, &headers);
    if !trusted.trusts(peer.map(|p| p.ip())) {
        assert_eq!(
            forwarding,
            Forwarding::default(),
            "an untrusted peer changed something"
        );
    }
    if let Some(host) = &forwarding.host {
        let host = host.to_str().expect("a forwarded host is ASCII");
        assert!(
            http::uri::Authority::from_str(host).is_ok(),
            "host {host:?}"
        );
    }
    for value in headers.get_all("forwarded") {
        // The iteration ends, and after an error it stops.
        let elements: Vec<_> = forwarded_elements(value.as_bytes()).collect();
        assert!(elements.len() <= value.len() + 1);
        if let Some(error) = elements.iter().position(Result::is_err) {
            assert_eq!(error, elements.len() - 1);
        }
    }
    for value in headers.get_all("x-forwarded-for") {
        for entry in value.as_bytes().split(|&b| b == b',') {
            if let Ok(node) = x_forwarded_for_entry(entry) {
                round_trip(node);
            }
        }
    }

    let mut http = Scope::from(HttpScope::new(Method::GET, "/"));
    forwarding.clone().apply(&mut http);
    let mut websocket = Scope::from(WebSocketScope::new("/"));
    forwarding.clone().apply(&mut websocket);
    match (&http, &websocket) {
        (Scope::Http(h), Scope::WebSocket(w)) => {
            assert!(matches!(&*h.scheme, "http" | "https"), "{}", h.scheme);
            assert!(matches!(&*w.scheme, "ws" | "wss"), "{}", w.scheme);
            if let Some(client) = forwarding.client {
                assert_eq!(h.client, client);
                assert_eq!(w.client, client);
            }
        }
        _ => unreachable!(),
    }
});

/// Writes `node` as RFC 7239 does and reads it back.
fn round_trip(node: Node) {
    let text = match node {
        Node::Addr {
            ip: IpAddr::V4(ip),
            port: None,
        } => ip.to_string(),
        Node::Addr {
            ip: IpAddr::V4(ip),
            port: Some(port),
        } => format!("{ip}:{port}"),
        Node::Addr {
            ip: IpAddr::V6(ip),
            port: None,
        } => format!("[{ip}]"),
        Node::Addr {
            ip: IpAddr::V6(ip),
            port: Some(port),
        } => format!("[{ip}]:{port}"),
        Node::Unknown => "unknown".to_owned(),
        Node::Obfuscated => "_hidden".to_owned(),
        _ => return,
    };
    assert_eq!(Node::parse(&text), Ok(node), "{text}");
}
