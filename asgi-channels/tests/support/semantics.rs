//! The channel layer semantics every layer must have, as one suite run against each layer.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use asgi_channels::{ChannelLayer, LayerConfig};
use serde_json::json;

pub async fn send_then_receive_returns_the_message(layer: Arc<dyn ChannelLayer>) {
    layer
        .send("worker", json!({"type": "job", "n": 1}))
        .await
        .unwrap();
    assert_eq!(
        layer.receive("worker").await.unwrap(),
        json!({"type": "job", "n": 1})
    );
    let me = layer.new_channel().await.unwrap();
    layer.send(&me, json!({"type": "direct"})).await.unwrap();
    assert_eq!(layer.receive(&me).await.unwrap()["type"], "direct");
}

pub async fn messages_arrive_in_fifo_order(layer: Arc<dyn ChannelLayer>) {
    let me = layer.new_channel().await.unwrap();
    for n in 0..50 {
        layer.send(&me, json!({"n": n})).await.unwrap();
        layer.send("fifo", json!({"n": n})).await.unwrap();
    }
    for n in 0..50 {
        assert_eq!(layer.receive(&me).await.unwrap()["n"], n);
        assert_eq!(layer.receive("fifo").await.unwrap()["n"], n);
    }
}

/// Capacity 3: the fourth send to a general channel is refused with `ChannelFull`.
pub async fn send_to_a_full_channel_returns_channel_full(layer: Arc<dyn ChannelLayer>) {
    for n in 0..3 {
        layer.send("small", json!({"n": n})).await.unwrap();
    }
    let err = layer.send("small", json!({"n": 3})).await.unwrap_err();
    assert!(err.is_channel_full(), "{err}");
    assert!(err.to_string().contains("small"), "{err}");
    assert_eq!(layer.receive("small").await.unwrap()["n"], 0);
    layer.send("small", json!({"n": 3})).await.unwrap();
}

/// Capacity 3 for `full*`: a group with a full member and a free one; `group_send` succeeds,
/// reaches the free one, and counts the skipped member.
pub async fn group_send_skips_full_members_and_counts_them(layer: Arc<dyn ChannelLayer>) {
    for n in 0..3 {
        layer.send("full-member", json!({"n": n})).await.unwrap();
    }
    let free = layer.new_channel().await.unwrap();
    layer.group_add("room", "full-member").await.unwrap();
    layer.group_add("room", &free).await.unwrap();
    let before = layer.stats().group_send_dropped;
    layer
        .group_send("room", json!({"text": "hi"}))
        .await
        .unwrap();
    assert_eq!(layer.receive(&free).await.unwrap()["text"], "hi");
    assert_eq!(layer.stats().group_send_dropped, before + 1);
    for n in 0..3 {
        assert_eq!(layer.receive("full-member").await.unwrap()["n"], n);
    }
}

/// Expiry 1 s: a message left for 2.2 s is gone; one sent after it arrives.
pub async fn expired_messages_are_dropped(layer: Arc<dyn ChannelLayer>) {
    layer.send("stale", json!({"old": true})).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2200)).await;
    layer.send("stale", json!({"old": false})).await.unwrap();
    assert_eq!(layer.receive("stale").await.unwrap(), json!({"old": false}));
}

/// Group expiry 1 s: a membership not renewed for 1.4 s receives nothing; one renewed
/// 0.7 s before the send does.
pub async fn group_membership_lapses_unless_renewed(layer: Arc<dyn ChannelLayer>) {
    let lapsed = layer.new_channel().await.unwrap();
    let renewed = layer.new_channel().await.unwrap();
    layer.group_add("lapsing", &lapsed).await.unwrap();
    layer.group_add("lapsing", &renewed).await.unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    layer.group_add("lapsing", &renewed).await.unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    layer.group_send("lapsing", json!({"n": 1})).await.unwrap();
    assert_eq!(layer.receive(&renewed).await.unwrap()["n"], 1);
    let nothing = tokio::time::timeout(Duration::from_millis(300), layer.receive(&lapsed)).await;
    assert!(nothing.is_err(), "a lapsed member received {nothing:?}");
}

/// `receive` raced against short timeouts, hundreds of times, while messages arrive: every
/// message is received once, in order.
pub async fn cancelled_receive_loses_no_message(layer: Arc<dyn ChannelLayer>) {
    let me = layer.new_channel().await.unwrap();
    let sender = {
        let layer = layer.clone();
        let me = me.clone();
        tokio::spawn(async move {
            for n in 0..200 {
                layer.send(&me, json!({"n": n})).await.unwrap();
                layer.send("cancel-general", json!({"n": n})).await.unwrap();
                if n % 10 == 0 {
                    tokio::time::sleep(Duration::from_millis(3)).await;
                }
            }
        })
    };
    let (mut local, mut general) = (Vec::new(), Vec::new());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while local.len() < 200 || general.len() < 200 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "lost messages: {} {}",
            local.len(),
            general.len()
        );
        let wait = Duration::from_micros(200 + (local.len() as u64 * 37) % 900);
        tokio::select! {
            m = layer.receive(&me), if local.len() < 200 => local.push(m.unwrap()["n"].as_i64().unwrap()),
            m = layer.receive("cancel-general"), if general.len() < 200 => general.push(m.unwrap()["n"].as_i64().unwrap()),
            () = tokio::time::sleep(wait) => {}
        }
    }
    sender.await.unwrap();
    let expected: Vec<i64> = (0..200).collect();
    assert_eq!(local, expected);
    assert_eq!(general, expected);
}

pub async fn group_discard_stops_delivery(layer: Arc<dyn ChannelLayer>) {
    let stays = layer.new_channel().await.unwrap();
    let goes = layer.new_channel().await.unwrap();
    layer.group_add("discard", &stays).await.unwrap();
    layer.group_add("discard", &goes).await.unwrap();
    layer.group_discard("discard", &goes).await.unwrap();
    layer
        .group_discard("discard", "never-a-member")
        .await
        .unwrap();
    layer.group_send("discard", json!({"n": 1})).await.unwrap();
    assert_eq!(layer.receive(&stays).await.unwrap()["n"], 1);
    let nothing = tokio::time::timeout(Duration::from_millis(300), layer.receive(&goes)).await;
    assert!(nothing.is_err(), "a discarded member received {nothing:?}");
}

pub async fn invalid_names_are_refused_with_the_rule(layer: Arc<dyn ChannelLayer>) {
    let err = layer.send("has space", json!({})).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("invalid channel name \"has space\""),
        "{err}"
    );
    let err = layer.group_add("bad/group", "ok").await.unwrap_err();
    assert!(err.to_string().contains("invalid group name"), "{err}");
    let err = layer
        .group_send(&"g".repeat(101), json!({}))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("longer than 100"), "{err}");
    let err = layer.receive("specific.nobody!here").await.unwrap_err();
    assert!(
        err.to_string().contains("not open in this process"),
        "{err}"
    );
}

pub async fn flush_empties_channels_and_groups(layer: Arc<dyn ChannelLayer>) {
    let me = layer.new_channel().await.unwrap();
    layer.send("flushed", json!({"n": 1})).await.unwrap();
    layer.group_add("flushed-group", &me).await.unwrap();
    layer.flush().await.unwrap();
    layer
        .group_send("flushed-group", json!({"n": 2}))
        .await
        .unwrap();
    layer.send("flushed", json!({"n": 3})).await.unwrap();
    assert_eq!(layer.receive("flushed").await.unwrap()["n"], 3);
    let nothing = tokio::time::timeout(Duration::from_millis(300), layer.receive(&me)).await;
    assert!(nothing.is_err(), "a flushed member received {nothing:?}");
}

pub async fn new_channels_are_distinct_and_valid(layer: Arc<dyn ChannelLayer>) {
    let a = layer.new_channel().await.unwrap();
    let b = layer.new_channel().await.unwrap();
    assert_ne!(a, b);
    assert!(a.starts_with("specific.") && a.contains('!'), "{a}");
    asgi_channels::validate_channel_name(&a).unwrap();
}

/// A closed channel's receiver is told, and messages to it are discarded.
pub async fn closed_channel_refuses_receive(layer: Arc<dyn ChannelLayer>) {
    let me = layer.new_channel().await.unwrap();
    layer.close_channel(&me).await;
    let _ = layer.send(&me, json!({"n": 1})).await;
    let err = layer.receive(&me).await.unwrap_err();
    assert!(
        err.to_string().contains("not open in this process"),
        "{err}"
    );
}

/// The configs the suite's tests need: capacity 3 for the `small` and `full-member` channels,
/// expiry and group expiry 1 s.
pub fn suite_config() -> LayerConfig {
    LayerConfig::default()
        .channel_capacity("small", 3)
        .channel_capacity("full-member", 3)
        .expiry(Duration::from_secs(1))
        .group_expiry(Duration::from_secs(1))
}

/// The suite's config but with the default expiries, for the tests that do not wait for them.
pub fn long_lived_config() -> LayerConfig {
    LayerConfig::default()
        .channel_capacity("small", 3)
        .channel_capacity("full-member", 3)
}

/// Runs one named suite test against a layer made by `make`.
#[macro_export]
macro_rules! semantics_tests {
    ($attr:meta, $make:expr) => {
        $crate::semantics_tests!(@one $attr, $make, long_lived_config, send_then_receive_returns_the_message);
        $crate::semantics_tests!(@one $attr, $make, long_lived_config, messages_arrive_in_fifo_order);
        $crate::semantics_tests!(@one $attr, $make, long_lived_config, send_to_a_full_channel_returns_channel_full);
        $crate::semantics_tests!(@one $attr, $make, long_lived_config, group_send_skips_full_members_and_counts_them);
        $crate::semantics_tests!(@one $attr, $make, suite_config, expired_messages_are_dropped);
        $crate::semantics_tests!(@one $attr, $make, suite_config, group_membership_lapses_unless_renewed);
        $crate::semantics_tests!(@one $attr, $make, long_lived_config, cancelled_receive_loses_no_message);
        $crate::semantics_tests!(@one $attr, $make, long_lived_config, group_discard_stops_delivery);
        $crate::semantics_tests!(@one $attr, $make, long_lived_config, invalid_names_are_refused_with_the_rule);
        $crate::semantics_tests!(@one $attr, $make, long_lived_config, flush_empties_channels_and_groups);
        $crate::semantics_tests!(@one $attr, $make, long_lived_config, new_channels_are_distinct_and_valid);
        $crate::semantics_tests!(@one $attr, $make, long_lived_config, closed_channel_refuses_receive);
    };
    (@one $attr:meta, $make:expr, $config:ident, $name:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        #[$attr]
        async fn $name() {
            let (layer, _guard) = ($make)(support::semantics::$config()).await;
            support::semantics::$name(layer).await;
        }
    };
}
