//! The README's "A small JSON service": the `json_service` example's app under the
//! `TestClient` with its lifespan, and the README's code equal to the example's.

#[path = "../examples/json_service/app.rs"]
mod json_service;

use asgi::server::test_client::{TestClient, TestRequest};
use json_service::{MAX_TODOS, TOKEN, app};

#[tokio::test]
async fn todos_are_created_listed_and_shown() {
    let client = TestClient::with_lifespan(app()).await.unwrap();
    let milk = TestRequest::post("/todos").header("authorization", TOKEN);
    let created = client
        .send(milk.body(r#"{"title": "milk"}"#))
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    assert_eq!(created.text(), r#"{"id":1,"title":"milk"}"#);
    let todos = client.get("/todos").await.unwrap();
    assert_eq!(todos.text(), r#"[{"id":1,"title":"milk"}]"#);
    assert_eq!(client.get("/todos/1").await.unwrap().text(), created.text());
    let missing = client.get("/todos/2").await.unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.text(), r#"{"error":"no todo 2"}"#);
    let anonymous = TestRequest::post("/todos").body(r#"{"title": "eggs"}"#);
    assert_eq!(client.send(anonymous).await.unwrap().status(), 401);
    client.shutdown().await.unwrap();
}

fn authorized(body: &str) -> TestRequest {
    TestRequest::post("/todos")
        .header("authorization", TOKEN)
        .body(body.to_owned())
}

#[tokio::test]
async fn bad_requests_get_json_errors() {
    let client = TestClient::with_lifespan(app()).await.unwrap();
    let cases = [
        (authorized("{"), 400, "invalid JSON in the request body"),
        (authorized(r#"{"name": "x"}"#), 422, "missing field `title`"),
        (
            TestRequest::get("/todos/x"),
            400,
            "invalid path parameter `id`",
        ),
        (TestRequest::get("/nope"), 404, "no such route"),
        (
            TestRequest::post("/todos")
                .header("authorization", "Bearer wrong")
                .body("{}"),
            401,
            "a token is needed",
        ),
    ];
    for (request, status, message) in cases {
        let response = client.send(request).await.unwrap();
        assert_eq!(response.status(), status, "{}", response.text());
        assert_eq!(response.header("content-type"), Some("application/json"));
        let body: serde_json::Value = response.json().unwrap();
        let error = body["error"].as_str().unwrap();
        assert!(error.contains(message), "{error}");
    }
    client.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_store_is_bounded() {
    let client = TestClient::with_lifespan(app()).await.unwrap();
    for _ in 0..MAX_TODOS {
        let created = client.send(authorized(r#"{"title": "t"}"#)).await.unwrap();
        assert_eq!(created.status(), 201);
    }
    let full = client.send(authorized(r#"{"title": "t"}"#)).await.unwrap();
    assert_eq!(full.status(), 507);
    client.shutdown().await.unwrap();
}

#[tokio::test]
async fn without_the_lifespan_the_missing_state_is_named() {
    // The trap the README warns about: a client (or server) that skips the lifespan.
    let client = TestClient::new(app()).raise_app_errors(true);
    let err = client.get("/todos").await.unwrap_err();
    assert!(err.to_string().contains("in the lifespan state"), "{err}");
}

/// The ```rust blocks of the README's section `heading`.
fn readme_blocks(heading: &str) -> Vec<String> {
    let readme = include_str!("../README.md");
    let start = readme.find(heading).expect("the README has the section");
    let section = &readme[start + heading.len()..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    section
        .split("```rust\n")
        .skip(1)
        .map(|block| block[..block.find("```").expect("a closed block")].to_owned())
        .collect()
}

#[test]
fn readme_quotes_the_example_and_its_test() {
    let blocks = readme_blocks("\n## A small JSON service\n");
    assert_eq!(blocks.len(), 2, "the app, then its test");
    assert_eq!(
        blocks[0],
        include_str!("../examples/json_service/app.rs"),
        "the README's app is examples/json_service/app.rs"
    );
    assert!(
        include_str!("json_service.rs").contains(&blocks[1]),
        "the README's test is in tests/json_service.rs"
    );
}
