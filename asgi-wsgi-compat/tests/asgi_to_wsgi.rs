//! `AsgiToWsgi`: an async app behind the sync interface, driven here through `WsgiToAsgi`
//! (ASGI client -> WSGI host -> ASGI app) and from a plain thread.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use asgi_core::host::testing::{self, TestSession};
use asgi_core::{
    App, Error, HttpScope, ReceiveEvent, Receiver, Scope, SendEvent, Sender, ServerAddr,
};
use asgi_wsgi_compat::{AsgiToWsgi, Environ, Input, StartResponse, Writer, WsgiApp, WsgiToAsgi};
use bytes::Bytes;
use common::{next, next_body, scope, seen};
use http::header::HeaderValue;
use http::{HeaderMap, Method, StatusCode};
use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// The async app made sync and then async again, as a server would host it.
fn round_trip(app: impl App) -> WsgiToAsgi<AsgiToWsgi<impl App>> {
    WsgiToAsgi::new(AsgiToWsgi::new(app, Handle::current()))
}

/// Echoes each body chunk as it arrives.
async fn echo(_: Scope, mut receive: Receiver, mut send: Sender) -> Result<(), Error> {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("text/plain"));
    send.send(SendEvent::response_start(StatusCode::OK, headers))
        .await?;
    loop {
        match receive.recv().await {
            ReceiveEvent::HttpRequest { body, more_body } => {
                send.send(SendEvent::response_body(body, more_body)).await?;
                if !more_body {
                    return Ok(());
                }
            }
            _ => return Err(Error::disconnected()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_streams_both_ways_on_demand() {
    let mut session = TestSession::start(round_trip(echo), Scope::from(scope(Method::POST, "/")));
    session
        .send(ReceiveEvent::request("one", true))
        .await
        .unwrap();
    assert!(matches!(
        next(&mut session).await,
        Some(SendEvent::HttpResponseStart { status, .. }) if status == StatusCode::OK
    ));
    assert_eq!(next_body(&mut session).await, (Bytes::from("one"), true));
    session
        .send(ReceiveEvent::request("two", true))
        .await
        .unwrap();
    assert_eq!(next_body(&mut session).await, (Bytes::from("two"), true));
    session
        .send(ReceiveEvent::request("three", false))
        .await
        .unwrap();
    let mut rest = Vec::new();
    loop {
        let (body, more) = next_body(&mut session).await;
        rest.extend_from_slice(&body);
        if !more {
            break;
        }
    }
    assert_eq!(rest, b"three");
    session.finish().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inner_scope_mirrors_the_outer_one() {
    let captured: Arc<Mutex<Option<HttpScope>>> = Arc::default();
    let slot = captured.clone();
    let app = move |scope: Scope, _: Receiver, mut send: Sender| {
        let slot = slot.clone();
        async move {
            if let Scope::Http(http) = scope {
                *slot.lock().unwrap() = Some(*http);
            }
            send.send(SendEvent::response_start(
                StatusCode::NO_CONTENT,
                HeaderMap::new(),
            ))
            .await?;
            send.send(SendEvent::response_body("", false)).await?;
            Ok(())
        }
    };
    let mut outer = scope(Method::PUT, "/mount/caf\u{e9} x");
    outer.raw_path = Bytes::from_static(b"/mount/caf%C3%A9%20x");
    outer.root_path = "/mount".into();
    outer.query_string = Bytes::from_static(b"a=1&b=%20");
    outer.scheme = "https".into();
    outer
        .headers
        .insert("x-trace", HeaderValue::from_static("t-1"));
    outer
        .headers
        .insert("x_spoof", HeaderValue::from_static("no"));
    outer
        .headers
        .insert("content-type", HeaderValue::from_static("text/csv"));
    outer.client = Some("192.0.2.7:5555".parse().unwrap());
    outer.server = Some(ServerAddr::Tcp("127.0.0.1:8080".parse().unwrap()));
    let outcome = testing::call(&round_trip(app), Scope::from(outer), []).await;
    assert_eq!(outcome.status(), Some(StatusCode::NO_CONTENT));
    let inner = captured.lock().unwrap().take().unwrap();
    assert_eq!(inner.method, Method::PUT);
    assert_eq!(inner.path, "/mount/caf\u{e9} x");
    assert_eq!(&inner.raw_path[..], b"/mount/caf%C3%A9%20x");
    assert_eq!(inner.root_path, "/mount");
    assert_eq!(&inner.query_string[..], b"a=1&b=%20");
    assert_eq!(inner.scheme, "https");
    assert_eq!(inner.headers["x-trace"], "t-1");
    assert_eq!(inner.headers["content-type"], "text/csv");
    assert!(!inner.headers.contains_key("x-spoof") && !inner.headers.contains_key("x_spoof"));
    assert_eq!(inner.client, Some("192.0.2.7:5555".parse().unwrap()));
    assert_eq!(
        inner.server,
        Some(ServerAddr::Tcp("127.0.0.1:8080".parse().unwrap()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_before_start_gives_500() {
    let app = |_: Scope, _: Receiver, _: Sender| async { Err::<(), _>(Error::msg("no database")) };
    let outcome = testing::call(&round_trip(app), Scope::from(scope(Method::GET, "/")), []).await;
    assert_eq!(outcome.status(), Some(StatusCode::INTERNAL_SERVER_ERROR));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panic_before_start_gives_500() {
    async fn app(_: Scope, _: Receiver, _: Sender) -> Result<(), Error> {
        panic!("async handler bug")
    }
    let outcome = testing::call(&round_trip(app), Scope::from(scope(Method::GET, "/")), []).await;
    assert_eq!(outcome.status(), Some(StatusCode::INTERNAL_SERVER_ERROR));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_after_start_aborts_the_response() {
    let app = |_: Scope, _: Receiver, mut send: Sender| async move {
        send.send(SendEvent::response_start(StatusCode::OK, HeaderMap::new()))
            .await?;
        send.send(SendEvent::response_body("partial", true)).await?;
        Err(Error::msg("stream broke"))
    };
    let outcome = testing::call(&round_trip(app), Scope::from(scope(Method::GET, "/")), []).await;
    let seen = seen(&outcome.sent);
    assert_eq!(seen.body, b"partial");
    assert!(!seen.complete);
    assert!(
        outcome
            .result
            .unwrap_err()
            .to_string()
            .contains("stream broke")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn returning_before_the_response_is_complete_aborts() {
    let app = |_: Scope, _: Receiver, mut send: Sender| async move {
        send.send(SendEvent::response_start(StatusCode::OK, HeaderMap::new()))
            .await?;
        send.send(SendEvent::response_body("half", true)).await?;
        Ok(())
    };
    let outcome = testing::call(&round_trip(app), Scope::from(scope(Method::GET, "/")), []).await;
    assert!(!seen(&outcome.sent).complete);
    assert!(outcome.result.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hop_by_hop_headers_of_the_async_app_are_dropped() {
    let app = |_: Scope, _: Receiver, mut send: Sender| async move {
        let mut headers = HeaderMap::new();
        headers.insert("connection", HeaderValue::from_static("close"));
        headers.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        headers.insert("x-kept", HeaderValue::from_static("yes"));
        send.send(SendEvent::response_start(StatusCode::OK, headers))
            .await?;
        send.send(SendEvent::response_body("fine", false)).await?;
        Ok(())
    };
    let outcome = testing::call(&round_trip(app), Scope::from(scope(Method::GET, "/")), []).await;
    let seen = seen(&outcome.sent);
    assert_eq!(seen.status, Some(StatusCode::OK));
    assert_eq!(seen.headers["x-kept"], "yes");
    assert!(!seen.headers.contains_key("connection"));
    assert!(!seen.headers.contains_key("transfer-encoding"));
    assert_eq!(seen.body, b"fine");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trailers_are_accepted_and_dropped() {
    // The app goes on in a task of its own after its last body chunk, which completes the
    // WSGI response: it reports what its trailers' send returned once it has it.
    let (report, trailer_result) = oneshot::channel();
    let report = Arc::new(Mutex::new(Some(report)));
    let app = move |_: Scope, _: Receiver, mut send: Sender| {
        let report = report.lock().unwrap().take();
        async move {
            send.send(SendEvent::HttpResponseStart {
                status: StatusCode::OK,
                headers: HeaderMap::new(),
                trailers: true,
            })
            .await?;
            send.send(SendEvent::response_body("body", false)).await?;
            let result = send
                .send(SendEvent::HttpResponseTrailers {
                    headers: HeaderMap::new(),
                    more_trailers: false,
                })
                .await;
            if let Some(report) = report {
                let _ = report.send(result.is_ok());
            }
            Ok(())
        }
    };
    let outcome = testing::call(&round_trip(app), Scope::from(scope(Method::GET, "/")), []).await;
    let seen = seen(&outcome.sent);
    assert_eq!(seen.body, b"body");
    assert!(seen.complete);
    let accepted = tokio::time::timeout(Duration::from_secs(5), trailer_result)
        .await
        .expect("the app sent its trailers within 5 s")
        .expect("the app reported its trailers' send");
    assert!(accepted, "the trailers' send failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pathsend_streams_the_file() {
    let path = std::env::temp_dir().join(format!("asgi-wsgi-pathsend-{}", std::process::id()));
    let content: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, &content).unwrap();
    let file = path.clone();
    let app = move |_: Scope, _: Receiver, mut send: Sender| {
        let file = file.clone();
        async move {
            send.send(SendEvent::response_start(StatusCode::OK, HeaderMap::new()))
                .await?;
            send.send(SendEvent::HttpResponsePathsend { path: file })
                .await?;
            Ok(())
        }
    };
    let outcome = testing::call(&round_trip(app), Scope::from(scope(Method::GET, "/")), []).await;
    std::fs::remove_file(&path).unwrap();
    let seen = seen(&outcome.sent);
    assert_eq!(seen.body, content);
    assert!(seen.complete);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_disconnect_reaches_the_async_app() {
    let (saw_tx, saw_rx) = oneshot::channel();
    let saw = Arc::new(Mutex::new(Some(saw_tx)));
    let app = move |_: Scope, mut receive: Receiver, mut send: Sender| {
        let saw = saw.clone();
        async move {
            send.send(SendEvent::response_start(StatusCode::OK, HeaderMap::new()))
                .await?;
            let failure = loop {
                if let Err(e) = send.send(SendEvent::response_body("tick", true)).await {
                    break e;
                }
            };
            let after = receive.recv().await;
            if let Some(tx) = saw.lock().unwrap().take() {
                let _ = tx.send((failure.is_disconnected(), after));
            }
            Ok(())
        }
    };
    let mut session = TestSession::start(round_trip(app), Scope::from(scope(Method::GET, "/")));
    next(&mut session).await;
    next_body(&mut session).await;
    session.disconnect();
    assert!(session.finish().await.unwrap_err().is_disconnected());
    let (send_failed_as_disconnect, recv_after) = tokio::time::timeout(common::PATIENCE, saw_rx)
        .await
        .unwrap()
        .unwrap();
    assert!(send_failed_as_disconnect);
    assert_eq!(recv_after, ReceiveEvent::HttpDisconnect);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callable_from_a_plain_thread() {
    let app = AsgiToWsgi::new(echo, Handle::current());
    let collected = tokio::task::spawn_blocking(move || {
        let mut environ = Environ::for_request("POST", "/");
        environ.insert("CONTENT_LENGTH", "11");
        environ.set_input(Input::from_bytes("hello world"));
        let status = Arc::new(Mutex::new(None));
        let record = status.clone();
        let start_response = StartResponse::from_fn(move |status, _, _| {
            *record.lock().unwrap() = Some(status.code());
            Ok(Writer::from_fn(|_| Ok(())))
        });
        let body = app.call(environ, start_response).unwrap();
        let bytes: Vec<u8> = body.flat_map(|c| c.unwrap()).collect();
        (*status.lock().unwrap(), bytes)
    })
    .await
    .unwrap();
    assert_eq!(collected, (Some(StatusCode::OK), b"hello world".to_vec()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environ_without_a_method_is_an_error() {
    let app = AsgiToWsgi::new(echo, Handle::current());
    let result = tokio::task::spawn_blocking(move || {
        let mut environ = Environ::for_request("GET", "/");
        environ.remove("REQUEST_METHOD");
        let start_response = StartResponse::from_fn(|_, _, _| Ok(Writer::from_fn(|_| Ok(()))));
        app.call(environ, start_response).map(|_| ())
    })
    .await
    .unwrap();
    assert!(result.unwrap_err().to_string().contains("REQUEST_METHOD"));
}
