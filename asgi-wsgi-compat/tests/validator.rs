//! `Validator`: each rule of PEP 3333 it checks, reported as a `ValidationError` naming the
//! rule, and as a logged 500 under a host.

mod common;

use asgi_core::host::testing;
use asgi_core::{ReceiveEvent, Scope};
use asgi_wsgi_compat::testbed::{simple_app, testbed};
use asgi_wsgi_compat::validate::Rule;
use asgi_wsgi_compat::{
    Body, BoxError, Environ, StartResponse, ValidationError, Validator, Value, Writer, WsgiApp,
    WsgiError, WsgiToAsgi,
};
use bytes::Bytes;
use common::{Logs, scope};
use http::header::HeaderValue;
use http::{Method, StatusCode};

fn accept_all() -> StartResponse {
    StartResponse::from_fn(|_, _, _| Ok(Writer::from_fn(|_| Ok(()))))
}

/// Calls `app` under a validator and reads its whole body; the first error, if any.
fn run(app: impl WsgiApp, environ: Environ) -> Result<Vec<u8>, BoxError> {
    let mut body = Validator::new(app).call(environ, accept_all())?;
    let mut bytes = Vec::new();
    for chunk in &mut body {
        bytes.extend_from_slice(&chunk?);
    }
    body.close();
    Ok(bytes)
}

fn rule_of(result: Result<Vec<u8>, BoxError>) -> Rule {
    let err = result.expect_err("the validator must report a violation");
    match err.downcast_ref::<ValidationError>() {
        Some(violation) => violation.rule(),
        None => panic!("not a ValidationError: {err}"),
    }
}

fn ok_app(_: Environ, start_response: StartResponse) -> Result<Body, BoxError> {
    start_response.call("200 OK", [("Content-Type", "text/plain")], None)?;
    Ok(Body::from("fine"))
}

fn request() -> Environ {
    Environ::for_request("GET", "/")
}

#[test]
fn valid_app_and_environ_pass() {
    assert_eq!(run(ok_app, request()).unwrap(), b"fine");
    assert_eq!(run(simple_app, request()).unwrap(), b"Hello world!\n");
}

#[test]
fn missing_environ_key_is_reported() {
    for key in [
        "REQUEST_METHOD",
        "SERVER_NAME",
        "SERVER_PORT",
        "SERVER_PROTOCOL",
        "wsgi.url_scheme",
        "wsgi.version",
        "wsgi.multithread",
        "wsgi.multiprocess",
        "wsgi.run_once",
    ] {
        let mut environ = request();
        environ.remove(key);
        assert_eq!(
            rule_of(run(ok_app, environ)),
            Rule::EnvironMissingKey,
            "{key}"
        );
    }
}

#[test]
fn environ_key_of_the_wrong_type_is_reported() {
    for (key, value) in [
        ("wsgi.multithread", Value::from("yes")),
        ("REQUEST_METHOD", Value::Bool(true)),
        ("wsgi.version", Value::from("1.0")),
        ("HTTP_X_CUSTOM", Value::Version(1, 0)),
    ] {
        let mut environ = request();
        environ.insert(key, value);
        assert_eq!(rule_of(run(ok_app, environ)), Rule::EnvironType, "{key}");
    }
}

#[test]
fn malformed_environ_value_is_reported() {
    for (key, value) in [
        ("PATH_INFO", "no-slash"),
        ("SCRIPT_NAME", "/"),
        ("SCRIPT_NAME", "app"),
        ("CONTENT_LENGTH", "-5"),
        ("SERVER_PORT", "http"),
        ("wsgi.url_scheme", "ftp"),
        ("REQUEST_METHOD", "GE T"),
        ("HTTP_CONTENT_TYPE", "text/plain"),
        ("HTTP_CONTENT_LENGTH", "3"),
    ] {
        let mut environ = request();
        environ.insert(key, value);
        assert_eq!(
            rule_of(run(ok_app, environ)),
            Rule::EnvironValue,
            "{key}={value}"
        );
    }
    let mut environ = request();
    environ.insert("PATH_INFO", "");
    assert_eq!(
        rule_of(run(ok_app, environ)),
        Rule::EnvironValue,
        "empty paths"
    );
    let mut environ = request();
    environ.insert("wsgi.version", Value::Version(2, 0));
    assert_eq!(rule_of(run(ok_app, environ)), Rule::EnvironValue, "version");
}

#[test]
fn bad_status_is_reported() {
    let app = |_: Environ, start_response: StartResponse| -> Result<Body, BoxError> {
        start_response.call("OK", [("Content-Type", "text/plain")], None)?;
        Ok(Body::empty())
    };
    assert_eq!(rule_of(run(app, request())), Rule::Status);
}

#[test]
fn status_header_is_reported() {
    let app = |_: Environ, start_response: StartResponse| -> Result<Body, BoxError> {
        start_response.call(
            "200 OK",
            [("Content-Type", "text/plain"), ("Status", "200")],
            None,
        )?;
        Ok(Body::empty())
    };
    assert_eq!(rule_of(run(app, request())), Rule::Header);
}

#[test]
fn hop_by_hop_header_is_reported() {
    let app = |_: Environ, start_response: StartResponse| -> Result<Body, BoxError> {
        start_response.call(
            "200 OK",
            [("Content-Type", "text/plain"), ("Keep-Alive", "5")],
            None,
        )?;
        Ok(Body::empty())
    };
    assert_eq!(rule_of(run(app, request())), Rule::HopByHopHeader);
}

#[test]
fn missing_content_type_is_reported_except_for_204_and_304() {
    let app = |_: Environ, start_response: StartResponse| -> Result<Body, BoxError> {
        start_response.call("200 OK", [("X-A", "1")], None)?;
        Ok(Body::empty())
    };
    assert_eq!(rule_of(run(app, request())), Rule::ContentType);
    let no_content = |_: Environ, start_response: StartResponse| -> Result<Body, BoxError> {
        start_response.call("204 No Content", [("X-A", "1")], None)?;
        Ok(Body::empty())
    };
    assert!(run(no_content, request()).is_ok());
}

#[test]
fn second_start_response_is_reported() {
    let app = |_: Environ, start_response: StartResponse| -> Result<Body, BoxError> {
        start_response.call("200 OK", [("Content-Type", "text/plain")], None)?;
        start_response.call("200 OK", [("Content-Type", "text/plain")], None)?;
        Ok(Body::empty())
    };
    assert_eq!(rule_of(run(app, request())), Rule::StartResponseTwice);
}

#[test]
fn second_start_response_with_exc_info_is_allowed() {
    let app = |_: Environ, start_response: StartResponse| -> Result<Body, BoxError> {
        start_response.call("200 OK", [("Content-Type", "text/plain")], None)?;
        start_response.call(
            "500 Internal Server Error",
            [("Content-Type", "text/plain")],
            Some("render failed".into()),
        )?;
        Ok(Body::from("error page"))
    };
    assert_eq!(run(app, request()).unwrap(), b"error page");
}

#[test]
fn reraised_exc_info_passes_through_unchanged() {
    #[derive(Debug)]
    struct Original;
    impl std::fmt::Display for Original {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("original failure")
        }
    }
    impl std::error::Error for Original {}

    let refuse_late = StartResponse::from_fn(|_, _, exc_info| match exc_info {
        Some(exc) => Err(WsgiError::Reraised(exc)),
        None => Ok(Writer::from_fn(|_| Ok(()))),
    });
    let app = |_: Environ, start_response: StartResponse| -> Result<Body, BoxError> {
        start_response.call("200 OK", [("Content-Type", "text/plain")], None)?;
        start_response.call(
            "500 Internal Server Error",
            [("Content-Type", "text/plain")],
            Some(Box::new(Original)),
        )?;
        Ok(Body::empty())
    };
    let err = Validator::new(app)
        .call(request(), refuse_late)
        .unwrap_err();
    assert!(err.downcast_ref::<Original>().is_some(), "{err}");
}

#[test]
fn body_data_before_start_response_is_reported() {
    let app = |_: Environ, _: StartResponse| -> Result<Body, BoxError> { Ok(Body::from("early")) };
    assert_eq!(rule_of(run(app, request())), Rule::StartResponseMissing);
}

#[test]
fn response_without_start_response_is_reported() {
    let app = |_: Environ, _: StartResponse| -> Result<Body, BoxError> { Ok(Body::empty()) };
    assert_eq!(rule_of(run(app, request())), Rule::StartResponseMissing);
}

#[test]
fn start_response_from_the_iterator_is_allowed() {
    let app = |_: Environ, start_response: StartResponse| -> Result<Body, BoxError> {
        Ok(Body::try_from_chunks(std::iter::once_with(move || {
            start_response.call("200 OK", [("Content-Type", "text/plain")], None)?;
            Ok::<_, BoxError>("lazy")
        })))
    };
    assert_eq!(run(app, request()).unwrap(), b"lazy");
}

#[test]
fn response_short_of_content_length_is_reported() {
    let app = |_: Environ, start_response: StartResponse| -> Result<Body, BoxError> {
        let write = start_response.call(
            "200 OK",
            [("Content-Type", "text/plain"), ("Content-Length", "10")],
            None,
        )?;
        write.write("12345")?;
        Ok(Body::from("678"))
    };
    assert_eq!(rule_of(run(app, request())), Rule::ContentLength);
}

#[test]
fn write_and_iterator_count_toward_content_length() {
    let app = |_: Environ, start_response: StartResponse| -> Result<Body, BoxError> {
        let write = start_response.call(
            "200 OK",
            [("Content-Type", "text/plain"), ("Content-Length", "8")],
            None,
        )?;
        write.write(Bytes::from_static(b"1234"))?;
        Ok(Body::from("5678"))
    };
    assert_eq!(run(app, request()).unwrap(), b"5678");
}

#[test]
fn body_dropped_without_close_is_logged() {
    let logs = Logs::default();
    let _guard = logs.capture();
    let body = Validator::new(ok_app)
        .call(request(), accept_all())
        .unwrap();
    drop(body);
    let text = logs.text();
    assert!(text.contains("ERROR"), "{text}");
    assert!(text.contains("PEP 3333 violation (body.close)"), "{text}");

    let logs = Logs::default();
    let _guard = logs.capture();
    Validator::new(ok_app)
        .call(request(), accept_all())
        .unwrap()
        .close();
    assert!(!logs.text().contains("body.close"), "{}", logs.text());
}

#[tokio::test]
async fn violation_under_a_host_is_a_logged_500() {
    let logs = Logs::default();
    let _guard = logs.capture();
    let app = |_: Environ, start_response: StartResponse| -> Result<Body, BoxError> {
        start_response.call("200 OK", [("X-No-Type", "1")], None)?;
        Ok(Body::from("untyped"))
    };
    let host = WsgiToAsgi::new(Validator::new(app));
    let outcome = testing::call(&host, Scope::from(scope(Method::GET, "/")), []).await;
    assert_eq!(outcome.status(), Some(StatusCode::INTERNAL_SERVER_ERROR));
    let text = logs.text();
    assert!(
        text.contains("PEP 3333 violation (headers.content_type)"),
        "{text}"
    );
}

#[tokio::test]
async fn environs_from_scopes_pass_validation() {
    let host = WsgiToAsgi::new(Validator::new(testbed));
    let mut cases = Vec::new();
    let mut mounted = scope(Method::POST, "/wsgi/environ/a");
    mounted.root_path = "/wsgi".into();
    mounted
        .headers
        .insert("content-type", HeaderValue::from_static("text/plain"));
    mounted
        .headers
        .insert("content-length", HeaderValue::from_static("2"));
    cases.push(mounted);
    let mut root = scope(Method::GET, "/wsgi");
    root.root_path = "/wsgi".into();
    cases.push(root);
    let mut https = scope(Method::GET, "/hello");
    https.scheme = "https".into();
    https.client = Some("[::1]:1".parse().unwrap());
    cases.push(https);
    for case in cases {
        let path = case.path.clone();
        let outcome = testing::call(
            &host,
            Scope::from(case),
            [ReceiveEvent::request("hi", false)],
        )
        .await;
        let status = outcome.status().unwrap();
        assert_ne!(
            status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{path}: {outcome:?}"
        );
    }
}

#[tokio::test]
async fn testbed_passes_validation_on_every_route() {
    let host = WsgiToAsgi::new(Validator::new(testbed));
    for (method, path, expected) in [
        (Method::GET, "/hello", StatusCode::OK),
        (Method::POST, "/echo", StatusCode::OK),
        (Method::POST, "/upload", StatusCode::OK),
        (Method::GET, "/upload", StatusCode::METHOD_NOT_ALLOWED),
        (Method::GET, "/bytes/100000", StatusCode::OK),
        (Method::GET, "/environ/x", StatusCode::OK),
        (Method::GET, "/missing", StatusCode::NOT_FOUND),
        (Method::GET, "/echo", StatusCode::METHOD_NOT_ALLOWED),
    ] {
        let outcome = testing::call(
            &host,
            Scope::from(scope(method, path)),
            [ReceiveEvent::request("body", false)],
        )
        .await;
        assert_eq!(outcome.status(), Some(expected), "{path}");
        assert!(outcome.result.is_ok(), "{path}: {:?}", outcome.result);
    }
}
