//! A testbed app for the server: one route per behaviour (streaming both ways, trailers,
//! server-sent events, failures, disconnects, lifespan state). See `app.rs` for the routes.
//!
//! ```sh
//! cargo run --example testbed                    # --bind ADDR, --uds PATH
//! curl http://127.0.0.1:8000/scope/anything?x=1
//! curl -N 'http://127.0.0.1:8000/sse?n=5&interval_ms=500'
//! curl http://127.0.0.1:8000/wsgi/environ/anything?x=1
//! TESTBED_STARTUP_FAIL=1 cargo run --example testbed; echo $?   # 3: startup failed
//! ```

#[path = "../common/mod.rs"]
mod common;

mod app;

use std::process::ExitCode;

/// The largest request body the testbed takes: 4 GiB, up from the server's 100 MiB default,
/// so that `/upload` and `/wsgi/upload` show a body of a gigabyte streaming through in the
/// memory of a few chunks (the load benchmark uploads 1 GiB). Every route either streams the
/// body or caps what it reads itself (`/wsgi/environ/...`), so no route holds a large one.
const MAX_REQUEST_BODY: u64 = 4 << 30;

#[tokio::main]
async fn main() -> ExitCode {
    let fail_startup = std::env::var_os("TESTBED_STARTUP_FAIL").is_some_and(|v| v == "1");
    common::run_with(app::served_app(fail_startup), |server| {
        server.max_request_body(Some(MAX_REQUEST_BODY))
    })
    .await
}
