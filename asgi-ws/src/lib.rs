//! The WebSocket protocol for ASGI apps: the handshake rules, the event pump between a
//! WebSocket connection and an [`App`](asgi_core::App), permessage-deflate, and the
//! [`WebSocket`] type for app authors.
//!
//! The crate knows nothing of HTTP servers: it validates a handshake from request headers
//! and runs over any `AsyncRead + AsyncWrite + Unpin` IO (an upgraded hyper connection, a TCP
//! or Unix socket, an in-memory duplex).
//!
//! # How a server uses it
//!
//! 1. [`handshake::is_websocket_upgrade`] tells a WebSocket request from plain HTTP;
//!    [`UpgradeRequest::from_parts`](handshake::UpgradeRequest::from_parts) validates it (on
//!    error answer [`HandshakeError::status`](handshake::HandshakeError::status), 400 or 426).
//!    Over HTTP/2, a `CONNECT` with `:protocol websocket` (RFC 8441) is validated with
//!    [`UpgradeRequest::extended_connect`](handshake::UpgradeRequest::extended_connect) and
//!    accepted with `200` instead of 101.
//! 2. Build the [`WebSocketScope`](asgi_core::WebSocketScope) (path, headers, client, scheme
//!    from [`handshake::scheme`]) and call [`start`], which hands the app's [`AppRun`] to
//!    your spawner (the crate makes no runtime decision of its own), delivers
//!    `websocket.connect` and resolves with the app's answer, a [`HandshakeOutcome`]:
//!    `Accept` (answer 101 with [`Accepted::response_headers`]), `Close` (answer 403),
//!    `Deny` (answer the app's own response, body streamed from [`DenialBody`]) or `Failed`
//!    (answer 500).
//! 3. After the 101, hand the upgraded IO to [`Accepted::run`], with the drain deadline as
//!    its shutdown future. It returns how the connection [`Closed`].
//!
//! # Close codes the app sees
//!
//! Exactly one `websocket.disconnect` reaches the app on every path (later `recv` calls
//! repeat it, as the [`Receiver`](asgi_core::Receiver) contract says), and `send` returns
//! `Disconnected` from then on:
//!
//! | What happened | `code` in `websocket.disconnect` |
//! |---|---|
//! | the client sent a close frame | its code, 1005 when it had none |
//! | the app closed (`websocket.close`) | the code of the client's answering close frame |
//! | the network dropped, or no close answer within the close timeout | 1006 |
//! | a message over [`WebSocketConfig::max_message_size`] | 1009 |
//! | a protocol error by the client | 1002, or 1007 for invalid UTF-8 or compressed data |
//! | no pong within [`WebSocketConfig::pong_timeout`] | 1011 |
//! | the `shutdown` future of [`Accepted::run`] resolved | 1001 |
//! | `websocket.close` before accept | the app's code |
//! | a denial response, or a failed handshake | 1006 |
//!
//! When the app returns while the socket is open, the server closes it with 1000, or 1011
//! after an `Err` or a panic (logged through `tracing`).
//!
//! # Backpressure
//!
//! Both directions go through bounded queues ([`WebSocketConfig::receive_queue`],
//! [`WebSocketConfig::send_queue`], [`WebSocketConfig::write_buffer`]): an app that does not
//! `recv` stops the reading of frames (and the client's TCP window fills); a client that does
//! not read makes the app's `send` wait. Memory per connection never grows without bound.
//!
//! # The WebSocket implementation
//!
//! Frames are parsed and formatted by `tungstenite` (its `FrameHeader`); the protocol above
//! them (fragmentation, control frames, the close handshake, UTF-8 checks, keepalive,
//! permessage-deflate) is this crate's own, over `flate2` with the `zlib-rs` backend (pure
//! Rust, with zlib's window-size control). The candidates and why they lost:
//!
//! - `tungstenite`'s protocol layer rejects any frame with RSV1 set, so it cannot carry
//!   permessage-deflate, and by default it allocates a 128 KiB read buffer per connection
//!   up front.
//! - `soketto` (feature `deflate`) inflates every message with a fresh decompressor,
//!   ignoring the client's context takeover (the RFC 7692 default), declines
//!   `server_max_window_bits=8`, needs the C zlib, and splits the socket with a lock.
//! - `yawc` depends on hyper, hyper-util and an HTTP client stack even with default
//!   features off; this crate must not depend on hyper.
//!
//! Owning the protocol layer also lets the pump drive reading, writing, the app's queues and
//! the timers from a single `poll` with no lock on the socket, and start idle connections
//! with a 4 KiB read buffer and no compressor (created at the first compressed message).
//!
//! # When the client breaks the protocol
//!
//! A malformed frame, invalid UTF-8 or a message over the limit fails the connection (RFC
//! 6455 7.1.7), but what was read before it is not lost: the server stops reading, the app
//! receives the messages that came before the bad frame (often in the same read), then
//! `websocket.disconnect` with the failure's code, and what it sends before it reads the
//! disconnect (its answers to those messages) goes out before the close frame. The server
//! waits for that at most [`WebSocketConfig::failure_grace`]. Text is checked for UTF-8 as it
//! arrives, inside a frame and across fragments, so invalid text fails at its first bad byte,
//! not when its frame or message ends (compressed text: when each frame is inflated).
//!
//! # Conformance
//!
//! Against the Autobahn|Testsuite fuzzing client (the testbed example's `/ws/echo`, an echo
//! app), no case FAILED or UNIMPLEMENTED, permessage-deflate (categories 12 and 13)
//! included. Messages read before a protocol error are answered before the close, and UTF-8
//! is checked as it arrives, so the cases of categories 3, 4, 5 and 6.4 that used to be
//! NON-STRICT pass as OK.
//!
//! # Layout
//!
//! - [`handshake`]: validating an upgrade request, [`HandshakeError`] and its
//!   status, the accept key, subprotocols, the scope's scheme.
//! - [`deflate`]: permessage-deflate offers, negotiation and settings.
//! - [`config`]: [`WebSocketConfig`], limits, timeouts and queue sizes with their defaults.
//! - [`connection`]: [`start`], [`HandshakeOutcome`], [`Accepted::run`], [`Denial`],
//!   [`Closed`].
//! - [`websocket`]: [`WebSocket`] and [`Message`], the API for app authors.
//! - [`close`]: close codes and which may be sent.
//! - `frame` (private): frame headers, masking, close payloads.
//! - `pump` (private): the state machine of an open connection.

pub mod close;
pub mod config;
pub mod connection;
pub mod deflate;
mod frame;
pub mod handshake;
mod pump;
pub mod websocket;

pub use config::WebSocketConfig;
pub use connection::{
    Accepted, AppRun, CloseInitiator, Closed, Denial, DenialBody, HandshakeOutcome, start,
};
pub use handshake::{HandshakeError, UpgradeRequest};
pub use websocket::{Message, WebSocket};
