//! The serde form of scopes and events (the ASGI dict form, as JSON): any JSON either fails
//! to read or reads into a value whose form reads back to an equal value and the same form
//! (a round trip), without a panic or an allocation the input does not pay for.

#![no_main]

use asgi_core::{ReceiveEvent, Scope, SendEvent};
use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;

fn round_trip<T: Serialize + DeserializeOwned>(data: &[u8]) -> Option<(T, T)> {
    let value: T = serde_json::from_slice(data).ok()?;
    let form = serde_json::to_value(&value).expect("a value serializes");
    let back: T = serde_json::from_value(form.clone()).expect("its form reads back");
    assert_eq!(serde_json::to_value(&back).expect("serializes again"), form);
    // The text form reads back too.
    let text = serde_json::to_string(&value).expect("a value serializes");
    let again: T = serde_json::from_str(&text).expect("its text reads back");
    assert_eq!(
        serde_json::to_value(&again).expect("serializes again"),
        form
    );
    Some((value, back))
}

fuzz_target!(|data: &[u8]| {
    let _ = round_trip::<Scope>(data);
    if let Some((event, back)) = round_trip::<ReceiveEvent>(data) {
        assert_eq!(event, back);
    }
    if let Some((event, back)) = round_trip::<SendEvent>(data) {
        assert_eq!(event, back);
    }
});
