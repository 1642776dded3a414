//! [`GroupMember`]: a connection's channel and group memberships, left on every path out.

use std::sync::Arc;
use std::time::Duration;

use crate::{ChannelLayer, ChannelLayerError, LayerMessage};

/// How long the clean-up of a member dropped without [`GroupMember::leave`] (a panic, a
/// cancelled task) may take: 5 s. It runs in a task of its own, so nothing waits for it;
/// the bound keeps a Redis outage from leaving such tasks behind.
const DROP_CLEANUP_TIMEOUT: Duration = Duration::from_secs(5);

/// A channel of this process and the groups it joined, for one WebSocket connection (or any
/// other consumer).
///
/// [`join`](Self::join) makes a channel and adds it to the groups;
/// [`receive`](Self::receive) waits for the next group message, beside the socket in a
/// `tokio::select!`; [`leave`](Self::leave) discards the memberships and closes the channel.
/// Dropped without `leave` (a panic, an error returned with `?`, a task cancelled at server
/// shutdown), it does the same in a task of its own, so a member never stays in a group
/// after its connection ended.
///
/// # Example
///
/// A chat room: every text a client sends goes to the group, and every group message to the
/// client.
///
/// ```
/// use std::sync::Arc;
/// use asgi_channels::{ChannelLayer, GroupMember};
/// use asgi_core::{Error, Receiver, Scope, Sender};
/// use asgi_ws::{Message, WebSocket};
/// use serde_json::json;
///
/// async fn room(layer: Arc<dyn ChannelLayer>, scope: Scope, receive: Receiver, send: Sender)
///     -> Result<(), Error>
/// {
///     let Scope::WebSocket(scope) = scope else { return Ok(()) };
///     let mut ws = WebSocket::new(scope, receive, send);
///     // Join before accepting: nothing said in the room after the client sees the
///     // handshake succeed is missed.
///     let member = GroupMember::join(layer.clone(), ["room.lobby"]).await.map_err(Error::new)?;
///     ws.accept().await?;
///     loop {
///         tokio::select! {
///             message = ws.recv() => match message? {
///                 Message::Text(text) => {
///                     let said = json!({"type": "chat.message", "text": text});
///                     layer.group_send("room.lobby", said).await.map_err(Error::new)?;
///                 }
///                 Message::Binary(_) => {}
///                 _ => break, // closed
///             },
///             heard = member.receive() => {
///                 let heard = heard.map_err(Error::new)?;
///                 ws.send_text(heard["text"].as_str().unwrap_or_default()).await?;
///             }
///         }
///     }
///     member.leave().await;
///     Ok(())
/// }
/// ```
#[derive(Debug)]
pub struct GroupMember<L: ChannelLayer + ?Sized> {
    layer: Arc<L>,
    channel: String,
    groups: Vec<String>,
    left: bool,
}

impl<L: ChannelLayer + ?Sized> GroupMember<L> {
    /// Makes a channel on `layer` and adds it to each of `groups`.
    ///
    /// # Errors
    ///
    /// An invalid group name, or [`ChannelLayerError::Backend`]; the memberships made before
    /// the failure are undone.
    pub async fn join<G, I>(layer: Arc<L>, groups: I) -> Result<Self, ChannelLayerError>
    where
        I: IntoIterator<Item = G>,
        G: Into<String>,
    {
        let channel = layer.new_channel().await?;
        let mut member = GroupMember {
            layer,
            channel,
            groups: Vec::new(),
            left: false,
        };
        for group in groups {
            if let Err(error) = member.add(group).await {
                member.leave().await;
                return Err(error);
            }
        }
        Ok(member)
    }

    /// Joins one more group.
    ///
    /// # Errors
    ///
    /// An invalid group name, or [`ChannelLayerError::Backend`].
    pub async fn add(&mut self, group: impl Into<String>) -> Result<(), ChannelLayerError> {
        let group = group.into();
        self.layer.group_add(&group, &self.channel).await?;
        if !self.groups.contains(&group) {
            self.groups.push(group);
        }
        Ok(())
    }

    /// Leaves one group.
    ///
    /// # Errors
    ///
    /// [`ChannelLayerError::Backend`]; the group is forgotten here either way, and the
    /// membership lapses at the group expiry.
    pub async fn discard(&mut self, group: &str) -> Result<(), ChannelLayerError> {
        self.groups.retain(|g| g != group);
        self.layer.group_discard(group, &self.channel).await
    }

    /// This member's channel name: send to it to reach this connection alone.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// The groups joined.
    pub fn groups(&self) -> &[String] {
        &self.groups
    }

    /// Waits for the next message to this member's channel.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe, as [`ChannelLayer::receive`]: use it in `tokio::select!` beside the
    /// socket.
    ///
    /// # Errors
    ///
    /// As [`ChannelLayer::receive`].
    pub async fn receive(&self) -> Result<LayerMessage, ChannelLayerError> {
        self.layer.receive(&self.channel).await
    }

    /// Leaves every group and closes the channel. Failures (Redis down) are logged: the
    /// memberships then lapse at the group expiry.
    pub async fn leave(mut self) {
        self.left = true;
        leave(&*self.layer, &self.channel, &self.groups).await;
    }
}

async fn leave<L: ChannelLayer + ?Sized>(layer: &L, channel: &str, groups: &[String]) {
    for group in groups {
        if let Err(error) = layer.group_discard(group, channel).await {
            tracing::warn!(target: "asgi_channels", group, channel, %error, "could not leave a group; the membership lapses at the group expiry");
        }
    }
    layer.close_channel(channel).await;
}

impl<L: ChannelLayer + ?Sized> Drop for GroupMember<L> {
    fn drop(&mut self) {
        if self.left {
            return;
        }
        let layer = self.layer.clone();
        let channel = std::mem::take(&mut self.channel);
        let groups = std::mem::take(&mut self.groups);
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    let cleanup = leave(&*layer, &channel, &groups);
                    if tokio::time::timeout(DROP_CLEANUP_TIMEOUT, cleanup).await.is_err() {
                        tracing::warn!(target: "asgi_channels", channel, "leaving groups timed out; the memberships lapse at the group expiry");
                    }
                });
            }
            Err(_) => {
                tracing::warn!(target: "asgi_channels", channel, "group member dropped outside a runtime; its memberships lapse at the group expiry")
            }
        }
    }
}
