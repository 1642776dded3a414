//! The server's scope builder: for any request head hyper would accept (a target that
//! parses as a URI, headers it can hold, HTTP/1.0, 1.1 or 2) and any `root_path` setting,
//! building the scope does not panic, and the scope says what the request said: `raw_path`
//! and `query_string` are the target's bytes around the first `?` (after `root_path`),
//! `path` is `root_path` plus the percent-decoded path, which percent-encodes back to
//! itself (a round trip); and its serde form reads back to the same form.

#![no_main]

use asgi_core::{HttpScope, Scope};
use asgi_fuzz::Input;
use asgi_http::path::decode_path;
use asgi_http::server::http_scope_from_head;
use http::{HeaderName, HeaderValue, Method, Request, Uri, Version};
use libfuzzer_sys::fuzz_target;
use percent_encoding::{NON_ALPHANUMERIC, percent_encode};

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let flags = input.byte();
    let version = match flags % 3 {
        0 => Version::HTTP_10,
        1 => Version::HTTP_11,
        _ => Version::HTTP_2,
    };
    let Ok(root_path) = std::str::from_utf8(input.piece()) else {
        return;
    };
    let Ok(uri) = Uri::try_from(input.piece()) else {
        return;
    };
    let method = Method::from_bytes(input.piece()).unwrap_or(Method::GET);
    let mut request = Request::builder()
        .method(method.clone())
        .uri(uri.clone())
        .version(version);
    while !input.is_empty() {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(input.piece()),
            HeaderValue::from_bytes(input.piece()),
        ) else {
            return;
        };
        request = request.header(name, value);
    }
    let Ok(request) = request.body(()) else {
        return;
    };
    let (parts, ()) = request.into_parts();
    let header_count = parts.headers.len();
    let scope = http_scope_from_head(parts, root_path);

    assert_eq!(scope.method, method);
    assert_eq!(scope.root_path, root_path);
    let target = uri.path_and_query().map_or("/", |p| p.as_str()).as_bytes();
    let (raw, query) = match target.iter().position(|&b| b == b'?') {
        Some(i) => (&target[..i], &target[i + 1..]),
        None => (target, &[][..]),
    };
    assert_eq!(&scope.query_string[..], query);
    assert_eq!(&scope.raw_path[..], [root_path.as_bytes(), raw].concat());
    let decoded = decode_path(raw);
    assert_eq!(scope.path, format!("{root_path}{decoded}"));
    let encoded = percent_encode(decoded.as_bytes(), NON_ALPHANUMERIC).to_string();
    assert_eq!(decode_path(encoded.as_bytes()), decoded);
    // HTTP/2 puts the authority in `host`, in place of the client's values.
    if version != Version::HTTP_2 {
        assert_eq!(scope.headers.len(), header_count);
    }

    serde_round_trip(scope);
});

fn serde_round_trip(scope: Box<HttpScope>) {
    let form = serde_json::to_value(Scope::from(scope)).expect("a scope serializes");
    let back: Scope = serde_json::from_value(form.clone()).expect("its form reads back");
    assert_eq!(serde_json::to_value(back).expect("serializes again"), form);
}
