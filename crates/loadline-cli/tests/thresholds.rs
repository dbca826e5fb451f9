//! SLA thresholds decide the exit code: 0 passed, 3 failed, 4 aborted.

use crate::util::*;

fn scenario(srv: &TestServer, thresholds: &str, phase: &str) -> Scenario {
    Scenario::new(&format!(
        r#"
target: {}
phases:
{phase}
thresholds:
{thresholds}
flows:
  - steps:
      - get: /hello
        name: hello
      - get: /status/503
        name: unavailable
"#,
        srv.url()
    ))
}

#[test]
fn passing_thresholds_exit_0_and_failing_ones_exit_3() {
    let srv = TestServer::start();
    let phase = "  - vus: 2\n    iterations: 20";
    let ok = scenario(
        &srv,
        "  latency: [\"p95 < 5s\"]\n  \"errors{step:hello}\": [\"rate < 1%\"]\n  iterations: [\"count == 20\"]",
        phase,
    );
    let (out, s) = run_scenario(&ok, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = s.unwrap();
    assert_eq!(s["status"], "passed");
    assert_eq!(s["thresholds"].as_array().unwrap().len(), 3);
    assert!(s["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["passed"] == true));

    let bad = scenario(
        &srv,
        "  errors: [\"rate < 1%\"]\n  latency: [\"p99 < 5s\"]",
        phase,
    );
    let (out, s) = run_scenario(&bad, &[]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let s = s.unwrap();
    assert_eq!(s["status"], "failed");
    let errors = &s["thresholds"][0];
    assert_eq!(errors["metric"], "errors");
    assert_eq!(errors["expr"], "rate < 1%");
    assert_eq!(errors["value"], 0.5);
    assert_eq!(errors["passed"], false);
    assert_eq!(s["thresholds"][1]["passed"], true);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("FAIL errors"), "{stdout}");
}

#[test]
fn abort_on_fail_stops_the_run_early_with_exit_4() {
    let srv = TestServer::start();
    let sc = scenario(
        &srv,
        "  errors:\n    - { expr: \"rate < 10%\", abort_on_fail: true, delay: 1s }",
        "  - vus: 2\n    duration: 60s",
    );
    let (out, s) = run_scenario(&sc, &[]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let s = s.unwrap();
    assert_eq!(s["status"], "aborted");
    assert!(s["duration_s"].as_f64().unwrap() < 20.0, "{s:#}");
    assert_eq!(s["requests"]["total"], srv.seen().total());
}
