//! The app of the `mixed` example: a blocking WSGI app and an async ASGI app behind one
//! [`Mount`], the layout of a project that moves from sync to async one route at a time.
//!
//! | route | served by |
//! | --- | --- |
//! | `GET /` | async: an HTML page |
//! | WebSocket `/ws` | async: echoes every message, written with raw ASGI events |
//! | `GET /legacy/` | WSGI: an index that shows `SCRIPT_NAME` and `PATH_INFO` |
//! | `GET /legacy/report` | WSGI: a blocking handler (a synchronous query stands behind it) |
//! | `POST /legacy/notes` | WSGI: reads its body from `wsgi.input` |
//!
//! Moving a route means adding it to the async [`Router`] and deleting it from the legacy
//! app; clients see the same paths throughout.

use std::io::Read;
use std::time::Duration;

use asgi::core::http::HeaderMap;
use asgi::prelude::*;
use asgi::server::mount::Mount;
use asgi::server::response::Response;
use asgi::server::router::{Router, get, websocket};
use asgi::wsgi::{Body, BoxError, Environ, StartResponse, WsgiToAsgi};

/// The largest note `POST /legacy/notes` takes: 64 KiB; more gets `413 Payload Too Large`.
/// The handler reads a note whole, as legacy code does, so it must cap what it holds.
pub(crate) const MAX_NOTE: usize = 64 * 1024;

/// How long the report's stand-in for a synchronous database query blocks its thread: 20 ms.
const REPORT_QUERY_TIME: Duration = Duration::from_millis(20);

/// The whole app: the legacy WSGI app under `/legacy`, the async app everywhere else.
/// Lifespan is answered by the mount itself (neither part has startup work).
pub(crate) fn mixed() -> Mount {
    let site = Router::new()
        .route("/", get(index))
        .route("/ws", websocket(echo));
    Mount::new()
        .mount("/legacy", WsgiToAsgi::new(legacy))
        .mount("/", site)
}

/// `GET /`: the page of the new, async part.
async fn index(_scope: Scope, _receive: Receiver, mut send: Sender) -> Result<(), Error> {
    Response::html(INDEX_PAGE).send(&mut send).await
}

const INDEX_PAGE: &str = r#"<!doctype html>
<title>mixed</title>
<h1>One server, two kinds of handlers</h1>
<p>This page and <code>/ws</code> are async; <a href="/legacy/">/legacy/</a> is a blocking
WSGI app on its own threads.</p>
<p><input id="text" value="hello"> <button id="send">send over /ws</button></p>
<pre id="log"></pre>
<script>
const log = (line) => document.getElementById("log").textContent += line + "\n";
const ws = new WebSocket(`ws://${location.host}/ws`);
ws.onmessage = (event) => log("echo: " + event.data);
ws.onclose = (event) => log("closed: " + event.code);
document.getElementById("send").onclick = () => ws.send(document.getElementById("text").value);
</script>
"#;

/// WebSocket `/ws`: accepts, then sends every message back, with nothing but ASGI events.
async fn echo(_scope: Scope, mut receive: Receiver, mut send: Sender) -> Result<(), Error> {
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
            // `websocket.disconnect`: the client or the server closed; nothing more comes.
            _ => return Ok(()),
        }
    }
}

/// The legacy app, PEP 3333 style: blocking calls are fine here, each request has a thread
/// of the blocking pool. Paths are below `SCRIPT_NAME` (`/legacy`).
fn legacy(mut environ: Environ, start_response: StartResponse) -> Result<Body, BoxError> {
    let method = environ.method().clone();
    let path = environ.path_info().clone();
    match (method.as_bytes(), path.as_bytes()) {
        (b"GET" | b"HEAD", b"" | b"/") => {
            let page = format!(
                "legacy index\nSCRIPT_NAME={}\nPATH_INFO={}\n",
                environ.script_name(),
                environ.path_info()
            );
            text(start_response, "200 OK", page)
        }
        (b"GET" | b"HEAD", b"/report") => {
            // Stands in for a synchronous database driver: it blocks this thread only.
            std::thread::sleep(REPORT_QUERY_TIME);
            text(
                start_response,
                "200 OK",
                "report: 3 open orders\n".to_owned(),
            )
        }
        (b"POST", b"/notes") => {
            let mut note = Vec::new();
            environ
                .input()
                .take(MAX_NOTE as u64 + 1)
                .read_to_end(&mut note)?;
            if note.len() > MAX_NOTE {
                let message = format!("a note holds at most {MAX_NOTE} bytes\n");
                return text(start_response, "413 Payload Too Large", message);
            }
            let saved = format!("saved a note of {} bytes\n", note.len());
            text(start_response, "201 Created", saved)
        }
        (_, b"" | b"/" | b"/report") => method_not_allowed(start_response, "GET, HEAD"),
        (_, b"/notes") => method_not_allowed(start_response, "POST"),
        _ => text(start_response, "404 Not Found", "Not Found\n".to_owned()),
    }
}

fn text(start_response: StartResponse, status: &str, body: String) -> Result<Body, BoxError> {
    start_response.call(
        status,
        [
            ("Content-Type", "text/plain; charset=utf-8".to_owned()),
            ("Content-Length", body.len().to_string()),
        ],
        None,
    )?;
    Ok(Body::from(body))
}

fn method_not_allowed(start_response: StartResponse, allow: &str) -> Result<Body, BoxError> {
    let body = "Method Not Allowed\n";
    start_response.call(
        "405 Method Not Allowed",
        [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", &body.len().to_string()),
            ("Allow", allow),
        ],
        None,
    )?;
    Ok(Body::from(body))
}
