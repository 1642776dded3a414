//! StaticFiles: content types, validators and 304, ranges (one, several, unsatisfiable,
//! ignored), HEAD, precompressed siblings, html mode, and every way out of the directory
//! refused with 404; ranges and whole files over a real socket too.

mod common;

use std::path::{Path, PathBuf};

use asgi::server::middleware::static_files::StaticFiles;
use asgi::server::mount::Mount;
use asgi::server::test_client::{TestClient, TestRequest, TestResponse};

/// A directory of files for one test, and a secret file beside it (outside), removed at the
/// end.
struct Fixture {
    base: PathBuf,
}

impl Fixture {
    fn new(name: &str) -> Fixture {
        let base = std::env::temp_dir().join(format!("asgi-static-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let root = base.join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::create_dir_all(root.join("bare")).unwrap();
        std::fs::write(root.join("hello.txt"), "hello, world\n").unwrap();
        std::fs::write(root.join("index.html"), "<h1>home</h1>").unwrap();
        std::fs::write(root.join("sub/index.html"), "<h1>sub</h1>").unwrap();
        std::fs::write(root.join("404.html"), "<h1>lost</h1>").unwrap();
        std::fs::write(root.join("app.js"), "console.log('plain')").unwrap();
        std::fs::write(root.join("app.js.br"), "BROTLI-BYTES").unwrap();
        std::fs::write(root.join("app.js.gz"), "GZIP-BYTES").unwrap();
        let digits: String = (0..100)
            .map(|i| char::from(b'0' + (i % 10) as u8))
            .collect();
        std::fs::write(root.join("digits.bin"), digits).unwrap();
        std::fs::write(base.join("secret.txt"), "top secret").unwrap();
        std::os::unix::fs::symlink(base.join("secret.txt"), root.join("leak.txt")).unwrap();
        std::os::unix::fs::symlink(root.join("hello.txt"), root.join("alias.txt")).unwrap();
        Fixture { base }
    }

    fn root(&self) -> PathBuf {
        self.base.join("root")
    }

    fn secret(&self) -> PathBuf {
        self.base.join("secret.txt")
    }

    fn client(&self, configure: impl FnOnce(StaticFiles) -> StaticFiles) -> TestClient {
        TestClient::new(configure(StaticFiles::new(self.root()).unwrap()))
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

async fn get_with(client: &TestClient, path: &str, headers: &[(&str, &str)]) -> TestResponse {
    let mut request = TestRequest::get(path);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    client.send(request).await.unwrap()
}

#[tokio::test]
async fn a_file_is_served_with_type_length_and_validators() {
    let fixture = Fixture::new("serve");
    let client = fixture.client(|f| f);
    let response = client.get("/hello.txt").await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text(), "hello, world\n");
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(response.header("content-length"), Some("13"));
    assert_eq!(response.header("accept-ranges"), Some("bytes"));
    assert!(response.header("etag").unwrap().starts_with('"'));
    assert!(response.header("last-modified").unwrap().ends_with("GMT"));
    let js = client.get("/app.js").await.unwrap();
    assert!(js.header("content-type").unwrap().contains("javascript"));
}

#[tokio::test]
async fn head_has_the_headers_and_no_body() {
    let fixture = Fixture::new("head");
    let client = fixture.client(|f| f);
    let response = client.send(TestRequest::head("/hello.txt")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.header("content-length"), Some("13"));
    assert!(response.bytes().is_empty());
}

#[tokio::test]
async fn other_methods_get_405_with_allow() {
    let fixture = Fixture::new("methods");
    let response = fixture
        .client(|f| f)
        .send(TestRequest::post("/hello.txt"))
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.header("allow"), Some("GET, HEAD"));
}

#[tokio::test]
async fn matching_validators_give_304() {
    let fixture = Fixture::new("conditional");
    let client = fixture.client(|f| f);
    let first = client.get("/hello.txt").await.unwrap();
    let etag = first.header("etag").unwrap().to_owned();
    let modified = first.header("last-modified").unwrap().to_owned();
    let weak = format!("W/{etag}");
    for headers in [
        vec![("if-none-match", etag.as_str())],
        vec![("if-none-match", weak.as_str())],
        vec![("if-none-match", "\"other\", *")],
        vec![("if-modified-since", modified.as_str())],
    ] {
        let response = get_with(&client, "/hello.txt", &headers).await;
        assert_eq!(response.status(), 304, "{headers:?}");
        assert!(response.bytes().is_empty());
        assert_eq!(response.header("etag"), Some(etag.as_str()));
    }
    let changed = get_with(&client, "/hello.txt", &[("if-none-match", "\"other\"")]).await;
    assert_eq!(changed.status(), 200);
    let old = get_with(
        &client,
        "/hello.txt",
        &[("if-modified-since", "Mon, 01 Jan 2001 00:00:00 GMT")],
    )
    .await;
    assert_eq!(old.status(), 200);
}

#[tokio::test]
async fn one_range_gives_206_with_content_range() {
    let fixture = Fixture::new("range");
    let client = fixture.client(|f| f);
    for (range, body, content_range) in [
        ("bytes=0-4", "01234", "bytes 0-4/100"),
        ("bytes=95-", "56789", "bytes 95-99/100"),
        ("bytes=-3", "789", "bytes 97-99/100"),
        ("bytes=98-500", "89", "bytes 98-99/100"),
    ] {
        let response = get_with(&client, "/digits.bin", &[("range", range)]).await;
        assert_eq!(response.status(), 206, "{range}");
        assert_eq!(response.text(), body, "{range}");
        assert_eq!(response.header("content-range"), Some(content_range));
        assert_eq!(
            response.header("content-length"),
            Some(body.len().to_string().as_str())
        );
    }
}

#[tokio::test]
async fn several_ranges_give_multipart_byteranges() {
    let fixture = Fixture::new("multirange");
    let client = fixture.client(|f| f);
    let response = get_with(
        &client,
        "/digits.bin",
        &[("range", "bytes=10-12, 0-1, 11-14")],
    )
    .await;
    assert_eq!(response.status(), 206);
    let content_type = response.header("content-type").unwrap();
    let boundary = content_type
        .strip_prefix("multipart/byteranges; boundary=")
        .unwrap()
        .to_owned();
    assert_eq!(
        response.header("content-length"),
        Some(response.bytes().len().to_string().as_str())
    );
    let body = response.text();
    let expected = format!(
        "--{boundary}\r\ncontent-type: application/octet-stream\r\ncontent-range: bytes 0-1/100\r\n\r\n01\
         \r\n--{boundary}\r\ncontent-type: application/octet-stream\r\ncontent-range: bytes 10-14/100\r\n\r\n01234\
         \r\n--{boundary}--\r\n"
    );
    assert_eq!(body, expected);
}

#[tokio::test]
async fn a_range_past_the_end_gives_416() {
    let fixture = Fixture::new("416");
    let response = get_with(
        &fixture.client(|f| f),
        "/digits.bin",
        &[("range", "bytes=100-200")],
    )
    .await;
    assert_eq!(response.status(), 416);
    assert_eq!(response.header("content-range"), Some("bytes */100"));
}

#[tokio::test]
async fn malformed_ranges_and_stale_if_range_give_the_whole_file() {
    let fixture = Fixture::new("ignored-range");
    let client = fixture.client(|f| f);
    let too_many = format!(
        "bytes={}",
        (0..20)
            .map(|i| format!("{i}-{i}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    for headers in [
        vec![("range", "bytes=5-2")],
        vec![("range", "lines=1-2")],
        vec![("range", too_many.as_str())],
        vec![("range", "bytes=0-1"), ("if-range", "\"stale\"")],
    ] {
        let response = get_with(&client, "/digits.bin", &headers).await;
        assert_eq!(response.status(), 200, "{headers:?}");
        assert_eq!(response.bytes().len(), 100);
    }
    let etag = client
        .get("/digits.bin")
        .await
        .unwrap()
        .header("etag")
        .unwrap()
        .to_owned();
    let fresh = get_with(
        &client,
        "/digits.bin",
        &[("range", "bytes=0-1"), ("if-range", &etag)],
    )
    .await;
    assert_eq!(fresh.status(), 206);
}

#[tokio::test]
async fn precompressed_siblings_follow_accept_encoding() {
    let fixture = Fixture::new("precompressed");
    let client = fixture.client(|f| f);
    let br = get_with(&client, "/app.js", &[("accept-encoding", "gzip, br")]).await;
    assert_eq!(br.header("content-encoding"), Some("br"));
    assert_eq!(br.text(), "BROTLI-BYTES");
    assert!(br.header("content-type").unwrap().contains("javascript"));
    assert_eq!(br.header("vary"), Some("Accept-Encoding"));
    let gz = get_with(&client, "/app.js", &[("accept-encoding", "gzip, br;q=0")]).await;
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    assert_eq!(gz.text(), "GZIP-BYTES");
    let plain = client.get("/app.js").await.unwrap();
    assert_eq!(plain.header("content-encoding"), None);
    assert_eq!(plain.text(), "console.log('plain')");
    let off = fixture.client(|f| f.precompressed(false));
    let response = get_with(&off, "/app.js", &[("accept-encoding", "br")]).await;
    assert_eq!(response.text(), "console.log('plain')");
}

#[tokio::test]
async fn html_mode_serves_index_redirects_directories_and_uses_404_html() {
    let fixture = Fixture::new("html");
    let client = fixture.client(|f| f.html(true));
    let home = client.get("/").await.unwrap();
    assert_eq!(home.text(), "<h1>home</h1>");
    assert_eq!(
        home.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let redirect = client.get("/sub?x=1").await.unwrap();
    assert_eq!(redirect.status(), 307);
    assert_eq!(redirect.header("location"), Some("/sub/?x=1"));
    assert_eq!(client.get("/sub/").await.unwrap().text(), "<h1>sub</h1>");
    let missing = client.get("/nothing-here").await.unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.text(), "<h1>lost</h1>");
    // A directory without an index is a miss.
    assert_eq!(client.get("/bare/").await.unwrap().status(), 404);
}

#[tokio::test]
async fn without_html_mode_directories_and_misses_are_plain_404() {
    let fixture = Fixture::new("nohtml");
    let client = fixture.client(|f| f);
    for path in ["/", "/sub/", "/nothing"] {
        let response = client.get(path).await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
        assert_eq!(response.text(), "Not Found");
    }
}

async fn assert_refused(client: &TestClient, target: &str, secret: &Path) {
    assert!(secret.exists());
    let response = client.get(target).await.unwrap();
    assert_eq!(response.status(), 404, "{target}");
    assert!(!response.text().contains("top secret"), "{target}");
}

#[tokio::test]
async fn dot_dot_is_refused() {
    let fixture = Fixture::new("dotdot");
    let client = fixture.client(|f| f.html(true));
    assert_refused(&client, "/../secret.txt", &fixture.secret()).await;
    assert_refused(&client, "/sub/../../secret.txt", &fixture.secret()).await;
}

#[tokio::test]
async fn encoded_dot_dot_is_refused() {
    let fixture = Fixture::new("encoded");
    let client = fixture.client(|f| f);
    assert_refused(&client, "/%2e%2e/secret.txt", &fixture.secret()).await;
    assert_refused(&client, "/%2E%2E%2Fsecret.txt", &fixture.secret()).await;
    assert_refused(&client, "/sub/%2e%2e/%2e%2e/secret.txt", &fixture.secret()).await;
}

#[tokio::test]
async fn backslashes_are_refused() {
    let fixture = Fixture::new("backslash");
    let client = fixture.client(|f| f);
    assert_refused(&client, "/..%5csecret.txt", &fixture.secret()).await;
    assert_refused(&client, "/sub%5c..%5c..%5csecret.txt", &fixture.secret()).await;
}

#[tokio::test]
async fn nul_bytes_are_refused() {
    let fixture = Fixture::new("nul");
    let client = fixture.client(|f| f);
    assert_eq!(client.get("/hello.txt%00.png").await.unwrap().status(), 404);
    assert_refused(&client, "/..%00/secret.txt", &fixture.secret()).await;
}

#[tokio::test]
async fn absolute_paths_stay_inside_the_directory() {
    let fixture = Fixture::new("absolute");
    let client = fixture.client(|f| f);
    let absolute = format!("/{}", fixture.secret().display());
    assert_refused(&client, &absolute, &fixture.secret()).await;
    assert_refused(&client, &format!("/{absolute}"), &fixture.secret()).await;
}

#[tokio::test]
async fn symlinks_out_of_the_directory_are_refused_unless_allowed() {
    let fixture = Fixture::new("symlink");
    let client = fixture.client(|f| f);
    assert_refused(&client, "/leak.txt", &fixture.secret()).await;
    // A link that stays inside is served.
    assert_eq!(
        client.get("/alias.txt").await.unwrap().text(),
        "hello, world\n"
    );
    let allowed = fixture.client(|f| f.follow_symlinks(true));
    assert_eq!(allowed.get("/leak.txt").await.unwrap().text(), "top secret");
}

#[tokio::test]
async fn a_mount_serves_the_part_below_its_prefix() {
    let fixture = Fixture::new("mount");
    let files = StaticFiles::new(fixture.root()).unwrap();
    let client = TestClient::new(Mount::new().mount("/static", files));
    assert_eq!(
        client.get("/static/hello.txt").await.unwrap().text(),
        "hello, world\n"
    );
    assert_eq!(
        client.get("/static/../secret.txt").await.unwrap().status(),
        404
    );
}

#[tokio::test]
async fn missing_directory_fails_at_construction() {
    assert!(StaticFiles::new("/this/does/not/exist/at/all").is_err());
}

/// Over a real socket: a whole file (path send), one range and several ranges of a file
/// larger than a read chunk.
#[tokio::test]
async fn ranges_and_whole_files_over_a_socket() {
    let fixture = Fixture::new("socket");
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(fixture.root().join("big.bin"), &big).unwrap();
    let server = common::start(StaticFiles::new(fixture.root()).unwrap(), |b| b).await;
    let whole = common::fetch(server.addr, "/big.bin").await;
    assert_eq!(whole.status, 200);
    assert_eq!(whole.body.as_ref(), &big[..]);
    let ranged = |range: &'static str| {
        http::Request::get("/big.bin")
            .header("host", "test")
            .header("range", range)
            .body(common::empty())
            .unwrap()
    };
    let one = common::send(server.addr, ranged("bytes=1000-199999")).await;
    assert_eq!(one.status, 206);
    assert_eq!(one.headers["content-range"], "bytes 1000-199999/300000");
    assert_eq!(one.body.as_ref(), &big[1000..200_000]);
    let several = common::send(server.addr, ranged("bytes=0-9,299990-")).await;
    assert_eq!(several.status, 206);
    let body = &several.body;
    assert_eq!(
        several.headers["content-length"].to_str().unwrap(),
        body.len().to_string()
    );
    let text = String::from_utf8_lossy(body);
    assert!(text.contains("content-range: bytes 0-9/300000"));
    assert!(text.contains("content-range: bytes 299990-299999/300000"));
    let not_satisfiable = common::send(server.addr, ranged("bytes=300000-")).await;
    assert_eq!(not_satisfiable.status, 416);
    server.stop().await.unwrap();
}
