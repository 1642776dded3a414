//! The pump: one state machine that reads frames, writes frames, moves events to and from
//! the app, pings, and closes, all from a single `poll` (no task of its own, no lock on the
//! IO), so that reading goes on while a write waits and the other way round.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use asgi_core::{ReceiveEvent, SendEvent, WebSocketMessage};
use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio::time::{Instant, Sleep};
use tokio_util::io::poll_read_buf;
use tokio_util::sync::PollSender;

use crate::close;
use crate::config::WebSocketConfig;
use crate::connection::{AppTask, CloseInitiator, Closed, Link, Outgoing, Tail, lock};
use crate::deflate::{DeflateCodec, DeflateParams, InflateError};
use crate::frame::{
    self, ClosePayload, Control, Data, Head, MAX_CONTROL_PAYLOAD, OpCode, Utf8Stream,
};

/// The read buffer an idle connection holds: 4 KiB, enough for most messages in one read,
/// small enough for ten thousands of idle sockets.
const INITIAL_READ_BUFFER: usize = 4 * 1024;

/// Read and write buffers that grew past 64 KiB (for a large message) are freed once empty,
/// so that one large message does not keep its memory for the whole connection.
const BUFFER_KEEP: usize = 64 * 1024;

/// When reading a frame larger than what is buffered, the buffer grows by at most 1 MiB at a
/// time: memory follows the bytes that actually arrive, not the length a header claims.
const MAX_READ_STEP: usize = 1024 * 1024;

/// Where the connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Messages flow both ways.
    Open,
    /// The client broke the protocol. Reading has stopped; the app receives the messages
    /// read before the bad frame, then `websocket.disconnect`, and what it sends until it
    /// sees the disconnect still goes out. Then (or after the failure grace) the server
    /// sends its close frame.
    Failing,
    /// The server sent its close frame and reads until the client's (data is dropped).
    CloseSent,
    /// The close handshake is over (or failed): write what is buffered, shut the write side.
    Finishing,
    /// Done; the IO is dropped.
    Done,
}

/// A message arriving in several frames, or compressed.
#[derive(Debug)]
struct Partial {
    text: bool,
    compressed: bool,
    buf: Vec<u8>,
}

/// Ping/pong keepalive.
#[derive(Debug)]
struct Keepalive {
    interval: Duration,
    timeout: Option<Duration>,
    /// Fires for the next ping, or for the pong deadline while a ping is unanswered.
    timer: Pin<Box<Sleep>>,
    /// The unanswered ping's payload and when it was sent (only with a timeout).
    awaiting: Option<([u8; 8], Instant)>,
    pings: u64,
}

enum KeepaliveAction {
    Ping,
    Postpone,
    TimedOut,
}

pub(crate) struct Pump<IO> {
    io: IO,
    state: State,
    read_buf: BytesMut,
    /// Bytes the frame at the front of `read_buf` still needs.
    read_needed: usize,
    /// Payload bytes of the frame at the front of `read_buf` that were unmasked in place
    /// (and UTF-8 checked, for text) while the rest of the frame was still arriving.
    front_unmasked: usize,
    /// The UTF-8 check of the text message being read, fed as its bytes arrive.
    utf8: Utf8Stream,
    write_buf: BytesMut,
    write_high: usize,
    needs_flush: bool,
    max_message_size: Option<usize>,
    partial: Option<Partial>,
    deflate: Option<DeflateCodec>,
    /// Where received messages go; `None` once the app can no longer get them.
    to_app: Option<PollSender<ReceiveEvent>>,
    /// A message waiting for room in the app's queue; reading stops while there is one.
    pending: Option<ReceiveEvent>,
    from_app: mpsc::Receiver<Outgoing>,
    /// Every sender of the app's events is gone.
    from_app_done: bool,
    tail: Arc<Mutex<Tail>>,
    app: AppTask,
    /// The one `websocket.disconnect` of the connection, once known.
    disconnect: Option<(u16, String)>,
    initiator: Option<CloseInitiator>,
    keepalive: Option<Keepalive>,
    close_timeout: Option<Duration>,
    close_deadline: Option<Pin<Box<Sleep>>>,
    failure_grace: Option<Duration>,
    /// While `Failing`: when the server stops waiting for the app and sends its close frame.
    failure_deadline: Option<Pin<Box<Sleep>>>,
}

impl<IO: AsyncRead + AsyncWrite + Unpin> Pump<IO> {
    pub(crate) fn new(
        io: IO,
        link: Link,
        config: &WebSocketConfig,
        deflate: Option<DeflateParams>,
    ) -> Self {
        let Link {
            to_app,
            from_app,
            tail,
            app,
        } = link;
        let keepalive = config.ping_interval.map(|interval| Keepalive {
            interval,
            timeout: config.pong_timeout,
            timer: Box::pin(tokio::time::sleep(interval)),
            awaiting: None,
            pings: 0,
        });
        Pump {
            io,
            state: State::Open,
            read_buf: BytesMut::with_capacity(INITIAL_READ_BUFFER),
            read_needed: 0,
            front_unmasked: 0,
            utf8: Utf8Stream::default(),
            write_buf: BytesMut::new(),
            write_high: config.write_buffer.max(1),
            needs_flush: false,
            max_message_size: config.max_message_size,
            partial: None,
            deflate: deflate.map(DeflateCodec::new),
            to_app: Some(PollSender::new(to_app)),
            pending: None,
            from_app,
            from_app_done: false,
            tail,
            app,
            disconnect: None,
            initiator: None,
            keepalive,
            close_timeout: config.close_timeout,
            close_deadline: None,
            failure_grace: config.failure_grace,
            failure_deadline: None,
        }
    }

    /// Drives the connection until it is closed.
    pub(crate) fn poll_run<F: Future<Output = ()>>(
        &mut self,
        cx: &mut Context<'_>,
        mut shutdown: Pin<&mut F>,
    ) -> Poll<Closed> {
        loop {
            let mut progress = false;
            // `shutdown` and the app's exit are only polled while open or failing: both
            // leave these states.
            let open = matches!(self.state, State::Open | State::Failing);
            if open && shutdown.as_mut().poll(cx).is_ready() {
                match self.state {
                    State::Failing => self.finish_failure(),
                    _ => self.close_by_server(close::GOING_AWAY, "server shutting down"),
                }
                progress = true;
            }
            if matches!(self.state, State::Open | State::Failing) {
                if let Poll::Ready(exit) = self.app.poll_exit(cx) {
                    let failed = matches!(exit, Err(e) if !e.is_disconnected());
                    self.on_app_exit(failed);
                    progress = true;
                }
            }
            progress |= self.deliver_pending(cx);
            progress |= self.take_app_events(cx);
            progress |= self.read(cx);
            progress |= self.poll_failing(cx);
            progress |= self.poll_keepalive(cx);
            progress |= self.poll_close_deadline(cx);
            progress |= self.write(cx);
            if self.state == State::Done {
                return Poll::Ready(self.closed());
            }
            if !progress {
                return Poll::Pending;
            }
        }
    }

    fn closed(&self) -> Closed {
        let (code, reason) = self
            .disconnect
            .clone()
            .unwrap_or((close::ABNORMAL, String::new()));
        Closed {
            code,
            reason,
            initiator: self.initiator.unwrap_or(CloseInitiator::Client),
        }
    }

    // ---- the app's side ----

    /// Records the connection's one `websocket.disconnect` and ends the app's side: `recv`
    /// returns what is queued, the pending message, then the disconnect; `send` returns
    /// `Disconnected`. Later calls change nothing.
    fn set_disconnect(&mut self, code: u16, reason: String) {
        if self.disconnect.is_some() {
            return;
        }
        self.from_app.close();
        self.end_receiving(code, reason);
    }

    /// The receiving half of [`set_disconnect`](Self::set_disconnect): `recv` returns what
    /// is queued, the pending message, then the disconnect; `send` still works.
    fn end_receiving(&mut self, code: u16, reason: String) {
        if self.disconnect.is_some() {
            return;
        }
        {
            let mut tail = lock(&self.tail);
            tail.pending = self.pending.take();
            tail.disconnect = Some(ReceiveEvent::WebSocketDisconnect {
                code,
                reason: reason.clone(),
            });
        }
        // Dropping the sender wakes a `recv` that waits on an empty queue.
        self.to_app = None;
        self.partial = None;
        self.disconnect = Some((code, reason));
    }

    /// Queues a received message for the app, or keeps it as `pending` when the queue is full.
    fn deliver(&mut self, event: ReceiveEvent) {
        let Some(tx) = self.to_app.as_ref().and_then(PollSender::get_ref) else {
            return;
        };
        match tx.try_send(event) {
            Ok(()) => {}
            Err(TrySendError::Full(event)) => self.pending = Some(event),
            // The app dropped its `receive`: nobody reads messages any more.
            Err(TrySendError::Closed(_)) => self.to_app = None,
        }
    }

    fn deliver_pending(&mut self, cx: &mut Context<'_>) -> bool {
        if self.pending.is_none() {
            return false;
        }
        let Some(to_app) = &mut self.to_app else {
            return false;
        };
        match to_app.poll_reserve(cx) {
            Poll::Ready(Ok(())) => {
                if let Some(event) = self.pending.take() {
                    // The slot was just reserved; an error means the app dropped `receive`.
                    let _ = to_app.send_item(event);
                }
                true
            }
            Poll::Ready(Err(_)) => {
                self.to_app = None;
                self.pending = None;
                true
            }
            Poll::Pending => false,
        }
    }

    fn take_app_events(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = false;
        while matches!(self.state, State::Open | State::Failing)
            && !self.from_app_done
            && self.write_buf.len() < self.write_high
        {
            match self.from_app.poll_recv(cx) {
                Poll::Ready(Some(Outgoing::Event(event))) => self.on_app_event(event),
                // Only sent before accept, where the handshake handles it.
                Poll::Ready(Some(Outgoing::Violation(_))) => {}
                Poll::Ready(None) => self.from_app_done = true,
                Poll::Pending => break,
            }
            progress = true;
        }
        progress
    }

    fn on_app_event(&mut self, event: SendEvent) {
        match event {
            SendEvent::WebSocketSend(message) => self.write_message(message),
            // The client's failure has the last word: the app has not seen it yet.
            SendEvent::WebSocketClose { .. } if self.state == State::Failing => {
                self.finish_failure();
            }
            SendEvent::WebSocketClose { code, reason } => {
                self.initiator.get_or_insert(CloseInitiator::App);
                frame::write_close(&mut self.write_buf, code, &reason);
                self.enter(State::CloseSent);
            }
            // The protocol checker lets nothing else through after accept.
            other => tracing::debug!(event = other.type_name(), "ignored event after accept"),
        }
    }

    fn write_message(&mut self, message: WebSocketMessage) {
        let (opcode, payload): (OpCode, &[u8]) = match &message {
            WebSocketMessage::Text(text) => (OpCode::Data(Data::Text), text.as_bytes()),
            WebSocketMessage::Binary(bytes) => (OpCode::Data(Data::Binary), bytes),
        };
        match &mut self.deflate {
            None => frame::write_frame(&mut self.write_buf, opcode, false, payload),
            Some(deflate) => match deflate.compress(payload) {
                Ok(compressed) => frame::write_frame(&mut self.write_buf, opcode, true, compressed),
                Err(e) => {
                    // The compressor's state no longer matches the client's decompressor.
                    tracing::error!(error = %e, "permessage-deflate compression failed");
                    self.close_by_server(close::INTERNAL_ERROR, "compression failed");
                }
            },
        }
    }

    /// The app returned: send what it queued, then close (1000, or 1011 after a failure).
    fn on_app_exit(&mut self, failed: bool) {
        while matches!(self.state, State::Open | State::Failing) {
            match self.from_app.try_recv() {
                Ok(Outgoing::Event(event)) => self.on_app_event(event),
                Ok(Outgoing::Violation(_)) => {}
                Err(_) => break,
            }
        }
        if self.state == State::Failing {
            self.finish_failure();
        }
        if self.state == State::Open {
            let code = if failed {
                close::INTERNAL_ERROR
            } else {
                close::NORMAL
            };
            self.initiator.get_or_insert(CloseInitiator::App);
            self.set_disconnect(code, String::new());
            frame::write_close(&mut self.write_buf, code, "");
            self.enter(State::CloseSent);
        }
    }

    // ---- closing ----

    fn enter(&mut self, state: State) {
        self.state = state;
        if matches!(state, State::CloseSent | State::Finishing) && self.close_deadline.is_none() {
            if let Some(timeout) = self.close_timeout {
                self.close_deadline = Some(Box::pin(tokio::time::sleep(timeout)));
            }
        }
    }

    /// The server closes an open connection: the app learns `code` at once, the client gets
    /// a close frame, and the server waits for the client's.
    fn close_by_server(&mut self, code: u16, reason: &str) {
        if self.state != State::Open {
            return;
        }
        self.initiator.get_or_insert(CloseInitiator::Server);
        self.set_disconnect(code, reason.to_owned());
        frame::write_close(&mut self.write_buf, code, reason);
        self.enter(State::CloseSent);
    }

    /// The client broke the protocol: fail the connection with `code` (RFC 6455 7.1.7).
    ///
    /// Messages read before the bad frame (often in the same read) are still the app's: it
    /// receives them, then `websocket.disconnect` with `code`, and what it sends in answer
    /// goes out before the close frame. The server stops reading at once, and waits for the
    /// app at most `failure_grace`.
    fn fail(&mut self, code: u16, reason: &str) {
        tracing::debug!(code, reason, "failing WebSocket connection");
        match (self.state, self.failure_grace) {
            (State::Open, Some(grace)) => {
                self.initiator.get_or_insert(CloseInitiator::Server);
                self.end_receiving(code, reason.to_owned());
                self.failure_deadline = Some(Box::pin(tokio::time::sleep(grace)));
                self.state = State::Failing;
            }
            (State::Open, None) => self.close_by_server(code, reason),
            (State::Failing, _) => {}
            // Our close frame is out already; stop reading.
            _ => self.enter(State::Finishing),
        }
    }

    /// While `Failing`: sends the close frame once the app has seen the disconnect (it
    /// asked for the event after the messages read before the bad frame, or dropped its
    /// `receive`), or once the failure grace is over.
    fn poll_failing(&mut self, cx: &mut Context<'_>) -> bool {
        if self.state != State::Failing {
            return false;
        }
        let seen = {
            let mut tail = lock(&self.tail);
            if !tail.disconnect_seen {
                tail.waker = Some(cx.waker().clone());
            }
            tail.disconnect_seen
        };
        let timed_out = self
            .failure_deadline
            .as_mut()
            .is_some_and(|deadline| deadline.as_mut().poll(cx).is_ready());
        if !seen && !timed_out {
            return false;
        }
        if timed_out && !seen {
            tracing::debug!("the app did not read the disconnect within the failure grace");
        }
        self.finish_failure();
        true
    }

    /// Ends `Failing`: what the app sent before it saw the disconnect goes out, then the
    /// close frame with the failure's code; `send` returns `Disconnected` from now on.
    fn finish_failure(&mut self) {
        if self.state != State::Failing {
            return;
        }
        self.state = State::CloseSent;
        loop {
            match self.from_app.try_recv() {
                Ok(Outgoing::Event(SendEvent::WebSocketSend(message))) => {
                    self.write_message(message);
                }
                // A close or anything else the app sent is replaced by the failure.
                Ok(_) => {}
                Err(_) => break,
            }
        }
        self.from_app.close();
        self.failure_deadline = None;
        let (code, reason) = self
            .disconnect
            .clone()
            .unwrap_or((close::PROTOCOL_ERROR, String::new()));
        frame::write_close(&mut self.write_buf, code, &reason);
        self.enter(State::CloseSent);
    }

    fn on_connection_lost(&mut self) {
        self.initiator.get_or_insert(CloseInitiator::Client);
        self.set_disconnect(close::ABNORMAL, String::new());
        self.state = State::Done;
    }

    fn on_close_frame(&mut self, payload: &[u8]) {
        let parsed = frame::parse_close(payload);
        if self.state == State::CloseSent {
            // The client answered our close: the handshake is complete.
            let (code, reason) = match parsed {
                Ok(ClosePayload::Status(code, reason)) => (code, reason),
                _ => (close::NO_STATUS, String::new()),
            };
            self.set_disconnect(code, reason);
            self.enter(State::Finishing);
            return;
        }
        self.initiator.get_or_insert(CloseInitiator::Client);
        match parsed {
            Ok(ClosePayload::Empty) => {
                self.set_disconnect(close::NO_STATUS, String::new());
                frame::write_close(&mut self.write_buf, close::NO_STATUS, "");
            }
            Ok(ClosePayload::Status(code, reason)) => {
                self.set_disconnect(code, reason);
                frame::write_close(&mut self.write_buf, code, "");
            }
            Err((code, reason)) => {
                self.initiator = Some(CloseInitiator::Server);
                self.set_disconnect(code, reason.to_owned());
                frame::write_close(&mut self.write_buf, code, reason);
            }
        }
        self.enter(State::Finishing);
    }

    fn poll_close_deadline(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(deadline) = &mut self.close_deadline else {
            return false;
        };
        if self.state == State::Done || deadline.as_mut().poll(cx).is_pending() {
            return false;
        }
        self.set_disconnect(close::ABNORMAL, String::new());
        self.state = State::Done;
        true
    }

    // ---- keepalive ----

    fn poll_keepalive(&mut self, cx: &mut Context<'_>) -> bool {
        if self.state != State::Open {
            return false;
        }
        let paused = self.pending.is_some();
        let Some(keepalive) = &mut self.keepalive else {
            return false;
        };
        if keepalive.timer.as_mut().poll(cx).is_pending() {
            return false;
        }
        let action = match (keepalive.awaiting, keepalive.timeout) {
            // Reading is held back by the app, so a pong may be waiting unread.
            (Some(_), Some(_)) if paused => KeepaliveAction::Postpone,
            (Some(_), Some(_)) => KeepaliveAction::TimedOut,
            _ => KeepaliveAction::Ping,
        };
        let now = Instant::now();
        match action {
            KeepaliveAction::Postpone => {
                if let Some(timeout) = keepalive.timeout {
                    keepalive.timer.as_mut().reset(now + timeout);
                }
            }
            KeepaliveAction::Ping => {
                keepalive.pings += 1;
                let payload = keepalive.pings.to_be_bytes();
                let next = match keepalive.timeout {
                    Some(timeout) => {
                        keepalive.awaiting = Some((payload, now));
                        now + timeout
                    }
                    None => now + keepalive.interval,
                };
                keepalive.timer.as_mut().reset(next);
                frame::write_frame(
                    &mut self.write_buf,
                    OpCode::Control(Control::Ping),
                    false,
                    &payload,
                );
            }
            KeepaliveAction::TimedOut => {
                let reason = "keepalive ping timeout";
                tracing::debug!("closing WebSocket: {reason}");
                self.initiator.get_or_insert(CloseInitiator::Server);
                self.set_disconnect(close::INTERNAL_ERROR, reason.to_owned());
                frame::write_close(&mut self.write_buf, close::INTERNAL_ERROR, reason);
                // The client does not answer; do not wait for its close frame.
                self.enter(State::Finishing);
            }
        }
        true
    }

    fn on_pong(&mut self, payload: &[u8]) {
        let Some(keepalive) = &mut self.keepalive else {
            return;
        };
        if let Some((ping, sent)) = keepalive.awaiting {
            if ping[..] == *payload {
                keepalive.awaiting = None;
                keepalive.timer.as_mut().reset(sent + keepalive.interval);
            }
        }
    }

    // ---- reading ----

    fn read(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = false;
        loop {
            if !matches!(self.state, State::Open | State::CloseSent) {
                return progress;
            }
            // Backpressure: a full app queue, or a client that pings without reading.
            let paused = (self.pending.is_some() && self.state == State::Open)
                || self.write_buf.len() >= 2 * self.write_high;
            if paused {
                return progress;
            }
            if self.next_frame() {
                progress = true;
                continue;
            }
            if self.read_buf.is_empty() && self.read_buf.capacity() > BUFFER_KEEP {
                self.read_buf = BytesMut::with_capacity(INITIAL_READ_BUFFER);
            }
            let want = self.read_needed.clamp(1024, MAX_READ_STEP);
            if self.read_buf.capacity() - self.read_buf.len() < want {
                self.read_buf.reserve(want.max(INITIAL_READ_BUFFER));
            }
            match poll_read_buf(Pin::new(&mut self.io), cx, &mut self.read_buf) {
                Poll::Ready(Ok(0)) => {
                    self.on_connection_lost();
                    return true;
                }
                Poll::Ready(Ok(_)) => progress = true,
                Poll::Ready(Err(e)) => {
                    tracing::debug!(error = %e, "WebSocket read failed");
                    self.on_connection_lost();
                    return true;
                }
                Poll::Pending => return progress,
            }
        }
    }

    /// Handles the frame at the front of `read_buf`; false when more bytes are needed.
    fn next_frame(&mut self) -> bool {
        let head = match frame::parse_head(&self.read_buf) {
            Ok(Some(head)) => head,
            Ok(None) => {
                self.read_needed = 0;
                return false;
            }
            Err(reason) => {
                self.fail(close::PROTOCOL_ERROR, reason);
                return true;
            }
        };
        let len = match self.check_head(&head) {
            Ok(len) => len,
            Err((code, reason)) => {
                self.fail(code, reason);
                return true;
            }
        };
        let total = head.header_len + len;
        if self.read_buf.len() < total {
            self.read_needed = total - self.read_buf.len();
            return self.check_arriving_text(&head);
        }
        self.read_needed = 0;
        self.read_buf.advance(head.header_len);
        let mut payload = self.read_buf.split_to(len);
        let checked = std::mem::take(&mut self.front_unmasked);
        if let Some(mask) = head.mask {
            frame::unmask(&mut payload[checked..], mask, checked);
        }
        self.on_frame(&head, payload, checked);
        true
    }

    /// Checks the UTF-8 of an uncompressed text frame while its payload is still arriving,
    /// so that invalid text fails the connection at once, not when the frame is complete
    /// (a large frame can take long to arrive, or never end). The bytes checked are
    /// unmasked in place. True when the connection failed.
    fn check_arriving_text(&mut self, head: &Head) -> bool {
        let text = match head.opcode {
            OpCode::Data(Data::Text) => !head.rsv1,
            OpCode::Data(Data::Continue) => self
                .partial
                .as_ref()
                .is_some_and(|partial| partial.text && !partial.compressed),
            _ => false,
        };
        // `check_head` fails unmasked frames.
        let Some(mask) = head.mask.filter(|_| text && self.state == State::Open) else {
            return false;
        };
        let arrived = self.read_buf.len() - head.header_len;
        if arrived <= self.front_unmasked {
            return false;
        }
        if head.opcode == OpCode::Data(Data::Text) && self.front_unmasked == 0 {
            self.utf8 = Utf8Stream::default();
        }
        let new = &mut self.read_buf[head.header_len + self.front_unmasked..];
        frame::unmask(new, mask, self.front_unmasked);
        let valid = self.utf8.feed(new);
        self.front_unmasked = arrived;
        if !valid {
            self.fail(close::INVALID_PAYLOAD, "text is not UTF-8");
        }
        !valid
    }

    /// Checks what a header alone can tell, before its payload is buffered; gives the
    /// payload length, or the close code and reason to fail with.
    fn check_head(&self, head: &Head) -> Result<usize, (u16, &'static str)> {
        if head.mask.is_none() {
            return Err((close::PROTOCOL_ERROR, "unmasked client frame"));
        }
        if head.rsv23 {
            return Err((close::PROTOCOL_ERROR, "reserved bits set"));
        }
        let too_big = (close::MESSAGE_TOO_BIG, "message too big");
        let len = usize::try_from(head.payload_len).map_err(|_| too_big)?;
        let open = self.state == State::Open;
        let (compressed, so_far) = match head.opcode {
            OpCode::Control(_) => {
                if !head.fin {
                    return Err((close::PROTOCOL_ERROR, "fragmented control frame"));
                }
                if len > MAX_CONTROL_PAYLOAD {
                    return Err((close::PROTOCOL_ERROR, "control frame over 125 bytes"));
                }
                if head.rsv1 {
                    return Err((close::PROTOCOL_ERROR, "RSV1 set on a control frame"));
                }
                return Ok(len);
            }
            OpCode::Data(Data::Continue) => {
                if head.rsv1 {
                    return Err((close::PROTOCOL_ERROR, "RSV1 set on a continuation frame"));
                }
                match &self.partial {
                    Some(partial) => (partial.compressed, partial.buf.len()),
                    None if open => {
                        return Err((
                            close::PROTOCOL_ERROR,
                            "continuation frame without a message",
                        ));
                    }
                    None => (false, 0),
                }
            }
            _ => {
                if head.rsv1 && self.deflate.is_none() {
                    return Err((close::PROTOCOL_ERROR, "RSV1 set without permessage-deflate"));
                }
                if self.partial.is_some() && open {
                    return Err((
                        close::PROTOCOL_ERROR,
                        "new message before the last one ended",
                    ));
                }
                (head.rsv1, 0)
            }
        };
        if let Some(max) = self.max_message_size {
            // Compressed data can be a little larger than what it decompresses to; the
            // decompressed size is checked as it is produced.
            let limit = if compressed {
                max.saturating_add(max / 1024).saturating_add(64)
            } else {
                max
            };
            if len > limit.saturating_sub(if compressed { 0 } else { so_far }) {
                return Err(too_big);
            }
        }
        Ok(len)
    }

    /// Handles a complete frame; `checked` payload bytes were UTF-8 checked as they arrived.
    fn on_frame(&mut self, head: &Head, payload: BytesMut, checked: usize) {
        match head.opcode {
            OpCode::Control(Control::Close) => self.on_close_frame(&payload),
            OpCode::Control(Control::Ping) => {
                if self.state == State::Open {
                    frame::write_frame(
                        &mut self.write_buf,
                        OpCode::Control(Control::Pong),
                        false,
                        &payload,
                    );
                }
            }
            OpCode::Control(Control::Pong) => self.on_pong(&payload),
            // Data after our close frame is dropped (RFC 6455 1.4).
            OpCode::Data(_) if self.state != State::Open => {}
            OpCode::Data(_) => self.on_data(head, payload, checked),
            // Reserved opcodes fail in `parse_head`.
            OpCode::Control(Control::Reserved(_)) => {}
        }
    }

    fn on_data(&mut self, head: &Head, payload: BytesMut, checked: usize) {
        let (text, compressed) = match (head.opcode, &self.partial) {
            (OpCode::Data(Data::Text), _) => (true, head.rsv1),
            (OpCode::Data(Data::Binary), _) => (false, head.rsv1),
            (_, Some(partial)) => (partial.text, partial.compressed),
            // `check_head` fails a continuation without a message.
            (_, None) => return self.fail(close::PROTOCOL_ERROR, "unexpected frame"),
        };
        if head.fin && !compressed && self.partial.is_none() {
            // One frame, uncompressed: the common case, with no copy for binary.
            let message = if text {
                match String::from_utf8(payload.to_vec()) {
                    Ok(text) => WebSocketMessage::Text(text),
                    Err(_) => return self.fail(close::INVALID_PAYLOAD, "text is not UTF-8"),
                }
            } else {
                WebSocketMessage::Binary(payload.freeze())
            };
            return self.deliver(ReceiveEvent::WebSocketReceive(message));
        }
        if head.opcode == OpCode::Data(Data::Text) && checked == 0 {
            self.utf8 = Utf8Stream::default();
        }
        let mut partial = self.partial.take().unwrap_or(Partial {
            text,
            compressed,
            buf: Vec::new(),
        });
        let valid = if compressed {
            let Some(deflate) = &mut self.deflate else {
                return self.fail(close::PROTOCOL_ERROR, "RSV1 set without permessage-deflate");
            };
            let before = partial.buf.len();
            match deflate.decompress(&payload, head.fin, &mut partial.buf, self.max_message_size) {
                Ok(()) => {}
                Err(InflateError::TooBig) => {
                    return self.fail(close::MESSAGE_TOO_BIG, "message too big");
                }
                Err(InflateError::Corrupt) => {
                    return self.fail(close::INVALID_PAYLOAD, "invalid compressed data");
                }
            }
            !text || self.utf8.feed(&partial.buf[before..])
        } else {
            reserve_within(&mut partial.buf, payload.len(), self.max_message_size);
            partial.buf.extend_from_slice(&payload);
            !text || self.utf8.feed(&payload[checked..])
        };
        if !valid || (text && head.fin && !self.utf8.is_complete()) {
            return self.fail(close::INVALID_PAYLOAD, "text is not UTF-8");
        }
        if !head.fin {
            self.partial = Some(partial);
            return;
        }
        let message = if text {
            match String::from_utf8(partial.buf) {
                Ok(text) => WebSocketMessage::Text(text),
                Err(_) => return self.fail(close::INVALID_PAYLOAD, "text is not UTF-8"),
            }
        } else {
            WebSocketMessage::Binary(Bytes::from(partial.buf))
        };
        self.deliver(ReceiveEvent::WebSocketReceive(message));
    }

    // ---- writing ----

    fn write(&mut self, cx: &mut Context<'_>) -> bool {
        if self.state == State::Done {
            return false;
        }
        let mut progress = false;
        while !self.write_buf.is_empty() {
            match Pin::new(&mut self.io).poll_write(cx, &self.write_buf) {
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => {
                    self.on_connection_lost();
                    return true;
                }
                Poll::Ready(Ok(n)) => {
                    self.write_buf.advance(n);
                    self.needs_flush = true;
                    progress = true;
                }
                Poll::Pending => return progress,
            }
        }
        if self.write_buf.capacity() > BUFFER_KEEP {
            self.write_buf = BytesMut::new();
        }
        if self.needs_flush {
            match Pin::new(&mut self.io).poll_flush(cx) {
                Poll::Ready(Ok(())) => {
                    self.needs_flush = false;
                    progress = true;
                }
                Poll::Ready(Err(_)) => {
                    self.on_connection_lost();
                    return true;
                }
                Poll::Pending => return progress,
            }
        }
        if self.state == State::Finishing {
            // The server closes the TCP connection first (RFC 6455 7.1.1); errors do not
            // matter any more.
            if Pin::new(&mut self.io).poll_shutdown(cx).is_ready() {
                self.state = State::Done;
                progress = true;
            }
        }
        progress
    }
}

/// Makes room for `additional` more bytes in a message being assembled: doubling (so that
/// many fragments cost amortized constant copies) but never past `limit`, the message size
/// limit, which `check_head` already holds the message to: `reserve` alone could double a
/// buffer near the limit to twice the limit.
fn reserve_within(buf: &mut Vec<u8>, additional: usize, limit: Option<usize>) {
    if buf.capacity() - buf.len() >= additional {
        return;
    }
    let needed = buf.len() + additional;
    let doubled = (buf.len() * 2).max(needed);
    let target = limit.map_or(doubled, |limit| doubled.min(limit.max(needed)));
    buf.reserve_exact(target - buf.len());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_buffers_double_but_stay_within_the_limit() {
        let limit = 1_000_000;
        let mut buf = Vec::new();
        let mut reallocations = 0;
        while buf.len() + 4096 <= limit {
            let before = buf.capacity();
            reserve_within(&mut buf, 4096, Some(limit));
            buf.extend_from_slice(&[0; 4096]);
            reallocations += usize::from(buf.capacity() != before);
            assert!(buf.capacity() <= limit, "capacity {}", buf.capacity());
        }
        // Doubling: about log2(limit / 4096) growths, not one per fragment.
        assert!(reallocations < 12, "{reallocations} reallocations");

        let mut unlimited = Vec::new();
        reserve_within(&mut unlimited, 10, None);
        assert!(unlimited.capacity() >= 10);
    }
}
