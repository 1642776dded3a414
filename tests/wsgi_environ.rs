//! The environ a WSGI app gets through the real server: the testbed's `/wsgi/environ/...`
//! shows every string-valued entry (one char per byte), for requests sent over real sockets,
//! many as raw bytes so that no client library tidies them up.

mod common;

use common::*;
use http::{Request, StatusCode};
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// The JSON body of a raw HTTP/1 response.
fn json_body(response: &str) -> Value {
    let (head, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {response:?}"));
    assert!(head.contains(" 200 OK\r\n"), "{head}");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body:?}"))
}

/// The environ the testbed saw for `request`, written as raw bytes on a new connection
/// (send `Connection: close`).
async fn raw_environ(server: &TestServer, request: &[u8]) -> Value {
    json_body(&raw(server.addr, request).await)
}

#[tokio::test]
async fn script_name_is_the_mount_and_path_info_the_rest() {
    let server = start_testbed().await;
    let environ = fetch(server.addr, "/wsgi/environ/a/b").await.json();
    assert_eq!(environ["REQUEST_METHOD"], "GET");
    assert_eq!(environ["SCRIPT_NAME"], "/wsgi");
    assert_eq!(environ["PATH_INFO"], "/environ/a/b");
    assert_eq!(environ["RAW_URI"], "/wsgi/environ/a/b");
    // The async routes of the same server get the scope untouched by the mount.
    let scope = fetch(server.addr, "/scope/a/b").await.json();
    assert_eq!(scope["root_path"], "");
    assert_eq!(scope["path"], "/scope/a/b");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn query_string_is_passed_as_it_came() {
    let server = start_testbed().await;
    let environ = fetch(server.addr, "/wsgi/environ/q?a=%20b&c=d+e&empty=&flag").await;
    let environ = environ.json();
    assert_eq!(environ["QUERY_STRING"], "a=%20b&c=d+e&empty=&flag");
    assert_eq!(environ["PATH_INFO"], "/environ/q");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn missing_query_string_is_empty() {
    let server = start_testbed().await;
    let environ = fetch(server.addr, "/wsgi/environ/q").await.json();
    assert_eq!(environ["QUERY_STRING"], "");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn percent_decoded_path_keeps_every_byte_as_latin1() {
    let server = start_testbed().await;
    // UTF-8 `é` is two bytes, each one latin-1 char; `%FF` is not UTF-8 and stays the byte.
    let environ = fetch(server.addr, "/wsgi/environ/caf%C3%A9/%FF%20x")
        .await
        .json();
    assert_eq!(environ["PATH_INFO"], "/environ/caf\u{c3}\u{a9}/\u{ff} x");
    assert_eq!(environ["RAW_URI"], "/wsgi/environ/caf%C3%A9/%FF%20x");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn content_type_and_length_come_without_the_http_prefix() {
    let server = start_testbed().await;
    let request = Request::post("/wsgi/environ/form")
        .header("host", "test")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(full("a=1&b=2"))
        .unwrap();
    let environ = send(server.addr, request).await.json();
    assert_eq!(environ["CONTENT_TYPE"], "application/x-www-form-urlencoded");
    assert_eq!(environ["CONTENT_LENGTH"], "7");
    assert!(environ.get("HTTP_CONTENT_TYPE").is_none(), "{environ}");
    assert!(environ.get("HTTP_CONTENT_LENGTH").is_none(), "{environ}");
    assert_eq!(environ["body"], "a=1&b=2");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn repeated_headers_are_joined_with_commas_in_order() {
    let server = start_testbed().await;
    let environ = raw_environ(
        &server,
        b"GET /wsgi/environ/h HTTP/1.1\r\nHost: test\r\nX-Tag: first\r\nX-Other: 1\r\n\
          X-Tag: second\r\nX-Tag: third\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(environ["HTTP_X_TAG"], "first,second,third");
    assert_eq!(environ["HTTP_X_OTHER"], "1");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn repeated_cookie_headers_are_joined_with_semicolons() {
    let server = start_testbed().await;
    let environ = raw_environ(
        &server,
        b"GET /wsgi/environ/c HTTP/1.1\r\nHost: test\r\nCookie: a=1\r\nCookie: b=2\r\n\
          Connection: close\r\n\r\n",
    )
    .await;
    assert_eq!(environ["HTTP_COOKIE"], "a=1; b=2");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn header_with_underscores_cannot_spoof_its_dashed_twin() {
    let server = start_testbed().await;
    // A proxy sets `X-Forwarded-For`; the client adds `X_Forwarded_For`, which a naive
    // mapping would turn into the same `HTTP_X_FORWARDED_FOR`.
    let environ = raw_environ(
        &server,
        b"GET /wsgi/environ/xff HTTP/1.1\r\nHost: test\r\nX_Forwarded_For: 6.6.6.6\r\n\
          X-Forwarded-For: 10.0.0.1\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(environ["HTTP_X_FORWARDED_FOR"], "10.0.0.1");
    assert!(!environ.to_string().contains("6.6.6.6"), "{environ}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn header_with_underscores_alone_is_dropped() {
    let server = start_testbed().await;
    let environ = raw_environ(
        &server,
        b"GET /wsgi/environ/xff HTTP/1.1\r\nHost: test\r\nX_Forwarded_For: 6.6.6.6\r\n\
          Connection: close\r\n\r\n",
    )
    .await;
    assert!(environ.get("HTTP_X_FORWARDED_FOR").is_none(), "{environ}");
    assert!(!environ.to_string().contains("6.6.6.6"), "{environ}");
    // The async side still sees the header as it came: only the WSGI mapping drops it.
    let response = raw(
        server.addr,
        b"GET /scope/xff HTTP/1.1\r\nHost: test\r\nX_Forwarded_For: 6.6.6.6\r\n\
          Connection: close\r\n\r\n",
    )
    .await;
    assert!(json_body(&response).to_string().contains("6.6.6.6"));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn remote_and_server_addresses_are_the_sockets_ends() {
    let server = start_testbed().await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let client = stream.local_addr().unwrap();
    stream
        .write_all(b"GET /wsgi/environ/addr HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let environ = json_body(&read_to_close(&mut stream).await);
    assert_eq!(environ["REMOTE_ADDR"], "127.0.0.1");
    assert_eq!(environ["REMOTE_PORT"], client.port().to_string());
    assert_eq!(environ["SERVER_NAME"], "127.0.0.1");
    assert_eq!(environ["SERVER_PORT"], server.addr.port().to_string());
    server.stop().await.unwrap();
}

#[tokio::test]
async fn server_protocol_is_http_1_0_for_an_http_1_0_request() {
    let server = start_testbed().await;
    let environ = raw_environ(&server, b"GET /wsgi/environ/v HTTP/1.0\r\n\r\n").await;
    assert_eq!(environ["SERVER_PROTOCOL"], "HTTP/1.0");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn server_protocol_is_http_1_1_for_an_http_1_1_request() {
    let server = start_testbed().await;
    let environ = fetch(server.addr, "/wsgi/environ/v").await.json();
    assert_eq!(environ["SERVER_PROTOCOL"], "HTTP/1.1");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn server_protocol_is_http_2_for_an_http_2_request() {
    let server = start_testbed().await;
    let mut sender = h2(server.addr).await;
    let request = Request::get(format!("http://{}/wsgi/environ/v", server.addr))
        .body(empty())
        .unwrap();
    let answer = read(sender.send_request(request).await.unwrap())
        .await
        .unwrap();
    assert_eq!(answer.status, StatusCode::OK);
    let environ = answer.json();
    assert_eq!(environ["SERVER_PROTOCOL"], "HTTP/2");
    assert_eq!(environ["SCRIPT_NAME"], "/wsgi");
    // HTTP/2's `:authority` reaches the app as the Host header.
    assert_eq!(environ["HTTP_HOST"], server.addr.to_string());
    server.stop().await.unwrap();
}

#[tokio::test]
async fn https_is_absent_and_the_scheme_is_http_over_plain_http() {
    let server = start_testbed().await;
    let environ = fetch(server.addr, "/wsgi/environ/s").await.json();
    assert!(environ.get("HTTPS").is_none(), "{environ}");
    assert_eq!(environ["wsgi.url_scheme"], "http");
    server.stop().await.unwrap();
}
