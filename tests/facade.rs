//! The facade's names: the prelude is enough for a handler, and the server crate has one
//! unmistakable name, with the old one kept as a deprecated alias.

use std::any::TypeId;

use asgi::prelude::*;
use asgi::server::router::get;
use asgi::server::test_client::{TestClient, TestRequest};

async fn greet(scope: Scope, receive: Receiver, mut send: Sender) -> Result<(), Error> {
    let request = Request::from_scope(scope, receive)?;
    let mut extra = HeaderMap::new();
    extra.insert(
        "x-method",
        HeaderValue::from_str(request.method().as_str()).map_err(Error::new)?,
    );
    let status = if request.method() == Method::GET {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    let mut response = Response::text("hello from the prelude").status(status);
    response.headers_mut().extend(extra);
    response.send(&mut send).await
}

#[tokio::test]
async fn prelude_alone_writes_a_handler_with_status_headers_and_method() {
    let client = TestClient::new(Router::new().route("/", get(greet).post(greet)));

    let response = client.get("/").await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.header("x-method"), Some("GET"));
    assert_eq!(response.text(), "hello from the prelude");

    let response = client.send(TestRequest::post("/")).await.unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(response.header("x-method"), Some("POST"));
}

#[test]
#[allow(deprecated)]
fn old_http_path_names_the_same_items_as_server() {
    assert_eq!(
        TypeId::of::<asgi::http::response::Response>(),
        TypeId::of::<asgi::server::response::Response>()
    );
    assert_eq!(
        TypeId::of::<asgi::http::Server>(),
        TypeId::of::<asgi::server::Server>()
    );
}
