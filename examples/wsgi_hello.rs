//! PEP 3333's `simple_app`, a blocking WSGI app, served by the HTTP server: `WsgiToAsgi` runs
//! each call on tokio's blocking pool and makes it an ASGI app like any other.
//!
//! ```sh
//! cargo run --example wsgi_hello                 # --bind ADDR, --uds PATH
//! curl http://127.0.0.1:8000/
//! ```

mod common;

use std::process::ExitCode;

use asgi::wsgi::WsgiToAsgi;
use asgi::wsgi::testbed::simple_app;

#[tokio::main]
async fn main() -> ExitCode {
    // At most `2 * cores + 1` calls run at once (gunicorn's advice); the next request waits
    // up to 10 seconds for a free thread, then gets 503.
    common::run(WsgiToAsgi::new(simple_app)).await
}
