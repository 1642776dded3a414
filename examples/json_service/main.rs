//! A small JSON service, as the README's section of that name shows it: todos in the
//! lifespan state, a `Router` of request handlers, JSON in and out, an auth middleware.
//!
//! ```sh
//! cargo run --example json_service            # --bind ADDR, --uds PATH
//! curl -s http://127.0.0.1:8000/todos
//! curl -s -H 'authorization: Bearer let-me-in' -d '{"title": "milk"}' http://127.0.0.1:8000/todos
//! curl -s http://127.0.0.1:8000/todos/1
//! ```

#[path = "../common/mod.rs"]
mod common;

mod app;

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    common::run(app::app()).await
}
