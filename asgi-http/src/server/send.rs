//! The app's `send` for one HTTP request ([`ResponseSink`]): the response's state machine.
//!
//! Nothing reaches the connection until the first body event (or `pathsend`): then, when the
//! start and that event are the whole response, the head and body go to hyper as one full
//! response, with no channel (the fast path). Otherwise the head goes out with a streaming
//! body fed by a bounded channel, so that a slow client makes `send` wait.

use std::path::Path;
use std::sync::Arc;

use asgi_core::{EventSink, ProtocolError, SendError, SendEvent, async_trait};
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use tokio::sync::mpsc;

use super::body::{ResponseBody, ResponseChunk, ServerExchange, response, server_response};
use super::exchange::Progress;
use crate::file::FileChunks;

/// How many body events may wait between the app and the connection: enough to keep the
/// connection writing while the app makes its next chunk, few enough that a slow client
/// stops the app quickly (hyper buffers what it writes on top of this). Not a setting: it
/// only trades a little memory per response for throughput.
const RESPONSE_BODY_CHANNEL_CAPACITY: usize = 4;

enum State {
    /// Nothing sent yet.
    Waiting,
    /// `http.response.start` came; it goes out with the first body event.
    Started {
        status: StatusCode,
        headers: HeaderMap,
        trailers: bool,
    },
    /// The head went out; the body streams through the channel.
    Streaming {
        tx: mpsc::Sender<ResponseChunk>,
        trailers: bool,
        /// Trailers of `http.response.trailers` events with `more_trailers`, merged until
        /// the last one.
        pending_trailers: HeaderMap,
    },
    /// The app sent its whole response.
    Done,
}

/// The app's `send` for one HTTP request.
///
/// Every event goes through [`SendProtocol`](asgi_core::protocol::SendProtocol) first; a
/// violation is logged and returned as [`SendError::Protocol`]. When the sink is dropped (the
/// app returned, failed or panicked) before the response started, the client gets a 500;
/// when it is dropped mid-body, the body ends with an error so the response is aborted.
pub(crate) struct ResponseSink {
    protocol: asgi_core::protocol::SendProtocol,
    exchange: Arc<ServerExchange>,
    state: State,
    trailers_allowed: bool,
}

impl std::fmt::Debug for ResponseSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseSink")
            .field("protocol", &self.protocol)
            .finish_non_exhaustive()
    }
}

impl ResponseSink {
    /// A sink for one request. `trailers_allowed` is false for an HTTP/1 request without
    /// `TE: trailers`.
    pub(crate) fn new(
        protocol: asgi_core::protocol::SendProtocol,
        exchange: Arc<ServerExchange>,
        trailers_allowed: bool,
    ) -> Self {
        ResponseSink {
            protocol,
            exchange,
            state: State::Waiting,
            trailers_allowed,
        }
    }

    /// Checks that `event` may be sent now: the client is still there, and the protocol
    /// allows it (a violation is logged).
    fn admit(&mut self, event: &SendEvent) -> Result<(), SendError> {
        if !matches!(self.state, State::Done) && self.exchange.is_client_gone() {
            return Err(SendError::Disconnected);
        }
        if let Err(e) = self.protocol.check(event) {
            tracing::error!(
                event = e.received(),
                expected = e.expected(),
                "ASGI protocol error: {e}"
            );
            return Err(SendError::Protocol(e));
        }
        Ok(())
    }

    /// The fast path: the start and this final body are the whole response, handed to the
    /// connection at once, with no channel.
    fn whole_response(&mut self, body: Bytes) -> Result<(), SendError> {
        let State::Started {
            status, headers, ..
        } = std::mem::replace(&mut self.state, State::Done)
        else {
            // The protocol check admits a final body only after the start.
            return Ok(());
        };
        let response = response(status, headers, ResponseBody::full(body));
        sent(self.exchange.send_head(response, true))
    }

    async fn body(&mut self, body: Bytes, more_body: bool) -> Result<(), SendError> {
        if !more_body
            && matches!(
                self.state,
                State::Started {
                    trailers: false,
                    ..
                }
            )
        {
            return self.whole_response(body);
        }
        match std::mem::replace(&mut self.state, State::Done) {
            State::Started {
                status,
                headers,
                trailers,
            } => {
                let (tx, rx) = mpsc::channel(RESPONSE_BODY_CHANNEL_CAPACITY);
                let stream = ResponseBody::stream(None, Some(rx), self.trailers_allowed);
                sent(
                    self.exchange
                        .send_head(response(status, headers, stream), false),
                )?;
                self.state = State::Streaming {
                    tx,
                    trailers,
                    pending_trailers: HeaderMap::new(),
                };
            }
            other => self.state = other,
        }
        let State::Streaming { tx, trailers, .. } = &self.state else {
            // The protocol check admits a body event only after the start.
            return Ok(());
        };
        if !more_body && !*trailers {
            tx.send(ResponseChunk::Last(body))
                .await
                .map_err(|_| SendError::Disconnected)?;
            self.state = State::Done;
            self.exchange.set_progress(Progress::Complete);
        } else if !body.is_empty() {
            tx.send(ResponseChunk::Data(body))
                .await
                .map_err(|_| SendError::Disconnected)?;
        }
        Ok(())
    }

    async fn trailers(&mut self, headers: HeaderMap, more_trailers: bool) -> Result<(), SendError> {
        // The protocol check admits trailers only after a body sent with `trailers` set,
        // which streams.
        let State::Streaming {
            tx,
            pending_trailers,
            ..
        } = &mut self.state
        else {
            return Ok(());
        };
        if pending_trailers.is_empty() {
            *pending_trailers = headers;
        } else {
            merge(pending_trailers, headers);
        }
        if more_trailers {
            return Ok(());
        }
        let trailers = std::mem::take(pending_trailers);
        tx.send(ResponseChunk::Trailers(trailers))
            .await
            .map_err(|_| SendError::Disconnected)?;
        self.state = State::Done;
        self.exchange.set_progress(Progress::Complete);
        Ok(())
    }

    async fn pathsend(&mut self, path: &Path) -> Result<(), SendError> {
        let file = match FileChunks::open_absolute(path).await.map(Box::new) {
            Ok(file) => file,
            Err(e) => {
                // The state stays as it is (started): when the app returns, the client gets
                // a 500.
                tracing::error!(
                    path = %path.display(),
                    error = %e,
                    "http.response.pathsend: cannot send the file"
                );
                return Err(SendError::Io(e.kind()));
            }
        };
        let State::Started {
            status,
            headers,
            trailers,
        } = std::mem::replace(&mut self.state, State::Done)
        else {
            // The protocol check admits `pathsend` only right after the start.
            return Ok(());
        };
        if trailers {
            let (tx, rx) = mpsc::channel(RESPONSE_BODY_CHANNEL_CAPACITY);
            let body = ResponseBody::stream(Some(file), Some(rx), self.trailers_allowed);
            sent(
                self.exchange
                    .send_head(response(status, headers, body), false),
            )?;
            self.state = State::Streaming {
                tx,
                trailers,
                pending_trailers: HeaderMap::new(),
            };
        } else {
            let body = ResponseBody::stream(Some(file), None, self.trailers_allowed);
            sent(
                self.exchange
                    .send_head(response(status, headers, body), true),
            )?;
        }
        Ok(())
    }
}

/// `Disconnected` when the head could not be handed to the connection.
fn sent(handed: bool) -> Result<(), SendError> {
    if handed {
        Ok(())
    } else {
        Err(SendError::Disconnected)
    }
}

/// Appends every header of `more` to `into`, keeping repeated names. Past the most entries a
/// `HeaderMap` holds, the rest are dropped rather than panicking.
fn merge(into: &mut HeaderMap, more: HeaderMap) {
    let mut last_name = None;
    for (name, value) in more {
        if let Some(name) = name {
            last_name = Some(name);
        }
        if let Some(name) = &last_name {
            if into.try_append(name.clone(), value).is_err() {
                return;
            }
        }
    }
}

#[async_trait]
impl EventSink for ResponseSink {
    async fn send(&mut self, event: SendEvent) -> Result<(), SendError> {
        // The start and a whole response never wait: `send_now` handles them.
        let event = match self.send_now(event) {
            Ok(result) => return result,
            Err(event) => event,
        };
        self.admit(&event)?;
        match event {
            SendEvent::HttpResponseBody { body, more_body } => self.body(body, more_body).await,
            SendEvent::HttpResponseTrailers {
                headers,
                more_trailers,
            } => self.trailers(headers, more_trailers).await,
            SendEvent::HttpResponsePathsend { path } => self.pathsend(&path).await,
            // The protocol check admits only HTTP response events on an HTTP scope.
            other => Err(SendError::Protocol(ProtocolError::new(
                other.type_name(),
                "an HTTP response event",
            ))),
        }
    }

    /// The start, and a final body that makes the whole response (the fast path), never
    /// wait: they are handled here, without a boxed future. Everything else goes to `send`.
    fn send_now(&mut self, event: SendEvent) -> Result<Result<(), SendError>, SendEvent> {
        let whole = matches!(
            (&event, &self.state),
            (SendEvent::HttpResponseStart { .. }, _)
                | (
                    SendEvent::HttpResponseBody {
                        more_body: false,
                        ..
                    },
                    State::Started {
                        trailers: false,
                        ..
                    }
                )
        );
        if !whole {
            return Err(event);
        }
        if let Err(e) = self.admit(&event) {
            return Ok(Err(e));
        }
        Ok(match event {
            SendEvent::HttpResponseStart {
                status,
                headers,
                trailers,
            } => {
                self.state = State::Started {
                    status,
                    headers,
                    trailers,
                };
                Ok(())
            }
            SendEvent::HttpResponseBody { body, .. } => self.whole_response(body),
            // `whole` admits only the two events above.
            other => return Err(other),
        })
    }
}

impl Drop for ResponseSink {
    fn drop(&mut self) {
        if let State::Waiting | State::Started { .. } = self.state {
            self.exchange
                .send_server_head(server_response(StatusCode::INTERNAL_SERVER_ERROR, false));
        }
        // A `Streaming` state drops the channel's sender here: the body then ends with an
        // error, and hyper aborts the response.
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;

    use asgi_core::protocol::SendProtocol;
    use asgi_core::{HttpScope, Scope};
    use http::Method;
    use http_body_util::BodyExt;

    use super::*;
    use crate::server::body::ResponseBodyError;
    use crate::server::exchange::EndReason;
    use crate::server::finish::FinishGuard;
    use crate::server::shared::{Activity, ActivityGuard};
    use http::{HeaderValue, Response};
    use http_body::Body;
    use std::task::Context;

    fn sink(trailers_allowed: bool) -> (ResponseSink, Arc<ServerExchange>) {
        let exchange = Arc::new(ServerExchange::new(Method::GET, None));
        let scope = Scope::from(HttpScope::new(Method::GET, "/"));
        let sink = ResponseSink::new(
            SendProtocol::for_scope(&scope),
            exchange.clone(),
            trailers_allowed,
        );
        (sink, exchange)
    }

    async fn head(exchange: &ServerExchange) -> Response<ResponseBody> {
        poll_fn(|cx| exchange.poll_head(cx)).await
    }

    fn start(trailers: bool) -> SendEvent {
        SendEvent::HttpResponseStart {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            trailers,
        }
    }

    #[tokio::test]
    async fn start_and_one_final_body_make_one_full_response() {
        let (mut sink, exchange) = sink(true);
        sink.send(start(false)).await.unwrap();
        sink.send(SendEvent::response_body("hello", false))
            .await
            .unwrap();
        let response = head(&exchange).await;
        let body = response.into_body();
        assert!(body.is_full(), "not the fast path");
        assert_eq!(body.size_hint().exact(), Some(5));
        assert_eq!(body.collect().await.unwrap().to_bytes(), "hello");
    }

    #[tokio::test]
    async fn nothing_reaches_the_connection_before_the_first_body_event() {
        let (mut sink, exchange) = sink(true);
        sink.send(start(false)).await.unwrap();
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(exchange.poll_head(&mut cx).is_pending());
    }

    #[tokio::test]
    async fn streamed_body_arrives_in_order_and_completes() {
        let (mut sink, exchange) = sink(true);
        let app = tokio::spawn(async move {
            sink.send(start(false)).await?;
            for part in ["a", "b", "c"] {
                sink.send(SendEvent::response_body(part, true)).await?;
            }
            sink.send(SendEvent::response_body("d", false)).await
        });
        let body = head(&exchange).await.into_body();
        assert_eq!(body.collect().await.unwrap().to_bytes(), "abcd");
        app.await.unwrap().unwrap();
        assert_eq!(exchange.outcome().0, Progress::Complete);
    }

    #[tokio::test]
    async fn a_sink_dropped_mid_body_makes_the_body_fail() {
        let (mut sink, exchange) = sink(true);
        sink.send(start(false)).await.unwrap();
        sink.send(SendEvent::response_body("partial", true))
            .await
            .unwrap();
        drop(sink);
        let mut body = head(&exchange).await.into_body();
        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), "partial");
        let end = body.frame().await.unwrap();
        assert!(matches!(end, Err(ResponseBodyError::Aborted)));
    }

    #[tokio::test]
    async fn a_sink_dropped_before_the_body_answers_500() {
        let (mut sink, exchange) = sink(true);
        sink.send(start(false)).await.unwrap();
        drop(sink);
        let response = head(&exchange).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(exchange.outcome().0, Progress::NotStarted);
    }

    #[tokio::test]
    async fn trailers_follow_the_body_when_allowed() {
        let (mut sink, exchange) = sink(true);
        let app = tokio::spawn(async move {
            sink.send(start(true)).await?;
            sink.send(SendEvent::response_body("body", false)).await?;
            let mut first = HeaderMap::new();
            first.insert("x-one", HeaderValue::from_static("1"));
            sink.send(SendEvent::HttpResponseTrailers {
                headers: first,
                more_trailers: true,
            })
            .await?;
            let mut second = HeaderMap::new();
            second.insert("x-two", HeaderValue::from_static("2"));
            sink.send(SendEvent::HttpResponseTrailers {
                headers: second,
                more_trailers: false,
            })
            .await
        });
        let collected = head(&exchange).await.into_body().collect().await.unwrap();
        let trailers = collected.trailers().cloned().expect("trailers");
        assert_eq!(trailers["x-one"], "1");
        assert_eq!(trailers["x-two"], "2");
        assert_eq!(collected.to_bytes(), "body");
        app.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn trailers_are_dropped_when_the_client_did_not_ask_for_them() {
        let (mut sink, exchange) = sink(false);
        let app = tokio::spawn(async move {
            sink.send(start(true)).await?;
            sink.send(SendEvent::response_body("body", false)).await?;
            let mut trailers = HeaderMap::new();
            trailers.insert("x-one", HeaderValue::from_static("1"));
            sink.send(SendEvent::HttpResponseTrailers {
                headers: trailers,
                more_trailers: false,
            })
            .await
        });
        let collected = head(&exchange).await.into_body().collect().await.unwrap();
        assert!(collected.trailers().is_none());
        assert_eq!(collected.to_bytes(), "body");
        app.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn send_after_the_client_left_is_disconnected() {
        let (mut sink, exchange) = sink(true);
        exchange.abandon_head();
        assert_eq!(sink.send(start(false)).await, Err(SendError::Disconnected));
    }

    #[tokio::test]
    async fn body_before_start_is_a_protocol_error() {
        let (mut sink, _exchange) = sink(true);
        let err = sink
            .send(SendEvent::response_body("early", false))
            .await
            .unwrap_err();
        let SendError::Protocol(err) = err else {
            panic!("not a protocol error");
        };
        assert_eq!(err.received(), "http.response.body");
        assert_eq!(err.expected(), "`http.response.start`");
    }

    #[tokio::test]
    async fn a_dropped_body_ends_the_request_for_the_app() {
        let (mut sink, exchange) = sink(true);
        sink.send(start(false)).await.unwrap();
        sink.send(SendEvent::response_body("partial", true))
            .await
            .unwrap();
        let mut response = head(&exchange).await;
        let activity = Arc::new(Activity::default());
        let mut finish = FinishGuard::new(ActivityGuard::new(&activity), None);
        finish.set_exchange(exchange.clone());
        response.body_mut().set_finish(finish);
        // hyper drops the body when the client leaves.
        drop(response);
        assert_eq!(exchange.outcome().1, Some(EndReason::ClientGone));
        assert_eq!(
            sink.send(SendEvent::response_body("more", true)).await,
            Err(SendError::Disconnected)
        );
    }
}
