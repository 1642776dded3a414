//! HttpsRedirect: `http` to `https` and `ws` to `wss` with 307 or 308, keeping host, path and
//! query; secure scopes pass.

use asgi::core::{AppExt, Error, Next, Receiver, Scope, Sender, from_fn};
use asgi::server::middleware::https_redirect::HttpsRedirectLayer;
use asgi::server::response::Response;
use asgi::server::test_client::{TestClient, TestRequest};

async fn hello(_: Scope, _: Receiver, mut send: Sender) -> Result<(), Error> {
    Response::text("secure hello").send(&mut send).await
}

/// Marks every scope as arrived over TLS, as the proxy-headers middleware does for
/// `X-Forwarded-Proto: https`.
fn as_https(app: impl asgi::core::App) -> impl asgi::core::App {
    app.with(from_fn(
        |mut scope: Scope, receive, send, next: Next| async move {
            match &mut scope {
                Scope::Http(http) => http.scheme = "https".into(),
                Scope::WebSocket(ws) => ws.scheme = "wss".into(),
                _ => {}
            }
            next.call(scope, receive, send).await
        },
    ))
}

#[tokio::test]
async fn http_is_redirected_to_https_with_307() {
    let client = TestClient::new(hello.with(HttpsRedirectLayer::new()));
    let response = client
        .send(TestRequest::post("/a/b?x=1&y=2").header("host", "example.com"))
        .await
        .unwrap();
    assert_eq!(response.status(), 307);
    assert_eq!(
        response.header("location"),
        Some("https://example.com/a/b?x=1&y=2")
    );
}

#[tokio::test]
async fn permanent_redirect_is_308() {
    let client = TestClient::new(hello.with(HttpsRedirectLayer::new().permanent(true)));
    let response = client.get("/").await.unwrap();
    assert_eq!(response.status(), 308);
    assert_eq!(response.header("location"), Some("https://testserver/"));
}

#[tokio::test]
async fn default_ports_are_dropped_and_others_kept() {
    let client = TestClient::new(hello.with(HttpsRedirectLayer::new()));
    for (host, location) in [
        ("example.com:80", "https://example.com/"),
        ("example.com:443", "https://example.com/"),
        ("example.com:8080", "https://example.com:8080/"),
        ("[::1]:80", "https://[::1]/"),
    ] {
        let response = client
            .send(TestRequest::get("/").header("host", host))
            .await
            .unwrap();
        assert_eq!(response.header("location"), Some(location), "{host}");
    }
}

#[tokio::test]
async fn https_scopes_reach_the_app() {
    let client = TestClient::new(as_https(hello.with(HttpsRedirectLayer::new())));
    let response = client.get("/").await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text(), "secure hello");
}

#[tokio::test]
async fn ws_is_redirected_to_wss() {
    async fn ws(scope: Scope, receive: Receiver, send: Sender) -> Result<(), Error> {
        let Scope::WebSocket(scope) = scope else {
            return Ok(());
        };
        let mut socket = asgi::ws::WebSocket::new(scope, receive, send);
        socket.accept().await?;
        socket.close(1000, "").await
    }
    let client = TestClient::new(ws.with(HttpsRedirectLayer::new()));
    let denied = client
        .websocket("/live?room=1")
        .header("host", "example.com")
        .connect()
        .await
        .unwrap_err();
    let denial = denied.denial().unwrap();
    assert_eq!(denial.status(), 307);
    assert_eq!(
        denial.header("location"),
        Some("wss://example.com/live?room=1")
    );
    let secure = TestClient::new(as_https(ws.with(HttpsRedirectLayer::new())));
    secure.websocket("/live").connect().await.unwrap();
}
