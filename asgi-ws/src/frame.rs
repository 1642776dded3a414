//! Frames on the wire: header parsing and formatting (tungstenite's `FrameHeader`), payload
//! unmasking, and close frame payloads.

use std::io::Cursor;

use bytes::{BufMut, BytesMut};
use tungstenite::protocol::frame::FrameHeader;
pub(crate) use tungstenite::protocol::frame::coding::{Control, Data, OpCode};

use crate::close;

/// The largest payload of a control frame (RFC 6455 5.5).
pub(crate) const MAX_CONTROL_PAYLOAD: usize = 125;

/// The largest reason a close frame can carry: the control payload minus the 2-byte code.
pub(crate) const MAX_CLOSE_REASON: usize = MAX_CONTROL_PAYLOAD - 2;

/// A parsed frame header.
#[derive(Debug)]
pub(crate) struct Head {
    pub(crate) fin: bool,
    pub(crate) rsv1: bool,
    /// RSV2 or RSV3: no extension here defines them.
    pub(crate) rsv23: bool,
    pub(crate) opcode: OpCode,
    pub(crate) mask: Option<[u8; 4]>,
    /// The header's own length in bytes.
    pub(crate) header_len: usize,
    pub(crate) payload_len: u64,
}

/// Parses the header at the start of `buf`: `Ok(None)` when more bytes are needed, `Err`
/// (with a reason for the close frame) for a reserved opcode.
pub(crate) fn parse_head(buf: &[u8]) -> Result<Option<Head>, &'static str> {
    let mut cursor = Cursor::new(buf);
    match FrameHeader::parse(&mut cursor) {
        Ok(Some((header, payload_len))) => Ok(Some(Head {
            fin: header.is_final,
            rsv1: header.rsv1,
            rsv23: header.rsv2 || header.rsv3,
            opcode: header.opcode,
            mask: header.mask,
            // The cursor moved over the header only, which is at most 14 bytes.
            header_len: usize::try_from(cursor.position()).unwrap_or(usize::MAX),
            payload_len,
        })),
        Ok(None) => Ok(None),
        Err(_) => Err("reserved opcode"),
    }
}

/// Appends an unmasked (server to client) frame to `out`.
pub(crate) fn write_frame(out: &mut BytesMut, opcode: OpCode, rsv1: bool, payload: &[u8]) {
    let header = FrameHeader {
        is_final: true,
        rsv1,
        rsv2: false,
        rsv3: false,
        opcode,
        mask: None,
    };
    let len = payload.len() as u64;
    out.reserve(header.len(len) + payload.len());
    // `format` only writes to the given writer, and a `BytesMut` writer never fails.
    header
        .format(len, &mut out.writer())
        .expect("writing a frame header to memory cannot fail");
    out.extend_from_slice(payload);
}

/// Appends a close frame with `code` and `reason` (cut to the 123 bytes a close frame can
/// carry, on a character boundary), or an empty close frame for 1005 (no status).
pub(crate) fn write_close(out: &mut BytesMut, code: u16, reason: &str) {
    if code == close::NO_STATUS {
        write_frame(out, OpCode::Control(Control::Close), false, &[]);
        return;
    }
    let mut end = reason.len().min(MAX_CLOSE_REASON);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut payload = [0u8; MAX_CONTROL_PAYLOAD];
    payload[..2].copy_from_slice(&code.to_be_bytes());
    payload[2..2 + end].copy_from_slice(&reason.as_bytes()[..end]);
    write_frame(
        out,
        OpCode::Control(Control::Close),
        false,
        &payload[..2 + end],
    );
}

/// XORs `buf` with the 4-byte `mask` (RFC 6455 5.3), eight bytes at a time. `offset` is
/// where `buf` starts in the payload, so that a payload can be unmasked piece by piece as
/// it arrives.
pub(crate) fn unmask(buf: &mut [u8], mask: [u8; 4], offset: usize) {
    let mask: [u8; 4] = std::array::from_fn(|i| mask[(offset + i) & 3]);
    let word = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(bytes) ^ word).to_ne_bytes());
    }
    // Chunks are 8 bytes, a multiple of the mask's 4, so the rest starts at mask byte 0.
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
}

/// A close frame's payload, read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ClosePayload {
    /// No code (RFC 6455 7.1.5: report 1005).
    Empty,
    /// A code and a reason.
    Status(u16, String),
}

/// Reads a close payload; `Err` carries the close code to fail the connection with: 1002
/// for a 1-byte payload or a code that may not be sent, 1007 for a reason that is not UTF-8.
pub(crate) fn parse_close(payload: &[u8]) -> Result<ClosePayload, (u16, &'static str)> {
    match payload {
        [] => Ok(ClosePayload::Empty),
        [_] => Err((close::PROTOCOL_ERROR, "close frame with a 1-byte payload")),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !close::is_valid_code(code) {
                return Err((close::PROTOCOL_ERROR, "invalid close code"));
            }
            match std::str::from_utf8(reason) {
                Ok(reason) => Ok(ClosePayload::Status(code, reason.to_owned())),
                Err(_) => Err((close::INVALID_PAYLOAD, "close reason is not UTF-8")),
            }
        }
    }
}

/// Checks UTF-8 as a text message arrives, in pieces of any size (fragments, parts of a
/// frame, inflated output), so that invalid text fails the connection at the first bad
/// byte rather than at the end of the message. A code point cut between two pieces is
/// carried over (at most 3 bytes); it is invalid only if the message ends there.
#[derive(Debug, Default)]
pub(crate) struct Utf8Stream {
    /// The start of a code point that the next piece continues.
    carry: [u8; 4],
    carry_len: usize,
}

impl Utf8Stream {
    /// Checks the next piece; false as soon as the text so far cannot be UTF-8, whatever
    /// follows.
    pub(crate) fn feed(&mut self, mut piece: &[u8]) -> bool {
        if self.carry_len > 0 {
            // `carry` holds a valid, incomplete prefix, so its first byte is a lead byte.
            let width = match self.carry[0] {
                0xc0..=0xdf => 2,
                0xe0..=0xef => 3,
                _ => 4,
            };
            let take = (width - self.carry_len).min(piece.len());
            self.carry[self.carry_len..self.carry_len + take].copy_from_slice(&piece[..take]);
            self.carry_len += take;
            piece = &piece[take..];
            match std::str::from_utf8(&self.carry[..self.carry_len]) {
                Ok(_) => self.carry_len = 0,
                // Still incomplete: the piece was too short to finish the code point.
                Err(e) if e.error_len().is_none() => return true,
                Err(_) => return false,
            }
        }
        match std::str::from_utf8(piece) {
            Ok(_) => true,
            Err(e) if e.error_len().is_none() => {
                let rest = &piece[e.valid_up_to()..];
                self.carry[..rest.len()].copy_from_slice(rest);
                self.carry_len = rest.len();
                true
            }
            Err(_) => false,
        }
    }

    /// True when the text so far ends on a code point boundary: it may end here.
    pub(crate) fn is_complete(&self) -> bool {
        self.carry_len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unmask_matches_bytewise_xor() {
        let mask = [1, 2, 3, 4];
        for len in 0..40 {
            let original: Vec<u8> = (0..len as u8).collect();
            let mut buf = original.clone();
            unmask(&mut buf, mask, 0);
            let expected: Vec<u8> = original
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ mask[i % 4])
                .collect();
            assert_eq!(buf, expected, "length {len}");
        }
    }

    #[test]
    fn close_payloads_are_validated() {
        assert_eq!(parse_close(&[]), Ok(ClosePayload::Empty));
        assert_eq!(parse_close(&[3]).unwrap_err().0, 1002);
        assert_eq!(
            parse_close(&[0x03, 0xe8, b'o', b'k']),
            Ok(ClosePayload::Status(1000, "ok".into()))
        );
        assert_eq!(parse_close(&[0x03, 0xed]).unwrap_err().0, 1002); // 1005
        assert_eq!(parse_close(&[0x03, 0xe8, 0xff]).unwrap_err().0, 1007);
    }

    #[test]
    fn close_reason_is_cut_on_a_char_boundary() {
        let mut out = BytesMut::new();
        let reason = "é".repeat(100);
        write_close(&mut out, 1000, &reason);
        // 2 header bytes, 2 code bytes, 122 reason bytes (61 two-byte chars).
        assert_eq!(out.len(), 2 + 2 + 122);
        assert!(std::str::from_utf8(&out[4..]).is_ok());
    }

    #[test]
    fn unmask_in_pieces_matches_unmask_at_once() {
        let mask = [9, 8, 7, 6];
        let original: Vec<u8> = (0..50).collect();
        let mut whole = original.clone();
        unmask(&mut whole, mask, 0);
        for cut in [1, 3, 5, 8, 13] {
            let mut pieces = original.clone();
            let (head, tail) = pieces.split_at_mut(cut);
            unmask(head, mask, 0);
            unmask(tail, mask, cut);
            assert_eq!(pieces, whole, "cut at {cut}");
        }
    }

    /// Feeds `text` cut at `cuts` and returns each piece's verdict, then completeness.
    fn feed_pieces(text: &[u8], cuts: &[usize]) -> (Vec<bool>, bool) {
        let mut stream = Utf8Stream::default();
        let mut verdicts = Vec::new();
        let mut start = 0;
        for &end in cuts.iter().chain([&text.len()]) {
            verdicts.push(stream.feed(&text[start..end]));
            start = end;
        }
        (verdicts, stream.is_complete())
    }

    #[test]
    fn utf8_stream_accepts_code_points_cut_anywhere() {
        let text = "h€llo 𝄞 wörld".as_bytes();
        for a in 0..=text.len() {
            for b in a..=text.len() {
                let (verdicts, complete) = feed_pieces(text, &[a, b]);
                assert_eq!(verdicts, [true, true, true], "cuts {a} {b}");
                assert!(complete, "cuts {a} {b}");
            }
        }
    }

    #[test]
    fn utf8_stream_is_incomplete_inside_a_code_point() {
        let euro = "€".as_bytes();
        let mut stream = Utf8Stream::default();
        assert!(stream.feed(&euro[..1]));
        assert!(!stream.is_complete());
        assert!(stream.feed(&euro[1..2]));
        assert!(!stream.is_complete());
        assert!(stream.feed(&euro[2..]));
        assert!(stream.is_complete());
    }

    #[test]
    fn utf8_stream_fails_at_the_first_bad_byte() {
        // An out-of-range code point (0x110000 would start F4 90): fails on the second byte.
        let mut stream = Utf8Stream::default();
        assert!(stream.feed(b"ok\xf4"));
        assert!(!stream.feed(b"\x90"));
        // A bad byte in a piece of its own, after valid text.
        let mut stream = Utf8Stream::default();
        assert!(stream.feed("κόσμε".as_bytes()));
        assert!(!stream.feed(&[0xff]));
        // A lone continuation byte, and a surrogate.
        assert!(!Utf8Stream::default().feed(&[0x80]));
        assert!(!Utf8Stream::default().feed(&[0xed, 0xa0]));
        // Bytes that agree with UTF-8 give a verdict only once they can no longer.
        let mut stream = Utf8Stream::default();
        assert!(stream.feed(&[0xf0]));
        assert!(stream.feed(&[0x9f]));
        assert!(!stream.feed(&[0x41]));
    }
}
