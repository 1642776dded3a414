//! WebSocket close codes (RFC 6455 7.4 and the IANA registry) and which of them may travel in
//! a close frame.

pub use asgi_core::event::{
    CLOSE_ABNORMAL as ABNORMAL, CLOSE_NO_STATUS as NO_STATUS, CLOSE_NORMAL as NORMAL,
};

/// 1001: the endpoint is going away; the server sends it when it shuts down.
pub const GOING_AWAY: u16 = 1001;
/// 1002: the peer broke the protocol (a bad frame).
pub const PROTOCOL_ERROR: u16 = 1002;
/// 1003: the endpoint cannot accept this type of data.
pub const UNSUPPORTED_DATA: u16 = 1003;
/// 1007: a message's data is inconsistent with its type (text that is not UTF-8, compressed
/// data that does not decompress).
pub const INVALID_PAYLOAD: u16 = 1007;
/// 1008: the message violates the endpoint's policy.
pub const POLICY_VIOLATION: u16 = 1008;
/// 1009: a message is larger than the endpoint accepts.
pub const MESSAGE_TOO_BIG: u16 = 1009;
/// 1011: the server hit an unexpected condition: the app failed, or the client stopped
/// answering pings.
pub const INTERNAL_ERROR: u16 = 1011;

/// True for a code that may travel in a close frame: 1000-1003, 1007-1014 (the codes RFC 6455
/// and the IANA registry define for use on the wire) and 3000-4999 (for libraries,
/// frameworks and applications). 1004, 1005, 1006 and 1015 are reserved for reporting and
/// must never be sent.
///
/// # Example
///
/// ```
/// use asgi_ws::close;
///
/// assert!(close::is_valid_code(close::NORMAL));
/// assert!(close::is_valid_code(4000));
/// assert!(!close::is_valid_code(close::NO_STATUS));
/// assert!(!close::is_valid_code(999));
/// ```
pub fn is_valid_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}
