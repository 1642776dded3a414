//! The smallest served app: `GET /` answers `Hello, world!`.
//!
//! ```sh
//! cargo run --release --example hello            # --bind ADDR, --uds PATH
//! curl http://127.0.0.1:8000/
//! ```

mod common;

use std::process::ExitCode;

use asgi::prelude::*;

/// A request handler: the server's lifespan scope, which it cannot serve, is answered with an
/// error that the server takes as "no lifespan support", and it goes on without.
async fn hello(request: Request) -> Response {
    if request.path() == "/" {
        Response::text("Hello, world!")
    } else {
        Response::text("Not Found").status(StatusCode::NOT_FOUND)
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    common::run(handler(hello)).await
}
