//! Response builders: bytes and headers of each, streaming (one event per item, errors,
//! bounded backpressure), files (chunked or path-sent), redirects.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use asgi_core::bytes::Bytes;
use asgi_core::extensions::{self, Extensions};
use asgi_core::host::testing;
use asgi_core::http::{HeaderValue, Method, StatusCode, header};
use asgi_core::{AppExt, Error, HttpScope, Receiver, Scope, SendEvent, Sender};
use asgi_http::response::{FILE_CHUNK_SIZE, Response};
use asgi_http::test_client::{TestClient, TestRequest};
use futures_util::stream;

/// An app that sends the response `make` builds.
fn app_of<F>(make: F) -> impl asgi_core::App
where
    F: Fn() -> Response + Send + Sync + 'static,
{
    move |_: Scope, _: Receiver, mut send: Sender| {
        let response = make();
        async move { response.send(&mut send).await }
    }
}

/// A file under the system temp directory, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, contents: &[u8]) -> Self {
        let path =
            std::env::temp_dir().join(format!("asgi-http-response-{}-{name}", std::process::id()));
        std::fs::write(&path, contents).unwrap();
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn scope_with(extensions: Extensions) -> Scope {
    let mut scope = HttpScope::new(Method::GET, "/");
    scope.extensions = extensions;
    Scope::from(scope)
}

#[tokio::test]
async fn text_has_utf8_plain_type_length_and_bytes() {
    let response = TestClient::new(app_of(|| Response::text("h\u{e9}llo")))
        .get("/")
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(response.header("content-length"), Some("6"));
    assert_eq!(response.bytes().as_ref(), "h\u{e9}llo".as_bytes());
}

#[tokio::test]
async fn html_has_utf8_html_type() {
    let response = TestClient::new(app_of(|| Response::html("<h1>hi</h1>")))
        .get("/")
        .await
        .unwrap();
    assert_eq!(
        response.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(response.text(), "<h1>hi</h1>");
}

#[tokio::test]
async fn json_serializes_the_value_with_json_type() {
    #[derive(serde::Serialize)]
    struct User {
        id: u32,
        name: &'static str,
    }
    let response = TestClient::new(app_of(|| {
        Response::json(&User { id: 1, name: "ada" }).expect("serializable")
    }))
    .get("/")
    .await
    .unwrap();
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(response.text(), r#"{"id":1,"name":"ada"}"#);
    assert_eq!(response.header("content-length"), Some("21"));
}

#[tokio::test]
async fn bytes_is_an_octet_stream() {
    let response = TestClient::new(app_of(|| Response::bytes(vec![0u8, 159, 255])))
        .get("/")
        .await
        .unwrap();
    assert_eq!(
        response.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(response.bytes().as_ref(), [0u8, 159, 255]);
}

#[tokio::test]
async fn redirect_is_303_with_location_and_empty_body() {
    let response = TestClient::new(app_of(|| Response::redirect("/login?next=/a b")))
        .send(TestRequest::post("/"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.header("location"), Some("/login?next=/a%20b"));
    assert_eq!(response.header("content-length"), Some("0"));
    assert!(response.bytes().is_empty());
}

#[tokio::test]
async fn temporary_and_permanent_redirects_are_307_and_308() {
    let client = TestClient::new(app_of(|| Response::temporary_redirect("/t")));
    assert_eq!(
        client.get("/").await.unwrap().status(),
        StatusCode::TEMPORARY_REDIRECT
    );
    let client = TestClient::new(app_of(|| Response::permanent_redirect("/p")));
    let response = client.get("/").await.unwrap();
    assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(response.header("location"), Some("/p"));
}

#[tokio::test]
async fn status_and_header_setters_apply_and_append_keeps_repeats() {
    let response = TestClient::new(app_of(|| {
        Response::text("gone")
            .status(StatusCode::GONE)
            .header(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/x-custom"),
            )
            .append_header(header::SET_COOKIE, HeaderValue::from_static("a=1"))
            .append_header(header::SET_COOKIE, HeaderValue::from_static("b=2"))
    }))
    .get("/")
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::GONE);
    assert_eq!(response.header("content-type"), Some("text/x-custom"));
    let cookies: Vec<_> = response.headers().get_all("set-cookie").iter().collect();
    assert_eq!(cookies, ["a=1", "b=2"]);
}

#[tokio::test]
async fn header_takes_names_and_values_as_strings() {
    let response = TestClient::new(app_of(|| {
        Response::text("hi")
            .header("x-request-id", "abc-1")
            .header(header::CACHE_CONTROL, String::from("no-store"))
            .append_header("set-cookie", "a=1")
            .append_header(header::SET_COOKIE, HeaderValue::from_static("b=2"))
    }))
    .get("/")
    .await
    .unwrap();
    assert_eq!(response.header("x-request-id"), Some("abc-1"));
    assert_eq!(response.header("cache-control"), Some("no-store"));
    let cookies: Vec<_> = response.headers().get_all("set-cookie").iter().collect();
    assert_eq!(cookies, ["a=1", "b=2"]);
}

#[tokio::test]
async fn invalid_header_fails_the_send_before_anything_is_sent() {
    let bad_name = app_of(|| Response::text("hi").header("bad name", "v")).boxed();
    let bad_value = app_of(|| Response::text("hi").append_header("x-ok", "line\nbreak")).boxed();
    for app in [bad_name, bad_value] {
        let outcome = testing::call(&app, scope_with(Extensions::default()), []).await;
        assert!(outcome.sent.is_empty(), "sent {:?}", outcome.sent);
        let err = outcome.result.unwrap_err();
        assert!(!err.is_disconnected() && !err.is_protocol());
        assert!(
            err.to_string().contains("invalid response header"),
            "error: {err}"
        );
    }
}

#[tokio::test]
async fn streaming_sends_one_body_event_per_item_then_an_empty_final_one() {
    let app = app_of(|| {
        Response::streaming(stream::iter(
            ["a", "bc"].map(|s| Ok::<_, Error>(Bytes::from(s))),
        ))
    });
    let outcome = testing::call(&app, scope_with(Extensions::new()), []).await;
    outcome.result.as_ref().unwrap();
    let SendEvent::HttpResponseStart { headers, .. } = &outcome.sent[0] else {
        panic!("expected a start, got {:?}", outcome.sent[0]);
    };
    assert!(!headers.contains_key(header::CONTENT_LENGTH));
    assert_eq!(
        outcome.sent[1..],
        [
            SendEvent::response_body("a", true),
            SendEvent::response_body("bc", true),
            SendEvent::response_body("", false),
        ]
    );
}

#[tokio::test]
async fn streaming_error_item_ends_the_response_with_that_error() {
    let app = app_of(|| {
        Response::streaming(stream::iter([
            Ok(Bytes::from("partial")),
            Err(std::io::Error::other("upstream failed")),
        ]))
    });
    let outcome = testing::call(&app, scope_with(Extensions::new()), []).await;
    let err = outcome.result.unwrap_err();
    assert_eq!(err.to_string(), "app error: upstream failed");
    // The head and the chunk went out; no final body event claims the body is complete.
    assert_eq!(outcome.sent.len(), 2);
    assert_eq!(outcome.sent[1], SendEvent::response_body("partial", true));
    // The test client reports it as the call's error.
    let client = TestClient::new(app);
    assert!(client.get("/").await.is_err());
}

#[tokio::test]
async fn streaming_item_that_is_a_disconnect_stays_a_disconnect() {
    // A proxying stream whose upstream client left yields the interface's own disconnect
    // error; boxed on the way through the stream, it must still read as a disconnect, which a
    // server does not log as an app failure.
    let app = app_of(|| {
        Response::streaming(stream::iter([
            Ok(Bytes::from("partial")),
            Err(Error::disconnected()),
        ]))
    });
    let outcome = testing::call(&app, scope_with(Extensions::new()), []).await;
    let err = outcome.result.unwrap_err();
    assert!(err.is_disconnected(), "{err:?}");
    assert_eq!(err.to_string(), "the peer disconnected");
}

#[tokio::test]
async fn streaming_backpressure_bounds_how_far_the_stream_is_pulled() {
    let pulled = Arc::new(AtomicUsize::new(0));
    let counter = pulled.clone();
    let app = app_of(move || {
        let counter = counter.clone();
        // An endless stream that counts how many items were taken from it.
        Response::streaming(stream::repeat_with(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok::<_, Error>(Bytes::from_static(b"tick"))
        }))
    });
    let client = TestClient::new(app);
    let mut response = client.stream(TestRequest::get("/")).await.unwrap();
    // Let the app run as far as it can while nothing is read.
    for _ in 0..200 {
        tokio::task::yield_now().await;
    }
    // The queue between app and client holds 16 events (TestClient's "Backpressure"); the
    // app can have one more item in hand, waiting to be sent.
    let bound = 16 + 1;
    let before = pulled.load(Ordering::SeqCst);
    assert!(before <= bound, "pulled {before} items with nothing read");
    for read in 1..=50 {
        assert_eq!(
            response.chunk().await.unwrap().as_deref(),
            Some(&b"tick"[..])
        );
        let now = pulled.load(Ordering::SeqCst);
        assert!(
            now <= read + bound,
            "pulled {now} items after reading {read}"
        );
    }
    let result = response.disconnect().await;
    assert!(result.unwrap_err().is_disconnected());
}

#[tokio::test]
async fn file_without_pathsend_streams_in_bounded_chunks_with_type_and_length() {
    let contents: Vec<u8> = (0..(2 * FILE_CHUNK_SIZE + 100))
        .map(|i| (i % 251) as u8)
        .collect();
    let file = TempFile::new("big.txt", &contents);
    let path = file.0.clone();
    let app = move |scope: Scope, _: Receiver, mut send: Sender| {
        let path = path.clone();
        async move {
            let extensions = scope.extensions().cloned().unwrap_or_default();
            Response::file(&path, &extensions)
                .await?
                .send(&mut send)
                .await
        }
    };
    let outcome = testing::call(&app, scope_with(Extensions::new()), []).await;
    outcome.result.as_ref().unwrap();
    let SendEvent::HttpResponseStart { headers, .. } = &outcome.sent[0] else {
        panic!("expected a start, got {:?}", outcome.sent[0]);
    };
    assert_eq!(headers[header::CONTENT_TYPE], "text/plain; charset=utf-8");
    assert_eq!(
        headers[header::CONTENT_LENGTH],
        contents.len().to_string().as_str()
    );
    let bodies: Vec<(usize, bool)> = outcome.sent[1..]
        .iter()
        .map(|e| match e {
            SendEvent::HttpResponseBody { body, more_body } => (body.len(), *more_body),
            other => panic!("expected a body, got {other:?}"),
        })
        .collect();
    assert_eq!(
        bodies,
        [
            (FILE_CHUNK_SIZE, true),
            (FILE_CHUNK_SIZE, true),
            (100, false)
        ]
    );
    assert_eq!(outcome.body(), contents);
}

#[tokio::test]
async fn file_uses_pathsend_when_the_server_supports_it() {
    let file = TempFile::new("page.html", b"<p>static</p>");
    let path = file.0.clone();
    let app = move |scope: Scope, _: Receiver, mut send: Sender| {
        let path = path.clone();
        async move {
            let extensions = scope.extensions().cloned().unwrap_or_default();
            Response::file(&path, &extensions)
                .await?
                .send(&mut send)
                .await
        }
    };
    let outcome = testing::call(
        &app,
        scope_with(Extensions::with_supported([
            extensions::HTTP_RESPONSE_PATHSEND,
        ])),
        [],
    )
    .await;
    outcome.result.as_ref().unwrap();
    assert_eq!(
        outcome.sent[1],
        SendEvent::HttpResponsePathsend {
            path: std::fs::canonicalize(&file.0).unwrap()
        }
    );
    // Through the test client, which supports pathsend, the body is the file.
    let response = TestClient::new(app).get("/").await.unwrap();
    assert_eq!(
        response.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(response.header("content-length"), Some("13"));
    assert_eq!(response.text(), "<p>static</p>");
}

#[tokio::test]
async fn empty_file_sends_one_empty_final_body() {
    let file = TempFile::new("empty.bin", b"");
    let response = Response::file(&file.0, &Extensions::new()).await.unwrap();
    let app = app_of({
        let slot = std::sync::Mutex::new(Some(response));
        move || slot.lock().unwrap().take().expect("called once")
    });
    let outcome = testing::call(&app, scope_with(Extensions::new()), []).await;
    outcome.result.as_ref().unwrap();
    assert_eq!(outcome.sent[1], SendEvent::response_body("", false));
    assert_eq!(outcome.sent.len(), 2);
}

#[tokio::test]
async fn missing_file_is_not_found_before_anything_is_sent() {
    let missing = std::env::temp_dir().join("asgi-http-response-no-such-file.txt");
    let err = Response::file(&missing, &Extensions::new())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
}

#[tokio::test]
async fn directory_is_not_a_file() {
    let err = Response::file(std::env::temp_dir(), &Extensions::new())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

#[tokio::test]
async fn unknown_extension_is_an_octet_stream() {
    let file = TempFile::new("data.unknownext", b"xyz");
    let response = Response::file(&file.0, &Extensions::new()).await.unwrap();
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/octet-stream"
    );
}

#[tokio::test]
async fn sending_after_the_client_left_is_disconnected() {
    let app = app_of(|| Response::text("late"));
    let outcome = {
        let scope = scope_with(Extensions::new());
        let mut session = testing::TestSession::start(app, scope);
        session.disconnect();
        session.finish().await
    };
    assert!(outcome.unwrap_err().is_disconnected());
}
