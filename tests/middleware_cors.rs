//! CORS: preflights answered (200 or 400 naming what was refused), CORS headers on the
//! app's answers for allowed origins only, credentials echoing the origin, `Vary: Origin`.

use asgi::core::{AppExt, Error, Receiver, Scope, Sender};
use asgi::server::middleware::cors::CorsLayer;
use asgi::server::response::Response;
use asgi::server::test_client::{TestClient, TestRequest};
use http::Method;

async fn hello(scope: Scope, _: Receiver, mut send: Sender) -> Result<(), Error> {
    let method = scope
        .as_http()
        .map(|h| h.method.to_string())
        .unwrap_or_default();
    Response::text(format!("hello {method}"))
        .send(&mut send)
        .await
}

fn client(layer: CorsLayer) -> TestClient {
    TestClient::new(hello.with(layer))
}

fn preflight(origin: &str, method: &str) -> TestRequest {
    TestRequest::new(Method::OPTIONS, "/")
        .header("origin", origin)
        .header("access-control-request-method", method)
}

#[tokio::test]
async fn request_without_origin_passes_untouched() {
    let client = client(CorsLayer::new().allow_origins(["https://a.example"]));
    let response = client.get("/").await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text(), "hello GET");
    assert_eq!(response.header("access-control-allow-origin"), None);
    assert_eq!(response.header("vary"), None);
}

#[tokio::test]
async fn allowed_origin_is_echoed_with_vary_and_exposed_headers() {
    let client = client(
        CorsLayer::new()
            .allow_origins(["https://a.example"])
            .expose_headers(["x-request-id"]),
    );
    let response = client
        .send(TestRequest::get("/").header("origin", "https://a.example"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.header("access-control-allow-origin"),
        Some("https://a.example")
    );
    assert_eq!(
        response.header("access-control-expose-headers"),
        Some("x-request-id")
    );
    assert_eq!(response.header("vary"), Some("Origin"));
    assert_eq!(response.header("access-control-allow-credentials"), None);
}

#[tokio::test]
async fn disallowed_origin_gets_the_answer_without_cors_headers() {
    let client = client(CorsLayer::new().allow_origins(["https://a.example"]));
    let response = client
        .send(TestRequest::get("/").header("origin", "https://evil.example"))
        .await
        .unwrap();
    // The app ran; the browser will refuse the page access to the answer.
    assert_eq!(response.text(), "hello GET");
    assert_eq!(response.header("access-control-allow-origin"), None);
    assert_eq!(response.header("vary"), Some("Origin"));
}

#[tokio::test]
async fn any_origin_answers_star_without_vary() {
    let client = client(CorsLayer::new().allow_any_origin());
    let response = client
        .send(TestRequest::get("/").header("origin", "https://x.example"))
        .await
        .unwrap();
    assert_eq!(response.header("access-control-allow-origin"), Some("*"));
    assert_eq!(response.header("vary"), None);
}

#[tokio::test]
async fn any_origin_with_credentials_echoes_the_origin() {
    let client = client(CorsLayer::new().allow_any_origin().allow_credentials(true));
    let response = client
        .send(TestRequest::get("/").header("origin", "https://x.example"))
        .await
        .unwrap();
    assert_eq!(
        response.header("access-control-allow-origin"),
        Some("https://x.example")
    );
    assert_eq!(
        response.header("access-control-allow-credentials"),
        Some("true")
    );
    assert_eq!(response.header("vary"), Some("Origin"));
    let response = client
        .send(preflight("https://y.example", "GET"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.header("access-control-allow-origin"),
        Some("https://y.example")
    );
}

#[tokio::test]
async fn regex_origins_match_whole_origins_only() {
    let client = client(
        CorsLayer::new()
            .allow_origin_regex(r"https://[a-z]+\.example\.org")
            .unwrap(),
    );
    let ok = client
        .send(TestRequest::get("/").header("origin", "https://api.example.org"))
        .await
        .unwrap();
    assert_eq!(
        ok.header("access-control-allow-origin"),
        Some("https://api.example.org")
    );
    let suffix = client
        .send(TestRequest::get("/").header("origin", "https://api.example.org.evil.com"))
        .await
        .unwrap();
    assert_eq!(suffix.header("access-control-allow-origin"), None);
}

#[tokio::test]
async fn invalid_regex_is_an_error() {
    assert!(CorsLayer::new().allow_origin_regex("(").is_err());
}

#[tokio::test]
async fn allowed_preflight_gets_200_with_methods_headers_and_max_age() {
    let client = client(
        CorsLayer::new()
            .allow_origins(["https://a.example"])
            .allow_methods([Method::GET, Method::POST])
            .allow_headers(["X-Token"])
            .max_age(Some(std::time::Duration::from_secs(120))),
    );
    let response = client
        .send(
            preflight("https://a.example", "POST")
                .header("access-control-request-headers", "x-token, content-type"),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text(), "OK");
    assert_eq!(
        response.header("access-control-allow-origin"),
        Some("https://a.example")
    );
    assert_eq!(
        response.header("access-control-allow-methods"),
        Some("GET, POST")
    );
    let allowed = response.header("access-control-allow-headers").unwrap();
    assert!(
        allowed.contains("x-token") && allowed.contains("content-type"),
        "{allowed}"
    );
    assert_eq!(response.header("access-control-max-age"), Some("120"));
    assert_eq!(response.header("vary"), Some("Origin"));
}

#[tokio::test]
async fn preflight_never_reaches_the_app() {
    let client = client(CorsLayer::new().allow_any_origin());
    let response = client
        .send(preflight("https://a.example", "GET"))
        .await
        .unwrap();
    assert_eq!(response.text(), "OK");
}

#[tokio::test]
async fn preflight_with_disallowed_origin_gets_400_naming_it() {
    let client = client(CorsLayer::new().allow_origins(["https://a.example"]));
    let response = client
        .send(preflight("https://evil.example", "GET"))
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(response.text(), "Disallowed CORS origin");
    assert_eq!(response.header("access-control-allow-origin"), None);
}

#[tokio::test]
async fn preflight_with_disallowed_method_and_header_gets_400_naming_both() {
    let client = client(CorsLayer::new().allow_origins(["https://a.example"]));
    let response = client
        .send(
            preflight("https://a.example", "DELETE")
                .header("access-control-request-headers", "x-secret"),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(response.text(), "Disallowed CORS method, headers");
}

#[tokio::test]
async fn any_header_echoes_the_requested_ones() {
    let client = client(
        CorsLayer::new()
            .allow_any_origin()
            .allow_any_method()
            .allow_any_header(),
    );
    let response = client
        .send(
            preflight("https://a.example", "PATCH")
                .header("access-control-request-headers", "x-one, x-two"),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.header("access-control-allow-headers"),
        Some("x-one, x-two")
    );
    assert_eq!(
        response.header("access-control-allow-methods"),
        Some("PATCH")
    );
}

#[tokio::test]
async fn plain_options_without_request_method_reaches_the_app() {
    let client = client(CorsLayer::new().allow_any_origin());
    let response = client
        .send(TestRequest::new(Method::OPTIONS, "/").header("origin", "https://a.example"))
        .await
        .unwrap();
    assert_eq!(response.text(), "hello OPTIONS");
    assert_eq!(response.header("access-control-allow-origin"), Some("*"));
}

#[tokio::test]
async fn vary_is_appended_to_the_apps_own() {
    async fn varying(_: Scope, _: Receiver, mut send: Sender) -> Result<(), Error> {
        Response::text("x")
            .header(
                http::header::VARY,
                http::HeaderValue::from_static("Accept-Language"),
            )
            .send(&mut send)
            .await
    }
    let client =
        TestClient::new(varying.with(CorsLayer::new().allow_origins(["https://a.example"])));
    let response = client
        .send(TestRequest::get("/").header("origin", "https://a.example"))
        .await
        .unwrap();
    let vary: Vec<_> = response
        .headers()
        .get_all("vary")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(vary, ["Accept-Language", "Origin"]);
}

#[tokio::test]
async fn websocket_scopes_pass_through() {
    async fn ws(scope: Scope, receive: Receiver, send: Sender) -> Result<(), Error> {
        let Scope::WebSocket(scope) = scope else {
            return Ok(());
        };
        let mut socket = asgi::ws::WebSocket::new(scope, receive, send);
        socket.accept().await?;
        socket.send_text("in").await?;
        socket.close(1000, "").await
    }
    let client = TestClient::new(ws.with(CorsLayer::new()));
    let mut session = client
        .websocket("/")
        .header("origin", "https://evil.example")
        .connect()
        .await
        .unwrap();
    assert_eq!(session.receive_text().await.unwrap(), "in");
}
