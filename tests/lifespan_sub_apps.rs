//! The lifespans of mounted apps and nested routers: a `Mount` or a `Router` runs the
//! lifespan of every sub-app that has one, in order, merges their states, and shuts them
//! down in reverse order; a failing sub-app fails the whole startup with its message.

mod common;

use std::sync::{Arc, Mutex};

use asgi::core::{
    App, Error, LifespanState, ReceiveEvent, Receiver, Scope, SendEvent, Sender, async_trait,
};
use asgi::server::Server;
use asgi::server::mount::Mount;
use asgi::server::request::Request;
use asgi::server::response::Response;
use asgi::server::router::{Router, get};
use asgi::server::test_client::TestClient;
use common::*;
use tokio::net::{TcpListener, TcpStream};

/// What the lifespans did, in order: `start NAME`, `stop NAME`.
#[derive(Clone, Default)]
struct Journal(Arc<Mutex<Vec<String>>>);

impl Journal {
    fn write(&self, line: String) {
        self.0.lock().unwrap().push(line);
    }

    fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

#[derive(Clone)]
struct Db(&'static str);

#[derive(Clone)]
struct Cache(&'static str);

/// A lifespan app that writes `start NAME` and `stop NAME` to the journal, stores what
/// `store` stores at startup, and fails startup or shutdown with a message when told to.
struct Tracked {
    name: &'static str,
    journal: Journal,
    store: fn(&LifespanState) -> Result<(), Error>,
    fail_startup: Option<&'static str>,
    fail_shutdown: Option<&'static str>,
}

fn tracked(name: &'static str, journal: &Journal) -> Tracked {
    Tracked {
        name,
        journal: journal.clone(),
        store: |_| Ok(()),
        fail_startup: None,
        fail_shutdown: None,
    }
}

impl Tracked {
    fn storing(mut self, store: fn(&LifespanState) -> Result<(), Error>) -> Self {
        self.store = store;
        self
    }

    fn failing_startup(mut self, message: &'static str) -> Self {
        self.fail_startup = Some(message);
        self
    }

    fn failing_shutdown(mut self, message: &'static str) -> Self {
        self.fail_shutdown = Some(message);
        self
    }
}

#[async_trait]
impl App for Tracked {
    async fn call(
        &self,
        scope: Scope,
        mut receive: Receiver,
        mut send: Sender,
    ) -> Result<(), Error> {
        let Scope::Lifespan(scope) = scope else {
            return Err(Error::msg("only the lifespan scope"));
        };
        loop {
            match receive.recv().await {
                ReceiveEvent::LifespanStartup => {
                    self.journal.write(format!("start {}", self.name));
                    if let Some(message) = self.fail_startup {
                        let message = message.to_owned();
                        send.send(SendEvent::LifespanStartupFailed { message })
                            .await?;
                        return Ok(());
                    }
                    (self.store)(&scope.state)?;
                    send.send(SendEvent::LifespanStartupComplete).await?;
                }
                ReceiveEvent::LifespanShutdown => {
                    self.journal.write(format!("stop {}", self.name));
                    let answer = match self.fail_shutdown {
                        Some(message) => SendEvent::LifespanShutdownFailed {
                            message: message.to_owned(),
                        },
                        None => SendEvent::LifespanShutdownComplete,
                    };
                    send.send(answer).await?;
                    return Ok(());
                }
                other => return Err(Error::msg(format!("unexpected {}", other.type_name()))),
            }
        }
    }
}

fn store_db(state: &LifespanState) -> Result<(), Error> {
    state.insert(Db("orders db")).map(drop)
}

fn store_other_db(state: &LifespanState) -> Result<(), Error> {
    state.insert(Db("another db")).map(drop)
}

fn store_cache(state: &LifespanState) -> Result<(), Error> {
    state.insert(Cache("warm")).map(drop)
}

async fn list_orders(scope: Scope, receive: Receiver, mut send: Sender) -> Result<(), Error> {
    let request = Request::from_scope(scope, receive)?;
    let db = request.state().try_get::<Db>()?;
    let cache = request.state().get::<Cache>().map_or("none", |c| c.0);
    Response::text(format!("orders from {}, cache {cache}", db.0))
        .send(&mut send)
        .await
}

/// The orders API: a router with a lifespan of its own that opens the database.
fn orders_api(journal: &Journal) -> Router {
    Router::new()
        .route("/orders", get(list_orders))
        .lifespan(tracked("orders", journal).storing(store_db))
}

fn strings(lines: &[&str]) -> Vec<String> {
    lines.iter().map(|line| (*line).to_owned()).collect()
}

#[tokio::test]
async fn state_from_a_mounted_router_reaches_its_handlers() {
    let journal = Journal::default();
    let app = Mount::new()
        .lifespan(tracked("root", &journal).storing(store_cache))
        .mount("/api", orders_api(&journal));
    let client = TestClient::with_lifespan(app).await.unwrap();
    let response = client.get("/api/orders").await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text(), "orders from orders db, cache warm");
    client.shutdown().await.unwrap();
    assert_eq!(
        journal.lines(),
        strings(&["start root", "start orders", "stop orders", "stop root"])
    );
}

#[tokio::test]
async fn sub_app_lifespans_start_in_order_and_stop_in_reverse() {
    let journal = Journal::default();
    // Mount order, not prefix length, decides: `/b` is mounted before the longer `/a/deep`.
    let nested = Router::new()
        .lifespan(tracked("fallback router", &journal))
        .fallback(Mount::new().mount("/x", tracked("nested in fallback", &journal)));
    let app = Mount::new()
        .lifespan(tracked("root", &journal))
        .mount("/b", tracked("b", &journal))
        .mount("/a/deep", tracked("a", &journal))
        .fallback(nested);
    let client = TestClient::with_lifespan(app).await.unwrap();
    assert_eq!(
        journal.lines(),
        strings(&[
            "start root",
            "start b",
            "start a",
            "start fallback router",
            "start nested in fallback",
        ])
    );
    client.shutdown().await.unwrap();
    assert_eq!(
        journal.lines()[5..],
        strings(&[
            "stop nested in fallback",
            "stop fallback router",
            "stop a",
            "stop b",
            "stop root",
        ])
    );
}

#[tokio::test]
async fn a_type_stored_by_two_sub_apps_fails_startup_naming_the_type_and_both() {
    let journal = Journal::default();
    let app = Mount::new()
        .mount("/orders", tracked("orders", &journal).storing(store_db))
        .mount("/cache", tracked("cache", &journal).storing(store_cache))
        .mount(
            "/billing",
            tracked("billing", &journal).storing(store_other_db),
        );
    let err = TestClient::with_lifespan(app).await.unwrap_err();
    let message = err.to_string();
    assert!(message.contains("lifespan_sub_apps::Db`"), "{message}");
    assert!(message.contains("mount `/orders`"), "{message}");
    assert!(message.contains("mount `/billing`"), "{message}");
    assert!(!message.contains("/cache"), "{message}");
    // The three started; the last one's state was refused, and all are shut down again.
    assert_eq!(
        journal.lines(),
        strings(&[
            "start orders",
            "start cache",
            "start billing",
            "stop billing",
            "stop cache",
            "stop orders",
        ])
    );
}

#[tokio::test]
async fn a_type_stored_by_a_router_and_its_fallback_names_both() {
    let journal = Journal::default();
    let app = Router::new()
        .lifespan(tracked("root", &journal).storing(store_db))
        .fallback(orders_api(&journal));
    let message = TestClient::with_lifespan(app)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("stored in the lifespan state by both the lifespan app and the fallback"),
        "{message}"
    );
    assert_eq!(
        journal.lines(),
        strings(&["start root", "start orders", "stop orders", "stop root"])
    );
}

#[tokio::test]
async fn failing_sub_app_fails_startup_with_its_message_and_started_ones_stop() {
    let journal = Journal::default();
    let app = Mount::new()
        .lifespan(tracked("root", &journal))
        .mount("/a", tracked("a", &journal))
        .mount(
            "/b",
            tracked("b", &journal).failing_startup("db unreachable"),
        )
        .mount("/c", tracked("c", &journal));
    let err = TestClient::with_lifespan(app).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "lifespan startup failed: mount `/b`: db unreachable"
    );
    // `c` never starts; `a` and the root stop, in reverse order, before the answer.
    assert_eq!(
        journal.lines(),
        strings(&["start root", "start a", "start b", "stop a", "stop root"])
    );
}

#[tokio::test]
async fn nested_failure_names_the_path_of_sub_apps() {
    let journal = Journal::default();
    let inner = Mount::new().mount("/v1", tracked("v1", &journal).failing_startup("no config"));
    let app = Router::new().fallback(Mount::new().mount("/api", inner));
    let err = TestClient::with_lifespan(app).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "lifespan startup failed: the fallback: mount `/api`: mount `/v1`: no config"
    );
}

#[tokio::test]
async fn sub_apps_without_lifespan_support_do_not_break_startup() {
    let journal = Journal::default();
    // One returns at once, one fails on the lifespan scope: both mean "no lifespan support".
    let returns = |_: Scope, _: Receiver, _: Sender| async { Ok::<(), Error>(()) };
    let refuses = |scope: Scope, _: Receiver, _: Sender| async move {
        match scope {
            Scope::Lifespan(_) => Err(Error::msg("this app serves HTTP only")),
            _ => Ok(()),
        }
    };
    let app = Mount::new()
        .mount("/returns", returns)
        .mount("/refuses", refuses)
        .mount("/api", orders_api(&journal));
    let client = TestClient::with_lifespan(app).await.unwrap();
    assert_eq!(
        client.get("/api/orders").await.unwrap().text(),
        "orders from orders db, cache none"
    );
    client.shutdown().await.unwrap();
    assert_eq!(journal.lines(), strings(&["start orders", "stop orders"]));
}

#[tokio::test]
async fn failing_sub_app_shutdown_is_reported_and_the_others_still_stop() {
    let journal = Journal::default();
    let app = Mount::new()
        .mount("/a", tracked("a", &journal))
        .mount(
            "/b",
            tracked("b", &journal).failing_shutdown("flush failed"),
        )
        .mount("/c", tracked("c", &journal));
    let client = TestClient::with_lifespan(app).await.unwrap();
    let message = client.shutdown().await.unwrap_err().to_string();
    assert!(message.contains("mount `/b`: flush failed"), "{message}");
    assert_eq!(
        message.matches("lifespan shutdown failed").count(),
        1,
        "said once: {message}"
    );
    assert_eq!(
        journal.lines()[3..],
        strings(&["stop c", "stop b", "stop a"])
    );
}

#[tokio::test]
async fn server_shares_the_state_of_a_mounted_router_and_stops_sub_apps_in_reverse() {
    let journal = Journal::default();
    let app = Mount::new()
        .lifespan(tracked("root", &journal).storing(store_cache))
        .mount("/api", orders_api(&journal));
    let server = start(app, |b| b).await;
    let answer = fetch(server.addr, "/api/orders").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.text(), "orders from orders db, cache warm");
    server.stop().await.unwrap();
    assert_eq!(
        journal.lines(),
        strings(&["start root", "start orders", "stop orders", "stop root"])
    );
}

#[tokio::test]
async fn server_startup_fails_with_the_sub_app_message_and_nothing_listens() {
    let journal = Journal::default();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Mount::new().mount("/api", orders_api(&journal)).mount(
        "/jobs",
        tracked("jobs", &journal).failing_startup("queue unreachable"),
    );
    let server = Server::builder()
        .listener(listener)
        .handle_signals(false)
        .build(app);
    let handle = server.handle();
    let err = tokio::time::timeout(PATIENCE, server.serve())
        .await
        .unwrap()
        .unwrap_err();
    assert!(err.is_startup_failed(), "{err}");
    assert_eq!(
        err.startup_message(),
        Some("mount `/jobs`: queue unreachable")
    );
    assert_eq!(handle.listening().await, None);
    assert!(TcpStream::connect(addr).await.is_err(), "something listens");
    assert_eq!(
        journal.lines(),
        strings(&["start orders", "start jobs", "stop orders"])
    );
}
