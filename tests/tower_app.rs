//! An axum router (a tower service) as an ASGI app with `TowerApp`, served by this project's
//! server over real sockets: under a `Mount` beside ASGI and WSGI apps, with tower-http
//! layers, and on its error paths.

mod common;

#[allow(dead_code)]
#[path = "../examples/axum_interop/app.rs"]
mod interop;

use std::convert::Infallible;
use std::io::Read;
use std::time::Duration;

use asgi::core::host::lifespan::{Lifespan, Startup};
use asgi::prelude::*;
use asgi::server::mount::Mount;
use asgi::tower::{AsgiService, TowerApp};
use axum::body::Body as AxumBody;
use axum::routing::{get, post};
use bytes::Bytes;
use common::{PATIENCE, Report, fetch, full, get as get_request, send, start};
use futures_util::StreamExt;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

#[tokio::test]
async fn axum_router_under_a_mount_sees_its_route_path_the_client_and_the_body() {
    let server = start(interop::served_by_asgi(), |b| b).await;

    let stream = TcpStream::connect(server.addr).await.unwrap();
    let local = stream.local_addr().unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let response = sender
        .send_request(get_request("/axum/whoami?x=1"))
        .await
        .unwrap();
    let answer = common::read(response).await.unwrap();
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.text(),
        format!("uri=/whoami?x=1 original=/axum/whoami?x=1 client={local}\n")
    );

    let hello = fetch(server.addr, "/axum/hello").await;
    assert_eq!(hello.text(), "Hello from axum");
    let echo = send(
        server.addr,
        Request::post("/axum/echo")
            .body(full("the body, streamed back"))
            .unwrap(),
    )
    .await;
    assert_eq!(echo.text(), "the body, streamed back");

    // The neighbours answer beside it.
    let asgi = fetch(server.addr, "/asgi/hello").await;
    assert_eq!(
        asgi.text(),
        "Hello from ASGI\nroot_path=/asgi path=/asgi/hello\n"
    );
    let wsgi = fetch(server.addr, "/legacy/").await;
    assert_eq!(
        wsgi.text(),
        "legacy WSGI app\nSCRIPT_NAME=/legacy\nPATH_INFO=/\n"
    );
    // An axum 404 is the router's own answer.
    assert_eq!(
        fetch(server.addr, "/axum/nothing").await.status,
        StatusCode::NOT_FOUND
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn escaped_paths_reach_axum_as_they_came() {
    let router = axum::Router::new().route(
        "/files/{name}",
        get(
            |axum::extract::Path(name): axum::extract::Path<String>, uri: http::Uri| async move {
                format!("{name} {uri}")
            },
        ),
    );
    let server = start(Mount::new().mount("/api", TowerApp::new(router)), |b| b).await;
    let answer = fetch(server.addr, "/api/files/a%20b%2Fc").await;
    assert_eq!(answer.text(), "a b/c /files/a%20b%2Fc");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn lifespan_is_acknowledged() {
    let app = TowerApp::new(interop::axum_routes());
    let Startup::Complete(lifespan) = Lifespan::startup(app).await else {
        panic!("the lifespan startup completes");
    };
    lifespan.shutdown().await.unwrap();
}

#[tokio::test]
async fn websocket_goes_to_the_fallback_app_or_is_refused_with_403() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;

    let refusing = Mount::new().mount("/axum", TowerApp::new(interop::axum_routes()));
    let server = start(refusing, |b| b).await;
    let url = format!("ws://{}/axum/ws", server.addr);
    match tokio_tungstenite::connect_async(&url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), StatusCode::FORBIDDEN);
        }
        other => panic!("expected a 403, got {other:?}"),
    }
    server.stop().await.unwrap();

    let with_fallback = TowerApp::new(interop::axum_routes()).websocket(interop::ws_echo);
    let server = start(with_fallback, |b| b).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", server.addr))
        .await
        .unwrap();
    ws.send(Message::text("echo me")).await.unwrap();
    let echoed = tokio::time::timeout(PATIENCE, ws.next()).await.unwrap();
    assert_eq!(echoed.unwrap().unwrap(), Message::text("echo me"));
    ws.close(None).await.unwrap();
    // The HTTP routes still go to axum.
    assert_eq!(fetch(server.addr, "/hello").await.text(), "Hello from axum");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn panicking_axum_handler_gives_500_and_the_server_keeps_serving() {
    let router = axum::Router::new()
        .route(
            "/panic",
            get(|| async {
                if true {
                    panic!("handler panicked on purpose");
                }
                "unreachable"
            }),
        )
        .route("/hello", get(|| async { "still here" }));
    let server = start(TowerApp::new(router), |b| b).await;
    let answer = fetch(server.addr, "/panic").await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(fetch(server.addr, "/hello").await.text(), "still here");
    server.stop().await.unwrap();
}

/// A body of `chunks_before` chunks, then (after a pause, so that the head is out) an error.
fn failing_body(chunks_before: usize) -> AxumBody {
    let stream = futures_util::stream::unfold(0, move |i| async move {
        if i < chunks_before {
            return Some((Ok(Bytes::from(format!("chunk {i}\n"))), i + 1));
        }
        if i == chunks_before {
            if chunks_before > 0 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            return Some((Err(std::io::Error::other("body failed")), i + 1));
        }
        None
    });
    AxumBody::from_stream(stream)
}

#[tokio::test]
async fn body_failing_before_its_first_frame_gives_500() {
    let router = axum::Router::new().route("/fail", get(|| async { failing_body(0) }));
    let server = start(TowerApp::new(router), |b| b).await;
    let answer = fetch(server.addr, "/fail").await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(!answer.text().contains("chunk"));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn body_failing_after_the_start_aborts_the_response() {
    let router = axum::Router::new()
        .route("/fail", get(|| async { failing_body(2) }))
        .route("/ok", get(|| async { "still here" }));
    let server = start(TowerApp::new(router), |b| b).await;
    let (mut sender, _conn) = common::h1(server.addr).await;
    let response = sender.send_request(get_request("/fail")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // The client sees a broken body, never a complete-looking one.
    let read = tokio::time::timeout(PATIENCE, response.into_body().collect())
        .await
        .expect("the abort comes in time");
    assert!(read.is_err(), "a truncated body must not look complete");
    assert_eq!(fetch(server.addr, "/ok").await.text(), "still here");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn client_leaving_mid_upload_is_a_body_error_for_the_handler() {
    let (report, reported) = Report::<String>::new();
    let router = axum::Router::new().route(
        "/upload",
        post(move |body: AxumBody| {
            let report = report.clone();
            async move {
                let mut stream = body.into_data_stream();
                let mut received = 0;
                while let Some(chunk) = stream.next().await {
                    match chunk {
                        Ok(chunk) => received += chunk.len(),
                        Err(e) => {
                            report.send(format!("error after {received} bytes: {e}"));
                            return StatusCode::BAD_REQUEST;
                        }
                    }
                }
                report.send(format!("complete: {received} bytes"));
                StatusCode::OK
            }
        }),
    );
    let server = start(TowerApp::new(router), |b| b).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"POST /upload HTTP/1.1\r\nhost: test\r\ncontent-length: 100000\r\n\r\n")
        .await
        .unwrap();
    stream.write_all(&[b'x'; 1000]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(stream);
    let what = tokio::time::timeout(PATIENCE, reported)
        .await
        .unwrap()
        .unwrap();
    assert!(
        what.starts_with("error after 1000 bytes"),
        "the handler saw: {what}"
    );
    server.stop().await.unwrap();
}

/// An ASGI app that streams a long text in several body events.
async fn long_text(scope: Scope, _: Receiver, mut send: Sender) -> Result<(), Error> {
    let Scope::Http(_) = scope else {
        return Ok(());
    };
    let mut headers = HeaderMap::new();
    headers.insert("content-type", "text/plain".parse().unwrap());
    send.send(SendEvent::response_start(StatusCode::OK, headers))
        .await?;
    for i in 0..100 {
        let line = format!("line {i}: the same words compress well\n");
        send.send(SendEvent::response_body(line, true)).await?;
    }
    send.send(SendEvent::response_body("end\n", false)).await?;
    Ok(())
}

#[tokio::test]
async fn tower_http_compression_and_trace_around_an_asgi_app_served_as_an_app() {
    use tower::ServiceBuilder;
    use tower_http::compression::CompressionLayer;
    use tower_http::trace::TraceLayer;

    let (logs, _guard) = common::LogCapture::install();
    let stack = ServiceBuilder::new()
        .layer(TraceLayer::new_for_http())
        .layer(CompressionLayer::new())
        .service(AsgiService::new(long_text));
    let server = start(TowerApp::new(stack), |b| b).await;

    let request = Request::get("/text")
        .header("host", "test")
        .header("accept-encoding", "gzip")
        .body(common::empty())
        .unwrap();
    let answer = send(server.addr, request).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.headers["content-encoding"], "gzip");
    let mut text = String::new();
    flate2::read::GzDecoder::new(&answer.body[..])
        .read_to_string(&mut text)
        .unwrap();
    assert!(text.starts_with("line 0: the same words compress well\n"));
    assert!(text.ends_with("line 99: the same words compress well\nend\n"));
    assert!(answer.body.len() < text.len(), "the body is compressed");

    // Without `accept-encoding`, the same app answers plain text.
    let plain = fetch(server.addr, "/text").await;
    assert!(plain.headers.get("content-encoding").is_none());
    assert_eq!(plain.text(), text);

    let logged = logs.text();
    assert!(logged.contains("started processing request"), "{logged}");
    assert!(logged.contains("finished processing request"), "{logged}");
    server.stop().await.unwrap();
}

/// A router whose `/trailers` answers `payload` in two data frames, then a `grpc-status: 0`
/// trailer.
fn trailers_router() -> axum::Router {
    axum::Router::new().route(
        "/trailers",
        get(|| async {
            let mut trailers = HeaderMap::new();
            trailers.insert("grpc-status", "0".parse().unwrap());
            let frames = futures_util::stream::iter([
                Ok::<_, Infallible>(http_body::Frame::data(Bytes::from("pay"))),
                Ok(http_body::Frame::data(Bytes::from("load"))),
                Ok(http_body::Frame::trailers(trailers)),
            ]);
            AxumBody::new(http_body_util::StreamBody::new(frames))
        }),
    )
}

#[tokio::test]
async fn trailers_pass_through_when_the_request_asks_for_them() {
    let server = start(TowerApp::new(trailers_router()), |b| b).await;
    let answer = common::fetch_h2_with_trailers(server.addr, "/trailers").await;
    assert_eq!(answer.text(), "payload");
    let trailers = answer.trailers.expect("trailers arrive");
    assert_eq!(trailers["grpc-status"], "0");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn trailers_over_http2_follow_one_rule_on_the_scope_and_the_direct_path() {
    // At the root, a connection's first request goes through the scope, the next ones take
    // the direct path (see `common::h2_in_a_row`): both send the trailers when asked for,
    // and neither when not (the response does not name them in a `Trailer` header).
    let server = start(TowerApp::new(trailers_router()), |b| b).await;
    let asked = common::h2_in_a_row(server.addr, "/trailers", &[("te", "trailers")], 2).await;
    for answer in &asked {
        assert_eq!(answer.text(), "payload");
        let trailers = answer.trailers.as_ref().expect("trailers when asked for");
        assert_eq!(trailers["grpc-status"], "0");
    }
    let not_asked = common::h2_in_a_row(server.addr, "/trailers", &[], 2).await;
    for answer in &not_asked {
        assert_eq!(answer.text(), "payload");
        assert!(answer.trailers.is_none(), "{:?}", answer.trailers);
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn trailers_are_dropped_when_the_request_does_not_ask_for_them() {
    let server = start(TowerApp::new(trailers_router()), |b| b).await;
    // HTTP/1.1 without `TE: trailers`: the body arrives whole, the trailers do not.
    let answer = fetch(server.addr, "/trailers").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.text(), "payload");
    assert!(answer.headers.get("grpc-status").is_none());
    server.stop().await.unwrap();
}

#[tokio::test]
async fn service_error_gives_500() {
    let service = tower::service_fn(|_: Request<asgi::tower::ReceiverBody>| async {
        Err::<http::Response<String>, _>(std::io::Error::other("the service is down"))
    });
    let server = start(TowerApp::new(service), |b| b).await;
    let answer = fetch(server.addr, "/").await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    server.stop().await.unwrap();
}

/// What the lifespan below puts into the state.
#[derive(Clone)]
struct Greeting(&'static str);

#[tokio::test]
async fn handlers_see_the_root_path_the_lifespan_state_and_the_shutdown_signal_as_an_extension() {
    use asgi::tower::ScopeInfo;
    use axum::Extension;

    let lifespan = |scope: Scope, mut receive: Receiver, mut send: Sender| async move {
        let Scope::Lifespan(lifespan) = scope else {
            return Ok(());
        };
        loop {
            match receive.recv().await {
                ReceiveEvent::LifespanStartup => {
                    lifespan.state.insert(Greeting("hello from the lifespan"))?;
                    send.send(SendEvent::LifespanStartupComplete).await?;
                }
                _ => {
                    send.send(SendEvent::LifespanShutdownComplete).await?;
                    return Ok(());
                }
            }
        }
    };
    let router = axum::Router::new().route(
        "/state",
        get(|Extension(info): Extension<ScopeInfo>| async move {
            let greeting = info.state.get::<Greeting>().map_or("none", |g| g.0);
            format!(
                "{greeting}; draining={}; root_path={}",
                info.shutdown.is_triggered(),
                info.root_path
            )
        }),
    );
    let app = Mount::new()
        .lifespan(lifespan)
        .mount("/axum", TowerApp::new(router));
    let server = start(app, |b| b).await;
    let answer = fetch(server.addr, "/axum/state").await;
    assert_eq!(
        answer.text(),
        "hello from the lifespan; draining=false; root_path=/axum"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn service_panicking_in_call_gives_500_and_the_server_keeps_serving() {
    let service = tower::service_fn(|request: Request<asgi::tower::ReceiverBody>| {
        if request.uri().path() == "/boom" {
            panic!("the service panicked in call on purpose");
        }
        async { Ok::<_, Infallible>(http::Response::new(String::from("fine"))) }
    });
    let server = start(TowerApp::new(service), |b| b).await;
    let answer = fetch(server.addr, "/boom").await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    let answer = fetch(server.addr, "/").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.text(), "fine");
    server.stop().await.unwrap();
}

/// A service that is not ready when first asked, and says so until asked again.
#[derive(Clone, Default)]
struct ReadyWhenAskedTwice {
    asked: bool,
}

impl tower::Service<Request<asgi::tower::ReceiverBody>> for ReadyWhenAskedTwice {
    type Response = http::Response<String>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        if self.asked {
            return std::task::Poll::Ready(Ok(()));
        }
        self.asked = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }

    fn call(&mut self, _: Request<asgi::tower::ReceiverBody>) -> Self::Future {
        let text = if self.asked {
            "ready"
        } else {
            "called before ready"
        };
        std::future::ready(Ok(http::Response::new(text.to_owned())))
    }
}

#[tokio::test]
async fn service_not_ready_at_once_gets_the_request_once_it_is_ready() {
    let server = start(TowerApp::new(ReadyWhenAskedTwice::default()), |b| b).await;
    let answer = fetch(server.addr, "/").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.text(), "ready");
    server.stop().await.unwrap();
}
