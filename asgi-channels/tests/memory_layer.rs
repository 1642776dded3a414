//! The channel layer semantics, on the in-memory layer.

mod support;

use std::sync::Arc;

use asgi_channels::{ChannelLayer, InMemoryChannelLayer, LayerConfig};

async fn memory(config: LayerConfig) -> (Arc<dyn ChannelLayer>, ()) {
    (Arc::new(InMemoryChannelLayer::new(config)), ())
}

semantics_tests!(allow(unused_attributes), memory);
