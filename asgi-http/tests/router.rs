//! Router: path parameters, 404, 405 with `Allow`, HEAD, WebSocket routes, lifespan, and
//! routing on the path after `root_path`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use asgi_core::host::lifespan::{Lifespan, Startup};
use asgi_core::host::testing;
use asgi_core::http::{HeaderMap, Method, StatusCode};
use asgi_core::{
    AppExt, Error, HttpScope, ReceiveEvent, Receiver, Scope, SendEvent, Sender, WebSocketScope,
    from_fn,
};
use asgi_http::request::Request;
use asgi_http::response::Response;
use asgi_http::router::{PathParams, Router, any, delete, get, patch, post, put, websocket};
use asgi_http::test_client::{Message, TestClient, TestRequest};

/// Answers with the method and the path parameters it was given, e.g. `GET id=7`.
async fn describe(scope: Scope, receive: Receiver, mut send: Sender) -> Result<(), Error> {
    let request = Request::from_scope(scope, receive)?;
    let params: Vec<String> = request
        .path_params()
        .map(|p| p.iter().map(|(k, v)| format!("{k}={v}")).collect())
        .unwrap_or_default();
    Response::text(
        format!("{} {}", request.method(), params.join(" "))
            .trim_end()
            .to_owned(),
    )
    .send(&mut send)
    .await
}

fn labelled(label: &'static str) -> impl asgi_core::App {
    move |_: Scope, _: Receiver, mut send: Sender| async move {
        Response::text(label).send(&mut send).await
    }
}

async fn ws_echo(_: Scope, mut receive: Receiver, mut send: Sender) -> Result<(), Error> {
    receive.recv().await;
    send.send(SendEvent::WebSocketAccept {
        subprotocol: None,
        headers: HeaderMap::new(),
    })
    .await?;
    while let ReceiveEvent::WebSocketReceive(message) = receive.recv().await {
        send.send(SendEvent::WebSocketSend(message)).await?;
    }
    Ok(())
}

#[tokio::test]
async fn path_param_reaches_the_handler() {
    let client = TestClient::new(Router::new().route("/users/{id}", get(describe)));
    let response = client.get("/users/42").await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text(), "GET id=42");
}

#[tokio::test]
async fn path_params_are_taken_from_the_decoded_path() {
    let client = TestClient::new(Router::new().route("/files/{name}", get(describe)));
    let response = client.get("/files/caf%C3%A9%20menu").await.unwrap();
    assert_eq!(response.text(), "GET name=caf\u{e9} menu");
}

#[tokio::test]
async fn catch_all_param_takes_the_rest_of_the_path() {
    let client = TestClient::new(Router::new().route("/static/{*path}", get(describe)));
    let response = client.get("/static/css/site.css").await.unwrap();
    assert_eq!(response.text(), "GET path=css/site.css");
}

#[tokio::test]
async fn unknown_path_gives_404() {
    let client = TestClient::new(Router::new().route("/users/{id}", get(describe)));
    let response = client.get("/nothing/here").await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(response.text(), "Not Found");
    let response = client.get("/users").await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn wrong_method_gives_405_with_allow_listing_the_methods() {
    let client = TestClient::new(
        Router::new().route("/items", get(labelled("list")).post(labelled("create"))),
    );
    let response = client.send(TestRequest::delete("/items")).await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.header("allow"), Some("GET, POST, HEAD"));
    assert_eq!(response.text(), "Method Not Allowed");
}

#[tokio::test]
async fn each_chained_method_reaches_its_handler() {
    let client = TestClient::new(
        Router::new().route(
            "/thing",
            get(labelled("get"))
                .post(labelled("post"))
                .put(labelled("put"))
                .delete(labelled("delete"))
                .patch(labelled("patch")),
        ),
    );
    for (method, label) in [
        (Method::GET, "get"),
        (Method::POST, "post"),
        (Method::PUT, "put"),
        (Method::DELETE, "delete"),
        (Method::PATCH, "patch"),
    ] {
        let response = client
            .send(TestRequest::new(method, "/thing"))
            .await
            .unwrap();
        assert_eq!(response.text(), label);
    }
}

#[tokio::test]
async fn free_functions_start_routes_for_every_method() {
    let router = Router::new()
        .route("/p", post(labelled("post")))
        .route("/u", put(labelled("put")))
        .route("/d", delete(labelled("delete")))
        .route("/a", patch(labelled("patch")));
    let client = TestClient::new(router);
    assert_eq!(
        client.send(TestRequest::post("/p")).await.unwrap().text(),
        "post"
    );
    assert_eq!(
        client.send(TestRequest::put("/u")).await.unwrap().text(),
        "put"
    );
    assert_eq!(
        client.send(TestRequest::delete("/d")).await.unwrap().text(),
        "delete"
    );
    assert_eq!(
        client.send(TestRequest::patch("/a")).await.unwrap().text(),
        "patch"
    );
    assert_eq!(
        client.get("/p").await.unwrap().status(),
        StatusCode::METHOD_NOT_ALLOWED
    );
}

#[tokio::test]
async fn any_handles_methods_without_their_own_handler() {
    let client =
        TestClient::new(Router::new().route("/x", get(labelled("get")).any(labelled("any"))));
    assert_eq!(client.get("/x").await.unwrap().text(), "get");
    let response = client
        .send(TestRequest::new(Method::OPTIONS, "/x"))
        .await
        .unwrap();
    assert_eq!(response.text(), "any");
    let only_any = TestClient::new(Router::new().route("/y", any(labelled("any"))));
    let response = only_any.send(TestRequest::put("/y")).await.unwrap();
    assert_eq!(response.text(), "any");
}

#[tokio::test]
async fn head_falls_back_to_get_with_its_headers_and_no_body() {
    let client = TestClient::new(Router::new().route("/page", get(describe)));
    let response = client.send(TestRequest::head("/page")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // The GET handler ran (it saw HEAD) and its content-length is kept; the body is not.
    assert_eq!(response.header("content-length"), Some("4"));
    assert!(response.bytes().is_empty());
}

#[tokio::test]
async fn explicit_head_handler_wins_over_get() {
    let client = TestClient::new(Router::new().route(
        "/page",
        get(labelled("get")).on(
            Method::HEAD,
            |_: Scope, _: Receiver, mut send: Sender| async move {
                Response::new(StatusCode::NO_CONTENT).send(&mut send).await
            },
        ),
    ));
    let response = client.send(TestRequest::head("/page")).await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn fallback_gets_requests_that_match_no_route() {
    let client = TestClient::new(
        Router::new()
            .route("/known", get(labelled("known")))
            .fallback(labelled("fallback")),
    );
    assert_eq!(client.get("/known").await.unwrap().text(), "known");
    assert_eq!(client.get("/unknown").await.unwrap().text(), "fallback");
}

#[tokio::test]
async fn websocket_routes_by_path() {
    let client = TestClient::new(
        Router::new().route("/ws/{room}", get(labelled("page")).websocket(ws_echo)),
    );
    let mut ws = client.websocket("/ws/lobby").connect().await.unwrap();
    ws.send_text("hello").await.unwrap();
    assert_eq!(ws.receive().await.unwrap(), Message::Text("hello".into()));
    ws.close(1000).await.unwrap();
    // The same path still serves HTTP.
    assert_eq!(client.get("/ws/lobby").await.unwrap().text(), "page");
}

#[tokio::test]
async fn websocket_route_gets_path_params() {
    let app = |scope: Scope, mut receive: Receiver, mut send: Sender| async move {
        let room = scope
            .extensions()
            .and_then(|e| e.get::<PathParams>())
            .and_then(|p| p.get("room"))
            .unwrap_or_default()
            .to_owned();
        receive.recv().await;
        send.send(SendEvent::WebSocketAccept {
            subprotocol: None,
            headers: HeaderMap::new(),
        })
        .await?;
        send.send(SendEvent::text(room)).await?;
        Ok::<(), Error>(())
    };
    let client = TestClient::new(Router::new().route("/ws/{room}", websocket(app)));
    let mut ws = client.websocket("/ws/kitchen").connect().await.unwrap();
    assert_eq!(ws.receive_text().await.unwrap(), "kitchen");
}

#[tokio::test]
async fn websocket_to_an_http_only_route_is_denied_with_404() {
    let client = TestClient::new(Router::new().route("/page", get(labelled("page"))));
    let err = client.websocket("/page").connect().await.unwrap_err();
    let denial = err.into_denial().expect("a denial response");
    assert_eq!(denial.status(), StatusCode::NOT_FOUND);
    assert_eq!(denial.text(), "Not Found");
}

#[tokio::test]
async fn http_request_to_a_websocket_only_route_gives_404() {
    let client = TestClient::new(Router::new().route("/ws", websocket(ws_echo)));
    let response = client.get("/ws").await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn websocket_not_found_closes_when_the_server_has_no_denial_extension() {
    let router = Router::new().route("/ws", websocket(ws_echo));
    let scope = Scope::from(WebSocketScope::new("/other"));
    let outcome = testing::call(&router, scope, [ReceiveEvent::WebSocketConnect]).await;
    outcome.result.as_ref().unwrap();
    assert_eq!(
        outcome.sent,
        [SendEvent::WebSocketClose {
            code: 1000,
            reason: String::new()
        }]
    );
}

#[tokio::test]
async fn routing_uses_the_path_after_root_path() {
    let router = Router::new().route("/users/{id}", get(describe));
    let mut scope = HttpScope::new(Method::GET, "/api/users/7");
    scope.root_path = "/api".to_owned();
    let outcome = testing::call(&router, Scope::from(scope), []).await;
    outcome.result.as_ref().unwrap();
    assert_eq!(outcome.status(), Some(StatusCode::OK));
    assert_eq!(outcome.body(), b"GET id=7");
}

#[tokio::test]
async fn router_params_add_to_params_already_in_the_scope() {
    let app = Router::new()
        .route("/items/{id}", get(describe))
        .with(from_fn(
            |mut scope: Scope, receive, send, next: asgi_core::Next| async move {
                if let Some(ext) = scope.extensions_mut() {
                    let mut outer = PathParams::new();
                    outer.insert("org", "acme");
                    ext.insert(outer);
                }
                next.call(scope, receive, send).await
            },
        ));
    let client = TestClient::new(app);
    assert_eq!(
        client.get("/items/9").await.unwrap().text(),
        "GET org=acme id=9"
    );
}

#[tokio::test]
async fn router_answers_lifespan_itself_and_routes_never_see_it() {
    let saw_lifespan = Arc::new(AtomicBool::new(false));
    let seen = saw_lifespan.clone();
    let route = move |scope: Scope, _: Receiver, mut send: Sender| {
        let seen = seen.clone();
        async move {
            if let Scope::Lifespan(_) = scope {
                seen.store(true, Ordering::SeqCst);
            }
            Response::text("ok").send(&mut send).await
        }
    };
    let router = Arc::new(
        Router::new()
            .route("/", any(route))
            .fallback(labelled("fb")),
    );
    let Startup::Complete(lifespan) = Lifespan::startup(router.clone()).await else {
        panic!("the router did not complete startup");
    };
    lifespan.shutdown().await.unwrap();
    assert!(!saw_lifespan.load(Ordering::SeqCst));
}

#[derive(Clone)]
struct Greeting(&'static str);

#[tokio::test]
async fn explicit_lifespan_app_runs_and_its_state_reaches_routes() {
    let lifespan = |scope: Scope, mut receive: Receiver, mut send: Sender| async move {
        let Scope::Lifespan(lifespan) = scope else {
            return Ok(());
        };
        loop {
            match receive.recv().await {
                ReceiveEvent::LifespanStartup => {
                    lifespan.state.insert(Greeting("hello from startup"))?;
                    send.send(SendEvent::LifespanStartupComplete).await?;
                }
                _ => {
                    send.send(SendEvent::LifespanShutdownComplete).await?;
                    return Ok::<(), Error>(());
                }
            }
        }
    };
    let greet = |scope: Scope, receive: Receiver, mut send: Sender| async move {
        let request = Request::from_scope(scope, receive)?;
        let text = request.state().get::<Greeting>().map_or("none", |g| g.0);
        Response::text(text).send(&mut send).await
    };
    let router = Router::new().route("/", get(greet)).lifespan(lifespan);
    let client = TestClient::with_lifespan(router).await.unwrap();
    assert_eq!(client.get("/").await.unwrap().text(), "hello from startup");
    client.shutdown().await.unwrap();
}

#[test]
#[should_panic(expected = "invalid route \"no-slash\"")]
fn route_without_leading_slash_panics_at_setup() {
    let _ = Router::new().route("no-slash", get(labelled("x")));
}
