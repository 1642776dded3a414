//! The channel layer semantics on a real Redis, plus what only a networked layer has: two
//! processes sharing groups, sharding over several servers, surviving a Redis restart, and a
//! slow consumer that hurts nobody else.
//!
//! Each test starts its own `redis-server` on a loopback port (no persistence) and stops it.
//! They are `#[ignore]`d in a plain `cargo test`, because they need Debian's `redis-server`;
//! `.ci/run` installs it and runs them with `cargo test -p asgi-channels --features redis
//! --test redis_layer -- --ignored`.

#![cfg(feature = "redis")]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use asgi_channels::{ChannelLayer, LayerConfig, RedisChannelLayer};
use serde_json::json;
use support::redis_server::RedisServer;

async fn redis(config: LayerConfig) -> (Arc<dyn ChannelLayer>, RedisServer) {
    let server = RedisServer::start();
    let layer = RedisChannelLayer::builder()
        .host(server.url())
        .config(config)
        .connect()
        .await
        .unwrap();
    (Arc::new(layer), server)
}

semantics_tests!(ignore = "needs redis-server; .ci/run runs it", redis);

async fn layer_on(urls: &[String], config: LayerConfig) -> RedisChannelLayer {
    let mut builder = RedisChannelLayer::builder().config(config);
    for url in urls {
        builder = builder.host(url.clone());
    }
    builder.connect().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server; .ci/run runs it"]
async fn two_layers_share_groups_like_two_processes() {
    let server = RedisServer::start();
    let one = layer_on(&[server.url()], LayerConfig::default()).await;
    let two = layer_on(&[server.url()], LayerConfig::default()).await;
    let on_one = one.new_channel().await.unwrap();
    let on_two = two.new_channel().await.unwrap();
    one.group_add("room", &on_one).await.unwrap();
    two.group_add("room", &on_two).await.unwrap();
    for n in 0..20 {
        one.group_send("room", json!({"n": n})).await.unwrap();
    }
    for n in 0..20 {
        assert_eq!(one.receive(&on_one).await.unwrap()["n"], n);
        assert_eq!(two.receive(&on_two).await.unwrap()["n"], n);
    }
    // A process cannot receive another's local channel.
    let err = one.receive(&on_two).await.unwrap_err();
    assert!(
        err.to_string().contains("not open in this process"),
        "{err}"
    );
    // But it can send to it.
    one.send(&on_two, json!({"direct": true})).await.unwrap();
    assert_eq!(two.receive(&on_two).await.unwrap()["direct"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server; .ci/run runs it"]
async fn channels_and_groups_shard_over_several_servers() {
    let servers = [RedisServer::start(), RedisServer::start()];
    let urls: Vec<String> = servers.iter().map(RedisServer::url).collect();
    let one = layer_on(&urls, LayerConfig::default()).await;
    let two = layer_on(&urls, LayerConfig::default()).await;
    let mut members = Vec::new();
    for g in 0..32 {
        let group = format!("group-{g}");
        let a = one.new_channel().await.unwrap();
        let b = two.new_channel().await.unwrap();
        one.group_add(&group, &a).await.unwrap();
        two.group_add(&group, &b).await.unwrap();
        members.push((group, a, b));
    }
    for (group, _, _) in &members {
        two.group_send(group, json!({"group": group}))
            .await
            .unwrap();
    }
    for (group, a, b) in &members {
        assert_eq!(one.receive(a).await.unwrap()["group"], group.as_str());
        assert_eq!(two.receive(b).await.unwrap()["group"], group.as_str());
    }
    // Both servers hold some of the groups.
    for url in &urls {
        let client = redis::Client::open(url.as_str()).unwrap();
        let mut connection = client.get_multiplexed_async_connection().await.unwrap();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("asgi:group:*")
            .query_async(&mut connection)
            .await
            .unwrap();
        assert!(!keys.is_empty(), "{url} holds no group");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server; .ci/run runs it"]
async fn redis_restart_fails_sends_then_receive_resumes() {
    let mut server = RedisServer::start();
    let layer = layer_on(&[server.url()], LayerConfig::default()).await;
    let me = layer.new_channel().await.unwrap();
    layer.group_add("room", &me).await.unwrap();
    layer.group_send("room", json!({"n": 1})).await.unwrap();
    assert_eq!(layer.receive(&me).await.unwrap()["n"], 1);

    server.stop();
    // A receive pending across the outage.
    let waiting = {
        let layer = layer.clone();
        let me = me.clone();
        tokio::spawn(async move { layer.receive(&me).await })
    };
    let err = layer.send(&me, json!({"n": 2})).await.unwrap_err();
    assert!(err.is_backend(), "{err}");
    assert!(
        layer
            .group_send("room", json!({"n": 2}))
            .await
            .unwrap_err()
            .is_backend()
    );

    tokio::time::sleep(Duration::from_millis(500)).await;
    server.restart();
    let back = Instant::now();
    // Redis restarted empty: the group must be joined again, as after any data loss.
    let rejoined = loop {
        match layer.group_add("room", &me).await {
            Ok(()) => break Instant::now(),
            Err(err) => {
                assert!(
                    back.elapsed() < Duration::from_secs(10),
                    "no reconnect: {err}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    layer.group_send("room", json!({"n": 3})).await.unwrap();
    let heard = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("receive resumed after the restart")
        .unwrap()
        .unwrap();
    assert_eq!(heard["n"], 3);
    assert!(rejoined.duration_since(back) < Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server; .ci/run runs it"]
async fn slow_consumer_fills_its_capacity_and_others_get_everything() {
    let server = RedisServer::start();
    let config = LayerConfig::default().capacity(10);
    let layer = layer_on(&[server.url()], config.clone()).await;
    let other_process = layer_on(&[server.url()], config).await;
    let slow = layer.new_channel().await.unwrap();
    let fast = layer.new_channel().await.unwrap();
    let elsewhere = other_process.new_channel().await.unwrap();
    for member in [&slow, &fast] {
        layer.group_add("busy", member).await.unwrap();
    }
    other_process.group_add("busy", &elsewhere).await.unwrap();
    // Each reader reports how many messages it has had, so that the sender can keep pace
    // with them: a burst never exceeds half the capacity, and the next one goes out only
    // when both readers have taken the last. However the machine schedules the readers,
    // their mailboxes never fill, while the slow member's fills at once.
    let readers = [
        (layer.clone(), fast.clone()),
        (other_process.clone(), elsewhere.clone()),
    ]
    .map(|(layer, channel)| {
        let (count, progress) = tokio::sync::watch::channel(0usize);
        let task = tokio::spawn(async move {
            let mut got = Vec::new();
            while got.len() < 200 {
                got.push(
                    layer.receive(&channel).await.unwrap()["n"]
                        .as_i64()
                        .unwrap(),
                );
                count.send_replace(got.len());
            }
            got
        });
        (task, progress)
    });
    const BURST: usize = 5;
    for burst in 0..200 / BURST {
        for n in burst * BURST..(burst + 1) * BURST {
            layer.group_send("busy", json!({"n": n})).await.unwrap();
        }
        for (_, progress) in &readers {
            let mut progress = progress.clone();
            tokio::time::timeout(
                Duration::from_secs(20),
                progress.wait_for(|&had| had >= (burst + 1) * BURST),
            )
            .await
            .expect("a reader that keeps up gets every message of the burst")
            .unwrap();
        }
    }
    let expected: Vec<i64> = (0..200).collect();
    for (reader, _) in readers {
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(20), reader)
                .await
                .unwrap()
                .unwrap(),
            expected
        );
    }
    // The slow member holds its capacity, the first ten, and nothing more.
    let mut kept = Vec::new();
    while let Ok(Ok(message)) =
        tokio::time::timeout(Duration::from_millis(300), layer.receive(&slow)).await
    {
        kept.push(message["n"].as_i64().unwrap());
    }
    assert_eq!(kept, (0..10).collect::<Vec<_>>());
    assert_eq!(layer.stats().local_dropped, 190);
}
