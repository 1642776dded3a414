//! RequestId: a well-formed incoming id is kept, anything else replaced by a UUID; the id is
//! in the scope's extensions and header, and in the response.

mod common;

use asgi::core::{AppExt, Error, Receiver, Scope, Sender};
use asgi::server::middleware::request_id::{RequestIdLayer, RequestIdValue};
use asgi::server::response::Response;
use asgi::server::test_client::{TestClient, TestRequest};

/// Answers with the id the app sees in the extensions and in the header.
async fn show(scope: Scope, _: Receiver, mut send: Sender) -> Result<(), Error> {
    let from_extensions = scope
        .extensions()
        .and_then(|e| e.get::<RequestIdValue>())
        .map(|id| id.to_string())
        .unwrap_or_default();
    let from_header = scope
        .headers()
        .and_then(|h| h.get("x-request-id"))
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    Response::text(format!("{from_extensions} {from_header}"))
        .send(&mut send)
        .await
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.chars().enumerate().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

#[tokio::test]
async fn a_new_id_is_made_and_shown_everywhere() {
    let client = TestClient::new(show.with(RequestIdLayer::new()));
    let response = client.get("/").await.unwrap();
    let id = response.header("x-request-id").unwrap().to_owned();
    assert!(is_uuid(&id), "{id}");
    assert_eq!(response.text(), format!("{id} {id}"));
    let other = client.get("/").await.unwrap();
    assert_ne!(other.header("x-request-id").unwrap(), id);
}

#[tokio::test]
async fn a_well_formed_incoming_id_is_kept() {
    let client = TestClient::new(show.with(RequestIdLayer::new()));
    let response = client
        .send(TestRequest::get("/").header("x-request-id", "trace-42:span/7=ok"))
        .await
        .unwrap();
    assert_eq!(response.header("x-request-id"), Some("trace-42:span/7=ok"));
    assert_eq!(response.text(), "trace-42:span/7=ok trace-42:span/7=ok");
}

#[tokio::test]
async fn malformed_incoming_ids_are_replaced() {
    let client = TestClient::new(show.with(RequestIdLayer::new()));
    let too_long = "a".repeat(129);
    for bad in ["", "has space", "semi;colon", "quote\"", too_long.as_str()] {
        let response = client
            .send(TestRequest::get("/").header("x-request-id", bad))
            .await
            .unwrap();
        let id = response.header("x-request-id").unwrap();
        assert!(is_uuid(id), "{bad:?} gave {id}");
    }
}

#[tokio::test]
async fn the_apps_own_response_id_wins() {
    async fn own(_: Scope, _: Receiver, mut send: Sender) -> Result<(), Error> {
        Response::text("x")
            .header(
                http::HeaderName::from_static("x-request-id"),
                http::HeaderValue::from_static("mine"),
            )
            .send(&mut send)
            .await
    }
    let client = TestClient::new(own.with(RequestIdLayer::new()));
    assert_eq!(
        client.get("/").await.unwrap().header("x-request-id"),
        Some("mine")
    );
}

#[tokio::test]
async fn another_header_name_can_carry_it() {
    let client = TestClient::new(
        show.with(RequestIdLayer::new().header(http::HeaderName::from_static("x-correlation-id"))),
    );
    let response = client
        .send(TestRequest::get("/").header("x-correlation-id", "abc"))
        .await
        .unwrap();
    assert_eq!(response.header("x-correlation-id"), Some("abc"));
    assert_eq!(response.header("x-request-id"), None);
}

#[tokio::test]
async fn websocket_scopes_get_an_id() {
    async fn ws(scope: Scope, receive: Receiver, send: Sender) -> Result<(), Error> {
        let Scope::WebSocket(scope) = scope else {
            return Ok(());
        };
        let id = scope
            .extensions
            .get::<RequestIdValue>()
            .unwrap()
            .to_string();
        let mut socket = asgi::ws::WebSocket::new(scope, receive, send);
        socket.accept().await?;
        socket.send_text(id).await?;
        socket.close(1000, "").await
    }
    let client = TestClient::new(ws.with(RequestIdLayer::new()));
    let mut session = client
        .websocket("/")
        .header("x-request-id", "ws-1")
        .connect()
        .await
        .unwrap();
    assert_eq!(session.receive_text().await.unwrap(), "ws-1");
}

#[tokio::test]
async fn the_id_reaches_a_client_over_a_socket() {
    let server = common::start(show.with(RequestIdLayer::new()), |b| b).await;
    let request = http::Request::get("/")
        .header("host", "test")
        .header("x-request-id", "from-proxy-1")
        .body(common::empty())
        .unwrap();
    let answer = common::send(server.addr, request).await;
    assert_eq!(answer.headers["x-request-id"], "from-proxy-1");
    server.stop().await.unwrap();
}
