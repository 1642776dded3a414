//! Event sources and sinks over bounded channels, used by the test harness and the lifespan
//! runner (and usable by any server that moves events between tasks).

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::error::SendError;
use crate::event::{ReceiveEvent, SendEvent};
use crate::handle::{EventSink, EventSource};
use crate::protocol::SendProtocol;
use crate::scope::Scope;

/// An [`EventSource`] fed by a bounded channel. When every sender is dropped, it returns
/// the scope's disconnect event forever, as the [`Receiver`](crate::Receiver) contract says.
#[derive(Debug)]
pub struct ChannelSource {
    rx: mpsc::Receiver<ReceiveEvent>,
    disconnect: ReceiveEvent,
    gone: bool,
}

impl ChannelSource {
    /// A source for a connection of `scope`'s type, reading from `rx`.
    pub fn new(scope: &Scope, rx: mpsc::Receiver<ReceiveEvent>) -> Self {
        ChannelSource {
            rx,
            disconnect: ReceiveEvent::disconnect_for(scope),
            gone: false,
        }
    }
}

#[async_trait]
impl EventSource for ChannelSource {
    async fn recv(&mut self) -> ReceiveEvent {
        if !self.gone {
            // `mpsc::Receiver::recv` is cancel safe, so this method is too.
            match self.rx.recv().await {
                Some(event) => {
                    // A disconnect that the peer sends itself also ends the stream.
                    if event.is_disconnect() {
                        self.gone = true;
                        self.disconnect = event.clone();
                    }
                    return event;
                }
                None => self.gone = true,
            }
        }
        self.disconnect.clone()
    }
}

/// An [`EventSink`] into a bounded channel that checks the protocol order first: a full
/// channel makes `send` wait (backpressure); a closed one gives
/// [`SendError::Disconnected`].
#[derive(Debug)]
pub struct ChannelSink {
    tx: mpsc::Sender<SendEvent>,
    protocol: SendProtocol,
}

impl ChannelSink {
    /// A sink for a connection of `scope`'s type, writing to `tx`.
    pub fn new(scope: &Scope, tx: mpsc::Sender<SendEvent>) -> Self {
        ChannelSink {
            tx,
            protocol: SendProtocol::for_scope(scope),
        }
    }
}

#[async_trait]
impl EventSink for ChannelSink {
    async fn send(&mut self, event: SendEvent) -> Result<(), SendError> {
        if self.tx.is_closed() {
            return Err(SendError::Disconnected);
        }
        self.protocol.check(&event)?;
        self.tx
            .send(event)
            .await
            .map_err(|_| SendError::Disconnected)
    }
}
