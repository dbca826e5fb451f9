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

/// Each phase has its own results, and a threshold can select one phase (alone
/// or with a step): the phase where requests fail fails its threshold, the
/// calm one passes.
#[test]
fn phase_selected_thresholds_judge_only_their_phase() {
    let srv = TestServer::start();
    let sc = Scenario::new(&format!(
        r#"
target: {}
phases:
  - name: calm
    vus: 1
    iterations: 10
  - name: storm
    vus: 2
    iterations: 12
flows:
  - steps:
      - get: /fail-after/10
        name: flaky
thresholds:
  "errors{{phase:calm}}": ["rate < 1%"]
  "errors{{phase:storm}}": ["rate < 1%"]
  "requests{{phase:calm, step:flaky}}": ["count == 10"]
  "iterations{{phase:storm}}": ["count == 12"]
  "latency{{phase:storm}}": ["p95 < 30s"]
"#,
        srv.url()
    ));
    let (out, summary) = run_scenario(&sc, &[]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let s = summary.expect("summary written");
    let verdicts: Vec<(String, bool)> = s["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["metric"].as_str().unwrap().to_string(),
                t["passed"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        verdicts,
        [
            ("errors{phase:calm}".to_string(), true),
            ("errors{phase:storm}".to_string(), false),
            ("requests{phase:calm, step:flaky}".to_string(), true),
            ("iterations{phase:storm}".to_string(), true),
            ("latency{phase:storm}".to_string(), true),
        ]
    );
    let phases = s["phases"].as_array().unwrap();
    assert_eq!(phases[0]["requests"], 10);
    assert_eq!(phases[0]["failed"], 0);
    assert_eq!(phases[1]["requests"], 12);
    assert_eq!(phases[1]["failed"], 12);
    assert!(phases[1]["latency_ms"]["p95"].as_f64().unwrap() > 0.0);
    assert_eq!(s["requests"]["total"], srv.seen().total());

    // A phase no profile has is an error; one of another profile, a warning.
    let bad = Scenario::new(&format!(
        "target: {}\nphases: [ {{ name: calm, vus: 1, iterations: 1 }} ]\nprofiles:\n  peak: [ {{ name: spike, vus: 1, iterations: 1 }} ]\nflows: [ {{ steps: [ {{ get: /hello }} ] }} ]\nthresholds:\n  \"errors{{phase:clam}}\": [\"rate < 1%\"]\n  \"errors{{phase:spike}}\": [\"rate < 1%\"]\n",
        srv.url()
    ));
    let out = loadline().arg("validate").arg(&bad.path).output().unwrap();
    let err = text(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(":7:3: "), "{err}");
    assert!(err.contains("no phase has the name `clam`"), "{err}");
    assert!(err.contains("did you mean `calm`?"), "{err}");
    let yaml = std::fs::read_to_string(&bad.path).unwrap();
    std::fs::write(&bad.path, yaml.replace("phase:clam", "phase:calm")).unwrap();
    let out = loadline().arg("validate").arg(&bad.path).output().unwrap();
    let err = text(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("phase `spike` is in profile `peak`"), "{err}");
}

/// Thresholds on monitor series (resource SLAs): judged on the series' min,
/// mean, max, first, last or growth over the run; the series' figures are in
/// the summary; a series that was never read fails its threshold with a note.
#[test]
fn monitor_series_thresholds_judge_resources() {
    let srv = TestServer::start();
    let sc = Scenario::new(&format!(
        r#"
target: {}
phases:
  - vus: 1
    duration: 2500ms
flows:
  - steps:
      - get: /hello
      - think: 50ms
thresholds:
  "loadline.rss_bytes": ["max < 4GiB", "growth < 1GB", "min > 1kB"]
  "loadline.cpu_percent": ["max < 1kB"]
  "loadline.cores": ["last < 1"]
  "process.cpu_percent{{name=nothing-here}}": ["max < 80"]
"#,
        srv.url()
    ));
    let (out, summary) = run_scenario(&sc, &[]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let s = summary.expect("summary written");
    let verdicts: Vec<(String, String, bool)> = s["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["metric"].as_str().unwrap().to_string(),
                t["expr"].as_str().unwrap().to_string(),
                t["passed"].as_bool().unwrap(),
            )
        })
        .collect();
    let v = |m: &str, e: &str, p: bool| (m.to_string(), e.to_string(), p);
    assert_eq!(
        verdicts,
        [
            v("loadline.rss_bytes", "max < 4GiB", true),
            v("loadline.rss_bytes", "growth < 1GB", true),
            v("loadline.rss_bytes", "min > 1kB", true),
            v("loadline.cpu_percent", "max < 1kB", true),
            v("loadline.cores", "last < 1", false),
            v("process.cpu_percent{name=nothing-here}", "max < 80", false),
        ]
    );
    let rss = &s["monitors"]["loadline.rss_bytes"];
    let (min, mean, max) = (
        rss["min"].as_f64().unwrap(),
        rss["mean"].as_f64().unwrap(),
        rss["max"].as_f64().unwrap(),
    );
    assert!(min > 1e5 && min <= mean && mean <= max, "{rss}");
    let cores = s["thresholds"][4]["value"].as_f64().unwrap();
    assert!(cores >= 1.0, "{}", s["thresholds"][4]);
    assert!(
        s["notes"].to_string().contains(
            "threshold `process.cpu_percent{name=nothing-here}`: no monitor series of that name"
        ),
        "{}",
        s["notes"]
    );
}
