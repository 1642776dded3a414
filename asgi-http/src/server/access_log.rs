//! The access log: one `tracing` event per response, target [`ACCESS_LOG_TARGET`].

use std::fmt;
use std::net::SocketAddr;
use std::time::Instant;

use http::uri::PathAndQuery;
use http::{Method, Request, Version};

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
            start: Instant::now(),
        })
    }

    /// Records the response status.
    pub(crate) fn set_status(&mut self, status: u16) {
        self.status = status;
    }

    /// Writes the line: `bytes` of body were sent, `complete` is false for an aborted
    /// response.
    pub(crate) fn write(self, bytes: u64, complete: bool) {
        let duration = self.start.elapsed();
        let client = Client(self.client);
        let path = self.target.as_ref().map_or("/", PathAndQuery::as_str);
        let duration_us = u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
        let duration_ms = duration.as_secs_f64() * 1000.0;
        tracing::info!(
            target: ACCESS_LOG_TARGET,
            client = %client,
            method = %self.method,
            path,
            version = ?self.version,
            status = self.status,
            bytes,
            duration_us,
            complete,
            "{client} - \"{} {path} {:?}\" {}{} {bytes}B {duration_ms:.1}ms",
            self.method,
            self.version,
            self.status,
            if complete { "" } else { " aborted" },
        );
    }
}

struct Client(Option<SocketAddr>);

impl fmt::Display for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(addr) => fmt::Display::fmt(&addr, f),
            // A Unix socket peer has no address.
            None => f.write_str("unix"),
        }
    }
}
