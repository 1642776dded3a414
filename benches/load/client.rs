//! The load clients: wrk for HTTP request rates, and clients of this harness for streaming and
//! WebSocket, the same for every server.

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Empty, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::Message;

use crate::BoxResult;

/// Requests per second from `wrk -t2 -c<connections> -d<seconds>s` (keep-alive).
pub(crate) async fn wrk(
    addr: SocketAddr,
    path: &str,
    connections: usize,
    seconds: u64,
) -> BoxResult<f64> {
    let url = format!("http://{addr}{path}");
    let output = tokio::task::spawn_blocking(move || {
        let mut command = if crate::process::pinning() {
            let mut c = Command::new("taskset");
            c.args(["-c", crate::process::CLIENT_CPU, "wrk"]);
            c
        } else {
            Command::new("wrk")
        };
        command
            .args([
                "-t2",
                &format!("-c{connections}"),
                &format!("-d{seconds}s"),
                &url,
            ])
            .output()
    })
    .await?
    .map_err(|e| format!("running wrk failed ({e}): install it with `apt-get install wrk`"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    if text.contains("Non-2xx") || text.contains("Socket errors") {
        eprintln!("wrk reported errors:\n{text}");
    }
    text.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| format!("no Requests/sec in wrk output:\n{text}").into())
}

async fn connect(
    addr: SocketAddr,
) -> BoxResult<
    hyper::client::conn::http1::SendRequest<
        http_body_util::combinators::BoxBody<Bytes, std::io::Error>,
    >,
> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

/// Downloads `/bytes/<n>`; returns MiB/s.
pub(crate) async fn download(addr: SocketAddr, bytes: u64) -> BoxResult<f64> {
    let mut sender = connect(addr).await?;
    let request = hyper::Request::get(format!("/bytes/{bytes}"))
        .header("host", addr.to_string())
        .body(Empty::new().map_err(|e| match e {}).boxed())?;
    let started = Instant::now();
    let mut body = sender.send_request(request).await?.into_body();
    let mut total = 0u64;
    while let Some(frame) = body.frame().await {
        total += frame?.data_ref().map_or(0, |d| d.len() as u64);
    }
    if total != bytes {
        return Err(format!("downloaded {total} of {bytes} bytes").into());
    }
    Ok(total as f64 / (1 << 20) as f64 / started.elapsed().as_secs_f64())
}

/// Uploads `bytes` in 64 KiB chunks to `path`; returns MiB/s.
pub(crate) async fn upload(addr: SocketAddr, path: &str, bytes: u64) -> BoxResult<f64> {
    const CHUNK: u64 = 64 * 1024;
    let mut sender = connect(addr).await?;
    let chunk = Bytes::from(vec![b'u'; CHUNK as usize]);
    let stream = futures_util::stream::unfold(bytes, move |left| {
        let chunk = chunk.clone();
        async move {
            if left == 0 {
                return None;
            }
            let take = left.min(CHUNK);
            Some((
                Ok::<_, std::io::Error>(Frame::data(chunk.slice(..take as usize))),
                left - take,
            ))
        }
    });
    let request = hyper::Request::post(path)
        .header("host", addr.to_string())
        .header("content-length", bytes.to_string())
        .body(BodyExt::boxed(StreamBody::new(stream)))?;
    let started = Instant::now();
    let response = sender.send_request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    let elapsed = started.elapsed();
    let text = String::from_utf8_lossy(&body);
    if !status.is_success() || !text.contains(&bytes.to_string()) {
        return Err(format!("upload answered {status}: {text}").into());
    }
    Ok(bytes as f64 / (1 << 20) as f64 / elapsed.as_secs_f64())
}

/// `connections` clients each sending a 32-byte text message and awaiting its echo, for
/// `seconds`; returns messages echoed per second.
pub(crate) async fn ws_echo(url: String, connections: usize, seconds: u64) -> BoxResult<f64> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::with_capacity(connections);
    for _ in 0..connections {
        let (ws, _) = tokio_tungstenite::connect_async(&url).await?;
        tasks.push(tokio::spawn(async move {
            let (mut tx, mut rx) = ws.split();
            let payload = "x".repeat(32);
            let mut count = 0u64;
            while Instant::now() < deadline {
                if tx.send(Message::text(payload.clone())).await.is_err() {
                    break;
                }
                match rx.next().await {
                    Some(Ok(Message::Text(_))) => count += 1,
                    _ => break,
                }
            }
            let _ = tx.send(Message::Close(None)).await;
            count
        }));
    }
    let started = Instant::now();
    let mut total = 0;
    for task in tasks {
        total += task.await?;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

/// Opens `count` WebSockets and keeps them open (idle) until the returned handles drop.
pub(crate) async fn ws_open_idle(
    url: &str,
    count: usize,
) -> BoxResult<
    Vec<
        tokio_tungstenite::WebSocketStream<
            tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
        >,
    >,
> {
    let mut sockets = Vec::with_capacity(count);
    let mut pending = futures_util::stream::iter(0..count)
        .map(|_| tokio_tungstenite::connect_async(url.to_owned()))
        .buffer_unordered(128);
    while let Some(result) = pending.next().await {
        match result {
            Ok((ws, _)) => sockets.push(ws),
            Err(e) => {
                eprintln!("opened {} sockets, then: {e}", sockets.len());
                break;
            }
        }
    }
    Ok(sockets)
}

/// `requests` sequential `GET path` on one keep-alive HTTP/1.1 connection, each answered
/// `200`, and the connection closed: the fixed load of the instruction count.
pub(crate) async fn keep_alive_gets(addr: SocketAddr, path: &str, requests: u64) -> BoxResult<()> {
    let mut sender = connect(addr).await?;
    for _ in 0..requests {
        sender.ready().await?;
        let request = hyper::Request::get(path)
            .header("host", addr.to_string())
            .body(Empty::new().map_err(|e| match e {}).boxed())?;
        let response = sender.send_request(request).await?;
        let status = response.status();
        response.into_body().collect().await?;
        if status != hyper::StatusCode::OK {
            return Err(format!("GET {path} answered {status}").into());
        }
    }
    Ok(())
}

/// Requests per second from `h2load -c<connections> -m<streams> -D<seconds>` over h2c
/// (HTTP/2 with prior knowledge), as Debian's `nghttp2-client` package ships it.
pub(crate) async fn h2load(
    addr: SocketAddr,
    path: &str,
    connections: usize,
    streams: usize,
    seconds: u64,
) -> BoxResult<f64> {
    let text = run_h2load(addr, path, connections, streams, format!("-D{seconds}")).await?;
    // "finished in 10.00s, 123456.70 req/s, 4.20MB/s"
    text.lines()
        .find_map(|l| l.strip_prefix("finished in "))
        .and_then(|l| l.split(", ").nth(1))
        .and_then(|v| v.strip_suffix(" req/s"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| format!("no req/s in h2load output:\n{text}").into())
}

/// `requests` h2c `GET path` on one connection, `streams` at a time (`h2load -n -c1 -m`),
/// every one answered with a 2xx: the fixed load of the h2c instruction count.
pub(crate) async fn h2_gets(
    addr: SocketAddr,
    path: &str,
    requests: u64,
    streams: usize,
) -> BoxResult<()> {
    let text = run_h2load(addr, path, 1, streams, format!("-n{requests}")).await?;
    let done = format!("{requests} succeeded, 0 failed, 0 errored");
    let all_2xx = format!("{requests} 2xx");
    if !text
        .lines()
        .any(|l| l.starts_with("requests:") && l.contains(&done))
        || !text
            .lines()
            .any(|l| l.starts_with("status codes:") && l.contains(&all_2xx))
    {
        return Err(format!("h2load did not get {requests} answers of 2xx:\n{text}").into());
    }
    Ok(())
}

/// h2load's output for `h2load -t1 -c<connections> -m<streams> <extent>` against
/// `http://addr/path`, pinned to the client CPU when pinning is on; errors it reports are
/// printed to standard error.
async fn run_h2load(
    addr: SocketAddr,
    path: &str,
    connections: usize,
    streams: usize,
    extent: String,
) -> BoxResult<String> {
    let url = format!("http://{addr}{path}");
    let output = tokio::task::spawn_blocking(move || {
        let mut command = if crate::process::pinning() {
            let mut c = Command::new("taskset");
            c.args(["-c", crate::process::CLIENT_CPU, "h2load"]);
            c
        } else {
            Command::new("h2load")
        };
        command
            .args([
                "-t1",
                &format!("-c{connections}"),
                &format!("-m{streams}"),
                &extent,
                &url,
            ])
            .output()
    })
    .await?
    .map_err(|e| {
        format!("running h2load failed ({e}): install it with `apt-get install nghttp2-client`")
    })?;
    let text = String::from_utf8_lossy(&output.stdout);
    // "requests: 100 total, 100 started, 100 done, 100 succeeded, 0 failed, 0 errored, ..."
    let failed = text
        .lines()
        .find(|l| l.starts_with("requests:"))
        .is_some_and(|l| !l.contains(" 0 failed, 0 errored"));
    let non_2xx = text
        .lines()
        .find(|l| l.starts_with("status codes:"))
        .is_some_and(|l| !l.contains(" 0 3xx, 0 4xx, 0 5xx"));
    if failed || non_2xx {
        eprintln!("h2load reported errors:\n{text}");
    }
    Ok(text.into_owned())
}
