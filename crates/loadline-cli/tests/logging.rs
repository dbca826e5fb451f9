//! `LOADLINE_LOG=debug` (and `trace`) tell the run's lifecycle on stderr: the
//! protocols prepared and finished (SQL: connect, setup, teardown), the monitors
//! started, each phase's start and end, the graceful stop — never a line per
//! request.

use crate::util::*;

fn logged_run(level: &str) -> (String, u64) {
    let srv = TestServer::start();
    let sc = Scenario::new(&format!(
        r#"
target: {}
databases:
  lite: {{ url: "sqlite://lite.db" }}
setup:
  - {{ sql: lite, query: "CREATE TABLE IF NOT EXISTS t (n INTEGER)" }}
teardown:
  - {{ sql: lite, query: "DROP TABLE t" }}
monitor: {{ interval: 200ms, host: false, target_process: false }}
phases:
  - {{ name: first, vus: 2, iterations: 20 }}
  - {{ name: second, vus: 2, iterations: 20 }}
flows:
  - steps:
      - get: /hello
      - {{ sql: lite, name: insert, query: "INSERT INTO t (n) VALUES (1)" }}
"#,
        srv.url()
    ));
    let out = loadline()
        .env("LOADLINE_LOG", level)
        .arg("run")
        .arg(&sc.path)
        .arg("--quiet")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let requests = srv.seen().count("GET /hello");
    (String::from_utf8_lossy(&out.stderr).into_owned(), requests)
}

#[test]
fn debug_logs_the_lifecycle_of_a_run() {
    for level in ["debug", "trace"] {
        let (stderr, requests) = logged_run(level);
        assert_eq!(requests, 40);
        for event in [
            "preparing the protocol",
            "connecting to the database",
            "connected to the database",
            "sql: setup",
            "statements run",
            "preparing the steps' statements",
            "the protocol is ready",
            "monitor started: loadline itself",
            "run started",
            "phase started phase=first",
            "phase ended phase=first",
            "phase started phase=second",
            "phase ended phase=second",
            "graceful stop: no new iterations",
            "graceful stop over",
            "run ended",
            "finishing the protocol",
            "sql: teardown",
        ] {
            assert!(stderr.contains(event), "{level}: no `{event}` in\n{stderr}");
        }
        // Lifecycle events, not one per request or statement.
        let inserts = stderr.lines().filter(|l| l.contains("INSERT INTO")).count();
        assert_eq!(inserts, 0, "{stderr}");
    }
}

#[test]
fn the_default_level_is_quiet() {
    let srv = TestServer::start();
    let sc = Scenario::new(&format!(
        "target: {}\nphases: [ {{ vus: 1, iterations: 5 }} ]\nflows: [ {{ steps: [ {{ get: /hello }} ] }} ]\n",
        srv.url()
    ));
    let (out, _) = run_scenario(&sc, &["--no-monitor"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("phase started"), "{stderr}");
}
