//! Micro-benchmarks of the interface's hot paths:
//!
//! - `event_round_trip`: one `http.response.body` through a [`Sender`] into a bounded channel,
//!   and one `http.request` from a bounded channel through a [`Receiver`]: what a server pays
//!   per event on top of its own work;
//! - `layers/bare` vs `layers/10_pass_through`: one call of a trivial app, without and with
//!   ten pass-through middleware layers; the difference is the cost of the onion;
//! - `middleware/*`: one call of a hello app (`Response::text`) bare and behind each of the
//!   middleware of `asgi::server::middleware`, with a request that makes each one work (an
//!   allowed `Origin`, a trusted `Host`, `Accept-Encoding: gzip`, a session cookie); the
//!   difference to `middleware/bare` is that middleware's cost per request.
//!
//! Run with `cargo bench --bench core`. The middleware stacks are those of
//! `common/middleware_stacks.rs`, which the load harness's instruction counts share.

#[path = "common/middleware_stacks.rs"]
mod middleware_stacks;

use std::hint::black_box;
use std::time::Instant;

use asgi::core::host::channel::{ChannelSink, ChannelSource};
use asgi::core::host::testing;
use asgi::core::http::{HeaderMap, Method, StatusCode};
use asgi::core::{
    App, AppExt, Error, HttpScope, Layer, ReceiveEvent, Receiver, Scope, SendEvent, Sender,
    async_trait,
};
use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use tokio::sync::mpsc;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime")
}

fn event_round_trip(c: &mut Criterion) {
    let rt = runtime();
    let scope = Scope::from(HttpScope::new(Method::GET, "/"));
    let (app_tx, mut server_rx) = mpsc::channel::<SendEvent>(16);
    let (server_tx, app_rx) = mpsc::channel::<ReceiveEvent>(16);
    let mut send = Sender::new(ChannelSink::new(&scope, app_tx));
    let mut receive = Receiver::new(ChannelSource::new(&scope, app_rx));
    let chunk = Bytes::from_static(b"0123456789abcdef");
    rt.block_on(async {
        send.send(SendEvent::response_start(StatusCode::OK, HeaderMap::new()))
            .await
            .expect("start");
        server_rx.recv().await;
    });
    c.bench_function("event_round_trip", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let started = Instant::now();
                for _ in 0..iters {
                    send.send(SendEvent::response_body(chunk.clone(), true))
                        .await
                        .expect("send");
                    black_box(server_rx.recv().await);
                    server_tx
                        .send(ReceiveEvent::request(chunk.clone(), true))
                        .await
                        .expect("feed");
                    black_box(receive.recv().await);
                }
                started.elapsed()
            })
        })
    });
}

async fn trivial(_: Scope, _: Receiver, mut send: Sender) -> Result<(), Error> {
    send.send(SendEvent::response_start(StatusCode::OK, HeaderMap::new()))
        .await?;
    send.send(SendEvent::response_body(Bytes::from_static(b"ok"), false))
        .await?;
    Ok(())
}

struct PassThrough<A> {
    inner: A,
}

#[async_trait]
impl<A: App> App for PassThrough<A> {
    async fn call(&self, scope: Scope, receive: Receiver, send: Sender) -> Result<(), Error> {
        self.inner.call(scope, receive, send).await
    }
}

struct PassThroughLayer;

impl<A: App> Layer<A> for PassThroughLayer {
    type App = PassThrough<A>;
    fn layer(&self, inner: A) -> PassThrough<A> {
        PassThrough { inner }
    }
}

fn layers(c: &mut Criterion) {
    let rt = runtime();
    let scope = Scope::from(HttpScope::new(Method::GET, "/"));
    let mut group = c.benchmark_group("layers");
    group.bench_function("bare", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(testing::call(&trivial, scope.clone(), []).await) })
    });
    let stacked = trivial
        .with(PassThroughLayer)
        .with(PassThroughLayer)
        .with(PassThroughLayer)
        .with(PassThroughLayer)
        .with(PassThroughLayer)
        .with(PassThroughLayer)
        .with(PassThroughLayer)
        .with(PassThroughLayer)
        .with(PassThroughLayer)
        .with(PassThroughLayer);
    group.bench_function("10_pass_through", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(testing::call(&stacked, scope.clone(), []).await) })
    });
    group.finish();
}

fn middleware(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime with timers");
    let stacks = middleware_stacks::Stacks::new(&rt);
    let mut group = c.benchmark_group("middleware");
    for (name, app) in &stacks.apps {
        group.bench_function(*name, |b| {
            b.to_async(&rt)
                .iter(|| async { black_box(testing::call(&**app, stacks.scope.clone(), []).await) })
        });
    }
    group.finish();
}

criterion_group!(benches, event_round_trip, layers, middleware);
criterion_main!(benches);
