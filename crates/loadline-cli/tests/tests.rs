//! End-to-end tests: the real `loadline` binary against servers started by the
//! tests on 127.0.0.1. Every run is bounded in iterations or seconds.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod util;

mod bad_input;
#[cfg(feature = "demo")]
mod cache;
mod capacity;
mod command_line;
#[cfg(feature = "demo")]
mod demo;
mod docs;
mod engine;
mod logging;
mod outputs;
mod profiles;
mod scenarios;
mod secrets;
mod signals;
mod sql;
mod thresholds;
