//! [`Compression`]: gzip, brotli and zstd responses, flushed at the end of every body event;
//! optionally, compressed request bodies inflated with a size limit.
//!
//! # Responses
//!
//! The coding comes from the request's `Accept-Encoding`, read with its q-values: the
//! supported coding (`br`, `zstd`, `gzip`) with the highest q wins, ties going in that order;
//! `*` stands for any coding not named; `q=0` refuses one. When the client refuses
//! `identity` (`identity;q=0`, or `*;q=0` without naming it), responses below the minimum
//! size are compressed too.
//!
//! A response is left as it is when it:
//! - answers a `HEAD` request, or has a status without a body (1xx, 204, 304), or is a `206`;
//! - already has a `Content-Encoding`, or says `Cache-Control: no-transform`;
//! - is `text/event-stream`, unless [`CompressionLayer::compress_event_streams`] is on
//!   (Starlette's default: proxies and browsers handle compressed event streams poorly);
//! - has a `Content-Length` below [`CompressionLayer::minimum_size`];
//! - has a content type that is compressed already: images but SVG, audio, video, zip,
//!   gzip, zstd, 7z, PDF, WOFF fonts.
//!
//! The decision is made at `http.response.start`, which goes out at once, never held (so an
//! event stream's headers reach the client before its first event). A response without
//! `Content-Length` (a stream) is compressed whatever its size. A compressed response gets
//! `Content-Encoding` and `Vary: Accept-Encoding`, and loses `Content-Length`. A compressed
//! `http.response.pathsend` is read in chunks of [`OUTPUT_CHUNK_SIZE`] and compressed here,
//! instead of being sent by the server as it is: for static files, precompressed siblings
//! served by [`StaticFiles`](super::static_files) (which carry `Content-Encoding`, and so
//! pass) save that work.
//!
//! # Streams stay streams
//!
//! Every body event is compressed and the encoder **flushed** before the event's bytes go
//! out, so each event the app sends arrives at the client, decodable, before the app sends
//! the next one: server-sent events and progress streams work through it. The cost is a
//! slightly worse ratio for responses sent in many small events.
//!
//! # Memory
//!
//! The middleware never holds more than one event of the app's plus the encoder's window:
//! compressed output leaves in events of at most [`OUTPUT_CHUNK_SIZE`] bytes, each sent (and
//! waited for, with the server's backpressure) before the next is produced.
//!
//! # Requests
//!
//! With [`CompressionLayer::decompress_requests`], a request body with `Content-Encoding`
//! `gzip`, `br` or `zstd` is inflated as the app reads it, in events of at most
//! [`OUTPUT_CHUNK_SIZE`], and the scope loses its `content-encoding` and `content-length`
//! headers. More inflated bytes than the limit (a zip bomb) gets `413`; a corrupt body `400`;
//! another coding `415`. The app sees `http.disconnect` in those cases, and its later sends
//! fail with `Disconnected`.
//!
//! # Example
//!
//! ```
//! use asgi_core::AppExt;
//! use asgi_http::middleware::compression::{CompressionLayer, Level};
//! # async fn app(_: asgi_core::Scope, _: asgi_core::Receiver, _: asgi_core::Sender)
//! #     -> Result<(), asgi_core::Error> { Ok(()) }
//!
//! let app = app.with(
//!     CompressionLayer::new()
//!         .minimum_size(1024)
//!         .level(Level::Fastest)
//!         .decompress_requests(Some(10 * 1024 * 1024)),
//! );
//! # fn assert_app(_: impl asgi_core::App) {}
//! # assert_app(app);
//! ```

use std::fmt;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use asgi_core::bytes::Bytes;
use asgi_core::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use asgi_core::{
    App, Error, EventSink, EventSource, Layer, ReceiveEvent, Receiver, Scope, SendError, SendEvent,
    Sender, async_trait,
};
use compression_codecs::core::util::PartialBuffer;
use compression_codecs::{
    BrotliDecoder, BrotliEncoder, Decode, Encode, EncodeV2, GzipDecoder, GzipEncoder, ZstdDecoder,
    ZstdEncoder,
};

/// The smallest response compressed, unless [`CompressionLayer::minimum_size`] says
/// otherwise.
///
/// Default is 500 bytes, Starlette's: below that, the coding's header and the CPU cost
/// outweigh the saving. Set `0` to compress everything.
pub const DEFAULT_MINIMUM_SIZE: usize = 500;

/// The largest event the middleware sends or hands to the app, in bytes: compressed output,
/// and inflated request bodies, leave in events of at most this size.
///
/// 16 KiB: one TLS record, and small enough that a response's memory stays bounded however
/// large the app's own events are.
pub const OUTPUT_CHUNK_SIZE: usize = 16 * 1024;

/// Content types whose bodies are compressed already: compressing them again costs CPU and
/// saves nothing (with `image/*` but SVG, `video/*` and `audio/*`).
const ALREADY_COMPRESSED: [&str; 7] = [
    "application/zip",
    "application/gzip",
    "application/zstd",
    "application/x-7z-compressed",
    "application/pdf",
    "font/woff",
    "font/woff2",
];

/// How hard to compress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Level {
    /// The codec's fastest level (gzip 1, brotli 0, zstd 1).
    Fastest,
    /// A level suited to responses produced while the client waits: gzip 6, brotli 4,
    /// zstd 3. Brotli's own default (11) is too slow for dynamic responses.
    #[default]
    Default,
    /// The codec's best level (gzip 9, brotli 11, zstd 19): for content compressed once.
    Best,
    /// A codec-specific level, clamped to the codec's range (gzip 0-9, brotli 0-11, zstd
    /// 1-22).
    Precise(i32),
}

/// A content coding this middleware speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Coding {
    Brotli,
    Zstd,
    Gzip,
}

impl Coding {
    /// In order of preference when q-values tie.
    const ALL: [Coding; 3] = [Coding::Brotli, Coding::Zstd, Coding::Gzip];

    fn token(self) -> &'static str {
        match self {
            Coding::Brotli => "br",
            Coding::Zstd => "zstd",
            Coding::Gzip => "gzip",
        }
    }

    fn from_token(token: &str) -> Option<Coding> {
        Coding::ALL
            .into_iter()
            .find(|c| token.eq_ignore_ascii_case(c.token()))
            .or_else(|| token.eq_ignore_ascii_case("x-gzip").then_some(Coding::Gzip))
    }

    fn encoder(self, level: Level) -> Box<dyn EncodeV2 + Send> {
        use compression_codecs::core::Level as L;
        let (gzip, brotli, zstd) = match level {
            Level::Fastest => (1, 0, 1),
            Level::Default => (6, 4, 3),
            Level::Best => (9, 11, 19),
            Level::Precise(n) => (n.clamp(0, 9), n.clamp(0, 11), n.clamp(1, 22)),
        };
        match self {
            Coding::Gzip => Box::new(GzipEncoder::new(L::Precise(gzip).into())),
            Coding::Brotli => Box::new(BrotliEncoder::new(
                compression_codecs::brotli::params::EncoderParams::default()
                    .quality(L::Precise(brotli)),
            )),
            Coding::Zstd => Box::new(ZstdEncoder::new(zstd)),
        }
    }
}

/// What `Accept-Encoding` says: the chosen coding, and whether `identity` is acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Negotiated {
    coding: Option<Coding>,
    identity_ok: bool,
}

fn negotiate(accept: &HeaderMap, enabled: &[Coding]) -> Negotiated {
    let mut star: Option<f32> = None;
    let mut identity: Option<f32> = None;
    let mut named: [Option<f32>; 3] = [None; 3];
    for value in accept.get_all(header::ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mut parts = item.split(';');
            let token = parts.next().unwrap_or("").trim();
            if token.is_empty() {
                continue;
            }
            let mut q = 1.0_f32;
            for param in parts {
                if let Some((k, v)) = param.split_once('=') {
                    if k.trim().eq_ignore_ascii_case("q") {
                        // A malformed q refuses the coding rather than guessing.
                        q = v
                            .trim()
                            .parse::<f32>()
                            .ok()
                            .filter(|q| (0.0..=1.0).contains(q))
                            .unwrap_or(0.0);
                    }
                }
            }
            if token == "*" {
                star = Some(q);
            } else if token.eq_ignore_ascii_case("identity") {
                identity = Some(q);
            } else if let Some(coding) = Coding::from_token(token) {
                let i = Coding::ALL.iter().position(|c| *c == coding).unwrap_or(0);
                named[i] = Some(named[i].map_or(q, |old: f32| old.max(q)));
            }
        }
    }
    let mut best: Option<(Coding, f32)> = None;
    for (i, coding) in Coding::ALL.into_iter().enumerate() {
        if !enabled.contains(&coding) {
            continue;
        }
        let q = named[i].or(star).unwrap_or(0.0);
        if q > 0.0 && best.is_none_or(|(_, b)| q > b) {
            best = Some((coding, q));
        }
    }
    Negotiated {
        coding: best.map(|(c, _)| c),
        identity_ok: identity.or(star).is_none_or(|q| q > 0.0),
    }
}

/// The settings of a [`Compression`] middleware, and its layer. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct CompressionLayer {
    minimum_size: usize,
    level: Level,
    codings: Vec<Coding>,
    compress_event_streams: bool,
    max_inflated_request: Option<usize>,
}

impl Default for CompressionLayer {
    fn default() -> Self {
        CompressionLayer::new()
    }
}

impl CompressionLayer {
    /// gzip, br and zstd at [`Level::Default`], minimum size [`DEFAULT_MINIMUM_SIZE`], no
    /// event streams, no request decompression.
    pub fn new() -> Self {
        CompressionLayer {
            minimum_size: DEFAULT_MINIMUM_SIZE,
            level: Level::Default,
            codings: Coding::ALL.to_vec(),
            compress_event_streams: false,
            max_inflated_request: None,
        }
    }

    /// Responses whose `Content-Length` is below this are not compressed. Default
    /// [`DEFAULT_MINIMUM_SIZE`]; `0` compresses everything. A response without
    /// `Content-Length` (a stream) is always compressed.
    pub fn minimum_size(mut self, bytes: usize) -> Self {
        self.minimum_size = bytes;
        self
    }

    /// How hard to compress. Default [`Level::Default`].
    pub fn level(mut self, level: Level) -> Self {
        self.level = level;
        self
    }

    /// Turns gzip on or off. Default on.
    pub fn gzip(self, on: bool) -> Self {
        self.coding(Coding::Gzip, on)
    }

    /// Turns brotli (`br`) on or off. Default on.
    pub fn br(self, on: bool) -> Self {
        self.coding(Coding::Brotli, on)
    }

    /// Turns zstd on or off. Default on.
    pub fn zstd(self, on: bool) -> Self {
        self.coding(Coding::Zstd, on)
    }

    fn coding(mut self, coding: Coding, on: bool) -> Self {
        self.codings.retain(|c| *c != coding);
        if on {
            self.codings.push(coding);
        }
        self
    }

    /// Compresses `text/event-stream` responses too. Default off, as in Starlette. Each
    /// event still arrives as it is sent (the encoder is flushed per body event).
    pub fn compress_event_streams(mut self, on: bool) -> Self {
        self.compress_event_streams = on;
        self
    }

    /// Inflates compressed request bodies, allowing at most `max_inflated` bytes of inflated
    /// body (more gets `413`). Default `None`: request bodies pass through as they came.
    pub fn decompress_requests(mut self, max_inflated: Option<usize>) -> Self {
        self.max_inflated_request = max_inflated;
        self
    }
}

impl<A: App> Layer<A> for CompressionLayer {
    type App = Compression<A>;

    fn layer(&self, inner: A) -> Compression<A> {
        Compression {
            inner,
            settings: Arc::new(self.clone()),
        }
    }
}

/// The compression middleware; see the [module docs](self).
pub struct Compression<A> {
    inner: A,
    settings: Arc<CompressionLayer>,
}

impl<A> fmt::Debug for Compression<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Compression")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl<A: App> Compression<A> {
    /// Wraps `inner` with the settings of `layer`.
    pub fn new(inner: A, layer: &CompressionLayer) -> Self {
        layer.layer(inner)
    }

    /// The inner app.
    pub fn get_ref(&self) -> &A {
        &self.inner
    }

    /// Unwraps the inner app.
    pub fn into_inner(self) -> A {
        self.inner
    }
}

// Why a request body was refused, shared between the receiver that found it and the call
// that answers it.
const BODY_OK: u8 = 0;
const BODY_TOO_LARGE: u8 = 1;
const BODY_CORRUPT: u8 = 2;

#[async_trait]
impl<A: App> App for Compression<A> {
    async fn call(&self, scope: Scope, receive: Receiver, send: Sender) -> Result<(), Error> {
        let Scope::Http(mut http) = scope else {
            return self.inner.call(scope, receive, send).await;
        };
        let negotiated = negotiate(&http.headers, &self.settings.codings);
        let head_only = http.method == Method::HEAD;
        let Some(limit) = self.settings.max_inflated_request else {
            let send = Sender::new(CompressSink::new(
                send,
                &self.settings,
                negotiated,
                head_only,
            ));
            return self.inner.call(Scope::Http(http), receive, send).await;
        };
        let decoder: Box<dyn DecodeBox> = match http.headers.get(header::CONTENT_ENCODING) {
            None => {
                let send = Sender::new(CompressSink::new(
                    send,
                    &self.settings,
                    negotiated,
                    head_only,
                ));
                return self.inner.call(Scope::Http(http), receive, send).await;
            }
            Some(value) => match value.to_str().ok().map(str::trim) {
                Some(t) if t.eq_ignore_ascii_case("identity") => {
                    let send = Sender::new(CompressSink::new(
                        send,
                        &self.settings,
                        negotiated,
                        head_only,
                    ));
                    return self.inner.call(Scope::Http(http), receive, send).await;
                }
                Some(t) => match Coding::from_token(t) {
                    Some(Coding::Gzip) => Box::new(GzipDecoder::new()),
                    Some(Coding::Brotli) => Box::new(BrotliDecoder::new()),
                    Some(Coding::Zstd) => Box::new(ZstdDecoder::new()),
                    None => return unsupported_coding(send).await,
                },
                None => return unsupported_coding(send).await,
            },
        };
        http.headers.remove(header::CONTENT_ENCODING);
        http.headers.remove(header::CONTENT_LENGTH);
        let refused = Arc::new(AtomicU8::new(BODY_OK));
        let receive = Receiver::new(InflateSource {
            inner: receive,
            decoder,
            pending: Bytes::new(),
            input_done: false,
            finished: false,
            inflated: 0,
            limit,
            refused: refused.clone(),
        });
        let shared = SharedSender {
            sender: Arc::new(tokio::sync::Mutex::new(send)),
            started: Arc::new(AtomicBool::new(false)),
        };
        let sink = CompressSink::new(
            Sender::new(shared.clone()),
            &self.settings,
            negotiated,
            head_only,
        );
        let send = Sender::new(RefusableSink {
            inner: Sender::new(sink),
            refused: refused.clone(),
        });
        let result = self.inner.call(Scope::Http(http), receive, send).await;
        let status = match refused.load(Ordering::Acquire) {
            BODY_TOO_LARGE => StatusCode::PAYLOAD_TOO_LARGE,
            BODY_CORRUPT => StatusCode::BAD_REQUEST,
            _ => return result,
        };
        if shared.started.load(Ordering::Acquire) {
            // The app answered before it read the bad part: its answer stands.
            return result;
        }
        let body: &'static str = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "Request body too large"
        } else {
            "Invalid compressed request body"
        };
        super::reject(
            &Scope::from(asgi_core::HttpScope::new(Method::POST, "/")),
            &mut *shared.sender.lock().await,
            status,
            HeaderMap::new(),
            body,
        )
        .await
    }
}

async fn unsupported_coding(mut send: Sender) -> Result<(), Error> {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::ACCEPT_ENCODING,
        HeaderValue::from_static("gzip, br, zstd"),
    );
    super::reject(
        &Scope::from(asgi_core::HttpScope::new(Method::POST, "/")),
        &mut send,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        headers,
        "Unsupported Content-Encoding",
    )
    .await
}

/// The response side: decides at `http.response.start`, and never holds an event.
struct CompressSink {
    inner: Sender,
    negotiated: Negotiated,
    minimum_size: usize,
    level: Level,
    compress_event_streams: bool,
    head_only: bool,
    state: SinkState,
}

enum SinkState {
    /// Nothing sent yet.
    Idle,
    /// Compressing the body.
    Encoding(Box<dyn EncodeV2 + Send>),
    /// Passing everything through.
    Passing,
}

/// What to do with the encoder after a piece of input.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Nothing: more input follows at once (a file read in chunks).
    Continue,
    /// Flush: the app's body event must reach the client whole.
    Flush,
    /// Finish the stream: the body is complete.
    Finish,
}

impl CompressSink {
    fn new(
        inner: Sender,
        settings: &CompressionLayer,
        negotiated: Negotiated,
        head_only: bool,
    ) -> Self {
        CompressSink {
            inner,
            negotiated,
            minimum_size: settings.minimum_size,
            level: settings.level,
            compress_event_streams: settings.compress_event_streams,
            head_only,
            state: SinkState::Idle,
        }
    }

    fn wants_compression(&self, status: StatusCode, headers: &HeaderMap) -> Option<Coding> {
        let coding = self.negotiated.coding?;
        if self.head_only
            || status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
            || status == StatusCode::PARTIAL_CONTENT
            || headers.contains_key(header::CONTENT_ENCODING)
        {
            return None;
        }
        let no_transform = headers.get_all(header::CACHE_CONTROL).iter().any(|v| {
            v.to_str().is_ok_and(|v| {
                v.split(',')
                    .any(|d| d.trim().eq_ignore_ascii_case("no-transform"))
            })
        });
        let event_stream = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(';')
                    .next()
                    .is_some_and(|m| m.trim().eq_ignore_ascii_case("text/event-stream"))
            });
        if no_transform || (event_stream && !self.compress_event_streams) {
            return None;
        }
        let already_compressed = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                let essence = v
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                (essence.starts_with("image/") && essence != "image/svg+xml")
                    || essence.starts_with("video/")
                    || essence.starts_with("audio/")
                    || ALREADY_COMPRESSED.contains(&essence.as_str())
            });
        if already_compressed {
            return None;
        }
        Some(coding)
    }

    /// Sends the start with the coding's headers and turns the encoder on.
    async fn start_encoding(
        &mut self,
        coding: Coding,
        status: StatusCode,
        mut headers: HeaderMap,
        trailers: bool,
    ) -> Result<(), SendError> {
        headers.remove(header::CONTENT_LENGTH);
        headers.insert(
            header::CONTENT_ENCODING,
            HeaderValue::from_static(coding.token()),
        );
        super::add_vary(&mut headers, "Accept-Encoding");
        self.state = SinkState::Encoding(coding.encoder(self.level));
        self.inner
            .send(SendEvent::HttpResponseStart {
                status,
                headers,
                trailers,
            })
            .await
    }

    /// Compresses `input`, then flushes or finishes the encoder as `step` says, sending the
    /// output in events of at most [`OUTPUT_CHUNK_SIZE`]. The last event carries
    /// `more_body: false` only for [`Step::Finish`].
    async fn encode(&mut self, input: &[u8], step: Step) -> Result<(), SendError> {
        let SinkState::Encoding(encoder) = &mut self.state else {
            return Ok(());
        };
        let mut input = PartialBuffer::new(input);
        let mut output = PartialBuffer::new(vec![0u8; OUTPUT_CHUNK_SIZE]);
        while !input.unwritten().is_empty() {
            Encode::encode(encoder.as_mut(), &mut input, &mut output).map_err(codec_failed)?;
            if output.unwritten().is_empty() {
                let chunk = Bytes::copy_from_slice(output.written());
                output.reset();
                self.inner
                    .send(SendEvent::response_body(chunk, true))
                    .await?;
            }
        }
        if step != Step::Continue {
            loop {
                let done = if step == Step::Flush {
                    Encode::flush(encoder.as_mut(), &mut output)
                } else {
                    Encode::finish(encoder.as_mut(), &mut output)
                }
                .map_err(codec_failed)?;
                if done {
                    break;
                }
                if output.unwritten().is_empty() {
                    let chunk = Bytes::copy_from_slice(output.written());
                    output.reset();
                    self.inner
                        .send(SendEvent::response_body(chunk, true))
                        .await?;
                }
            }
        }
        let last = step == Step::Finish;
        if output.written_len() > 0 || last {
            let chunk = Bytes::copy_from_slice(output.written());
            self.inner
                .send(SendEvent::response_body(chunk, !last))
                .await?;
        }
        Ok(())
    }

    /// Compresses a path-sent file, read in chunks, when the encoder is already on.
    async fn encode_file(&mut self, path: &std::path::Path) -> Result<(), SendError> {
        use tokio::io::AsyncReadExt;
        let mut file = tokio::fs::File::open(path).await.map_err(codec_failed)?;
        let mut buffer = vec![0u8; OUTPUT_CHUNK_SIZE];
        loop {
            let read = file.read(&mut buffer).await.map_err(codec_failed)?;
            if read == 0 {
                return self.encode(&[], Step::Finish).await;
            }
            self.encode(&buffer[..read], Step::Continue).await?;
        }
    }
}

fn codec_failed(error: io::Error) -> SendError {
    // The encoder failed (a bug of its own) or a path-sent file could not be read: the
    // response cannot continue, and the client must see it cut short rather than garbled.
    tracing::error!("response compression failed: {error}");
    SendError::Disconnected
}

fn step(more_body: bool) -> Step {
    if more_body { Step::Flush } else { Step::Finish }
}

#[async_trait]
impl EventSink for CompressSink {
    async fn send(&mut self, event: SendEvent) -> Result<(), SendError> {
        match (&mut self.state, event) {
            (
                SinkState::Idle,
                SendEvent::HttpResponseStart {
                    status,
                    mut headers,
                    trailers,
                },
            ) => {
                let Some(coding) = self.wants_compression(status, &headers) else {
                    self.state = SinkState::Passing;
                    return self
                        .inner
                        .send(SendEvent::HttpResponseStart {
                            status,
                            headers,
                            trailers,
                        })
                        .await;
                };
                let length = headers
                    .get(header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<usize>().ok());
                match length {
                    Some(len) if len < self.minimum_size && self.negotiated.identity_ok => {
                        self.state = SinkState::Passing;
                        super::add_vary(&mut headers, "Accept-Encoding");
                        self.inner
                            .send(SendEvent::HttpResponseStart {
                                status,
                                headers,
                                trailers,
                            })
                            .await
                    }
                    _ => self.start_encoding(coding, status, headers, trailers).await,
                }
            }
            (SinkState::Encoding(_), SendEvent::HttpResponseBody { body, more_body }) => {
                self.encode(&body, step(more_body)).await
            }
            (SinkState::Encoding(_), SendEvent::HttpResponsePathsend { path }) => {
                self.encode_file(&path).await
            }
            (_, event) => self.inner.send(event).await,
        }
    }
}

/// A decoder behind a box, with the methods the receiver needs.
trait DecodeBox: Send {
    fn decode_into(
        &mut self,
        input: &mut PartialBuffer<&[u8]>,
        output: &mut PartialBuffer<Vec<u8>>,
    ) -> io::Result<bool>;
    fn finish_into(&mut self, output: &mut PartialBuffer<Vec<u8>>) -> io::Result<bool>;
}

impl<D: Decode + Send> DecodeBox for D {
    fn decode_into(
        &mut self,
        input: &mut PartialBuffer<&[u8]>,
        output: &mut PartialBuffer<Vec<u8>>,
    ) -> io::Result<bool> {
        self.decode(input, output)
    }

    fn finish_into(&mut self, output: &mut PartialBuffer<Vec<u8>>) -> io::Result<bool> {
        self.finish(output)
    }
}

/// The request side: inflates `http.request` bodies as the app reads them.
struct InflateSource {
    inner: Receiver,
    decoder: Box<dyn DecodeBox>,
    /// The rest of the last compressed event, not yet inflated.
    pending: Bytes,
    /// The last compressed event came (`more_body: false`).
    input_done: bool,
    /// The last inflated event went to the app.
    finished: bool,
    inflated: usize,
    limit: usize,
    refused: Arc<AtomicU8>,
}

impl InflateSource {
    fn refuse(&mut self, why: u8) -> ReceiveEvent {
        self.refused.store(why, Ordering::Release);
        self.finished = true;
        ReceiveEvent::HttpDisconnect
    }
}

#[async_trait]
impl EventSource for InflateSource {
    async fn recv(&mut self) -> ReceiveEvent {
        if self.refused.load(Ordering::Acquire) != BODY_OK {
            return ReceiveEvent::HttpDisconnect;
        }
        if self.finished {
            // The body is complete for the app; compressed bytes after the end of the
            // stream are dropped, what else comes (the disconnect) passes.
            loop {
                match self.inner.recv().await {
                    ReceiveEvent::HttpRequest { .. } => {}
                    other => return other,
                }
            }
        }
        loop {
            if self.pending.is_empty() && !self.input_done {
                match self.inner.recv().await {
                    ReceiveEvent::HttpRequest { body, more_body } => {
                        self.pending = body;
                        self.input_done = !more_body;
                    }
                    other => return other,
                }
            }
            let mut output = PartialBuffer::new(vec![0u8; OUTPUT_CHUNK_SIZE]);
            let pending = self.pending.clone();
            let mut input = PartialBuffer::new(&pending[..]);
            let mut complete = false;
            while !input.unwritten().is_empty() && !output.unwritten().is_empty() {
                match self.decoder.decode_into(&mut input, &mut output) {
                    Ok(true) => {
                        complete = true;
                        break;
                    }
                    Ok(false) => {}
                    Err(_) => return self.refuse(BODY_CORRUPT),
                }
            }
            self.pending = if complete {
                Bytes::new()
            } else {
                pending.slice(input.written_len()..)
            };
            if !complete
                && self.input_done
                && self.pending.is_empty()
                && !output.unwritten().is_empty()
            {
                // All input is in: drain what the decoder still holds. With room left in
                // the output and still not done, the stream was cut short.
                match self.decoder.finish_into(&mut output) {
                    Ok(true) => complete = true,
                    Ok(false) if !output.unwritten().is_empty() => {
                        return self.refuse(BODY_CORRUPT);
                    }
                    Ok(false) => {}
                    Err(_) => return self.refuse(BODY_CORRUPT),
                }
            }
            let produced = output.written_len();
            self.inflated = self.inflated.saturating_add(produced);
            if self.inflated > self.limit {
                return self.refuse(BODY_TOO_LARGE);
            }
            if produced == 0 && !complete {
                continue;
            }
            self.finished = complete;
            let mut bytes = output.into_inner();
            bytes.truncate(produced);
            return ReceiveEvent::HttpRequest {
                body: bytes.into(),
                more_body: !complete,
            };
        }
    }
}

/// The app's sender once its request body was refused: every send fails with
/// `Disconnected`, as it would had the client gone.
struct RefusableSink {
    inner: Sender,
    refused: Arc<AtomicU8>,
}

#[async_trait]
impl EventSink for RefusableSink {
    async fn send(&mut self, event: SendEvent) -> Result<(), SendError> {
        if self.refused.load(Ordering::Acquire) != BODY_OK {
            return Err(SendError::Disconnected);
        }
        self.inner.send(event).await
    }
}

/// The real sender, shared with the app's sink so that the middleware can answer after the
/// app returned, with whether a response started on it.
#[derive(Clone)]
struct SharedSender {
    sender: Arc<tokio::sync::Mutex<Sender>>,
    started: Arc<AtomicBool>,
}

#[async_trait]
impl EventSink for SharedSender {
    async fn send(&mut self, event: SendEvent) -> Result<(), SendError> {
        if matches!(event, SendEvent::HttpResponseStart { .. }) {
            self.started.store(true, Ordering::Release);
        }
        self.sender.lock().await.send(event).await
    }
}
