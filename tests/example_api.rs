//! The `api` example over a real socket: its routes, the session login, 401 without one,
//! server-sent events, and the middleware stack (trusted hosts, request id, CORS,
//! compression) as a client sees it.

mod common;

#[path = "../examples/api/app.rs"]
mod api;

use std::io::Read;

use http::Request;

const SECRET: &[u8] = b"a test secret that is long enough for hmac";

async fn start() -> common::TestServer {
    let origins = vec!["http://127.0.0.1:8001".to_owned()];
    common::start(api::api(&origins, SECRET).unwrap(), |b| b).await
}

fn request(method: &str, path: &str) -> http::request::Builder {
    Request::builder()
        .method(method)
        .uri(path)
        .header("host", "127.0.0.1")
}

#[tokio::test]
async fn the_page_and_its_files_are_served() {
    let server = start().await;
    let page = common::send(
        server.addr,
        request("GET", "/").body(common::empty()).unwrap(),
    )
    .await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("<h1>Items</h1>"));
    let same = common::send(
        server.addr,
        request("GET", "/static/index.html")
            .body(common::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(same.body, page.body);
    let css = common::send(
        server.addr,
        request("GET", "/static/style.css")
            .body(common::empty())
            .unwrap(),
    )
    .await;
    assert!(
        css.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    let missing = common::send(
        server.addr,
        request("GET", "/static/nope.js")
            .body(common::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(missing.status, 404);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn creating_an_item_needs_a_login() {
    let server = start().await;
    let item = r#"{"name": "pencil"}"#;
    let anonymous = common::send(
        server.addr,
        request("POST", "/api/items")
            .header("content-type", "application/json")
            .body(common::full(item))
            .unwrap(),
    )
    .await;
    assert_eq!(anonymous.status, 401);
    let login = common::send(
        server.addr,
        request("POST", "/api/login")
            .header("content-type", "application/json")
            .body(common::full(r#"{"user": "ada"}"#))
            .unwrap(),
    )
    .await;
    assert_eq!(login.status, 200);
    assert_eq!(login.json()["user"], "ada");
    let cookie = login.headers["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let created = common::send(
        server.addr,
        request("POST", "/api/items")
            .header("content-type", "application/json")
            .header("cookie", &cookie)
            .body(common::full(item))
            .unwrap(),
    )
    .await;
    assert_eq!(created.status, 201);
    assert_eq!(created.json()["owner"], "ada");
    let list = common::send(
        server.addr,
        request("GET", "/api/items").body(common::empty()).unwrap(),
    )
    .await;
    let names: Vec<_> = list
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["first item", "pencil"]);
    let bad = common::send(
        server.addr,
        request("POST", "/api/login")
            .header("content-type", "application/json")
            .body(common::full("{not json"))
            .unwrap(),
    )
    .await;
    assert_eq!(bad.status, 400);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn events_stream_in_order() {
    let server = start().await;
    let answer = common::send(
        server.addr,
        request("GET", "/api/events?count=3")
            .body(common::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(answer.headers["content-type"], "text/event-stream");
    assert_eq!(
        answer.text(),
        "id: 0\ndata: {\"tick\": 0}\n\nid: 1\ndata: {\"tick\": 1}\n\nid: 2\ndata: {\"tick\": 2}\n\n"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_stack_answers_as_documented() {
    let server = start().await;
    // TrustedHost, outermost: a wrong host never reaches anything.
    let wrong = common::send(
        server.addr,
        Request::get("/api/items")
            .header("host", "evil.example")
            .body(common::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(wrong.status, 400);
    let local = common::send(
        server.addr,
        Request::get("/api/items")
            .header("host", "localhost:8000")
            .body(common::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(local.status, 200);
    // RequestId on every answer, a CORS preflight included.
    let preflight = common::send(
        server.addr,
        request("OPTIONS", "/api/items")
            .header("origin", "http://127.0.0.1:8001")
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .body(common::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(preflight.status, 200);
    assert_eq!(
        preflight.headers["access-control-allow-origin"],
        "http://127.0.0.1:8001"
    );
    assert_eq!(
        preflight.headers["access-control-allow-credentials"],
        "true"
    );
    assert!(preflight.headers.contains_key("x-request-id"));
    let refused = common::send(
        server.addr,
        request("OPTIONS", "/api/items")
            .header("origin", "http://evil.example")
            .header("access-control-request-method", "POST")
            .body(common::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(refused.status, 400);
    assert_eq!(refused.text(), "Disallowed CORS origin");
    // Compression with CORS headers on the compressed answer.
    let page = common::send(
        server.addr,
        request("GET", "/")
            .header("accept-encoding", "gzip")
            .header("origin", "http://127.0.0.1:8001")
            .body(common::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(page.headers["content-encoding"], "gzip");
    assert_eq!(
        page.headers["access-control-allow-origin"],
        "http://127.0.0.1:8001"
    );
    let mut html = String::new();
    flate2::read::GzDecoder::new(&page.body[..])
        .read_to_string(&mut html)
        .unwrap();
    assert!(html.contains("<h1>Items</h1>"));
    server.stop().await.unwrap();
}
