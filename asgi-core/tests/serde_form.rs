//! The serde form of scopes and events is exactly the ASGI dict form.

use asgi_core::http::{HeaderMap, HeaderValue, Method, StatusCode};
use asgi_core::{
    HttpScope, HttpVersion, LifespanScope, ReceiveEvent, Scope, SendEvent, ServerAddr,
    WebSocketMessage, WebSocketScope, extensions,
};
use bytes::Bytes;
use serde_json::{Value, json};

fn roundtrip_send(event: SendEvent) {
    let value = serde_json::to_value(&event).unwrap();
    let back: SendEvent = serde_json::from_value(value.clone()).unwrap();
    assert_eq!(back, event, "round trip of {value}");
}

fn roundtrip_receive(event: ReceiveEvent) {
    let value = serde_json::to_value(&event).unwrap();
    let back: ReceiveEvent = serde_json::from_value(value.clone()).unwrap();
    assert_eq!(back, event, "round trip of {value}");
}

fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (n, v) in pairs {
        map.append(*n, HeaderValue::from_static(v));
    }
    map
}

#[test]
fn response_start_serializes_as_spec_dict() {
    let event = SendEvent::HttpResponseStart {
        status: StatusCode::OK,
        headers: headers(&[
            ("content-type", "text/plain"),
            ("set-cookie", "a=1"),
            ("set-cookie", "b=2"),
        ]),
        trailers: false,
    };
    assert_eq!(
        serde_json::to_value(&event).unwrap(),
        json!({
            "type": "http.response.start",
            "status": 200,
            "headers": [["content-type", "text/plain"], ["set-cookie", "a=1"], ["set-cookie", "b=2"]],
            "trailers": false
        })
    );
}

#[test]
fn spec_dicts_deserialize_with_defaults() {
    // Optional keys left out take the spec's defaults.
    let start: SendEvent =
        serde_json::from_value(json!({"type": "http.response.start", "status": 404})).unwrap();
    assert_eq!(
        start,
        SendEvent::HttpResponseStart {
            status: StatusCode::NOT_FOUND,
            headers: HeaderMap::new(),
            trailers: false
        }
    );
    let body: SendEvent = serde_json::from_value(json!({"type": "http.response.body"})).unwrap();
    assert_eq!(body, SendEvent::response_body(Bytes::new(), false));
    let request: ReceiveEvent = serde_json::from_value(json!({"type": "http.request"})).unwrap();
    assert_eq!(request, ReceiveEvent::request(Bytes::new(), false));
    let close: SendEvent = serde_json::from_value(json!({"type": "websocket.close"})).unwrap();
    assert_eq!(
        close,
        SendEvent::WebSocketClose {
            code: 1000,
            reason: String::new()
        }
    );
    let close_none: SendEvent =
        serde_json::from_value(json!({"type": "websocket.close", "code": 4000, "reason": null}))
            .unwrap();
    assert_eq!(
        close_none,
        SendEvent::WebSocketClose {
            code: 4000,
            reason: String::new()
        }
    );
    let disconnect: ReceiveEvent =
        serde_json::from_value(json!({"type": "websocket.disconnect"})).unwrap();
    assert_eq!(
        disconnect,
        ReceiveEvent::WebSocketDisconnect {
            code: 1005,
            reason: String::new()
        }
    );
    let accept: SendEvent = serde_json::from_value(json!({"type": "websocket.accept"})).unwrap();
    assert_eq!(
        accept,
        SendEvent::WebSocketAccept {
            subprotocol: None,
            headers: HeaderMap::new()
        }
    );
    let failed: SendEvent =
        serde_json::from_value(json!({"type": "lifespan.startup.failed"})).unwrap();
    assert_eq!(
        failed,
        SendEvent::LifespanStartupFailed {
            message: String::new()
        }
    );
    let trailers: SendEvent =
        serde_json::from_value(json!({"type": "http.response.trailers"})).unwrap();
    assert_eq!(
        trailers,
        SendEvent::HttpResponseTrailers {
            headers: HeaderMap::new(),
            more_trailers: false
        }
    );
}

#[test]
fn bytes_are_latin1_strings_and_lists_are_accepted() {
    let event = ReceiveEvent::request(Bytes::from_static(b"caf\xe9\x00\xff"), true);
    let value = serde_json::to_value(&event).unwrap();
    assert_eq!(
        value,
        json!({"type": "http.request", "body": "caf\u{e9}\u{0}\u{ff}", "more_body": true})
    );
    let from_list: ReceiveEvent =
        serde_json::from_value(json!({"type": "http.request", "body": [104, 105]})).unwrap();
    assert_eq!(from_list, ReceiveEvent::request("hi", false));
    let not_latin1 =
        serde_json::from_value::<ReceiveEvent>(json!({"type": "http.request", "body": "\u{263a}"}));
    assert!(not_latin1.unwrap_err().to_string().contains("not latin-1"));
}

#[test]
fn websocket_messages_have_exactly_one_of_bytes_or_text() {
    assert_eq!(
        serde_json::to_value(SendEvent::text("hi")).unwrap(),
        json!({"type": "websocket.send", "bytes": null, "text": "hi"})
    );
    assert_eq!(
        serde_json::to_value(ReceiveEvent::WebSocketReceive(WebSocketMessage::Binary(
            Bytes::from_static(b"\x01")
        )))
        .unwrap(),
        json!({"type": "websocket.receive", "bytes": "\u{1}", "text": null})
    );
    let both = serde_json::from_value::<SendEvent>(
        json!({"type": "websocket.send", "bytes": "a", "text": "b"}),
    );
    assert!(both.is_err());
    let neither = serde_json::from_value::<SendEvent>(json!({"type": "websocket.send"}));
    assert!(neither.is_err());
}

#[test]
fn unknown_type_is_rejected_naming_it() {
    let err = serde_json::from_value::<SendEvent>(json!({"type": "http.response.push"}))
        .unwrap_err()
        .to_string();
    assert!(err.contains("http.response.push"), "{err}");
}

#[test]
fn every_send_event_round_trips() {
    roundtrip_send(SendEvent::HttpResponseStart {
        status: StatusCode::CREATED,
        headers: headers(&[("x-a", "1"), ("x-a", "2")]),
        trailers: true,
    });
    roundtrip_send(SendEvent::response_body(
        Bytes::from_static(b"\x00\x80\xff"),
        true,
    ));
    roundtrip_send(SendEvent::HttpResponseTrailers {
        headers: headers(&[("x-checksum", "abc")]),
        more_trailers: true,
    });
    roundtrip_send(SendEvent::HttpResponsePathsend {
        path: "/tmp/file.txt".into(),
    });
    roundtrip_send(SendEvent::WebSocketAccept {
        subprotocol: Some("chat".into()),
        headers: headers(&[("x-ws", "yes")]),
    });
    roundtrip_send(SendEvent::text("hello"));
    roundtrip_send(SendEvent::binary(Bytes::from_static(b"\x00\x01")));
    roundtrip_send(SendEvent::WebSocketClose {
        code: 4001,
        reason: "bye".into(),
    });
    roundtrip_send(SendEvent::WebSocketHttpResponseStart {
        status: StatusCode::UNAUTHORIZED,
        headers: headers(&[("content-type", "text/plain")]),
    });
    roundtrip_send(SendEvent::WebSocketHttpResponseBody {
        body: Bytes::from_static(b"denied"),
        more_body: false,
    });
    roundtrip_send(SendEvent::LifespanStartupComplete);
    roundtrip_send(SendEvent::LifespanStartupFailed {
        message: "no db".into(),
    });
    roundtrip_send(SendEvent::LifespanShutdownComplete);
    roundtrip_send(SendEvent::LifespanShutdownFailed {
        message: "stuck".into(),
    });
}

#[test]
fn every_receive_event_round_trips() {
    roundtrip_receive(ReceiveEvent::request("body", true));
    roundtrip_receive(ReceiveEvent::HttpDisconnect);
    roundtrip_receive(ReceiveEvent::WebSocketConnect);
    roundtrip_receive(ReceiveEvent::WebSocketReceive("t".into()));
    roundtrip_receive(ReceiveEvent::WebSocketReceive(WebSocketMessage::Binary(
        Bytes::from_static(b"b"),
    )));
    roundtrip_receive(ReceiveEvent::WebSocketDisconnect {
        code: 1001,
        reason: "going away".into(),
    });
    roundtrip_receive(ReceiveEvent::LifespanStartup);
    roundtrip_receive(ReceiveEvent::LifespanShutdown);
}

fn sample_http_scope() -> HttpScope {
    let mut scope = HttpScope::new(Method::POST, "/caf\u{e9} x");
    scope.http_version = HttpVersion::Http2;
    scope.raw_path = Bytes::from_static(b"/caf%C3%A9%20x");
    scope.query_string = Bytes::from_static(b"a=1&b=%20");
    scope.root_path = "/mount".into();
    scope.headers = headers(&[("host", "example.com"), ("accept", "a"), ("accept", "b")]);
    scope.client = Some("127.0.0.1:5000".parse().unwrap());
    scope.server = Some(ServerAddr::Tcp("[::1]:8000".parse().unwrap()));
    scope.extensions = asgi_core::Extensions::with_supported([extensions::HTTP_RESPONSE_TRAILERS]);
    scope
}

#[test]
fn http_scope_serializes_as_spec_dict() {
    let value = serde_json::to_value(Scope::from(sample_http_scope())).unwrap();
    assert_eq!(
        value,
        json!({
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.5"},
            "http_version": "2",
            "method": "POST",
            "scheme": "http",
            "path": "/caf\u{e9} x",
            "raw_path": "/caf%C3%A9%20x",
            "query_string": "a=1&b=%20",
            "root_path": "/mount",
            "headers": [["host", "example.com"], ["accept", "a"], ["accept", "b"]],
            "client": ["127.0.0.1", 5000],
            "server": ["::1", 8000],
            "extensions": {"http.response.trailers": {}}
        })
    );
}

#[test]
fn scopes_round_trip() {
    let value = serde_json::to_value(Scope::from(sample_http_scope())).unwrap();
    let back: Scope = serde_json::from_value(value.clone()).unwrap();
    assert_eq!(serde_json::to_value(&back).unwrap(), value);

    let mut ws = WebSocketScope::new("/ws");
    ws.subprotocols = vec!["chat".into(), "superchat".into()];
    ws.server = Some(ServerAddr::Unix("/run/app.sock".into()));
    let value = serde_json::to_value(Scope::from(ws)).unwrap();
    assert_eq!(value["type"], "websocket");
    assert_eq!(value["scheme"], "ws");
    assert_eq!(value["subprotocols"], json!(["chat", "superchat"]));
    assert_eq!(value["server"], json!(["/run/app.sock", null]));
    let back: Scope = serde_json::from_value(value.clone()).unwrap();
    assert_eq!(serde_json::to_value(&back).unwrap(), value);

    let value = serde_json::to_value(Scope::Lifespan(LifespanScope::default())).unwrap();
    assert_eq!(
        value,
        json!({"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}})
    );
    let back: Scope = serde_json::from_value(value).unwrap();
    assert!(matches!(back, Scope::Lifespan(_)));
}

#[test]
fn minimal_scope_dict_takes_spec_defaults() {
    let scope: Scope = serde_json::from_value(json!({
        "type": "http", "method": "GET", "path": "/"
    }))
    .unwrap();
    let Scope::Http(http) = scope else {
        panic!("not http")
    };
    assert_eq!(http.http_version, HttpVersion::Http11);
    assert_eq!(http.scheme, "http");
    assert_eq!(http.root_path, "");
    assert!(http.headers.is_empty());
    assert_eq!(http.client, None);
    let value: Value = serde_json::to_value(Scope::from(http)).unwrap();
    assert_eq!(value["client"], Value::Null);
}
