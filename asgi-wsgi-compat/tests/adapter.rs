//! `WsgiToAsgi` as a host: its thread pool, panics, other scopes, and tracing.

mod common;

use std::io::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use asgi_core::host::testing::{self, TestSession};
use asgi_core::{LifespanScope, ReceiveEvent, Scope, SendEvent, WebSocketScope};
use asgi_wsgi_compat::testbed::simple_app;
use asgi_wsgi_compat::to_asgi::default_max_threads;
use asgi_wsgi_compat::{Body, BoxError, Environ, StartResponse, WsgiToAsgi};
use common::{Gate, Logs, next, scope, seen};
use http::{Method, StatusCode};
use tokio::sync::oneshot;
use tracing::Instrument as _;

/// `/block` waits at the gate (after telling the test it entered); `/panic` panics before
/// its headers; `/panic-late` after them; anything else answers `ok`.
fn gated(
    gate: Gate,
    entered: Arc<Mutex<Option<oneshot::Sender<()>>>>,
) -> impl Fn(Environ, StartResponse) -> Result<Body, BoxError> + Send + Sync + 'static {
    move |environ, start_response| {
        let path = environ.path_info().clone();
        if path == "/block" {
            if let Some(tx) = entered.lock().unwrap().take() {
                let _ = tx.send(());
            }
            gate.wait();
        }
        if path == "/panic" {
            panic!("handler bug");
        }
        start_response.call("200 OK", [("Content-Type", "text/plain")], None)?;
        if path == "/panic-late" {
            return Ok(Body::from_chunks((0..2).map(|i| {
                if i == 1 {
                    panic!("late handler bug");
                }
                "first"
            })));
        }
        Ok(Body::from("ok"))
    }
}

fn get(path: &str) -> Scope {
    Scope::from(scope(Method::GET, path))
}

#[test]
fn default_thread_limit_is_twice_the_cores_plus_one() {
    let cores = std::thread::available_parallelism().unwrap().get();
    assert_eq!(default_max_threads(), 2 * cores + 1);
    let app = WsgiToAsgi::new(simple_app);
    assert_eq!(app.thread_limit(), 2 * cores + 1);
    assert_eq!(app.available_threads(), 2 * cores + 1);
    assert_eq!(WsgiToAsgi::new(simple_app).max_threads(0).thread_limit(), 1);
}

#[tokio::test]
async fn exhausted_pool_answers_503_after_the_bounded_wait() {
    let gate = Gate::default();
    let (entered_tx, entered_rx) = oneshot::channel();
    let app = WsgiToAsgi::new(gated(gate.clone(), Arc::new(Mutex::new(Some(entered_tx)))))
        .max_threads(1)
        .slot_timeout(Some(Duration::from_millis(50)));
    let mut busy = TestSession::start(app.clone(), get("/block"));
    entered_rx.await.unwrap();
    assert_eq!(app.available_threads(), 0);

    let outcome = testing::call(&app, get("/other"), []).await;
    let refused = seen(&outcome.sent);
    assert_eq!(refused.status, Some(StatusCode::SERVICE_UNAVAILABLE));
    assert_eq!(refused.headers["retry-after"], "1");
    assert_eq!(refused.body, b"Service Unavailable");
    assert!(outcome.result.is_ok());

    gate.open();
    let first = [
        next(&mut busy).await.unwrap(),
        next(&mut busy).await.unwrap(),
    ];
    assert_eq!(seen(&first).body, b"ok");
    busy.finish().await.unwrap();
    assert_eq!(app.available_threads(), 1);
    let outcome = testing::call(&app, get("/other"), []).await;
    assert_eq!(outcome.status(), Some(StatusCode::OK));
}

#[tokio::test]
async fn waiting_request_gets_the_slot_that_frees_up() {
    waits_for_the_slot_that_frees_up(None).await;
}

#[tokio::test]
async fn a_slot_timeout_beyond_the_clock_waits_as_long_as_it_takes() {
    waits_for_the_slot_that_frees_up(Some(Duration::MAX)).await;
}

async fn waits_for_the_slot_that_frees_up(slot_timeout: Option<Duration>) {
    let gate = Gate::default();
    let (entered_tx, entered_rx) = oneshot::channel();
    let app = WsgiToAsgi::new(gated(gate.clone(), Arc::new(Mutex::new(Some(entered_tx)))))
        .max_threads(1)
        .slot_timeout(slot_timeout);
    let busy = TestSession::start(app.clone(), get("/block"));
    entered_rx.await.unwrap();
    let mut waiting = TestSession::start(app.clone(), get("/other"));
    // Time for the call to queue behind the blocked thread before the thread is freed.
    tokio::time::sleep(Duration::from_millis(50)).await;
    gate.open();
    let events = [
        next(&mut waiting).await.unwrap(),
        next(&mut waiting).await.unwrap(),
    ];
    assert_eq!(seen(&events).status, Some(StatusCode::OK));
    waiting.finish().await.unwrap();
    busy.finish().await.unwrap();
}

#[tokio::test]
async fn a_call_dropped_while_it_waits_for_a_thread_never_runs() {
    let gate = Gate::default();
    let (entered_tx, entered_rx) = oneshot::channel();
    let ran = Arc::new(AtomicUsize::new(0));
    let app = {
        let gated = gated(gate.clone(), Arc::new(Mutex::new(Some(entered_tx))));
        let ran = ran.clone();
        WsgiToAsgi::new(move |environ: Environ, start_response: StartResponse| {
            if environ.path_info() == "/dropped" {
                ran.fetch_add(1, Ordering::SeqCst);
            }
            gated(environ, start_response)
        })
        .max_threads(1)
        .slot_timeout(None)
    };
    let busy = TestSession::start(app.clone(), get("/block"));
    entered_rx.await.unwrap();
    // The call waits in the pool's queue; its connection goes away meanwhile.
    let gave_up = tokio::time::timeout(
        Duration::from_millis(100),
        testing::call(&app, get("/dropped"), []),
    )
    .await;
    assert!(gave_up.is_err(), "the call could not have had a thread");
    gate.open();
    busy.finish().await.unwrap();
    let outcome = testing::call(&app, get("/after"), []).await;
    assert_eq!(outcome.status(), Some(StatusCode::OK));
    assert_eq!(ran.load(Ordering::SeqCst), 0, "the dropped call ran");
    assert_eq!(app.available_threads(), 1);
}

#[tokio::test]
async fn panic_before_headers_gives_500() {
    let app = WsgiToAsgi::new(gated(Gate::default(), Arc::default()));
    let outcome = testing::call(&app, get("/panic"), []).await;
    let seen = seen(&outcome.sent);
    assert_eq!(seen.status, Some(StatusCode::INTERNAL_SERVER_ERROR));
    assert!(seen.complete);
    assert!(outcome.result.is_ok());
}

#[tokio::test]
async fn panic_after_headers_aborts_the_response() {
    let app = WsgiToAsgi::new(gated(Gate::default(), Arc::default()));
    let outcome = testing::call(&app, get("/panic-late"), []).await;
    let seen = seen(&outcome.sent);
    assert_eq!(seen.status, Some(StatusCode::OK));
    assert_eq!(seen.body, b"first");
    assert!(!seen.complete);
    let err = outcome.result.unwrap_err();
    assert!(err.is_panic());
    assert!(err.to_string().contains("late handler bug"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_keeps_serving_after_a_panic_storm() {
    let app = WsgiToAsgi::new(gated(Gate::default(), Arc::default())).max_threads(2);
    let storm: Vec<_> = (0..32)
        .map(|i| {
            let app = app.clone();
            let path = if i % 2 == 0 { "/panic" } else { "/panic-late" };
            tokio::spawn(async move { testing::call(&app, get(path), []).await })
        })
        .collect();
    for (i, call) in storm.into_iter().enumerate() {
        let outcome = call.await.unwrap();
        if i % 2 == 0 {
            assert_eq!(outcome.status(), Some(StatusCode::INTERNAL_SERVER_ERROR));
        } else {
            assert!(outcome.result.unwrap_err().is_panic());
        }
    }
    assert_eq!(app.available_threads(), 2);
    let outcome = testing::call(&app, get("/fine"), []).await;
    assert_eq!(outcome.status(), Some(StatusCode::OK));
    assert_eq!(outcome.body(), b"ok");
}

#[tokio::test]
async fn failure_before_headers_is_logged_with_its_message() {
    let logs = Logs::default();
    let _guard = logs.capture();
    let app = WsgiToAsgi::new(gated(Gate::default(), Arc::default()));
    let outcome = testing::call(&app, get("/panic"), []).await;
    assert_eq!(outcome.status(), Some(StatusCode::INTERNAL_SERVER_ERROR));
    let text = logs.text();
    assert!(text.contains("ERROR"), "{text}");
    assert!(text.contains("handler bug"), "{text}");
    assert!(
        !String::from_utf8_lossy(&outcome.body()).contains("handler bug"),
        "the client must not see the message"
    );
}

#[tokio::test]
async fn span_and_subscriber_carry_into_the_blocking_thread() {
    let logs = Logs::default();
    let _guard = logs.capture();
    let app = WsgiToAsgi::new(
        |mut environ: Environ, start_response: StartResponse| -> Result<Body, BoxError> {
            writeln!(environ.errors(), "cache miss")?;
            write!(environ.errors(), "partial line")?;
            tracing::info!(thread = ?std::thread::current().id(), "inside the app");
            start_response.call("200 OK", [("Content-Type", "text/plain")], None)?;
            Ok(Body::from("ok"))
        },
    );
    let outcome = testing::call(&app, get("/"), [])
        .instrument(tracing::info_span!("request", id = 42))
        .await;
    assert_eq!(outcome.status(), Some(StatusCode::OK));
    let text = logs.text();
    let line = |needle: &str| {
        text.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no {needle:?} in {text}"))
            .to_owned()
    };
    assert!(line("inside the app").contains("request{id=42}"), "{text}");
    let errors = line("cache miss");
    assert!(errors.contains("request{id=42}"), "{errors}");
    assert!(
        errors.contains("WARN") && errors.contains("wsgi.errors"),
        "{errors}"
    );
    // The partial line went out when the environ (and its stream) was dropped.
    assert!(line("partial line").contains("wsgi.errors"), "{text}");
}

#[tokio::test]
async fn lifespan_scope_means_no_lifespan_support() {
    let app = WsgiToAsgi::new(simple_app);
    let outcome = testing::call(
        &app,
        Scope::Lifespan(LifespanScope::default()),
        [ReceiveEvent::LifespanStartup],
    )
    .await;
    assert!(outcome.result.is_ok());
    assert!(outcome.sent.is_empty());
}

#[tokio::test]
async fn websocket_is_refused_with_close() {
    let app = WsgiToAsgi::new(simple_app);
    let outcome = testing::call(
        &app,
        Scope::from(WebSocketScope::new("/ws")),
        [ReceiveEvent::WebSocketConnect],
    )
    .await;
    assert!(outcome.result.is_ok());
    assert!(matches!(
        outcome.sent.as_slice(),
        [SendEvent::WebSocketClose { code: 1000, .. }]
    ));
}
