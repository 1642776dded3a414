//! The environ a WSGI app gets from an ASGI scope, seen through the testbed's `/environ/`
//! endpoint (every string entry rendered one char per byte, as PEP 3333's native strings).

mod common;

use asgi_core::host::testing;
use asgi_core::{HttpVersion, ReceiveEvent, Scope, ServerAddr};
use asgi_wsgi_compat::testbed::testbed;
use asgi_wsgi_compat::{Environ, Value, WsgiToAsgi};
use bytes::Bytes;
use common::scope;
use http::header::HeaderValue;
use http::{Method, StatusCode};
use serde_json::{Map, Value as Json};

/// The environ the testbed saw for `scope`, with `body` as the request body.
async fn environ_of(scope: asgi_core::HttpScope, body: &'static [u8]) -> Map<String, Json> {
    let app = WsgiToAsgi::new(testbed);
    let outcome = testing::call(
        &app,
        Scope::from(scope),
        [ReceiveEvent::request(body, false)],
    )
    .await;
    assert_eq!(outcome.status(), Some(StatusCode::OK), "{outcome:?}");
    match serde_json::from_slice(&outcome.body()).unwrap() {
        Json::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn mounted(path: &str, raw_path: &[u8]) -> asgi_core::HttpScope {
    let mut s = scope(Method::GET, path);
    s.raw_path = Bytes::copy_from_slice(raw_path);
    s.root_path = "/wsgi".into();
    s
}

#[tokio::test]
async fn script_name_is_root_path_and_path_info_the_rest() {
    let env = environ_of(mounted("/wsgi/environ/x", b"/wsgi/environ/x"), b"").await;
    assert_eq!(env["SCRIPT_NAME"], "/wsgi");
    assert_eq!(env["PATH_INFO"], "/environ/x");
}

#[test]
fn path_equal_to_root_path_gives_empty_path_info() {
    let environ = Environ::from_scope(&mounted("/wsgi", b"/wsgi"));
    assert_eq!(environ.script_name(), "/wsgi");
    assert_eq!(environ.path_info(), "");
}

#[test]
fn root_path_with_trailing_slash_keeps_the_slash_in_path_info() {
    let mut s = mounted("/wsgi/a", b"/wsgi/a");
    s.root_path = "/wsgi/".into();
    let environ = Environ::from_scope(&s);
    assert_eq!(environ.script_name(), "/wsgi");
    assert_eq!(environ.path_info(), "/a");
}

#[test]
fn root_path_splits_only_at_a_segment_boundary() {
    let environ = Environ::from_scope(&mounted("/wsgiother/a", b"/wsgiother/a"));
    assert_eq!(environ.path_info(), "/wsgiother/a");
}

#[test]
fn path_outside_root_path_is_all_path_info() {
    // A server that does not include root_path in path.
    let environ = Environ::from_scope(&mounted("/a/b", b"/a/b"));
    assert_eq!(environ.script_name(), "/wsgi");
    assert_eq!(environ.path_info(), "/a/b");
}

#[tokio::test]
async fn path_info_is_decoded_utf8_bytes_one_char_per_byte() {
    let env = environ_of(
        mounted("/wsgi/environ/caf\u{e9}", b"/wsgi/environ/caf%C3%A9"),
        b"",
    )
    .await;
    assert_eq!(env["PATH_INFO"], "/environ/caf\u{c3}\u{a9}");
}

#[tokio::test]
async fn path_info_keeps_bytes_that_are_not_utf8() {
    // The server had to put U+FFFD into `path`; `raw_path` still has the byte.
    let env = environ_of(
        mounted("/wsgi/environ/a\u{fffd}b", b"/wsgi/environ/a%FFb"),
        b"",
    )
    .await;
    assert_eq!(env["PATH_INFO"], "/environ/a\u{ff}b");
    assert_eq!(env["RAW_URI"], "/wsgi/environ/a%FFb");
}

#[test]
fn rewritten_path_wins_over_a_raw_path_that_no_longer_matches() {
    let mut s = mounted("/wsgi/rewritten", b"/wsgi/original");
    s.query_string = Bytes::from_static(b"q=1");
    let environ = Environ::from_scope(&s);
    assert_eq!(environ.path_info(), "/rewritten");
    assert_eq!(environ.get_str("RAW_URI").unwrap(), "/wsgi/original?q=1");
}

#[tokio::test]
async fn query_string_is_raw_bytes() {
    let mut s = mounted("/wsgi/environ/q", b"/wsgi/environ/q");
    s.query_string = Bytes::from_static(b"a=%20b&c=\xff");
    let env = environ_of(s, b"").await;
    assert_eq!(env["QUERY_STRING"], "a=%20b&c=\u{ff}");
}

#[test]
fn query_pairs_decode_plus_and_percent_escapes_in_order() {
    let mut s = mounted("/search", b"/search");
    s.query_string = Bytes::from_static(b"q=caf%C3%A9+au+lait&&tag=a%26b&tag=c&flag&n%3D=1%3D2");
    let environ = Environ::from_scope(&s);
    let pairs: Vec<(String, String)> = environ
        .query_pairs()
        .map(|(k, v)| {
            (
                k.to_str().unwrap().to_owned(),
                v.to_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("q", "café au lait"),
        ("tag", "a&b"),
        ("tag", "c"),
        ("flag", ""),
        ("n=", "1=2"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    assert_eq!(pairs, expected);
    assert_eq!(environ.query("tag").unwrap(), "a&b");
    assert_eq!(environ.query("flag").unwrap(), "");
    assert!(environ.query("missing").is_none());
}

#[test]
fn query_keeps_bytes_that_are_not_utf8_and_malformed_escapes() {
    let mut s = mounted("/q", b"/q");
    s.query_string = Bytes::from_static(b"raw=%FF%fe&bad=100%&odd=%zz");
    let environ = Environ::from_scope(&s);
    assert_eq!(environ.query("raw").unwrap(), b"\xff\xfe");
    assert_eq!(environ.query("bad").unwrap(), "100%");
    assert_eq!(environ.query("odd").unwrap(), "%zz");
}

#[tokio::test]
async fn header_names_with_underscores_are_dropped() {
    let mut s = mounted("/wsgi/environ/h", b"/wsgi/environ/h");
    s.headers
        .append("x_forwarded_for", HeaderValue::from_static("6.6.6.6"));
    s.headers
        .append("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
    let env = environ_of(s, b"").await;
    assert_eq!(env["HTTP_X_FORWARDED_FOR"], "10.0.0.1");
    assert!(
        env.values().all(|v| v != "6.6.6.6"),
        "the underscore header leaked: {env:?}"
    );
}

#[tokio::test]
async fn repeated_headers_are_joined_with_commas() {
    let mut s = mounted("/wsgi/environ/h", b"/wsgi/environ/h");
    for v in ["text/html", "application/json"] {
        s.headers.append("accept", HeaderValue::from_static(v));
    }
    for v in ["a=1", "b=2"] {
        s.headers.append("cookie", HeaderValue::from_static(v));
    }
    let env = environ_of(s, b"").await;
    assert_eq!(env["HTTP_ACCEPT"], "text/html,application/json");
    // Cookies split over several headers (HTTP/2) are joined as one Cookie header is.
    assert_eq!(env["HTTP_COOKIE"], "a=1; b=2");
}

#[tokio::test]
async fn header_values_keep_every_byte() {
    let mut s = mounted("/wsgi/environ/h", b"/wsgi/environ/h");
    s.headers.append(
        "x-name",
        HeaderValue::from_bytes(b"caf\xc3\xa9 \xff").unwrap(),
    );
    let env = environ_of(s, b"").await;
    assert_eq!(env["HTTP_X_NAME"], "caf\u{c3}\u{a9} \u{ff}");
}

#[tokio::test]
async fn content_type_and_length_have_no_http_prefix() {
    let mut s = mounted("/wsgi/environ/post", b"/wsgi/environ/post");
    s.method = Method::POST;
    s.headers
        .insert("content-type", HeaderValue::from_static("text/plain"));
    s.headers
        .insert("content-length", HeaderValue::from_static("4"));
    let env = environ_of(s, b"ping").await;
    assert_eq!(env["CONTENT_TYPE"], "text/plain");
    assert_eq!(env["CONTENT_LENGTH"], "4");
    assert!(!env.contains_key("HTTP_CONTENT_TYPE"));
    assert!(!env.contains_key("HTTP_CONTENT_LENGTH"));
    assert_eq!(env["body"], "ping");
    assert_eq!(env["REQUEST_METHOD"], "POST");
}

#[tokio::test]
async fn body_is_rendered_one_char_per_byte() {
    let mut s = mounted("/wsgi/environ/post", b"/wsgi/environ/post");
    s.method = Method::PUT;
    let env = environ_of(s, b"\x00\xff\xc3\xa9").await;
    assert_eq!(env["body"], "\u{0}\u{ff}\u{c3}\u{a9}");
}

#[tokio::test]
async fn server_and_client_addresses() {
    let mut s = mounted("/wsgi/environ/a", b"/wsgi/environ/a");
    s.server = Some(ServerAddr::Tcp("127.0.0.1:8000".parse().unwrap()));
    s.client = Some("[::1]:54321".parse().unwrap());
    s.http_version = HttpVersion::Http2;
    let env = environ_of(s, b"").await;
    assert_eq!(env["SERVER_NAME"], "127.0.0.1");
    assert_eq!(env["SERVER_PORT"], "8000");
    assert_eq!(env["REMOTE_ADDR"], "::1");
    assert_eq!(env["REMOTE_PORT"], "54321");
    assert_eq!(env["SERVER_PROTOCOL"], "HTTP/2");
}

#[tokio::test]
async fn unix_socket_server_takes_its_name_from_the_host_header() {
    let mut s = mounted("/wsgi/environ/a", b"/wsgi/environ/a");
    s.server = Some(ServerAddr::Unix("/run/app.sock".into()));
    s.headers
        .insert("host", HeaderValue::from_static("example.com"));
    let env = environ_of(s, b"").await;
    assert_eq!(env["SERVER_NAME"], "example.com");
    assert_eq!(env["SERVER_PORT"], "80");
    assert_eq!(env["HTTP_HOST"], "example.com");
    assert!(!env.contains_key("REMOTE_ADDR"));
}

#[tokio::test]
async fn https_sets_url_scheme_and_https_on() {
    let mut s = mounted("/wsgi/environ/a", b"/wsgi/environ/a");
    s.scheme = "https".into();
    let env = environ_of(s, b"").await;
    assert_eq!(env["wsgi.url_scheme"], "https");
    assert_eq!(env["HTTPS"], "on");
    assert_eq!(env["SERVER_PORT"], "443");
}

#[test]
fn wsgi_entries_have_their_pep_3333_values() {
    let mut environ = Environ::from_scope(&scope(Method::GET, "/"));
    assert_eq!(environ.version(), Some((1, 0)));
    assert_eq!(environ.url_scheme(), "http");
    assert!(environ.multithread());
    assert!(!environ.multiprocess());
    assert!(!environ.run_once());
    assert_eq!(
        environ.get("wsgi.input_terminated"),
        Some(&Value::Bool(true))
    );
    assert!(environ.contains_key("wsgi.input"));
    assert!(environ.contains_key("wsgi.errors"));
    assert!(!environ.contains_key("HTTPS"));
    let mut body = Vec::new();
    std::io::Read::read_to_end(environ.input(), &mut body).unwrap();
    assert!(body.is_empty());
}

#[test]
fn typed_accessors_read_the_map() {
    let mut s = scope(Method::DELETE, "/items/7");
    s.query_string = Bytes::from_static(b"force=1");
    s.headers
        .insert("content-length", HeaderValue::from_static("12"));
    s.headers
        .insert("content-type", HeaderValue::from_static("application/json"));
    s.headers.insert("x-api-key", HeaderValue::from_static("k"));
    s.client = Some("192.0.2.1:4000".parse().unwrap());
    let environ = Environ::from_scope(&s);
    assert_eq!(environ.method(), "DELETE");
    assert_eq!(environ.path_info(), "/items/7");
    assert_eq!(environ.script_name(), "");
    assert_eq!(environ.query_string(), "force=1");
    assert_eq!(environ.content_length(), Some(12));
    assert_eq!(environ.content_type().unwrap(), "application/json");
    assert_eq!(environ.header("X-API-KEY").unwrap(), "k");
    assert_eq!(environ.header("Content-Type").unwrap(), "application/json");
    assert_eq!(environ.header("x_api_key"), None);
    assert_eq!(environ.remote_addr().unwrap(), "192.0.2.1");
    assert_eq!(environ.remote_port().unwrap(), "4000");
    assert_eq!(environ.server_protocol(), "HTTP/1.1");
}

#[test]
fn scope_state_and_extensions_reach_the_environ() {
    #[derive(Clone, Debug, PartialEq)]
    struct Pool(&'static str);
    #[derive(Clone, Debug, PartialEq)]
    struct RequestId(u32);

    let building = asgi_core::LifespanState::new();
    building.insert(Pool("db")).unwrap();
    let mut s = scope(Method::GET, "/");
    s.state = building.freeze();
    s.extensions.insert(RequestId(9));
    let environ = Environ::from_scope(&s);
    assert_eq!(environ.state().get::<Pool>(), Some(&Pool("db")));
    assert_eq!(environ.extensions().get::<RequestId>(), Some(&RequestId(9)));
}
