//! The WSGI environ builder: for any HTTP scope (including ones a middleware rewrote, where
//! `path` and `raw_path` disagree or `path` lies outside `root_path`), `Environ::from_scope`
//! does not panic and maps it as PEP 3333 says: `SCRIPT_NAME` is `root_path` without its
//! trailing `/`, `QUERY_STRING` the query bytes, one `HTTP_*` key per header name without
//! `_` (names with `_` are dropped), values joined. Then the round trip: `AsgiToWsgi`
//! builds a scope back from the environ, with the same method, root path, query, client and
//! headers.

#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use asgi_core::{Error, HttpScope, HttpVersion, Receiver, Scope, SendEvent, Sender, ServerAddr};
use asgi_fuzz::Input;
use asgi_wsgi_compat::{AsgiToWsgi, Environ, StartResponse, Writer, WsgiApp};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use libfuzzer_sys::fuzz_target;

/// The runtime `AsgiToWsgi` runs the app on, while the fuzzer's thread blocks as a WSGI
/// host's thread does.
static RUNTIME: std::sync::LazyLock<tokio::runtime::Runtime> = std::sync::LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .expect("a runtime")
});

fn address(input: &mut Input<'_>) -> SocketAddr {
    let ip = if input.byte() & 1 == 0 {
        IpAddr::V4(Ipv4Addr::from(u32::from(input.u16()) << 8))
    } else {
        IpAddr::V6(Ipv6Addr::from(u128::from(input.u16())))
    };
    SocketAddr::new(ip, input.u16())
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let flags = input.byte();
    let Ok(method) = Method::from_bytes(input.piece()) else {
        return;
    };
    let (Ok(root_path), Ok(path)) = (
        String::from_utf8(input.piece().to_vec()),
        String::from_utf8(input.piece().to_vec()),
    ) else {
        return;
    };
    let mut scope = HttpScope::new(method.clone(), path);
    scope.root_path = root_path;
    match flags & 0x03 {
        0 => scope.raw_path = Default::default(),
        1 => scope.raw_path = input.piece().to_vec().into(),
        // `new` sets raw_path from the path.
        _ => {}
    }
    scope.query_string = input.piece().to_vec().into();
    scope.scheme = match (flags >> 2) & 0x03 {
        0 => "http",
        1 => "https",
        _ => "HTTPS",
    }
    .into();
    scope.http_version = match (flags >> 4) & 0x03 {
        0 => HttpVersion::Http10,
        1 => HttpVersion::Http11,
        _ => HttpVersion::Http2,
    };
    if flags & 0x40 != 0 {
        scope.client = Some(address(&mut input));
    }
    scope.server = match input.byte() % 3 {
        0 => None,
        1 => Some(ServerAddr::Tcp(address(&mut input))),
        _ => Some(ServerAddr::Unix("/run/app.sock".into())),
    };
    while !input.is_empty() {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(input.piece()),
            HeaderValue::from_bytes(input.piece()),
        ) else {
            return;
        };
        scope.headers.append(name, value);
    }

    let environ = Environ::from_scope(&scope);
    check_environ(&scope, &environ);
    round_trip(&scope, environ);
});

/// The value of every header name a WSGI app sees: values joined, names with `_` dropped.
fn expected_headers(scope: &HttpScope) -> Vec<(HeaderName, Vec<u8>)> {
    scope
        .headers
        .keys()
        .filter(|name| !name.as_str().contains('_'))
        .map(|name| {
            let separator: &[u8] = if name == http::header::COOKIE {
                b"; "
            } else {
                b","
            };
            let values: Vec<&[u8]> = scope
                .headers
                .get_all(name)
                .iter()
                .map(|v| v.as_bytes())
                .collect();
            (name.clone(), values.join(separator))
        })
        .collect()
}

fn check_environ(scope: &HttpScope, environ: &Environ) {
    assert_eq!(
        environ.method().as_bytes(),
        scope.method.as_str().as_bytes()
    );
    let script_name = scope.root_path.trim_end_matches('/');
    assert_eq!(environ.script_name().as_bytes(), script_name.as_bytes());
    assert_eq!(environ.query_string().as_bytes(), &scope.query_string[..]);
    let raw_uri = environ.get_str("RAW_URI").expect("RAW_URI").as_bytes();
    if !scope.query_string.is_empty() {
        assert!(raw_uri.ends_with(&[b"?", &scope.query_string[..]].concat()));
    }
    let expected = expected_headers(scope);
    let header_keys = environ
        .iter()
        .filter(|(key, _)| {
            key.starts_with("HTTP_") || *key == "CONTENT_TYPE" || *key == "CONTENT_LENGTH"
        })
        .count();
    assert_eq!(
        header_keys,
        expected.len(),
        "one key per header name without `_`"
    );
    for (name, value) in &expected {
        let got = environ
            .header(name.as_str())
            .expect("every header name without `_`");
        assert_eq!(got.as_bytes(), &value[..], "{name}");
    }
    assert!(
        environ
            .server_port()
            .to_str()
            .is_some_and(|p| p.parse::<u16>().is_ok())
    );
    if let Some(client) = scope.client {
        assert_eq!(
            environ.remote_port().unwrap().as_bytes(),
            client.port().to_string().as_bytes()
        );
    }
}

fn round_trip(scope: &HttpScope, environ: Environ) {
    let seen = Arc::new(Mutex::new(None));
    let record = seen.clone();
    let app = move |scope: Scope, _receive: Receiver, mut send: Sender| {
        let record = record.clone();
        async move {
            if let Scope::Http(scope) = scope {
                *record.lock().unwrap() = Some(scope);
            }
            send.send(SendEvent::response_start(StatusCode::OK, HeaderMap::new()))
                .await?;
            send.send(SendEvent::response_body("", false)).await?;
            Ok::<(), Error>(())
        }
    };
    let wsgi = AsgiToWsgi::new(app, RUNTIME.handle().clone());
    let start_response = StartResponse::from_fn(|_, _, _| Ok(Writer::from_fn(|_| Ok(()))));
    let body = wsgi.call(environ, start_response).expect("the app answers");
    for chunk in body {
        chunk.expect("the body completes");
    }
    let back = seen
        .lock()
        .unwrap()
        .take()
        .expect("the app saw an HTTP scope");
    assert_eq!(back.method, scope.method);
    assert_eq!(back.root_path, scope.root_path.trim_end_matches('/'));
    assert_eq!(back.query_string, scope.query_string);
    assert_eq!(
        back.client.map(|c| (c.ip(), c.port())),
        scope.client.map(|c| (c.ip(), c.port()))
    );
    let expected: Vec<(HeaderName, Vec<u8>)> = expected_headers(scope)
        .into_iter()
        .filter(|(_, value)| !value.is_empty())
        .collect();
    assert_eq!(
        back.headers.keys_len(),
        expected.len(),
        "{:?}",
        back.headers
    );
    for (name, value) in &expected {
        let values: Vec<&[u8]> = back
            .headers
            .get_all(name)
            .iter()
            .map(|v| v.as_bytes())
            .collect();
        assert_eq!(values, [&value[..]], "{name}");
    }
}
