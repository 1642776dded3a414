//! The access log: one `tracing` event per response, target [`ACCESS_LOG_TARGET`].

use std::net::SocketAddr;
use std::time::Instant;

use http::request::Parts;
use http::uri::PathAndQuery;
use http::{HeaderValue, Method, Version};

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
    pub(crate) fn start(head: &Parts, client: Option<SocketAddr>) -> Option<Box<Self>> {
        if !tracing::enabled!(target: ACCESS_LOG_TARGET, tracing::Level::INFO) {
            return None;
        }
        Some(Box::new(AccessLog {
            client,
            method: head.method.clone(),
            // A clone of the request's own bytes: no copy.
            target: head.uri.path_and_query().cloned(),
            version: head.version,
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
    /// The line is put together by hand in this thread's line buffer (no allocation once it
    /// has grown), every number with `itoa`, and goes out as the `&str` message of one event
    /// with no fields: a formatter with a dozen arguments, or a `Display` value written piece
    /// by piece, and each field the subscriber writes again as `name=value`, cost more than
    /// the rest of the request. The subscriber decides where the line goes; `logging::init`
    /// queues it for a writer thread, so no request waits on the output.
    pub(crate) fn write(self, bytes: u64, complete: bool) {
        let duration_us = u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX);
        LINE.with(|buffer| {
            // Taken already only if a subscriber logs an access line while writing one.
            let mut fresh = String::new();
            let mut borrowed = buffer.try_borrow_mut();
            let line = match &mut borrowed {
                Ok(buffer) => &mut **buffer,
                Err(_) => &mut fresh,
            };
            line.clear();
            self.push_line(line, bytes, complete, duration_us);
            // A `&str` message: a subscriber takes it as it is, with no formatting.
            tracing::info!(target: ACCESS_LOG_TARGET, message = line.as_str());
            if line.capacity() > LINE_KEPT {
                *line = String::new();
            }
        });
    }

    /// Appends the text of the line to `line`.
    fn push_line(&self, line: &mut String, bytes: u64, complete: bool, duration_us: u64) {
        let mut number = itoa::Buffer::new();
        push_client(line, self.client);
        line.push_str(" - \"");
        line.push_str(self.method.as_str());
        line.push(' ');
        line.push_str(self.target.as_ref().map_or("/", PathAndQuery::as_str));
        line.push(' ');
        line.push_str(version_str(self.version));
        line.push_str("\" ");
        line.push_str(number.format(self.status));
        if !complete {
            line.push_str(" aborted");
        }
        line.push(' ');
        line.push_str(number.format(bytes));
        line.push_str("B ");
        line.push_str(number.format(duration_us / 1000));
        line.push('.');
        line.push_str(number.format(duration_us % 1000 / 100));
        line.push_str("ms");
        // The request id (from the `RequestId` middleware's response header) ends the line
        // when there is one.
        if let Some(id) = self.request_id.as_ref().and_then(|id| id.to_str().ok()) {
            line.push_str(" id=");
            line.push_str(id);
        }
    }
}

/// The most a thread's line buffer keeps between lines (4 KiB): a line with a long path is
/// written all the same, and its room given back. Not a setting: it only bounds the memory
/// each thread keeps.
const LINE_KEPT: usize = 4096;

thread_local! {
    /// The line being written on this thread (see [`AccessLog::write`]).
    static LINE: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
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

/// Writes the client's address: `ip:port` for IPv4 number by number, `[ip]:port` for IPv6
/// through `Display`, `unix` for a Unix socket peer (it has no address).
fn push_client(line: &mut String, client: Option<SocketAddr>) {
    match client {
        Some(SocketAddr::V4(addr)) => {
            let mut number = itoa::Buffer::new();
            let [a, b, c, d] = addr.ip().octets();
            line.push_str(number.format(a));
            for octet in [b, c, d] {
                line.push('.');
                line.push_str(number.format(octet));
            }
            line.push(':');
            line.push_str(number.format(addr.port()));
        }
        Some(addr) => {
            use std::fmt::Write;
            // Writing to a `String` cannot fail.
            let _ = write!(line, "{addr}");
        }
        None => line.push_str("unix"),
    }
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
    fn the_line_has_every_part_in_order() {
        let request = http::Request::get("/items?page=2").body(()).unwrap();
        let mut log = AccessLog {
            client: Some("10.0.0.7:51000".parse().unwrap()),
            method: request.method().clone(),
            target: request.uri().path_and_query().cloned(),
            version: request.version(),
            status: 0,
            request_id: None,
            start: Instant::now(),
        };
        log.set_status(404);
        log.set_request_id(Some(&HeaderValue::from_static("abc-1")));
        let mut line = String::new();
        log.push_line(&mut line, 1234, false, 12_345);
        assert_eq!(
            line,
            "10.0.0.7:51000 - \"GET /items?page=2 HTTP/1.1\" 404 aborted 1234B 12.3ms id=abc-1"
        );
    }
}
