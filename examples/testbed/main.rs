//! A testbed app for the server: one route per behaviour (streaming both ways, trailers,
//! server-sent events, failures, disconnects, lifespan state, WebSockets), and the blocking
//! WSGI testbed mounted at `/wsgi`. See `app.rs` for the routes.
//!
//! ```sh
//! cargo run --example testbed                    # --bind ADDR, --uds PATH
//! curl http://127.0.0.1:8000/scope/anything?x=1
//! curl -N 'http://127.0.0.1:8000/sse?n=5&interval_ms=500'
//! curl http://127.0.0.1:8000/wsgi/environ/anything?x=1
//! # WebSocket conformance: point the Autobahn|Testsuite fuzzing client at
//! # ws://127.0.0.1:8000/ws/echo
//! TESTBED_STARTUP_FAIL=1 cargo run --example testbed; echo $?   # 3: startup failed
//! ```

#[path = "../common/mod.rs"]
mod common;

mod app;

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let fail_startup = std::env::var_os("TESTBED_STARTUP_FAIL").is_some_and(|v| v == "1");
    // `/upload`, `/wsgi/upload` and `/echo` stream bodies of any size (the load benchmark
    // sends 1 GiB): the testbed lifts the server's request-body limit, which the app never
    // holds whole.
    common::run_with(app::served_app(fail_startup), |server| {
        server.max_request_body(None)
    })
    .await
}
