//! Concurrent scenarios: a `scenarios:` file runs each scenario's phases and
//! flows at once, each at its own rate; results come per scenario, and a
//! `{scenario:…}` threshold judges only that scenario's requests.

use crate::util::*;

/// Iterations within ±2% + 1 of `rate`×`secs`.
fn near(n: u64, rate: f64, secs: f64) -> bool {
    let want = rate * secs;
    (n as f64 - want).abs() <= want * 0.02 + 1.0
}

#[test]
fn two_concurrent_scenarios_keep_their_own_rates() {
    let srv = TestServer::start();
    let sc = Scenario::new(&format!(
        r#"
target: {}
scenarios:
  browse:
    phases: [ {{ name: steady, duration: 3s, arrival_rate: 20 }} ]
    flows: [ {{ steps: [ {{ get: /hello, name: hello }} ] }} ]
  buy:
    phases: [ {{ name: steady, duration: 3s, arrival_rate: 5 }} ]
    flows: [ {{ steps: [ {{ get: /products, name: products }} ] }} ]
"#,
        srv.url()
    ));
    let (out, s) = run_scenario(&sc, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = s.unwrap();
    let scenarios = s["scenarios"].as_array().unwrap();
    let names: Vec<&str> = scenarios
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["browse", "buy"]);
    let its = |i: usize| scenarios[i]["iterations"].as_u64().unwrap();
    assert!(near(its(0), 20.0, 3.0), "browse: {:#}", scenarios[0]);
    assert!(near(its(1), 5.0, 3.0), "buy: {:#}", scenarios[1]);
    // Each scenario ran only its own flow, and the server saw what loadline counted.
    let seen = srv.seen();
    assert_eq!(seen.count("GET /hello"), its(0));
    assert_eq!(seen.count("GET /products"), its(1));
    assert_eq!(scenarios[0]["requests"].as_u64(), Some(its(0)));
    assert_eq!(scenarios[1]["requests"].as_u64(), Some(its(1)));
    assert_eq!(s["requests"]["total"].as_u64(), Some(seen.total()));
    // Both phases are named `steady`: the phases table tells them apart.
    let phases = s["phases"].as_array().unwrap();
    assert_eq!(phases[0]["scenario"], "browse");
    assert_eq!(phases[1]["scenario"], "buy");
    // Both ran at once: the run lasted one scenario's time, not two.
    assert!(
        s["duration_s"].as_f64().unwrap() < 5.0,
        "{:#}",
        s["duration_s"]
    );
}

#[test]
fn a_scenario_threshold_judges_only_that_scenarios_requests() {
    let srv = TestServer::start();
    let sc = Scenario::new(&format!(
        r#"
target: {}
scenarios:
  browse:
    phases: [ {{ duration: 1s, arrival_rate: 10 }} ]
    flows: [ {{ steps: [ {{ get: /hello }} ] }} ]
  buy:
    start_after: 200ms
    phases: [ {{ name: spike, duration: 1s, arrival_rate: 5 }} ]
    flows: [ {{ steps: [ {{ get: /status/500 }} ] }} ]
thresholds:
  "errors{{scenario:browse}}": ["rate < 1%"]
  "errors{{scenario:buy}}": ["rate < 1%"]
  "requests{{scenario:buy, phase:spike}}": ["count == 5"]
  "iterations{{scenario:browse}}": ["count == 10"]
"#,
        srv.url()
    ));
    let (out, s) = run_scenario(&sc, &[]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let s = s.unwrap();
    let t = s["thresholds"].as_array().unwrap();
    let verdict = |i: usize| (t[i]["passed"].as_bool().unwrap(), t[i]["value"].as_f64());
    assert_eq!(verdict(0), (true, Some(0.0)), "{:#}", s["thresholds"]);
    assert_eq!(verdict(1), (false, Some(1.0)), "{:#}", s["thresholds"]);
    assert_eq!(verdict(2), (true, Some(5.0)), "{:#}", s["thresholds"]);
    assert_eq!(verdict(3), (true, Some(10.0)), "{:#}", s["thresholds"]);
    assert_eq!(srv.seen().count("GET /status/500"), 5);
}

#[test]
fn scenarios_refuse_what_would_replace_their_phases() {
    let sc = Scenario::new(
        r#"
target: http://127.0.0.1:9
phases: [ { duration: 1s, vus: 1 } ]
scenarios:
  browse:
    phases: [ { duration: 1s, arrival_rate: 5 } ]
    flows: [ { steps: [ { get: / } ] } ]
"#,
    );
    let (out, s) = run_scenario(&sc, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(s.is_none());
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        err.contains("scenario.yaml:3:")
            && err.contains("top-level `phases` cannot be used with `scenarios:`"),
        "{err}"
    );
    let ok = Scenario::new(
        r#"
target: http://127.0.0.1:9
thresholds: { latency: ["p95 < 1s"] }
scenarios:
  browse:
    phases: [ { duration: 1s, arrival_rate: 5 } ]
    flows: [ { steps: [ { get: / } ] } ]
"#,
    );
    for flags in [
        &["--vus", "2", "--duration", "1s"][..],
        &["--profile", "peak"][..],
    ] {
        let (out, _) = run_scenario(&ok, flags);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {}", text(&out));
    }
    let out = loadline().arg("capacity").arg(&ok.path).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("several `scenarios:`"));
}
