//! [`ProxyHeaders`]: the client address and scheme a trusted reverse proxy forwarded, written
//! into the scope, as uvicorn's `--proxy-headers` does.
//!
//! Behind nginx every connection comes from nginx: without this middleware the app sees
//! nginx's address as `client` and `http` as `scheme`. The proxy tells the real ones in
//! headers, and anybody can send those headers, so they are only believed when the direct
//! peer is a trusted proxy ([`TrustedProxies`]):
//!
//! - `Forwarded` (RFC 7239): the elements are walked from the right, skipping those whose
//!   `for=` is a trusted proxy; the first untrusted one names the client, and its `proto=` and
//!   `host=` set the scheme and the `host` header. A client the proxy hid (`for=unknown`, or an
//!   obfuscated `for=_hidden`) makes `client` `None`, as the ASGI spec says for an unknown
//!   client.
//! - Otherwise `X-Forwarded-For` (repeated headers joined in order) is walked from the right
//!   the same way: the client is the first untrusted address, never simply the leftmost, which
//!   anyone can forge. `X-Forwarded-Proto` sets the scheme (`http`/`ws` or `https`/`wss`,
//!   mapped to the scope's protocol; the last value wins).
//! - A malformed value changes nothing it would have set: the scope keeps what the connection
//!   said.
//!
//! The WSGI adapter builds `REMOTE_ADDR`, `REMOTE_PORT`, `wsgi.url_scheme` and `HTTPS` from the
//! scope, so they follow. The server applies this middleware itself unless
//! [`Builder::proxy_headers`](crate::server::Builder::proxy_headers) is off, and then names the
//! forwarded client in its access log too.

use std::borrow::Cow;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use asgi_core::{App, Error, Layer, Receiver, Scope, Sender, WebSocketScope, async_trait};
use http::HeaderMap;
use http::header::{FORWARDED, HOST, HeaderName, HeaderValue};
use ipnet::IpNet;

/// The `X-Forwarded-For` header: the chain of addresses a request came through.
pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// The `X-Forwarded-Proto` header: the scheme the client used with the proxy.
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// The proxies whose headers are believed by default: `127.0.0.1` and Unix socket peers, as
/// uvicorn's `--forwarded-allow-ips` default (a proxy on the same machine). Change it with
/// [`Builder::forwarded_allow_ips`](crate::server::Builder::forwarded_allow_ips).
pub const DEFAULT_FORWARDED_ALLOW_IPS: &str = "127.0.0.1, unix";

/// The direct peers whose proxy headers are believed: IP addresses, networks (CIDR), `unix`
/// for connections over a Unix socket, or `*` for every peer.
///
/// Parse it from uvicorn's `--forwarded-allow-ips` form, a comma-separated list. IPv4 peers
/// that reach a dual-stack socket as IPv4-mapped IPv6 addresses (`::ffff:127.0.0.1`) match
/// their IPv4 entries.
///
/// # Example
///
/// ```
/// use asgi_http::middleware::proxy_headers::TrustedProxies;
///
/// let trusted: TrustedProxies = "10.0.0.0/8, 192.0.2.7, unix".parse().unwrap();
/// assert!(trusted.trusts(Some("10.1.2.3".parse().unwrap())));
/// assert!(trusted.trusts(None)); // a Unix socket peer
/// assert!(!trusted.trusts(Some("192.0.2.8".parse().unwrap())));
///
/// // The default: 127.0.0.1 and Unix sockets.
/// assert!(TrustedProxies::default().trusts(Some("127.0.0.1".parse().unwrap())));
/// assert!("no-such-host".parse::<TrustedProxies>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedProxies {
    /// `*`: every peer.
    all: bool,
    /// `unix`: peers over a Unix socket (which have no address).
    unix: bool,
    /// Addresses (as one-host networks) and networks.
    networks: Vec<IpNet>,
}

impl Default for TrustedProxies {
    /// [`DEFAULT_FORWARDED_ALLOW_IPS`]: `127.0.0.1` and Unix socket peers.
    fn default() -> Self {
        TrustedProxies {
            all: false,
            unix: true,
            networks: vec![IpNet::from(IpAddr::from([127, 0, 0, 1]))],
        }
    }
}

impl TrustedProxies {
    /// Trusts every peer (`*`): only for a server no client can reach but through the proxy.
    pub fn all() -> Self {
        TrustedProxies {
            all: true,
            unix: true,
            networks: Vec::new(),
        }
    }

    /// Trusts no peer: every proxy header is ignored.
    pub fn none() -> Self {
        TrustedProxies {
            all: false,
            unix: false,
            networks: Vec::new(),
        }
    }

    /// True when a peer at `peer` (`None`: over a Unix socket) is a trusted proxy.
    pub fn trusts(&self, peer: Option<IpAddr>) -> bool {
        match peer {
            _ if self.all => true,
            None => self.unix,
            Some(ip) => self.trusts_ip(ip),
        }
    }

    fn trusts_ip(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.all || self.networks.iter().any(|net| net.contains(&ip))
    }

    /// What the headers of a request from `peer` say, when `peer` is trusted; nothing at all
    /// when it is not, or when the headers say nothing (or nothing well-formed).
    ///
    /// This is the whole decision [`ProxyHeaders`] makes, as a pure function: it never panics,
    /// whatever the headers hold.
    ///
    /// # Example
    ///
    /// ```
    /// use asgi_http::middleware::proxy_headers::TrustedProxies;
    /// use http::HeaderMap;
    ///
    /// let mut headers = HeaderMap::new();
    /// // A forged first entry, the client, then another proxy of ours.
    /// headers.insert("x-forwarded-for", "6.6.6.6, 203.0.113.9, 127.0.0.1".parse().unwrap());
    /// headers.insert("x-forwarded-proto", "https".parse().unwrap());
    ///
    /// let nginx = "127.0.0.1:41000".parse().ok();
    /// let forwarded = TrustedProxies::default().resolve(nginx, &headers);
    /// assert_eq!(forwarded.client, Some(Some("203.0.113.9:0".parse().unwrap())));
    /// assert_eq!(forwarded.secure, Some(true));
    ///
    /// // The same headers straight from a stranger are ignored.
    /// let stranger = "198.51.100.1:5000".parse().ok();
    /// assert_eq!(TrustedProxies::default().resolve(stranger, &headers).client, None);
    /// ```
    pub fn resolve(&self, peer: Option<SocketAddr>, headers: &HeaderMap) -> Forwarding {
        if !self.trusts(peer.map(|addr| addr.ip())) {
            return Forwarding::default();
        }
        if headers.contains_key(FORWARDED) {
            return self.resolve_forwarded(headers);
        }
        Forwarding {
            client: self.resolve_x_forwarded_for(headers),
            secure: x_forwarded_proto(
                headers
                    .get_all(X_FORWARDED_PROTO)
                    .iter()
                    .map(|v| v.as_bytes()),
            ),
            host: None,
        }
    }

    /// RFC 7239: the rightmost element whose `for=` is not a trusted proxy (or the leftmost
    /// element when every hop is trusted) describes the client.
    fn resolve_forwarded(&self, headers: &HeaderMap) -> Forwarding {
        let mut first: Option<ForwardedElement<'_>> = None;
        let mut client: Option<ForwardedElement<'_>> = None;
        let mut last: Option<ForwardedElement<'_>> = None;
        for value in headers.get_all(FORWARDED) {
            for element in forwarded_elements(value.as_bytes()) {
                let Ok(element) = element else {
                    return Forwarding::default();
                };
                let trusted = match &element.for_node {
                    Some(Node::Addr { ip, .. }) => self.trusts_ip(*ip),
                    // A hidden hop is nobody we know.
                    Some(Node::Unknown | Node::Obfuscated) => false,
                    // An element without `for=` names no hop to judge.
                    None => {
                        last = Some(element);
                        continue;
                    }
                };
                if first.is_none() {
                    first = Some(element.clone());
                }
                if !trusted {
                    client = Some(element);
                }
            }
        }
        // No element names a hop: the last one (our direct peer's) still tells the scheme.
        let Some(element) = client.or(first).or(last) else {
            return Forwarding::default();
        };
        Forwarding {
            client: element.for_node.map(|node| node.socket_addr()),
            secure: element.proto.as_deref().and_then(secure_scheme),
            host: element
                .host
                .as_deref()
                .filter(|host| http::uri::Authority::from_str(host).is_ok())
                .and_then(|host| HeaderValue::from_str(host).ok()),
        }
    }

    /// `X-Forwarded-For`, walked from the right without collecting it.
    fn resolve_x_forwarded_for(&self, headers: &HeaderMap) -> Option<Option<SocketAddr>> {
        let mut entries = headers
            .get_all(X_FORWARDED_FOR)
            .iter()
            .rev()
            .flat_map(|value| value.as_bytes().rsplit(|&b| b == b','))
            .peekable();
        entries.peek()?;
        let mut leftmost = None;
        for entry in entries {
            let node = x_forwarded_for_entry(entry).ok()?;
            match node {
                Node::Addr { ip, .. } if self.trusts_ip(ip) => leftmost = Some(node),
                client => return Some(client.socket_addr()),
            }
        }
        // Every hop is trusted: the leftmost is the client.
        leftmost.map(Node::socket_addr)
    }
}

impl FromStr for TrustedProxies {
    type Err = InvalidTrustedProxy;

    /// Parses a comma-separated list of IP addresses, CIDR networks, `unix` and `*`.
    fn from_str(list: &str) -> Result<Self, Self::Err> {
        let mut trusted = TrustedProxies::none();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            match entry {
                "*" => trusted.all = true,
                "unix" => trusted.unix = true,
                _ if entry.contains('/') => trusted.networks.push(
                    entry
                        .parse()
                        .map_err(|_| InvalidTrustedProxy(entry.to_owned()))?,
                ),
                _ => trusted.networks.push(IpNet::from(
                    entry
                        .parse::<IpAddr>()
                        .map_err(|_| InvalidTrustedProxy(entry.to_owned()))?
                        .to_canonical(),
                )),
            }
        }
        Ok(trusted)
    }
}

/// An entry of a trusted proxy list that is neither an IP address, a CIDR network, `unix`
/// nor `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidTrustedProxy(String);

impl fmt::Display for InvalidTrustedProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not an IP address, a CIDR network, `unix` or `*`",
            self.0
        )
    }
}

impl std::error::Error for InvalidTrustedProxy {}

/// True for the headers [`TrustedProxies::resolve`] reads: without any of them, a request
/// has nothing to resolve.
pub(crate) fn is_proxy_header(name: &HeaderName) -> bool {
    *name == FORWARDED || *name == X_FORWARDED_FOR || *name == X_FORWARDED_PROTO
}

/// What a trusted proxy said about a request; `None` fields were not said (or not
/// well-formed) and leave the scope as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Forwarding {
    /// The client: `Some(Some(addr))` an address (port 0 when the proxy gave none),
    /// `Some(None)` a client the proxy hid (`unknown`, obfuscated).
    pub client: Option<Option<SocketAddr>>,
    /// The scheme the client used with the proxy: `true` for `https`/`wss`.
    pub secure: Option<bool>,
    /// `Forwarded: host=`: the `host` the client asked the proxy for.
    pub host: Option<HeaderValue>,
}

impl Forwarding {
    /// Writes what was forwarded into `scope`: `client`, `scheme` (`https`/`wss` or
    /// `http`/`ws` by the scope's protocol) and the `host` header. Lifespan scopes are left
    /// alone.
    pub fn apply(self, scope: &mut Scope) {
        match scope {
            Scope::Http(s) => self.write(&mut s.client, &mut s.scheme, &mut s.headers, false),
            Scope::WebSocket(s) => self.apply_websocket(s),
            _ => {}
        }
    }

    /// [`apply`](Forwarding::apply) for a WebSocket scope the caller holds unwrapped.
    pub(crate) fn apply_websocket(self, scope: &mut WebSocketScope) {
        self.write(
            &mut scope.client,
            &mut scope.scheme,
            &mut scope.headers,
            true,
        );
    }

    /// [`apply`](Forwarding::apply) for a request handed over without a scope: the client
    /// and the `host` header (the scheme has no place in the request).
    pub(crate) fn apply_to_request(self, client: &mut Option<SocketAddr>, headers: &mut HeaderMap) {
        let mut scheme = Cow::Borrowed("");
        self.write(client, &mut scheme, headers, false);
    }

    fn write(
        self,
        client: &mut Option<SocketAddr>,
        scheme: &mut Cow<'static, str>,
        headers: &mut HeaderMap,
        websocket: bool,
    ) {
        if let Some(forwarded) = self.client {
            *client = forwarded;
        }
        if let Some(secure) = self.secure {
            *scheme = Cow::Borrowed(match (websocket, secure) {
                (false, false) => "http",
                (false, true) => "https",
                (true, false) => "ws",
                (true, true) => "wss",
            });
        }
        if let Some(host) = self.host {
            headers.insert(HOST, host);
        }
    }
}

/// One hop's identifier in `Forwarded` (`for=`, `by=`) or `X-Forwarded-For`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Node {
    /// An address, with the port when one was given (an obfuscated port counts as none).
    Addr {
        /// The IP address.
        ip: IpAddr,
        /// The port.
        port: Option<u16>,
    },
    /// `unknown`: the proxy does not know (or tell) the hop.
    Unknown,
    /// An obfuscated identifier (`_hidden`): the proxy hides the hop.
    Obfuscated,
}

impl Node {
    /// The scope's `client` for this node: `None` for a hidden one, port 0 when none was
    /// given.
    fn socket_addr(self) -> Option<SocketAddr> {
        match self {
            Node::Addr { ip, port } => Some(SocketAddr::new(ip.to_canonical(), port.unwrap_or(0))),
            Node::Unknown | Node::Obfuscated => None,
        }
    }

    /// Parses an RFC 7239 node: `192.0.2.1`, `192.0.2.1:80`, `[2001:db8::1]`,
    /// `[2001:db8::1]:80`, `unknown`, `_obfuscated`, with an optional obfuscated port.
    pub fn parse(text: &str) -> Result<Node, MalformedHeader> {
        let (name, port) = if let Some(rest) = text.strip_prefix('[') {
            let (v6, after) = rest.split_once(']').ok_or(MalformedHeader)?;
            let ip: std::net::Ipv6Addr = v6.parse().map_err(|_| MalformedHeader)?;
            let port = match after {
                "" => None,
                _ => Some(after.strip_prefix(':').ok_or(MalformedHeader)?),
            };
            return Ok(Node::Addr {
                ip: IpAddr::V6(ip),
                port: port.map(node_port).transpose()?.flatten(),
            });
        } else {
            match text.split_once(':') {
                Some((name, port)) => (name, Some(port)),
                None => (text, None),
            }
        };
        let port = port.map(node_port).transpose()?.flatten();
        if name.eq_ignore_ascii_case("unknown") {
            return Ok(Node::Unknown);
        }
        if is_obfuscated(name) {
            return Ok(Node::Obfuscated);
        }
        let ip: std::net::Ipv4Addr = name.parse().map_err(|_| MalformedHeader)?;
        Ok(Node::Addr {
            ip: IpAddr::V4(ip),
            port,
        })
    }
}

/// `port` or an obfuscated port (`None`).
fn node_port(text: &str) -> Result<Option<u16>, MalformedHeader> {
    if is_obfuscated(text) {
        return Ok(None);
    }
    if text.is_empty() || text.len() > 5 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(MalformedHeader);
    }
    text.parse().map(Some).map_err(|_| MalformedHeader)
}

/// `obfnode` / `obfport`: `_` then letters, digits, `.`, `_`, `-`.
fn is_obfuscated(text: &str) -> bool {
    text.strip_prefix('_').is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    })
}

/// One entry of `X-Forwarded-For`: an IP address (IPv6 bare or bracketed, either with a
/// port), `unknown` or an obfuscated identifier, with spaces around it.
pub fn x_forwarded_for_entry(entry: &[u8]) -> Result<Node, MalformedHeader> {
    let text = std::str::from_utf8(entry)
        .map_err(|_| MalformedHeader)?
        .trim();
    // Bare IPv6, as most proxies write it.
    if let Ok(ip) = text.parse::<std::net::Ipv6Addr>() {
        return Ok(Node::Addr {
            ip: IpAddr::V6(ip),
            port: None,
        });
    }
    Node::parse(text)
}

/// `X-Forwarded-Proto`, repeated headers joined: whether the last value is `https`/`wss`
/// (`Some(true)`) or `http`/`ws` (`Some(false)`); `None` when absent or anything else.
pub fn x_forwarded_proto<'a>(values: impl DoubleEndedIterator<Item = &'a [u8]>) -> Option<bool> {
    let last = values
        .rev()
        .flat_map(|value| value.rsplit(|&b| b == b','))
        .next()?;
    secure_scheme(std::str::from_utf8(last).ok()?.trim())
}

fn secure_scheme(scheme: &str) -> Option<bool> {
    if scheme.eq_ignore_ascii_case("https") || scheme.eq_ignore_ascii_case("wss") {
        Some(true)
    } else if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("ws") {
        Some(false)
    } else {
        None
    }
}

/// A proxy header that does not follow its grammar: it changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MalformedHeader;

impl fmt::Display for MalformedHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("malformed proxy header")
    }
}

impl std::error::Error for MalformedHeader {}

/// One element of a `Forwarded` header (RFC 7239 section 4): what one proxy said about the
/// hop it received the request from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ForwardedElement<'a> {
    /// `for=`: who sent the request to that proxy.
    pub for_node: Option<Node>,
    /// `by=`: the proxy's own interface.
    pub by_node: Option<Node>,
    /// `proto=`: the scheme the request came with.
    pub proto: Option<Cow<'a, str>>,
    /// `host=`: the `Host` the request came with.
    pub host: Option<Cow<'a, str>>,
}

/// The elements of one `Forwarded` header value, in order; a syntax error ends the
/// iteration with an `Err`.
///
/// # Example
///
/// ```
/// use asgi_http::middleware::proxy_headers::{Node, forwarded_elements};
///
/// let value = br#"for="[2001:db8::1]:4711";proto=https, for=unknown;host=example.com"#;
/// let elements: Vec<_> = forwarded_elements(value).collect::<Result<_, _>>().unwrap();
/// assert_eq!(
///     elements[0].for_node,
///     Some(Node::Addr { ip: "2001:db8::1".parse().unwrap(), port: Some(4711) })
/// );
/// assert_eq!(elements[0].proto.as_deref(), Some("https"));
/// assert_eq!(elements[1].for_node, Some(Node::Unknown));
/// assert_eq!(elements[1].host.as_deref(), Some("example.com"));
///
/// assert!(forwarded_elements(b"for=192.0.2.1:80").any(|e| e.is_err())); // must be quoted
/// ```
pub fn forwarded_elements(value: &[u8]) -> ForwardedElements<'_> {
    ForwardedElements {
        rest: value,
        failed: false,
    }
}

/// The iterator of [`forwarded_elements`].
#[derive(Debug, Clone)]
pub struct ForwardedElements<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> Iterator for ForwardedElements<'a> {
    type Item = Result<ForwardedElement<'a>, MalformedHeader>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            self.rest = trim_start(self.rest);
            match self.rest.first() {
                None => return None,
                // Empty list elements are allowed (RFC 9110 section 5.6.1).
                Some(b',') => self.rest = &self.rest[1..],
                Some(_) => break,
            }
        }
        let result = self.element();
        if result.is_err() {
            self.failed = true;
        }
        Some(result)
    }
}

impl<'a> ForwardedElements<'a> {
    /// `forwarded-element = [ forwarded-pair ] *( ";" [ forwarded-pair ] )`, up to the next
    /// `,` or the end.
    fn element(&mut self) -> Result<ForwardedElement<'a>, MalformedHeader> {
        let mut element = ForwardedElement::default();
        loop {
            self.rest = trim_start(self.rest);
            match self.rest.first() {
                None => return Ok(element),
                Some(b',') => {
                    self.rest = &self.rest[1..];
                    return Ok(element);
                }
                Some(b';') => {
                    self.rest = &self.rest[1..];
                    continue;
                }
                Some(_) => {}
            }
            let name = self.token()?;
            if self.rest.first() != Some(&b'=') {
                return Err(MalformedHeader);
            }
            self.rest = &self.rest[1..];
            let value = if self.rest.first() == Some(&b'"') {
                self.quoted_string()?
            } else {
                let token = self.token()?;
                // A token of tchars is ASCII.
                Cow::Borrowed(std::str::from_utf8(token).map_err(|_| MalformedHeader)?)
            };
            // Each parameter at most once per element (RFC 7239 section 4).
            let seen = if name.eq_ignore_ascii_case(b"for") {
                element.for_node.replace(Node::parse(&value)?).is_some()
            } else if name.eq_ignore_ascii_case(b"by") {
                element.by_node.replace(Node::parse(&value)?).is_some()
            } else if name.eq_ignore_ascii_case(b"proto") {
                element.proto.replace(value).is_some()
            } else if name.eq_ignore_ascii_case(b"host") {
                element.host.replace(value).is_some()
            } else {
                // Extensions are allowed and ignored.
                false
            };
            if seen {
                return Err(MalformedHeader);
            }
            self.rest = trim_start(self.rest);
            match self.rest.first() {
                None | Some(b',' | b';') => {}
                Some(_) => return Err(MalformedHeader),
            }
        }
    }

    /// `token = 1*tchar`.
    fn token(&mut self) -> Result<&'a [u8], MalformedHeader> {
        let len = self.rest.iter().take_while(|&&b| is_tchar(b)).count();
        if len == 0 {
            return Err(MalformedHeader);
        }
        let (token, rest) = self.rest.split_at(len);
        self.rest = rest;
        Ok(token)
    }

    /// `quoted-string`, unescaped.
    fn quoted_string(&mut self) -> Result<Cow<'a, str>, MalformedHeader> {
        let body = &self.rest[1..];
        let mut out: Option<Vec<u8>> = None;
        let mut i = 0;
        while i < body.len() {
            match body[i] {
                b'"' => {
                    let text = match out {
                        None => Cow::Borrowed(
                            std::str::from_utf8(&body[..i]).map_err(|_| MalformedHeader)?,
                        ),
                        Some(bytes) => {
                            Cow::Owned(String::from_utf8(bytes).map_err(|_| MalformedHeader)?)
                        }
                    };
                    self.rest = &body[i + 1..];
                    return Ok(text);
                }
                b'\\' => {
                    let escaped = *body.get(i + 1).ok_or(MalformedHeader)?;
                    out.get_or_insert_with(|| body[..i].to_vec()).push(escaped);
                    i += 2;
                }
                b if b == b'\t' || b >= 0x20 && b != 0x7f => {
                    if let Some(out) = &mut out {
                        out.push(b);
                    }
                    i += 1;
                }
                _ => return Err(MalformedHeader),
            }
        }
        Err(MalformedHeader)
    }
}

fn trim_start(bytes: &[u8]) -> &[u8] {
    let skip = bytes
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    &bytes[skip..]
}

/// `tchar` of RFC 9110 section 5.6.2.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Rewrites the scope's `client` and `scheme` (and, from `Forwarded: host=`, the `host`
/// header) from the headers of a trusted proxy: see the [module docs](self).
///
/// # Example
///
/// ```
/// use asgi_core::{AppExt, Error, Receiver, Scope, Sender};
/// use asgi_http::middleware::proxy_headers::{ProxyHeadersLayer, TrustedProxies};
///
/// async fn app(_: Scope, _: Receiver, _: Sender) -> Result<(), Error> { Ok(()) }
///
/// // Behind proxies on the 10.0.0.0/8 network.
/// let trusted: TrustedProxies = "10.0.0.0/8".parse().unwrap();
/// let app = app.with(ProxyHeadersLayer::new(trusted));
/// # fn assert_app(_: impl asgi_core::App) {}
/// # assert_app(app);
/// ```
#[derive(Debug, Clone)]
pub struct ProxyHeaders<A> {
    inner: A,
    trusted: TrustedProxies,
}

impl<A> ProxyHeaders<A> {
    /// Wraps `inner`, believing the proxy headers of `trusted` peers.
    pub fn new(inner: A, trusted: TrustedProxies) -> Self {
        ProxyHeaders { inner, trusted }
    }

    /// The wrapped app.
    pub fn get_ref(&self) -> &A {
        &self.inner
    }

    /// The wrapped app, unwrapped.
    pub fn into_inner(self) -> A {
        self.inner
    }

    /// The trusted peers.
    pub fn trusted(&self) -> &TrustedProxies {
        &self.trusted
    }
}

#[async_trait]
impl<A: App> App for ProxyHeaders<A> {
    async fn call(&self, mut scope: Scope, receive: Receiver, send: Sender) -> Result<(), Error> {
        let forwarded = match &scope {
            Scope::Http(s) => self.trusted.resolve(s.client, &s.headers),
            Scope::WebSocket(s) => self.trusted.resolve(s.client, &s.headers),
            _ => Forwarding::default(),
        };
        forwarded.apply(&mut scope);
        self.inner.call(scope, receive, send).await
    }
}

/// The layer of [`ProxyHeaders`].
#[derive(Debug, Clone, Default)]
pub struct ProxyHeadersLayer {
    trusted: TrustedProxies,
}

impl ProxyHeadersLayer {
    /// Believes the proxy headers of `trusted` peers.
    pub fn new(trusted: TrustedProxies) -> Self {
        ProxyHeadersLayer { trusted }
    }
}

impl<A: App> Layer<A> for ProxyHeadersLayer {
    type App = ProxyHeaders<A>;

    fn layer(&self, inner: A) -> ProxyHeaders<A> {
        ProxyHeaders::new(inner, self.trusted.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    const PROXY: &str = "127.0.0.1:40000";

    fn resolve(pairs: &[(&str, &str)]) -> Forwarding {
        TrustedProxies::default().resolve(Some(addr(PROXY)), &headers(pairs))
    }

    #[test]
    fn x_forwarded_for_client_is_the_first_untrusted_from_the_right() {
        let trusted: TrustedProxies = "127.0.0.1, 10.0.0.0/8".parse().unwrap();
        let h = headers(&[(
            "x-forwarded-for",
            "1.1.1.1, 203.0.113.5, 10.0.0.2, 10.0.0.3",
        )]);
        let f = trusted.resolve(Some(addr(PROXY)), &h);
        assert_eq!(f.client, Some(Some(addr("203.0.113.5:0"))));
    }

    #[test]
    fn x_forwarded_for_never_takes_the_forgeable_leftmost() {
        let f = resolve(&[("x-forwarded-for", "127.0.0.5, 198.51.100.7")]);
        assert_eq!(f.client, Some(Some(addr("198.51.100.7:0"))));
    }

    #[test]
    fn x_forwarded_for_all_trusted_gives_the_leftmost() {
        let f = resolve(&[("x-forwarded-for", "127.0.0.1, 127.0.0.1")]);
        assert_eq!(f.client, Some(Some(addr("127.0.0.1:0"))));
    }

    #[test]
    fn repeated_x_forwarded_for_headers_are_joined_in_order() {
        let trusted: TrustedProxies = "127.0.0.1, 10.0.0.9".parse().unwrap();
        let h = headers(&[
            ("x-forwarded-for", "203.0.113.1"),
            ("x-forwarded-for", "10.0.0.9"),
        ]);
        let f = trusted.resolve(Some(addr(PROXY)), &h);
        assert_eq!(f.client, Some(Some(addr("203.0.113.1:0"))));
    }

    #[test]
    fn x_forwarded_for_ipv6_and_ports() {
        let f = resolve(&[("x-forwarded-for", "2001:db8::7")]);
        assert_eq!(f.client, Some(Some(addr("[2001:db8::7]:0"))));
        let f = resolve(&[("x-forwarded-for", "[2001:db8::7]:8443")]);
        assert_eq!(f.client, Some(Some(addr("[2001:db8::7]:8443"))));
        let f = resolve(&[("x-forwarded-for", "192.0.2.4:5555")]);
        assert_eq!(f.client, Some(Some(addr("192.0.2.4:5555"))));
    }

    #[test]
    fn malformed_x_forwarded_for_changes_nothing() {
        for bad in [
            "not-an-ip",
            "192.0.2.1, , ",
            "192.0.2.300",
            "[::1",
            "1.2.3.4:99999",
            "",
        ] {
            let f = resolve(&[("x-forwarded-for", bad)]);
            assert_eq!(f.client, None, "{bad:?}");
        }
    }

    #[test]
    fn garbage_left_of_the_client_is_never_read() {
        let f = resolve(&[("x-forwarded-for", "garbage, 192.0.2.9")]);
        assert_eq!(f.client, Some(Some(addr("192.0.2.9:0"))));
    }

    #[test]
    fn x_forwarded_proto_last_value_wins() {
        assert_eq!(
            resolve(&[("x-forwarded-proto", "http, https")]).secure,
            Some(true)
        );
        assert_eq!(
            resolve(&[("x-forwarded-proto", "https"), ("x-forwarded-proto", "ws")]).secure,
            Some(false)
        );
        assert_eq!(
            resolve(&[("x-forwarded-proto", " WSS ")]).secure,
            Some(true)
        );
    }

    #[test]
    fn malformed_x_forwarded_proto_changes_nothing() {
        for bad in ["ftp", "https, gopher", "", "h ttps"] {
            assert_eq!(
                resolve(&[("x-forwarded-proto", bad)]).secure,
                None,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn untrusted_peer_headers_are_ignored() {
        let h = headers(&[
            ("x-forwarded-for", "203.0.113.1"),
            ("x-forwarded-proto", "https"),
            ("forwarded", "for=203.0.113.1;proto=https;host=evil.example"),
        ]);
        let f = TrustedProxies::default().resolve(Some(addr("192.0.2.1:1000")), &h);
        assert_eq!(f, Forwarding::default());
        let f = TrustedProxies::none().resolve(None, &h);
        assert_eq!(f, Forwarding::default());
    }

    #[test]
    fn unix_socket_peers_are_trusted_by_default() {
        let h = headers(&[("x-forwarded-for", "203.0.113.1")]);
        let f = TrustedProxies::default().resolve(None, &h);
        assert_eq!(f.client, Some(Some(addr("203.0.113.1:0"))));
    }

    #[test]
    fn star_trusts_everybody_and_ipv4_mapped_peers_match_ipv4_entries() {
        let h = headers(&[("x-forwarded-for", "203.0.113.1")]);
        let f = TrustedProxies::all().resolve(Some(addr("198.51.100.1:1")), &h);
        assert_eq!(f.client, Some(Some(addr("203.0.113.1:0"))));
        let f = TrustedProxies::default().resolve(Some(addr("[::ffff:127.0.0.1]:1")), &h);
        assert_eq!(f.client, Some(Some(addr("203.0.113.1:0"))));
    }

    #[test]
    fn trusted_list_parses_ips_networks_unix_and_star() {
        let t: TrustedProxies = " 10.0.0.0/8 ,::1, unix".parse().unwrap();
        assert!(t.trusts(Some("10.200.0.1".parse().unwrap())));
        assert!(t.trusts(Some("::1".parse().unwrap())));
        assert!(t.trusts(None));
        assert!(!t.trusts(Some("127.0.0.1".parse().unwrap())));
        let t: TrustedProxies = "192.0.2.1".parse().unwrap();
        assert!(!t.trusts(None));
        assert!(
            "*".parse::<TrustedProxies>()
                .unwrap()
                .trusts(Some("8.8.8.8".parse().unwrap()))
        );
        let err = "10.0.0.0/33".parse::<TrustedProxies>().unwrap_err();
        assert!(err.to_string().contains("10.0.0.0/33"));
        assert!("localhost".parse::<TrustedProxies>().is_err());
    }

    #[test]
    fn forwarded_gives_client_proto_and_host() {
        let f = resolve(&[(
            "forwarded",
            r#"for="[2001:db8:cafe::17]:4711";proto=https;host=app.example"#,
        )]);
        assert_eq!(f.client, Some(Some(addr("[2001:db8:cafe::17]:4711"))));
        assert_eq!(f.secure, Some(true));
        assert_eq!(f.host.unwrap(), "app.example");
    }

    #[test]
    fn forwarded_is_walked_from_the_right() {
        let f = resolve(&[(
            "forwarded",
            "for=6.6.6.6;proto=http, for=192.0.2.60;proto=https, for=127.0.0.1;proto=http",
        )]);
        assert_eq!(f.client, Some(Some(addr("192.0.2.60:0"))));
        assert_eq!(f.secure, Some(true));
    }

    #[test]
    fn forwarded_without_for_still_sets_the_scheme() {
        let f = resolve(&[("forwarded", "proto=https;host=app.example")]);
        assert_eq!(f.client, None);
        assert_eq!(f.secure, Some(true));
        assert_eq!(f.host.unwrap(), "app.example");
    }

    #[test]
    fn forwarded_wins_over_x_forwarded_for() {
        let f = resolve(&[
            ("forwarded", "for=192.0.2.60"),
            ("x-forwarded-for", "203.0.113.1"),
        ]);
        assert_eq!(f.client, Some(Some(addr("192.0.2.60:0"))));
    }

    #[test]
    fn forwarded_hidden_clients_are_unknown() {
        assert_eq!(resolve(&[("forwarded", "for=unknown")]).client, Some(None));
        assert_eq!(
            resolve(&[("forwarded", "for=_hidden;proto=https")]).client,
            Some(None)
        );
        assert_eq!(
            resolve(&[("forwarded", r#"for="192.0.2.1:_port""#)]).client,
            Some(Some(addr("192.0.2.1:0")))
        );
    }

    #[test]
    fn forwarded_quoted_strings_and_case() {
        let f = resolve(&[("forwarded", r#"For="192.0.2.1";PROTO="h\ttps""#)]);
        assert_eq!(f.client, Some(Some(addr("192.0.2.1:0"))));
        assert_eq!(f.secure, Some(true));
    }

    #[test]
    fn malformed_forwarded_changes_nothing() {
        for bad in [
            "for=192.0.2.1:80",
            "for=[2001:db8::1]",
            "for=\"192.0.2.1",
            "for=192.0.2.1;for=192.0.2.2",
            "for",
            "for=192.0.2.1 x",
            "for=256.0.0.1",
            "for=\"[2001:db8::1\"",
        ] {
            assert_eq!(
                resolve(&[("forwarded", bad)]),
                Forwarding::default(),
                "{bad:?}"
            );
        }
        // A bad `host` is dropped; the rest stands.
        let f = resolve(&[("forwarded", r#"for=192.0.2.1;host="a b""#)]);
        assert_eq!(f.host, None);
        assert_eq!(f.client, Some(Some(addr("192.0.2.1:0"))));
    }

    #[test]
    fn apply_maps_the_scheme_to_the_protocol() {
        let forwarding = Forwarding {
            client: Some(Some(addr("192.0.2.1:0"))),
            secure: Some(true),
            host: None,
        };
        let mut http = Scope::from(asgi_core::HttpScope::new(http::Method::GET, "/"));
        forwarding.clone().apply(&mut http);
        let Scope::Http(http) = http else {
            unreachable!()
        };
        assert_eq!(http.scheme, "https");
        assert_eq!(http.client, Some(addr("192.0.2.1:0")));
        let mut ws = Scope::from(asgi_core::WebSocketScope::new("/"));
        forwarding.apply(&mut ws);
        let Scope::WebSocket(ws) = ws else {
            unreachable!()
        };
        assert_eq!(ws.scheme, "wss");
    }
}
