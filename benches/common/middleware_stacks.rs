//! The middleware stacks that both the criterion benchmark (`core`, group `middleware`) and
//! the load harness's instruction counts (`load -- middleware`) measure: a hello app
//! (`Response::text`) bare and behind each middleware of `asgi::server::middleware`, with one
//! request that makes each of them work (an allowed `Origin`, a trusted `Host`,
//! `Accept-Encoding: gzip, br`, a session cookie, `https`). One list, so that the two
//! benchmarks price the same thing.

use std::path::PathBuf;
use std::time::Duration;

use asgi::core::http::{HeaderName, HeaderValue, Method};
use asgi::core::{App, AppExt, Error, HttpScope, Receiver, Scope, Sender};
use asgi::server::middleware::compression::CompressionLayer;
use asgi::server::middleware::concurrency_limit::ConcurrencyLimitLayer;
use asgi::server::middleware::cors::CorsLayer;
use asgi::server::middleware::https_redirect::HttpsRedirectLayer;
use asgi::server::middleware::request_id::RequestIdLayer;
use asgi::server::middleware::sessions::{Session, SessionLayer};
use asgi::server::middleware::static_files::StaticFiles;
use asgi::server::middleware::timeout::TimeoutLayer;
use asgi::server::middleware::trusted_host::TrustedHostLayer;
use asgi::server::response::Response;
use asgi::server::test_client::TestClient;

/// The app every stack wraps: `Hello, world!` as `text/plain`.
pub(crate) async fn hello(_: Scope, _: Receiver, mut send: Sender) -> Result<(), Error> {
    Response::text("Hello, world!").send(&mut send).await
}

/// The session key of the `sessions` stack.
const SECRET: &[u8] = b"a benchmark secret, thirty-two bytes or more";

/// The stacks, the request they all get, and the directory `static_files` serves (removed on
/// drop).
pub(crate) struct Stacks {
    /// The request: `GET /hello.txt` over `https`, with the headers named above.
    pub(crate) scope: Scope,
    /// `(name, app)`, `bare` first.
    pub(crate) apps: Vec<(&'static str, Box<dyn App>)>,
    dir: PathBuf,
}

impl Stacks {
    /// Builds every stack; `rt` runs the login that makes the session cookie.
    pub(crate) fn new(rt: &tokio::runtime::Runtime) -> Stacks {
        // A session cookie, made by the middleware itself.
        let cookie = rt.block_on(async {
            let login = |scope: Scope, _: Receiver, mut send: Sender| async move {
                if let Some(session) = scope.extensions().and_then(|e| e.get::<Session>()) {
                    session.insert("user", "bench");
                }
                Response::text("in").send(&mut send).await
            };
            let client = TestClient::new(login.with(SessionLayer::new(SECRET)));
            let response = client.get("/").await.expect("login");
            let set = response.header("set-cookie").expect("a cookie").to_owned();
            set.split(';').next().unwrap_or_default().to_owned()
        });
        let mut http = HttpScope::new(Method::GET, "/hello.txt");
        http.scheme = "https".into();
        for (name, value) in [
            ("host", "127.0.0.1"),
            ("origin", "http://127.0.0.1:8001"),
            ("accept-encoding", "gzip, br"),
            ("cookie", cookie.as_str()),
        ] {
            http.headers.insert(
                HeaderName::from_static(name),
                HeaderValue::from_str(value).expect("a header value"),
            );
        }
        let dir = std::env::temp_dir().join(format!("asgi-bench-static-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        std::fs::write(dir.join("hello.txt"), "Hello, world!").expect("a file");
        let apps: Vec<(&'static str, Box<dyn App>)> = vec![
            ("bare", Box::new(hello)),
            (
                "cors",
                Box::new(hello.with(CorsLayer::new().allow_origins(["http://127.0.0.1:8001"]))),
            ),
            (
                "compression_below_minimum",
                Box::new(hello.with(CompressionLayer::new())),
            ),
            (
                "compression_gzip",
                Box::new(hello.with(CompressionLayer::new().minimum_size(0).br(false))),
            ),
            (
                "trusted_host",
                Box::new(hello.with(TrustedHostLayer::new(["127.0.0.1", "localhost"]))),
            ),
            (
                "https_redirect",
                Box::new(hello.with(HttpsRedirectLayer::new())),
            ),
            ("request_id", Box::new(hello.with(RequestIdLayer::new()))),
            (
                "timeout",
                Box::new(hello.with(TimeoutLayer::new(Duration::from_secs(30)))),
            ),
            (
                "concurrency_limit",
                Box::new(hello.with(ConcurrencyLimitLayer::new(1024))),
            ),
            ("sessions", Box::new(hello.with(SessionLayer::new(SECRET)))),
            (
                "static_files",
                Box::new(StaticFiles::new(&dir).expect("the directory")),
            ),
        ];
        Stacks {
            scope: Scope::from(http),
            apps,
            dir,
        }
    }

    /// The stack called `name`.
    #[allow(dead_code)] // The load harness looks stacks up by name; `core` walks the list.
    pub(crate) fn get(&self, name: &str) -> Option<&dyn App> {
        self.apps
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, app)| &**app)
    }
}

impl Drop for Stacks {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
