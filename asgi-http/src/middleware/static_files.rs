//! [`StaticFiles`]: a directory served over HTTP (Starlette's `StaticFiles`, tower-http's
//! `ServeDir`).
//!
//! Unlike the other modules here it is an app, not a layer around one, as in Starlette:
//! mount it where the files belong (`Mount::new().mount("/static", files)`, or as a router's
//! fallback). It serves the part of the path below the scope's `root_path`.
//!
//! # What it answers
//!
//! - `GET` and `HEAD` (same headers, no body); other methods get `405` with `Allow`.
//! - `Content-Type` from the file name ([`mime_guess`]), `charset=utf-8` for text;
//!   `Content-Length`; `Accept-Ranges: bytes`.
//! - `ETag` (from the modification time and size) and `Last-Modified`; `If-None-Match`
//!   (weak comparison) and, without it, `If-Modified-Since` give `304 Not Modified`.
//! - `Range: bytes=...` gives `206 Partial Content`: one range as a plain body with
//!   `Content-Range`, several as `multipart/byteranges` (overlapping ones merged). A range
//!   that starts past the end gives `416` with `Content-Range: bytes */SIZE`. A malformed
//!   header, more than [`MAX_RANGES`] ranges, or an `If-Range` that no longer matches gives
//!   the whole file with `200`, as RFC 9110 allows.
//! - With [`precompressed`](StaticFiles::precompressed) on (the default), a sibling
//!   `NAME.br` or `NAME.gz` is sent instead of `NAME` when the request's `Accept-Encoding`
//!   takes that coding, with `Content-Encoding` and the original's content type; every
//!   answer then says `Vary: Accept-Encoding`.
//! - Whole files go out as one `http.response.pathsend` when the server supports it (the
//!   server sends the file), else in chunks of [`FILE_CHUNK_SIZE`] bytes; ranges are always
//!   read in such chunks.
//! - [`html`](StaticFiles::html) mode: a directory serves its `index.html` (a directory path
//!   without its trailing `/` is redirected to it with `307` first, so relative links work),
//!   and a miss serves the top `404.html` with status `404` when there is one.
//!
//! # What it refuses
//!
//! Everything outside the directory is a `404 Not Found`, as if it did not exist: a path
//! with a `..` or `.` segment (also when it came percent-encoded, `%2e%2e`, since the scope's
//! path is decoded), a backslash, a NUL byte, a segment that is itself an absolute path or a
//! drive prefix, and a symlink whose target lies outside the directory unless
//! [`follow_symlinks`](StaticFiles::follow_symlinks) allows it. Directories outside html
//! mode, and anything that is not a regular file, are `404` too. WebSocket scopes get a
//! `404` denial; the lifespan is answered with "no lifespan support".
//!
//! # Example
//!
//! ```no_run
//! use asgi_http::middleware::static_files::StaticFiles;
//! use asgi_http::mount::Mount;
//!
//! # fn main() -> std::io::Result<()> {
//! let files = StaticFiles::new("static")?.html(true);
//! let app = Mount::new().mount("/", files);
//! # Ok(()) }
//! ```

use std::fmt;
use std::io::{self, SeekFrom};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use asgi_core::bytes::Bytes;
use asgi_core::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use asgi_core::{App, Error, Receiver, Scope, SendEvent, Sender, async_trait};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

pub use crate::response::FILE_CHUNK_SIZE;
use crate::router::route_path;

/// The most ranges one request may ask for; a `Range` header with more is ignored (the
/// whole file is sent with `200`).
///
/// 16: video players and PDF readers ask for one to a few; hundreds of tiny ranges are a
/// known way to make a server do much work for little (CVE-2011-3192, "Apache Killer").
pub const MAX_RANGES: usize = 16;

/// Serves a directory; see the [module docs](self).
#[derive(Clone)]
pub struct StaticFiles {
    config: Arc<Config>,
}

#[derive(Debug, Clone)]
struct Config {
    root: PathBuf,
    html: bool,
    follow_symlinks: bool,
    precompressed: bool,
}

impl fmt::Debug for StaticFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticFiles")
            .field("config", &self.config)
            .finish()
    }
}

impl StaticFiles {
    /// Serves the files under `directory`; html mode off, symlinks kept inside,
    /// precompressed siblings on.
    ///
    /// # Errors
    ///
    /// The I/O error when `directory` does not exist or is not a directory (checked now, as
    /// Starlette's `check_dir` does, so that a typo fails at startup and not per request).
    pub fn new(directory: impl AsRef<Path>) -> io::Result<Self> {
        let root = std::fs::canonicalize(directory.as_ref())?;
        if !root.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("{} is not a directory", root.display()),
            ));
        }
        Ok(StaticFiles {
            config: Arc::new(Config {
                root,
                html: false,
                follow_symlinks: false,
                precompressed: true,
            }),
        })
    }

    /// HTML mode: `index.html` for directories, `404.html` for misses. Default off.
    pub fn html(mut self, on: bool) -> Self {
        Arc::make_mut(&mut self.config).html = on;
        self
    }

    /// Serves symlinks whose targets lie outside the directory. Default off: such a link
    /// is a `404`.
    pub fn follow_symlinks(mut self, on: bool) -> Self {
        Arc::make_mut(&mut self.config).follow_symlinks = on;
        self
    }

    /// Serves `NAME.br` / `NAME.gz` siblings by `Accept-Encoding`. Default on.
    pub fn precompressed(mut self, on: bool) -> Self {
        Arc::make_mut(&mut self.config).precompressed = on;
        self
    }

    /// The directory served (canonical).
    pub fn directory(&self) -> &Path {
        &self.config.root
    }
}

/// What a request path resolves to.
enum Resolved {
    File(PathBuf, std::fs::Metadata),
    /// A directory asked for without its trailing slash, in html mode.
    AddSlash,
    Missing,
}

/// The path below the root that `relative` names, or `None` when it tries to leave it.
fn safe_join(root: &Path, relative: &str) -> Option<PathBuf> {
    let mut path = root.to_path_buf();
    for segment in relative.split('/') {
        if segment.is_empty() {
            continue;
        }
        if segment == "."
            || segment == ".."
            || segment.contains('\\')
            || segment.contains('\0')
            || segment.contains(':')
        {
            return None;
        }
        let mut components = Path::new(segment).components();
        match (components.next(), components.next()) {
            (Some(Component::Normal(part)), None) => path.push(part),
            _ => return None,
        }
    }
    Some(path)
}

impl Config {
    /// The regular file at `path`, if it is one and lies inside the root (or symlinks may
    /// leave it).
    async fn regular_file(&self, path: &Path) -> Option<(PathBuf, std::fs::Metadata)> {
        let canonical = tokio::fs::canonicalize(path).await.ok()?;
        if !self.follow_symlinks && !canonical.starts_with(&self.root) {
            return None;
        }
        let metadata = tokio::fs::metadata(&canonical).await.ok()?;
        metadata.is_file().then_some((canonical, metadata))
    }

    async fn resolve(&self, relative: &str) -> Resolved {
        let Some(path) = safe_join(&self.root, relative) else {
            return Resolved::Missing;
        };
        let Ok(canonical) = tokio::fs::canonicalize(&path).await else {
            return Resolved::Missing;
        };
        if !self.follow_symlinks && !canonical.starts_with(&self.root) {
            return Resolved::Missing;
        }
        let Ok(metadata) = tokio::fs::metadata(&canonical).await else {
            return Resolved::Missing;
        };
        if metadata.is_file() {
            return Resolved::File(canonical, metadata);
        }
        if metadata.is_dir() && self.html {
            if !relative.ends_with('/') {
                return Resolved::AddSlash;
            }
            if let Some((file, metadata)) = self.regular_file(&path.join("index.html")).await {
                return Resolved::File(file, metadata);
            }
        }
        Resolved::Missing
    }
}

fn content_type(path: &Path) -> HeaderValue {
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    let text = mime.type_() == mime_guess::mime::TEXT
        || mime.essence_str() == "application/javascript"
        || mime.essence_str() == "application/json";
    let value = if text && mime.get_param(mime_guess::mime::CHARSET).is_none() {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_string()
    };
    HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static("application/octet-stream"))
}

fn modified(metadata: &std::fs::Metadata) -> SystemTime {
    metadata.modified().unwrap_or(UNIX_EPOCH)
}

fn etag(metadata: &std::fs::Metadata) -> String {
    let since = modified(metadata)
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("\"{since:x}-{:x}\"", metadata.len())
}

/// The q-value the request's `Accept-Encoding` gives `coding` (`*` counts), 0 when refused.
fn accepts(headers: &HeaderMap, coding: &str) -> bool {
    let mut named = None;
    let mut star = None;
    for value in headers.get_all(header::ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mut parts = item.split(';');
            let token = parts.next().unwrap_or("").trim();
            let q = parts
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
                .map_or(1.0, |(_, v)| v.trim().parse::<f32>().unwrap_or(0.0));
            if token.eq_ignore_ascii_case(coding) {
                named = Some(q);
            } else if token == "*" {
                star = Some(q);
            }
        }
    }
    named.or(star).is_some_and(|q| q > 0.0)
}

/// True when an `If-None-Match` list names `tag` (weak comparison) or is `*`.
fn none_match(header: &str, tag: &str) -> bool {
    let strip = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    header
        .split(',')
        .any(|t| t.trim() == "*" || strip(t) == strip(tag))
}

/// What a `Range` header asks of a file of `len` bytes.
#[derive(Debug, PartialEq, Eq)]
enum Ranges {
    /// Send the whole file (no header, malformed, too many ranges).
    Whole,
    /// No range starts inside the file.
    Unsatisfiable,
    /// These ranges (inclusive ends), sorted and merged.
    Parts(Vec<(u64, u64)>),
}

fn parse_ranges(header: &str, len: u64) -> Ranges {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return Ranges::Whole;
    };
    let items: Vec<&str> = spec
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if items.is_empty() || items.len() > MAX_RANGES {
        return Ranges::Whole;
    }
    let mut parts = Vec::new();
    for item in items {
        let Some((start, end)) = item.split_once('-') else {
            return Ranges::Whole;
        };
        let (start, end) = (start.trim(), end.trim());
        let range = if start.is_empty() {
            let Ok(suffix) = end.parse::<u64>() else {
                return Ranges::Whole;
            };
            (suffix > 0 && len > 0).then(|| (len.saturating_sub(suffix), len - 1))
        } else {
            let Ok(first) = start.parse::<u64>() else {
                return Ranges::Whole;
            };
            let last = if end.is_empty() {
                u64::MAX
            } else {
                match end.parse::<u64>() {
                    Ok(last) if last >= first => last,
                    _ => return Ranges::Whole,
                }
            };
            (first < len).then(|| (first, last.min(len - 1)))
        };
        if let Some(range) = range {
            parts.push(range);
        }
    }
    if parts.is_empty() {
        return Ranges::Unsatisfiable;
    }
    parts.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(parts.len());
    for (start, end) in parts {
        match merged.last_mut() {
            Some(last) if start <= last.1.saturating_add(1) => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    Ranges::Parts(merged)
}

/// Sends `len` bytes of `file` from `start`, in chunks, each with `more_body: true`.
async fn send_slice(
    send: &mut Sender,
    file: &mut tokio::fs::File,
    start: u64,
    len: u64,
) -> Result<(), Error> {
    file.seek(SeekFrom::Start(start)).await?;
    let mut left = len;
    while left > 0 {
        let want = usize::try_from(left).map_or(FILE_CHUNK_SIZE, |l| l.min(FILE_CHUNK_SIZE));
        let mut buffer = vec![0u8; want];
        let read = file.read(&mut buffer).await?;
        if read == 0 {
            return Err(Error::new(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file became shorter while it was sent",
            )));
        }
        buffer.truncate(read);
        left -= read as u64;
        send.send(SendEvent::response_body(buffer, true)).await?;
    }
    Ok(())
}

fn part_head(
    boundary: &str,
    content_type: &HeaderValue,
    range: (u64, u64),
    len: u64,
    first: bool,
) -> String {
    format!(
        "{}--{boundary}\r\ncontent-type: {}\r\ncontent-range: bytes {}-{}/{len}\r\n\r\n",
        if first { "" } else { "\r\n" },
        content_type.to_str().unwrap_or("application/octet-stream"),
        range.0,
        range.1,
    )
}

impl StaticFiles {
    async fn serve(&self, scope: &asgi_core::HttpScope, send: &mut Sender) -> Result<(), Error> {
        let config = &self.config;
        if scope.method != Method::GET && scope.method != Method::HEAD {
            let mut headers = HeaderMap::new();
            headers.insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return super::reject(
                &Scope::from(scope.clone()),
                send,
                StatusCode::METHOD_NOT_ALLOWED,
                headers,
                "Method Not Allowed",
            )
            .await;
        }
        let relative = route_path(&scope.path, &scope.root_path);
        let (path, metadata, status) = match config.resolve(relative).await {
            Resolved::File(path, metadata) => (path, metadata, StatusCode::OK),
            Resolved::AddSlash => {
                let mut location = format!("{}/", scope.path);
                if !scope.query_string.is_empty() {
                    location.push('?');
                    location.push_str(&String::from_utf8_lossy(&scope.query_string));
                }
                return crate::response::Response::temporary_redirect(&location)
                    .send(send)
                    .await;
            }
            Resolved::Missing => {
                let page = if config.html {
                    config.regular_file(&config.root.join("404.html")).await
                } else {
                    None
                };
                match page {
                    Some((path, metadata)) => (path, metadata, StatusCode::NOT_FOUND),
                    None => {
                        return super::reject(
                            &Scope::from(scope.clone()),
                            send,
                            StatusCode::NOT_FOUND,
                            HeaderMap::new(),
                            "Not Found",
                        )
                        .await;
                    }
                }
            }
        };
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, content_type(&path));
        let (path, metadata) = if config.precompressed {
            headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
            let mut chosen = (path.clone(), metadata);
            for (coding, suffix) in [("br", "br"), ("gzip", "gz")] {
                if !accepts(&scope.headers, coding) {
                    continue;
                }
                let mut sibling = path.clone().into_os_string();
                sibling.push(".");
                sibling.push(suffix);
                if let Some(found) = config.regular_file(Path::new(&sibling)).await {
                    headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(coding));
                    chosen = found;
                    break;
                }
            }
            chosen
        } else {
            (path, metadata)
        };
        let len = metadata.len();
        let tag = etag(&metadata);
        let last_modified = httpdate::fmt_http_date(modified(&metadata));
        if status == StatusCode::OK {
            if let Ok(value) = HeaderValue::from_str(&tag) {
                headers.insert(header::ETAG, value);
            }
            if let Ok(value) = HeaderValue::from_str(&last_modified) {
                headers.insert(header::LAST_MODIFIED, value);
            }
            headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
            let request = &scope.headers;
            let not_modified = match request.get(header::IF_NONE_MATCH) {
                Some(value) => value.to_str().is_ok_and(|v| none_match(v, &tag)),
                None => request
                    .get(header::IF_MODIFIED_SINCE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| httpdate::parse_http_date(v).ok())
                    .is_some_and(|since| {
                        // HTTP dates have whole seconds: compare at that precision.
                        let secs =
                            |t: SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
                        secs(modified(&metadata)) <= secs(since)
                    }),
            };
            if not_modified {
                headers.remove(header::CONTENT_TYPE);
                send.send(SendEvent::response_start(StatusCode::NOT_MODIFIED, headers))
                    .await?;
                send.send(SendEvent::response_body(Bytes::new(), false))
                    .await?;
                return Ok(());
            }
            let range_applies = request.get(header::IF_RANGE).is_none_or(|v| {
                v.to_str().is_ok_and(|v| {
                    let v = v.trim();
                    (!v.starts_with("W/") && v == tag) || v == last_modified
                })
            });
            let ranges = match request.get(header::RANGE).and_then(|v| v.to_str().ok()) {
                Some(value) if range_applies => parse_ranges(value, len),
                _ => Ranges::Whole,
            };
            match ranges {
                Ranges::Whole => {}
                Ranges::Unsatisfiable => {
                    let mut headers = HeaderMap::new();
                    headers.insert(
                        header::CONTENT_RANGE,
                        HeaderValue::from_str(&format!("bytes */{len}"))
                            .unwrap_or(HeaderValue::from_static("bytes */0")),
                    );
                    return super::reject(
                        &Scope::from(scope.clone()),
                        send,
                        StatusCode::RANGE_NOT_SATISFIABLE,
                        headers,
                        "Range Not Satisfiable",
                    )
                    .await;
                }
                Ranges::Parts(parts) => {
                    return self
                        .send_ranges(scope, send, headers, &path, len, &parts)
                        .await;
                }
            }
        }
        headers.insert(header::CONTENT_LENGTH, crate::response::content_length(len));
        send.send(SendEvent::response_start(status, headers))
            .await?;
        if scope.method == Method::HEAD {
            send.send(SendEvent::response_body(Bytes::new(), false))
                .await?;
        } else if scope
            .extensions
            .supports(asgi_core::extensions::HTTP_RESPONSE_PATHSEND)
        {
            send.send(SendEvent::HttpResponsePathsend { path }).await?;
        } else {
            let mut file = tokio::fs::File::open(&path).await?;
            send_slice(send, &mut file, 0, len).await?;
            send.send(SendEvent::response_body(Bytes::new(), false))
                .await?;
        }
        Ok(())
    }

    async fn send_ranges(
        &self,
        scope: &asgi_core::HttpScope,
        send: &mut Sender,
        mut headers: HeaderMap,
        path: &Path,
        len: u64,
        parts: &[(u64, u64)],
    ) -> Result<(), Error> {
        let head_only = scope.method == Method::HEAD;
        if let [(start, end)] = parts {
            let (start, end) = (*start, *end);
            headers.insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes {start}-{end}/{len}"))
                    .unwrap_or(HeaderValue::from_static("bytes */0")),
            );
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start + 1));
            send.send(SendEvent::response_start(
                StatusCode::PARTIAL_CONTENT,
                headers,
            ))
            .await?;
            if !head_only {
                let mut file = tokio::fs::File::open(path).await?;
                send_slice(send, &mut file, start, end - start + 1).await?;
            }
            send.send(SendEvent::response_body(Bytes::new(), false))
                .await?;
            return Ok(());
        }
        let content_type = headers
            .remove(header::CONTENT_TYPE)
            .unwrap_or(HeaderValue::from_static("application/octet-stream"));
        let boundary = uuid::Uuid::new_v4().simple().to_string();
        let closing = format!("\r\n--{boundary}--\r\n");
        let total: u64 = parts
            .iter()
            .enumerate()
            .map(|(i, &range)| {
                part_head(&boundary, &content_type, range, len, i == 0).len() as u64 + range.1
                    - range.0
                    + 1
            })
            .sum::<u64>()
            + closing.len() as u64;
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(&format!("multipart/byteranges; boundary={boundary}"))
                .unwrap_or(HeaderValue::from_static("multipart/byteranges")),
        );
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(total));
        send.send(SendEvent::response_start(
            StatusCode::PARTIAL_CONTENT,
            headers,
        ))
        .await?;
        if !head_only {
            let mut file = tokio::fs::File::open(path).await?;
            for (i, &range) in parts.iter().enumerate() {
                let head = part_head(&boundary, &content_type, range, len, i == 0);
                send.send(SendEvent::response_body(head, true)).await?;
                send_slice(send, &mut file, range.0, range.1 - range.0 + 1).await?;
            }
            send.send(SendEvent::response_body(closing, false)).await?;
        } else {
            send.send(SendEvent::response_body(Bytes::new(), false))
                .await?;
        }
        Ok(())
    }
}

#[async_trait]
impl App for StaticFiles {
    async fn call(&self, scope: Scope, _receive: Receiver, mut send: Sender) -> Result<(), Error> {
        match &scope {
            Scope::Http(http) => self.serve(http, &mut send).await,
            Scope::WebSocket(_) => {
                super::reject(
                    &scope,
                    &mut send,
                    StatusCode::NOT_FOUND,
                    HeaderMap::new(),
                    "Not Found",
                )
                .await
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_parsed_merged_and_bounded() {
        assert_eq!(parse_ranges("bytes=0-9", 100), Ranges::Parts(vec![(0, 9)]));
        assert_eq!(
            parse_ranges("bytes=90-", 100),
            Ranges::Parts(vec![(90, 99)])
        );
        assert_eq!(
            parse_ranges("bytes=-10", 100),
            Ranges::Parts(vec![(90, 99)])
        );
        assert_eq!(
            parse_ranges("bytes=50-500", 100),
            Ranges::Parts(vec![(50, 99)])
        );
        assert_eq!(
            parse_ranges("bytes=20-29, 0-9, 5-12", 100),
            Ranges::Parts(vec![(0, 12), (20, 29)])
        );
        assert_eq!(parse_ranges("bytes=100-", 100), Ranges::Unsatisfiable);
        assert_eq!(parse_ranges("bytes=-0", 100), Ranges::Unsatisfiable);
        assert_eq!(parse_ranges("bytes=9-1", 100), Ranges::Whole);
        assert_eq!(parse_ranges("items=0-1", 100), Ranges::Whole);
        assert_eq!(parse_ranges("bytes=x-1", 100), Ranges::Whole);
        let many = (0..=MAX_RANGES)
            .map(|i| format!("{}-{}", i * 2, i * 2))
            .collect::<Vec<_>>();
        assert_eq!(
            parse_ranges(&format!("bytes={}", many.join(",")), 100),
            Ranges::Whole
        );
    }

    #[test]
    fn joins_refuse_every_way_out() {
        let root = Path::new("/srv/files");
        assert_eq!(safe_join(root, "/a/b.txt"), Some(root.join("a/b.txt")));
        for bad in [
            "/../etc/passwd",
            "/a/../../x",
            "/./a",
            "/a\\..\\b",
            "/a\0b",
            "/c:/x",
        ] {
            assert_eq!(safe_join(root, bad), None, "{bad:?}");
        }
        // An absolute path inside the request path stays below the root.
        assert_eq!(
            safe_join(root, "//etc/passwd"),
            Some(root.join("etc/passwd"))
        );
    }
}
