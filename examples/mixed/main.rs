//! One server for a project moving from blocking handlers to async ones, one route at a time:
//! the old WSGI app still answers under `/legacy`, and the new async app serves `/` (a page)
//! and `/ws` (a WebSocket echo). See `app.rs`.
//!
//! ```sh
//! cargo run --example mixed                      # --bind ADDR, --uds PATH
//! curl http://127.0.0.1:8000/                    # the async page
//! curl http://127.0.0.1:8000/legacy/report       # a blocking WSGI handler
//! curl -d 'remember the milk' http://127.0.0.1:8000/legacy/notes
//! ```

#[path = "../common/mod.rs"]
mod common;

mod app;

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    common::run(app::mixed()).await
}
