//! WSGI apps that break the rules, clients that leave, and a pool under pressure, through the
//! real server: what the client sees, what the app sees, and that the pool keeps serving.

mod common;
mod wsgi_common;

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use asgi::wsgi::{Body, BoxError, Environ, StartResponse, WsgiToAsgi};
use bytes::Bytes;
use common::*;
use http::StatusCode;
use http_body_util::BodyExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use wsgi_common::Gate;

/// An app for a pool of one thread that answers every other request at once, so that a
/// later request shows whether the thread was given back. With no wait for a thread, a
/// slot still taken answers 503 instead of passing after a delay.
fn pool_of_one<F>(app: F) -> WsgiToAsgi<F>
where
    F: Fn(Environ, StartResponse) -> Result<Body, BoxError> + Send + Sync + 'static,
{
    WsgiToAsgi::new(app)
        .max_threads(1)
        .slot_timeout(Some(Duration::ZERO))
}

fn ok(start_response: &StartResponse) -> Result<Body, BoxError> {
    start_response.call("200 OK", [("Content-Type", "text/plain")], None)?;
    Ok(Body::from("ok"))
}

/// True once an error containing `text` was logged (the app's thread logs it after the
/// client got its answer, so the test may have to wait for it).
async fn logged_error(logs: &LogCapture, text: &str) -> bool {
    eventually(async || logs.errors().iter().any(|line| line.contains(text))).await
}

/// Sends `GET path` and expects the pool to have served it.
async fn assert_served(server: &TestServer, path: &str) {
    let answer = fetch(server.addr, path).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
}

#[tokio::test]
async fn response_short_of_its_content_length_is_aborted() {
    let (logs, _guard) = LogCapture::install();
    let app = WsgiToAsgi::new(
        |_: Environ, start_response: StartResponse| -> Result<Body, BoxError> {
            start_response.call(
                "200 OK",
                [("Content-Type", "text/plain"), ("Content-Length", "10")],
                None,
            )?;
            Ok(Body::from("hello"))
        },
    );
    let server = start(app, |b| b).await;
    let (mut sender, conn) = h1(server.addr).await;
    // The head may or may not get out before the server closes the connection; either way
    // the client must not see a complete response.
    let outcome = match sender.send_request(get("/")).await {
        Ok(response) => {
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(response.headers()["content-length"], "10");
            read(response).await.map(|answer| answer.body)
        }
        Err(e) => Err(e),
    };
    assert!(
        outcome.is_err(),
        "a short body looked complete: {outcome:?}"
    );
    // The server closed the connection rather than let the next response pass for the rest.
    let closed = tokio::time::timeout(PATIENCE, conn).await.unwrap().unwrap();
    assert!(closed.is_err() || sender.is_closed());
    assert!(
        logged_error(&logs, "after 5 of the 10 bytes").await,
        "{:?}",
        logs.errors()
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn response_beyond_its_content_length_is_truncated_there() {
    let app = WsgiToAsgi::new(
        |_: Environ, start_response: StartResponse| -> Result<Body, BoxError> {
            start_response.call(
                "200 OK",
                [("Content-Type", "text/plain"), ("Content-Length", "5")],
                None,
            )?;
            Ok(Body::from_chunks(["hel", "lo world", " and more"]))
        },
    );
    let server = start(app, |b| b).await;
    let (mut sender, _conn) = h1(server.addr).await;
    let answer = read(sender.send_request(get("/first")).await.unwrap())
        .await
        .unwrap();
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.headers["content-length"], "5");
    assert_eq!(answer.text(), "hello");
    // No stray byte is left on the connection: the next response on it is whole.
    let answer = read(sender.send_request(get("/second")).await.unwrap())
        .await
        .unwrap();
    assert_eq!(answer.text(), "hello");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn hop_by_hop_header_from_the_app_gives_500() {
    let (logs, _guard) = LogCapture::install();
    let app = WsgiToAsgi::new(
        |_: Environ, start_response: StartResponse| -> Result<Body, BoxError> {
            start_response.call(
                "200 OK",
                [("Content-Type", "text/plain"), ("Connection", "close")],
                None,
            )?;
            Ok(Body::from("never sent"))
        },
    );
    let server = start(app, |b| b).await;
    let answer = fetch(server.addr, "/").await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(answer.text(), "Internal Server Error");
    assert!(
        logged_error(&logs, r#"hop-by-hop header "connection""#).await,
        "{:?}",
        logs.errors()
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn invalid_status_from_the_app_gives_500() {
    let (logs, _guard) = LogCapture::install();
    let app = WsgiToAsgi::new(
        |_: Environ, start_response: StartResponse| -> Result<Body, BoxError> {
            start_response.call("200OK", [("Content-Type", "text/plain")], None)?;
            Ok(Body::from("never sent"))
        },
    );
    let server = start(app, |b| b).await;
    let answer = fetch(server.addr, "/").await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(answer.text(), "Internal Server Error");
    assert!(
        logged_error(&logs, r#"invalid WSGI status "200OK""#).await,
        "{:?}",
        logs.errors()
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn disconnect_mid_upload_fails_the_read_and_frees_the_thread() {
    let (reading, app_is_reading) = Report::new();
    let (failed, read_failed) = Report::new();
    let app = pool_of_one(
        move |mut environ: Environ, start_response: StartResponse| -> Result<Body, BoxError> {
            if environ.path_info() != "/upload" {
                return ok(&start_response);
            }
            loop {
                match environ.input().read_chunk() {
                    Ok(chunk) if chunk.is_empty() => return ok(&start_response),
                    Ok(_) => reading.send(()),
                    Err(e) => {
                        failed.send(e.kind());
                        return Err(e.into());
                    }
                }
            }
        },
    );
    let pool = app.clone();
    let (logs, _guard) = LogCapture::install();
    let server = start(app, |b| b).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"POST /upload HTTP/1.1\r\nHost: test\r\nContent-Length: 1000000\r\n\r\n")
        .await
        .unwrap();
    stream.write_all(&[b'u'; 64 * 1024]).await.unwrap();
    tokio::time::timeout(PATIENCE, app_is_reading)
        .await
        .unwrap()
        .unwrap();
    drop(stream);

    let kind = tokio::time::timeout(PATIENCE, read_failed)
        .await
        .expect("the app's read fails once the client is gone")
        .unwrap();
    assert_eq!(kind, io::ErrorKind::ConnectionAborted);
    assert!(
        eventually(async || pool.available_threads() == 1).await,
        "the thread was given back"
    );
    assert_served(&server, "/after").await;
    server.stop().await.unwrap();
    // A client that leaves is not an error of the server or the app.
    assert_eq!(logs.errors(), Vec::<String>::new());
}

#[tokio::test]
async fn disconnect_mid_download_closes_the_body_and_frees_the_thread() {
    let closed = Arc::new(AtomicBool::new(false));
    let app = {
        let closed = closed.clone();
        pool_of_one(
            move |environ: Environ, start_response: StartResponse| -> Result<Body, BoxError> {
                if environ.path_info() != "/download" {
                    return ok(&start_response);
                }
                start_response.call(
                    "200 OK",
                    [("Content-Type", "application/octet-stream")],
                    None,
                )?;
                let closed = closed.clone();
                let chunk = Bytes::from(vec![b'd'; 64 * 1024]);
                // Endless: only the client's leaving ends it.
                Ok(Body::from_chunks(std::iter::repeat(chunk))
                    .on_close(move || closed.store(true, Ordering::SeqCst)))
            },
        )
    };
    let pool = app.clone();
    let (logs, _guard) = LogCapture::install();
    let server = start(app, |b| b).await;
    let (mut sender, conn) = h1(server.addr).await;
    let response = sender.send_request(get("/download")).await.unwrap();
    let mut body = response.into_body();
    for _ in 0..3 {
        let frame = tokio::time::timeout(PATIENCE, body.frame())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(frame.is_data());
    }
    assert!(
        !closed.load(Ordering::SeqCst),
        "the body is still being read"
    );
    drop(body);
    drop(sender);
    conn.abort();

    assert!(
        eventually(async || closed.load(Ordering::SeqCst)).await,
        "the body's close() ran"
    );
    assert!(
        eventually(async || pool.available_threads() == 1).await,
        "the thread was given back"
    );
    assert_served(&server, "/after").await;
    server.stop().await.unwrap();
    assert_eq!(logs.errors(), Vec::<String>::new());
}

/// A WSGI app behind a box, so that a helper can name its adapter's type.
type BoxedApp = Box<dyn Fn(Environ, StartResponse) -> Result<Body, BoxError> + Send + Sync>;

/// A server of a pool of one thread, whose `/block` waits at the gate and every other path
/// answers its path, with the thread taken by a `/block` request (the task returned).
struct BlockedPool {
    server: TestServer,
    pool: WsgiToAsgi<BoxedApp>,
    holder: tokio::task::JoinHandle<Answer>,
    gate: Gate,
}

async fn blocked_pool(max_queued: usize, slot_timeout: Option<Duration>) -> BlockedPool {
    let gate = Gate::default();
    let (blocked, app_is_blocked) = Report::new();
    let app: BoxedApp = {
        let gate = gate.clone();
        Box::new(move |environ, start_response| {
            if environ.path_info() == "/block" {
                blocked.send(());
                gate.wait();
            }
            start_response.call("200 OK", [("Content-Type", "text/plain")], None)?;
            Ok(Body::from(environ.path_info().to_string()))
        })
    };
    let pool = WsgiToAsgi::new(app)
        .max_threads(1)
        .max_queued(max_queued)
        .slot_timeout(slot_timeout);
    let server = start(pool.clone(), |b| b).await;
    let addr = server.addr;
    let holder = tokio::spawn(async move { fetch(addr, "/block").await });
    tokio::time::timeout(PATIENCE, app_is_blocked)
        .await
        .unwrap()
        .unwrap();
    BlockedPool {
        server,
        pool,
        holder,
        gate,
    }
}

/// `waiting` requests asked of a blocked pool with `max_queued` places in its queue must each
/// get 503 once the slot timeout has passed (whether they waited in the pool's queue or for a
/// place in it), and the thread, once free, serves again.
async fn busy_pool_refuses_after_the_slot_timeout(max_queued: usize, waiting: usize) {
    const SLOT_TIMEOUT: Duration = Duration::from_millis(300);
    let blocked = blocked_pool(max_queued, Some(SLOT_TIMEOUT)).await;
    let addr = blocked.server.addr;
    let asked = Instant::now();
    let refused: Vec<_> = (0..waiting)
        .map(|_| tokio::spawn(async move { (fetch(addr, "/waits").await, asked.elapsed()) }))
        .collect();
    for refused in refused {
        let (refused, waited) = refused.await.unwrap();
        assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(refused.headers["retry-after"], "1");
        assert_eq!(refused.text(), "Service Unavailable");
        assert!(waited >= SLOT_TIMEOUT, "answered after {waited:?}");
    }

    blocked.gate.open();
    let held = tokio::time::timeout(PATIENCE, blocked.holder)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(held.status, StatusCode::OK);
    assert_served(&blocked.server, "/after").await;
    blocked.server.stop().await.unwrap();
}

#[tokio::test]
async fn busy_pool_answers_503_after_the_slot_timeout() {
    busy_pool_refuses_after_the_slot_timeout(asgi::wsgi::to_asgi::DEFAULT_MAX_QUEUED, 1).await;
}

#[tokio::test]
async fn busy_pool_without_a_queue_answers_503_after_the_slot_timeout() {
    busy_pool_refuses_after_the_slot_timeout(0, 1).await;
}

#[tokio::test]
async fn requests_beyond_a_full_queue_answer_503_after_the_slot_timeout() {
    busy_pool_refuses_after_the_slot_timeout(1, 3).await;
}

#[tokio::test]
async fn requests_queued_behind_a_busy_thread_are_all_served_once_it_frees() {
    const WAITING: usize = 16;
    let blocked = blocked_pool(4, Some(PATIENCE)).await;
    let addr = blocked.server.addr;
    // Four wait in the pool's queue, the others for a place in it.
    let waiting: Vec<_> = (0..WAITING)
        .map(|i| tokio::spawn(async move { fetch(addr, &format!("/waits/{i}")).await }))
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    blocked.gate.open();
    assert_eq!(blocked.holder.await.unwrap().status, StatusCode::OK);
    for (i, waiting) in waiting.into_iter().enumerate() {
        let answer = waiting.await.unwrap();
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.text(), format!("/waits/{i}"));
    }
    blocked.server.stop().await.unwrap();
}

#[tokio::test]
async fn waiting_request_gets_the_thread_freed_within_the_slot_timeout() {
    let blocked = blocked_pool(asgi::wsgi::to_asgi::DEFAULT_MAX_QUEUED, Some(PATIENCE)).await;
    let addr = blocked.server.addr;
    assert_eq!(blocked.pool.available_threads(), 0);
    let waiter = tokio::spawn(async move { fetch(addr, "/waits").await });
    blocked.gate.open();
    assert_eq!(blocked.holder.await.unwrap().status, StatusCode::OK);
    assert_eq!(waiter.await.unwrap().status, StatusCode::OK);
    blocked.server.stop().await.unwrap();
}

#[tokio::test]
async fn panic_storm_leaves_the_pool_serving() {
    const PANICS: usize = 40;
    const THREADS: usize = 2;
    let app = WsgiToAsgi::new(
        |environ: Environ, start_response: StartResponse| -> Result<Body, BoxError> {
            if environ.path_info() == "/panic" {
                panic!("the app panics on purpose");
            }
            ok(&start_response)
        },
    )
    .max_threads(THREADS)
    .slot_timeout(Some(PATIENCE));
    let pool = app.clone();
    let server = start(app, |b| b).await;
    let addr = server.addr;
    let storm: Vec<_> = (0..PANICS)
        .map(|_| tokio::spawn(async move { fetch(addr, "/panic").await }))
        .collect();
    for request in storm {
        let answer = request.await.unwrap();
        assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(answer.text(), "Internal Server Error");
    }
    assert!(
        eventually(async || pool.available_threads() == THREADS).await,
        "every thread was given back"
    );
    // The same pool, on one keep-alive connection and on new ones.
    let (mut sender, _conn) = h1(server.addr).await;
    for _ in 0..5 {
        let answer = read(sender.send_request(get("/")).await.unwrap())
            .await
            .unwrap();
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.text(), "ok");
    }
    for _ in 0..5 {
        assert_served(&server, "/").await;
    }
    server.stop().await.unwrap();
}

/// An app that reads its whole request body and reports how its reads ended.
fn body_reader(
    failed: tokio::sync::oneshot::Sender<io::ErrorKind>,
) -> impl Fn(Environ, StartResponse) -> Result<Body, BoxError> + Send + Sync + 'static {
    let failed = std::sync::Mutex::new(Some(failed));
    move |mut environ: Environ, start_response: StartResponse| -> Result<Body, BoxError> {
        if environ.path_info() != "/upload" {
            return ok(&start_response);
        }
        loop {
            match environ.input().read_chunk() {
                Ok(chunk) if chunk.is_empty() => return ok(&start_response),
                Ok(_) => {}
                Err(e) => {
                    if let Some(failed) = failed.lock().unwrap().take() {
                        let _ = failed.send(e.kind());
                    }
                    return Err(e.into());
                }
            }
        }
    }
}

#[tokio::test]
async fn a_stalled_request_body_times_out_with_408_and_frees_the_thread() {
    let (failed, read_failed) = tokio::sync::oneshot::channel();
    let app = pool_of_one(body_reader(failed)).read_timeout(Some(Duration::from_millis(300)));
    let pool = app.clone();
    let server = start(app, |b| b).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let started = Instant::now();
    // Part of the body, then nothing more.
    stream
        .write_all(b"POST /upload HTTP/1.1\r\nHost: test\r\nContent-Length: 1000\r\n\r\nabc")
        .await
        .unwrap();
    let kind = tokio::time::timeout(PATIENCE, read_failed)
        .await
        .expect("the app's read fails once the client stalls")
        .unwrap();
    assert_eq!(kind, io::ErrorKind::TimedOut);
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, async {
        let mut buf = [0u8; 1024];
        while let Ok(n) = tokio::io::AsyncReadExt::read(&mut stream, &mut buf).await {
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
            if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
    })
    .await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    // Generous: the bound is 300 ms, the machine may be loaded.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(
        eventually(async || pool.available_threads() == 1).await,
        "the thread was given back"
    );
    assert_served(&server, "/after").await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_slow_but_steady_request_body_is_not_cut_by_the_read_timeout() {
    let (failed, _read_failed) = tokio::sync::oneshot::channel();
    let app = pool_of_one(body_reader(failed)).read_timeout(Some(Duration::from_millis(500)));
    let server = start(app, |b| b).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"POST /upload HTTP/1.1\r\nHost: test\r\nContent-Length: 6\r\n\r\n")
        .await
        .unwrap();
    // Six bytes over 1.2 s in all, more than twice the timeout, but never 500 ms apart.
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        stream.write_all(b"x").await.unwrap();
    }
    let mut answer = vec![0u8; 12];
    tokio::time::timeout(
        PATIENCE,
        tokio::io::AsyncReadExt::read_exact(&mut stream, &mut answer),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(&answer, b"HTTP/1.1 200");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_read_timeout_can_be_turned_off() {
    let (failed, mut read_failed) = tokio::sync::oneshot::channel();
    let app = pool_of_one(body_reader(failed)).read_timeout(None);
    let server = start(app, |b| b).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"POST /upload HTTP/1.1\r\nHost: test\r\nContent-Length: 4\r\n\r\nab")
        .await
        .unwrap();
    // Longer than the timeouts of the tests above: with none set, the read still waits.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(read_failed.try_recv().is_err(), "the read still waits");
    stream.write_all(b"cd").await.unwrap();
    let mut answer = vec![0u8; 12];
    tokio::time::timeout(
        PATIENCE,
        tokio::io::AsyncReadExt::read_exact(&mut stream, &mut answer),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(&answer, b"HTTP/1.1 200");
    server.stop().await.unwrap();
}
