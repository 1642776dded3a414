//! Mount: `root_path` extended, `path` kept whole, segment boundaries, nesting, fallback,
//! WebSockets and lifespan.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use asgi_core::host::lifespan::{Lifespan, Startup};
use asgi_core::host::testing;
use asgi_core::http::{HeaderMap, Method, StatusCode};
use asgi_core::{Error, HttpScope, ReceiveEvent, Receiver, Scope, SendEvent, Sender};
use asgi_http::mount::Mount;
use asgi_http::request::Request;
use asgi_http::response::Response;
use asgi_http::router::{Router, get};
use asgi_http::test_client::TestClient;

/// Answers `root_path=.. path=.. raw_path=.. query=..` from its scope.
async fn where_am_i(scope: Scope, _: Receiver, mut send: Sender) -> Result<(), Error> {
    let text = match &scope {
        Scope::Http(http) => format!(
            "root_path={} path={} raw_path={} query={}",
            http.root_path,
            http.path,
            String::from_utf8_lossy(&http.raw_path),
            String::from_utf8_lossy(&http.query_string)
        ),
        _ => return Err(Error::msg("expected http")),
    };
    Response::text(text).send(&mut send).await
}

fn labelled(label: &'static str) -> impl asgi_core::App {
    move |_: Scope, _: Receiver, mut send: Sender| async move {
        Response::text(label).send(&mut send).await
    }
}

#[tokio::test]
async fn mounted_app_gets_root_path_extended_and_path_whole() {
    let client = TestClient::new(Mount::new().mount("/api", where_am_i));
    let response = client.get("/api/users/a%20b?x=1").await.unwrap();
    assert_eq!(
        response.text(),
        "root_path=/api path=/api/users/a b raw_path=/api/users/a%20b query=x=1"
    );
}

#[tokio::test]
async fn mount_matches_on_segment_boundaries() {
    let client = TestClient::new(Mount::new().mount("/api", labelled("api")));
    assert_eq!(client.get("/api").await.unwrap().text(), "api");
    assert_eq!(client.get("/api/").await.unwrap().text(), "api");
    assert_eq!(client.get("/api/x").await.unwrap().text(), "api");
    let response = client.get("/apix").await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(response.text(), "Not Found");
}

#[tokio::test]
async fn router_under_a_mount_routes_on_the_path_after_the_prefix() {
    let show = |scope: Scope, receive: Receiver, mut send: Sender| async move {
        let request = Request::from_scope(scope, receive)?;
        let text = format!(
            "user {} route_path={}",
            request.param("id").unwrap_or_default(),
            request.route_path()
        );
        Response::text(text).send(&mut send).await
    };
    let api = Router::new()
        .route("/", get(labelled("api index")))
        .route("/users/{id}", get(show));
    let client = TestClient::new(Mount::new().mount("/api", api));
    assert_eq!(
        client.get("/api/users/7").await.unwrap().text(),
        "user 7 route_path=/users/7"
    );
    assert_eq!(client.get("/api").await.unwrap().text(), "api index");
    assert_eq!(
        client.get("/users/7").await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn nested_mounts_accumulate_root_path() {
    let inner = Mount::new().mount("/v1", where_am_i);
    let client = TestClient::new(Mount::new().mount("/api", inner));
    assert_eq!(
        client.get("/api/v1/items").await.unwrap().text(),
        "root_path=/api/v1 path=/api/v1/items raw_path=/api/v1/items query="
    );
}

#[tokio::test]
async fn longest_prefix_wins_whatever_the_order() {
    let client = TestClient::new(
        Mount::new()
            .mount("/api", labelled("api"))
            .mount("/api/admin", labelled("admin")),
    );
    assert_eq!(
        client.get("/api/admin/users").await.unwrap().text(),
        "admin"
    );
    assert_eq!(
        client.get("/api/administrators").await.unwrap().text(),
        "api"
    );
}

#[tokio::test]
async fn fallback_gets_unmatched_requests_with_the_scope_unchanged() {
    let client = TestClient::new(
        Mount::new()
            .mount("/api", labelled("api"))
            .fallback(where_am_i),
    );
    assert_eq!(
        client.get("/home").await.unwrap().text(),
        "root_path= path=/home raw_path=/home query="
    );
}

#[tokio::test]
async fn mount_respects_an_existing_root_path() {
    let mount = Mount::new().mount("/api", where_am_i);
    let mut scope = HttpScope::new(Method::GET, "/app/api/x");
    scope.root_path = "/app".to_owned();
    let outcome = testing::call(&mount, Scope::from(scope), []).await;
    outcome.result.as_ref().unwrap();
    assert_eq!(
        String::from_utf8(outcome.body()).unwrap(),
        "root_path=/app/api path=/app/api/x raw_path=/app/api/x query="
    );
}

#[tokio::test]
async fn websocket_is_mounted_with_root_path_extended() {
    let ws = |scope: Scope, mut receive: Receiver, mut send: Sender| async move {
        let Scope::WebSocket(ws) = scope else {
            return Err(Error::msg("expected websocket"));
        };
        receive.recv().await;
        send.send(SendEvent::WebSocketAccept {
            subprotocol: None,
            headers: HeaderMap::new(),
        })
        .await?;
        send.send(SendEvent::text(format!("{} {}", ws.root_path, ws.path)))
            .await?;
        Ok(())
    };
    let client = TestClient::new(Mount::new().mount("/live", ws));
    let mut session = client.websocket("/live/feed").connect().await.unwrap();
    assert_eq!(session.receive_text().await.unwrap(), "/live /live/feed");
}

#[tokio::test]
async fn websocket_under_no_prefix_is_denied_with_404() {
    let client = TestClient::new(Mount::new().mount("/live", labelled("x")));
    let denial = client
        .websocket("/other")
        .connect()
        .await
        .unwrap_err()
        .into_denial()
        .expect("a denial");
    assert_eq!(denial.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn mounted_app_without_lifespan_support_does_not_break_startup() {
    let saw = Arc::new(AtomicBool::new(false));
    let seen = saw.clone();
    let app = move |scope: Scope, _: Receiver, _: Sender| {
        let seen = seen.clone();
        async move {
            if let Scope::Lifespan(_) = scope {
                seen.store(true, Ordering::SeqCst);
            }
            Ok::<(), Error>(())
        }
    };
    let mount = Mount::new().mount("/a", app);
    let Startup::Complete(lifespan) = Lifespan::startup(mount).await else {
        panic!("the mount did not complete startup");
    };
    lifespan.shutdown().await.unwrap();
    // The mounted app was asked, returned at once ("no lifespan support"), and the mount
    // went on without its lifespan.
    assert!(saw.load(Ordering::SeqCst));
}

#[tokio::test]
async fn mount_lifespan_app_runs_when_given() {
    let started = Arc::new(AtomicBool::new(false));
    let flag = started.clone();
    let lifespan = move |_: Scope, mut receive: Receiver, mut send: Sender| {
        let flag = flag.clone();
        async move {
            while let ReceiveEvent::LifespanStartup = receive.recv().await {
                flag.store(true, Ordering::SeqCst);
                send.send(SendEvent::LifespanStartupComplete).await?;
            }
            send.send(SendEvent::LifespanShutdownComplete).await?;
            Ok::<(), Error>(())
        }
    };
    let mount = Mount::new().mount("/a", labelled("a")).lifespan(lifespan);
    let client = TestClient::with_lifespan(mount).await.unwrap();
    assert!(started.load(Ordering::SeqCst));
    client.shutdown().await.unwrap();
}
