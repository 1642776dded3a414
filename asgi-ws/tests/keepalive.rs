//! Ping/pong keepalive: pings at the interval, 1011 when the client does not answer.

mod common;

use std::time::{Duration, Instant};

use asgi_ws::{CloseInitiator, WebSocketConfig};
use common::*;
use futures_util::StreamExt;
use tokio::sync::mpsc;

fn keepalive(interval_ms: u64, timeout_ms: u64) -> WebSocketConfig {
    let mut config = WebSocketConfig::default();
    config.ping_interval = Some(Duration::from_millis(interval_ms));
    config.pong_timeout = Some(Duration::from_millis(timeout_ms));
    config
}

#[tokio::test]
async fn ping_timeout_closes_1011_within_a_bound() {
    let (tx, mut reports) = mpsc::channel(64);
    let started = Instant::now();
    // The raw client reads nothing and answers nothing.
    let (mut client, server) = open_raw(reporting_echo(tx), keepalive(100, 100)).await;
    let ((code, reason), _) = one_disconnect(&mut reports).await;
    assert_eq!((code, reason.as_str()), (1011, "keepalive ping timeout"));
    let closed = within(server.run).await.unwrap();
    assert_eq!(
        (closed.code, closed.initiator),
        (1011, CloseInitiator::Server)
    );
    // Interval plus timeout is 200 ms; allow for a slow machine, but not for "never".
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // On the wire: a ping, then the close frame.
    let ping = read_frame(&mut client).await.unwrap();
    assert_eq!(ping.opcode, PING);
    assert_eq!(read_close(&mut client).await.0, 1011);
}

#[tokio::test]
async fn answered_pings_keep_the_connection_open() {
    let (tx, mut reports) = mpsc::channel(64);
    // Unanswered, the first ping would close it after 350 ms; each pong has 300 ms to come,
    // room for a busy machine.
    let (client, server) = open(reporting_echo(tx), keepalive(50, 300)).await;
    // tungstenite answers pings while it reads.
    let (_write, mut read) = client.split();
    let reader = tokio::spawn(async move { while let Some(Ok(_)) = read.next().await {} });
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(!server.run.is_finished(), "closed although pongs came");
    assert!(reports.try_recv().is_err(), "the app saw an event");
    reader.abort();
}

#[tokio::test]
async fn pings_go_out_at_the_interval_with_no_timeout() {
    let (tx, _reports) = mpsc::channel(64);
    let mut config = keepalive(50, 0);
    config.pong_timeout = None;
    let (mut client, server) = open_raw(reporting_echo(tx), config).await;
    // Three pings, none answered, and the connection stays open.
    for _ in 0..3 {
        assert_eq!(read_frame(&mut client).await.unwrap().opcode, PING);
    }
    assert!(!server.run.is_finished());
}

#[tokio::test]
async fn no_pings_when_disabled() {
    let (tx, _reports) = mpsc::channel(64);
    let (mut client, _server) = open_raw(reporting_echo(tx), quiet()).await;
    let read = tokio::time::timeout(Duration::from_millis(300), read_frame(&mut client)).await;
    assert!(read.is_err(), "a frame came: {read:?}");
}
