//! The smallest served app: `GET /` answers `Hello, world!`.
//!
//! ```sh
//! cargo run --release --example hello            # --bind ADDR, --uds PATH
//! curl http://127.0.0.1:8000/
//! ```

mod common;

use std::process::ExitCode;

use asgi::core::http::header::{CONTENT_TYPE, HeaderValue};
use asgi::core::http::{HeaderMap, StatusCode};
use asgi::prelude::*;

async fn hello(scope: Scope, _receive: Receiver, mut send: Sender) -> Result<(), Error> {
    // Returning at once from the lifespan scope means "no lifespan support": the server goes
    // on without it.
    let Scope::Http(http) = scope else {
        return Ok(());
    };
    let (status, body) = if http.path == "/" {
        (StatusCode::OK, "Hello, world!")
    } else {
        (StatusCode::NOT_FOUND, "Not Found")
    };
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    send.send(SendEvent::response_start(status, headers))
        .await?;
    send.send(SendEvent::response_body(body, false)).await?;
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    common::run(hello).await
}
