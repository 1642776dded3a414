//! [`RedisChannelLayer`]: channels and groups shared by every process that uses the same
//! Redis servers.
//!
//! # How it stores things
//!
//! As channels_redis does:
//!
//! - A channel is a sorted set `{prefix}ch:{name}` scored by the time a message was queued
//!   (Redis's own clock, so processes on different machines agree), with a per-channel
//!   sequence number in front of each member so that messages queued in the same millisecond
//!   keep their order. Sends go through a Lua script that drops expired messages, checks the
//!   capacity and queues, in one step; the key expires with the message expiry.
//! - The process-local channels of one process (`specific.<process>!<local>`) share one
//!   sorted set, named by their part up to `!`. Each message carries the local channel names
//!   it is for, and one task per process pops that set and hands each message to the local
//!   mailboxes, bounded by the capacity. A `group_send` thus writes one message per process,
//!   not one per member.
//! - A group is a sorted set `{prefix}group:{name}` of channel names scored by when they were
//!   added; `group_send` first drops the memberships older than the group expiry.
//! - With several Redis servers, each channel and group lives on one of them, chosen by a
//!   consistent hash of its name (CRC32, as channels_redis does), so every process agrees.
//!
//! It is not Pub/Sub: a message for a process that is briefly disconnected waits in Redis
//! (until it expires) rather than being lost.
//!
//! # Outages
//!
//! Commands go through the `redis` crate's [`ConnectionManager`], which reconnects on its
//! own. While Redis is down, `send`, `group_send`, `group_add` and `group_discard` return
//! [`ChannelLayerError::Backend`] at once, and `receive` keeps waiting: the popping tasks
//! retry with a backoff of up to [`MAX_RETRY_BACKOFF`], and messages flow again once Redis is
//! back.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Client, Script};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::layer::Counters;
use crate::name::{non_local_part, random_letters, validate_channel_name, validate_group_name};
use crate::{ChannelLayer, ChannelLayerError, LayerConfig, LayerMessage, LayerStats};

/// The key prefix: `asgi:`. Change it with [`RedisLayerBuilder::prefix`] to keep several
/// apps apart on one Redis.
pub const DEFAULT_PREFIX: &str = "asgi:";

/// How long one Redis command may take before it fails: 3 s. Long enough for a loaded
/// server, short enough that a hung Redis surfaces as an error rather than a hung request.
/// Change it with [`RedisLayerBuilder::command_timeout`].
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(3);

/// How long one blocking pop waits before it is issued again: 1 s. The popping task checks
/// between waits whether the layer is still in use, so this bounds how long it outlives the
/// layer. Not a setting.
const BLOCK_TIMEOUT: Duration = Duration::from_secs(1);

/// The longest pause between two tries of a popping task while Redis is unreachable: 2 s.
/// The pause starts at 50 ms and doubles, so a restarted Redis is used again within 2 s of
/// coming back, without a hot loop while it is down.
pub const MAX_RETRY_BACKOFF: Duration = Duration::from_secs(2);

const FIRST_RETRY_BACKOFF: Duration = Duration::from_millis(50);

/// Messages a popping task of a general (not process-local) channel holds for its receiver:
/// one. It pops the next message only once the receiver took the last, so a message waits in
/// Redis, where its expiry and capacity apply, not in this process.
const GENERAL_MAILBOX: usize = 1;

/// Queues one message on each channel key given, unless that key is at its capacity; drops
/// expired messages first. Returns the 1-based indexes (of key pairs) that were full.
///
/// KEYS: channel key, sequence key, (repeated). ARGV: expiry in seconds, then payload and
/// capacity for each key pair.
const SEND_LUA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expiry = tonumber(ARGV[1])
local full = {}
for i = 1, #KEYS, 2 do
  local key = KEYS[i]
  local seq_key = KEYS[i + 1]
  local payload = ARGV[i + 1]
  local capacity = tonumber(ARGV[i + 2])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - expiry * 1000)
  if redis.call('ZCARD', key) < capacity then
    local seq = redis.call('INCR', seq_key)
    redis.call('ZADD', key, now, string.format('%016x', seq) .. payload)
    redis.call('EXPIRE', key, expiry)
    redis.call('EXPIRE', seq_key, expiry)
  else
    full[#full + 1] = (i + 1) / 2
  end
end
return full
";

/// Pops the oldest unexpired message of a channel key, or nothing. ARGV: expiry in seconds.
const POP_LUA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[1]) * 1000)
local popped = redis.call('ZPOPMIN', KEYS[1])
if #popped == 0 then return false end
return popped[1]
";

/// Adds (or renews) a member of a group, scored by Redis's clock in milliseconds. ARGV:
/// channel, group expiry in seconds.
const GROUP_ADD_LUA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
";

/// Drops lapsed members of a group and returns the others. ARGV: group expiry in seconds.
const GROUP_MEMBERS_LUA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[1]) * 1000)
return redis.call('ZRANGE', KEYS[1], 0, -1)
";

/// Deletes every key under a prefix. ARGV: the prefix followed by `*`.
const FLUSH_LUA: &str = r"
local cursor = '0'
repeat
  local reply = redis.call('SCAN', cursor, 'MATCH', ARGV[1], 'COUNT', 1000)
  cursor = reply[1]
  if #reply[2] > 0 then redis.call('DEL', unpack(reply[2])) end
until cursor == '0'
return 1
";

/// What a queued member carries after its sequence number.
#[derive(Serialize, Deserialize)]
struct Envelope {
    /// The process-local channels it is for; empty for a general channel.
    #[serde(default, skip_serializing_if = "Vec::is_empty", rename = "c")]
    channels: Vec<String>,
    #[serde(rename = "m")]
    message: LayerMessage,
}

/// Builds a [`RedisChannelLayer`].
#[derive(Debug, Clone)]
pub struct RedisLayerBuilder {
    hosts: Vec<String>,
    prefix: String,
    config: LayerConfig,
    command_timeout: Duration,
}

impl RedisLayerBuilder {
    /// Adds a Redis server, as a URL (`redis://127.0.0.1:6379/0`). With several, channels and
    /// groups are sharded over them by a consistent hash; every process must list the same
    /// servers in the same order.
    pub fn host(mut self, url: impl Into<String>) -> Self {
        self.hosts.push(url.into());
        self
    }

    /// The key prefix. Default [`DEFAULT_PREFIX`].
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Capacity, expiry and group expiry. Default [`LayerConfig::default`].
    pub fn config(mut self, config: LayerConfig) -> Self {
        self.config = config;
        self
    }

    /// How long one command may take. Default [`DEFAULT_COMMAND_TIMEOUT`].
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// Connects to every host, so that a wrong URL or a server that is not running is a
    /// clear error at start-up. Later outages are survived: see the module docs.
    ///
    /// # Errors
    ///
    /// [`ChannelLayerError::Backend`] naming the host that failed; an invalid URL too.
    pub async fn connect(self) -> Result<RedisChannelLayer, ChannelLayerError> {
        let hosts = if self.hosts.is_empty() {
            vec!["redis://127.0.0.1:6379".to_owned()]
        } else {
            self.hosts
        };
        let mut shards = Vec::with_capacity(hosts.len());
        for url in &hosts {
            let client = Client::open(url.as_str()).map_err(|e| backend_at(url, e))?;
            let config = ConnectionManagerConfig::new()
                .set_response_timeout(Some(self.command_timeout))
                .set_connection_timeout(Some(self.command_timeout))
                .set_max_delay(MAX_RETRY_BACKOFF);
            let commands = ConnectionManager::new_with_config(client.clone(), config)
                .await
                .map_err(|e| backend_at(url, e))?;
            shards.push(Shard {
                url: url.clone(),
                client,
                commands,
            });
        }
        Ok(RedisChannelLayer {
            inner: Arc::new(Inner {
                shards,
                prefix: self.prefix,
                config: self.config,
                command_timeout: self.command_timeout,
                client_id: random_letters(12),
                local: Mutex::default(),
                general: Mutex::default(),
                counters: Counters::default(),
                send_script: Script::new(SEND_LUA),
                pop_script: Script::new(POP_LUA),
                group_add_script: Script::new(GROUP_ADD_LUA),
                group_members_script: Script::new(GROUP_MEMBERS_LUA),
                flush_script: Script::new(FLUSH_LUA),
            }),
        })
    }
}

fn backend_at(url: &str, error: redis::RedisError) -> ChannelLayerError {
    ChannelLayerError::Backend(format!("redis at {url}: {error}").into())
}

fn backend(error: redis::RedisError) -> ChannelLayerError {
    ChannelLayerError::Backend(Box::new(error))
}

/// The channel layer on Redis, with channels_redis's semantics: see the [module
/// docs](self).
///
/// ```no_run
/// use asgi_channels::{ChannelLayer, RedisChannelLayer};
///
/// # async fn run() -> Result<(), asgi_channels::ChannelLayerError> {
/// let layer = RedisChannelLayer::builder()
///     .host("redis://127.0.0.1:6379")
///     .connect()
///     .await?;
/// let me = layer.new_channel().await?;
/// layer.group_add("room.lobby", &me).await?;
/// # Ok(())
/// # }
/// ```
///
/// Cloning gives another handle to the same layer (one set of connections, one popping task
/// per process-local key).
#[derive(Clone)]
pub struct RedisChannelLayer {
    inner: Arc<Inner>,
}

impl fmt::Debug for RedisChannelLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hosts: Vec<&str> = self.inner.shards.iter().map(|s| s.url.as_str()).collect();
        f.debug_struct("RedisChannelLayer")
            .field("hosts", &hosts)
            .field("prefix", &self.inner.prefix)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

struct Inner {
    shards: Vec<Shard>,
    prefix: String,
    config: LayerConfig,
    command_timeout: Duration,
    /// This process's part of its local channel names: `specific.<client_id>!...`.
    client_id: String,
    /// Mailboxes of this process's local channels, and whether the popping task of their
    /// shared key runs.
    local: Mutex<Local>,
    /// The mailboxes of general channels being received in this process, each fed by a
    /// popping task of its own.
    general: Mutex<HashMap<String, Arc<Mailbox>>>,
    counters: Counters,
    send_script: Script,
    pop_script: Script,
    group_add_script: Script,
    group_members_script: Script,
    flush_script: Script,
}

#[derive(Default)]
struct Local {
    mailboxes: HashMap<String, (mpsc::Sender<LayerMessage>, Arc<Mailbox>)>,
    pumping: bool,
}

/// The receiving end of a channel in this process. Receivers take turns through the lock;
/// both waits are cancel safe, so a cancelled `receive` loses nothing.
struct Mailbox {
    receiver: tokio::sync::Mutex<mpsc::Receiver<LayerMessage>>,
}

struct Shard {
    url: String,
    client: Client,
    commands: ConnectionManager,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update under these locks is a single map insert or remove: a panic cannot leave
    // them half-done, so a poisoned lock is still consistent.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl RedisChannelLayer {
    /// A builder; with no [`host`](RedisLayerBuilder::host), `redis://127.0.0.1:6379`.
    pub fn builder() -> RedisLayerBuilder {
        RedisLayerBuilder {
            hosts: Vec::new(),
            prefix: DEFAULT_PREFIX.to_owned(),
            config: LayerConfig::default(),
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
        }
    }
}

impl Inner {
    /// The shard a channel or group name lives on: CRC32 of the name, as channels_redis.
    fn shard_of(&self, name: &str) -> usize {
        if self.shards.len() == 1 {
            return 0;
        }
        let hash = crc32fast::hash(name.as_bytes()) & 0xfff;
        (hash as usize * self.shards.len()) / 4096
    }

    fn channel_key(&self, stored_name: &str) -> String {
        format!("{}ch:{stored_name}", self.prefix)
    }

    fn sequence_key(&self, stored_name: &str) -> String {
        format!("{}seq:{stored_name}", self.prefix)
    }

    fn group_key(&self, group: &str) -> String {
        format!("{}group:{group}", self.prefix)
    }

    fn expiry_secs(&self) -> u64 {
        self.config.expiry.as_secs().max(1)
    }

    /// The name a channel is stored under: its part up to `!` for a local channel.
    fn stored_name(channel: &str) -> &str {
        non_local_part(channel).unwrap_or(channel)
    }

    /// The capacity of the stored key: for a process's shared key, the capacity of one
    /// channel times the channels it serves would be unbounded, so it is the configured
    /// capacity of the shared name; the mailboxes bound each local channel.
    fn capacity_of(&self, stored_name: &str) -> usize {
        self.config.capacity_for(stored_name)
    }

    /// Queues payloads on the keys of one shard; returns the indexes (into `targets`) that
    /// were full.
    async fn queue(
        &self,
        shard: usize,
        targets: &[(String, Envelope)],
    ) -> Result<Vec<usize>, ChannelLayerError> {
        let mut invocation = self.send_script.prepare_invoke();
        invocation.arg(self.expiry_secs());
        for (stored, envelope) in targets {
            invocation
                .key(self.channel_key(stored))
                .key(self.sequence_key(stored))
                .arg(serde_json::to_string(envelope)?)
                .arg(self.capacity_of(stored));
        }
        let mut connection = self.shards[shard].commands.clone();
        let full: Vec<usize> = invocation
            .invoke_async(&mut connection)
            .await
            .map_err(backend)?;
        Ok(full.into_iter().map(|i| i - 1).collect())
    }

    /// Pops the oldest message of `stored` on its shard: at once if there is one, else with
    /// a blocking pop of up to [`BLOCK_TIMEOUT`] on `blocking`, a connection of its own (a
    /// blocking command would stall every other command sharing its connection).
    async fn pop(
        &self,
        stored: &str,
        blocking: &mut ConnectionManager,
    ) -> Result<Option<Envelope>, redis::RedisError> {
        let shard = &self.shards[self.shard_of(stored)];
        let key = self.channel_key(stored);
        let mut connection = shard.commands.clone();
        let member: Option<String> = self
            .pop_script
            .key(&key)
            .arg(self.expiry_secs())
            .invoke_async(&mut connection)
            .await?;
        let member = match member {
            Some(member) => Some(member),
            None => {
                let popped: Option<(String, String, f64)> =
                    blocking.bzpopmin(&key, BLOCK_TIMEOUT.as_secs_f64()).await?;
                popped.map(|(_, member, _)| member)
            }
        };
        Ok(member.and_then(|member| decode(&member)))
    }

    /// A connection for blocking pops on `stored`'s shard.
    async fn blocking_connection(
        &self,
        stored: &str,
    ) -> Result<ConnectionManager, redis::RedisError> {
        let shard = &self.shards[self.shard_of(stored)];
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(BLOCK_TIMEOUT + self.command_timeout))
            .set_connection_timeout(Some(self.command_timeout))
            .set_max_delay(MAX_RETRY_BACKOFF);
        ConnectionManager::new_with_config(shard.client.clone(), config).await
    }
}

/// Parses a queued member: 16 hex digits of sequence, then the JSON envelope. A member this
/// layer did not write is skipped (and logged) rather than failing the receiver.
fn decode(member: &str) -> Option<Envelope> {
    let parsed = member
        .get(16..)
        .map(serde_json::from_str::<Envelope>)
        .and_then(Result::ok);
    if parsed.is_none() {
        tracing::warn!(target: "asgi_channels", "skipped a channel message this layer cannot read");
    }
    parsed
}

/// Feeds the mailboxes of one process's local channels from their shared key, until the
/// layer is dropped.
async fn pump_local(inner: Weak<Inner>, stored: String) {
    let mut backoff = FIRST_RETRY_BACKOFF;
    let mut blocking: Option<ConnectionManager> = None;
    loop {
        let Some(layer) = inner.upgrade() else { return };
        if blocking.is_none() {
            match layer.blocking_connection(&stored).await {
                Ok(connection) => blocking = Some(connection),
                Err(error) => {
                    drop(layer);
                    retry_after(&mut backoff, &error).await;
                    continue;
                }
            }
        }
        let Some(connection) = blocking.as_mut() else {
            continue;
        };
        match layer.pop(&stored, connection).await {
            Ok(Some(envelope)) => {
                backoff = FIRST_RETRY_BACKOFF;
                let local = lock(&layer.local);
                for channel in &envelope.channels {
                    match local.mailboxes.get(channel) {
                        Some((sender, _)) => {
                            if sender.try_send(envelope.message.clone()).is_err() {
                                layer.counters.local_dropped(channel);
                            }
                        }
                        // Closed, or never opened here: nobody can receive it.
                        None => {
                            tracing::debug!(target: "asgi_channels", channel, "message for a closed channel discarded")
                        }
                    }
                }
            }
            Ok(None) => backoff = FIRST_RETRY_BACKOFF,
            Err(error) => {
                drop(layer);
                retry_after(&mut backoff, &error).await;
            }
        }
    }
}

/// Feeds the mailbox of one general channel, taking a message from Redis only once the last
/// one was received, until the receivers are gone.
async fn pump_general(inner: Weak<Inner>, channel: String, sender: mpsc::Sender<LayerMessage>) {
    let mut backoff = FIRST_RETRY_BACKOFF;
    let mut blocking: Option<ConnectionManager> = None;
    loop {
        let Ok(permit) = sender.reserve().await else {
            return;
        };
        let Some(layer) = inner.upgrade() else { return };
        if blocking.is_none() {
            match layer.blocking_connection(&channel).await {
                Ok(connection) => blocking = Some(connection),
                Err(error) => {
                    drop((layer, permit));
                    retry_after(&mut backoff, &error).await;
                    continue;
                }
            }
        }
        let Some(connection) = blocking.as_mut() else {
            continue;
        };
        match layer.pop(&channel, connection).await {
            Ok(Some(envelope)) => {
                backoff = FIRST_RETRY_BACKOFF;
                permit.send(envelope.message);
            }
            Ok(None) => backoff = FIRST_RETRY_BACKOFF,
            Err(error) => {
                drop((layer, permit));
                retry_after(&mut backoff, &error).await;
            }
        }
    }
}

async fn retry_after(backoff: &mut Duration, error: &redis::RedisError) {
    tracing::warn!(target: "asgi_channels", %error, retry_in = ?*backoff, "redis unreachable; receiving again after a pause");
    tokio::time::sleep(*backoff).await;
    *backoff = (*backoff * 2).min(MAX_RETRY_BACKOFF);
}

#[async_trait]
impl ChannelLayer for RedisChannelLayer {
    async fn new_channel(&self) -> Result<String, ChannelLayerError> {
        let inner = &self.inner;
        let stored = format!("specific.{}!", inner.client_id);
        let name = format!("{stored}{}", random_letters(12));
        let capacity = inner.config.capacity_for(&name);
        let (sender, receiver) = mpsc::channel(capacity);
        let mailbox = Arc::new(Mailbox {
            receiver: tokio::sync::Mutex::new(receiver),
        });
        let mut local = lock(&inner.local);
        local.mailboxes.insert(name.clone(), (sender, mailbox));
        if !local.pumping {
            local.pumping = true;
            tokio::spawn(pump_local(Arc::downgrade(inner), stored));
        }
        Ok(name)
    }

    async fn send(&self, channel: &str, message: LayerMessage) -> Result<(), ChannelLayerError> {
        validate_channel_name(channel)?;
        let stored = Inner::stored_name(channel);
        let channels = if stored.len() < channel.len() {
            vec![channel.to_owned()]
        } else {
            Vec::new()
        };
        let target = (stored.to_owned(), Envelope { channels, message });
        let full = self
            .inner
            .queue(self.inner.shard_of(stored), std::slice::from_ref(&target))
            .await?;
        if full.is_empty() {
            Ok(())
        } else {
            Err(ChannelLayerError::ChannelFull {
                channel: channel.to_owned(),
            })
        }
    }

    async fn receive(&self, channel: &str) -> Result<LayerMessage, ChannelLayerError> {
        validate_channel_name(channel)?;
        let mailbox = if non_local_part(channel).is_some() {
            lock(&self.inner.local)
                .mailboxes
                .get(channel)
                .map(|(_, mailbox)| mailbox.clone())
                .ok_or_else(|| ChannelLayerError::UnknownChannel {
                    channel: channel.to_owned(),
                })?
        } else {
            let mut general = lock(&self.inner.general);
            general
                .entry(channel.to_owned())
                .or_insert_with(|| {
                    let (sender, receiver) = mpsc::channel(GENERAL_MAILBOX);
                    tokio::spawn(pump_general(
                        Arc::downgrade(&self.inner),
                        channel.to_owned(),
                        sender,
                    ));
                    Arc::new(Mailbox {
                        receiver: tokio::sync::Mutex::new(receiver),
                    })
                })
                .clone()
        };
        let mut receiver = mailbox.receiver.lock().await;
        receiver
            .recv()
            .await
            .ok_or_else(|| ChannelLayerError::UnknownChannel {
                channel: channel.to_owned(),
            })
    }

    async fn group_add(&self, group: &str, channel: &str) -> Result<(), ChannelLayerError> {
        validate_group_name(group)?;
        validate_channel_name(channel)?;
        let inner = &self.inner;
        let mut connection = inner.shards[inner.shard_of(group)].commands.clone();
        let _: i64 = inner
            .group_add_script
            .key(inner.group_key(group))
            .arg(channel)
            .arg(inner.config.group_expiry.as_secs().max(1))
            .invoke_async(&mut connection)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn group_discard(&self, group: &str, channel: &str) -> Result<(), ChannelLayerError> {
        validate_group_name(group)?;
        validate_channel_name(channel)?;
        let inner = &self.inner;
        let mut connection = inner.shards[inner.shard_of(group)].commands.clone();
        let _: i64 = connection
            .zrem(inner.group_key(group), channel)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn group_send(
        &self,
        group: &str,
        message: LayerMessage,
    ) -> Result<(), ChannelLayerError> {
        validate_group_name(group)?;
        let inner = &self.inner;
        let mut connection = inner.shards[inner.shard_of(group)].commands.clone();
        let members: Vec<String> = inner
            .group_members_script
            .key(inner.group_key(group))
            .arg(inner.config.group_expiry.as_secs().max(1))
            .invoke_async(&mut connection)
            .await
            .map_err(backend)?;
        // One envelope per stored key: a process's local members share one.
        let mut by_key: HashMap<String, Vec<String>> = HashMap::new();
        for member in members {
            let stored = Inner::stored_name(&member).to_owned();
            let locals = by_key.entry(stored.clone()).or_default();
            if stored.len() < member.len() {
                locals.push(member);
            }
        }
        let mut by_shard: HashMap<usize, Vec<(String, Envelope)>> = HashMap::new();
        for (stored, channels) in by_key {
            by_shard.entry(inner.shard_of(&stored)).or_default().push((
                stored,
                Envelope {
                    channels,
                    message: message.clone(),
                },
            ));
        }
        let mut dropped = 0u64;
        for (shard, targets) in &by_shard {
            for full in inner.queue(*shard, targets).await? {
                dropped += targets[full].1.channels.len().max(1) as u64;
            }
        }
        if dropped > 0 {
            inner.counters.group_send_dropped(group, dropped);
        }
        Ok(())
    }

    async fn flush(&self) -> Result<(), ChannelLayerError> {
        let inner = &self.inner;
        for shard in &inner.shards {
            let mut connection = shard.commands.clone();
            let _: i64 = inner
                .flush_script
                .arg(format!("{}*", inner.prefix))
                .invoke_async(&mut connection)
                .await
                .map_err(backend)?;
        }
        Ok(())
    }

    async fn close_channel(&self, channel: &str) {
        lock(&self.inner.local).mailboxes.remove(channel);
    }

    fn stats(&self) -> LayerStats {
        self.inner.counters.snapshot()
    }
}
