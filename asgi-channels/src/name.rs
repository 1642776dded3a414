//! Channel and group names: the rules of the Channels spec, and process-local names.

use rand::RngExt;

use crate::ChannelLayerError;

/// The longest channel or group name: 100 bytes, as in Django Channels. Names are Redis key
/// parts and log fields; a cap keeps both small.
pub const MAX_NAME_LENGTH: usize = 100;

/// Checks a channel name: ASCII letters, digits, `-`, `_` and `.`, optionally followed by `!`
/// and a process-local part of the same characters; at most [`MAX_NAME_LENGTH`] bytes.
///
/// # Errors
///
/// [`ChannelLayerError::InvalidName`] naming the rule the name breaks.
pub fn validate_channel_name(name: &str) -> Result<(), ChannelLayerError> {
    let invalid = |reason| ChannelLayerError::InvalidName {
        kind: "channel",
        name: name.to_owned(),
        reason,
    };
    check_length(name).map_err(invalid)?;
    let (general, local) = match name.split_once('!') {
        Some((general, local)) => (general, Some(local)),
        None => (name, None),
    };
    if general.is_empty() {
        return Err(invalid("it has nothing before '!'"));
    }
    if !general.bytes().all(allowed) {
        return Err(invalid(
            "only ASCII letters, digits, '-', '_' and '.' are allowed",
        ));
    }
    if let Some(local) = local
        && !local.bytes().all(allowed)
    {
        return Err(invalid(
            "only ASCII letters, digits, '-', '_' and '.' may follow '!'",
        ));
    }
    Ok(())
}

/// Checks a group name: ASCII letters, digits, `-`, `_` and `.`; at most
/// [`MAX_NAME_LENGTH`] bytes.
///
/// # Errors
///
/// [`ChannelLayerError::InvalidName`] naming the rule the name breaks.
pub fn validate_group_name(name: &str) -> Result<(), ChannelLayerError> {
    let invalid = |reason| ChannelLayerError::InvalidName {
        kind: "group",
        name: name.to_owned(),
        reason,
    };
    check_length(name).map_err(invalid)?;
    if !name.bytes().all(allowed) {
        return Err(invalid(
            "only ASCII letters, digits, '-', '_' and '.' are allowed",
        ));
    }
    Ok(())
}

fn check_length(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        Err("it is empty")
    } else if name.len() > MAX_NAME_LENGTH {
        Err("it is longer than 100 bytes")
    } else {
        Ok(())
    }
}

fn allowed(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.')
}

/// Random letters: a process's client id, or the local part of a new channel.
pub(crate) fn random_letters(len: usize) -> String {
    const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| LETTERS[rng.random_range(0..LETTERS.len())] as char)
        .collect()
}

/// The part of a process-local name up to and including `!` (`specific.abc!xyz` ->
/// `specific.abc!`); `None` for a general channel.
pub(crate) fn non_local_part(channel: &str) -> Option<&str> {
    channel.find('!').map(|i| &channel[..=i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_names_pass() {
        for name in ["chat", "chat.room-1_a", "specific.abc!xyz", "specific.abc!"] {
            validate_channel_name(name).unwrap();
        }
        validate_group_name("room.lobby-1").unwrap();
    }

    #[test]
    fn invalid_names_say_which_rule() {
        let err = validate_channel_name("chat room").unwrap_err();
        assert!(err.to_string().contains("only ASCII letters"), "{err}");
        let err = validate_channel_name(&"a".repeat(101)).unwrap_err();
        assert!(err.to_string().contains("longer than 100"), "{err}");
        let err = validate_channel_name("").unwrap_err();
        assert!(err.to_string().contains("empty"), "{err}");
        let err = validate_channel_name("!abc").unwrap_err();
        assert!(err.to_string().contains("before '!'"), "{err}");
        let err = validate_channel_name("a!b!c").unwrap_err();
        assert!(err.to_string().contains("may follow '!'"), "{err}");
        let err = validate_group_name("room!x").unwrap_err();
        assert!(err.to_string().starts_with("invalid group name"), "{err}");
    }

    #[test]
    fn non_local_part_keeps_the_bang() {
        assert_eq!(non_local_part("specific.abc!xyz"), Some("specific.abc!"));
        assert_eq!(non_local_part("chat"), None);
    }
}
