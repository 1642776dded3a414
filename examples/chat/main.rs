//! Chat rooms: `GET /` serves a page whose script joins a room over a WebSocket
//! (`/ws/{room}`; the page's `?room=NAME`, default `lobby`); every message a client sends
//! reaches every client in the room.
//!
//! ```sh
//! cargo run --example chat            # then open http://127.0.0.1:8000/ in two tabs
//! cargo run --example chat -- --redis redis://127.0.0.1:6379 --bind 127.0.0.1:8001
//! ```
//!
//! With `--redis URL` the rooms live in a Redis channel layer, so several instances (behind
//! nginx, say) share them; without it, in an in-memory layer of this process. `--redis` may
//! be given more than once to shard over several Redis servers.

#[path = "../common/mod.rs"]
mod common;

mod app;

use std::process::ExitCode;
use std::sync::Arc;

use asgi::channels::{ChannelLayer, InMemoryChannelLayer, RedisChannelLayer};

#[tokio::main]
async fn main() -> ExitCode {
    let redis: Vec<String> = common::option_values("--redis");
    let layer: Arc<dyn ChannelLayer> = if redis.is_empty() {
        Arc::new(InMemoryChannelLayer::default())
    } else {
        let mut builder = RedisChannelLayer::builder();
        for url in redis {
            builder = builder.host(url);
        }
        match builder.connect().await {
            Ok(layer) => Arc::new(layer),
            Err(error) => {
                eprintln!("chat: {error}");
                return ExitCode::from(1);
            }
        }
    };
    common::run(app::chat(layer)).await
}
