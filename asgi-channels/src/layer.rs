//! The [`ChannelLayer`] trait: Django Channels' channel layer spec in Rust.

use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use serde_json::Value;

use crate::ChannelLayerError;

/// A message sent through a channel layer: a serde value, usually a JSON object with a
/// `"type"` key, as in Channels (`{"type": "chat.message", "text": "hi"}`).
pub type LayerMessage = Value;

/// Channels and groups shared by every connection, and with a networked layer by every
/// process: Django Channels' channel layer spec.
///
/// A *channel* is a mailbox with a name: anyone may [`send`](Self::send) to it, and its owner
/// [`receive`](Self::receive)s from it. A *group* is a named set of channels:
/// [`group_send`](Self::group_send) delivers a message to every member. A WebSocket handler
/// typically makes a channel with [`new_channel`](Self::new_channel), adds it to a group
/// ("room.lobby"), and receives group messages beside its socket; see
/// [`GroupMember`](crate::GroupMember), which also leaves the groups on every path out.
///
/// # Delivery
///
/// - At most once: a message is received by one receiver, or by none (it expired, the
///   channel was full, or the store lost it).
/// - FIFO per channel: messages from one sender to one channel arrive in the order sent.
/// - Bounded: a channel holds at most its capacity; a message older than the expiry is
///   dropped; a membership lapses after the group expiry unless renewed by `group_add`.
///
/// # Example
///
/// ```
/// use asgi_channels::{ChannelLayer, InMemoryChannelLayer};
/// use serde_json::json;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), asgi_channels::ChannelLayerError> {
/// let layer = InMemoryChannelLayer::default();
/// let me = layer.new_channel().await?;
/// layer.group_add("room.lobby", &me).await?;
/// layer.group_send("room.lobby", json!({"type": "chat.message", "text": "hi"})).await?;
/// assert_eq!(layer.receive(&me).await?["text"], "hi");
/// # Ok(())
/// # }
/// ```
#[async_trait]
pub trait ChannelLayer: Send + Sync + 'static {
    /// Makes a new process-local channel name (`specific.<process>!<random>`) that this
    /// process receives from, and opens its mailbox.
    ///
    /// # Errors
    ///
    /// [`ChannelLayerError::Backend`] if the store cannot be reached.
    async fn new_channel(&self) -> Result<String, ChannelLayerError>;

    /// Queues `message` on `channel`.
    ///
    /// # Errors
    ///
    /// - [`ChannelLayerError::ChannelFull`]: the channel holds its capacity already.
    /// - [`ChannelLayerError::InvalidName`]: see [`validate_channel_name`](crate::validate_channel_name).
    /// - [`ChannelLayerError::Backend`]: the store failed; nothing was queued.
    async fn send(&self, channel: &str, message: LayerMessage) -> Result<(), ChannelLayerError>;

    /// Waits for the next message on `channel`, the oldest first.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: if the future is dropped before it completes, no message is lost; the
    /// next `receive` on the channel gets it.
    ///
    /// # Errors
    ///
    /// [`ChannelLayerError::UnknownChannel`] for a process-local channel this layer did not
    /// make (or dropped); [`ChannelLayerError::InvalidName`] for a bad name. A networked layer
    /// keeps waiting through store outages (it retries), so it never returns
    /// [`ChannelLayerError::Backend`].
    async fn receive(&self, channel: &str) -> Result<LayerMessage, ChannelLayerError>;

    /// Adds `channel` to `group`, or renews its membership.
    ///
    /// # Errors
    ///
    /// Invalid names; [`ChannelLayerError::Backend`] if the store failed.
    async fn group_add(&self, group: &str, channel: &str) -> Result<(), ChannelLayerError>;

    /// Removes `channel` from `group`; nothing happens if it was not a member.
    ///
    /// # Errors
    ///
    /// Invalid names; [`ChannelLayerError::Backend`] if the store failed.
    async fn group_discard(&self, group: &str, channel: &str) -> Result<(), ChannelLayerError>;

    /// Sends `message` to every member of `group`. It never fails because a member is full:
    /// that member is skipped and the skip counted in [`LayerStats::group_send_dropped`]
    /// (and logged).
    ///
    /// # Errors
    ///
    /// An invalid name; [`ChannelLayerError::Backend`] if the store failed.
    async fn group_send(&self, group: &str, message: LayerMessage)
    -> Result<(), ChannelLayerError>;

    /// Deletes every channel, message and group of this layer (for tests).
    ///
    /// # Errors
    ///
    /// [`ChannelLayerError::Backend`] if the store failed.
    async fn flush(&self) -> Result<(), ChannelLayerError>;

    /// Closes a process-local channel made by [`new_channel`](Self::new_channel): its mailbox
    /// and the messages in it are dropped, and later messages to it are discarded. Not in the
    /// Channels spec, whose layers leave that to expiry; here a closed socket frees its
    /// mailbox at once.
    async fn close_channel(&self, channel: &str);

    /// The layer's counters.
    fn stats(&self) -> LayerStats;
}

/// A layer's counters, read with [`ChannelLayer::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LayerStats {
    /// Group members skipped by `group_send` because their channel was full.
    pub group_send_dropped: u64,
    /// Messages for process-local channels dropped at this process because the channel's
    /// mailbox was full (a networked layer only: its senders cannot see the mailbox).
    pub local_dropped: u64,
    /// Messages dropped because they were older than the expiry when they would have been
    /// received (the in-memory layer only: Redis expires them without telling).
    pub expired: u64,
}

/// The counters behind [`LayerStats`], shared by the layers.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    group_send_dropped: AtomicU64,
    local_dropped: AtomicU64,
    expired: AtomicU64,
}

impl Counters {
    /// Counts `n` members skipped by `group_send`, and logs it: at debug level each time,
    /// at warn level when the total crosses a power of two, so that a full member under a
    /// steady stream of messages shows in the logs without flooding them.
    pub(crate) fn group_send_dropped(&self, group: &str, n: u64) {
        let before = self.group_send_dropped.fetch_add(n, Ordering::Relaxed);
        log_drop("group_send skipped full members", group, before, n);
    }

    /// Counts one message dropped at a full local mailbox, and logs it like
    /// [`group_send_dropped`](Self::group_send_dropped).
    pub(crate) fn local_dropped(&self, channel: &str) {
        let before = self.local_dropped.fetch_add(1, Ordering::Relaxed);
        log_drop("message dropped at a full channel", channel, before, 1);
    }

    pub(crate) fn expired(&self, n: u64) {
        self.expired.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> LayerStats {
        LayerStats {
            group_send_dropped: self.group_send_dropped.load(Ordering::Relaxed),
            local_dropped: self.local_dropped.load(Ordering::Relaxed),
            expired: self.expired.load(Ordering::Relaxed),
        }
    }
}

fn log_drop(what: &str, name: &str, before: u64, n: u64) {
    let after = before + n;
    if after.next_power_of_two() != before.next_power_of_two() || before == 0 {
        tracing::warn!(target: "asgi_channels", name, dropped_total = after, "{what}");
    } else {
        tracing::debug!(target: "asgi_channels", name, dropped_total = after, "{what}");
    }
}
