//! Channel layers for ASGI apps: Django Channels' channel layer spec in Rust.
//!
//! An ASGI app can wait on events from outside its connection. Channel layers make that
//! shared: a WebSocket handler joins a *group*, and any connection, in this process or (with
//! Redis) in any other, can send to the group. This is how a chat room, a live dashboard or
//! a notification feed outgrows one process.
//!
//! ```
//! use asgi_channels::{ChannelLayer, InMemoryChannelLayer};
//! use serde_json::json;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), asgi_channels::ChannelLayerError> {
//! let layer = InMemoryChannelLayer::default();
//! let alice = layer.new_channel().await?;
//! let bob = layer.new_channel().await?;
//! layer.group_add("room.lobby", &alice).await?;
//! layer.group_add("room.lobby", &bob).await?;
//! layer.group_send("room.lobby", json!({"type": "chat.message", "text": "hi"})).await?;
//! assert_eq!(layer.receive(&alice).await?["text"], "hi");
//! assert_eq!(layer.receive(&bob).await?["text"], "hi");
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//!
//! - [`layer`]: the [`ChannelLayer`] trait (`new_channel`, `send`, `receive`, `group_add`,
//!   `group_discard`, `group_send`, `flush`) and its delivery rules.
//! - [`config`]: [`LayerConfig`]: capacity (with per-pattern overrides), expiry, group
//!   expiry, with Channels' defaults.
//! - [`name`]: the naming rules of channels and groups.
//! - [`memory`]: [`InMemoryChannelLayer`], for one process and for tests.
//! - `redis` (feature `redis`): `RedisChannelLayer`, on the `redis` crate, for many
//!   processes and machines, with channels_redis's storage and semantics.
//! - [`member`]: [`GroupMember`], a connection's channel and groups, left on every path out.
//! - [`error`]: the error type, [`ChannelLayerError`].
//!
//! # Features
//!
//! - `redis`: the Redis layer. Off by default, so that a single-process app pulls in no
//!   Redis client.

pub mod config;
pub mod error;
pub mod layer;
pub mod member;
pub mod memory;
pub mod name;
#[cfg(feature = "redis")]
pub mod redis;

pub use config::LayerConfig;
pub use error::ChannelLayerError;
pub use layer::{ChannelLayer, LayerMessage, LayerStats};
pub use member::GroupMember;
pub use memory::InMemoryChannelLayer;
pub use name::{validate_channel_name, validate_group_name};
#[cfg(feature = "redis")]
pub use redis::{RedisChannelLayer, RedisLayerBuilder};
