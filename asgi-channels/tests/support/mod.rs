//! Test support shared by the layer tests.
#![allow(dead_code)]

pub mod redis_server;
pub mod semantics;
