//! `wsgi.errors`: lines into `tracing`, line-buffered, with a bounded line length.

mod common;

use std::io::Write;

use asgi_wsgi_compat::Errors;
use common::Logs;

/// The longest line `Errors` logs in one piece, as its documentation says: 8 KiB.
const MAX_ERRORS_LINE: usize = 8 * 1024;

fn logged_lines(logs: &Logs) -> Vec<String> {
    logs.text()
        .lines()
        .filter(|l| l.contains("wsgi.errors"))
        .map(|l| {
            l.split("wsgi.errors: ")
                .nth(1)
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

#[test]
fn each_line_is_one_event() {
    let logs = Logs::default();
    let _guard = logs.capture();
    let mut errors = Errors::new();
    errors.write_all(b"first\nsec").unwrap();
    errors.write_all(b"ond\nthird").unwrap();
    assert_eq!(logged_lines(&logs), ["first", "second"]);
    errors.flush().unwrap();
    assert_eq!(logged_lines(&logs), ["first", "second", "third"]);
}

#[test]
fn partial_line_is_logged_on_drop() {
    let logs = Logs::default();
    let _guard = logs.capture();
    let mut errors = Errors::new();
    write!(errors, "no newline").unwrap();
    assert!(logged_lines(&logs).is_empty());
    drop(errors);
    assert_eq!(logged_lines(&logs), ["no newline"]);
}

#[test]
fn long_line_is_logged_in_bounded_pieces() {
    let logs = Logs::default();
    let _guard = logs.capture();
    let mut errors = Errors::new();
    let long = vec![b'a'; 2 * MAX_ERRORS_LINE + 10];
    errors.write_all(&long).unwrap();
    errors.write_all(b"\n").unwrap();
    let lines = logged_lines(&logs);
    let lengths: Vec<usize> = lines.iter().map(String::len).collect();
    assert_eq!(lengths, [MAX_ERRORS_LINE, MAX_ERRORS_LINE, 10]);
}

#[test]
fn bytes_that_are_not_utf8_are_replaced() {
    let logs = Logs::default();
    let _guard = logs.capture();
    let mut errors = Errors::new();
    errors.write_all(b"bad \xff byte\n").unwrap();
    assert_eq!(logged_lines(&logs), ["bad \u{fffd} byte"]);
}
