//! [`Environ`]: PEP 3333's `environ`, the CGI variables and the `wsgi.*` entries.

use std::borrow::Cow;
use std::fmt;

use std::net::IpAddr;

use asgi_core::{Extensions, HttpScope, HttpVersion, ServerAddr, State};
use std::fmt::Write as _;

use bytes::BytesMut;
use http::{HeaderMap, HeaderName, Method};

use crate::stream::{Errors, Input};
use crate::wsgi_str::WsgiStr;

/// `wsgi.version`: the version of PEP 3333's interface, `(1, 0)`.
pub const WSGI_VERSION: (u32, u32) = (1, 0);

/// One value of the [`Environ`] map.
///
/// PEP 3333's environ holds native strings, booleans and the `wsgi.version` tuple (and the
/// two streams, which [`Environ`] keeps as typed fields: [`Environ::input`],
/// [`Environ::errors`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Value {
    /// A string: every CGI variable, `HTTP_*`, `wsgi.url_scheme`.
    Str(WsgiStr),
    /// A boolean: `wsgi.multithread`, `wsgi.multiprocess`, `wsgi.run_once`.
    Bool(bool),
    /// A version: `wsgi.version`.
    Version(u32, u32),
}

impl Value {
    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&WsgiStr> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The boolean, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

impl From<WsgiStr> for Value {
    fn from(s: WsgiStr) -> Self {
        Value::Str(s)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.into())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s.into())
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

/// PEP 3333's `environ`: what the server knows about the request, for a
/// [`WsgiApp`](crate::WsgiApp).
///
/// It is a map of name to [`Value`] (the CGI variables, the `HTTP_*` headers, the `wsgi.*`
/// entries, and whatever middleware adds), the two streams `wsgi.input` ([`Input`]) and
/// `wsgi.errors` ([`Errors`]) as typed fields, and typed accessors for the standard keys.
/// String values are [`WsgiStr`]: bytes, never re-encoded (see there for the latin-1 view
/// PEP 3333 describes).
///
/// # From an ASGI scope
///
/// [`Environ::from_scope`] maps an HTTP scope the way gunicorn and PEP 3333 do:
///
/// | key | value |
/// |---|---|
/// | `REQUEST_METHOD` | `method` |
/// | `SCRIPT_NAME` | `root_path`, without a trailing `/` |
/// | `PATH_INFO` | the percent-decoded path after `SCRIPT_NAME`, every byte kept (`%FF` stays the byte 0xFF) |
/// | `QUERY_STRING` | `query_string`, not decoded |
/// | `CONTENT_TYPE`, `CONTENT_LENGTH` | those headers, when present (no `HTTP_` prefix) |
/// | `SERVER_NAME`, `SERVER_PORT` | `server` when it is a TCP address; else the `Host` header; else `localhost` and the scheme's port |
/// | `SERVER_PROTOCOL` | `HTTP/1.0`, `HTTP/1.1` or `HTTP/2` |
/// | `REMOTE_ADDR`, `REMOTE_PORT` | `client` (absent for a Unix socket peer) |
/// | `HTTP_*` | each other header, `-` as `_`, uppercase; repeated headers joined with `,` (`Cookie` with `; `). Names that contain `_` are dropped, so `X_Forwarded_For` can never pass for `X-Forwarded-For` |
/// | `HTTPS` | `on` for `https` |
/// | `RAW_URI` | the path and query as they came on the wire (gunicorn's key) |
/// | `wsgi.version` | `(1, 0)` |
/// | `wsgi.url_scheme` | `scheme` |
/// | `wsgi.multithread`, `wsgi.multiprocess`, `wsgi.run_once` | `true`, `false`, `false` |
/// | `wsgi.input_terminated` | `true`: `wsgi.input` ends at the end of the body, chunked bodies too |
///
/// The scope's lifespan [`state`](Environ::state) and [`extensions`](Environ::extensions)
/// come along, so a blocking handler reaches the same connection pool as an async one.
///
/// # Example
///
/// ```
/// use asgi_core::HttpScope;
/// use asgi_wsgi_compat::Environ;
/// use http::{HeaderValue, Method};
///
/// let mut scope = HttpScope::new(Method::GET, "/wsgi/users/caf%C3%A9");
/// scope.path = "/wsgi/users/café".into();
/// scope.root_path = "/wsgi".into();
/// scope.query_string = "page=2".into();
/// scope.headers.append("x-request-id", HeaderValue::from_static("abc"));
///
/// let environ = Environ::from_scope(&scope);
/// assert_eq!(environ.method(), "GET");
/// assert_eq!(environ.script_name(), "/wsgi");
/// assert_eq!(environ.path_info(), "/users/café");
/// assert_eq!(environ.path_info().to_string(), "/users/caf\u{c3}\u{a9}"); // latin-1 view
/// assert_eq!(environ.query_string(), "page=2");
/// assert_eq!(environ.header("X-Request-Id").unwrap(), "abc");
/// assert_eq!(environ.get_str("HTTP_X_REQUEST_ID").unwrap(), "abc");
/// assert!(environ.multithread());
/// ```
pub struct Environ {
    // Keys are borrowed for the names this crate knows (every CGI variable, the common
    // headers), so that building an environ allocates only for values it cannot share.
    vars: Vars,
    input: Input,
    errors: Errors,
    state: State,
    extensions: Extensions,
}

static EMPTY: WsgiStr = WsgiStr::new();

/// Room in the list of an environ made with [`Environ::new`] (a test's, a host's that sets
/// its own variables) for the entries its caller adds: 16, the CGI variables and a few
/// headers, in one allocation of 1 KiB. Not a limit: the list grows past it as any `Vec`.
/// Not a setting either; [`Environ::from_scope`] sizes its list to the request instead.
const ENVIRON_SPARE: usize = 16;

/// How many entries [`Environ::from_scope`] puts in the list for `scope`: the CGI variables
/// it always sets (`REQUEST_METHOD`, `SCRIPT_NAME`, `PATH_INFO`, `QUERY_STRING`, `RAW_URI`,
/// `SERVER_NAME`, `SERVER_PORT`, `SERVER_PROTOCOL`), `REMOTE_ADDR` and `REMOTE_PORT` with a
/// client, `HTTPS` and `wsgi.url_scheme` over TLS (or another scheme), and one per header
/// name. Sized to that, the list of a request with a few headers stays under 1 KiB (the
/// largest allocation the allocator keeps ready per thread); a list that an app adds to
/// grows as any `Vec`.
fn scope_entries(scope: &HttpScope) -> usize {
    let client = if scope.client.is_some() { 2 } else { 0 };
    let scheme = if scope.scheme == "http" { 0 } else { 2 };
    8 + client + scheme + scope.headers.keys_len()
}

/// The `wsgi.*` entries every environ starts with: the same values for every request, so they
/// are kept here, once, and not copied into each environ's list. An environ's list takes one
/// over when it is set, and drops it when it is removed.
static FIXED: [(&str, Value); 6] = [
    (
        "wsgi.version",
        Value::Version(WSGI_VERSION.0, WSGI_VERSION.1),
    ),
    ("wsgi.url_scheme", Value::Str(WsgiStr::from_static("http"))),
    ("wsgi.multithread", Value::Bool(true)),
    ("wsgi.multiprocess", Value::Bool(false)),
    ("wsgi.run_once", Value::Bool(false)),
    ("wsgi.input_terminated", Value::Bool(true)),
];

/// Every entry of [`FIXED`], as a [`Vars::fixed`] mask.
const ALL_FIXED: u8 = (1 << FIXED.len()) - 1;

/// The environ's map: a list searched from the front, and the entries of [`FIXED`] it still
/// has. With the few dozen entries of an environ, comparing lengths first, it finds a key
/// faster than a tree and is built with one allocation instead of one per node;
/// [`Environ::iter`] sorts on demand.
#[derive(Clone)]
pub(crate) struct Vars {
    entries: Vec<(Cow<'static, str>, Value)>,
    /// Bit `i` set: the environ has `FIXED[i]`, and its list has no entry of that name.
    fixed: u8,
}

impl Vars {
    /// A map with the entries of [`FIXED`], and room for `capacity` more.
    fn with_fixed(capacity: usize) -> Self {
        Vars {
            entries: Vec::with_capacity(capacity),
            fixed: ALL_FIXED,
        }
    }

    fn position(&self, name: &str) -> Option<usize> {
        self.entries.iter().position(|(key, _)| key == name)
    }

    /// The index in [`FIXED`] of `name`, when the map has that fixed entry.
    fn fixed_index(&self, name: &str) -> Option<usize> {
        if self.fixed == 0 || !name.starts_with("wsgi.") {
            return None;
        }
        FIXED
            .iter()
            .position(|(key, _)| *key == name)
            .filter(|&i| self.fixed & (1 << i) != 0)
    }

    /// Takes the fixed entry `name` out of the map, if it has it: its value.
    fn take_fixed(&mut self, name: &str) -> Option<Value> {
        let i = self.fixed_index(name)?;
        self.fixed &= !(1 << i);
        Some(FIXED[i].1.clone())
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Value> {
        match self.position(name) {
            Some(i) => Some(&self.entries[i].1),
            None => self.fixed_index(name).map(|i| &FIXED[i].1),
        }
    }

    fn insert(&mut self, name: Cow<'static, str>, value: Value) -> Option<Value> {
        match self.position(&name) {
            Some(i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            None => {
                let replaced = self.take_fixed(&name);
                self.entries.push((name, value));
                replaced
            }
        }
    }

    /// Adds a key the caller knows is not there yet.
    fn push_new(&mut self, name: Cow<'static, str>, value: Value) {
        debug_assert!(self.get(&name).is_none(), "{name} set twice");
        self.entries.push((name, value));
    }

    fn remove(&mut self, name: &str) -> Option<Value> {
        match self.position(name) {
            Some(i) => Some(self.entries.swap_remove(i).1),
            None => self.take_fixed(name),
        }
    }

    /// The entries sorted by name.
    pub(crate) fn sorted(&self) -> Vec<(&str, &Value)> {
        let fixed = FIXED
            .iter()
            .enumerate()
            .filter(|(i, _)| self.fixed & (1 << i) != 0)
            .map(|(_, (key, value))| (*key, value));
        let mut sorted: Vec<_> = self
            .entries
            .iter()
            .map(|(key, value)| (key.as_ref(), value))
            .chain(fixed)
            .collect();
        sorted.sort_unstable_by_key(|(key, _)| *key);
        sorted
    }
}

struct DebugVars<'a>(&'a Vars);

impl fmt::Debug for DebugVars<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.0.sorted()).finish()
    }
}

impl Environ {
    /// An environ with the `wsgi.*` entries only (no request): `wsgi.version` `(1, 0)`,
    /// `wsgi.url_scheme` `http`, `wsgi.multithread` `true`, `wsgi.multiprocess` and
    /// `wsgi.run_once` `false`, an empty `wsgi.input`, and `wsgi.errors` into `tracing`.
    pub fn new() -> Self {
        Environ::with_room(ENVIRON_SPARE)
    }

    /// [`Environ::new`] with room for `capacity` entries besides the `wsgi.*` ones.
    fn with_room(capacity: usize) -> Self {
        Environ {
            vars: Vars::with_fixed(capacity),
            input: Input::empty(),
            errors: Errors::new(),
            state: State::empty(),
            extensions: Extensions::new(),
        }
    }

    /// Sets a key this crate names and `from_scope` sets once, with no allocation for the
    /// key and no search.
    fn set(&mut self, name: &'static str, value: WsgiStr) {
        self.vars.push_new(Cow::Borrowed(name), Value::Str(value));
    }

    /// An environ for a request to `target` (a path, with an optional `?query`), with every
    /// required key at a test default, as Python's `wsgiref.util.setup_testing_defaults`:
    /// `SERVER_NAME` `localhost`, `SERVER_PORT` `80`, `SERVER_PROTOCOL` `HTTP/1.1`,
    /// `HTTP_HOST` `localhost`, `SCRIPT_NAME` empty. For tests and for calling an app
    /// outside a server.
    ///
    /// ```
    /// use asgi_wsgi_compat::Environ;
    ///
    /// let environ = Environ::for_request("POST", "/submit?draft=1");
    /// assert_eq!(environ.path_info(), "/submit");
    /// assert_eq!(environ.query_string(), "draft=1");
    /// ```
    pub fn for_request(method: &str, target: &str) -> Self {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let mut environ = Environ::new();
        for (key, value) in [
            ("REQUEST_METHOD", method),
            ("SCRIPT_NAME", ""),
            ("PATH_INFO", path),
            ("QUERY_STRING", query),
            ("SERVER_NAME", "localhost"),
            ("SERVER_PORT", "80"),
            ("SERVER_PROTOCOL", "HTTP/1.1"),
            ("HTTP_HOST", "localhost"),
        ] {
            environ.insert(key, value);
        }
        environ
    }

    /// The environ for an HTTP scope, mapped as the type's docs describe, with an empty
    /// `wsgi.input` (a host sets the body stream with [`set_input`](Environ::set_input)).
    pub fn from_scope(scope: &HttpScope) -> Self {
        // The list holds what this sets: one allocation of the size this request needs.
        let mut environ = Environ::with_room(scope_entries(scope));
        let https = scope.scheme == "https";
        // Every value this builds is written into one buffer and handed out as a shared
        // slice of it: two allocations (the buffer and its shared header) for all of them,
        // instead of one per value.
        let mut text = Text::new(text_capacity(scope));
        environ.set("REQUEST_METHOD", method_str(&scope.method));
        let script_name = scope.root_path.trim_end_matches('/').as_bytes();
        let path = text.decoded_path(scope);
        let (script_name, path_info) = match path.strip_prefix(script_name) {
            Some([]) => (path.clone(), WsgiStr::new()),
            Some(rest) if rest.starts_with(b"/") => {
                // Both share the decoded path's bytes.
                let at = script_name.len();
                (path.slice(..at), path.slice(at..))
            }
            // A path outside root_path (a server that does not include root_path in path)
            // is all PATH_INFO, as asgiref does it.
            _ => (text.piece(script_name), path.clone()),
        };
        environ.set("SCRIPT_NAME", script_name);
        environ.set("PATH_INFO", path_info);
        let raw_path: &[u8] = if scope.raw_path.is_empty() {
            &path
        } else {
            &scope.raw_path
        };
        let (raw_uri, query_string) = if scope.query_string.is_empty() {
            let raw_uri = if raw_path == &path[..] {
                path.clone()
            } else {
                text.piece(raw_path)
            };
            (raw_uri, WsgiStr::new())
        } else {
            text.extend(raw_path);
            text.extend(b"?");
            text.extend(&scope.query_string);
            let raw_uri = text.take();
            let query_at = raw_path.len() + 1;
            let query_string = raw_uri.slice(query_at..);
            (raw_uri, query_string)
        };
        environ.set("QUERY_STRING", query_string);
        environ.set("RAW_URI", raw_uri);
        let default_port = if https { 443 } else { 80 };
        let (server_name, server_port) = match &scope.server {
            Some(ServerAddr::Tcp(addr)) => (text.ip(addr.ip()), addr.port()),
            _ => match host_header(&scope.headers) {
                Some((name, port)) => (text.piece(name.as_bytes()), port.unwrap_or(default_port)),
                None => (WsgiStr::from_static("localhost"), default_port),
            },
        };
        environ.set("SERVER_NAME", server_name);
        environ.set("SERVER_PORT", text.port(server_port));
        let protocol = match scope.http_version {
            HttpVersion::Http10 => WsgiStr::from_static("HTTP/1.0"),
            HttpVersion::Http11 => WsgiStr::from_static("HTTP/1.1"),
            HttpVersion::Http2 => WsgiStr::from_static("HTTP/2"),
            other => WsgiStr::from(format!("HTTP/{}", other.as_str())),
        };
        environ.set("SERVER_PROTOCOL", protocol);
        if let Some(client) = scope.client {
            environ.set("REMOTE_ADDR", text.ip(client.ip()));
            environ.set("REMOTE_PORT", text.port(client.port()));
        }
        if https {
            environ.set("HTTPS", WsgiStr::from_static("on"));
        }
        let scheme = match &scope.scheme {
            Cow::Borrowed(scheme) => WsgiStr::from_static(scheme),
            Cow::Owned(scheme) => text.piece(scheme.as_bytes()),
        };
        // `Environ::new` has `http`.
        if scheme != "http" {
            environ
                .vars
                .insert(Cow::Borrowed("wsgi.url_scheme"), Value::Str(scheme));
        }
        // `iter` yields the values of one name one after the other: each name's values are
        // joined as they come, with no lookup by name.
        let mut current: Option<(&HeaderName, Option<Cow<'static, str>>)> = None;
        for (name, value) in &scope.headers {
            if let Some((previous, key)) = &current {
                if *previous == name {
                    if key.is_some() {
                        let separator: &[u8] = if name == http::header::COOKIE {
                            b"; "
                        } else {
                            b","
                        };
                        text.extend(separator);
                        text.extend(value.as_bytes());
                    }
                    continue;
                }
            }
            if let Some((_, Some(key))) = current.take() {
                environ.vars.push_new(key, Value::Str(text.take()));
            }
            let key = cgi_key(name.as_str());
            if key.is_some() {
                text.extend(value.as_bytes());
            }
            current = Some((name, key));
        }
        if let Some((_, Some(key))) = current {
            // Each name comes once, and no CGI variable starts with `HTTP_` or is
            // `CONTENT_*` but these.
            environ.vars.push_new(key, Value::Str(text.take()));
        }
        environ.state = scope.state.clone();
        environ.extensions = scope.extensions.clone();
        environ
    }

    /// The value of `name`, if set. `wsgi.input` and `wsgi.errors` are not in the map: see
    /// [`input`](Environ::input) and [`errors`](Environ::errors).
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.vars.get(name)
    }

    /// The string value of `name`, if set and a string.
    pub fn get_str(&self, name: &str) -> Option<&WsgiStr> {
        self.vars.get(name).and_then(Value::as_str)
    }

    /// True when `name` is set; always true for `wsgi.input` and `wsgi.errors`.
    pub fn contains_key(&self, name: &str) -> bool {
        matches!(name, "wsgi.input" | "wsgi.errors") || self.vars.get(name).is_some()
    }

    /// Sets `name`, returning the previous value. Middleware adds its own keys this way
    /// (PEP 3333 asks for a prefix such as `myapp.`); typed data goes into
    /// [`extensions_mut`](Environ::extensions_mut).
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<Value>) -> Option<Value> {
        self.vars.insert(Cow::Owned(name.into()), value.into())
    }

    /// Removes `name`, returning its value.
    pub fn remove(&mut self, name: &str) -> Option<Value> {
        self.vars.remove(name)
    }

    /// Every entry of the map, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.vars.sorted().into_iter()
    }

    fn str_or_empty(&self, name: &str) -> &WsgiStr {
        self.get_str(name).unwrap_or(&EMPTY)
    }

    /// `REQUEST_METHOD`, e.g. `GET`; empty if absent.
    pub fn method(&self) -> &WsgiStr {
        self.str_or_empty("REQUEST_METHOD")
    }

    /// `SCRIPT_NAME`: where the app is mounted; empty at the root or if absent.
    pub fn script_name(&self) -> &WsgiStr {
        self.str_or_empty("SCRIPT_NAME")
    }

    /// `PATH_INFO`: the path within the app, percent-decoded; empty if absent.
    pub fn path_info(&self) -> &WsgiStr {
        self.str_or_empty("PATH_INFO")
    }

    /// `QUERY_STRING`, not decoded; empty if absent. [`query_pairs`](Environ::query_pairs)
    /// and [`query`](Environ::query) decode it.
    pub fn query_string(&self) -> &WsgiStr {
        self.str_or_empty("QUERY_STRING")
    }

    /// The query's `name=value` pairs, in order, decoded as an HTML form does (Python's
    /// `urllib.parse.parse_qsl`): `+` is a space and `%XX` escapes are decoded. Every byte is
    /// kept, so a value that is not UTF-8 is still there ([`WsgiStr::as_bytes`]). A name
    /// without `=` has an empty value; empty pairs (`a=1&&b=2`) are skipped.
    ///
    /// ```
    /// use asgi_wsgi_compat::Environ;
    ///
    /// let environ = Environ::for_request("GET", "/search?q=caf%C3%A9+au+lait&page=2&flag");
    /// let pairs: Vec<_> = environ.query_pairs().collect();
    /// assert_eq!(pairs[0].0, "q");
    /// assert_eq!(pairs[0].1, "café au lait");
    /// assert_eq!(pairs[1], ("page".into(), "2".into()));
    /// assert_eq!(pairs[2].1, "");
    /// ```
    pub fn query_pairs(&self) -> impl Iterator<Item = (WsgiStr, WsgiStr)> + '_ {
        self.query_string()
            .split(|&b| b == b'&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| match pair.iter().position(|&b| b == b'=') {
                Some(i) => (decode_form(&pair[..i]), decode_form(&pair[i + 1..])),
                None => (decode_form(pair), WsgiStr::new()),
            })
    }

    /// The first value of the query parameter `name`, decoded as in
    /// [`query_pairs`](Environ::query_pairs); `None` when the query does not have it.
    ///
    /// ```
    /// use asgi_wsgi_compat::Environ;
    ///
    /// let environ = Environ::for_request("GET", "/items?page=2&tag=a%26b&tag=c");
    /// assert_eq!(environ.query("page").unwrap(), "2");
    /// assert_eq!(environ.query("tag").unwrap(), "a&b");
    /// assert!(environ.query("missing").is_none());
    /// ```
    pub fn query(&self, name: &str) -> Option<WsgiStr> {
        self.query_pairs()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value)
    }

    /// `CONTENT_TYPE`, if the request has one.
    pub fn content_type(&self) -> Option<&WsgiStr> {
        self.get_str("CONTENT_TYPE").filter(|s| !s.is_empty())
    }

    /// `CONTENT_LENGTH` as a number, if present and valid.
    pub fn content_length(&self) -> Option<u64> {
        self.get_str("CONTENT_LENGTH")
            .and_then(WsgiStr::to_str)
            .and_then(|s| s.parse().ok())
    }

    /// `SERVER_NAME`; empty if absent.
    pub fn server_name(&self) -> &WsgiStr {
        self.str_or_empty("SERVER_NAME")
    }

    /// `SERVER_PORT`; empty if absent.
    pub fn server_port(&self) -> &WsgiStr {
        self.str_or_empty("SERVER_PORT")
    }

    /// `SERVER_PROTOCOL`, e.g. `HTTP/1.1`; empty if absent.
    pub fn server_protocol(&self) -> &WsgiStr {
        self.str_or_empty("SERVER_PROTOCOL")
    }

    /// `REMOTE_ADDR`, the client's IP address, if known.
    pub fn remote_addr(&self) -> Option<&WsgiStr> {
        self.get_str("REMOTE_ADDR")
    }

    /// `REMOTE_PORT`, the client's port, if known.
    pub fn remote_port(&self) -> Option<&WsgiStr> {
        self.get_str("REMOTE_PORT")
    }

    /// `wsgi.url_scheme`: `http` or `https`.
    pub fn url_scheme(&self) -> &WsgiStr {
        self.str_or_empty("wsgi.url_scheme")
    }

    /// A request header by its HTTP name, case-insensitive: `header("Content-Type")` is
    /// `CONTENT_TYPE`, `header("X-Api-Key")` is `HTTP_X_API_KEY`. A name with `_` finds
    /// nothing, since such headers are dropped.
    pub fn header(&self, name: &str) -> Option<&WsgiStr> {
        cgi_key(&name.to_ascii_lowercase()).and_then(|key| self.get_str(key.as_ref()))
    }

    /// `wsgi.version`, `(1, 0)`.
    pub fn version(&self) -> Option<(u32, u32)> {
        match self.vars.get("wsgi.version") {
            Some(Value::Version(major, minor)) => Some((*major, *minor)),
            _ => None,
        }
    }

    /// `wsgi.multithread`: `true` under [`WsgiToAsgi`](crate::WsgiToAsgi), which runs
    /// requests on several threads at once.
    pub fn multithread(&self) -> bool {
        self.vars
            .get("wsgi.multithread")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// `wsgi.multiprocess`: `false`; one process serves every request.
    pub fn multiprocess(&self) -> bool {
        self.vars
            .get("wsgi.multiprocess")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// `wsgi.run_once`: `false`; the process serves many requests.
    pub fn run_once(&self) -> bool {
        self.vars
            .get("wsgi.run_once")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// `wsgi.input`: the request body.
    pub fn input(&mut self) -> &mut Input {
        &mut self.input
    }

    /// Replaces `wsgi.input` (hosts, and middleware that rewrites the body), returning the
    /// previous stream.
    pub fn set_input(&mut self, input: Input) -> Input {
        std::mem::replace(&mut self.input, input)
    }

    /// `wsgi.errors`: a stream into `tracing`.
    pub fn errors(&mut self) -> &mut Errors {
        &mut self.errors
    }

    /// The lifespan state the ASGI app stored at startup (empty outside a server).
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The scope's extensions: typed data that ASGI middleware added.
    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }

    /// The extensions, for WSGI middleware to add typed data.
    pub fn extensions_mut(&mut self) -> &mut Extensions {
        &mut self.extensions
    }

    pub(crate) fn into_parts(self) -> (Vars, Input, State, Extensions) {
        (self.vars, self.input, self.state, self.extensions)
    }
}

impl Default for Environ {
    fn default() -> Self {
        Environ::new()
    }
}

impl fmt::Debug for Environ {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Environ")
            .field("vars", &DebugVars(&self.vars))
            .field("input", &self.input)
            .field("state", &self.state)
            .field("extensions", &self.extensions)
            .finish_non_exhaustive()
    }
}

/// The environ key of a lowercase header name; `None` for a name with `_`. The common
/// headers have their key ready, the others get one built.
fn cgi_key(name: &str) -> Option<Cow<'static, str>> {
    if name.contains('_') {
        return None;
    }
    let known = match name {
        "content-type" => "CONTENT_TYPE",
        "content-length" => "CONTENT_LENGTH",
        "host" => "HTTP_HOST",
        "user-agent" => "HTTP_USER_AGENT",
        "accept" => "HTTP_ACCEPT",
        "accept-encoding" => "HTTP_ACCEPT_ENCODING",
        "accept-language" => "HTTP_ACCEPT_LANGUAGE",
        "authorization" => "HTTP_AUTHORIZATION",
        "cache-control" => "HTTP_CACHE_CONTROL",
        "connection" => "HTTP_CONNECTION",
        "cookie" => "HTTP_COOKIE",
        "origin" => "HTTP_ORIGIN",
        "referer" => "HTTP_REFERER",
        "x-forwarded-for" => "HTTP_X_FORWARDED_FOR",
        "x-forwarded-proto" => "HTTP_X_FORWARDED_PROTO",
        "x-request-id" => "HTTP_X_REQUEST_ID",
        _ => {
            let mut key = String::with_capacity(5 + name.len());
            key.push_str("HTTP_");
            key.extend(name.chars().map(|c| match c {
                '-' => '_',
                c => c.to_ascii_uppercase(),
            }));
            return Some(Cow::Owned(key));
        }
    };
    Some(Cow::Borrowed(known))
}

/// `REQUEST_METHOD`: the standard methods need no allocation.
fn method_str(method: &Method) -> WsgiStr {
    let known = match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => return WsgiStr::from(method.as_str()),
    };
    WsgiStr::from_static(known)
}

/// How many bytes the values of [`Environ::from_scope`] take, about: enough that its buffer
/// rarely grows.
fn text_capacity(scope: &HttpScope) -> usize {
    let headers: usize = scope.headers.iter().map(|(_, value)| value.len() + 2).sum();
    // The decoded path; the raw path and the query (RAW_URI); SCRIPT_NAME when it is not
    // part of the path; two addresses and ports.
    scope.path.len()
        + scope.raw_path.len()
        + scope.query_string.len()
        + scope.root_path.len()
        + 2 * (39 + 5)
        + headers
}

/// The buffer that [`Environ::from_scope`] writes its values into: each value is the
/// bytes written since the last one, split off as a shared slice (no copy, no allocation
/// while the capacity lasts).
struct Text(BytesMut);

impl Text {
    fn new(capacity: usize) -> Self {
        Text(BytesMut::with_capacity(capacity))
    }

    fn extend(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }

    /// The bytes written since the last value.
    fn take(&mut self) -> WsgiStr {
        if self.0.is_empty() {
            return WsgiStr::new();
        }
        WsgiStr::from(self.0.split().freeze())
    }

    fn piece(&mut self, bytes: &[u8]) -> WsgiStr {
        self.extend(bytes);
        self.take()
    }

    /// An IP address as text, as `Display` writes it. IPv4 is written digit by digit:
    /// `Display` pads through a formatter, which costs more than the rest of the environ.
    fn ip(&mut self, ip: IpAddr) -> WsgiStr {
        match ip {
            IpAddr::V4(v4) => {
                // Written digit by digit on the stack, then added to the buffer at once:
                // each addition to the buffer costs a capacity check and a copy call.
                let mut text = [0u8; 15];
                let mut len = 0;
                for (i, octet) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        text[len] = b'.';
                        len += 1;
                    }
                    if octet >= 100 {
                        text[len] = b'0' + octet / 100;
                        len += 1;
                    }
                    if octet >= 10 {
                        text[len] = b'0' + octet / 10 % 10;
                        len += 1;
                    }
                    text[len] = b'0' + octet % 10;
                    len += 1;
                }
                self.extend(&text[..len]);
            }
            IpAddr::V6(v6) => {
                // Writing into a `BytesMut` cannot fail.
                let _ = write!(self.0, "{v6}");
            }
        }
        self.take()
    }

    /// A port number as text.
    fn port(&mut self, port: u16) -> WsgiStr {
        match port {
            80 => WsgiStr::from_static("80"),
            443 => WsgiStr::from_static("443"),
            _ => {
                self.extend(itoa::Buffer::new().format(port).as_bytes());
                self.take()
            }
        }
    }

    /// The request path with every byte: `raw_path` percent-decoded when it is the path the
    /// scope describes (so `%FF` stays the byte 0xFF, which `path` had to turn into U+FFFD);
    /// otherwise `path`'s UTF-8 bytes (a middleware rewrote `path`, or the server sent no
    /// `raw_path`).
    fn decoded_path(&mut self, scope: &HttpScope) -> WsgiStr {
        if !scope.raw_path.is_empty() {
            if !scope.raw_path.contains(&b'%') {
                // Nothing to decode: the wire bytes are the path when they say what `path`
                // says.
                if scope.raw_path == scope.path.as_bytes() {
                    return self.piece(&scope.raw_path);
                }
            } else {
                self.0
                    .extend(percent_encoding::percent_decode(&scope.raw_path));
                if String::from_utf8_lossy(&self.0) == scope.path {
                    return self.take();
                }
                self.0.clear();
            }
        }
        self.piece(scope.path.as_bytes())
    }
}

/// The host and port of the `Host` header: `example.com:8080`, `[::1]:8080`, `example.com`.
fn host_header(headers: &HeaderMap) -> Option<(&str, Option<u16>)> {
    let host = headers.get(http::header::HOST)?.to_str().ok()?;
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        (ip, after.strip_prefix(':'))
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        }
    };
    if name.is_empty() {
        return None;
    }
    let port = match port {
        Some(p) => Some(p.parse().ok()?),
        None => None,
    };
    Some((name, port))
}

/// Decodes one name or value of an `application/x-www-form-urlencoded` query: `+` is a space,
/// `%XX` a byte. Malformed escapes stay as they are, as browsers and Python leave them.
fn decode_form(raw: &[u8]) -> WsgiStr {
    let spaced: Cow<'_, [u8]> = if raw.contains(&b'+') {
        Cow::Owned(
            raw.iter()
                .map(|&b| if b == b'+' { b' ' } else { b })
                .collect(),
        )
    } else {
        Cow::Borrowed(raw)
    };
    let decoded: Cow<'_, [u8]> = percent_encoding::percent_decode(&spaced).into();
    WsgiStr::from(decoded.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderValue, Method};

    #[test]
    fn the_wsgi_entries_are_replaced_and_removed_as_any_other() {
        let mut environ = Environ::new();
        assert_eq!(environ.version(), Some(WSGI_VERSION));
        assert_eq!(environ.url_scheme(), "http");
        let keys: Vec<&str> = environ.iter().map(|(key, _)| key).collect();
        assert_eq!(
            keys,
            [
                "wsgi.input_terminated",
                "wsgi.multiprocess",
                "wsgi.multithread",
                "wsgi.run_once",
                "wsgi.url_scheme",
                "wsgi.version",
            ]
        );

        assert_eq!(
            environ.insert("wsgi.multithread", Value::Bool(false)),
            Some(Value::Bool(true))
        );
        assert!(!environ.multithread());
        assert_eq!(
            environ.insert("wsgi.multithread", Value::Bool(true)),
            Some(Value::Bool(false))
        );
        assert_eq!(environ.remove("wsgi.multithread"), Some(Value::Bool(true)));
        assert_eq!(environ.remove("wsgi.multithread"), None);
        assert!(!environ.contains_key("wsgi.multithread"));
        assert_eq!(
            environ.remove("wsgi.run_once"),
            Some(Value::Bool(false)),
            "a fixed entry never set is removed too"
        );
        assert_eq!(environ.iter().count(), 4);

        let https = {
            let mut scope = HttpScope::new(Method::GET, "/".to_owned());
            scope.scheme = "https".into();
            Environ::from_scope(&scope)
        };
        assert_eq!(https.url_scheme(), "https");
        assert_eq!(
            https
                .iter()
                .filter(|(key, _)| *key == "wsgi.url_scheme")
                .count(),
            1
        );
    }

    #[test]
    fn a_scopes_environ_list_is_sized_once_to_its_entries() {
        for https in [false, true] {
            let mut scope = HttpScope::new(Method::POST, "/a".to_owned());
            scope.client = Some("10.0.0.1:5000".parse().unwrap());
            if https {
                scope.scheme = "https".into();
            }
            for (name, value) in [
                ("host", "example.com"),
                ("content-type", "text/plain"),
                ("content-length", "3"),
                ("x-a", "1"),
                ("x-a", "2"),
            ] {
                scope.headers.append(name, HeaderValue::from_static(value));
            }
            let environ = Environ::from_scope(&scope);
            let entries = &environ.vars.entries;
            assert_eq!(entries.len(), scope_entries(&scope), "https {https}");
            assert_eq!(entries.capacity(), entries.len(), "https {https}");
        }
    }

    #[test]
    fn an_ipv4_address_is_written_as_display_writes_it() {
        let mut text = Text::new(0);
        for octets in [
            [0, 0, 0, 0],
            [9, 10, 99, 100],
            [127, 0, 0, 1],
            [255, 254, 205, 1],
        ] {
            let ip = IpAddr::from(octets);
            assert_eq!(text.ip(ip), ip.to_string());
        }
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(text.ip(v6), "2001:db8::1");
    }

    #[test]
    fn cgi_keys() {
        assert_eq!(cgi_key("x-forwarded-for").unwrap(), "HTTP_X_FORWARDED_FOR");
        assert_eq!(cgi_key("content-type").unwrap(), "CONTENT_TYPE");
        assert_eq!(cgi_key("x_forwarded_for"), None);
    }

    #[test]
    fn host_header_forms() {
        let mut h = HeaderMap::new();
        for (value, expected) in [
            ("example.com", Some(("example.com", None))),
            ("example.com:8080", Some(("example.com", Some(8080)))),
            ("[::1]:8080", Some(("::1", Some(8080)))),
            ("[::1]", Some(("::1", None))),
            ("example.com:http", None),
            (":80", None),
        ] {
            h.insert(http::header::HOST, HeaderValue::from_static(value));
            let got = host_header(&h);
            assert_eq!(got, expected, "{value}");
        }
    }

    #[test]
    fn server_name_falls_back_to_host_header_then_localhost() {
        let mut scope = HttpScope::new(Method::GET, "/");
        scope.scheme = "https".into();
        let environ = Environ::from_scope(&scope);
        assert_eq!(environ.server_name(), "localhost");
        assert_eq!(environ.server_port(), "443");
        scope
            .headers
            .insert("host", HeaderValue::from_static("example.org:8443"));
        let environ = Environ::from_scope(&scope);
        assert_eq!(environ.server_name(), "example.org");
        assert_eq!(environ.server_port(), "8443");
        assert_eq!(environ.get_str("HTTPS").unwrap(), "on");
    }
}
