//! The apps of the `axum_interop` example, and the two trees that serve them: one for this
//! project's server, one for `axum::serve`.
//!
//! | route | served by |
//! | --- | --- |
//! | `GET /axum/hello` | an axum handler: `Hello from axum` |
//! | `GET /axum/whoami` | an axum handler: the URI it sees, the original URI, the client |
//! | `POST /axum/echo` | an axum handler: streams the request body back |
//! | `GET /asgi/hello` | an ASGI app: `Hello from ASGI`, its `root_path` and `path` |
//! | `GET /legacy/` | a WSGI app: `SCRIPT_NAME` and `PATH_INFO` |
//! | WebSocket `/ws` | an ASGI WebSocket echo |

use std::net::SocketAddr;

use asgi::core::http::HeaderMap;
use asgi::core::http::header::{CONTENT_TYPE, HeaderValue};
use asgi::core::{ShutdownSignal, http::StatusCode};
use asgi::prelude::*;
use asgi::server::mount::Mount;
use asgi::tower::{AsgiService, TowerApp};
use asgi::wsgi::{Body, BoxError, Environ, StartResponse, WsgiToAsgi};
use axum::Extension;
use axum::extract::{ConnectInfo, OriginalUri};
use axum::http::Uri;
use axum::routing::{get, post};

/// The axum part: a router written for its own prefix (`/hello`, not `/axum/hello`), as
/// for axum's `nest`.
pub(crate) fn axum_routes() -> axum::Router {
    axum::Router::new()
        .route("/hello", get(|| async { "Hello from axum" }))
        .route("/whoami", get(whoami))
        .route("/echo", post(|body: axum::body::Body| async move { body }))
}

async fn whoami(
    uri: Uri,
    OriginalUri(original): OriginalUri,
    client: Option<Extension<ConnectInfo<SocketAddr>>>,
) -> String {
    let client = client.map_or_else(|| "unknown".to_owned(), |c| c.0.0.to_string());
    format!("uri={uri} original={original} client={client}\n")
}

/// The ASGI part: greets and says where it is mounted.
pub(crate) async fn asgi_hello(scope: Scope, _: Receiver, mut send: Sender) -> Result<(), Error> {
    let Scope::Http(http) = scope else {
        return Ok(());
    };
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    send.send(SendEvent::response_start(StatusCode::OK, headers))
        .await?;
    let body = format!(
        "Hello from ASGI\nroot_path={} path={}\n",
        http.root_path, http.path
    );
    send.send(SendEvent::response_body(body, false)).await?;
    Ok(())
}

/// WebSocket `/ws`: accepts, then sends every message back.
pub(crate) async fn ws_echo(
    scope: Scope,
    mut receive: Receiver,
    mut send: Sender,
) -> Result<(), Error> {
    if !matches!(scope, Scope::WebSocket(_)) {
        let headers = HeaderMap::new();
        send.send(SendEvent::response_start(StatusCode::NOT_FOUND, headers))
            .await?;
        return Ok(send
            .send(SendEvent::response_body("Not Found\n", false))
            .await?);
    }
    loop {
        match receive.recv().await {
            ReceiveEvent::WebSocketConnect => {
                let accept = SendEvent::WebSocketAccept {
                    subprotocol: None,
                    headers: HeaderMap::new(),
                };
                send.send(accept).await?;
            }
            ReceiveEvent::WebSocketReceive(message) => {
                send.send(SendEvent::WebSocketSend(message)).await?;
            }
            _ => return Ok(()),
        }
    }
}

/// The WSGI part: a blocking app that shows where it is mounted.
pub(crate) fn legacy(environ: Environ, start_response: StartResponse) -> Result<Body, BoxError> {
    let page = format!(
        "legacy WSGI app\nSCRIPT_NAME={}\nPATH_INFO={}\n",
        environ.script_name(),
        environ.path_info()
    );
    start_response.call(
        "200 OK",
        [
            ("Content-Type", "text/plain; charset=utf-8".to_owned()),
            ("Content-Length", page.len().to_string()),
        ],
        None,
    )?;
    Ok(Body::from(page))
}

/// The tree for this project's server: the axum router is an ASGI app ([`TowerApp`]) in a
/// [`Mount`] beside the ASGI and WSGI apps.
pub(crate) fn served_by_asgi() -> Mount {
    Mount::new()
        .mount("/axum", TowerApp::new(axum_routes()))
        .mount("/asgi", asgi_hello)
        .mount("/legacy", WsgiToAsgi::new(legacy))
        .mount("/ws", ws_echo)
}

/// The same tree for `axum::serve`: the ASGI and WSGI apps are tower services
/// ([`AsgiService`]) nested in an axum router. `shutdown` fires when the server starts
/// draining: open WebSockets close with 1001.
pub(crate) fn served_by_axum(shutdown: ShutdownSignal) -> axum::Router {
    axum::Router::new()
        .nest("/axum", axum_routes())
        .nest_service(
            "/asgi",
            AsgiService::new(asgi_hello).shutdown(shutdown.clone()),
        )
        .nest_service(
            "/legacy",
            AsgiService::new(WsgiToAsgi::new(legacy)).shutdown(shutdown.clone()),
        )
        .route_service("/ws", AsgiService::new(ws_echo).shutdown(shutdown))
}
