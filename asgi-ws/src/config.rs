//! [`WebSocketConfig`]: the limits, timeouts and queue sizes of one WebSocket connection.

use std::time::Duration;

use crate::deflate::DeflateConfig;

/// Default of [`WebSocketConfig::max_message_size`]: 16 MiB, as in uvicorn (`ws_max_size`).
/// Large enough for any chat or RPC message (and for the 16 MiB messages of the Autobahn
/// suite), small enough that a client cannot make the server buffer gigabytes.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 16 * 1024 * 1024;

/// Default of [`WebSocketConfig::ping_interval`]: 20 seconds, as in uvicorn
/// (`ws_ping_interval`). Below the 30 to 60 second idle timeouts of common proxies and load
/// balancers, so an idle connection stays open through them.
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(20);

/// Default of [`WebSocketConfig::pong_timeout`]: 20 seconds, as in uvicorn
/// (`ws_ping_timeout`). A live client answers within a round trip; 20 seconds tolerates a
/// congested mobile link.
pub const DEFAULT_PONG_TIMEOUT: Duration = Duration::from_secs(20);

/// Default of [`WebSocketConfig::close_timeout`]: 5 seconds. A client answers a close frame
/// within a round trip; waiting longer only holds a socket that is going away.
pub const DEFAULT_CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Default of [`WebSocketConfig::failure_grace`]: 1 second. An app that answers messages
/// (an echo, a chat) answers the ones read before a client's protocol error within
/// milliseconds; longer only holds a connection whose client is broken or hostile.
pub const DEFAULT_FAILURE_GRACE: Duration = Duration::from_secs(1);

/// Default of [`WebSocketConfig::receive_queue`]: 16 messages. Enough to keep a busy app fed
/// between two reads of the socket; small enough that a stalled app holds at most 16
/// messages before the server stops reading from the client.
pub const DEFAULT_RECEIVE_QUEUE: usize = 16;

/// Default of [`WebSocketConfig::send_queue`]: 16 events. Lets an app send a burst without
/// waiting on each write; a client that stops reading blocks the app's `send` after 16 more.
pub const DEFAULT_SEND_QUEUE: usize = 16;

/// Default of [`WebSocketConfig::write_buffer`]: 64 KiB, the size of a typical socket send
/// buffer: enough to batch many small frames into one write, small per connection.
pub const DEFAULT_WRITE_BUFFER: usize = 64 * 1024;

/// The settings of one WebSocket connection, shared by every connection of a server.
///
/// Every limit has a documented default; a timeout or limit that is an `Option` is disabled
/// with `None`. The struct is `#[non_exhaustive]`: start from [`WebSocketConfig::default`]
/// and change fields.
///
/// # Memory
///
/// What one connection can hold, at most: `receive_queue` messages of up to
/// `max_message_size` for the app, one message being assembled, `send_queue` events from the
/// app plus `write_buffer` bytes (and one frame) for the client, and, when permessage-deflate
/// is in use, a compressor and a decompressor (created at the first compressed message, not
/// at connect, so idle connections do not pay for them).
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use asgi_ws::WebSocketConfig;
///
/// let mut config = WebSocketConfig::default();
/// config.max_message_size = Some(1024 * 1024);
/// config.ping_interval = Some(Duration::from_secs(30));
/// config.deflate = None; // no permessage-deflate
/// assert_eq!(config.pong_timeout, Some(Duration::from_secs(20)));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WebSocketConfig {
    /// The largest message the client may send, in bytes after decompression. A message over
    /// it closes the connection with 1009 (message too big) before it is buffered; a message
    /// of exactly this size passes.
    ///
    /// Default is [`DEFAULT_MAX_MESSAGE_SIZE`] (16 MiB). Pass `None` to disable.
    pub max_message_size: Option<usize>,
    /// How often the server pings the client to check that it is alive (and to keep proxies
    /// from closing an idle connection).
    ///
    /// Default is [`DEFAULT_PING_INTERVAL`] (20 seconds). Pass `None` to disable pings.
    pub ping_interval: Option<Duration>,
    /// How long the server waits for the pong that answers its ping before it closes the
    /// connection with 1011. The timeout only runs while the server is reading from the
    /// client: while a slow app holds back reading, the deadline is pushed out.
    ///
    /// Default is [`DEFAULT_PONG_TIMEOUT`] (20 seconds). Pass `None` to disable (pings are
    /// still sent when `ping_interval` is set).
    pub pong_timeout: Option<Duration>,
    /// How long the server waits, after it sent a close frame, for the client's close frame
    /// (and for its own frames to be written) before it drops the connection.
    ///
    /// Default is [`DEFAULT_CLOSE_TIMEOUT`] (5 seconds). Pass `None` to wait without limit.
    pub close_timeout: Option<Duration>,
    /// When a client breaks the protocol (a malformed frame, invalid UTF-8, a message too
    /// big), how long the server waits for the app to finish with the messages read before
    /// the bad frame before it sends its close frame. The server stops reading at once; the
    /// app receives those messages, then `websocket.disconnect`, and what it sends before
    /// it reads the disconnect still goes out (an echo of the last good message, say). The
    /// close frame goes out as soon as the app reads the disconnect, or drops its `receive`,
    /// or returns.
    ///
    /// Default is [`DEFAULT_FAILURE_GRACE`] (1 second). Pass `None` to close at once: the
    /// app still receives the messages, but its answers to them are not sent.
    pub failure_grace: Option<Duration>,
    /// How many received messages wait for the app's `recv`. When the queue is full the
    /// server stops reading from the client (backpressure to the client); values below 1
    /// count as 1.
    ///
    /// Default is [`DEFAULT_RECEIVE_QUEUE`] (16).
    pub receive_queue: usize,
    /// How many events from the app wait to be written. When the queue is full the app's
    /// `send` waits (backpressure to the app); values below 1 count as 1.
    ///
    /// Default is [`DEFAULT_SEND_QUEUE`] (16).
    pub send_queue: usize,
    /// How many encoded bytes may wait for the socket before the server stops taking events
    /// from the app. The server also stops reading from the client while twice this much
    /// waits, so that pongs for a client that pings without reading cannot pile up.
    ///
    /// Default is [`DEFAULT_WRITE_BUFFER`] (64 KiB).
    pub write_buffer: usize,
    /// permessage-deflate (RFC 7692): negotiated when the client offers it.
    ///
    /// Default is `Some(DeflateConfig::default())`. Pass `None` to disable compression.
    pub deflate: Option<DeflateConfig>,
}

impl Default for WebSocketConfig {
    fn default() -> Self {
        WebSocketConfig {
            max_message_size: Some(DEFAULT_MAX_MESSAGE_SIZE),
            ping_interval: Some(DEFAULT_PING_INTERVAL),
            pong_timeout: Some(DEFAULT_PONG_TIMEOUT),
            close_timeout: Some(DEFAULT_CLOSE_TIMEOUT),
            failure_grace: Some(DEFAULT_FAILURE_GRACE),
            receive_queue: DEFAULT_RECEIVE_QUEUE,
            send_queue: DEFAULT_SEND_QUEUE,
            write_buffer: DEFAULT_WRITE_BUFFER,
            deflate: Some(DeflateConfig::default()),
        }
    }
}
