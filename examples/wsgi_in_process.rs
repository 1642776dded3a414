//! A blocking WSGI app run as an ASGI app, in-process (no socket): PEP 3333's `simple_app`
//! and the testbed app behind `WsgiToAsgi` and the `Validator`, driven by the test harness
//! as a client would.
//!
//! ```text
//! cargo run --example wsgi_in_process
//! ```

use asgi::core::host::testing;
use asgi::core::{HttpScope, ReceiveEvent, Scope};
use asgi::wsgi::testbed::{simple_app, testbed};
use asgi::wsgi::{Validator, WsgiToAsgi};
use http::Method;

#[tokio::main]
async fn main() {
    let hello = WsgiToAsgi::new(Validator::new(simple_app));
    let outcome = testing::call(&hello, Scope::from(HttpScope::new(Method::GET, "/")), []).await;
    print("GET /", &outcome);

    // The testbed, mounted at /wsgi: its paths are relative to SCRIPT_NAME.
    let app = WsgiToAsgi::new(Validator::new(testbed));
    let mut echo = HttpScope::new(Method::POST, "/wsgi/echo");
    echo.root_path = "/wsgi".into();
    let body = [
        ReceiveEvent::request("streamed ", true),
        ReceiveEvent::request("back", false),
    ];
    let outcome = testing::call(&app, Scope::from(echo), body).await;
    print("POST /wsgi/echo", &outcome);

    let mut environ = HttpScope::new(Method::GET, "/wsgi/environ/caf%C3%A9");
    environ.path = "/wsgi/environ/caf\u{e9}".into();
    environ.root_path = "/wsgi".into();
    // An empty body, as a server delivers for a GET: this endpoint reads wsgi.input.
    let no_body = [ReceiveEvent::request("", false)];
    let outcome = testing::call(&app, Scope::from(environ), no_body).await;
    print("GET /wsgi/environ/caf%C3%A9", &outcome);
}

fn print(request: &str, outcome: &testing::Outcome) {
    let status = outcome.status().map(|s| s.as_u16()).unwrap_or_default();
    println!(
        "{request} -> {status}\n{}\n",
        String::from_utf8_lossy(&outcome.body())
    );
}
