//! TLS through the real server, with certificates made at test time (`rcgen`) and real
//! clients (rustls under hyper's HTTP/1.1 and HTTP/2 clients, tokio-tungstenite, and
//! `curl --cacert`): ALPN, the scope's scheme and `tls` extension, the WSGI environ,
//! WebSockets over TLS on HTTP/1.1 and HTTP/2, mutual TLS, failed and stalled handshakes,
//! bad certificate files, and certificate reload with a connection open.

mod common;
mod tls_common;

use std::time::{Duration, Instant};

use asgi::server::server::{ClientAuth, TlsConfig};
use bytes::Bytes;
use common::*;
use futures_util::{SinkExt, StreamExt};
use http::{Method, Request};
use http_body_util::Empty;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tls_common::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;

/// A CA, a server certificate for localhost, and the server's TLS settings.
struct Pki {
    dir: std::path::PathBuf,
    ca: Ca,
    tls: TlsConfig,
}

fn pki(name: &str) -> Pki {
    let dir = temp_dir(&format!("tls-{name}"));
    let ca = Ca::new("Test CA");
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    let (cert, key) = ca.server("server one").write(&dir, "server");
    Pki {
        tls: TlsConfig::new(cert, key),
        dir,
        ca,
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether a client with `config` is refused: its handshake fails, or (TLS 1.3: the client
/// learns of a refusal on its first read) its first request gets no response.
async fn refused(addr: std::net::SocketAddr, config: rustls::ClientConfig) -> bool {
    match connect_tls(addr, config).await {
        Err(_) => true,
        Ok(tls) => {
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
                .await
                .unwrap();
            tokio::spawn(conn);
            tokio::time::timeout(PATIENCE, sender.send_request(get("/")))
                .await
                .expect("the refusal comes in time")
                .is_err()
        }
    }
}

/// `GET path` over HTTP/1.1 on a TLS connection made with `config`.
async fn get_h1(addr: std::net::SocketAddr, config: rustls::ClientConfig, path: &str) -> Answer {
    let tls = connect_tls(addr, config)
        .await
        .expect("the handshake succeeds");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let response = tokio::time::timeout(PATIENCE, sender.send_request(get(path)))
        .await
        .expect("the response comes in time")
        .unwrap();
    read(response).await.unwrap()
}

#[tokio::test]
async fn alpn_picks_http2_and_the_scope_is_https_with_the_tls_extension() {
    let pki = pki("alpn-h2");
    let server = start(testbed::served_app(false), |b| b.tls(pki.tls.clone())).await;
    let tls = connect_tls(
        server.addr,
        client_config(&pki.ca, &[b"h2", b"http/1.1"], None),
    )
    .await
    .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    let request = Request::get("https://localhost/scope/x")
        .body(empty())
        .unwrap();
    let answer = read(sender.send_request(request).await.unwrap())
        .await
        .unwrap();
    let scope = answer.json();
    assert_eq!(scope["http_version"], "2");
    assert_eq!(scope["scheme"], "https");
    let tls = &scope["extensions"]["tls"];
    assert_eq!(tls["tls_version"], 0x0304);
    assert!(tls["cipher_suite"].as_u64().is_some(), "{tls}");
    let server_cert = std::fs::read_to_string(pki.dir.join("server.crt")).unwrap();
    assert_eq!(
        tls["server_cert"]
            .as_str()
            .unwrap()
            .replace(['\r', '\n'], ""),
        server_cert.replace(['\r', '\n'], "")
    );
    assert_eq!(tls["client_cert_chain"], serde_json::json!([]));
    assert_eq!(tls["client_cert_name"], serde_json::Value::Null);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn alpn_http11_serves_http11_and_wsgi_sees_https() {
    let pki = pki("alpn-h1");
    let server = start(testbed::served_app(false), |b| b.tls(pki.tls.clone())).await;
    let config = client_config(&pki.ca, &[b"http/1.1"], None);
    let scope = get_h1(server.addr, config.clone(), "/scope/x").await.json();
    assert_eq!(scope["http_version"], "1.1");
    assert_eq!(scope["scheme"], "https");
    let environ = get_h1(server.addr, config, "/wsgi/environ/x").await.json();
    assert_eq!(environ["wsgi.url_scheme"], "https");
    assert_eq!(environ["HTTPS"], "on");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn curl_with_the_ca_gets_http2_and_http11() {
    let pki = pki("curl");
    let server = start(testbed::served_app(false), |b| b.tls(pki.tls.clone())).await;
    let url = format!("https://localhost:{}/", server.addr.port());
    let resolve = format!("localhost:{}:127.0.0.1", server.addr.port());
    for (flag, version) in [("--http2", "2"), ("--http1.1", "1.1")] {
        let output = tokio::process::Command::new("curl")
            .args(["--silent", "--show-error", "--max-time", "10", flag])
            .arg("--cacert")
            .arg(pki.dir.join("ca.pem"))
            .args([
                "--resolve",
                &resolve,
                "--write-out",
                " %{http_version}",
                &url,
            ])
            .output()
            .await
            .expect("curl runs (`.ci/run` installs it)");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "curl {flag}: {stdout} {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(stdout, format!("Hello, world! {version}"));
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn websocket_over_tls_on_http11() {
    let pki = pki("wss-h1");
    let server = start(testbed::served_app(false), |b| b.tls(pki.tls.clone())).await;
    let tls = connect_tls(server.addr, client_config(&pki.ca, &[b"http/1.1"], None))
        .await
        .unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async("wss://localhost/scope/x", tls)
        .await
        .unwrap();
    let scope: serde_json::Value =
        serde_json::from_str(ws.next().await.unwrap().unwrap().to_text().unwrap()).unwrap();
    assert_eq!(scope["scheme"], "wss");
    assert_eq!(scope["extensions"]["tls"]["tls_version"], 0x0304);
    drop(ws);

    let tls = connect_tls(server.addr, client_config(&pki.ca, &[b"http/1.1"], None))
        .await
        .unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async("wss://localhost/ws/echo", tls)
        .await
        .unwrap();
    ws.send(Message::text("over TLS")).await.unwrap();
    let echoed = tokio::time::timeout(PATIENCE, ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(echoed, Message::text("over TLS"));
    ws.close(None).await.unwrap();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn websocket_over_tls_on_http2() {
    let pki = pki("wss-h2");
    let server = start(testbed::served_app(false), |b| b.tls(pki.tls.clone())).await;
    let tls = connect_tls(server.addr, client_config(&pki.ca, &[b"h2"], None))
        .await
        .unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut request = Request::builder()
        .method(Method::CONNECT)
        .uri("https://localhost/ws/echo")
        .header("sec-websocket-version", "13")
        .body(Empty::<Bytes>::new())
        .unwrap();
    request
        .extensions_mut()
        .insert(hyper::ext::Protocol::from_static("websocket"));
    tokio::time::timeout(PATIENCE, sender.ready())
        .await
        .unwrap()
        .unwrap();
    let mut response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let upgraded = hyper::upgrade::on(&mut response).await.unwrap();
    let mut ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Client, None).await;
    ws.send(Message::text("h2 over TLS")).await.unwrap();
    let echoed = tokio::time::timeout(PATIENCE, ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(echoed, Message::text("h2 over TLS"));
    ws.close(None).await.unwrap();
    // The server answers the close; then the stream ends.
    while let Some(Ok(_)) = tokio::time::timeout(PATIENCE, ws.next()).await.unwrap() {}
    drop(ws);
    drop(sender);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn mutual_tls_accepts_a_client_certificate_of_the_ca() {
    let pki = pki("mtls-ok");
    let tls = pki
        .tls
        .clone()
        .client_ca(pki.dir.join("ca.pem"), ClientAuth::Required);
    let server = start(testbed::served_app(false), |b| b.tls(tls)).await;
    let alice = pki.ca.client("alice");
    let config = client_config(&pki.ca, &[b"http/1.1"], Some(&alice));
    let scope = get_h1(server.addr, config, "/scope/x").await.json();
    let tls = &scope["extensions"]["tls"];
    // RFC 4514 lists the subject's names last first: rcgen wrote CN, then O.
    assert_eq!(tls["client_cert_name"], "O=Example,CN=alice");
    assert_eq!(tls["client_cert_error"], serde_json::Value::Null);
    let chain = tls["client_cert_chain"].as_array().unwrap();
    assert_eq!(chain.len(), 1);
    assert_eq!(
        chain[0].as_str().unwrap().replace(['\r', '\n'], ""),
        alice.cert_pem.replace(['\r', '\n'], "")
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn mutual_tls_refuses_no_certificate_and_a_foreign_one_and_keeps_serving() {
    let pki = pki("mtls-refused");
    let tls = pki
        .tls
        .clone()
        .client_ca(pki.dir.join("ca.pem"), ClientAuth::Required);
    let server = start(testbed::served_app(false), |b| b.tls(tls)).await;
    let stranger = Ca::new("Other CA").client("mallory");
    for client in [None, Some(&stranger)] {
        assert!(
            refused(server.addr, client_config(&pki.ca, &[b"http/1.1"], client)).await,
            "a client without a valid certificate gets no response"
        );
    }
    assert!(eventually(async || server.handle.tls_handshake_failures() == 2).await);
    // Others are not disturbed.
    let alice = pki.ca.client("alice");
    let answer = get_h1(server.addr, client_config(&pki.ca, &[], Some(&alice)), "/").await;
    assert_eq!(answer.text(), "Hello, world!");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn optional_client_certificates_let_a_client_without_one_in() {
    let pki = pki("mtls-optional");
    let tls = pki
        .tls
        .clone()
        .client_ca(pki.dir.join("ca.pem"), ClientAuth::Optional);
    let server = start(testbed::served_app(false), |b| b.tls(tls)).await;
    let scope = get_h1(server.addr, client_config(&pki.ca, &[], None), "/scope/x")
        .await
        .json();
    assert_eq!(
        scope["extensions"]["tls"]["client_cert_chain"],
        serde_json::json!([])
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn optional_client_certificates_still_refuse_a_foreign_one() {
    let pki = pki("mtls-optional-foreign");
    let tls = pki
        .tls
        .clone()
        .client_ca(pki.dir.join("ca.pem"), ClientAuth::Optional);
    let server = start(testbed::served_app(false), |b| b.tls(tls)).await;
    let stranger = Ca::new("Other CA").client("mallory");
    let config = client_config(&pki.ca, &[b"http/1.1"], Some(&stranger));
    assert!(refused(server.addr, config).await, "mallory got a response");
    assert!(eventually(async || server.handle.tls_handshake_failures() == 1).await);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn optional_report_errors_lets_a_foreign_certificate_in_and_the_scope_says_why() {
    let pki = pki("mtls-report");
    let tls = pki
        .tls
        .clone()
        .client_ca(pki.dir.join("ca.pem"), ClientAuth::OptionalReportErrors);
    let server = start(testbed::served_app(false), |b| b.tls(tls)).await;

    // A certificate of another CA: let in, shown, and marked as not trusted.
    let mallory = Ca::new("Other CA").client("mallory");
    let config = client_config(&pki.ca, &[b"http/1.1"], Some(&mallory));
    let scope = get_h1(server.addr, config, "/scope/x").await.json();
    let tls = &scope["extensions"]["tls"];
    let error = tls["client_cert_error"].as_str().unwrap_or_default();
    assert!(error.contains("UnknownIssuer"), "client_cert_error: {tls}");
    assert_eq!(tls["client_cert_name"], "O=Example,CN=mallory");
    let chain = tls["client_cert_chain"].as_array().unwrap();
    assert_eq!(chain.len(), 1);
    assert_eq!(
        chain[0].as_str().unwrap().replace(['\r', '\n'], ""),
        mallory.cert_pem.replace(['\r', '\n'], "")
    );

    // A certificate of the CA: verified, no error.
    let alice = pki.ca.client("alice");
    let config = client_config(&pki.ca, &[b"http/1.1"], Some(&alice));
    let scope = get_h1(server.addr, config, "/scope/x").await.json();
    let tls = &scope["extensions"]["tls"];
    assert_eq!(tls["client_cert_error"], serde_json::Value::Null, "{tls}");
    assert_eq!(tls["client_cert_name"], "O=Example,CN=alice");

    // No certificate: let in, nothing to report.
    let scope = get_h1(server.addr, client_config(&pki.ca, &[], None), "/scope/x")
        .await
        .json();
    let tls = &scope["extensions"]["tls"];
    assert_eq!(tls["client_cert_chain"], serde_json::json!([]));
    assert_eq!(tls["client_cert_error"], serde_json::Value::Null);
    assert_eq!(server.handle.tls_handshake_failures(), 0);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn optional_report_errors_still_refuses_a_certificate_shown_without_its_key() {
    let pki = pki("mtls-report-stolen");
    let tls = pki
        .tls
        .clone()
        .client_ca(pki.dir.join("ca.pem"), ClientAuth::OptionalReportErrors);
    let server = start(testbed::served_app(false), |b| b.tls(tls)).await;
    // Alice's certificate (the CA's own) and a foreign one, each signed for with another key.
    let alice = pki.ca.client("alice");
    let stranger = Ca::new("Other CA").client("mallory");
    let thief = Ca::new("Thief CA").client("thief");
    for shown in [&alice, &stranger] {
        let config = client_config_with_a_stolen_certificate(&pki.ca, shown, &thief);
        assert!(
            refused(server.addr, config).await,
            "a certificate shown without its key got a response"
        );
    }
    assert!(eventually(async || server.handle.tls_handshake_failures() == 2).await);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn plaintext_to_the_tls_port_is_closed_and_counted() {
    let pki = pki("plaintext");
    let server = start(testbed::served_app(false), |b| b.tls(pki.tls.clone())).await;
    let answer = raw(
        server.addr,
        b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert!(
        !answer.contains("HTTP/1.1"),
        "no HTTP answer in the clear: {answer:?}"
    );
    assert!(eventually(async || server.handle.tls_handshake_failures() == 1).await);
    let answer = get_h1(server.addr, client_config(&pki.ca, &[], None), "/").await;
    assert_eq!(answer.text(), "Hello, world!");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_stalled_handshake_is_cut_at_the_timeout_without_delaying_others() {
    let pki = pki("stalled");
    let tls = pki
        .tls
        .clone()
        .handshake_timeout(Some(Duration::from_millis(500)));
    let server = start(testbed::served_app(false), |b| b.tls(tls)).await;
    let started = Instant::now();
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    // Meanwhile a real client is served at once.
    let answer = get_h1(server.addr, client_config(&pki.ca, &[], None), "/").await;
    assert_eq!(answer.text(), "Hello, world!");
    let rest = read_to_close(&mut silent).await;
    let waited = started.elapsed();
    assert_eq!(rest, "");
    assert!(waited >= Duration::from_millis(450), "cut after {waited:?}");
    assert!(waited < Duration::from_secs(5), "cut after {waited:?}");
    assert_eq!(server.handle.tls_handshake_failures(), 1);
    silent.shutdown().await.ok();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn bad_certificate_files_fail_serve_before_the_app_starts() {
    let pki = pki("bad-files");
    let garbage = pki.dir.join("garbage.pem");
    std::fs::write(&garbage, "not a certificate").unwrap();
    let other_key = pki.ca.server("other").write(&pki.dir, "other").1;
    let cases = [
        (
            TlsConfig::new(pki.dir.join("missing.crt"), pki.dir.join("server.key")),
            "missing.crt",
        ),
        (
            TlsConfig::new(&garbage, pki.dir.join("server.key")),
            "garbage.pem",
        ),
        (
            TlsConfig::new(pki.dir.join("server.crt"), &garbage),
            "garbage.pem",
        ),
        (
            TlsConfig::new(pki.dir.join("server.crt"), &other_key),
            "server.crt",
        ),
    ];
    for (tls, named) in cases {
        let started = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = started.clone();
        let app =
            move |scope: asgi::core::Scope, _: asgi::core::Receiver, _: asgi::core::Sender| {
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
                let _ = scope;
                async { Ok(()) }
            };
        let result = asgi::server::server::Server::builder()
            .bind("127.0.0.1:0".parse().unwrap())
            .handle_signals(false)
            .tls(tls)
            .serve(app)
            .await;
        let err = result.unwrap_err();
        assert!(err.is_tls(), "{err}");
        assert!(err.to_string().contains(named), "{err}");
        assert!(
            !started.load(std::sync::atomic::Ordering::SeqCst),
            "the app never starts"
        );
    }
}

#[tokio::test]
async fn reload_gives_new_handshakes_the_new_certificate_and_open_connections_go_on() {
    let pki = pki("reload");
    let server = start(testbed::served_app(false), |b| b.tls(pki.tls.clone())).await;
    let config = client_config(&pki.ca, &[b"http/1.1"], None);
    let subject = |tls: &tokio_rustls::client::TlsStream<TcpStream>| {
        let der = tls.get_ref().1.peer_certificates().unwrap()[0].to_vec();
        String::from_utf8_lossy(&der).into_owned()
    };

    // A keep-alive connection made with the first certificate.
    let tls = connect_tls(server.addr, config.clone()).await.unwrap();
    assert!(subject(&tls).contains("server one"));
    let (mut open, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    assert_eq!(
        read(open.send_request(get("/")).await.unwrap())
            .await
            .unwrap()
            .status,
        200
    );

    // New files in place, then the reload.
    pki.ca.server("server two").write(&pki.dir, "server");
    server.handle.reload_tls().unwrap();
    let tls = connect_tls(server.addr, config.clone()).await.unwrap();
    assert!(
        subject(&tls).contains("server two"),
        "new handshakes get the new certificate"
    );
    // The open connection goes on.
    let answer = read(open.send_request(get("/")).await.unwrap())
        .await
        .unwrap();
    assert_eq!(answer.text(), "Hello, world!");

    // Bad files: the reload fails and the certificate in use stays.
    std::fs::write(pki.dir.join("server.crt"), "garbage").unwrap();
    let err = server.handle.reload_tls().unwrap_err();
    assert!(err.to_string().contains("server.crt"), "{err}");
    let tls = connect_tls(server.addr, config).await.unwrap();
    assert!(subject(&tls).contains("server two"));
    server.stop().await.unwrap();
}
