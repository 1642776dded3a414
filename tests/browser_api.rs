//! The `api` example in a real browser: a page served from a second origin calls the API
//! with `fetch`; CORS lets it through (a preflighted, credentialed POST included), the
//! browser decodes a compressed answer, and the same page from an origin the API does not
//! allow is blocked.
//!
//! It needs Chromium and ChromeDriver (Debian's `chromium` and `chromium-driver`), so it is
//! `#[ignore]`d in a plain `cargo test`; `.ci/run` installs both and runs it with
//! `cargo test --test browser_api -- --ignored`. `CHROMEDRIVER` and `CHROMIUM` override the
//! binaries' paths.

mod browser_common;
mod common;

#[path = "../examples/api/app.rs"]
mod api;

use asgi::core::{Error, Receiver, Scope, Sender};
use asgi::server::response::Response;
use browser_common::{BROWSER_PATIENCE, Driver};
use fantoccini::{Client, Locator};

/// The page of the second origin: it calls the API named by `?api=` and writes what it saw
/// into `data-*` attributes of its body.
const PAGE: &str = r#"<!doctype html>
<html><body data-state="loading"><script>
const api = new URLSearchParams(location.search).get("api");
const mark = (key, value) => { document.body.dataset[key] = value; };
(async () => {
  try {
    const items = await (await fetch(api + "/api/items", { credentials: "include" })).json();
    mark("items", items.map((i) => i.name).join(","));
    const page = await fetch(api + "/", { credentials: "include" });
    mark("encoding", page.headers.get("content-encoding") || "none");
    mark("decoded", (await page.text()).includes("<h1>Items</h1>") ? "yes" : "no");
    const json = { "content-type": "application/json" };
    const login = await fetch(api + "/api/login", {
      method: "POST", credentials: "include", headers: json, body: JSON.stringify({ user: "chromium" }),
    });
    mark("login", String(login.status));
    const created = await fetch(api + "/api/items", {
      method: "POST", credentials: "include", headers: json, body: JSON.stringify({ name: "from the browser" }),
    });
    mark("created", String(created.status) + " " + (await created.json()).owner);
    mark("state", "done");
  } catch (e) {
    mark("error", String(e));
    mark("state", "blocked");
  }
})();
</script></body></html>"#;

async fn page(_: Scope, _: Receiver, mut send: Sender) -> Result<(), Error> {
    Response::html(PAGE).send(&mut send).await
}

async fn visit(client: &Client, url: &str) -> String {
    client.goto(url).await.expect("the page loads");
    let body = client
        .wait()
        .at_most(BROWSER_PATIENCE)
        .for_element(Locator::Css(
            "body[data-state='done'], body[data-state='blocked']",
        ))
        .await
        .expect("the page's script finishes");
    body.attr("data-state").await.unwrap().unwrap_or_default()
}

async fn data(client: &Client, key: &str) -> String {
    client
        .find(Locator::Css("body"))
        .await
        .unwrap()
        .attr(&format!("data-{key}"))
        .await
        .unwrap()
        .unwrap_or_default()
}

#[tokio::test]
#[ignore = "needs Chromium and ChromeDriver: .ci/run installs them and runs this test"]
async fn a_second_origin_calls_the_api_and_a_foreign_one_is_blocked() {
    let pages = common::start(page, |b| b).await;
    let allowed_origin = format!("http://127.0.0.1:{}", pages.addr.port());
    let secret = b"the browser test's session secret, long enough";
    let server = common::start(
        api::api(std::slice::from_ref(&allowed_origin), secret).unwrap(),
        |b| b,
    )
    .await;
    let api_base = format!("http://127.0.0.1:{}", server.addr.port());
    let driver = Driver::start().await;
    let client = driver.browser(&[]).await;

    let state = visit(&client, &format!("{allowed_origin}/?api={api_base}")).await;
    assert_eq!(state, "done", "error: {}", data(&client, "error").await);
    assert_eq!(data(&client, "items").await, "first item");
    let encoding = data(&client, "encoding").await;
    assert!(
        ["gzip", "br", "zstd"].contains(&encoding.as_str()),
        "encoding {encoding}"
    );
    assert_eq!(data(&client, "decoded").await, "yes");
    assert_eq!(data(&client, "login").await, "200");
    assert_eq!(data(&client, "created").await, "201 chromium");

    // The same page from another origin (localhost is not 127.0.0.1 to a browser).
    let foreign = format!("http://localhost:{}/?api={api_base}", pages.addr.port());
    assert_eq!(visit(&client, &foreign).await, "blocked");

    client.close().await;
    server.stop().await.expect("the API stops cleanly");
    pages.stop().await.expect("the page server stops cleanly");
}
