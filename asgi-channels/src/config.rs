//! The settings every layer shares, with Django Channels' defaults.

use std::time::Duration;

/// How many messages a channel holds before `send` answers
/// [`ChannelFull`](crate::ChannelLayerError::ChannelFull): 100, Channels' default. A consumer
/// that falls this far behind is not keeping up, and holding more would only grow memory.
/// Change it with [`LayerConfig::capacity`], or per channel-name pattern with
/// [`LayerConfig::channel_capacity`].
pub const DEFAULT_CAPACITY: usize = 100;

/// How long a message waits in a channel before it is dropped: 60 s, Channels' default. A
/// message nobody received within a minute is stale (the consumer is gone or stuck). Change it
/// with [`LayerConfig::expiry`].
pub const DEFAULT_EXPIRY: Duration = Duration::from_secs(60);

/// How long a group membership lasts unless renewed by another `group_add`: one day,
/// Channels' default. It cleans up after consumers that died without leaving their groups.
/// Change it with [`LayerConfig::group_expiry`].
pub const DEFAULT_GROUP_EXPIRY: Duration = Duration::from_secs(86_400);

/// The settings of a channel layer.
///
/// ```
/// use std::time::Duration;
/// use asgi_channels::LayerConfig;
///
/// let config = LayerConfig::default()
///     .capacity(200)
///     .channel_capacity("http.request*", 1000)
///     .expiry(Duration::from_secs(30));
/// assert_eq!(config.capacity_for("http.request.body"), 1000);
/// assert_eq!(config.capacity_for("chat"), 200);
/// ```
#[derive(Debug, Clone)]
pub struct LayerConfig {
    pub(crate) capacity: usize,
    pub(crate) channel_capacity: Vec<(String, usize)>,
    pub(crate) expiry: Duration,
    pub(crate) group_expiry: Duration,
}

impl Default for LayerConfig {
    fn default() -> Self {
        LayerConfig {
            capacity: DEFAULT_CAPACITY,
            channel_capacity: Vec::new(),
            expiry: DEFAULT_EXPIRY,
            group_expiry: DEFAULT_GROUP_EXPIRY,
        }
    }
}

impl LayerConfig {
    /// Messages a channel holds. Default [`DEFAULT_CAPACITY`] (100). At least 1.
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// The capacity of the channels whose names match `pattern`, a glob where `*` matches
    /// any run of characters and `?` one character. The first matching pattern wins; names
    /// that match none get [`capacity`](Self::capacity).
    pub fn channel_capacity(mut self, pattern: impl Into<String>, capacity: usize) -> Self {
        self.channel_capacity
            .push((pattern.into(), capacity.max(1)));
        self
    }

    /// How long a message may wait. Default [`DEFAULT_EXPIRY`] (60 s). At least 1 s.
    pub fn expiry(mut self, expiry: Duration) -> Self {
        self.expiry = expiry.max(Duration::from_secs(1));
        self
    }

    /// How long a membership lasts unless renewed. Default [`DEFAULT_GROUP_EXPIRY`] (one
    /// day). At least 1 s.
    pub fn group_expiry(mut self, group_expiry: Duration) -> Self {
        self.group_expiry = group_expiry.max(Duration::from_secs(1));
        self
    }

    /// The capacity that applies to `channel`.
    pub fn capacity_for(&self, channel: &str) -> usize {
        self.channel_capacity
            .iter()
            .find(|(pattern, _)| glob_matches(pattern.as_bytes(), channel.as_bytes()))
            .map_or(self.capacity, |(_, capacity)| *capacity)
    }

    /// The message expiry.
    pub fn get_expiry(&self) -> Duration {
        self.expiry
    }

    /// The membership expiry.
    pub fn get_group_expiry(&self) -> Duration {
        self.group_expiry
    }
}

/// `*` and `?` glob matching, iterative with one backtrack point: linear in practice, and
/// never recursive, so a hostile pattern cannot blow the stack.
fn glob_matches(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == name[n]) {
            p += 1;
            n += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, n));
            p += 1;
        } else if let Some((star_p, star_n)) = star {
            p = star_p + 1;
            n = star_n + 1;
            star = Some((star_p, star_n + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_as_shells_do() {
        assert!(glob_matches(b"*", b"anything"));
        assert!(glob_matches(b"chat.*", b"chat.room"));
        assert!(!glob_matches(b"chat.*", b"chatroom"));
        assert!(glob_matches(b"a?c", b"abc"));
        assert!(glob_matches(b"*.body", b"http.request.body"));
        assert!(!glob_matches(b"*.body", b"http.request.bod"));
        assert!(glob_matches(b"a*b*c", b"aXXbYYc"));
        assert!(!glob_matches(b"a*b*c", b"aXXbYY"));
    }

    #[test]
    fn first_matching_pattern_sets_the_capacity() {
        let config = LayerConfig::default()
            .channel_capacity("big.*", 1000)
            .channel_capacity("big.small", 5);
        assert_eq!(config.capacity_for("big.small"), 1000);
        assert_eq!(config.capacity_for("other"), DEFAULT_CAPACITY);
    }
}
