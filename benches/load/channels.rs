//! The channel layers under load: `group_send` fan-out through the `chat` example, from one
//! WebSocket client's message to every member's WebSocket.
//!
//! For 1, 100 and 1000 members, spread over two `chat` processes sharing a Redis (and, for
//! comparison, all in one process with the in-memory layer), a sender posts messages to the
//! room; each member's client records when each message arrived. Reported: messages
//! delivered per second, and the p50 / p99 latency from the send to the member's WebSocket.
//!
//! The physical limit is Redis itself: `redis-benchmark` measures, in the same run and
//! against the same server, how many of the commands a `group_send` costs Redis can do per
//! second. One `group_send` over two processes costs five: the members script, one queueing
//! script per process, and one pop per process. The ratio printed is our `group_send`s per
//! second against Redis's command rate divided by five.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message as WireMessage;

use crate::BoxResult;
use crate::Settings;
use crate::process;

#[path = "../../asgi-channels/tests/support/redis_server.rs"]
mod redis_server;

/// The fan-outs measured, and how many messages each sends.
const FAN_OUTS: [(usize, usize); 3] = [(1, 2000), (100, 200), (1000, 40)];

/// How long one fan-out may take before it is reported as incomplete.
const FAN_OUT_PATIENCE: Duration = Duration::from_secs(60);

/// Commands Redis runs for one `group_send` to members in two processes.
const COMMANDS_PER_GROUP_SEND: f64 = 5.0;

struct Chat {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Chat {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_chat(redis: Option<&str>) -> BoxResult<Chat> {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let binary = process::target_dir()?.join("examples").join("chat");
    let mut command = if process::pinning() {
        let mut c = Command::new("taskset");
        c.args(["-c", process::SERVER_CPU]).arg(&binary);
        c
    } else {
        Command::new(&binary)
    };
    command.args(["--bind", &addr.to_string()]);
    if let Some(url) = redis {
        command.args(["--redis", url]);
    }
    let child = command
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        if Instant::now() > deadline {
            return Err("the chat example did not start".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(Chat { child, addr })
}

struct FanOut {
    delivered_per_second: f64,
    group_sends_per_second: f64,
    p50: Duration,
    p99: Duration,
    delivered: usize,
    expected: usize,
}

async fn fan_out(servers: &[SocketAddr], members: usize, messages: usize) -> BoxResult<FanOut> {
    let room = format!("bench-{members}");
    let epoch = Instant::now();
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(members * messages)));
    let mut readers = Vec::with_capacity(members);
    for i in 0..members {
        let url = format!("ws://{}/ws/{room}", servers[i % servers.len()]);
        let (mut socket, _) = tokio_tungstenite::connect_async(url).await?;
        let latencies = latencies.clone();
        readers.push(tokio::spawn(async move {
            let mut mine = Vec::with_capacity(messages);
            while mine.len() < messages {
                let next = tokio::time::timeout(FAN_OUT_PATIENCE, socket.next()).await;
                let Ok(Some(Ok(WireMessage::Text(text)))) = next else {
                    break;
                };
                if let Some(sent) = text.split(' ').nth(1).and_then(|t| t.parse::<u64>().ok()) {
                    let now = epoch.elapsed().as_nanos() as u64;
                    mine.push(Duration::from_nanos(now.saturating_sub(sent)));
                }
            }
            latencies.lock().await.extend(mine);
        }));
    }
    let (mut sender, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/ws/{room}", servers[0])).await?;
    let started = Instant::now();
    for n in 0..messages {
        let sent = epoch.elapsed().as_nanos() as u64;
        sender
            .send(WireMessage::text(format!("{n} {sent}")))
            .await?;
        // A member's channel holds 100 messages: pace the sender so that a fair reader keeps
        // up, as a chat's senders would, rather than measure the capacity limit.
        if n % 50 == 49 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    for reader in readers {
        reader.await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut latencies = std::mem::take(&mut *latencies.lock().await);
    latencies.sort();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Ok(FanOut {
        delivered_per_second: latencies.len() as f64 / elapsed,
        group_sends_per_second: messages as f64 / elapsed,
        p50: at(0.50),
        p99: at(0.99),
        delivered: latencies.len(),
        expected: members * messages,
    })
}

/// Redis's own rate for the sorted-set commands a `group_send` is made of.
fn redis_benchmark(port: u16) -> BoxResult<f64> {
    // `-r` makes redis-benchmark replace `__rand_int__` with random numbers (without it the
    // score is the literal text, which ZADD refuses); `--csv` gives a line to parse.
    let output = Command::new("redis-benchmark")
        .args([
            "-p",
            &port.to_string(),
            "-n",
            "200000",
            "-c",
            "50",
            "-r",
            "1000000",
        ])
        .args([
            "--csv",
            "zadd",
            "bench:zset",
            "__rand_int__",
            "member:__rand_int__",
        ])
        .output()?;
    let text = String::from_utf8_lossy(&output.stdout);
    // "test","rps",...\n"zadd bench:zset ...","123456.79",...
    let rate = text
        .lines()
        .find(|line| line.starts_with("\"zadd"))
        .and_then(|line| line.split("\",\"").nth(1))
        .and_then(|rps| rps.parse::<f64>().ok())
        .filter(|rps| *rps > 0.0)
        .ok_or_else(|| format!("cannot read redis-benchmark's output: {text}"))?;
    Ok(rate)
}

pub(crate) async fn suite(_settings: &Settings) -> BoxResult<()> {
    let redis = redis_server::RedisServer::start();
    let url = redis.url();
    let port: u16 = url
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or("redis port")?;
    let redis_rate = redis_benchmark(port)?;
    println!(
        "channels: redis-benchmark ZADD {redis_rate:.0} commands/s, so at most {:.0} group_sends/s over two processes",
        redis_rate / COMMANDS_PER_GROUP_SEND
    );
    for (label, shared) in [
        ("redis, 2 processes", true),
        ("in-memory, 1 process", false),
    ] {
        let chats = if shared {
            vec![start_chat(Some(&url)).await?, start_chat(Some(&url)).await?]
        } else {
            vec![start_chat(None).await?]
        };
        let addrs: Vec<SocketAddr> = chats.iter().map(|c| c.addr).collect();
        for (members, messages) in FAN_OUTS {
            let result = fan_out(&addrs, members, messages).await?;
            let limit = if shared {
                format!(
                    ", {:.2}x the Redis limit",
                    result.group_sends_per_second / (redis_rate / COMMANDS_PER_GROUP_SEND)
                )
            } else {
                String::new()
            };
            println!(
                "channels: {label}, {members:>4} members: {:>9.0} deliveries/s, {:>7.0} group_sends/s{limit}, p50 {:>8.2?}, p99 {:>8.2?}, delivered {}/{}",
                result.delivered_per_second,
                result.group_sends_per_second,
                result.p50,
                result.p99,
                result.delivered,
                result.expected,
            );
        }
        drop(chats);
    }
    Ok(())
}
