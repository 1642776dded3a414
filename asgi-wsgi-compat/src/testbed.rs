//! Ready-made WSGI apps: PEP 3333's [`simple_app`], and the [`testbed`] app that exercises
//! every part of the interface (environ, `wsgi.input`, `write`, streamed bodies).

use std::io::Read;

use asgi_core::BoxError;
use bytes::Bytes;

use crate::body::Body;
use crate::environ::{Environ, Value};
use crate::response::StartResponse;

/// The size of the chunks that `GET /bytes/<n>` yields: 64 KiB.
pub const TESTBED_CHUNK_SIZE: usize = 64 * 1024;

/// The largest request body `/environ/...` reads into its answer: 1 MiB; a larger one gets
/// `413 Payload Too Large`. The endpoint shows the body, so it must hold it.
pub const TESTBED_MAX_ENVIRON_BODY: u64 = 1024 * 1024;

static FILLER: [u8; TESTBED_CHUNK_SIZE] = [b'x'; TESTBED_CHUNK_SIZE];

/// PEP 3333's first example, in Rust:
///
/// ```python
/// def simple_app(environ, start_response):
///     status = '200 OK'
///     response_headers = [('Content-type', 'text/plain')]
///     start_response(status, response_headers)
///     return [b'Hello world!\n']
/// ```
///
/// # Example
///
/// ```
/// use asgi_core::host::testing;
/// use asgi_core::{HttpScope, Scope};
/// use asgi_wsgi_compat::{WsgiToAsgi, testbed::simple_app};
/// use http::Method;
///
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// let app = WsgiToAsgi::new(simple_app);
/// let outcome = testing::call(&app, Scope::from(HttpScope::new(Method::GET, "/")), []).await;
/// assert_eq!(outcome.body(), b"Hello world!\n");
/// # });
/// ```
///
/// # Errors
///
/// None in practice: `start_response` accepts this status and these headers.
pub fn simple_app(_environ: Environ, start_response: StartResponse) -> Result<Body, BoxError> {
    let status = "200 OK";
    let response_headers = [("Content-type", "text/plain")];
    start_response.call(status, response_headers, None)?;
    Ok(Body::from("Hello world!\n"))
}

/// A WSGI app that shows what the adapter does, for tests and demonstrations. Paths are
/// relative to `SCRIPT_NAME`, so it can be mounted anywhere:
///
/// - `GET /hello`: `Hello, world!` as `text/plain`.
/// - `/environ/<anything>` (any method): `application/json`, an object with every
///   string-valued environ entry, rendered one char per byte (latin-1, as PEP 3333's native
///   strings), plus `"body"`: the request body read from `wsgi.input`, rendered the same way
///   (at most [`TESTBED_MAX_ENVIRON_BODY`] bytes; more gets 413).
/// - `POST /echo`: the request body streamed back through `write()` chunk by chunk as it is
///   read (never held whole).
/// - `POST /upload`: `{"bytes": N}` as `application/json`, `N` the size of the request body,
///   counted chunk by chunk as `wsgi.input` delivers it (never held whole, so an upload of
///   any size runs in the memory of a few chunks).
/// - `GET /bytes/<n>`: `n` bytes of `x`, yielded by the response iterator in
///   [`TESTBED_CHUNK_SIZE`] chunks, with `Content-Length: n`.
/// - anything else: 404, or 405 for a known path with another method.
///
/// # Example
///
/// ```
/// use asgi_core::host::testing;
/// use asgi_core::{HttpScope, ReceiveEvent, Scope};
/// use asgi_wsgi_compat::{WsgiToAsgi, testbed::testbed};
/// use http::Method;
///
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// let app = WsgiToAsgi::new(testbed);
/// let mut scope = HttpScope::new(Method::POST, "/wsgi/echo");
/// scope.root_path = "/wsgi".into();
/// let body = [ReceiveEvent::request("ping", true), ReceiveEvent::request("pong", false)];
/// let outcome = testing::call(&app, Scope::from(scope), body).await;
/// assert_eq!(outcome.body(), b"pingpong");
/// # });
/// ```
///
/// # Errors
///
/// A failed `wsgi.input` read (the client left), and what `start_response` and `write`
/// return.
pub fn testbed(mut environ: Environ, start_response: StartResponse) -> Result<Body, BoxError> {
    let path = environ.path_info().clone();
    let method = environ.method().clone();
    let path = path.as_bytes();
    if path.starts_with(b"/environ/") {
        return environ_json(environ, start_response);
    }
    let route = match path {
        b"/hello" => Route::Hello,
        b"/echo" => Route::Echo,
        b"/upload" => Route::Upload,
        _ => match path.strip_prefix(b"/bytes/") {
            Some(n) => match std::str::from_utf8(n).ok().and_then(|n| n.parse().ok()) {
                Some(n) => Route::Bytes(n),
                None => return plain(start_response, "404 Not Found", "Not Found\n"),
            },
            None => return plain(start_response, "404 Not Found", "Not Found\n"),
        },
    };
    match (route, method.as_bytes()) {
        (Route::Hello, b"GET" | b"HEAD") => plain(start_response, "200 OK", "Hello, world!"),
        (Route::Echo, b"POST") => {
            let write = start_response.call(
                "200 OK",
                [("Content-Type", "application/octet-stream")],
                None,
            )?;
            loop {
                let chunk = environ.input().read_chunk()?;
                if chunk.is_empty() {
                    return Ok(Body::empty());
                }
                write.write(chunk)?;
            }
        }
        (Route::Upload, b"POST") => {
            let mut total: u64 = 0;
            loop {
                let chunk = environ.input().read_chunk()?;
                if chunk.is_empty() {
                    break;
                }
                total += chunk.len() as u64;
            }
            let json = serde_json::to_vec(&serde_json::json!({ "bytes": total }))?;
            start_response.call(
                "200 OK",
                [
                    ("Content-Type", "application/json".to_owned()),
                    ("Content-Length", json.len().to_string()),
                ],
                None,
            )?;
            Ok(Body::from(json))
        }
        (Route::Bytes(n), b"GET" | b"HEAD") => {
            start_response.call(
                "200 OK",
                [
                    ("Content-Type", "application/octet-stream".to_owned()),
                    ("Content-Length", n.to_string()),
                ],
                None,
            )?;
            let chunks = (0..n).step_by(TESTBED_CHUNK_SIZE).map(move |offset| {
                let len = usize::try_from(n - offset)
                    .map_or(TESTBED_CHUNK_SIZE, |left| left.min(TESTBED_CHUNK_SIZE));
                Bytes::from_static(&FILLER[..len])
            });
            Ok(Body::from_chunks(chunks))
        }
        _ => plain(
            start_response,
            "405 Method Not Allowed",
            "Method Not Allowed\n",
        ),
    }
}

enum Route {
    Hello,
    Echo,
    Upload,
    Bytes(u64),
}

fn plain(
    start_response: StartResponse,
    status: &str,
    body: &'static str,
) -> Result<Body, BoxError> {
    let mut length = itoa::Buffer::new();
    start_response.call(
        status,
        [
            ("Content-Type", &b"text/plain; charset=utf-8"[..]),
            ("Content-Length", length.format(body.len()).as_bytes()),
        ],
        None,
    )?;
    Ok(Body::from(body))
}

fn environ_json(mut environ: Environ, start_response: StartResponse) -> Result<Body, BoxError> {
    let mut body = Vec::new();
    let read = environ
        .input()
        .take(TESTBED_MAX_ENVIRON_BODY + 1)
        .read_to_end(&mut body)?;
    if read as u64 > TESTBED_MAX_ENVIRON_BODY {
        return plain(
            start_response,
            "413 Payload Too Large",
            "Payload Too Large\n",
        );
    }
    let mut object = serde_json::Map::new();
    for (key, value) in environ.iter() {
        if let Value::Str(s) = value {
            object.insert(key.to_owned(), serde_json::Value::String(s.to_latin1()));
        }
    }
    object.insert(
        "body".to_owned(),
        serde_json::Value::String(body.iter().map(|&b| char::from(b)).collect()),
    );
    let json = serde_json::to_vec(&serde_json::Value::Object(object))?;
    start_response.call(
        "200 OK",
        [
            ("Content-Type", "application/json".to_owned()),
            ("Content-Length", json.len().to_string()),
        ],
        None,
    )?;
    Ok(Body::from(json))
}
