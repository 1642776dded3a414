//! The `api` example's app: a small JSON API, its page, and the middleware stack around them.
//!
//! ```text
//!                         request                       response
//!                            │                              ▲
//!  ┌─────────────────────────▼──────────────────────────────┴─────────────────────────┐
//!  │ TrustedHost     Host must be 127.0.0.1 or localhost, else 400                    │
//!  │  ┌──────────────────────▼──────────────────────────────┴──────────────────────┐  │
//!  │  │ RequestId      x-request-id taken or made; in the scope and the response   │  │
//!  │  │  ┌───────────────────▼──────────────────────────────┴───────────────────┐  │  │
//!  │  │  │ Cors          preflights answered here; CORS headers on the rest     │  │  │
//!  │  │  │  ┌────────────────▼──────────────────────────────┴────────────────┐  │  │  │
//!  │  │  │  │ Compression   gzip / br / zstd by Accept-Encoding, flushed     │  │  │  │
//!  │  │  │  │  ┌─────────────▼──────────────────────────────┴─────────────┐  │  │  │  │
//!  │  │  │  │  │ Timeout      504 when the app does not start in time     │  │  │  │  │
//!  │  │  │  │  │  ┌──────────▼──────────────────────────────┴──────────┐  │  │  │  │  │
//!  │  │  │  │  │  │ Sessions    the signed-cookie session in the scope │  │  │  │  │  │
//!  │  │  │  │  │  │  ┌───────▼──────────────────────────────┴───────┐  │  │  │  │  │  │
//!  │  │  │  │  │  │  │ Mount  /static -> StaticFiles                │  │  │  │  │  │  │
//!  │  │  │  │  │  │  │        /       -> Router (/api/...), falling │  │  │  │  │  │  │
//!  │  │  │  │  │  │  │                   back to StaticFiles (html) │  │  │  │  │  │  │
//!  │  │  │  │  │  │  └──────────────────────────────────────────────┘  │  │  │  │  │  │
//!  │  │  │  │  │  └────────────────────────────────────────────────────┘  │  │  │  │  │
//!  │  │  │  │  └──────────────────────────────────────────────────────────┘  │  │  │  │
//!  │  │  │  └────────────────────────────────────────────────────────────────┘  │  │  │
//!  │  │  └──────────────────────────────────────────────────────────────────────┘  │  │
//!  │  └────────────────────────────────────────────────────────────────────────────┘  │
//!  └──────────────────────────────────────────────────────────────────────────────────┘
//! ```
//!
//! Why this order: a wrong host is refused before anything runs; the request id is outside
//! everything that may answer, so even a refused preflight carries it; CORS is outside
//! compression so that its headers land on every answer, compressed or not; the timeout is
//! inside compression, so its 504 is small and plain; the session is innermost, where the
//! routes read it.
//!
//! Routes:
//! - `GET /`: the page (`static/index.html`), from `StaticFiles` in HTML mode;
//! - `GET /static/<file>`: the same files;
//! - `POST /api/login`: `{"user": NAME}` sets the session; answers `{"user": NAME}`;
//! - `GET /api/items`: the items, a JSON list;
//! - `POST /api/items`: `{"name": NAME}` creates an item owned by the session's user; `401`
//!   without a session;
//! - `GET /api/events`: server-sent events (`?count=N`, default 5, one every
//!   [`EVENT_INTERVAL`]).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use asgi::core::{App, AppExt, Error, Receiver, Scope, SendEvent, Sender};
use asgi::server::handler::HttpError;
use asgi::server::middleware::compression::CompressionLayer;
use asgi::server::middleware::cors::CorsLayer;
use asgi::server::middleware::request_id::RequestIdLayer;
use asgi::server::middleware::sessions::{Session, SessionLayer};
use asgi::server::middleware::static_files::StaticFiles;
use asgi::server::middleware::timeout::TimeoutLayer;
use asgi::server::middleware::trusted_host::TrustedHostLayer;
use asgi::server::mount::Mount;
use asgi::server::request::Request;
use asgi::server::response::Response;
use asgi::server::router::{Router, get, post};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use serde::{Deserialize, Serialize};

/// The CORS origin allowed when none is given.
#[allow(dead_code)] // Used by `main.rs`; the tests that include this file pass their own.
pub(crate) const DEFAULT_CORS_ORIGIN: &str = "http://127.0.0.1:8001";

/// The hosts the API answers to.
pub(crate) const TRUSTED_HOSTS: [&str; 2] = ["127.0.0.1", "localhost"];

/// How many items the in-memory store keeps; more gets `507`. A bound, so that a client
/// cannot grow the server's memory without limit.
pub(crate) const MAX_ITEMS: usize = 1000;

/// The largest JSON body the API reads: plenty for a name, and a bound for a client.
const MAX_JSON_BODY: usize = 16 * 1024;

/// The longest user or item name accepted.
const MAX_NAME_LEN: usize = 64;

/// The time between two server-sent events.
pub(crate) const EVENT_INTERVAL: Duration = Duration::from_millis(200);

/// The most events one `/api/events` request may ask for.
const MAX_EVENTS: u32 = 100;

/// How long a handler may take before it starts answering: far more than any of these
/// takes, so only a stuck handler meets it.
const HANDLER_TIMEOUT: Duration = Duration::from_secs(30);

/// One item of the API.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Item {
    pub(crate) id: u64,
    pub(crate) name: String,
    pub(crate) owner: String,
}

#[derive(Deserialize)]
struct Login {
    user: String,
}

#[derive(Deserialize)]
struct NewItem {
    name: String,
}

type Items = Arc<Mutex<Vec<Item>>>;

/// The directory of the page and its files.
pub(crate) fn static_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/api/static")
}

/// The whole stack, allowing the given CORS origins and signing sessions with `secret`.
pub(crate) fn api(cors_origins: &[String], secret: &[u8]) -> std::io::Result<impl App> {
    let items: Items = Arc::new(Mutex::new(vec![Item {
        id: 1,
        name: "first item".into(),
        owner: "server".into(),
    }]));
    let list_items = items.clone();
    let router = Router::new()
        .route("/api/login", post(login))
        .route(
            "/api/items",
            get(move |_: Request| list(list_items.clone()))
                .post(move |request: Request| create(items.clone(), request)),
        )
        .route("/api/events", get(events))
        .fallback(StaticFiles::new(static_dir())?.html(true));
    let app = Mount::new()
        .mount("/static", StaticFiles::new(static_dir())?)
        .fallback(router);
    Ok(app
        .with(SessionLayer::new(secret))
        .with(TimeoutLayer::new(HANDLER_TIMEOUT))
        .with(CompressionLayer::new())
        .with(
            CorsLayer::new()
                .allow_origins(cors_origins.iter().cloned())
                .allow_methods([Method::GET, Method::POST])
                .allow_headers(["content-type"])
                .allow_credentials(true)
                .expose_headers(["x-request-id", "content-encoding"]),
        )
        .with(RequestIdLayer::new())
        .with(TrustedHostLayer::new(TRUSTED_HOSTS)))
}

fn session(request: &Request) -> Result<Session, HttpError> {
    request
        .extension::<Session>()
        .cloned()
        .ok_or_else(|| HttpError::internal(Error::msg("the session middleware is missing")))
}

fn valid_name(name: &str) -> Result<(), HttpError> {
    if !name.trim().is_empty() && name.len() <= MAX_NAME_LEN {
        Ok(())
    } else {
        Err(HttpError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("a name must be 1 to {MAX_NAME_LEN} characters"),
        ))
    }
}

async fn login(mut request: Request) -> Result<Response, HttpError> {
    let login: Login = request.json(MAX_JSON_BODY).await?;
    valid_name(&login.user)?;
    session(&request)?.insert("user", &login.user);
    Ok(Response::json(&serde_json::json!({ "user": login.user }))?)
}

async fn list(items: Items) -> Result<Response, HttpError> {
    let items = items
        .lock()
        .map_err(|_| Error::msg("item store poisoned"))?
        .clone();
    Ok(Response::json(&items)?)
}

async fn create(items: Items, mut request: Request) -> Result<Response, HttpError> {
    let Some(user) = session(&request)?.get::<String>("user") else {
        return Err(HttpError::unauthorized("log in first"));
    };
    let new: NewItem = request.json(MAX_JSON_BODY).await?;
    valid_name(&new.name)?;
    let mut items = items
        .lock()
        .map_err(|_| Error::msg("item store poisoned"))?;
    if items.len() >= MAX_ITEMS {
        return Err(HttpError::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "the item store is full",
        ));
    }
    let item = Item {
        id: items.last().map_or(1, |i| i.id + 1),
        name: new.name,
        owner: user,
    };
    items.push(item.clone());
    Ok(Response::json(&item)?.status(StatusCode::CREATED))
}

async fn events(scope: Scope, receive: Receiver, mut send: Sender) -> Result<(), Error> {
    let shutdown = scope.shutdown();
    let request = Request::from_scope(scope, receive)?;
    let count = request
        .query("count")
        .and_then(|c| c.parse::<u32>().ok())
        .unwrap_or(5)
        .min(MAX_EVENTS);
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    send.send(SendEvent::response_start(StatusCode::OK, headers))
        .await?;
    for tick in 0..count {
        if tick > 0 {
            tokio::select! {
                () = tokio::time::sleep(EVENT_INTERVAL) => {}
                () = shutdown.wait() => break,
            }
        }
        let event = format!("id: {tick}\ndata: {{\"tick\": {tick}}}\n\n");
        send.send(SendEvent::response_body(event, true)).await?;
    }
    send.send(SendEvent::response_body(Bytes::new(), false))
        .await?;
    Ok(())
}
