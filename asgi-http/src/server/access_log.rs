//! The access log: one `tracing` event per response, target [`ACCESS_LOG_TARGET`].

use std::net::SocketAddr;
use std::time::Instant;

use http::uri::PathAndQuery;
use http::{HeaderValue, Method, Request, Version};

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
    /// Starts the line for `request` from `client` (with proxy headers on, the forwarded
    /// client the app's scope gets), or `None` when nobody listens to the access log (then
    /// nothing is gathered at all).
    ///
    /// Boxed: the guard that carries it moves with the response (into the exchange, out to
    /// hyper), and a pointer moves for less than the whole record.
    pub(crate) fn start<B>(request: &Request<B>, client: Option<SocketAddr>) -> Option<Box<Self>> {
        if !tracing::enabled!(target: ACCESS_LOG_TARGET, tracing::Level::INFO) {
            return None;
        }
        Some(Box::new(AccessLog {
            client,
            method: request.method().clone(),
            // A clone of the request's own bytes: no copy.
            target: request.uri().path_and_query().cloned(),
            version: request.version(),
            status: 0,
            request_id: None,
            start: Instant::now(),
        }))
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
    /// The line is put together by hand, every number written digit by digit, and goes out as
    /// the message of one event with no fields: a formatter with a dozen arguments, and each
    /// field the subscriber writes again as `name=value`, cost more than the rest of the
    /// request. The subscriber decides where the line goes; `logging::init` queues it for a
    /// writer thread, so no request waits on the output.
    pub(crate) fn write(self, bytes: u64, complete: bool) {
        let duration_us = u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX);
        let path = self.target.as_ref().map_or("/", PathAndQuery::as_str);
        let mut line = String::with_capacity(LINE_CAPACITY + path.len());
        push_client(&mut line, self.client);
        line.push_str(" - \"");
        line.push_str(self.method.as_str());
        line.push(' ');
        line.push_str(path);
        line.push(' ');
        line.push_str(version_str(self.version));
        line.push_str("\" ");
        push_decimal(&mut line, u64::from(self.status));
        if !complete {
            line.push_str(" aborted");
        }
        line.push(' ');
        push_decimal(&mut line, bytes);
        line.push_str("B ");
        push_decimal(&mut line, duration_us / 1000);
        line.push('.');
        push_decimal(&mut line, duration_us % 1000 / 100);
        line.push_str("ms");
        // The request id (from the `RequestId` middleware's response header) ends the line
        // when there is one.
        if let Some(id) = self.request_id.as_ref().and_then(|id| id.to_str().ok()) {
            line.push_str(" id=");
            line.push_str(id);
        }
        // A `&str` message: a subscriber takes it as it is, with no formatting.
        tracing::info!(target: ACCESS_LOG_TARGET, message = line.as_str());
    }
}

/// Room for everything in a line but the path: the client, the method, the version, the
/// numbers and the words between them (a request id may still make it grow once).
const LINE_CAPACITY: usize = 96;

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

/// Writes the client's address: `ip:port` for IPv4 digit by digit, `[ip]:port` for IPv6
/// through `Display`, `unix` for a Unix socket peer (it has no address).
fn push_client(line: &mut String, client: Option<SocketAddr>) {
    match client {
        Some(SocketAddr::V4(addr)) => {
            for (i, octet) in addr.ip().octets().into_iter().enumerate() {
                if i > 0 {
                    line.push('.');
                }
                push_decimal(line, u64::from(octet));
            }
            line.push(':');
            push_decimal(line, u64::from(addr.port()));
        }
        Some(addr) => {
            use std::fmt::Write;
            // Writing to a `String` cannot fail.
            let _ = write!(line, "{addr}");
        }
        None => line.push_str("unix"),
    }
}

/// Writes `n` in decimal.
fn push_decimal(line: &mut String, n: u64) {
    line.push_str(itoa::Buffer::new().format(n));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client_text(client: Option<SocketAddr>) -> String {
        let mut line = String::new();
        push_client(&mut line, client);
        line
    }

    #[test]
    fn client_text_matches_display() {
        for addr in [
            "127.0.0.1:8000",
            "255.255.255.255:65535",
            "0.0.0.0:0",
            "[::1]:443",
        ] {
            let addr: SocketAddr = addr.parse().unwrap();
            assert_eq!(client_text(Some(addr)), addr.to_string());
        }
        assert_eq!(client_text(None), "unix");
    }

    #[test]
    fn decimals_match_display() {
        for n in [0, 7, 10, 99, 100, 65_535, u64::from(u32::MAX), u64::MAX] {
            let mut line = String::new();
            push_decimal(&mut line, n);
            assert_eq!(line, n.to_string());
        }
    }
}
