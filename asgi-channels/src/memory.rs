//! [`InMemoryChannelLayer`]: the channel layer for one process.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use async_trait::async_trait;
use tokio::sync::Notify;

use crate::layer::Counters;
use crate::name::{non_local_part, random_letters, validate_channel_name, validate_group_name};
use crate::{ChannelLayer, ChannelLayerError, LayerConfig, LayerMessage, LayerStats};

/// Every how many sends the layer sweeps all channels and groups for expired entries, so that
/// channels nobody reads and groups nobody sends to do not keep expired data forever. 1024
/// keeps the sweep's cost, linear in the number of channels, a small share of the sends.
const SWEEP_EVERY: u64 = 1024;

/// The channel layer for one process: the same semantics as the Redis layer (capacity,
/// expiry, group expiry, FIFO, at-most-once), kept in memory. For tests and single-instance
/// apps; processes do not share it.
///
/// Cloning gives another handle to the same layer.
#[derive(Debug, Clone)]
pub struct InMemoryChannelLayer {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: LayerConfig,
    client_id: String,
    state: Mutex<State>,
    counters: Counters,
}

#[derive(Debug, Default)]
struct State {
    channels: HashMap<String, Mailbox>,
    groups: HashMap<String, HashMap<String, Instant>>,
    sends: u64,
}

#[derive(Debug, Default)]
struct Mailbox {
    messages: VecDeque<(Instant, LayerMessage)>,
    /// Wakes the receivers waiting on this channel.
    notify: Arc<Notify>,
    /// Receivers waiting now: the mailbox is kept while any waits, so that a send finds their
    /// `Notify`.
    waiting: usize,
    /// Made by `new_channel` and not closed yet: kept even when empty.
    open: bool,
}

impl Default for InMemoryChannelLayer {
    /// A layer with [`LayerConfig::default`].
    fn default() -> Self {
        InMemoryChannelLayer::new(LayerConfig::default())
    }
}

impl InMemoryChannelLayer {
    /// A layer with `config`.
    pub fn new(config: LayerConfig) -> Self {
        InMemoryChannelLayer {
            inner: Arc::new(Inner {
                config,
                client_id: random_letters(8),
                state: Mutex::default(),
                counters: Counters::default(),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the maps consistent (every update is a single
        // insert or remove), so a poisoned lock is still usable.
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Drops the expired messages at the front of `mailbox`, counting them.
    fn purge(&self, mailbox: &mut Mailbox, now: Instant) {
        let expiry = self.inner.config.expiry;
        let before = mailbox.messages.len();
        while let Some((at, _)) = mailbox.messages.front() {
            if now.duration_since(*at) < expiry {
                break;
            }
            mailbox.messages.pop_front();
        }
        let expired = before - mailbox.messages.len();
        if expired > 0 {
            self.inner.counters.expired(expired as u64);
        }
    }

    fn sweep(&self, state: &mut State, now: Instant) {
        let group_expiry = self.inner.config.group_expiry;
        let mut expired = 0;
        let expiry = self.inner.config.expiry;
        state.channels.retain(|_, mailbox| {
            let before = mailbox.messages.len();
            mailbox
                .messages
                .retain(|(at, _)| now.duration_since(*at) < expiry);
            expired += before - mailbox.messages.len();
            mailbox.open || mailbox.waiting > 0 || !mailbox.messages.is_empty()
        });
        if expired > 0 {
            self.inner.counters.expired(expired as u64);
        }
        state.groups.retain(|_, members| {
            members.retain(|_, added| now.duration_since(*added) < group_expiry);
            !members.is_empty()
        });
    }

    /// Queues `message` if there is room; `false` if the channel is full. A message for a
    /// process-local channel that is not open is discarded, as it is on Redis: nobody can
    /// receive it.
    fn push(&self, state: &mut State, channel: &str, message: LayerMessage, now: Instant) -> bool {
        let capacity = self.inner.config.capacity_for(channel);
        if non_local_part(channel).is_some() && !state.channels.contains_key(channel) {
            return true;
        }
        let mailbox = state.channels.entry(channel.to_owned()).or_default();
        self.purge(mailbox, now);
        if mailbox.messages.len() >= capacity {
            return false;
        }
        mailbox.messages.push_back((now, message));
        mailbox.notify.notify_waiters();
        true
    }

    fn count_send(&self, state: &mut State, now: Instant) {
        state.sends += 1;
        if state.sends.is_multiple_of(SWEEP_EVERY) {
            self.sweep(state, now);
        }
    }
}

#[async_trait]
impl ChannelLayer for InMemoryChannelLayer {
    async fn new_channel(&self) -> Result<String, ChannelLayerError> {
        let name = format!("specific.{}!{}", self.inner.client_id, random_letters(12));
        self.state().channels.entry(name.clone()).or_default().open = true;
        Ok(name)
    }

    async fn send(&self, channel: &str, message: LayerMessage) -> Result<(), ChannelLayerError> {
        validate_channel_name(channel)?;
        let now = Instant::now();
        let mut state = self.state();
        self.count_send(&mut state, now);
        if self.push(&mut state, channel, message, now) {
            Ok(())
        } else {
            Err(ChannelLayerError::ChannelFull {
                channel: channel.to_owned(),
            })
        }
    }

    async fn receive(&self, channel: &str) -> Result<LayerMessage, ChannelLayerError> {
        validate_channel_name(channel)?;
        loop {
            let notify = {
                let mut state = self.state();
                let now = Instant::now();
                let local = non_local_part(channel).is_some();
                if local && !state.channels.get(channel).is_some_and(|m| m.open) {
                    return Err(ChannelLayerError::UnknownChannel {
                        channel: channel.to_owned(),
                    });
                }
                let mailbox = state.channels.entry(channel.to_owned()).or_default();
                self.purge(mailbox, now);
                if let Some((_, message)) = mailbox.messages.pop_front() {
                    if mailbox.messages.is_empty() && mailbox.waiting == 0 && !mailbox.open {
                        state.channels.remove(channel);
                    }
                    return Ok(message);
                }
                mailbox.waiting += 1;
                mailbox.notify.clone()
            };
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let waiting = WaitingGuard {
                layer: self,
                channel,
            };
            // A message may have arrived between the unlock and `enable`: check once more
            // before sleeping.
            let arrived = {
                let state = self.state();
                state
                    .channels
                    .get(channel)
                    .is_some_and(|mailbox| !mailbox.messages.is_empty())
            };
            if !arrived {
                notified.await;
            }
            drop(waiting);
        }
    }

    async fn group_add(&self, group: &str, channel: &str) -> Result<(), ChannelLayerError> {
        validate_group_name(group)?;
        validate_channel_name(channel)?;
        self.state()
            .groups
            .entry(group.to_owned())
            .or_default()
            .insert(channel.to_owned(), Instant::now());
        Ok(())
    }

    async fn group_discard(&self, group: &str, channel: &str) -> Result<(), ChannelLayerError> {
        validate_group_name(group)?;
        validate_channel_name(channel)?;
        let mut state = self.state();
        if let Some(members) = state.groups.get_mut(group) {
            members.remove(channel);
            if members.is_empty() {
                state.groups.remove(group);
            }
        }
        Ok(())
    }

    async fn group_send(
        &self,
        group: &str,
        message: LayerMessage,
    ) -> Result<(), ChannelLayerError> {
        validate_group_name(group)?;
        let now = Instant::now();
        let group_expiry = self.inner.config.group_expiry;
        let mut state = self.state();
        self.count_send(&mut state, now);
        let Some(members) = state.groups.get_mut(group) else {
            return Ok(());
        };
        members.retain(|_, added| now.duration_since(*added) < group_expiry);
        let channels: Vec<String> = members.keys().cloned().collect();
        let mut dropped = 0;
        for channel in channels {
            if !self.push(&mut state, &channel, message.clone(), now) {
                dropped += 1;
            }
        }
        drop(state);
        if dropped > 0 {
            self.inner.counters.group_send_dropped(group, dropped);
        }
        Ok(())
    }

    async fn flush(&self) -> Result<(), ChannelLayerError> {
        let mut state = self.state();
        state.groups.clear();
        // Keep the mailboxes receivers wait on (their `Notify`), empty.
        state
            .channels
            .retain(|_, mailbox| mailbox.waiting > 0 || mailbox.open);
        for mailbox in state.channels.values_mut() {
            mailbox.messages.clear();
        }
        Ok(())
    }

    async fn close_channel(&self, channel: &str) {
        let mut state = self.state();
        if let Some(mailbox) = state.channels.get_mut(channel) {
            mailbox.open = false;
            mailbox.messages.clear();
            if mailbox.waiting == 0 {
                state.channels.remove(channel);
            }
        }
    }

    fn stats(&self) -> LayerStats {
        self.inner.counters.snapshot()
    }
}

/// Takes a receiver off its mailbox's waiting count on every path out of the wait,
/// cancellation included.
struct WaitingGuard<'a> {
    layer: &'a InMemoryChannelLayer,
    channel: &'a str,
}

impl Drop for WaitingGuard<'_> {
    fn drop(&mut self) {
        let mut state = self.layer.state();
        if let Some(mailbox) = state.channels.get_mut(self.channel) {
            mailbox.waiting -= 1;
            if mailbox.waiting == 0 && mailbox.messages.is_empty() && !mailbox.open {
                state.channels.remove(self.channel);
            }
        }
    }
}
