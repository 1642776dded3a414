//! Proxy headers through the real server: the testbed's `/scope/...` and `/wsgi/environ/...`
//! show what the app sees when a trusted peer (the test's client, on 127.0.0.1) sends
//! `X-Forwarded-For`, `X-Forwarded-Proto` or `Forwarded`, and when an untrusted one does. The
//! parser's rules are unit-tested in `asgi_http::middleware::proxy_headers`.

mod common;
mod ws_common;

use asgi::prelude::*;
use asgi::server::middleware::proxy_headers::{ProxyHeadersLayer, TrustedProxies};
use common::*;
use futures_util::StreamExt;
use http::Request;

/// `GET path` with these headers, on a new HTTP/1.1 connection.
async fn get_with(server: &TestServer, path: &str, headers: &[(&str, &str)]) -> Answer {
    let mut request = Request::get(path).header("host", "test");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    send(server.addr, request.body(empty()).unwrap()).await
}

const FORWARDED_TO_HTTPS: &[(&str, &str)] = &[
    ("x-forwarded-for", "6.6.6.6, 203.0.113.9"),
    ("x-forwarded-proto", "https"),
];

#[tokio::test]
async fn trusted_proxy_sets_client_and_scheme() {
    let server = start_testbed().await;
    let scope = get_with(&server, "/scope/x", FORWARDED_TO_HTTPS)
        .await
        .json();
    assert_eq!(scope["client"], serde_json::json!(["203.0.113.9", 0]));
    assert_eq!(scope["scheme"], "https");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn wsgi_environ_follows_the_forwarded_scope() {
    let server = start_testbed().await;
    let environ = get_with(&server, "/wsgi/environ/x", FORWARDED_TO_HTTPS)
        .await
        .json();
    assert_eq!(environ["REMOTE_ADDR"], "203.0.113.9");
    assert_eq!(environ["wsgi.url_scheme"], "https");
    assert_eq!(environ["HTTPS"], "on");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn forwarded_header_sets_client_scheme_and_host() {
    let server = start_testbed().await;
    let scope = get_with(
        &server,
        "/scope/x",
        &[(
            "forwarded",
            r#"for="[2001:db8::5]:4711";proto=https;host=app.example, for=127.0.0.1"#,
        )],
    )
    .await
    .json();
    assert_eq!(scope["client"], serde_json::json!(["2001:db8::5", 4711]));
    assert_eq!(scope["scheme"], "https");
    let host = scope["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|pair| pair[0] == "host")
        .unwrap();
    assert_eq!(host[1], "app.example");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn untrusted_peer_headers_change_nothing() {
    // Only a proxy at 10.0.0.1 is trusted: the test's client on 127.0.0.1 is a stranger.
    let trusted: TrustedProxies = "10.0.0.1".parse().unwrap();
    let server = start(testbed::served_app(false), |b| {
        b.forwarded_allow_ips(trusted)
    })
    .await;
    let scope = get_with(&server, "/scope/x", FORWARDED_TO_HTTPS)
        .await
        .json();
    assert_eq!(scope["client"][0], "127.0.0.1");
    assert_ne!(scope["client"][1], 0);
    assert_eq!(scope["scheme"], "http");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn proxy_headers_off_changes_nothing() {
    let server = start(testbed::served_app(false), |b| b.proxy_headers(false)).await;
    let scope = get_with(&server, "/scope/x", FORWARDED_TO_HTTPS)
        .await
        .json();
    assert_eq!(scope["client"][0], "127.0.0.1");
    assert_eq!(scope["scheme"], "http");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn malformed_proxy_headers_leave_the_scope_untouched() {
    let server = start_testbed().await;
    for headers in [
        &[("x-forwarded-for", "203.0.113.9, not-an-address")][..],
        &[("x-forwarded-proto", "gopher")][..],
        &[("forwarded", "for=203.0.113.9:80;proto=https")][..],
    ] {
        let scope = get_with(&server, "/scope/x", headers).await.json();
        assert_eq!(scope["client"][0], "127.0.0.1", "{headers:?}");
        assert_ne!(scope["client"][1], 0, "{headers:?}");
        assert_eq!(scope["scheme"], "http", "{headers:?}");
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn websocket_scope_gets_wss_and_the_forwarded_client() {
    let server = start_testbed().await;
    let (mut ws, _) = ws_common::connect_with(
        server.addr,
        "/scope/x",
        &[
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-proto", "https"),
        ],
    )
    .await;
    let message = tokio::time::timeout(PATIENCE, ws.next())
        .await
        .expect("the scope comes in time")
        .unwrap()
        .unwrap();
    let scope: serde_json::Value = serde_json::from_str(message.to_text().unwrap()).unwrap();
    assert_eq!(scope["client"], serde_json::json!(["203.0.113.9", 0]));
    assert_eq!(scope["scheme"], "wss");
    drop(ws);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn middleware_wraps_any_app() {
    // The middleware alone, around an app served with the server's own proxy handling off.
    let app = http_only(|scope: Scope, _: Receiver, mut send: Sender| async move {
        let Scope::Http(scope) = scope else {
            unreachable!()
        };
        let body = format!("{:?} {}", scope.client, scope.scheme);
        send.send(SendEvent::response_start(
            http::StatusCode::OK,
            http::HeaderMap::new(),
        ))
        .await?;
        send.send(SendEvent::response_body(body, false)).await?;
        Ok(())
    })
    .with(ProxyHeadersLayer::new(TrustedProxies::all()));
    let server = start(app, |b| b.proxy_headers(false)).await;
    let answer = get_with(&server, "/", &[("forwarded", "for=192.0.2.1;proto=https")]).await;
    assert_eq!(answer.text(), "Some(192.0.2.1:0) https");
    server.stop().await.unwrap();
}
