//! When the app fails, breaks the protocol, or the client leaves: what the client sees, what
//! the app sees, what is logged, and that the server goes on serving.

mod common;

use std::time::{Duration, Instant};

use asgi::core::{ReceiveEvent, Scope, SendError, SendEvent};
use asgi::prelude::Error;
use bytes::Bytes;
use common::*;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// How soon a client's disconnect must reach a `recv` that is pending.
const DISCONNECT_BOUND: Duration = Duration::from_millis(100);

#[tokio::test]
async fn panic_before_start_gives_500_and_the_connection_goes_on() {
    let server = start_testbed().await;
    let (mut sender, _conn) = h1(server.addr).await;
    let answer = read(sender.send_request(get("/panic")).await.unwrap())
        .await
        .unwrap();
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(answer.text(), "Internal Server Error");
    // Same connection, next request.
    let answer = read(sender.send_request(get("/")).await.unwrap())
        .await
        .unwrap();
    assert_eq!(answer.status, StatusCode::OK);
    server.stop().await.unwrap();
}

/// An app that panics in the call itself, before it returns its future (a function app
/// that does work first).
fn panics_before_its_future(
    scope: asgi::core::Scope,
    _receive: asgi::core::Receiver,
    mut send: asgi::core::Sender,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), Error>> + Send>> {
    if let asgi::core::Scope::Http(http) = &scope {
        if http.path == "/panic-now" {
            panic!("the app panics before its future exists");
        }
    }
    Box::pin(async move {
        send.send(SendEvent::response_start(StatusCode::OK, HeaderMap::new()))
            .await?;
        send.send(SendEvent::response_body("ok", false)).await?;
        Ok(())
    })
}

#[tokio::test]
async fn panic_in_the_app_call_itself_gives_500_and_the_connection_goes_on() {
    let server = start(panics_before_its_future, |b| b).await;
    let (mut http1, _conn) = h1(server.addr).await;
    let mut http2 = h2(server.addr).await;
    for round in 0..2 {
        let answer = read(http1.send_request(get("/panic-now")).await.unwrap())
            .await
            .unwrap();
        assert_eq!(
            answer.status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "HTTP/1.1, {round}"
        );
        let answer = read(http2.send_request(get("/panic-now")).await.unwrap())
            .await
            .unwrap();
        assert_eq!(
            answer.status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "HTTP/2, {round}"
        );
        // Same connections, next request.
        let answer = read(http1.send_request(get("/")).await.unwrap())
            .await
            .unwrap();
        assert_eq!((answer.status, answer.text()), (StatusCode::OK, "ok"));
        let answer = read(http2.send_request(get("/")).await.unwrap())
            .await
            .unwrap();
        assert_eq!((answer.status, answer.text()), (StatusCode::OK, "ok"));
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn error_before_start_gives_500_without_details() {
    let (logs, _guard) = LogCapture::install();
    let server = start_testbed().await;
    let answer = fetch(server.addr, "/error").await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(answer.text(), "Internal Server Error");
    assert_eq!(answer.headers["content-type"], "text/plain; charset=utf-8");
    // The details go to the log, not to the client.
    let errors = logs.errors();
    assert!(
        errors
            .iter()
            .any(|line| line.contains("the testbed fails on purpose") && line.contains("500")),
        "{errors:?}"
    );
    assert_eq!(fetch(server.addr, "/").await.status, StatusCode::OK);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn error_after_start_leaves_the_http1_response_incomplete() {
    let server = start_testbed().await;
    let (mut sender, conn) = h1(server.addr).await;
    let outcome = match sender.send_request(get("/error-after-start")).await {
        Ok(response) => read(response).await.map(|_| ()),
        Err(e) => Err(e),
    };
    assert!(outcome.is_err(), "the truncated response looked complete");
    // The server closed the connection rather than end the body as if complete.
    let closed = tokio::time::timeout(PATIENCE, conn).await.unwrap().unwrap();
    assert!(closed.is_err() || sender.is_closed());
    assert_eq!(fetch(server.addr, "/").await.status, StatusCode::OK);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn error_after_start_resets_the_http2_stream_only() {
    let server = start_testbed().await;
    let mut sender = h2(server.addr).await;
    let request = Request::get(format!("http://{}/error-after-start", server.addr))
        .body(empty())
        .unwrap();
    let outcome = match sender.send_request(request).await {
        Ok(response) => read(response).await.map(|_| ()),
        Err(e) => Err(e),
    };
    assert!(outcome.is_err(), "the truncated response looked complete");
    // The connection itself goes on.
    let request = Request::get(format!("http://{}/", server.addr))
        .body(empty())
        .unwrap();
    let answer = read(sender.send_request(request).await.unwrap())
        .await
        .unwrap();
    assert_eq!(answer.text(), "Hello, world!");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn app_returning_without_a_response_gives_500() {
    let (logs, _guard) = LogCapture::install();
    let app = http_only(|_, _, _| async { Ok(()) });
    let server = start(app, |b| b).await;
    let answer = fetch(server.addr, "/").await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    let errors = logs.errors();
    assert!(
        errors
            .iter()
            .any(|line| line.contains("without sending a response")),
        "{errors:?}"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn app_returning_mid_body_aborts_the_response() {
    let app = http_only(|_, _, mut send| async move {
        let mut headers = HeaderMap::new();
        headers.insert("content-length", "100".parse().unwrap());
        send.send(SendEvent::response_start(StatusCode::OK, headers))
            .await?;
        send.send(SendEvent::response_body("only part", true))
            .await?;
        Ok(())
    });
    let server = start(app, |b| b).await;
    let (mut sender, _conn) = h1(server.addr).await;
    let outcome = match sender.send_request(get("/")).await {
        Ok(response) => read(response).await.map(|_| ()),
        Err(e) => Err(e),
    };
    assert!(outcome.is_err(), "the truncated response looked complete");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn protocol_error_is_returned_to_the_app_and_logged() {
    let (logs, _guard) = LogCapture::install();
    let app = http_only(|_, _, mut send| async move {
        let err = send
            .send(SendEvent::response_body("too early", false))
            .await
            .unwrap_err();
        let message = match &err {
            SendError::Protocol(p) => format!("{} / {}", p.received(), p.expected()),
            other => format!("not a protocol error: {other:?}"),
        };
        send.send(SendEvent::response_start(StatusCode::OK, HeaderMap::new()))
            .await?;
        send.send(SendEvent::response_body(message, false)).await?;
        Ok(())
    });
    let server = start(app, |b| b).await;
    let answer = fetch(server.addr, "/").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.text(), "http.response.body / `http.response.start`");
    let errors = logs.errors();
    assert!(
        errors.iter().any(|line| line.contains("http.response.body")
            && line.contains("http.response.start")),
        "{errors:?}"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn disconnect_reaches_a_recv_pending_on_the_body() {
    let (first_chunk, got_first) = Report::new();
    let (disconnected, saw_disconnect) = Report::new();
    let app = http_only(move |_, mut receive, send| {
        let first_chunk = first_chunk.clone();
        let disconnected = disconnected.clone();
        async move {
            // Held until the app returns: dropping it would answer at once.
            let _send = send;
            if let ReceiveEvent::HttpRequest { body, .. } = receive.recv().await {
                first_chunk.send(body);
            }
            // The rest of the body never comes: this `recv` waits for the client.
            let event = receive.recv().await;
            disconnected.send((event, Instant::now()));
            Ok(())
        }
    });
    let server = start(app, |b| b).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\n0123456789")
        .await
        .unwrap();
    let first = tokio::time::timeout(PATIENCE, got_first)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first, Bytes::from_static(b"0123456789"));
    // Give the app time to wait in `recv`, then leave.
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(stream);
    let left = Instant::now();
    let (event, at) = tokio::time::timeout(PATIENCE, saw_disconnect)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(event, ReceiveEvent::HttpDisconnect);
    assert!(
        at.duration_since(left) < DISCONNECT_BOUND,
        "the disconnect took {:?}",
        at.duration_since(left)
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn disconnect_reaches_a_busy_app_after_the_body_was_read() {
    let (working, app_is_working) = Report::new();
    let (disconnected, saw_disconnect) = Report::new();
    let app = http_only(move |_, mut receive, mut send| {
        let working = working.clone();
        let disconnected = disconnected.clone();
        async move {
            let first = receive.recv().await;
            assert_eq!(first, ReceiveEvent::request(Bytes::new(), false));
            working.send(());
            // Busy for a long time, watching for the client meanwhile.
            tokio::select! {
                event = receive.recv() => disconnected.send((event, Instant::now())),
                () = tokio::time::sleep(PATIENCE) => {}
            }
            let after = send
                .send(SendEvent::response_start(StatusCode::OK, HeaderMap::new()))
                .await;
            assert_eq!(after, Err(SendError::Disconnected));
            after.map_err(Error::from)
        }
    });
    let (logs, _guard) = LogCapture::install();
    let server = start(app, |b| b).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    tokio::time::timeout(PATIENCE, app_is_working)
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(stream);
    let left = Instant::now();
    let (event, at) = tokio::time::timeout(PATIENCE, saw_disconnect)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(event, ReceiveEvent::HttpDisconnect);
    assert!(
        at.duration_since(left) < DISCONNECT_BOUND,
        "the disconnect took {:?}",
        at.duration_since(left)
    );
    server.stop().await.unwrap();
    // A client that leaves is not an error.
    assert_eq!(logs.errors(), Vec::<String>::new());
}

#[tokio::test]
async fn testbed_counts_the_disconnect_of_a_waiting_request() {
    let server = start_testbed().await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET /wait-disconnect HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    let waiting = eventually(async || {
        let stats = fetch(server.addr, "/stats").await.json();
        stats["inflight"] == 1
    })
    .await;
    assert!(waiting, "the request reached the app");
    assert_eq!(fetch(server.addr, "/stats").await.json()["disconnects"], 0);
    drop(stream);
    let counted = eventually(async || {
        let stats = fetch(server.addr, "/stats").await.json();
        stats["disconnects"] == 1 && stats["inflight"] == 0
    })
    .await;
    assert!(counted, "the app saw the disconnect and returned");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn http2_stream_reset_reaches_the_app() {
    let (started, app_started) = Report::new();
    let (disconnected, saw_disconnect) = Report::new();
    let app = http_only(move |_, mut receive, send| {
        let started = started.clone();
        let disconnected = disconnected.clone();
        async move {
            // Held until the app returns: dropping it would answer at once.
            let _send = send;
            receive.recv().await;
            started.send(());
            let event = receive.recv().await;
            disconnected.send((event, Instant::now()));
            Ok(())
        }
    });
    let server = start(app, |b| b).await;
    let mut sender = h2(server.addr).await;
    let request = Request::get(format!("http://{}/", server.addr))
        .body(empty())
        .unwrap();
    let pending = tokio::spawn(sender.send_request(request));
    tokio::time::timeout(PATIENCE, app_started)
        .await
        .unwrap()
        .unwrap();
    // Dropping the response future makes the client reset the stream (RST_STREAM CANCEL);
    // the connection stays open.
    pending.abort();
    let left = Instant::now();
    let (event, at) = tokio::time::timeout(PATIENCE, saw_disconnect)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(event, ReceiveEvent::HttpDisconnect);
    assert!(
        at.duration_since(left) < DISCONNECT_BOUND,
        "the reset took {:?}",
        at.duration_since(left)
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn recv_after_the_response_gives_disconnect() {
    let (after, after_response) = Report::new();
    let app = http_only(move |_, mut receive, mut send| {
        let after = after.clone();
        async move {
            receive.recv().await;
            send.send(SendEvent::response_start(StatusCode::OK, HeaderMap::new()))
                .await?;
            send.send(SendEvent::response_body("done", false)).await?;
            after.send(receive.recv().await);
            Ok(())
        }
    });
    let server = start(app, |b| b).await;
    let answer = fetch(server.addr, "/").await;
    assert_eq!(answer.text(), "done");
    let event = tokio::time::timeout(PATIENCE, after_response)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(event, ReceiveEvent::HttpDisconnect);
    server.stop().await.unwrap();
}

/// An app that works on after its whole response (a background job, as Starlette's run after
/// the response) is neither cancelled nor waited for: the client has its answer at once, the
/// connection serves its next request meanwhile, and the work runs to its end.
#[tokio::test]
async fn app_working_after_its_response_runs_to_the_end_while_the_connection_goes_on() {
    const WORK: Duration = Duration::from_millis(400);
    let (finished, work_finished) = Report::new();
    let app = http_only(move |scope, _, mut send| {
        let finished = finished.clone();
        async move {
            let slow = matches!(&scope, Scope::Http(http) if http.path == "/slow");
            send.send(SendEvent::response_start(StatusCode::OK, HeaderMap::new()))
                .await?;
            send.send(SendEvent::response_body("answered", false))
                .await?;
            if slow {
                tokio::time::sleep(WORK).await;
                finished.send(Instant::now());
            }
            Ok(())
        }
    });
    let server = start(app, |b| b).await;
    let (mut sender, _conn) = h1(server.addr).await;
    let asked = Instant::now();
    let first = read(sender.send_request(get("/slow")).await.unwrap())
        .await
        .unwrap();
    assert_eq!(first.text(), "answered");
    // The same connection, while the first app still works.
    let second = read(sender.send_request(get("/fast")).await.unwrap())
        .await
        .unwrap();
    assert_eq!(second.text(), "answered");
    let answered = Instant::now();
    assert!(
        answered.duration_since(asked) < WORK,
        "the answers waited for the work: {:?}",
        answered.duration_since(asked)
    );
    let done = tokio::time::timeout(PATIENCE, work_finished)
        .await
        .unwrap()
        .unwrap();
    assert!(done.duration_since(asked) >= WORK);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn streaming_response_send_after_client_left_returns_disconnected() {
    let (result, send_result) = Report::new();
    let app = http_only(move |_, _, mut send| {
        let result = result.clone();
        async move {
            send.send(SendEvent::response_start(StatusCode::OK, HeaderMap::new()))
                .await?;
            // Stream until the client is gone.
            let outcome = loop {
                let chunk = SendEvent::response_body(Bytes::from(vec![b'x'; 64 * 1024]), true);
                if let Err(e) = send.send(chunk).await {
                    break e;
                }
            };
            result.send(outcome.clone());
            Err(outcome.into())
        }
    });
    let (logs, _guard) = LogCapture::install();
    let server = start(app, |b| b).await;
    let (mut sender, conn) = h1(server.addr).await;
    let response = sender.send_request(get("/")).await.unwrap();
    let mut body = response.into_body();
    assert!(body.frame().await.unwrap().is_ok());
    drop(body);
    drop(sender);
    conn.abort();
    let outcome = tokio::time::timeout(PATIENCE, send_result)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(outcome, SendError::Disconnected);
    server.stop().await.unwrap();
    assert_eq!(logs.errors(), Vec::<String>::new());
}
