//! An axum router served at the root through `TowerApp` takes the server's direct path: the
//! server hands it each HTTP request as hyper has it, with no scope between. These tests
//! check, over real sockets, that a handler and a client see there what they see when the
//! router is mounted (the scope's path, `tests/tower_app.rs`): the same URI, client, body,
//! limits, trailers, log line and drain.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use asgi::server::middleware::proxy_headers::TrustedProxies;
use asgi::server::mount::Mount;
use asgi::tower::{ScopeInfo, TowerApp};
use axum::body::{Body as AxumBody, Bytes};
use axum::extract::{ConnectInfo, Extension, OriginalUri};
use axum::http::Uri;
use axum::routing::{get, post};
use common::{PATIENCE, Report, fetch, full, raw, send, start};
use http::{HeaderMap, Request, StatusCode};

/// Says what the handler sees of the request.
async fn whoami(
    uri: Uri,
    OriginalUri(original): OriginalUri,
    version: http::Version,
    client: Option<Extension<ConnectInfo<SocketAddr>>>,
    Extension(info): Extension<ScopeInfo>,
) -> String {
    let client = client.map_or_else(|| "unknown".to_owned(), |c| c.0.0.to_string());
    format!(
        "uri={uri} original={original} version={version:?} client={client} root_path={:?}\n",
        info.root_path
    )
}

fn router() -> axum::Router {
    axum::Router::new()
        .route("/whoami", get(whoami))
        .route("/echo", post(|body: Bytes| async move { body }))
}

#[tokio::test]
async fn router_at_the_root_sees_the_request_over_http1_and_http2_as_it_is_under_a_mount() {
    let server = start(TowerApp::new(router()), |b| b).await;
    let mounted = start(Mount::new().mount("/", TowerApp::new(router())), |b| b).await;

    for addr in [server.addr, mounted.addr] {
        let (mut h1, _conn) = common::h1(addr).await;
        let local = {
            // The client's address, as the server sees it: the one of this connection.
            let answer = common::read(h1.send_request(common::get("/whoami?x=1")).await.unwrap())
                .await
                .unwrap();
            assert_eq!(answer.status, StatusCode::OK);
            answer.text().to_owned()
        };
        assert!(
            local.starts_with(
                "uri=/whoami?x=1 original=/whoami?x=1 version=HTTP/1.1 client=127.0.0.1:"
            ),
            "{local}"
        );
        assert!(local.ends_with(" root_path=\"\"\n"), "{local}");

        // HTTP/2 carries the scheme and authority in the request: the handler still gets
        // the path and query, as from a scope; the same over the scope's path (the first
        // request of the connection) and the direct one (the next).
        let answers = common::h2_in_a_row(addr, "/whoami?x=2", &[], 2).await;
        for answer in &answers {
            assert_eq!(answer.status, StatusCode::OK);
            assert!(
                answer.text().starts_with(
                    "uri=/whoami?x=2 original=/whoami?x=2 version=HTTP/2.0 client=127.0.0.1:"
                ),
                "{}",
                answer.text()
            );
        }
        assert_eq!(answers[0].text(), answers[1].text());
    }
    server.stop().await.unwrap();
    mounted.stop().await.unwrap();
}

#[tokio::test]
async fn request_body_streams_to_the_router_at_the_root_and_back() {
    let server = start(TowerApp::new(router()), |b| b).await;
    let body = "x".repeat(200_000);
    let answer = send(
        server.addr,
        Request::post("/echo")
            .header("host", "test")
            .body(full(body.clone()))
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body.len(), body.len());
    assert_eq!(answer.text(), body);
    server.stop().await.unwrap();
}

/// A chunked upload of `chunks` chunks of 1,000 bytes, on a connection of its own.
fn chunked_upload(chunks: usize) -> Vec<u8> {
    let mut request =
        b"POST /echo HTTP/1.1\r\nhost: test\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
            .to_vec();
    for _ in 0..chunks {
        request.extend_from_slice(b"3e8\r\n");
        request.extend_from_slice(&[b'y'; 1000]);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    request
}

#[tokio::test]
async fn streamed_body_over_the_limit_gives_413_and_a_body_error_to_the_handler_at_the_root() {
    let (report, seen) = Report::new();
    let router = axum::Router::new().route(
        "/echo",
        post(move |body: AxumBody| {
            let report = report.clone();
            async move {
                // Read it frame by frame, to see how it ends.
                let result = axum::body::to_bytes(body, usize::MAX).await;
                report.send(result.map(|b| b.len()).map_err(|e| e.to_string()));
                "read"
            }
        }),
    );
    let server = start(TowerApp::new(router), |b| b.max_request_body(Some(4_000))).await;

    // No content-length: the server finds out while the body streams.
    let answer = raw(server.addr, &chunked_upload(10)).await;
    assert!(answer.starts_with("HTTP/1.1 413 "), "{answer}");
    let seen = tokio::time::timeout(PATIENCE, seen).await.unwrap().unwrap();
    assert!(seen.is_err(), "the handler read the whole body: {seen:?}");

    // Within the limit, the same upload goes through.
    let answer = raw(server.addr, &chunked_upload(3)).await;
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    assert!(answer.ends_with("read"), "{answer}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn content_length_over_the_limit_gives_413_before_the_router_at_the_root() {
    let server = start(TowerApp::new(router()), |b| b.max_request_body(Some(10))).await;
    let answer = send(
        server.addr,
        Request::post("/echo")
            .header("host", "test")
            .body(full("more than ten bytes"))
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn malformed_chunked_body_gives_400_at_the_root() {
    let server = start(TowerApp::new(router()), |b| b).await;
    let answer = raw(
        server.addr,
        b"POST /echo HTTP/1.1\r\nhost: test\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    // The server goes on serving.
    let hello = fetch(server.addr, "/whoami").await;
    assert_eq!(hello.status, StatusCode::OK);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn trusted_proxy_headers_give_the_router_at_the_root_the_forwarded_client_and_host() {
    let trusted: TrustedProxies = "127.0.0.1".parse().unwrap();
    let router = axum::Router::new().route(
        "/who",
        get(
            |ConnectInfo(client): ConnectInfo<SocketAddr>, headers: HeaderMap| async move {
                let host = headers
                    .get("host")
                    .and_then(|h| h.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                format!("client={client} host={host}")
            },
        ),
    );
    let server = start(TowerApp::new(router), |b| b.forwarded_allow_ips(trusted)).await;
    let answer = send(
        server.addr,
        Request::get("/who")
            .header("host", "internal")
            .header("forwarded", "for=203.0.113.7;proto=https;host=app.example")
            .body(common::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(answer.text(), "client=203.0.113.7:0 host=app.example");
    server.stop().await.unwrap();
}

/// A router whose `/slow` answers `done` after `millis`.
fn slow_router(millis: u64) -> axum::Router {
    axum::Router::new().route(
        "/slow",
        get(move || async move {
            tokio::time::sleep(Duration::from_millis(millis)).await;
            "done"
        }),
    )
}

#[tokio::test]
async fn graceful_shutdown_lets_a_request_at_the_root_finish() {
    let server = start(TowerApp::new(slow_router(300)), |b| b).await;
    let addr = server.addr;
    let request = tokio::spawn(async move { fetch(addr, "/slow").await });
    // Once the request is in, the drain starts.
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.stop().await.unwrap();
    let answer = tokio::time::timeout(PATIENCE, request)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.text(), "done");
}

#[tokio::test]
async fn root_path_setting_reaches_the_router_through_its_scope() {
    let server = start(TowerApp::new(router()), |b| b.root_path("/prefix")).await;
    let answer = fetch(server.addr, "/whoami").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(
        answer
            .text()
            .starts_with("uri=/whoami original=/prefix/whoami "),
        "{}",
        answer.text()
    );
    assert!(
        answer.text().ends_with(" root_path=\"/prefix\"\n"),
        "{}",
        answer.text()
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn many_http2_streams_at_once_all_get_their_answer_at_the_root() {
    // More streams than the connection's app calls at once: the ones beyond wait for a
    // place (on the scope's path) and every one is answered.
    let server = start(TowerApp::new(slow_router(50)), |b| {
        b.http2_max_concurrent_streams(Some(8))
    })
    .await;
    let mut h2 = common::h2(server.addr).await;
    // One request first, so that the client has the server's settings (its stream limit)
    // before it opens the others.
    let first = Request::get(format!("http://{}/slow", server.addr))
        .body(common::empty())
        .unwrap();
    let answer = common::read(h2.send_request(first).await.unwrap())
        .await
        .unwrap();
    assert_eq!(answer.text(), "done");
    let mut requests = Vec::new();
    for _ in 0..40 {
        let mut h2 = h2.clone();
        let addr = server.addr;
        requests.push(tokio::spawn(async move {
            let request = Request::get(format!("http://{addr}/slow"))
                .body(common::empty())
                .unwrap();
            let response = h2.send_request(request).await.unwrap();
            common::read(response).await.unwrap()
        }));
    }
    for request in requests {
        let answer = tokio::time::timeout(PATIENCE, request)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.text(), "done");
    }
    server.stop().await.unwrap();
}

/// An app that is an adapter over a direct service, and says which one answered: the app
/// (through its scope) or the service (directly).
struct Both {
    direct: asgi::server::server::DirectService,
}

struct SaysDirect;

impl asgi::server::server::DirectHttp for SaysDirect {
    fn call(
        &self,
        request: Request<asgi::server::server::DirectBody>,
        context: asgi::server::server::DirectContext,
    ) -> asgi::server::server::DirectFuture {
        let text = format!(
            "direct {} {} client={}",
            request.method(),
            request.uri(),
            context
                .client
                .map_or_else(|| "none".to_owned(), |c| c.ip().to_string())
        );
        Box::pin(async move {
            Ok(http::Response::new(
                asgi::server::server::DirectResponseBody::new(http_body_util::Full::new(
                    Bytes::from(text),
                )),
            ))
        })
    }
}

impl asgi::core::app::OwnedApp for Both {
    fn start(
        &self,
        scope: asgi::core::Scope,
        _receive: asgi::core::Receiver,
        mut send: asgi::core::Sender,
    ) -> asgi::core::app::AppFuture<'static> {
        use asgi::core::{Scope, SendEvent};
        Box::pin(async move {
            match scope {
                Scope::Http(http) => {
                    send.send(SendEvent::response_start(StatusCode::OK, HeaderMap::new()))
                        .await?;
                    let text = format!("scope {} {}", http.method, http.path);
                    send.send(SendEvent::response_body(text, false)).await?;
                }
                Scope::WebSocket(_) => {
                    send.send(SendEvent::WebSocketClose {
                        code: 1000,
                        reason: String::new(),
                    })
                    .await?;
                }
                _ => {}
            }
            Ok(())
        })
    }

    fn host_service(&self) -> Option<&(dyn std::any::Any + Send + Sync)> {
        Some(&self.direct)
    }
}

fn both() -> Both {
    Both {
        direct: asgi::server::server::DirectService::new(SaysDirect),
    }
}

#[tokio::test]
async fn server_hands_http_requests_to_the_direct_service_and_the_rest_to_the_app() {
    let server = start(both(), |b| b).await;
    // HTTP, over both protocols: the direct service, with the origin-form URI.
    assert_eq!(
        fetch(server.addr, "/a?b=1").await.text(),
        "direct GET /a?b=1 client=127.0.0.1"
    );
    // Over HTTP/2 the first request of a connection goes through the scope: until a response
    // completed, a stream the client resets at once must not reach a service (see
    // `Builder::http2_max_client_resets`). The next ones go to the direct service.
    let answers = common::h2_in_a_row(server.addr, "/h2", &[], 3).await;
    assert_eq!(answers[0].text(), "scope GET /h2");
    assert_eq!(answers[1].text(), "direct GET /h2 client=127.0.0.1");
    assert_eq!(answers[2].text(), "direct GET /h2 client=127.0.0.1");
    // A target that is not a path: the app's own answer.
    let answer = raw(
        server.addr,
        b"OPTIONS * HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.ends_with("scope OPTIONS *"), "{answer}");
    // A WebSocket handshake: the app, which refuses it.
    let answer = raw(
        server.addr,
        b"GET /ws HTTP/1.1\r\nhost: test\r\nconnection: upgrade, close\r\nupgrade: websocket\r\n\
          sec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 403 "), "{answer}");
    server.stop().await.unwrap();

    // Behind a middleware, or with a `root_path` setting, the app answers everything.
    let wrapped = asgi::core::AppExt::with(
        both(),
        asgi::server::middleware::request_id::RequestIdLayer::new(),
    );
    let server = start(wrapped, |b| b).await;
    assert_eq!(fetch(server.addr, "/a").await.text(), "scope GET /a");
    server.stop().await.unwrap();
    let server = start(both(), |b| b.root_path("/p")).await;
    assert_eq!(fetch(server.addr, "/a").await.text(), "scope GET /p/a");
    server.stop().await.unwrap();
}

/// Reports when it is dropped.
struct DropReport(Option<tokio::sync::oneshot::Sender<()>>);

impl Drop for DropReport {
    fn drop(&mut self) {
        if let Some(report) = self.0.take() {
            let _ = report.send(());
        }
    }
}

#[tokio::test]
async fn client_resetting_a_stream_on_the_direct_path_cancels_the_handler_as_axum_serve_does() {
    let (report, dropped) = tokio::sync::oneshot::channel();
    let report = std::sync::Arc::new(std::sync::Mutex::new(Some(report)));
    let router = axum::Router::new()
        .route("/fast", get(|| async { "fast" }))
        .route(
            "/slow",
            get(move || {
                let guard = DropReport(report.lock().unwrap().take());
                async move {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    drop(guard);
                    "slow"
                }
            }),
        );
    let server = start(TowerApp::new(router), |b| b).await;
    let mut h2 = common::h2(server.addr).await;
    let get = |path: &str| {
        Request::get(format!("http://{}{path}", server.addr))
            .body(common::empty())
            .unwrap()
    };
    // A first response completes: the connection's next requests take the direct path.
    let fast = common::read(h2.send_request(get("/fast")).await.unwrap())
        .await
        .unwrap();
    assert_eq!(fast.text(), "fast");
    // The client gives up on a slow request: hyper's client resets the stream.
    let slow = tokio::spawn(h2.send_request(get("/slow")));
    tokio::time::sleep(Duration::from_millis(200)).await;
    slow.abort();
    tokio::time::timeout(PATIENCE, dropped)
        .await
        .expect("the handler is dropped once its stream is reset")
        .unwrap();
    // The connection goes on serving.
    let again = common::read(h2.send_request(get("/fast")).await.unwrap())
        .await
        .unwrap();
    assert_eq!(again.text(), "fast");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn head_request_at_the_root_gets_the_get_length_and_no_body() {
    let router = axum::Router::new().route("/hello", get(|| async { "Hello from axum" }));
    let server = start(TowerApp::new(router), |b| b).await;
    let get = fetch(server.addr, "/hello").await;
    assert_eq!(get.text(), "Hello from axum");
    let head = send(
        server.addr,
        Request::head("/hello")
            .header("host", "test")
            .body(common::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(head.status, StatusCode::OK);
    assert!(head.body.is_empty());
    assert_eq!(
        head.headers["content-length"],
        get.body.len().to_string().as_str()
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn expect_continue_at_the_root_is_answered_when_the_handler_reads() {
    let server = start(TowerApp::new(router()), |b| b).await;
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(
        &mut stream,
        b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\n\
          Expect: 100-continue\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let interim = common::read_for(&mut stream, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(interim, "HTTP/1.1 100 Continue\r\n\r\n");
    tokio::io::AsyncWriteExt::write_all(&mut stream, b"hello")
        .await
        .unwrap();
    let response = common::read_to_close(&mut stream).await;
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(response.ends_with("\r\n\r\nhello"), "{response}");
    server.stop().await.unwrap();
}
