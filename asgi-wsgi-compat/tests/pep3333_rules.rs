//! The rules of PEP 3333 for a response, each observed through `WsgiToAsgi` as an ASGI
//! client sees it.

mod common;

use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use asgi_core::host::testing;
use asgi_core::{App, Receiver, Scope, SendEvent, Sender};
use asgi_wsgi_compat::{Body, BoxError, Environ, StartResponse, WsgiError, WsgiToAsgi};
use common::{scope, seen};
use http::{Method, StatusCode};

async fn get(app: &impl App) -> testing::Outcome {
    testing::call(app, Scope::from(scope(Method::GET, "/")), []).await
}

/// Records the error a call returned to the app, for the test to inspect.
#[derive(Clone, Default)]
struct Slot(Arc<Mutex<Option<WsgiError>>>);

impl Slot {
    fn put(&self, e: WsgiError) {
        *self.0.lock().unwrap() = Some(e);
    }

    fn take(&self) -> Option<WsgiError> {
        self.0.lock().unwrap().take()
    }
}

/// Wraps `wsgi` so that `on_start` sees the moment `http.response.start` is sent.
fn observe_start(
    wsgi: WsgiToAsgi<impl asgi_wsgi_compat::WsgiApp>,
    on_start: impl Fn() + Clone + Send + Sync + 'static,
) -> impl App {
    move |scope: Scope, receive: Receiver, send: Sender| {
        let wsgi = wsgi.clone();
        let on_start = on_start.clone();
        async move {
            let send = send.map(move |event| {
                if let SendEvent::HttpResponseStart { .. } = event {
                    on_start();
                }
                event
            });
            wsgi.call(scope, receive, send).await
        }
    }
}

#[tokio::test]
async fn headers_wait_for_the_first_non_empty_chunk() {
    let data_yielded = Arc::new(AtomicBool::new(false));
    let flag = data_yielded.clone();
    let wsgi = WsgiToAsgi::new(
        move |_: Environ, start_response: StartResponse| -> Result<Body, BoxError> {
            start_response.call("200 OK", [("Content-Type", "text/plain")], None)?;
            let flag = flag.clone();
            Ok(Body::from_chunks((0..3).map(move |i| {
                if i < 2 {
                    ""
                } else {
                    flag.store(true, Ordering::SeqCst);
                    "data"
                }
            })))
        },
    );
    let start_saw_data = Arc::new(Mutex::new(None));
    let record = start_saw_data.clone();
    let app = observe_start(wsgi, move || {
        *record.lock().unwrap() = Some(data_yielded.load(Ordering::SeqCst));
    });
    let outcome = get(&app).await;
    assert_eq!(outcome.status(), Some(StatusCode::OK));
    assert_eq!(outcome.body(), b"data");
    assert_eq!(*start_saw_data.lock().unwrap(), Some(true));
}

#[tokio::test]
async fn headers_of_an_empty_body_go_out_at_the_end() {
    let iterator_ended = Arc::new(AtomicBool::new(false));
    let flag = iterator_ended.clone();
    let wsgi = WsgiToAsgi::new(
        move |_: Environ, start_response: StartResponse| -> Result<Body, BoxError> {
            start_response.call("204 No Content", Vec::<(&str, &str)>::new(), None)?;
            let flag = flag.clone();
            Ok(Body::from_chunks(["", ""].into_iter().chain(
                std::iter::from_fn(move || {
                    flag.store(true, Ordering::SeqCst);
                    None
                }),
            )))
        },
    );
    let start_after_end = Arc::new(Mutex::new(None));
    let record = start_after_end.clone();
    let app = observe_start(wsgi, move || {
        *record.lock().unwrap() = Some(iterator_ended.load(Ordering::SeqCst));
    });
    let outcome = get(&app).await;
    let seen = seen(&outcome.sent);
    assert_eq!(seen.status, Some(StatusCode::NO_CONTENT));
    assert!(seen.complete);
    assert!(seen.body.is_empty());
    assert_eq!(*start_after_end.lock().unwrap(), Some(true));
}

#[tokio::test]
async fn first_write_sends_the_headers_even_when_empty() {
    let wrote = Arc::new(AtomicBool::new(false));
    let flag = wrote.clone();
    let wsgi = WsgiToAsgi::new(
        move |_: Environ, start_response: StartResponse| -> Result<Body, BoxError> {
            let write = start_response.call("200 OK", [("Content-Type", "text/plain")], None)?;
            flag.store(true, Ordering::SeqCst);
            write.write("")?;
            Ok(Body::from("after"))
        },
    );
    let start_after_write = Arc::new(Mutex::new(None));
    let record = start_after_write.clone();
    let app = observe_start(wsgi, move || {
        *record.lock().unwrap() = Some(wrote.load(Ordering::SeqCst));
    });
    let outcome = get(&app).await;
    assert_eq!(outcome.body(), b"after");
    assert_eq!(*start_after_write.lock().unwrap(), Some(true));
}

fn write_then_iterate(_: Environ, start_response: StartResponse) -> Result<Body, BoxError> {
    let write = start_response.call("200 OK", [("Content-Type", "text/plain")], None)?;
    write.write("written-1 ")?;
    write.write("written-2 ")?;
    Ok(Body::from_chunks(["iterated-1 ", "iterated-2"]))
}

#[tokio::test]
async fn write_data_goes_out_before_the_iterators() {
    let outcome = get(&WsgiToAsgi::new(write_then_iterate)).await;
    let seen = seen(&outcome.sent);
    assert_eq!(seen.body, b"written-1 written-2 iterated-1 iterated-2");
    assert!(seen.complete);
    assert!(outcome.result.is_ok());
}

#[tokio::test]
async fn second_start_response_without_exc_info_is_an_error() {
    let slot = Slot::default();
    let record = slot.clone();
    let app = WsgiToAsgi::new(
        move |_: Environ, start_response: StartResponse| -> Result<Body, BoxError> {
            start_response.call("200 OK", [("Content-Type", "text/plain")], None)?;
            if let Err(e) = start_response.call("404 Not Found", [("X-Second", "1")], None) {
                record.put(e);
            }
            Ok(Body::from("first wins"))
        },
    );
    let outcome = get(&app).await;
    assert!(matches!(slot.take(), Some(WsgiError::AlreadyStarted)));
    let seen = seen(&outcome.sent);
    assert_eq!(seen.status, Some(StatusCode::OK));
    assert!(!seen.headers.contains_key("x-second"));
    assert_eq!(seen.body, b"first wins");
}

#[tokio::test]
async fn exc_info_before_headers_replaces_status_and_headers() {
    let app = WsgiToAsgi::new(
        |_: Environ, start_response: StartResponse| -> Result<Body, BoxError> {
            start_response.call(
                "200 OK",
                [("X-Draft", "1"), ("Content-Type", "text/html")],
                None,
            )?;
            // The page failed to render: replace the response with an error page.
            let failure: BoxError = "template missing".into();
            start_response.call(
                "503 Service Unavailable",
                [("Content-Type", "text/plain")],
                Some(failure),
            )?;
            Ok(Body::from("try later"))
        },
    );
    let outcome = get(&app).await;
    let seen = seen(&outcome.sent);
    assert_eq!(seen.status, Some(StatusCode::SERVICE_UNAVAILABLE));
    assert!(!seen.headers.contains_key("x-draft"));
    assert_eq!(seen.headers["content-type"], "text/plain");
    assert_eq!(seen.body, b"try later");
    assert!(outcome.result.is_ok());
}

#[tokio::test]
async fn exc_info_after_headers_reraises_and_aborts() {
    let app = WsgiToAsgi::new(
        |_: Environ, start_response: StartResponse| -> Result<Body, BoxError> {
            let write = start_response.call("200 OK", [("Content-Type", "text/plain")], None)?;
            write.write("partial")?;
            let failure: BoxError = "the database went away".into();
            // After the headers went out, this hands the failure back (re-raises it).
            start_response.call("500 Internal Server Error", [("A", "b")], Some(failure))?;
            Ok(Body::from("never sent"))
        },
    );
    let outcome = get(&app).await;
    let seen = seen(&outcome.sent);
    assert_eq!(seen.status, Some(StatusCode::OK));
    assert_eq!(seen.body, b"partial");
    assert!(!seen.complete, "an aborted response must not look complete");
    let err = outcome
        .result
        .expect_err("the call must fail so the server aborts");
    assert!(err.to_string().contains("the database went away"), "{err}");
}

#[tokio::test]
async fn no_more_than_content_length_is_sent_and_iteration_stops() {
    let pulled = Arc::new(AtomicUsize::new(0));
    let count = pulled.clone();
    let app = WsgiToAsgi::new(
        move |_: Environ, start_response: StartResponse| -> Result<Body, BoxError> {
            start_response.call(
                "200 OK",
                [("Content-Type", "text/plain"), ("Content-Length", "8")],
                None,
            )?;
            let count = count.clone();
            Ok(Body::from_chunks(
                ["hello", " world", " and more", " and more"]
                    .into_iter()
                    .inspect(move |_| {
                        count.fetch_add(1, Ordering::SeqCst);
                    }),
            ))
        },
    );
    let outcome = get(&app).await;
    let seen = seen(&outcome.sent);
    assert_eq!(seen.body, b"hello wo");
    assert!(seen.complete);
    assert!(outcome.result.is_ok());
    assert_eq!(
        pulled.load(Ordering::SeqCst),
        2,
        "iteration stops at Content-Length"
    );
}

#[tokio::test]
async fn write_past_content_length_is_dropped() {
    let app = WsgiToAsgi::new(
        |_: Environ, start_response: StartResponse| -> Result<Body, BoxError> {
            let write = start_response.call("200 OK", [("Content-Length", "3")], None)?;
            write.write("abcdef")?;
            write.write("ghi")?;
            Ok(Body::empty())
        },
    );
    let outcome = get(&app).await;
    assert_eq!(outcome.body(), b"abc");
    assert!(seen(&outcome.sent).complete);
}

#[tokio::test]
async fn response_short_of_content_length_is_aborted() {
    let app = WsgiToAsgi::new(
        |_: Environ, start_response: StartResponse| -> Result<Body, BoxError> {
            start_response.call("200 OK", [("Content-Length", "10")], None)?;
            Ok(Body::from_chunks(["abc"]))
        },
    );
    let outcome = get(&app).await;
    let seen = seen(&outcome.sent);
    assert_eq!(seen.status, Some(StatusCode::OK));
    assert_eq!(seen.body, b"abc");
    assert!(!seen.complete);
    let err = outcome.result.unwrap_err();
    assert!(err.to_string().contains("3 of the 10 bytes"), "{err}");
}

#[tokio::test]
async fn empty_response_short_of_content_length_is_a_500() {
    let app = WsgiToAsgi::new(
        |_: Environ, start_response: StartResponse| -> Result<Body, BoxError> {
            start_response.call("200 OK", [("Content-Length", "10")], None)?;
            Ok(Body::empty())
        },
    );
    let outcome = get(&app).await;
    assert_eq!(outcome.status(), Some(StatusCode::INTERNAL_SERVER_ERROR));
    assert!(seen(&outcome.sent).complete);
}

#[tokio::test]
async fn head_response_may_declare_a_length_it_does_not_send() {
    let app = WsgiToAsgi::new(
        |_: Environ, start_response: StartResponse| -> Result<Body, BoxError> {
            start_response.call("200 OK", [("Content-Length", "1234")], None)?;
            Ok(Body::empty())
        },
    );
    let outcome = testing::call(&app, Scope::from(scope(Method::HEAD, "/")), []).await;
    let seen = seen(&outcome.sent);
    assert_eq!(seen.status, Some(StatusCode::OK));
    assert_eq!(seen.headers["content-length"], "1234");
    assert!(seen.complete);
}

#[tokio::test]
async fn hop_by_hop_headers_are_an_error() {
    for name in [
        "Connection",
        "Keep-Alive",
        "Transfer-Encoding",
        "Upgrade",
        "TE",
        "Trailer",
        "Proxy-Authenticate",
        "Proxy-Authorization",
    ] {
        let slot = Slot::default();
        let record = slot.clone();
        let app = WsgiToAsgi::new(
            move |_: Environ, start_response: StartResponse| -> Result<Body, BoxError> {
                let result = start_response.call("200 OK", [(name, "x")], None);
                match result {
                    Ok(_) => Ok(Body::from("accepted")),
                    Err(e) => {
                        record.put(e);
                        Err("refused".into())
                    }
                }
            },
        );
        let outcome = get(&app).await;
        match slot.take() {
            Some(WsgiError::HopByHopHeader { name: got }) => {
                assert_eq!(got, name.to_ascii_lowercase())
            }
            other => panic!("{name}: expected HopByHopHeader, got {other:?}"),
        }
        assert_eq!(outcome.status(), Some(StatusCode::INTERNAL_SERVER_ERROR));
    }
}

#[tokio::test]
async fn status_must_be_code_space_reason() {
    for status in ["200", "200OK", "OK 200", "2000 OK", " 200 OK", "200 OK\r\n"] {
        let slot = Slot::default();
        let record = slot.clone();
        let app = WsgiToAsgi::new(
            move |_: Environ, start_response: StartResponse| -> Result<Body, BoxError> {
                match start_response.call(status, [("Content-Type", "text/plain")], None) {
                    Ok(_) => Ok(Body::from("accepted")),
                    Err(e) => {
                        record.put(e);
                        Err("refused".into())
                    }
                }
            },
        );
        let outcome = get(&app).await;
        assert!(
            matches!(slot.take(), Some(WsgiError::InvalidStatus { .. })),
            "{status:?}"
        );
        assert_eq!(outcome.status(), Some(StatusCode::INTERNAL_SERVER_ERROR));
    }
}

#[tokio::test]
async fn invalid_header_value_is_an_error() {
    let slot = Slot::default();
    let record = slot.clone();
    let app = WsgiToAsgi::new(
        move |_: Environ, start_response: StartResponse| -> Result<Body, BoxError> {
            match start_response.call("200 OK", [("X-Injected", "a\r\nSet-Cookie: x=1")], None) {
                Ok(_) => Ok(Body::from("accepted")),
                Err(e) => {
                    record.put(e);
                    Err("refused".into())
                }
            }
        },
    );
    let outcome = get(&app).await;
    assert!(matches!(
        slot.take(),
        Some(WsgiError::InvalidHeader { name, .. }) if name == "X-Injected"
    ));
    assert_eq!(outcome.status(), Some(StatusCode::INTERNAL_SERVER_ERROR));
}

#[tokio::test]
async fn body_data_before_start_response_is_a_500() {
    let app = WsgiToAsgi::new(|_: Environ, _: StartResponse| -> Result<Body, BoxError> {
        Ok(Body::from("too early"))
    });
    let outcome = get(&app).await;
    assert_eq!(outcome.status(), Some(StatusCode::INTERNAL_SERVER_ERROR));
    assert_ne!(outcome.body(), b"too early");
    assert!(outcome.result.is_ok(), "the 500 completes the response");
}

#[tokio::test]
async fn start_response_may_be_called_from_the_iterator() {
    let slot = Slot::default();
    let record = slot.clone();
    let app = WsgiToAsgi::new(
        move |_: Environ, start_response: StartResponse| -> Result<Body, BoxError> {
            let kept = start_response.clone();
            // The iterator calls start_response lazily, as a Python generator may.
            let record = record.clone();
            Ok(Body::try_from_chunks(std::iter::once_with(move || {
                let write = kept.call("200 OK", [("Content-Type", "text/plain")], None)?;
                if let Err(e) = kept.call("200 OK", Vec::<(&str, &str)>::new(), None) {
                    record.put(e);
                }
                write.write("from the generator")?;
                Ok::<_, BoxError>("")
            })))
        },
    );
    let outcome = get(&app).await;
    assert_eq!(outcome.status(), Some(StatusCode::OK));
    assert_eq!(outcome.body(), b"from the generator");
    assert!(matches!(slot.take(), Some(WsgiError::AlreadyStarted)));
}

#[tokio::test]
async fn returning_without_start_response_is_a_500() {
    let app = WsgiToAsgi::new(|_: Environ, _: StartResponse| -> Result<Body, BoxError> {
        Ok(Body::empty())
    });
    let outcome = get(&app).await;
    assert_eq!(outcome.status(), Some(StatusCode::INTERNAL_SERVER_ERROR));
}

#[tokio::test]
async fn error_from_the_iterator_after_headers_aborts() {
    let app = WsgiToAsgi::new(
        |_: Environ, start_response: StartResponse| -> Result<Body, BoxError> {
            start_response.call("200 OK", [("Content-Type", "text/plain")], None)?;
            Ok(Body::try_from_chunks([
                Ok("first "),
                Err(io::Error::other("disk read failed")),
                Ok("never"),
            ]))
        },
    );
    let outcome = get(&app).await;
    let seen = seen(&outcome.sent);
    assert_eq!(seen.body, b"first ");
    assert!(!seen.complete);
    assert!(
        outcome
            .result
            .unwrap_err()
            .to_string()
            .contains("disk read failed")
    );
}

#[tokio::test]
async fn error_from_the_app_before_headers_is_a_500() {
    let app = WsgiToAsgi::new(
        |_: Environ, start_response: StartResponse| -> Result<Body, BoxError> {
            start_response.call("200 OK", [("Content-Type", "text/plain")], None)?;
            Err("the cache is corrupt".into())
        },
    );
    let outcome = get(&app).await;
    let seen = seen(&outcome.sent);
    assert_eq!(seen.status, Some(StatusCode::INTERNAL_SERVER_ERROR));
    assert_eq!(seen.body, b"Internal Server Error");
    assert!(seen.complete);
    assert!(outcome.result.is_ok());
}

#[tokio::test]
async fn body_is_closed_after_completion() {
    let closed = Arc::new(AtomicUsize::new(0));
    let count = closed.clone();
    let app = WsgiToAsgi::new(
        move |_: Environ, start_response: StartResponse| -> Result<Body, BoxError> {
            start_response.call("200 OK", [("Content-Type", "text/plain")], None)?;
            let count = count.clone();
            Ok(Body::from_chunks(["a", "b"]).on_close(move || {
                count.fetch_add(1, Ordering::SeqCst);
            }))
        },
    );
    let outcome = get(&app).await;
    assert_eq!(outcome.body(), b"ab");
    assert_eq!(closed.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn body_is_closed_after_an_iterator_error() {
    let closed = Arc::new(AtomicUsize::new(0));
    let count = closed.clone();
    let app = WsgiToAsgi::new(
        move |_: Environ, start_response: StartResponse| -> Result<Body, BoxError> {
            start_response.call("200 OK", [("Content-Type", "text/plain")], None)?;
            let count = count.clone();
            Ok(
                Body::try_from_chunks([Ok("a"), Err(io::Error::other("broken"))]).on_close(
                    move || {
                        count.fetch_add(1, Ordering::SeqCst);
                    },
                ),
            )
        },
    );
    let outcome = get(&app).await;
    assert!(outcome.result.is_err());
    assert_eq!(closed.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn body_is_closed_after_a_panic_in_the_iterator() {
    let closed = Arc::new(AtomicUsize::new(0));
    let count = closed.clone();
    let app = WsgiToAsgi::new(
        move |_: Environ, start_response: StartResponse| -> Result<Body, BoxError> {
            start_response.call("200 OK", [("Content-Type", "text/plain")], None)?;
            let count = count.clone();
            Ok(Body::from_chunks((0..2).map(|i| {
                if i == 1 {
                    panic!("render failed");
                }
                "a"
            }))
            .on_close(move || {
                count.fetch_add(1, Ordering::SeqCst);
            }))
        },
    );
    let outcome = get(&app).await;
    let err = outcome.result.unwrap_err();
    assert!(err.is_panic());
    assert_eq!(closed.load(Ordering::SeqCst), 1);
}
