//! Request: query, headers, body with a limit (too large vs disconnected), JSON errors,
//! chunk-by-chunk reading, path parameters, state and extensions.

use asgi_core::bytes::Bytes;
use asgi_core::host::testing::TestSession;
use asgi_core::http::{Method, StatusCode};
use asgi_core::{
    AppExt, Error, HttpScope, ReceiveEvent, Receiver, Scope, SendEvent, Sender, from_fn,
};
use asgi_http::request::{BodyError, JsonError, Request};
use asgi_http::response::Response;
use asgi_http::router::{Router, get};
use asgi_http::test_client::{TestClient, TestRequest};
use futures_util::stream;
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};

/// Reads the body with `limit` and answers with it, or with the error's status and message.
fn body_app(limit: usize) -> impl asgi_core::App {
    move |scope: Scope, receive: Receiver, mut send: Sender| async move {
        let mut request = Request::from_scope(scope, receive)?;
        match request.body(limit).await {
            Ok(body) => Response::bytes(body).send(&mut send).await,
            Err(e) => match e.status() {
                Some(status) => {
                    Response::text(e.to_string())
                        .status(status)
                        .send(&mut send)
                        .await
                }
                None => Err(e.into()),
            },
        }
    }
}

#[derive(Debug, Deserialize)]
struct Item {
    name: String,
    count: u32,
}

async fn json_app(scope: Scope, receive: Receiver, mut send: Sender) -> Result<(), Error> {
    let mut request = Request::from_scope(scope, receive)?;
    match request.json::<Item>(64).await {
        Ok(item) => {
            Response::text(format!("{} x{}", item.name, item.count))
                .send(&mut send)
                .await
        }
        Err(e) => {
            let status = e.status().unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            Response::text(e.to_string())
                .status(status)
                .send(&mut send)
                .await
        }
    }
}

fn chunks(parts: &[&'static str]) -> impl futures_util::Stream<Item = Bytes> + Send + 'static {
    stream::iter(
        parts
            .iter()
            .map(|p| Bytes::from_static(p.as_bytes()))
            .collect::<Vec<_>>(),
    )
}

#[tokio::test]
async fn query_pairs_and_query_decode_the_query_string() {
    let app = |scope: Scope, receive: Receiver, mut send: Sender| async move {
        let request = Request::from_scope(scope, receive)?;
        let pairs: Vec<String> = request
            .query_pairs()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let text = format!(
            "{} | q={:?} missing={:?}",
            pairs.join(","),
            request.query("q"),
            request.query("missing")
        );
        Response::text(text).send(&mut send).await
    };
    let client = TestClient::new(app);
    let response = client
        .get("/search?q=rust+web&tag=a%26b&tag=c&flag")
        .await
        .unwrap();
    assert_eq!(
        response.text(),
        "q=rust web,tag=a&b,tag=c,flag= | q=Some(\"rust web\") missing=None"
    );
}

#[tokio::test]
async fn header_gives_the_first_value_and_headers_keep_repeats() {
    let app = |scope: Scope, receive: Receiver, mut send: Sender| async move {
        let request = Request::from_scope(scope, receive)?;
        let all: Vec<&str> = request
            .headers()
            .get_all("x-tag")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let text = format!(
            "first={:?} all={} absent={:?}",
            request.header("x-tag"),
            all.join(","),
            request.header("x-absent")
        );
        Response::text(text).send(&mut send).await
    };
    let client = TestClient::new(app);
    let response = client
        .send(
            TestRequest::get("/")
                .header("x-tag", "one")
                .header("x-tag", "two"),
        )
        .await
        .unwrap();
    assert_eq!(
        response.text(),
        "first=Some(\"one\") all=one,two absent=None"
    );
}

#[tokio::test]
async fn body_within_the_limit_is_read_whole_from_chunks() {
    let client = TestClient::new(body_app(10));
    let response = client
        .send(TestRequest::post("/").body_stream(chunks(&["ab", "cd", "ef"])))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text(), "abcdef");
}

#[tokio::test]
async fn body_over_the_limit_while_streaming_gives_413() {
    let client = TestClient::new(body_app(5));
    let response = client
        .send(TestRequest::post("/").body_stream(chunks(&["abc", "def", "ghi"])))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        response.text(),
        "the request body is larger than the limit of 5 bytes"
    );
}

#[tokio::test]
async fn declared_content_length_over_the_limit_gives_413() {
    let client = TestClient::new(body_app(5));
    let response = client
        .send(TestRequest::post("/").body("0123456789"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

/// Runs `read` in an app whose client sends `events` and then disconnects; gives what
/// `read` returned.
async fn after_disconnect<T, F, Fut>(events: Vec<ReceiveEvent>, read: F) -> T
where
    T: Send + 'static,
    F: FnOnce(Request) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = T> + Send,
{
    let (tx, rx) = oneshot::channel();
    let slot = std::sync::Mutex::new(Some((read, tx)));
    let app = move |scope: Scope, receive: Receiver, _: Sender| {
        let taken = slot.lock().unwrap().take();
        async move {
            let (read, tx) = taken.expect("called once");
            let request = Request::from_scope(scope, receive)?;
            let _ = tx.send(read(request).await);
            Ok::<(), Error>(())
        }
    };
    let mut session = TestSession::start(app, Scope::from(HttpScope::new(Method::POST, "/")));
    for event in events {
        session.send(event).await.unwrap();
    }
    session.disconnect();
    let out = rx.await.unwrap();
    session.finish().await.unwrap();
    out
}

#[tokio::test]
async fn client_disconnect_while_reading_the_body_is_disconnected_not_too_large() {
    let result = after_disconnect(
        vec![ReceiveEvent::request("partial", true)],
        |mut r| async move { r.body(1024).await },
    )
    .await;
    assert_eq!(result, Err(BodyError::Disconnected));
    let err = Error::from(BodyError::Disconnected);
    assert!(err.is_disconnected());
}

#[tokio::test]
async fn chunk_after_a_disconnect_mid_body_is_an_error_not_the_end() {
    let result = after_disconnect(
        vec![ReceiveEvent::request("part", true)],
        |mut r| async move {
            let first = r.chunk().await;
            let second = r.chunk().await;
            (first, second)
        },
    )
    .await;
    assert_eq!(result.0, Ok(Some(Bytes::from_static(b"part"))));
    assert_eq!(result.1, Err(BodyError::Disconnected));
}

#[tokio::test]
async fn json_body_is_parsed_into_the_type() {
    let client = TestClient::new(json_app);
    let response = client
        .send(TestRequest::post("/").json(&serde_json::json!({"name": "lamp", "count": 3})))
        .await
        .unwrap();
    assert_eq!(response.text(), "lamp x3");
}

#[tokio::test]
async fn json_syntax_error_gives_400() {
    let client = TestClient::new(json_app);
    let response = client
        .send(TestRequest::post("/").body("{\"name\": "))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(
        response
            .text()
            .starts_with("invalid JSON in the request body"),
        "{}",
        response.text()
    );
}

#[tokio::test]
async fn json_of_the_wrong_shape_gives_422() {
    let client = TestClient::new(json_app);
    let response = client
        .send(TestRequest::post("/").body(r#"{"name": "lamp", "count": "three"}"#))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn json_over_the_limit_gives_413() {
    let client = TestClient::new(json_app);
    let big = format!(r#"{{"name": "{}", "count": 1}}"#, "x".repeat(100));
    let response = client.send(TestRequest::post("/").body(big)).await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let err = JsonError::Body(BodyError::TooLarge { limit: 64 });
    assert_eq!(err.status(), Some(StatusCode::PAYLOAD_TOO_LARGE));
}

#[tokio::test]
async fn chunks_arrive_as_the_client_sends_them() {
    // Echoes each request chunk as a response chunk as soon as it arrives.
    let echo = |scope: Scope, receive: Receiver, mut send: Sender| async move {
        let mut request = Request::from_scope(scope, receive)?;
        send.send(SendEvent::response_start(
            StatusCode::OK,
            Default::default(),
        ))
        .await?;
        while let Some(chunk) = request.chunk().await? {
            send.send(SendEvent::response_body(chunk, true)).await?;
        }
        send.send(SendEvent::response_body("", false)).await?;
        Ok(())
    };
    let (body_tx, mut body_rx) = mpsc::channel::<Bytes>(1);
    let body = stream::poll_fn(move |cx| body_rx.poll_recv(cx));
    let client = TestClient::new(echo);
    let mut response = client
        .stream(TestRequest::post("/upload").body_stream(body))
        .await
        .unwrap();
    for part in ["first", "second", "third"] {
        body_tx
            .send(Bytes::from_static(part.as_bytes()))
            .await
            .unwrap();
        // The app answers each chunk before the client has sent the next one.
        assert_eq!(
            response.chunk().await.unwrap().as_deref(),
            Some(part.as_bytes())
        );
    }
    drop(body_tx);
    assert_eq!(response.chunk().await.unwrap(), None);
}

#[tokio::test]
async fn body_after_chunks_is_consumed() {
    let app = |scope: Scope, receive: Receiver, mut send: Sender| async move {
        let mut request = Request::from_scope(scope, receive)?;
        let _ = request.chunk().await?;
        let err = request.body(100).await.unwrap_err();
        Response::text(err.to_string()).send(&mut send).await
    };
    let client = TestClient::new(app);
    let response = client
        .send(TestRequest::post("/").body_stream(chunks(&["a", "b"])))
        .await
        .unwrap();
    assert_eq!(
        response.text(),
        "the request body was already read chunk by chunk"
    );
}

#[derive(Clone)]
struct RequestId(u64);

#[tokio::test]
async fn path_params_and_middleware_extensions_are_readable() {
    let show = |scope: Scope, receive: Receiver, mut send: Sender| async move {
        let request = Request::from_scope(scope, receive)?;
        let text = format!(
            "id={} request_id={}",
            request.param("id").unwrap_or("-"),
            request.extension::<RequestId>().map_or(0, |r| r.0)
        );
        Response::text(text).send(&mut send).await
    };
    let app = Router::new().route("/things/{id}", get(show)).with(from_fn(
        |mut scope: Scope, receive, send, next: asgi_core::Next| async move {
            if let Some(ext) = scope.extensions_mut() {
                ext.insert(RequestId(77));
            }
            next.call(scope, receive, send).await
        },
    ));
    let client = TestClient::new(app);
    assert_eq!(
        client.get("/things/5").await.unwrap().text(),
        "id=5 request_id=77"
    );
}

/// Answers with the parsed `id` plus one, or with the parameter error's status and message.
async fn typed_param(scope: Scope, receive: Receiver, mut send: Sender) -> Result<(), Error> {
    let request = Request::from_scope(scope, receive)?;
    match request.param_as::<u64>("id") {
        Ok(id) => {
            Response::text(format!("next={}", id + 1))
                .send(&mut send)
                .await
        }
        Err(e) => {
            Response::text(e.to_string())
                .status(e.status())
                .send(&mut send)
                .await
        }
    }
}

#[tokio::test]
async fn typed_path_param_parses_or_gives_400_naming_the_parameter() {
    let client = TestClient::new(Router::new().route("/things/{id}", get(typed_param)));
    let ok = client.get("/things/41").await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(ok.text(), "next=42");

    for (path, value, reason) in [
        ("/things/abc", "abc", "invalid digit found in string"),
        ("/things/-1", "-1", "invalid digit found in string"),
        (
            "/things/99999999999999999999",
            "99999999999999999999",
            "number too large to fit in target type",
        ),
    ] {
        let bad = client.get(path).await.unwrap();
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(
            bad.text(),
            format!("invalid path parameter `id`: `{value}` is not a valid u64 ({reason})")
        );
    }
}

#[tokio::test]
async fn typed_path_param_missing_from_the_route_is_a_500() {
    let client = TestClient::new(Router::new().route("/things/{name}", get(typed_param)));
    let response = client.get("/things/7").await.unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(response.text(), "the route has no path parameter `id`");
}

#[tokio::test]
async fn state_lookup_error_names_the_missing_type() {
    struct Db;
    let app = |scope: Scope, receive: Receiver, mut send: Sender| async move {
        let request = Request::from_scope(scope, receive)?;
        match request.state().try_get::<Db>() {
            Ok(_) => Response::text("found").send(&mut send).await,
            Err(e) => {
                Response::text(e.to_string())
                    .status(StatusCode::INTERNAL_SERVER_ERROR)
                    .send(&mut send)
                    .await
            }
        }
    };
    let response = TestClient::new(app).get("/").await.unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        response
            .text()
            .starts_with("no `request::state_lookup_error_names_the_missing_type::")
            && response.text().contains("::Db` in the lifespan state"),
        "{}",
        response.text()
    );
}

#[tokio::test]
async fn method_path_and_route_path_come_from_the_scope() {
    let app = |scope: Scope, receive: Receiver, mut send: Sender| async move {
        let request = Request::from_scope(scope, receive)?;
        let text = format!(
            "{} {} {} {}",
            request.method(),
            request.path(),
            request.route_path(),
            String::from_utf8_lossy(request.query_string())
        );
        Response::text(text).send(&mut send).await
    };
    let client = TestClient::new(app);
    let response = client
        .send(TestRequest::put("/a%2Fb/c?x=%20"))
        .await
        .unwrap();
    assert_eq!(response.text(), "PUT /a/b/c /a/b/c x=%20");
}
