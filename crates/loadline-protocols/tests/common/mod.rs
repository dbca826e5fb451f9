//! What the protocol test binaries that run against this machine's services
//! share: whether a service answers (else the test is skipped with a printed
//! reason, or fails when `LOADLINE_REQUIRE_SERVICES=1`), a plan from a
//! scenario text, a run with the protocols' hooks, and a group's figures.

#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use loadline_config::{load_str_in, Overrides};
use loadline_core::metrics::{GroupStats, Stats};
use loadline_core::plan::Plan;
use loadline_core::runner::{self, Observer, RunOptions};
use loadline_protocols::registry::Registry;

/// Whether `service` answers at `addr`.
pub async fn reachable(service: &str, addr: &str) -> bool {
    let connect = tokio::net::TcpStream::connect(addr);
    if matches!(
        tokio::time::timeout(Duration::from_secs(2), connect).await,
        Ok(Ok(_))
    ) {
        return true;
    }
    let message = format!("skipped: {service} not reachable at {addr}");
    if std::env::var("LOADLINE_REQUIRE_SERVICES").as_deref() == Ok("1") {
        panic!("{message} (LOADLINE_REQUIRE_SERVICES=1)");
    }
    println!("{message}");
    false
}

/// A name prefix of this test run: `lltest`, the process id, a random
/// part and `test`, joined by `sep` (`_` for subjects, queues and topics,
/// `:` for Redis keys).
pub fn unique(test: &str, sep: char) -> String {
    format!(
        "lltest{sep}{}{sep}{:06x}{sep}{test}",
        std::process::id(),
        fastrand::u32(..0xff_ffff)
    )
}

/// The problems loading a scenario reports (empty when it loads).
pub fn load_errors(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    load_str_in(
        &Registry::builtin(),
        "bad.yaml",
        text,
        dir.path(),
        &Overrides::default(),
    )
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default()
}

/// The plan of a scenario (`PREFIX` in it replaced by `prefix`).
pub fn plan(text: &str, prefix: &str) -> Arc<Plan> {
    let text = text.replace("PREFIX", prefix);
    let dir = tempfile::tempdir().unwrap();
    match load_str_in(
        &Registry::builtin(),
        "scenario.yaml",
        &text,
        dir.path(),
        &Overrides::default(),
    ) {
        Ok(loaded) => Arc::new(loaded.plan),
        Err(e) => panic!("{e}\n{text}"),
    }
}

/// Runs a plan with its protocols' hooks; its figures.
pub async fn run_with(plan: &Arc<Plan>, opts: RunOptions, observer: Box<dyn Observer>) -> Stats {
    for p in &plan.protocols {
        p.prepare(plan).await.unwrap();
    }
    let result = runner::run(plan.clone(), opts, observer).await;
    for p in &plan.protocols {
        p.finish().await.unwrap();
    }
    result.total
}

/// The figures of the group called `name`.
pub fn group<'a>(plan: &Plan, stats: &'a Stats, name: &str) -> &'a GroupStats {
    let i = plan
        .groups
        .iter()
        .position(|g| g.name == name)
        .unwrap_or_else(|| {
            let names: Vec<_> = plan.groups.iter().map(|g| &g.name).collect();
            panic!("no group {name}: {names:?}")
        });
    &stats.groups[i]
}
