//! The README's "Where things are" tables name the public surface by path. Each path is
//! imported here, so a path that moves or disappears fails the build; and a test checks that
//! every `asgi::...` path of that README section is one of these imports, so that the two
//! cannot drift apart.

// The imports exist to be resolved, not used; the deprecated `asgi::http` is named on purpose,
// since the README tells of it.
#![allow(deprecated, unused_imports)]

// Every path of the README's "Where things are" section.
use asgi::channels as _;
use asgi::channels::ChannelLayer as _;
use asgi::channels::GroupMember as _;
use asgi::channels::InMemoryChannelLayer as _;
use asgi::channels::RedisChannelLayer as _;
use asgi::core as _;
use asgi::core::app as _;
use asgi::core::error as _;
use asgi::core::event as _;
use asgi::core::extensions as _;
use asgi::core::guide as _;
use asgi::core::handle as _;
use asgi::core::host as _;
use asgi::core::host::Shutdown as _;
use asgi::core::host::channel as _;
use asgi::core::host::lifespan as _;
use asgi::core::host::testing as _;
use asgi::core::http as _;
use asgi::core::layer as _;
use asgi::core::scope as _;
use asgi::core::shutdown as _;
use asgi::core::state as _;
use asgi::http as _;
use asgi::prelude as _;
use asgi::server as _;
use asgi::server::Server as _;
use asgi::server::file as _;
use asgi::server::handler::HttpError as _;
use asgi::server::handler::handler as _;
use asgi::server::logging::init as _;
use asgi::server::middleware as _;
use asgi::server::middleware::body_limit as _;
use asgi::server::middleware::compression as _;
use asgi::server::middleware::concurrency_limit as _;
use asgi::server::middleware::cors as _;
use asgi::server::middleware::https_redirect as _;
use asgi::server::middleware::proxy_headers as _;
use asgi::server::middleware::request_id as _;
use asgi::server::middleware::sessions as _;
use asgi::server::middleware::static_files as _;
use asgi::server::middleware::timeout as _;
use asgi::server::middleware::trusted_host as _;
use asgi::server::mount::Mount as _;
use asgi::server::path as _;
use asgi::server::request::Request as _;
use asgi::server::response::Response as _;
use asgi::server::router::Router as _;
use asgi::server::router::get as _;
use asgi::server::scope as _;
use asgi::server::serve as _;
use asgi::server::server as _;
use asgi::server::server::Builder as _;
use asgi::server::server::InheritedListener as _;
use asgi::server::server::Listener as _;
use asgi::server::server::TlsConfig as _;
use asgi::server::test_client as _;
use asgi::server::test_client::TestClient as _;
use asgi::server::test_client::WebSocketSession as _;
use asgi::tower as _;
use asgi::tower::AsgiService as _;
use asgi::tower::TowerApp as _;
use asgi::ws as _;
use asgi::ws::Message as _;
use asgi::ws::WebSocket as _;
use asgi::ws::WebSocketConfig as _;
use asgi::ws::close as _;
use asgi::ws::deflate as _;
use asgi::ws::handshake as _;
use asgi::wsgi as _;
use asgi::wsgi::AsgiToWsgi as _;
use asgi::wsgi::Environ as _;
use asgi::wsgi::StartResponse as _;
use asgi::wsgi::Validator as _;
use asgi::wsgi::WsgiApp as _;
use asgi::wsgi::WsgiToAsgi as _;

// The prelude's names that the section lists in prose.
use asgi::prelude::{
    App, AppExt, Error, HeaderMap, HeaderValue, HttpError, IntoResponse, Layer, Method, Next,
    ReceiveEvent, Receiver, Request, Response, Router, Scope, SendError, SendEvent, Sender,
    StatusCode, WebSocketMessage, from_fn, handler,
};

/// The README's section that starts with `heading`, up to the next `## ` heading.
fn readme_section(heading: &str) -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let start = readme
        .find(heading)
        .unwrap_or_else(|| panic!("the README has no {heading:?} section"));
    let rest = &readme[start + heading.len()..];
    let end = rest.find("\n## ").unwrap_or(rest.len());
    rest[..end].to_owned()
}

/// The code spans of `text` that are `asgi::` paths.
fn asgi_paths(text: &str) -> Vec<&str> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|span| {
            span.starts_with("asgi::")
                && span
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        })
        .collect()
}

#[test]
fn every_path_in_the_readme_surface_tables_is_imported_here() {
    let section = readme_section("## Where things are");
    let paths = asgi_paths(&section);
    assert!(paths.len() > 50, "the tables name {} paths", paths.len());
    let this_file = include_str!("readme_surface.rs");
    let missing: Vec<&str> = paths
        .into_iter()
        .filter(|path| !this_file.contains(&format!("use {path} as _;")))
        .collect();
    assert!(
        missing.is_empty(),
        "README paths not imported in tests/readme_surface.rs: {missing:?}"
    );
}
