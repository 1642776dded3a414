//! permessage-deflate (RFC 7692): the client's offers, the negotiated parameters, and the
//! compressor and decompressor of one connection.
//!
//! The server accepts the first valid offer in the client's `Sec-WebSocket-Extensions`
//! header, when [`WebSocketConfig::deflate`](crate::WebSocketConfig::deflate) allows it (it
//! does by default), and honours every parameter of RFC 7692:
//!
//! - `server_no_context_takeover`: the server resets its compressor after each message
//!   (also when [`DeflateConfig::server_no_context_takeover`] asks for it);
//! - `client_no_context_takeover`: accepted when offered or configured, and then the server
//!   resets its decompressor after each message;
//! - `server_max_window_bits=N`: the server answers with `min(N, configured)` and compresses
//!   with that window. zlib cannot make raw deflate streams with a 256-byte window, so for 8
//!   it uses 9, whose matches reach back at most 250 bytes (zlib keeps a lookahead of 262
//!   bytes out of the 512-byte window): the stream is valid for a 256-byte window;
//! - `client_max_window_bits[=N]`: the client's own limit. The server always decompresses
//!   with a 32 KiB window, which reads any smaller one, so it does not answer it.
//!
//! An offer with an unknown or repeated parameter, or a value out of range, is declined (the
//! next offer is tried); a malformed header declines compression, it does not fail the
//! handshake.

use std::fmt::Write as _;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use http::{HeaderMap, HeaderValue, header};

/// The extension token, as it appears in `Sec-WebSocket-Extensions`.
pub const EXTENSION_NAME: &str = "permessage-deflate";

/// Default of [`DeflateConfig::level`]: 1, zlib's fastest level. WebSocket messages are
/// small and latency-bound; level 1 gets most of the size reduction for a fraction of the
/// CPU of level 6.
pub const DEFAULT_LEVEL: u32 = 1;

/// The largest LZ77 window RFC 7692 allows, as a base-2 logarithm (32 KiB).
pub const MAX_WINDOW_BITS: u8 = 15;

/// The smallest LZ77 window RFC 7692 allows, as a base-2 logarithm (256 bytes).
pub const MIN_WINDOW_BITS: u8 = 8;

/// The four bytes a sync flush ends with, removed by the sender and restored by the receiver
/// (RFC 7692 7.2.1 and 7.2.2).
const SYNC_FLUSH_TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// How much output space the decompressor gets at a time: 32 KiB, one window, so that a
/// small message needs one step and a large one grows its buffer in bounded steps.
const INFLATE_STEP: usize = 32 * 1024;

/// The compressor's scratch buffer is freed after a message that made it larger than this
/// (64 KiB), so that one large message does not keep its memory for the whole connection.
const SCRATCH_KEEP: usize = 64 * 1024;

/// How the server compresses, when a client offers permessage-deflate.
///
/// # Example
///
/// ```
/// use asgi_ws::WebSocketConfig;
/// use asgi_ws::deflate::DeflateConfig;
///
/// let mut deflate = DeflateConfig::default();
/// deflate.level = 6;
/// deflate.server_no_context_takeover = true; // less memory per connection
/// let mut config = WebSocketConfig::default();
/// config.deflate = Some(deflate);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeflateConfig {
    /// The zlib compression level, 0 (store only) to 9 (smallest); larger values count as 9.
    ///
    /// Default is [`DEFAULT_LEVEL`] (1).
    pub level: u32,
    /// The largest LZ77 window the server compresses with, as a base-2 logarithm, 8 to 15
    /// (values outside are clamped). A client's `server_max_window_bits` can only lower it.
    /// Smaller windows use less memory per connection and compress less.
    ///
    /// Default is 15 (32 KiB).
    pub server_max_window_bits: u8,
    /// Reset the compressor after every message, even when the client did not ask for it:
    /// each message compresses on its own (a little larger), and the server could free the
    /// compressor between messages.
    ///
    /// Default is `false`.
    pub server_no_context_takeover: bool,
    /// Ask the client to reset its compressor after every message
    /// (`client_no_context_takeover` in the response, which RFC 7692 allows even when the
    /// client did not offer it).
    ///
    /// Default is `false`.
    pub client_no_context_takeover: bool,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        DeflateConfig {
            level: DEFAULT_LEVEL,
            server_max_window_bits: MAX_WINDOW_BITS,
            server_no_context_takeover: false,
            client_no_context_takeover: false,
        }
    }
}

/// One valid permessage-deflate offer from a client's `Sec-WebSocket-Extensions` header.
///
/// # Example
///
/// ```
/// use asgi_ws::deflate::DeflateOffer;
/// use http::{HeaderMap, HeaderValue};
///
/// let mut headers = HeaderMap::new();
/// headers.insert(
///     "sec-websocket-extensions",
///     HeaderValue::from_static("permessage-deflate; server_max_window_bits=10, x-webkit-deflate-frame"),
/// );
/// let offers = DeflateOffer::parse(&headers);
/// assert_eq!(offers.len(), 1);
/// assert_eq!(offers[0].server_max_window_bits, Some(10));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct DeflateOffer {
    /// `server_no_context_takeover`: the client asks the server to reset its compressor after
    /// each message.
    pub server_no_context_takeover: bool,
    /// `client_no_context_takeover`: the client hints that it resets its own compressor after
    /// each message.
    pub client_no_context_takeover: bool,
    /// `server_max_window_bits=N`: the largest window the server may compress with.
    pub server_max_window_bits: Option<u8>,
    /// `client_max_window_bits[=N]`: the client supports the parameter; `Some(15)` when it
    /// came without a value.
    pub client_max_window_bits: Option<u8>,
}

impl DeflateOffer {
    /// The valid permessage-deflate offers of `headers`, in the client's order of
    /// preference. Every `Sec-WebSocket-Extensions` line is read; a line that does not parse
    /// is skipped, and so is an offer with an unknown or repeated parameter or a value out
    /// of range.
    pub fn parse(headers: &HeaderMap) -> Vec<DeflateOffer> {
        let mut offers = Vec::new();
        for value in headers.get_all(header::SEC_WEBSOCKET_EXTENSIONS) {
            let Ok(value) = value.to_str() else { continue };
            let Some(extensions) = parse_extension_list(value) else {
                continue;
            };
            offers.extend(
                extensions
                    .iter()
                    .filter(|(name, _)| name.eq_ignore_ascii_case(EXTENSION_NAME))
                    .filter_map(|(_, params)| offer_from_params(params)),
            );
        }
        offers
    }
}

/// The permessage-deflate parameters agreed for one connection.
///
/// # Example
///
/// ```
/// use asgi_ws::deflate::{DeflateConfig, DeflateOffer, DeflateParams};
/// use http::{HeaderMap, HeaderValue};
///
/// let mut headers = HeaderMap::new();
/// headers.insert(
///     "sec-websocket-extensions",
///     HeaderValue::from_static("permessage-deflate; client_max_window_bits; server_max_window_bits=9"),
/// );
/// let offers = DeflateOffer::parse(&headers);
/// let params = DeflateParams::negotiate(&offers, &DeflateConfig::default()).unwrap();
/// assert_eq!(params.response_header(), "permessage-deflate; server_max_window_bits=9");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateParams {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    compress_window_bits: u8,
    level: u32,
}

impl DeflateParams {
    /// Accepts the first of `offers` that `config` allows, or `None` when there is none.
    /// With the current settings every valid offer is acceptable, so this is the first offer.
    pub fn negotiate(offers: &[DeflateOffer], config: &DeflateConfig) -> Option<DeflateParams> {
        let configured = config
            .server_max_window_bits
            .clamp(MIN_WINDOW_BITS, MAX_WINDOW_BITS);
        offers.first().map(|offer| {
            let server_max_window_bits = offer.server_max_window_bits.map(|n| n.min(configured));
            DeflateParams {
                server_no_context_takeover: offer.server_no_context_takeover
                    || config.server_no_context_takeover,
                client_no_context_takeover: offer.client_no_context_takeover
                    || config.client_no_context_takeover,
                server_max_window_bits,
                // zlib's raw deflate needs at least 9; see the module docs for why 9 honours 8.
                compress_window_bits: server_max_window_bits.unwrap_or(configured).max(9),
                level: config.level.min(9),
            }
        })
    }

    /// True when the server resets its compressor after each message.
    pub fn server_no_context_takeover(&self) -> bool {
        self.server_no_context_takeover
    }

    /// True when the client was told to reset its compressor after each message.
    pub fn client_no_context_takeover(&self) -> bool {
        self.client_no_context_takeover
    }

    /// The `server_max_window_bits` the server answered with, when the client asked for one.
    pub fn server_max_window_bits(&self) -> Option<u8> {
        self.server_max_window_bits
    }

    /// The `Sec-WebSocket-Extensions` value of the 101 response, e.g.
    /// `permessage-deflate; server_no_context_takeover`.
    pub fn response_header(&self) -> HeaderValue {
        let mut value = String::from(EXTENSION_NAME);
        if self.server_no_context_takeover {
            value.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            value.push_str("; client_no_context_takeover");
        }
        if let Some(bits) = self.server_max_window_bits {
            // Writing to a String cannot fail.
            let _ = write!(value, "; server_max_window_bits={bits}");
        }
        // The value is built from ASCII letters, digits, '-', '_', ';', '=' and spaces, all
        // valid in a header value, so the conversion cannot fail.
        HeaderValue::try_from(value).expect("permessage-deflate parameters are ASCII")
    }
}

/// An extension from a `Sec-WebSocket-Extensions` line: its name and its parameters.
type Extension<'a> = (&'a str, Vec<(&'a str, Option<String>)>);

/// Parses `extension *( ";" param ) *( "," extension )` (RFC 6455 9.1), where a parameter
/// value is a token or a quoted string. `None` when the line does not follow the grammar.
fn parse_extension_list(line: &str) -> Option<Vec<Extension<'_>>> {
    let mut cursor = Cursor { s: line, i: 0 };
    let mut extensions = Vec::new();
    loop {
        cursor.skip_whitespace();
        match cursor.peek() {
            None => return Some(extensions),
            // Empty list elements are allowed (RFC 9110 5.6.1).
            Some(b',') => {
                cursor.i += 1;
                continue;
            }
            Some(_) => {}
        }
        let name = cursor.token()?;
        let mut params = Vec::new();
        loop {
            cursor.skip_whitespace();
            if cursor.peek() != Some(b';') {
                break;
            }
            cursor.i += 1;
            cursor.skip_whitespace();
            let param = cursor.token()?;
            cursor.skip_whitespace();
            let value = if cursor.peek() == Some(b'=') {
                cursor.i += 1;
                cursor.skip_whitespace();
                if cursor.peek() == Some(b'"') {
                    Some(cursor.quoted_string()?)
                } else {
                    Some(cursor.token()?.to_owned())
                }
            } else {
                None
            };
            params.push((param, value));
        }
        extensions.push((name, params));
        cursor.skip_whitespace();
        match cursor.peek() {
            None => return Some(extensions),
            Some(b',') => cursor.i += 1,
            Some(_) => return None,
        }
    }
}

struct Cursor<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.i).copied()
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    fn token(&mut self) -> Option<&'a str> {
        let start = self.i;
        while self.peek().is_some_and(is_tchar) {
            self.i += 1;
        }
        (self.i > start).then(|| &self.s[start..self.i])
    }

    fn quoted_string(&mut self) -> Option<String> {
        // Skip the opening quote.
        self.i += 1;
        let mut value = String::new();
        loop {
            match self.peek()? {
                b'"' => {
                    self.i += 1;
                    return Some(value);
                }
                b'\\' => {
                    self.i += 1;
                    value.push(char::from(self.peek()?));
                    self.i += 1;
                }
                c => {
                    value.push(char::from(c));
                    self.i += 1;
                }
            }
        }
    }
}

/// A token character (RFC 9110 5.6.2).
pub(crate) fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

fn offer_from_params(params: &[(&str, Option<String>)]) -> Option<DeflateOffer> {
    let mut offer = DeflateOffer::default();
    let mut seen = [false; 4];
    for (name, value) in params {
        let (index, valid) = match name.to_ascii_lowercase().as_str() {
            "server_no_context_takeover" => {
                offer.server_no_context_takeover = true;
                (0, value.is_none())
            }
            "client_no_context_takeover" => {
                offer.client_no_context_takeover = true;
                (1, value.is_none())
            }
            "server_max_window_bits" => {
                offer.server_max_window_bits = value.as_deref().and_then(window_bits);
                (2, offer.server_max_window_bits.is_some())
            }
            "client_max_window_bits" => match value {
                None => {
                    offer.client_max_window_bits = Some(MAX_WINDOW_BITS);
                    (3, true)
                }
                Some(v) => {
                    offer.client_max_window_bits = window_bits(v);
                    (3, offer.client_max_window_bits.is_some())
                }
            },
            _ => return None,
        };
        if !valid || seen[index] {
            return None;
        }
        seen[index] = true;
    }
    Some(offer)
}

/// A window size value: "8" to "15", no sign, no leading zero (RFC 7692 7.1.2).
fn window_bits(value: &str) -> Option<u8> {
    if value.starts_with('0') || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value
        .parse::<u8>()
        .ok()
        .filter(|bits| (MIN_WINDOW_BITS..=MAX_WINDOW_BITS).contains(bits))
}

/// Why a compressed message could not be decompressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InflateError {
    /// It decompresses to more than the message size limit.
    TooBig,
    /// It is not a valid deflate stream.
    Corrupt,
}

/// The compressor and decompressor of one connection. Both are created at their first use,
/// so that a connection that never sends or receives a compressed message does not pay for
/// them (about 300 KiB for the compressor, 40 KiB for the decompressor).
pub(crate) struct DeflateCodec {
    params: DeflateParams,
    compressor: Option<Compress>,
    decompressor: Option<Decompress>,
    /// Set when the client ended its deflate stream (BFINAL) inside a message: the
    /// decompressor must start afresh for the next one.
    stream_ended: bool,
    /// Set once a frame of the message being received carried compressed bytes. A message
    /// whose frames are all empty is an empty message: the sync-flush tail is not fed to
    /// the decompressor then, since on its own it is the start of a stored block that the
    /// next message's bytes would complete.
    message_has_data: bool,
    scratch: Vec<u8>,
}

impl std::fmt::Debug for DeflateCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeflateCodec")
            .field("params", &self.params)
            .field("compressor", &self.compressor.is_some())
            .field("decompressor", &self.decompressor.is_some())
            .finish()
    }
}

impl DeflateCodec {
    pub(crate) fn new(params: DeflateParams) -> Self {
        DeflateCodec {
            params,
            compressor: None,
            decompressor: None,
            stream_ended: false,
            message_has_data: false,
            scratch: Vec::new(),
        }
    }

    /// Compresses one whole message and returns the frame payload: the deflate output with
    /// the sync-flush tail removed (RFC 7692 7.2.1).
    pub(crate) fn compress(&mut self, data: &[u8]) -> Result<&[u8], flate2::CompressError> {
        let params = self.params;
        let compressor = self.compressor.get_or_insert_with(|| {
            Compress::new_with_window_bits(
                Compression::new(params.level),
                false,
                params.compress_window_bits,
            )
        });
        if self.scratch.capacity() > SCRATCH_KEEP {
            self.scratch = Vec::new();
        }
        self.scratch.clear();
        let mut consumed = 0;
        loop {
            // Deflate output is rarely larger than its input plus a few header bytes.
            if self.scratch.capacity() - self.scratch.len() < 64 {
                self.scratch.reserve(data.len() - consumed + 64);
            }
            let before = compressor.total_in();
            compressor.compress_vec(&data[consumed..], &mut self.scratch, FlushCompress::Sync)?;
            // `total_in` grows by at most the input given, which is a `usize`.
            consumed += usize::try_from(compressor.total_in() - before).unwrap_or(usize::MAX);
            // A sync flush is complete once all input is in and the output was not full.
            if consumed >= data.len() && self.scratch.len() < self.scratch.capacity() {
                break;
            }
        }
        if self.params.server_no_context_takeover {
            compressor.reset();
        }
        if self.scratch.ends_with(&SYNC_FLUSH_TAIL) {
            self.scratch
                .truncate(self.scratch.len() - SYNC_FLUSH_TAIL.len());
        }
        if self.scratch.is_empty() {
            // An empty message right after another one: zlib has nothing to flush and
            // writes nothing, but the client appends the tail to the payload and needs a
            // block before it. A single 0x00 makes it an empty stored block (RFC 7692
            // 7.2.3.6).
            self.scratch.push(0x00);
        }
        Ok(&self.scratch)
    }

    /// Decompresses one frame's payload of a compressed message, appending to `out`; `fin`
    /// marks the message's last frame. Fails with `TooBig` as soon as `out` would exceed
    /// `limit`, so a small "deflate bomb" never expands beyond the limit.
    pub(crate) fn decompress(
        &mut self,
        input: &[u8],
        fin: bool,
        out: &mut Vec<u8>,
        limit: Option<usize>,
    ) -> Result<(), InflateError> {
        if !self.stream_ended && !input.is_empty() {
            self.message_has_data = true;
            self.inflate(input, out, limit)?;
        }
        if !fin {
            return Ok(());
        }
        // A message with no compressed bytes at all is an empty message: the decompressor
        // stays where the previous message left it, at a block boundary.
        if !self.stream_ended && self.message_has_data {
            self.inflate(&SYNC_FLUSH_TAIL, out, limit)?;
        }
        if self.stream_ended || self.params.client_no_context_takeover {
            if let Some(decompressor) = &mut self.decompressor {
                decompressor.reset(false);
            }
            self.stream_ended = false;
        }
        self.message_has_data = false;
        Ok(())
    }

    fn inflate(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        limit: Option<usize>,
    ) -> Result<(), InflateError> {
        let decompressor = self
            .decompressor
            .get_or_insert_with(|| Decompress::new(false));
        let mut consumed = 0;
        loop {
            if out.capacity() == out.len() {
                // Double (at least one step), but never past one byte over the limit, which
                // is enough to tell that the message is too big: `reserve` alone could
                // double a buffer near the limit to twice the limit.
                let double = out.len().max(INFLATE_STEP);
                let room = match limit {
                    Some(limit) => (limit + 1).saturating_sub(out.len()).min(double),
                    None => double,
                };
                if room == 0 {
                    return Err(InflateError::TooBig);
                }
                out.reserve_exact(room);
            }
            let before_in = decompressor.total_in();
            let status = decompressor
                .decompress_vec(&input[consumed..], out, FlushDecompress::None)
                .map_err(|_| InflateError::Corrupt)?;
            // `total_in` grows by at most the input given, which is a `usize`.
            consumed += usize::try_from(decompressor.total_in() - before_in).unwrap_or(usize::MAX);
            if limit.is_some_and(|limit| out.len() > limit) {
                return Err(InflateError::TooBig);
            }
            match status {
                Status::StreamEnd => {
                    self.stream_ended = true;
                    return Ok(());
                }
                // All input is in and the decompressor stopped with room to spare: done.
                _ if consumed >= input.len() && out.len() < out.capacity() => return Ok(()),
                // No progress with input left and room to spare cannot happen with a valid
                // stream; stop rather than spin.
                Status::BufError if out.len() < out.capacity() => {
                    return Err(InflateError::Corrupt);
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&'static str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(
                header::SEC_WEBSOCKET_EXTENSIONS,
                HeaderValue::from_static(v),
            );
        }
        headers
    }

    fn negotiate(values: &[&'static str], config: DeflateConfig) -> Option<String> {
        let offers = DeflateOffer::parse(&headers(values));
        DeflateParams::negotiate(&offers, &config)
            .map(|p| p.response_header().to_str().unwrap().to_owned())
    }

    #[test]
    fn plain_offer_is_accepted_without_parameters() {
        assert_eq!(
            negotiate(&["permessage-deflate"], DeflateConfig::default()).as_deref(),
            Some("permessage-deflate")
        );
    }

    #[test]
    fn browser_offer_is_accepted_without_answering_client_window() {
        assert_eq!(
            negotiate(
                &["permessage-deflate; client_max_window_bits"],
                DeflateConfig::default()
            )
            .as_deref(),
            Some("permessage-deflate")
        );
    }

    #[test]
    fn server_no_context_takeover_is_echoed() {
        assert_eq!(
            negotiate(
                &["permessage-deflate; server_no_context_takeover"],
                DeflateConfig::default()
            )
            .as_deref(),
            Some("permessage-deflate; server_no_context_takeover")
        );
    }

    #[test]
    fn client_no_context_takeover_hint_is_accepted() {
        assert_eq!(
            negotiate(
                &["permessage-deflate; client_no_context_takeover"],
                DeflateConfig::default()
            )
            .as_deref(),
            Some("permessage-deflate; client_no_context_takeover")
        );
    }

    #[test]
    fn server_max_window_bits_is_answered_with_the_smaller_value() {
        let mut config = DeflateConfig::default();
        assert_eq!(
            negotiate(&["permessage-deflate; server_max_window_bits=10"], config).as_deref(),
            Some("permessage-deflate; server_max_window_bits=10")
        );
        config.server_max_window_bits = 9;
        assert_eq!(
            negotiate(&["permessage-deflate; server_max_window_bits=12"], config).as_deref(),
            Some("permessage-deflate; server_max_window_bits=9")
        );
    }

    #[test]
    fn window_of_8_is_accepted_and_compressed_with_9() {
        let offers =
            DeflateOffer::parse(&headers(&["permessage-deflate; server_max_window_bits=8"]));
        let params = DeflateParams::negotiate(&offers, &DeflateConfig::default()).unwrap();
        assert_eq!(params.server_max_window_bits(), Some(8));
        assert_eq!(params.compress_window_bits, 9);
    }

    #[test]
    fn configured_parameters_are_added_to_the_response() {
        let config = DeflateConfig {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            ..DeflateConfig::default()
        };
        assert_eq!(
            negotiate(&["permessage-deflate"], config).as_deref(),
            Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover")
        );
    }

    #[test]
    fn invalid_offer_is_declined_and_the_next_one_accepted() {
        assert_eq!(
            negotiate(
                &["permessage-deflate; server_max_window_bits=16, permessage-deflate; server_no_context_takeover"],
                DeflateConfig::default()
            )
            .as_deref(),
            Some("permessage-deflate; server_no_context_takeover")
        );
    }

    #[test]
    fn offers_on_repeated_header_lines_are_read_in_order() {
        let offers = DeflateOffer::parse(&headers(&[
            "x-unknown",
            "permessage-deflate; server_max_window_bits=11",
            "permessage-deflate",
        ]));
        assert_eq!(offers.len(), 2);
        assert_eq!(offers[0].server_max_window_bits, Some(11));
        assert_eq!(offers[1], DeflateOffer::default());
    }

    #[test]
    fn quoted_values_are_accepted() {
        let offers = DeflateOffer::parse(&headers(&[
            "permessage-deflate; client_max_window_bits=\"10\"",
        ]));
        assert_eq!(offers[0].client_max_window_bits, Some(10));
    }

    #[test]
    fn bad_parameters_decline_the_offer() {
        for bad in [
            "permessage-deflate; unknown_param",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=010",
            "permessage-deflate; client_max_window_bits=+9",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; server_max_window_bits=9; server_max_window_bits=9",
        ] {
            assert_eq!(DeflateOffer::parse(&headers(&[bad])), vec![], "{bad}");
        }
    }

    #[test]
    fn malformed_header_declines_compression() {
        for bad in [
            "permessage-deflate; =9",
            "permessage-deflate x",
            "permessage-deflate; client_max_window_bits=\"10",
        ] {
            assert_eq!(DeflateOffer::parse(&headers(&[bad])), vec![], "{bad}");
        }
    }

    #[test]
    fn no_offer_means_no_compression() {
        assert_eq!(
            negotiate(&["x-webkit-deflate-frame"], DeflateConfig::default()),
            None
        );
        assert_eq!(negotiate(&[], DeflateConfig::default()), None);
    }

    fn params(config: DeflateConfig, offer: &'static str) -> DeflateParams {
        DeflateParams::negotiate(&DeflateOffer::parse(&headers(&[offer])), &config).unwrap()
    }

    #[test]
    fn compressed_messages_round_trip_with_context_takeover() {
        let p = params(DeflateConfig::default(), "permessage-deflate");
        let mut sender = DeflateCodec::new(p);
        let mut receiver = DeflateCodec::new(p);
        for message in ["hello hello hello", "hello hello hello", ""] {
            let payload = sender.compress(message.as_bytes()).unwrap().to_vec();
            let mut out = Vec::new();
            receiver.decompress(&payload, true, &mut out, None).unwrap();
            assert_eq!(out, message.as_bytes());
        }
    }

    #[test]
    fn empty_message_after_another_inflates_for_any_client() {
        let p = params(DeflateConfig::default(), "permessage-deflate");
        let mut sender = DeflateCodec::new(p);
        // A client's own decompressor, not this crate's: it appends the tail and inflates.
        let mut client = Decompress::new(false);
        for message in ["first", "", "", "after"] {
            let mut payload = sender.compress(message.as_bytes()).unwrap().to_vec();
            payload.extend_from_slice(&SYNC_FLUSH_TAIL);
            let mut out = Vec::with_capacity(64);
            client
                .decompress_vec(&payload, &mut out, FlushDecompress::Sync)
                .unwrap_or_else(|e| panic!("{message:?}: {e}"));
            assert_eq!(out, message.as_bytes());
        }
    }

    #[test]
    fn context_takeover_makes_repeats_smaller() {
        let p = params(DeflateConfig::default(), "permessage-deflate");
        let mut codec = DeflateCodec::new(p);
        let text = "a message that repeats itself, a message that repeats itself";
        let first = codec.compress(text.as_bytes()).unwrap().len();
        let second = codec.compress(text.as_bytes()).unwrap().len();
        assert!(second < first, "{second} >= {first}");

        let p = params(
            DeflateConfig::default(),
            "permessage-deflate; server_no_context_takeover",
        );
        let mut codec = DeflateCodec::new(p);
        let first = codec.compress(text.as_bytes()).unwrap().to_vec();
        let second = codec.compress(text.as_bytes()).unwrap().to_vec();
        assert_eq!(first, second);
    }

    #[test]
    fn decompression_stops_at_the_limit() {
        let p = params(DeflateConfig::default(), "permessage-deflate");
        let mut codec = DeflateCodec::new(p);
        let big = vec![b'x'; 100_000];
        let payload = codec.compress(&big).unwrap().to_vec();
        assert!(payload.len() < 1000);

        let mut out = Vec::new();
        let mut receiver = DeflateCodec::new(p);
        assert_eq!(
            receiver.decompress(&payload, true, &mut out, Some(99_999)),
            Err(InflateError::TooBig)
        );
        assert!(out.len() <= 100_000);

        let mut out = Vec::new();
        let mut receiver = DeflateCodec::new(p);
        receiver
            .decompress(&payload, true, &mut out, Some(100_000))
            .unwrap();
        assert_eq!(out.len(), 100_000);
    }

    #[test]
    fn decompression_never_reserves_past_the_limit() {
        let p = params(DeflateConfig::default(), "permessage-deflate");
        let limit = 3_000_000;
        let payload = DeflateCodec::new(p)
            .compress(&vec![b'x'; limit])
            .unwrap()
            .to_vec();
        let mut out = Vec::new();
        DeflateCodec::new(p)
            .decompress(&payload, true, &mut out, Some(limit))
            .unwrap();
        assert_eq!(out.len(), limit);
        assert!(out.capacity() <= limit + 1, "capacity {}", out.capacity());

        // A bomb over the limit stops with at most one byte over it.
        let mut out = Vec::new();
        let result = DeflateCodec::new(p).decompress(&payload, true, &mut out, Some(limit - 1));
        assert_eq!(result, Err(InflateError::TooBig));
        assert!(out.capacity() <= limit, "capacity {}", out.capacity());
    }

    #[test]
    fn fragments_decompress_one_by_one() {
        let p = params(DeflateConfig::default(), "permessage-deflate");
        let mut sender = DeflateCodec::new(p);
        let text: String = (0..2000).map(|i| format!("{i},")).collect();
        let payload = sender.compress(text.as_bytes()).unwrap().to_vec();
        let mut receiver = DeflateCodec::new(p);
        let mut out = Vec::new();
        let chunks: Vec<&[u8]> = payload.chunks(7).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            receiver
                .decompress(chunk, i == chunks.len() - 1, &mut out, None)
                .unwrap();
        }
        assert_eq!(out, text.as_bytes());
    }

    #[test]
    fn corrupt_data_is_an_error() {
        let p = params(DeflateConfig::default(), "permessage-deflate");
        let mut receiver = DeflateCodec::new(p);
        let mut out = Vec::new();
        assert_eq!(
            receiver.decompress(&[0xff, 0xff, 0xff, 0xff], true, &mut out, None),
            Err(InflateError::Corrupt)
        );
    }
}
