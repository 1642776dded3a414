//! Apps and middleware: closures are apps, `Arc` and boxed apps too, and layers nest like an
//! onion in one documented order.

use std::sync::{Arc, Mutex};

use asgi_core::host::testing;
use asgi_core::http::{HeaderMap, HeaderValue, Method, StatusCode};
use asgi_core::{
    App, AppExt, DynApp, Error, HttpScope, Layer, Next, Receiver, Scope, SendEvent, Sender,
    async_trait, from_fn,
};

fn http() -> Scope {
    Scope::from(HttpScope::new(Method::GET, "/"))
}

async fn hello(_: Scope, _: Receiver, mut send: Sender) -> Result<(), Error> {
    send.send(SendEvent::response_start(StatusCode::OK, HeaderMap::new()))
        .await?;
    send.send(SendEvent::response_body("Hello, world!", false))
        .await?;
    Ok(())
}

type Log = Arc<Mutex<Vec<String>>>;

/// Records when it sees the request, and when it sees the response start, by name.
struct Recorder<A> {
    inner: A,
    name: &'static str,
    log: Log,
}

#[async_trait]
impl<A: App> App for Recorder<A> {
    async fn call(&self, scope: Scope, receive: Receiver, send: Sender) -> Result<(), Error> {
        self.log
            .lock()
            .unwrap()
            .push(format!("request {}", self.name));
        let (name, log) = (self.name, self.log.clone());
        let send = send.map(move |event| {
            if let SendEvent::HttpResponseStart { .. } = event {
                log.lock().unwrap().push(format!("response {name}"));
            }
            event
        });
        self.inner.call(scope, receive, send).await
    }
}

struct RecorderLayer {
    name: &'static str,
    log: Log,
}

impl<A: App> Layer<A> for RecorderLayer {
    type App = Recorder<A>;
    fn layer(&self, inner: A) -> Recorder<A> {
        Recorder {
            inner,
            name: self.name,
            log: self.log.clone(),
        }
    }
}

#[tokio::test]
async fn layers_see_request_outside_in_and_response_inside_out() {
    let log: Log = Arc::default();
    let layer = |name| RecorderLayer {
        name,
        log: log.clone(),
    };
    let app = hello.with(layer("a")).with(layer("b")).with(layer("c"));
    let outcome = testing::call(&app, http(), []).await;
    assert!(outcome.result.is_ok());
    assert_eq!(
        *log.lock().unwrap(),
        vec![
            "request c",
            "request b",
            "request a",
            "response a",
            "response b",
            "response c"
        ]
    );
}

#[tokio::test]
async fn from_fn_middleware_runs_around_inner_app_in_the_same_order() {
    let log: Log = Arc::default();
    let step = |name: &'static str, log: Log| {
        from_fn(move |scope: Scope, receive, send, next: Next| {
            let log = log.clone();
            async move {
                log.lock().unwrap().push(format!("before {name}"));
                let result = next.call(scope, receive, send).await;
                log.lock().unwrap().push(format!("after {name}"));
                result
            }
        })
    };
    let app = hello
        .with(step("inner", log.clone()))
        .with(step("outer", log.clone()));
    let outcome = testing::call(&app, http(), []).await;
    assert_eq!(outcome.body(), b"Hello, world!");
    assert_eq!(
        *log.lock().unwrap(),
        vec!["before outer", "before inner", "after inner", "after outer"]
    );
}

#[tokio::test]
async fn from_fn_can_answer_without_calling_next() {
    let app = hello.with(from_fn(
        |_: Scope, _, mut send: Sender, _next: Next| async move {
            send.send(SendEvent::response_start(
                StatusCode::FORBIDDEN,
                HeaderMap::new(),
            ))
            .await?;
            send.send(SendEvent::response_body("no", false)).await?;
            Ok(())
        },
    ));
    let outcome = testing::call(&app, http(), []).await;
    assert_eq!(outcome.status(), Some(StatusCode::FORBIDDEN));
    assert_eq!(outcome.body(), b"no");
}

#[tokio::test]
async fn middleware_typed_data_reaches_inner_app() {
    #[derive(Clone)]
    struct RequestId(u32);
    let inner = |scope: Scope, _: Receiver, mut send: Sender| async move {
        let id = scope
            .extensions()
            .and_then(|e| e.get::<RequestId>())
            .map_or(0, |r| r.0);
        send.send(SendEvent::response_start(StatusCode::OK, HeaderMap::new()))
            .await?;
        send.send(SendEvent::response_body(id.to_string(), false))
            .await?;
        Ok::<(), Error>(())
    };
    let app = inner.with(from_fn(|mut scope: Scope, r, s, next: Next| async move {
        if let Some(ext) = scope.extensions_mut() {
            ext.insert(RequestId(42));
        }
        next.call(scope, r, s).await
    }));
    let outcome = testing::call(&app, http(), []).await;
    assert_eq!(outcome.body(), b"42");
}

#[tokio::test]
async fn sender_map_adds_header_to_response_start() {
    let app = from_fn(|scope: Scope, r, send: Sender, next: Next| async move {
        let send = send.map(|mut event| {
            if let SendEvent::HttpResponseStart { headers, .. } = &mut event {
                headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
            }
            event
        });
        next.call(scope, r, send).await
    })
    .layer(hello);
    let outcome = testing::call(&app, http(), []).await;
    let SendEvent::HttpResponseStart { headers, .. } = &outcome.sent[0] else {
        panic!("first event is not the start: {:?}", outcome.sent)
    };
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(outcome.body(), b"Hello, world!");
}

#[tokio::test]
async fn closure_arc_and_boxed_apps_all_answer() {
    let closure = |_: Scope, _: Receiver, mut send: Sender| async move {
        send.send(SendEvent::response_start(StatusCode::OK, HeaderMap::new()))
            .await?;
        send.send(SendEvent::response_body("closure", false))
            .await?;
        Ok::<(), Error>(())
    };
    assert_eq!(testing::call(&closure, http(), []).await.body(), b"closure");

    let shared = Arc::new(hello);
    assert_eq!(
        testing::call(&shared, http(), []).await.body(),
        b"Hello, world!"
    );

    let erased: Vec<DynApp> = vec![hello.boxed(), closure.boxed()];
    let mut bodies = Vec::new();
    for app in &erased {
        bodies.push(testing::call(app, http(), []).await.body());
    }
    assert_eq!(bodies, vec![b"Hello, world!".to_vec(), b"closure".to_vec()]);

    let dyn_arc: Arc<dyn App> = Arc::new(hello);
    assert_eq!(
        testing::call(&dyn_arc, http(), []).await.status(),
        Some(StatusCode::OK)
    );
}

#[tokio::test]
async fn app_error_is_returned_to_the_caller() {
    let failing = |_: Scope, _: Receiver, _: Sender| async move {
        Err::<(), Error>(Error::msg("database unavailable"))
    };
    let outcome = testing::call(&failing, http(), []).await;
    let err = outcome.result.unwrap_err();
    assert_eq!(err.to_string(), "database unavailable");
    assert!(outcome.sent.is_empty());
}

#[tokio::test]
async fn panicking_app_in_a_session_becomes_a_panic_error() {
    let app = |_: Scope, _: Receiver, _: Sender| async move {
        if true {
            panic!("boom");
        }
        Ok::<(), Error>(())
    };
    let session = testing::TestSession::start(app, http());
    let err = session.finish().await.unwrap_err();
    assert!(err.is_panic());
    assert_eq!(err.to_string(), "app panicked: boom");
}
