//! Sessions: a typed map in the scope, kept in a signed cookie with the configured
//! attributes; tampered, foreign-key and expired cookies give an empty session.

use std::time::Duration;

use asgi::core::{AppExt, Error, Receiver, Scope, Sender};
use asgi::server::middleware::sessions::{SameSite, Session, SessionLayer};
use asgi::server::response::Response;
use asgi::server::test_client::{TestClient, TestRequest};

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-test";

/// `/login?user=NAME` stores the user, `/logout` clears, anything else shows the session.
async fn app(scope: Scope, _: Receiver, mut send: Sender) -> Result<(), Error> {
    let session = scope
        .extensions()
        .unwrap()
        .get::<Session>()
        .unwrap()
        .clone();
    let http = scope.as_http().unwrap();
    match http.path.as_str() {
        "/login" => {
            let user = String::from_utf8_lossy(&http.query_string).replace("user=", "");
            session.insert("user", user);
            let visits = session.get::<u32>("visits").unwrap_or(0);
            session.insert("visits", visits + 1);
        }
        "/logout" => session.clear(),
        _ => {}
    }
    let user = session
        .get::<String>("user")
        .unwrap_or_else(|| "nobody".into());
    Response::text(user).send(&mut send).await
}

fn client(layer: SessionLayer) -> TestClient {
    TestClient::new(app.with(layer))
}

/// The `name=value` part of the response's `set-cookie`.
fn cookie_pair(response: &asgi::server::test_client::TestResponse) -> String {
    response
        .header("set-cookie")
        .expect("a set-cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn the_session_survives_between_requests_in_its_cookie() {
    let client = client(SessionLayer::new(SECRET));
    let login = client.get("/login?user=ada").await.unwrap();
    assert_eq!(login.text(), "ada");
    let cookie = cookie_pair(&login);
    assert!(cookie.starts_with("session="));
    let again = client
        .send(TestRequest::get("/").header("cookie", &cookie))
        .await
        .unwrap();
    assert_eq!(again.text(), "ada");
    // Without the cookie there is no session, and no cookie is set for an empty one.
    let anonymous = client.get("/").await.unwrap();
    assert_eq!(anonymous.text(), "nobody");
    assert_eq!(anonymous.header("set-cookie"), None);
}

#[tokio::test]
async fn cookie_attributes_follow_the_settings() {
    let defaults = client(SessionLayer::new(SECRET))
        .get("/login?user=a")
        .await
        .unwrap();
    let set = defaults.header("set-cookie").unwrap();
    for part in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=1209600"] {
        assert!(set.contains(part), "{part} in {set}");
    }
    assert!(!set.contains("Secure"), "{set}");
    let custom = client(
        SessionLayer::new(SECRET)
            .cookie_name("sid")
            .path("/app")
            .domain("example.com")
            .same_site(SameSite::Strict)
            .https_only(true)
            .max_age(Some(Duration::from_secs(60))),
    )
    .get("/login?user=a")
    .await
    .unwrap();
    let set = custom.header("set-cookie").unwrap();
    assert!(set.starts_with("sid="), "{set}");
    for part in [
        "Path=/app",
        "Domain=example.com",
        "SameSite=Strict",
        "Secure",
        "Max-Age=60",
    ] {
        assert!(set.contains(part), "{part} in {set}");
    }
    let browser_session = client(SessionLayer::new(SECRET).max_age(None))
        .get("/login?user=a")
        .await
        .unwrap();
    assert!(
        !browser_session
            .header("set-cookie")
            .unwrap()
            .contains("Max-Age")
    );
}

#[tokio::test]
async fn a_tampered_cookie_gives_an_empty_session() {
    let client = client(SessionLayer::new(SECRET));
    let cookie = cookie_pair(&client.get("/login?user=ada").await.unwrap());
    // Flip one character of the payload, after the signature.
    let mut bytes = cookie.into_bytes();
    let last = bytes.len() - 2;
    bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(bytes).unwrap();
    let response = client
        .send(TestRequest::get("/").header("cookie", &tampered))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text(), "nobody");
}

#[tokio::test]
async fn a_cookie_signed_with_another_key_gives_an_empty_session() {
    let other = client(SessionLayer::new(
        b"another secret key that is long enough!!",
    ));
    let cookie = cookie_pair(&other.get("/login?user=eve").await.unwrap());
    let response = client(SessionLayer::new(SECRET))
        .send(TestRequest::get("/").header("cookie", &cookie))
        .await
        .unwrap();
    assert_eq!(response.text(), "nobody");
}

#[tokio::test]
async fn garbage_cookies_give_an_empty_session() {
    let client = client(SessionLayer::new(SECRET));
    for garbage in [
        "session=",
        "session=abc",
        "session=%%%",
        "session=\"x\"; other=1",
    ] {
        let response = client
            .send(TestRequest::get("/").header("cookie", garbage))
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{garbage}");
        assert_eq!(response.text(), "nobody", "{garbage}");
    }
}

#[tokio::test]
async fn an_expired_session_is_empty_even_if_the_browser_sends_it() {
    let client = client(SessionLayer::new(SECRET).max_age(Some(Duration::from_secs(1))));
    let cookie = cookie_pair(&client.get("/login?user=ada").await.unwrap());
    let fresh = client
        .send(TestRequest::get("/").header("cookie", &cookie))
        .await
        .unwrap();
    assert_eq!(fresh.text(), "ada");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let expired = client
        .send(TestRequest::get("/").header("cookie", &cookie))
        .await
        .unwrap();
    assert_eq!(expired.text(), "nobody");
}

#[tokio::test]
async fn clearing_the_session_expires_the_cookie() {
    let client = client(SessionLayer::new(SECRET));
    let cookie = cookie_pair(&client.get("/login?user=ada").await.unwrap());
    let logout = client
        .send(TestRequest::get("/logout").header("cookie", &cookie))
        .await
        .unwrap();
    assert_eq!(logout.text(), "nobody");
    let set = logout.header("set-cookie").unwrap();
    assert!(set.starts_with("session=;"), "{set}");
    assert!(set.contains("Max-Age=0"), "{set}");
}

#[tokio::test]
async fn typed_values_round_trip() {
    let client = client(SessionLayer::new(SECRET));
    let first = client.get("/login?user=a").await.unwrap();
    let second = client
        .send(TestRequest::get("/login?user=b").header("cookie", cookie_pair(&first)))
        .await
        .unwrap();
    // visits went 1 -> 2 through the cookie, as a number.
    let third_app = |scope: Scope, _: Receiver, mut send: Sender| async move {
        let session = scope
            .extensions()
            .unwrap()
            .get::<Session>()
            .unwrap()
            .clone();
        let visits: u32 = session.get("visits").unwrap();
        let wrong_type: Option<String> = session.get("visits");
        Response::text(format!("{visits} {wrong_type:?} {:?}", session.keys()))
            .send(&mut send)
            .await
    };
    let reader = TestClient::new(third_app.with(SessionLayer::new(SECRET)));
    let response = reader
        .send(TestRequest::get("/").header("cookie", cookie_pair(&second)))
        .await
        .unwrap();
    assert_eq!(response.text(), "2 None [\"user\", \"visits\"]");
}

#[test]
#[should_panic(expected = "at least 32 bytes")]
fn a_short_secret_is_refused() {
    let _ = SessionLayer::new(b"short");
}
