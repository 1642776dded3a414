//! ASGI apps as tower services with `AsgiService`, nested in an axum router and served by
//! `axum::serve` over real sockets: mount point, client, WebSockets, disconnects, errors.

mod common;

#[allow(dead_code)]
#[path = "../examples/axum_interop/app.rs"]
mod interop;

use std::net::SocketAddr;
use std::time::Duration;

use asgi::core::ShutdownSignal;
use asgi::core::host::Shutdown;
use asgi::prelude::*;
use asgi::tower::AsgiService;
use bytes::Bytes;
use common::{PATIENCE, Report, fetch, full, get as get_request};
use futures_util::{SinkExt, StreamExt};
use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

/// `axum::serve` on `127.0.0.1:0` with the client address available; aborted on drop.
struct AxumServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for AxumServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(router: axum::Router) -> AxumServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    let task = tokio::spawn(async move {
        axum::serve(listener, service).await.unwrap();
    });
    AxumServer { addr, task }
}

#[tokio::test]
async fn nested_asgi_app_sees_its_root_path_and_the_client() {
    let server = serve(interop::served_by_axum(ShutdownSignal::never())).await;
    let answer = fetch(server.addr, "/asgi/hello").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.text(),
        "Hello from ASGI\nroot_path=/asgi path=/asgi/hello\n"
    );
    let wsgi = fetch(server.addr, "/legacy/").await;
    assert_eq!(
        wsgi.text(),
        "legacy WSGI app\nSCRIPT_NAME=/legacy\nPATH_INFO=/\n"
    );
    assert_eq!(
        fetch(server.addr, "/axum/hello").await.text(),
        "Hello from axum"
    );

    let (report, reported) = Report::<(String, String, Option<SocketAddr>, Bytes)>::new();
    let app = common::http_only(move |scope, mut receive, mut send| {
        let report = report.clone();
        async move {
            let Scope::Http(http) = scope else {
                unreachable!()
            };
            let mut body = Vec::new();
            loop {
                match receive.recv().await {
                    ReceiveEvent::HttpRequest {
                        body: chunk,
                        more_body,
                    } => {
                        body.extend_from_slice(&chunk);
                        if !more_body {
                            break;
                        }
                    }
                    _ => return Err(Error::disconnected()),
                }
            }
            report.send((http.root_path, http.path, http.client, body.into()));
            send.send(SendEvent::response_start(
                StatusCode::CREATED,
                HeaderMap::new(),
            ))
            .await?;
            send.send(SendEvent::response_body("stored", false)).await?;
            Ok(())
        }
    });
    let router = axum::Router::new().nest_service("/api/v1", AsgiService::new(app));
    let server = serve(router).await;
    let stream = TcpStream::connect(server.addr).await.unwrap();
    let local = stream.local_addr().unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let request = Request::post("/api/v1/items/a%20b?x=1")
        .header("host", "test")
        .body(full("the request body"))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let answer = common::read(response).await.unwrap();
    assert_eq!(answer.status, StatusCode::CREATED);
    assert_eq!(answer.text(), "stored");
    let (root_path, path, client, body) = reported.await.unwrap();
    assert_eq!(root_path, "/api/v1");
    assert_eq!(path, "/api/v1/items/a b");
    assert_eq!(client, Some(local));
    assert_eq!(body, "the request body");
}

#[tokio::test]
async fn asgi_websocket_echo_works_through_axum() {
    let server = serve(interop::served_by_axum(ShutdownSignal::never())).await;
    let (mut ws, response) = tokio_tungstenite::connect_async(format!("ws://{}/ws", server.addr))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    for text in ["one", "two", "three"] {
        ws.send(Message::text(text)).await.unwrap();
        let echoed = tokio::time::timeout(PATIENCE, ws.next()).await.unwrap();
        assert_eq!(echoed.unwrap().unwrap(), Message::text(text));
    }
    ws.send(Message::binary(vec![0u8, 1, 2])).await.unwrap();
    let echoed = tokio::time::timeout(PATIENCE, ws.next()).await.unwrap();
    assert_eq!(echoed.unwrap().unwrap(), Message::binary(vec![0u8, 1, 2]));
    ws.close(None).await.unwrap();
    // The close handshake completes: the server answers the close frame.
    let closed = tokio::time::timeout(PATIENCE, ws.next()).await.unwrap();
    assert!(matches!(closed, Some(Ok(Message::Close(_))) | None));
}

#[tokio::test]
async fn shutdown_signal_closes_open_websockets_with_1001() {
    let shutdown = Shutdown::new();
    let server = serve(interop::served_by_axum(shutdown.signal())).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", server.addr))
        .await
        .unwrap();
    ws.send(Message::text("ping")).await.unwrap();
    let _ = tokio::time::timeout(PATIENCE, ws.next()).await.unwrap();
    shutdown.trigger();
    let frame = tokio::time::timeout(PATIENCE, ws.next()).await.unwrap();
    match frame {
        Some(Ok(Message::Close(Some(close)))) => assert_eq!(u16::from(close.code), 1001),
        other => panic!("expected a close frame with 1001, got {other:?}"),
    }
}

#[tokio::test]
async fn websocket_refused_by_the_app_gets_403() {
    let app = |_: Scope, _: Receiver, mut send: Sender| async move {
        send.send(SendEvent::WebSocketClose {
            code: 1008,
            reason: String::new(),
        })
        .await?;
        Ok(())
    };
    let router = axum::Router::new().route_service("/ws", AsgiService::new(app));
    let server = serve(router).await;
    match tokio_tungstenite::connect_async(format!("ws://{}/ws", server.addr)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), StatusCode::FORBIDDEN);
        }
        other => panic!("expected a 403, got {other:?}"),
    }
}

#[tokio::test]
async fn dropping_the_response_delivers_http_disconnect_to_the_app() {
    let (report, reported) = Report::<&'static str>::new();
    let app = common::http_only(move |_, mut receive, mut send| {
        let report = report.clone();
        async move {
            send.send(SendEvent::response_start(StatusCode::OK, HeaderMap::new()))
                .await?;
            send.send(SendEvent::response_body("first chunk", true))
                .await?;
            // The body was read (it is empty); the next event is the end of the request.
            let _ = receive.recv().await;
            match receive.recv().await {
                ReceiveEvent::HttpDisconnect => report.send("http.disconnect"),
                _ => report.send("something else"),
            }
            Ok(())
        }
    });
    let router = axum::Router::new().route_service("/stream", AsgiService::new(app));
    let server = serve(router).await;
    let (mut sender, conn) = common::h1(server.addr).await;
    let response = sender.send_request(get_request("/stream")).await.unwrap();
    let mut body = response.into_body();
    let first = tokio::time::timeout(PATIENCE, body.frame()).await.unwrap();
    assert_eq!(first.unwrap().unwrap().into_data().unwrap(), "first chunk");
    // The client leaves while the app waits in `recv`.
    drop(body);
    drop(sender);
    conn.abort();
    let what = tokio::time::timeout(PATIENCE, reported)
        .await
        .expect("the disconnect reaches the app in time")
        .unwrap();
    assert_eq!(what, "http.disconnect");
}

#[tokio::test]
async fn client_leaving_mid_upload_gives_the_app_http_disconnect() {
    let (report, reported) = Report::<String>::new();
    let app = common::http_only(move |_, mut receive, _send| {
        let report = report.clone();
        async move {
            let mut received = 0;
            loop {
                match receive.recv().await {
                    ReceiveEvent::HttpRequest { body, more_body } => {
                        received += body.len();
                        if !more_body {
                            report.send(format!("complete after {received} bytes"));
                            return Ok(());
                        }
                    }
                    ReceiveEvent::HttpDisconnect => {
                        report.send(format!("http.disconnect after {received} bytes"));
                        return Ok(());
                    }
                    _ => return Ok(()),
                }
            }
        }
    });
    let router = axum::Router::new().route_service("/upload", AsgiService::new(app));
    let server = serve(router).await;
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
    assert_eq!(what, "http.disconnect after 1000 bytes");
}

#[tokio::test]
async fn panicking_asgi_app_gives_500_and_axum_keeps_serving() {
    let app = common::http_only(|scope, _, _| async move {
        if scope.path() == Some("/boom") {
            panic!("the app panicked on purpose");
        }
        Ok(())
    });
    let router = axum::Router::new()
        .route_service("/boom", AsgiService::new(app))
        .route("/hello", axum::routing::get(|| async { "still here" }));
    let server = serve(router).await;
    let answer = fetch(server.addr, "/boom").await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(fetch(server.addr, "/hello").await.text(), "still here");
}

#[tokio::test]
async fn asgi_app_returning_without_a_response_gives_500() {
    let app = common::http_only(|_, _, _| async { Ok(()) });
    let router = axum::Router::new().route_service("/nothing", AsgiService::new(app));
    let server = serve(router).await;
    assert_eq!(
        fetch(server.addr, "/nothing").await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
}

#[tokio::test]
async fn asgi_app_failing_after_the_start_aborts_the_response() {
    let app = common::http_only(|_, _, mut send| async move {
        send.send(SendEvent::response_start(StatusCode::OK, HeaderMap::new()))
            .await?;
        send.send(SendEvent::response_body("partial", true)).await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
        Err(Error::msg("the app failed mid-body"))
    });
    let router = axum::Router::new()
        .route_service("/fail", AsgiService::new(app))
        .route("/hello", axum::routing::get(|| async { "still here" }));
    let server = serve(router).await;
    let (mut sender, _conn) = common::h1(server.addr).await;
    let response = sender.send_request(get_request("/fail")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let read = tokio::time::timeout(PATIENCE, response.into_body().collect())
        .await
        .expect("the abort comes in time");
    assert!(read.is_err(), "a truncated body must not look complete");
    assert_eq!(fetch(server.addr, "/hello").await.text(), "still here");
}

#[tokio::test]
async fn streamed_response_and_trailers_reach_the_client() {
    let app = common::http_only(|_, _, mut send| async move {
        send.send(SendEvent::HttpResponseStart {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            trailers: true,
        })
        .await?;
        for i in 0..3 {
            send.send(SendEvent::response_body(format!("part {i};"), true))
                .await?;
        }
        send.send(SendEvent::response_body("", false)).await?;
        let mut trailers = HeaderMap::new();
        trailers.insert("x-checksum", "abc".parse().unwrap());
        send.send(SendEvent::HttpResponseTrailers {
            headers: trailers,
            more_trailers: false,
        })
        .await?;
        Ok(())
    });
    let router = axum::Router::new().route_service("/parts", AsgiService::new(app));
    let server = serve(router).await;
    let answer = common::fetch_h2_with_trailers(server.addr, "/parts").await;
    assert_eq!(answer.text(), "part 0;part 1;part 2;");
    let trailers = answer.trailers.expect("trailers arrive");
    assert_eq!(trailers["x-checksum"], "abc");
}

/// An app that declares what its scope offers, then answers with `http.response.pathsend` of
/// `path` (and trailers when `trailers`), reporting whether the scope declared `pathsend`
/// and what `send` returned.
fn pathsend_app(
    path: std::path::PathBuf,
    trailers: bool,
    report: Report<(bool, Result<(), SendError>)>,
) -> impl App {
    common::http_only(move |scope, _, mut send| {
        let path = path.clone();
        let report = report.clone();
        async move {
            let Scope::Http(http) = scope else {
                unreachable!()
            };
            let declared = http
                .extensions
                .supports(asgi::core::extensions::HTTP_RESPONSE_PATHSEND);
            send.send(SendEvent::HttpResponseStart {
                status: StatusCode::OK,
                headers: HeaderMap::new(),
                trailers,
            })
            .await?;
            let result = send.send(SendEvent::HttpResponsePathsend { path }).await;
            report.send((declared, result.clone()));
            result?;
            if trailers {
                let mut fields = HeaderMap::new();
                fields.insert("x-file", "sent".parse().unwrap());
                send.send(SendEvent::HttpResponseTrailers {
                    headers: fields,
                    more_trailers: false,
                })
                .await?;
            }
            Ok(())
        }
    })
}

/// A file of `len` bytes that are not all alike, at a path unique to this test.
fn file_of(name: &str, len: usize) -> (std::path::PathBuf, Vec<u8>) {
    let path = common::temp_path(name);
    let content: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, &content).unwrap();
    (path, content)
}

#[tokio::test]
async fn pathsend_through_axum_sends_the_whole_file_with_its_length() {
    // Three full chunks and a short one.
    let (path, content) = file_of("tower-pathsend.bin", 3 * 64 * 1024 + 123);
    let (report, reported) = Report::new();
    let router = axum::Router::new().nest_service(
        "/files",
        AsgiService::new(pathsend_app(path.clone(), false, report)),
    );
    let server = serve(router).await;
    let answer = fetch(server.addr, "/files/data.bin").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.headers[http::header::CONTENT_LENGTH],
        content.len().to_string()
    );
    assert!(
        answer
            .headers
            .get(http::header::TRANSFER_ENCODING)
            .is_none()
    );
    assert_eq!(answer.body.len(), content.len());
    assert!(answer.body[..] == content[..], "the bytes are the file's");
    let (declared, result) = reported.await.unwrap();
    assert!(declared, "the scope declares http.response.pathsend");
    assert_eq!(result, Ok(()));
    std::fs::remove_file(&path).unwrap();
}

#[tokio::test]
async fn pathsend_with_trailers_sends_the_file_then_the_trailers() {
    let (path, content) = file_of("tower-pathsend-trailers.bin", 100_000);
    let (report, reported) = Report::new();
    let router = axum::Router::new().route_service(
        "/file",
        AsgiService::new(pathsend_app(path.clone(), true, report)),
    );
    let server = serve(router).await;
    let answer = common::fetch_h2_with_trailers(server.addr, "/file").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer.body[..] == content[..], "the bytes are the file's");
    let trailers = answer.trailers.expect("trailers after the file");
    assert_eq!(trailers["x-file"], "sent");
    assert_eq!(reported.await.unwrap().1, Ok(()));
    std::fs::remove_file(&path).unwrap();
}

#[tokio::test]
async fn pathsend_of_a_missing_file_gives_500_and_an_io_error_to_the_app() {
    let path = common::temp_path("tower-pathsend-missing.bin");
    let (report, reported) = Report::new();
    let router = axum::Router::new()
        .route_service(
            "/missing",
            AsgiService::new(pathsend_app(path, false, report)),
        )
        .route("/hello", axum::routing::get(|| async { "still here" }));
    let server = serve(router).await;
    let answer = fetch(server.addr, "/missing").await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    let (_, result) = reported.await.unwrap();
    assert_eq!(result, Err(SendError::Io(std::io::ErrorKind::NotFound)));
    assert_eq!(fetch(server.addr, "/hello").await.text(), "still here");
}

#[tokio::test]
async fn pathsend_of_a_relative_path_is_an_invalid_input_error() {
    let (report, reported) = Report::new();
    let router = axum::Router::new().route_service(
        "/relative",
        AsgiService::new(pathsend_app("Cargo.toml".into(), false, report)),
    );
    let server = serve(router).await;
    let answer = fetch(server.addr, "/relative").await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    let (_, result) = reported.await.unwrap();
    assert_eq!(result, Err(SendError::Io(std::io::ErrorKind::InvalidInput)));
}
