//! demo-shop's integration tests: real shops on 127.0.0.1, driven over HTTP. Every
//! test is bounded in requests and time. The `services` tests use the PostgreSQL,
//! Redis and NATS on this machine, and skip (or fail, with
//! `LOADLINE_REQUIRE_SERVICES=1`) when one is not reachable.

mod support;

mod catalog;
mod knobs;
mod metrics;
mod orders;
mod services;
