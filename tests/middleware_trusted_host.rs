//! TrustedHost: allowed names and `*.` wildcards pass, other hosts get 400 (HTTP) or a
//! refused WebSocket, and `www.` redirects.

use asgi::core::{AppExt, Error, Next, Receiver, Scope, Sender, from_fn};
use asgi::server::middleware::trusted_host::TrustedHostLayer;
use asgi::server::response::Response;
use asgi::server::test_client::{TestClient, TestRequest};

async fn hello(scope: Scope, receive: Receiver, mut send: Sender) -> Result<(), Error> {
    match scope {
        Scope::WebSocket(ws) => {
            let mut socket = asgi::ws::WebSocket::new(ws, receive, send);
            socket.accept().await?;
            socket.close(1000, "").await
        }
        _ => Response::text("hello").send(&mut send).await,
    }
}

fn client(layer: TrustedHostLayer) -> TestClient {
    TestClient::new(hello.with(layer))
}

async fn status_for(client: &TestClient, host: &str) -> u16 {
    client
        .send(TestRequest::get("/").header("host", host))
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn allowed_hosts_with_or_without_port_pass() {
    let client = client(TrustedHostLayer::new(["example.com", "127.0.0.1", "[::1]"]));
    assert_eq!(status_for(&client, "example.com").await, 200);
    assert_eq!(status_for(&client, "EXAMPLE.com:8000").await, 200);
    assert_eq!(status_for(&client, "127.0.0.1:8001").await, 200);
    assert_eq!(status_for(&client, "[::1]:80").await, 200);
}

#[tokio::test]
async fn other_hosts_get_400() {
    let client = client(TrustedHostLayer::new(["example.com"]));
    let response = client
        .send(TestRequest::get("/").header("host", "evil.com"))
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(response.text(), "Invalid host header");
    assert_eq!(status_for(&client, "example.com.evil.com").await, 400);
    assert_eq!(status_for(&client, "sub.example.com").await, 400);
}

#[tokio::test]
async fn wildcard_matches_subdomains_only() {
    let client = client(TrustedHostLayer::new(["*.example.com"]));
    assert_eq!(status_for(&client, "api.example.com").await, 200);
    assert_eq!(status_for(&client, "a.b.example.com").await, 200);
    assert_eq!(status_for(&client, "badexample.com").await, 400);
    // The bare domain is not matched; `www.example.com` is, so it is redirected there.
    assert_eq!(status_for(&client, "example.com").await, 307);
    let strict = self::client(TrustedHostLayer::new(["*.example.com"]).www_redirect(false));
    assert_eq!(status_for(&strict, "example.com").await, 400);
}

#[tokio::test]
async fn star_allows_every_host() {
    let client = client(TrustedHostLayer::new(["*"]));
    assert_eq!(status_for(&client, "anything.invalid").await, 200);
}

#[tokio::test]
async fn bare_domain_redirects_to_www() {
    let client = client(TrustedHostLayer::new(["www.example.com"]));
    let response = client
        .send(TestRequest::get("/path/x?q=1").header("host", "example.com"))
        .await
        .unwrap();
    assert_eq!(response.status(), 307);
    assert_eq!(
        response.header("location"),
        Some("http://www.example.com/path/x?q=1")
    );
    let client = self::client(TrustedHostLayer::new(["www.example.com"]).www_redirect(false));
    assert_eq!(status_for(&client, "example.com").await, 400);
}

#[tokio::test]
async fn websocket_with_wrong_host_is_refused_with_400() {
    let client = client(TrustedHostLayer::new(["example.com"]));
    let denied = client
        .websocket("/ws")
        .header("host", "evil.com")
        .connect()
        .await
        .unwrap_err();
    assert_eq!(denied.denial().unwrap().status(), 400);
    client
        .websocket("/ws")
        .header("host", "example.com")
        .connect()
        .await
        .unwrap();
}

#[tokio::test]
async fn missing_host_gets_400() {
    // HTTP/1.0 allows requests without Host; the scope then has none.
    let app = hello
        .with(TrustedHostLayer::new(["example.com"]))
        .with(from_fn(
            |mut scope: Scope, receive, send, next: Next| async move {
                if let Scope::Http(http) = &mut scope {
                    http.headers.remove("host");
                }
                next.call(scope, receive, send).await
            },
        ));
    let response = TestClient::new(app).get("/").await.unwrap();
    assert_eq!(response.status(), 400);
}
