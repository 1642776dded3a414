//! A chat room: `GET /` serves a page whose script connects to `/ws`; every message a client
//! sends reaches every connected client.
//!
//! ```sh
//! cargo run --example chat            # then open http://127.0.0.1:8000/ in two tabs
//! ```

#[path = "../common/mod.rs"]
mod common;

mod app;

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    common::run(app::chat()).await
}
