//! The errors a channel layer returns.

use std::error::Error as StdError;

/// What went wrong in a channel layer operation.
///
/// [`ChannelLayerError::ChannelFull`] and [`ChannelLayerError::InvalidName`] are the caller's
/// to handle; [`ChannelLayerError::Backend`] means the layer's store (Redis) could not be
/// reached or answered with an error: the operation did not happen, and a later one may
/// succeed once the store is back.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelLayerError {
    /// `send` found the channel at its capacity; the message was not queued.
    #[error("channel {channel:?} is full")]
    ChannelFull {
        /// The channel that is full.
        channel: String,
    },
    /// A channel or group name breaks the naming rules.
    #[error("invalid {kind} name {name:?}: {reason}")]
    InvalidName {
        /// `"channel"` or `"group"`.
        kind: &'static str,
        /// The name as given.
        name: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// `receive` on a process-local channel that this layer did not make with
    /// [`new_channel`](crate::ChannelLayer::new_channel), or that was dropped.
    #[error("channel {channel:?} is not open in this process")]
    UnknownChannel {
        /// The channel name.
        channel: String,
    },
    /// A message could not be encoded or decoded.
    #[error("message could not be encoded or decoded: {0}")]
    Serialization(#[from] serde_json::Error),
    /// The backing store failed (for Redis: connection refused, reset, timed out, or an error
    /// reply). Nothing was sent; the app decides whether to retry.
    #[error("channel layer backend error: {0}")]
    Backend(#[source] Box<dyn StdError + Send + Sync>),
}

impl ChannelLayerError {
    /// `true` for [`ChannelLayerError::ChannelFull`].
    pub fn is_channel_full(&self) -> bool {
        matches!(self, ChannelLayerError::ChannelFull { .. })
    }

    /// `true` for [`ChannelLayerError::Backend`]: the store was unreachable or failed.
    pub fn is_backend(&self) -> bool {
        matches!(self, ChannelLayerError::Backend(_))
    }
}
