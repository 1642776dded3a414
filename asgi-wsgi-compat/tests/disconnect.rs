//! A client that disconnects: the app sees an error on its next read or write, its body is
//! closed, its thread slot is freed, and nothing is logged as an error.

mod common;

use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use asgi_core::host::channel::{ChannelSink, ChannelSource};
use asgi_core::host::testing::{self, TestSession};
use asgi_core::{App, ReceiveEvent, Receiver, Scope, SendEvent, Sender};
use asgi_wsgi_compat::{Body, BoxError, Environ, StartResponse, WsgiToAsgi};
use bytes::Bytes;
use common::{Gate, Logs, eventually, next, next_body, scope};
use http::{Method, StatusCode};
use tokio::sync::{mpsc, oneshot};

/// The error kind the app saw, recorded for the test.
#[derive(Clone, Default)]
struct SeenError(Arc<Mutex<Option<io::ErrorKind>>>);

impl SeenError {
    fn put(&self, e: &io::Error) {
        *self.0.lock().unwrap() = Some(e.kind());
    }

    fn get(&self) -> Option<io::ErrorKind> {
        *self.0.lock().unwrap()
    }
}

fn pool_of_one<A: asgi_wsgi_compat::WsgiApp>(app: A) -> WsgiToAsgi<A> {
    // A zero wait turns a slot that was not freed into a 503 at once.
    WsgiToAsgi::new(app)
        .max_threads(1)
        .slot_timeout(Some(Duration::ZERO))
}

/// `/stream` streams forever from its iterator; anything else answers `ok`.
fn endless(
    closed: Arc<AtomicBool>,
) -> impl Fn(Environ, StartResponse) -> Result<Body, BoxError> + Send + Sync + 'static {
    move |environ, start_response| {
        start_response.call("200 OK", [("Content-Type", "text/plain")], None)?;
        if environ.path_info() != "/stream" {
            return Ok(Body::from("ok"));
        }
        let closed = closed.clone();
        Ok(
            Body::from_chunks(std::iter::repeat(Bytes::from_static(&[b'.'; 1024])))
                .on_close(move || closed.store(true, Ordering::SeqCst)),
        )
    }
}

async fn still_serves(app: &impl App) {
    let outcome = testing::call(app, Scope::from(scope(Method::GET, "/hello")), []).await;
    assert_eq!(outcome.status(), Some(StatusCode::OK), "{outcome:?}");
}

#[tokio::test]
async fn disconnect_mid_download_closes_the_body_and_frees_the_slot() {
    let closed = Arc::new(AtomicBool::new(false));
    let app = pool_of_one(endless(closed.clone()));
    let mut session = TestSession::start(app.clone(), Scope::from(scope(Method::GET, "/stream")));
    assert!(matches!(
        next(&mut session).await,
        Some(SendEvent::HttpResponseStart { .. })
    ));
    for _ in 0..3 {
        assert_eq!(next_body(&mut session).await.0.len(), 1024);
    }
    session.disconnect();
    let result = session.finish().await;
    assert!(result.unwrap_err().is_disconnected());
    assert!(closed.load(Ordering::SeqCst), "the body's cleanup ran");
    assert_eq!(app.available_threads(), 1, "the slot was freed");
    still_serves(&app).await;
}

#[tokio::test]
async fn disconnect_mid_download_fails_the_apps_write() {
    let seen = SeenError::default();
    let record = seen.clone();
    let app = pool_of_one(
        move |environ: Environ, start_response: StartResponse| -> Result<Body, BoxError> {
            let write = start_response.call("200 OK", [("Content-Type", "text/plain")], None)?;
            if environ.path_info() != "/stream" {
                return Ok(Body::from("ok"));
            }
            loop {
                if let Err(e) = write.write("tick\n") {
                    record.put(&e);
                    return Err(e.into());
                }
            }
        },
    );
    let mut session = TestSession::start(app.clone(), Scope::from(scope(Method::GET, "/stream")));
    next(&mut session).await;
    next_body(&mut session).await;
    session.disconnect();
    assert!(session.finish().await.unwrap_err().is_disconnected());
    assert_eq!(seen.get(), Some(io::ErrorKind::ConnectionAborted));
    assert_eq!(app.available_threads(), 1);
    still_serves(&app).await;
}

#[tokio::test]
async fn disconnect_mid_upload_fails_the_apps_read() {
    let seen = SeenError::default();
    let read = Arc::new(AtomicUsize::new(0));
    let (record, count) = (seen.clone(), read.clone());
    let app = pool_of_one(
        move |mut environ: Environ, start_response: StartResponse| -> Result<Body, BoxError> {
            if environ.path_info() == "/upload" {
                loop {
                    match environ.input().read_chunk() {
                        Ok(chunk) if chunk.is_empty() => break,
                        Ok(chunk) => {
                            count.fetch_add(chunk.len(), Ordering::SeqCst);
                        }
                        Err(e) => {
                            record.put(&e);
                            return Err(e.into());
                        }
                    }
                }
            }
            start_response.call("200 OK", [("Content-Type", "text/plain")], None)?;
            Ok(Body::from("ok"))
        },
    );
    let mut session = TestSession::start(app.clone(), Scope::from(scope(Method::POST, "/upload")));
    session
        .send(ReceiveEvent::request("part-1", true))
        .await
        .unwrap();
    session
        .send(ReceiveEvent::request("part-2", true))
        .await
        .unwrap();
    eventually("the app read both parts", || {
        read.load(Ordering::SeqCst) == 12
    })
    .await;
    session.disconnect();
    assert!(session.finish().await.unwrap_err().is_disconnected());
    assert_eq!(seen.get(), Some(io::ErrorKind::ConnectionAborted));
    assert_eq!(app.available_threads(), 1);
    still_serves(&app).await;
}

#[tokio::test]
async fn disconnect_mid_upload_closes_a_body_that_streams_the_input() {
    let closed = Arc::new(AtomicBool::new(false));
    let seen = SeenError::default();
    let (flag, record) = (closed.clone(), seen.clone());
    let app = pool_of_one(
        move |mut environ: Environ, start_response: StartResponse| -> Result<Body, BoxError> {
            start_response.call("200 OK", [("Content-Type", "text/plain")], None)?;
            if environ.path_info() != "/echo" {
                return Ok(Body::from("ok"));
            }
            let mut input = environ.set_input(asgi_wsgi_compat::Input::empty());
            let record = record.clone();
            let chunks = std::iter::from_fn(move || match input.read_chunk() {
                Ok(chunk) if chunk.is_empty() => None,
                Ok(chunk) => Some(Ok(chunk)),
                Err(e) => {
                    record.put(&e);
                    Some(Err(e))
                }
            });
            let flag = flag.clone();
            Ok(Body::try_from_chunks(chunks).on_close(move || flag.store(true, Ordering::SeqCst)))
        },
    );
    let mut session = TestSession::start(app.clone(), Scope::from(scope(Method::POST, "/echo")));
    session
        .send(ReceiveEvent::request("ping", true))
        .await
        .unwrap();
    next(&mut session).await;
    assert_eq!(next_body(&mut session).await, (Bytes::from("ping"), true));
    session.disconnect();
    assert!(session.finish().await.unwrap_err().is_disconnected());
    assert_eq!(seen.get(), Some(io::ErrorKind::ConnectionAborted));
    assert!(closed.load(Ordering::SeqCst));
    assert_eq!(app.available_threads(), 1);
    still_serves(&app).await;
}

#[tokio::test]
async fn disconnect_is_not_logged_as_an_error() {
    let logs = Logs::default();
    let _guard = logs.capture();
    let closed = Arc::new(AtomicBool::new(false));
    let app = pool_of_one(endless(closed));
    let mut session = TestSession::start(app, Scope::from(scope(Method::GET, "/stream")));
    next(&mut session).await;
    next_body(&mut session).await;
    session.disconnect();
    assert!(session.finish().await.unwrap_err().is_disconnected());
    let text = logs.text();
    assert!(!text.contains("ERROR"), "{text}");
    assert!(text.contains("the client disconnected"), "{text}");
}

#[tokio::test]
async fn dropped_call_still_frees_the_slot_when_the_app_returns() {
    let gate = Gate::default();
    let closed = Arc::new(AtomicBool::new(false));
    let (entered_tx, entered_rx) = oneshot::channel::<()>();
    let entered = Arc::new(Mutex::new(Some(entered_tx)));
    let (app_gate, flag) = (gate.clone(), closed.clone());
    let app = pool_of_one(
        move |_: Environ, start_response: StartResponse| -> Result<Body, BoxError> {
            if let Some(tx) = entered.lock().unwrap().take() {
                let _ = tx.send(());
            }
            app_gate.wait();
            start_response.call("200 OK", [("Content-Type", "text/plain")], None)?;
            let flag = flag.clone();
            Ok(Body::from("late").on_close(move || flag.store(true, Ordering::SeqCst)))
        },
    );
    let s = Scope::from(scope(Method::GET, "/"));
    let (_to_app, app_rx) = mpsc::channel(4);
    let (app_tx, _from_app) = mpsc::channel(4);
    let receive = Receiver::new(ChannelSource::new(&s, app_rx));
    let send = Sender::new(ChannelSink::new(&s, app_tx));
    tokio::select! {
        _ = app.call(s, receive, send) => panic!("the call cannot finish before the gate opens"),
        _ = entered_rx => {}
    }
    // The call's future is gone, as when a server drops a connection; the thread runs on.
    assert_eq!(app.available_threads(), 0);
    gate.open();
    eventually("the slot came back", || app.available_threads() == 1).await;
    assert!(closed.load(Ordering::SeqCst));
    still_serves(&app).await;
}
