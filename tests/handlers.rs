//! Request handlers (`async fn(Request) -> Result<Response, HttpError>`) beside raw apps:
//! both are routes and apps; request errors become JSON answers (400, 413, 422, and a 500
//! from the server for the app's own bugs); the router's 404 and 405 answers can be set.

mod common;

use asgi::core::http::{Method, StatusCode};
use asgi::core::{App, Error, Receiver, Scope, Sender};
use asgi::prelude::{HttpError, handler};
use asgi::server::request::Request;
use asgi::server::response::Response;
use asgi::server::router::{Router, get, post, websocket};
use asgi::server::test_client::{TestClient, TestRequest};
use serde::Deserialize;

use common::{Answer, full, send, start};

#[derive(Deserialize)]
struct NewTodo {
    title: String,
}

async fn create(mut request: Request) -> Result<Response, HttpError> {
    let todo: NewTodo = request.json(64).await?;
    Ok(Response::json(&serde_json::json!({ "title": todo.title }))?.status(StatusCode::CREATED))
}

async fn show(request: Request) -> Result<Response, HttpError> {
    let id: u64 = request.param_as("id")?;
    if id == 0 {
        return Err(HttpError::not_found("no todo 0"));
    }
    Ok(Response::text(format!("todo {id}")))
}

async fn raw(scope: Scope, receive: Receiver, mut send: Sender) -> Result<(), Error> {
    let request = Request::from_scope(scope, receive)?;
    Response::text(format!("raw {}", request.method()))
        .send(&mut send)
        .await
}

fn api() -> Router {
    Router::new()
        .route("/todos", post(create).get(raw))
        .route("/todos/{id}", get(show))
        .route(
            "/closure",
            get(|request: Request| async move {
                Response::text(format!("closure {}", request.path()))
            }),
        )
}

fn json_of(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

#[tokio::test]
async fn handlers_and_raw_apps_are_routes_side_by_side() {
    let client = TestClient::new(api());
    let created = client
        .send(TestRequest::post("/todos").body(r#"{"title": "milk"}"#))
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    assert_eq!(created.header("content-type"), Some("application/json"));
    assert_eq!(created.text(), r#"{"title":"milk"}"#);
    assert_eq!(client.get("/todos").await.unwrap().text(), "raw GET");
    assert_eq!(client.get("/todos/7").await.unwrap().text(), "todo 7");
    assert_eq!(
        client.get("/closure").await.unwrap().text(),
        "closure /closure"
    );
}

#[tokio::test]
async fn invalid_json_gets_400_naming_the_problem() {
    let client = TestClient::new(api());
    for body in ["{", "not json", ""] {
        let response = client
            .send(TestRequest::post("/todos").body(body))
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{body:?}");
        assert_eq!(response.header("content-type"), Some("application/json"));
        let error = json_of(&response.text());
        let message = error["error"].as_str().unwrap();
        assert!(
            message.starts_with("invalid JSON in the request body"),
            "{message}"
        );
    }
}

#[tokio::test]
async fn json_of_the_wrong_shape_gets_422_naming_the_field() {
    let client = TestClient::new(api());
    let response = client
        .send(TestRequest::post("/todos").body(r#"{"name": "milk"}"#))
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let error = json_of(&response.text());
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("missing field `title`"),
        "{error}"
    );
    let response = client
        .send(TestRequest::post("/todos").body(r#"{"title": 5}"#))
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
}

#[tokio::test]
async fn body_over_the_handlers_limit_gets_413_as_json() {
    let client = TestClient::new(api());
    let long = format!(r#"{{"title": "{}"}}"#, "x".repeat(100));
    let response = client
        .send(TestRequest::post("/todos").body(long))
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let error = json_of(&response.text());
    assert_eq!(
        error["error"],
        "the request body is larger than the limit of 64 bytes"
    );
}

#[tokio::test]
async fn invalid_path_parameter_gets_400_naming_the_parameter() {
    let client = TestClient::new(api());
    let response = client.get("/todos/abc").await.unwrap();
    assert_eq!(response.status(), 400);
    let error = json_of(&response.text());
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid path parameter `id`: `abc` is not a valid u64"),
        "{error}"
    );
}

#[tokio::test]
async fn http_error_gives_its_status_and_message_as_json() {
    let client = TestClient::new(api());
    let response = client.get("/todos/0").await.unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(response.text(), r#"{"error":"no todo 0"}"#);
}

#[tokio::test]
async fn app_errors_from_a_handler_go_to_the_server_as_500() {
    let app = handler(|request: Request| async move {
        // The state was never filled: an app bug, logged by the server.
        let name: &String = request.state().try_get::<String>()?;
        Ok::<_, HttpError>(Response::text(name.clone()))
    });
    // The client takes a handler as it is, as routes do.
    let raising = TestClient::new(|_: Request| async {
        Err::<Response, _>(HttpError::internal(Error::msg("broken")))
    });
    let err = raising.get("/").await.unwrap_err();
    assert_eq!(err.to_string(), "broken");

    let client = TestClient::new(app).raise_app_errors(false);
    let response = client.get("/").await.unwrap();
    assert_eq!(response.status(), 500);
}

#[tokio::test]
async fn missing_route_parameter_is_the_apps_bug_not_a_400() {
    let app = Router::new().route(
        "/items",
        get(|request: Request| async move {
            let id: u64 = request.param_as("id")?;
            Ok::<_, HttpError>(Response::text(id.to_string()))
        }),
    );
    let client = TestClient::new(app).raise_app_errors(false);
    assert_eq!(client.get("/items").await.unwrap().status(), 500);
}

#[tokio::test]
async fn handler_refuses_a_websocket_scope_with_an_error_naming_it() {
    let app = handler(|_: Request| async { Response::text("hi") });
    let scope = Scope::from(asgi::core::WebSocketScope::new("/ws"));
    let outcome = asgi::core::host::testing::call(&app, scope, []).await;
    let err = outcome.result.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("a request handler serves `http` scopes only, got `websocket`"),
        "{err}"
    );
}

/// Serves `app` on a server of its own, sends it one `method` request for `path` with `body`,
/// and stops the server.
async fn one_request_over_the_real_server(
    app: impl App,
    method: Method,
    path: &str,
    body: &'static str,
) -> Answer {
    let server = start(app, |b| b).await;
    let request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "test")
        .body(full(body))
        .unwrap();
    let answer = send(server.addr, request).await;
    server.stop().await.unwrap();
    answer
}

#[tokio::test]
async fn handler_served_directly_answers_over_the_real_server() {
    // `serve(handler(..))`: the handler has no lifespan, and the server goes on without.
    let app = handler(|request: Request| async move {
        Response::text(format!("{} {}", request.method(), request.path()))
    });
    let answer = one_request_over_the_real_server(app, Method::POST, "/hello", "x").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.text(), "POST /hello");
}

#[tokio::test]
async fn a_handlers_streamed_response_arrives_whole_over_the_real_server() {
    // The body streams, so the handler's call goes on sending after its handler returned:
    // each chunk waits a turn of the scheduler before it comes.
    let app = handler(|_: Request| async move {
        let chunks = futures_util::stream::unfold(0u8, |n| async move {
            if n == 3 {
                return None;
            }
            tokio::task::yield_now().await;
            let chunk = asgi::core::bytes::Bytes::from(format!("part {n};"));
            Some((Ok::<_, std::io::Error>(chunk), n + 1))
        });
        Response::streaming(chunks)
    });
    let answer = one_request_over_the_real_server(app, Method::GET, "/stream", "").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.text(), "part 0;part 1;part 2;");
}

fn json_router() -> Router {
    Router::new()
        .route("/todos", get(raw).post(create))
        .route("/ws", websocket(raw))
        .not_found(|request: Request| async move {
            Response::json_error(
                StatusCode::NOT_FOUND,
                format!("no route {}", request.path()),
            )
        })
        .method_not_allowed(|request: Request| async move {
            Response::json_error(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{} not allowed", request.method()),
            )
        })
}

#[tokio::test]
async fn not_found_hook_answers_unmatched_requests_in_json() {
    let client = TestClient::new(json_router());
    let response = client.get("/nope").await.unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(response.text(), r#"{"error":"no route /nope"}"#);
    // A WebSocket-only route is not there for HTTP: the same hook answers.
    assert_eq!(client.get("/ws").await.unwrap().status(), 404);
    assert_eq!(
        client.get("/ws").await.unwrap().text(),
        r#"{"error":"no route /ws"}"#
    );
}

#[tokio::test]
async fn method_not_allowed_hook_keeps_the_allow_header() {
    let client = TestClient::new(json_router());
    let response = client
        .send(TestRequest::new(Method::DELETE, "/todos"))
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.header("allow"), Some("GET, POST, HEAD"));
    assert_eq!(response.text(), r#"{"error":"DELETE not allowed"}"#);
}

#[tokio::test]
async fn method_not_allowed_hook_may_set_its_own_allow() {
    let app = Router::new()
        .route("/todos", get(raw))
        .method_not_allowed(|_: Request| async {
            Response::new(StatusCode::METHOD_NOT_ALLOWED).header("allow", "GET")
        });
    let response = TestClient::new(app)
        .send(TestRequest::new(Method::PUT, "/todos"))
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    let allow: Vec<_> = response.headers().get_all("allow").iter().collect();
    assert_eq!(allow, ["GET"]);
}

#[tokio::test]
async fn fallback_still_comes_before_the_not_found_hook() {
    let app = json_router().fallback(|_: Request| async { Response::text("fallback") });
    let response = TestClient::new(app).get("/nope").await.unwrap();
    assert_eq!(response.text(), "fallback");
}

#[test]
fn both_forms_are_apps() {
    fn assert_app(_: impl App) {}
    assert_app(raw);
    assert_app(handler(show));
    assert_app(api());
}
