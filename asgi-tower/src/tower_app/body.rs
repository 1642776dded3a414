//! [`ReceiverBody`]: the scope's `http.request` events as an [`http_body::Body`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use asgi_core::{Error, ReceiveEvent, Receiver};
use asgi_http::server::DirectBody;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

type Recv = Pin<Box<dyn Future<Output = (Receiver, ReceiveEvent)> + Send>>;

/// The request body a [`TowerApp`](crate::TowerApp) hands its service: the
/// `http.request` events of the app's [`Receiver`], pulled as the service reads; or, when
/// this project's server hands the request over directly (see `TowerApp`), the server's
/// own request body, with the same behaviour.
///
/// Nothing is read before the service polls the body, so backpressure reaches the client:
/// a handler that reads slowly makes the server read the socket slowly.
///
/// # Errors
///
/// When the client leaves before the body ended (`http.disconnect`), the next frame is an
/// [`Error`] for which [`is_disconnected`](Error::is_disconnected) is true: the service sees
/// a failed body, as it would from hyper.
pub struct ReceiverBody {
    state: State,
}

enum State {
    /// Waiting for the service to ask.
    Idle(Receiver),
    /// A `recv` in flight; it owns the receiver until it resolves.
    Receiving(Recv),
    /// The server's request body, on its direct path.
    Direct(DirectBody),
    /// The body ended (or failed); nothing more comes.
    Done,
}

impl ReceiverBody {
    /// A body over `receive`.
    pub fn new(receive: Receiver) -> Self {
        ReceiverBody {
            state: State::Idle(receive),
        }
    }

    /// The server's body of a request handed over directly.
    pub(crate) fn direct(body: DirectBody) -> Self {
        ReceiverBody {
            state: State::Direct(body),
        }
    }

    /// An empty body, for requests built by hand.
    pub fn empty() -> Self {
        ReceiverBody { state: State::Done }
    }
}

impl fmt::Debug for ReceiverBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Idle(_) => "idle",
            State::Receiving(_) => "receiving",
            State::Direct(_) => "direct",
            State::Done => "done",
        };
        f.debug_struct("ReceiverBody")
            .field("state", &state)
            .finish()
    }
}

impl Body for ReceiverBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = self.get_mut();
        if let State::Direct(body) = &mut this.state {
            let polled = poll_direct(body, cx);
            if let Poll::Ready(None | Some(Err(_))) = &polled {
                this.state = State::Done;
            }
            return polled;
        }
        loop {
            let recv = match std::mem::replace(&mut this.state, State::Done) {
                State::Done | State::Direct(_) => return Poll::Ready(None),
                State::Receiving(recv) => recv,
                State::Idle(mut receiver) => Box::pin(async move {
                    let event = receiver.recv().await;
                    (receiver, event)
                }),
            };
            let mut recv = recv;
            let (receiver, event) = match recv.as_mut().poll(cx) {
                Poll::Ready(done) => done,
                Poll::Pending => {
                    this.state = State::Receiving(recv);
                    return Poll::Pending;
                }
            };
            match event {
                ReceiveEvent::HttpRequest { body, more_body } => {
                    if more_body {
                        this.state = State::Idle(receiver);
                        if body.is_empty() {
                            continue;
                        }
                    }
                    if body.is_empty() {
                        return Poll::Ready(None);
                    }
                    return Poll::Ready(Some(Ok(Frame::data(body))));
                }
                ReceiveEvent::HttpDisconnect => {
                    return Poll::Ready(Some(Err(Error::disconnected())));
                }
                other => {
                    return Poll::Ready(Some(Err(Error::msg(format!(
                        "unexpected `{}` while reading the request body",
                        other.type_name()
                    )))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.state {
            State::Done => true,
            State::Direct(body) => body.is_end_stream(),
            _ => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        if let State::Direct(body) = &self.state {
            return body.size_hint();
        }
        if self.is_end_stream() {
            SizeHint::with_exact(0)
        } else {
            SizeHint::default()
        }
    }
}

/// A frame of the server's body, as the events' path would give it: the data, an end, or a
/// disconnect error (request trailers, which have no ASGI event, are skipped).
fn poll_direct(
    body: &mut DirectBody,
    cx: &mut Context<'_>,
) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
    loop {
        match std::task::ready!(Pin::new(&mut *body).poll_frame(cx)) {
            Some(Ok(frame)) if frame.is_data() => return Poll::Ready(Some(Ok(frame))),
            Some(Ok(_trailers)) => {}
            Some(Err(e)) => return Poll::Ready(Some(Err(e))),
            None => return Poll::Ready(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use asgi_core::host::channel::ChannelSource;
    use asgi_core::{HttpScope, Scope};
    use http::Method;
    use http_body_util::BodyExt;
    use tokio::sync::mpsc;

    /// A body over a receiver with `events` queued; dropping the sender is the client
    /// leaving.
    fn body_of(events: Vec<ReceiveEvent>) -> (ReceiverBody, mpsc::Sender<ReceiveEvent>) {
        let scope = Scope::from(HttpScope::new(Method::POST, "/"));
        let (tx, rx) = mpsc::channel(events.len() + 1);
        for event in events {
            tx.try_send(event).unwrap();
        }
        let body = ReceiverBody::new(Receiver::new(ChannelSource::new(&scope, rx)));
        (body, tx)
    }

    #[tokio::test]
    async fn chunks_become_data_frames_and_end_with_the_last() {
        let (body, _tx) = body_of(vec![
            ReceiveEvent::request("ab", true),
            ReceiveEvent::request("", true),
            ReceiveEvent::request("cd", false),
        ]);
        let collected = body.collect().await.unwrap().to_bytes();
        assert_eq!(&collected[..], b"abcd");
    }

    #[tokio::test]
    async fn disconnect_before_the_end_is_a_disconnected_body_error() {
        let (mut body, tx) = body_of(vec![ReceiveEvent::request("ab", true)]);
        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), "ab");
        drop(tx);
        let err = body.frame().await.unwrap().unwrap_err();
        assert!(err.is_disconnected());
        assert!(body.is_end_stream());
        assert!(body.frame().await.is_none());
    }
}
