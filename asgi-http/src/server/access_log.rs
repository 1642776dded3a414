//! The access log: one `tracing` event per response, target [`ACCESS_LOG_TARGET`].

use std::net::SocketAddr;
use std::time::Instant;

use http::uri::PathAndQuery;
use http::{HeaderValue, Method, Request, Version};

use crate::middleware::proxy_headers::TrustedProxies;

/// The `tracing` target of the access log, to filter it (`RUST_LOG=asgi_http::access=off`).
pub const ACCESS_LOG_TARGET: &str = "asgi_http::access";

/// What the access log line of one request says, gathered while it is served.
#[derive(Debug)]
pub(crate) struct AccessLog {
    client: Option<SocketAddr>,
    method: Method,
    target: Option<PathAndQuery>,
    version: Version,
    status: u16,
    /// The response's `x-request-id` (set by the request-id middleware), if any.
    request_id: Option<HeaderValue>,
    start: Instant,
}

impl AccessLog {
    /// Starts the line for `request` from the connection's `client`, or `None` when nobody
    /// listens to the access log (then nothing is gathered at all). With proxy headers on
    /// (`trusted`), the line names the client the app's scope gets, as the `ProxyHeaders`
    /// middleware resolves it.
    pub(crate) fn start<B>(
        request: &Request<B>,
        client: Option<SocketAddr>,
        trusted: Option<&TrustedProxies>,
    ) -> Option<Self> {
        if !tracing::enabled!(target: ACCESS_LOG_TARGET, tracing::Level::INFO) {
            return None;
        }
        let client = match trusted {
            Some(trusted) => trusted
                .resolve(client, request.headers())
                .client
                .unwrap_or(client),
            None => client,
        };
        Some(AccessLog {
            client,
            method: request.method().clone(),
            // A clone of the request's own bytes: no copy.
            target: request.uri().path_and_query().cloned(),
            version: request.version(),
            status: 0,
            request_id: None,
            start: Instant::now(),
        })
    }

    /// Records the response status.
    pub(crate) fn set_status(&mut self, status: u16) {
        self.status = status;
    }

    /// Records the response's request id (its `x-request-id` header).
    pub(crate) fn set_request_id(&mut self, id: Option<&HeaderValue>) {
        self.request_id = id.cloned();
    }

    /// Writes the line: `bytes` of body were sent, `complete` is false for an aborted
    /// response.
    ///
    /// Each value is turned into text once, without a formatter where one would be the
    /// costliest part (the client address, the duration). The subscriber decides where the line goes; `logging::init` queues it for a
    /// writer thread, so no request waits on the output.
    pub(crate) fn write(self, bytes: u64, complete: bool) {
        let duration_us = u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX);
        let client = ClientText::new(self.client);
        let client = client.as_str();
        let method = self.method.as_str();
        let path = self.target.as_ref().map_or("/", PathAndQuery::as_str);
        let version = version_str(self.version);
        let status = self.status;
        // The message says it all; of the values, only the two a reader filters or sums by
        // are fields of their own too. Each field costs a subscriber as much as the message
        // (tracing-subscriber's `fmt` writes it again as `name=value`), and the log's cost is
        // per request.
        let aborted = if complete { "" } else { " aborted" };
        let (ms, tenths) = (duration_us / 1000, duration_us % 1000 / 100);
        // The request id (from the `RequestId` middleware's response header) ends the line
        // when there is one.
        match self.request_id.as_ref().and_then(|id| id.to_str().ok()) {
            Some(id) => tracing::info!(
                target: ACCESS_LOG_TARGET,
                status,
                duration_us,
                "{client} - \"{method} {path} {version}\" {status}{aborted} {bytes}B {ms}.{tenths}ms id={id}",
            ),
            None => tracing::info!(
                target: ACCESS_LOG_TARGET,
                status,
                duration_us,
                "{client} - \"{method} {path} {version}\" {status}{aborted} {bytes}B {ms}.{tenths}ms",
            ),
        }
    }
}

/// The protocol as the request line names it.
fn version_str(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_11 => "HTTP/1.1",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/?",
    }
}

/// The client's address as text: `ip:port` for IPv4 written digit by digit into a buffer on
/// the stack, `[ip]:port` for IPv6 through `Display`, `unix` for a Unix socket peer (it has
/// no address).
enum ClientText {
    V4 { buf: [u8; 21], len: usize },
    Other(String),
    Unix,
}

impl ClientText {
    fn new(client: Option<SocketAddr>) -> Self {
        match client {
            Some(SocketAddr::V4(addr)) => {
                let mut buf = [0u8; 21];
                let mut len = 0;
                for (i, octet) in addr.ip().octets().into_iter().enumerate() {
                    if i > 0 {
                        buf[len] = b'.';
                        len += 1;
                    }
                    len = push_decimal(&mut buf, len, u32::from(octet));
                }
                buf[len] = b':';
                len = push_decimal(&mut buf, len + 1, u32::from(addr.port()));
                ClientText::V4 { buf, len }
            }
            Some(addr) => ClientText::Other(addr.to_string()),
            None => ClientText::Unix,
        }
    }

    fn as_str(&self) -> &str {
        match self {
            // Only ASCII digits, dots and a colon were written.
            ClientText::V4 { buf, len } => std::str::from_utf8(&buf[..*len]).unwrap_or("?"),
            ClientText::Other(text) => text,
            ClientText::Unix => "unix",
        }
    }
}

/// Writes `n` in decimal into `buf` at `at`; returns the new end. `buf` has room: the
/// largest IPv4 `ip:port` is 21 bytes.
fn push_decimal(buf: &mut [u8], at: usize, n: u32) -> usize {
    let mut digits = [0u8; 10];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        // Below 10: the cast keeps every bit.
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let count = digits.len() - i;
    buf[at..at + count].copy_from_slice(&digits[i..]);
    at + count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_text_matches_display() {
        for addr in [
            "127.0.0.1:8000",
            "255.255.255.255:65535",
            "0.0.0.0:0",
            "[::1]:443",
        ] {
            let addr: SocketAddr = addr.parse().unwrap();
            assert_eq!(ClientText::new(Some(addr)).as_str(), addr.to_string());
        }
        assert_eq!(ClientText::new(None).as_str(), "unix");
    }
}
