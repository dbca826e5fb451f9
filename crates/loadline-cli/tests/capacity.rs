//! `loadline capacity` finds the known capacity of demo-shop's limiter, reports
//! every step, and exits 3 when even the start rate fails.

use crate::util::*;

/// One request per iteration, so iterations per second are requests per second.
fn one_request(url: &str) -> Scenario {
    Scenario::new(&format!(
        r#"
target: {url}
phases: [ {{ duration: 1s, arrival_rate: 20 }} ]
thresholds:
  latency: ["p95 < 150ms"]
  errors: ["rate < 1%"]
flows:
  - steps:
      - get: /products/1
        check: {{ status: 200 }}
"#
    ))
}

#[test]
fn the_search_finds_the_capacity_of_the_shops_limiter() {
    // 4 permits, each held 50ms: 80 requests per second.
    let shop = ShopProcess::start(&["--capacity-permits", "4", "--capacity-service-time", "50ms"]);
    assert!(shop.banner.contains("= 80 requests/s"), "{}", shop.banner);
    let sc = one_request(&shop.url);
    let out_path = sc.out("capacity.json");
    let output = loadline()
        .arg("capacity")
        .arg(&sc.path)
        .args([
            "--step-factor",
            "1.5",
            "--step-duration",
            "2s",
            "--refine",
            "3",
        ])
        .args(["--max-rate", "400", "--summary-json"])
        .arg(&out_path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let r = read_json(&out_path).unwrap();
    assert_eq!(r["status"], "passed");
    let c = &r["capacity"];
    let found = c["max_passing_rate"].as_f64().unwrap();
    let true_capacity = 80.0;
    assert!(
        (found - true_capacity).abs() <= 0.15 * true_capacity,
        "found {found}/s, true {true_capacity}/s\n{}",
        text(&output)
    );
    let failing = c["first_failing_rate"].as_f64().unwrap();
    assert!(failing > found);
    assert_eq!(c["end"], "bracketed");
    let failed = c["failed_thresholds"].as_array().unwrap();
    assert_eq!(failed[0]["metric"], "latency", "{failed:#?}");
    assert_eq!(failed[0]["passed"], false);

    // The rate started at the phase's rate, climbed by 1.5, and stopped at the
    // first failing step; then three steps narrowed the gap.
    let steps = c["steps"].as_array().unwrap();
    let rates: Vec<f64> = steps.iter().map(|s| s["rate"].as_f64().unwrap()).collect();
    assert_eq!(rates[..4], [20.0, 30.0, 45.0, 67.5], "{rates:?}");
    let climbs = steps.iter().filter(|s| s["kind"] == "climb").count();
    assert_eq!(steps.len(), climbs + 3, "{steps:#?}");
    for s in steps {
        let passed = s["passed"].as_bool().unwrap();
        let p95 = s["latency_ms"]["p95"].as_f64().unwrap();
        assert_eq!(passed, p95 < 150.0, "{s:#}");
        assert_eq!(s["dropped"], 0);
        // Each iteration is one request.
        assert_eq!(s["requests"], s["iterations"], "{s:#}");
    }
    // Below capacity the latency is the service time.
    assert!(steps[0]["latency_ms"]["p95"].as_f64().unwrap() < 100.0);

    // The terminal shows each step and the verdict.
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("  step  kind       rate/s   achieved"),
        "{stdout}"
    );
    assert!(stdout.contains("     1  climb       20.00"), "{stdout}");
    assert!(
        stdout.contains(&format!("  capacity        {found:.2} iterations/s")),
        "{stdout}"
    );
    assert!(
        stdout.contains("FAIL latency p95 < 150ms (was "),
        "{stdout}"
    );

    // Even the start rate fails: no capacity, exit code 3.
    let output = loadline()
        .arg("capacity")
        .arg(&sc.path)
        .args(["--start", "300", "--step-duration", "1s", "--quiet"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("capacity        none found"), "{stdout}");
    assert_eq!(shop.stop(), Some(0));
}

#[test]
fn a_search_needs_thresholds_and_sane_settings() {
    let sc = Scenario::new(
        "target: http://127.0.0.1:9\nphases: [ { duration: 1s, arrival_rate: 5 } ]\nflows: [ { steps: [ { get: / } ] } ]\n",
    );
    let out = loadline().arg("capacity").arg(&sc.path).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("has none"));

    let sc = Scenario::new(
        "target: http://127.0.0.1:9\nphases: [ { duration: 1s, vus: 1 } ]\nthresholds: { errors: [\"rate < 1%\"] }\nflows: [ { steps: [ { get: / } ] } ]\n",
    );
    // A closed-model phase gives no rate to start from.
    let out = loadline().arg("capacity").arg(&sc.path).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no start rate"));
    let out = loadline()
        .arg("capacity")
        .arg(&sc.path)
        .args(["--start", "5", "--step-factor", "0.5"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("factor must be above 1"));

    // `run --profile capacity` is the search too, with the file's settings.
    let sc = Scenario::new(
        "target: http://127.0.0.1:9\nprofiles: { busy: [ { duration: 1s, arrival_rate: 5 } ] }\nflows: [ { steps: [ { get: / } ] } ]\n",
    );
    let out = loadline()
        .arg("run")
        .arg(&sc.path)
        .args(["--profile", "capacity"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("the capacity search judges each step"));
}

#[test]
fn the_start_rate_comes_from_the_profile_chosen() {
    let srv = TestServer::start();
    let sc = Scenario::new(&format!(
        r#"
target: {}
profiles:
  slow: [ {{ duration: 1s, arrival_rate: 4 }} ]
  fast: [ {{ duration: 1s, arrival_rate: 2, ramp_to: 30 }} ]
capacity: {{ step_duration: 500ms, max_rate: 40, factor: 2 }}
thresholds:
  errors: ["rate < 1%"]
flows:
  - steps:
      - get: /hello
"#,
        srv.url()
    ));
    let out_path = sc.out("c.json");
    let output = loadline()
        .arg("capacity")
        .arg(&sc.path)
        .args([
            "--profile",
            "fast",
            "--quiet",
            "--tag",
            "env=ci",
            "--summary-json",
        ])
        .arg(&out_path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let report = read_json(&out_path).unwrap();
    assert_eq!(report["tags"], serde_json::json!({"env": "ci"}));
    let c = &report["capacity"];
    let rates: Vec<f64> = c["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["rate"].as_f64().unwrap())
        .collect();
    // From the profile's highest rate, doubling, capped at max_rate.
    assert_eq!(rates, [30.0, 40.0]);
    assert_eq!(c["end"], "max_rate");
    assert_eq!(c["max_passing_rate"], 40.0);
    assert_eq!(srv.seen().count("GET /hello"), 15 + 20);
}

/// A step whose iterations were cut off at the graceful stop fails, whatever its
/// thresholds say, and its achieved rate counts the iterations that started.
#[test]
fn a_step_with_iterations_cut_off_fails_and_counts_them_as_started() {
    let srv = TestServer::start();
    let sc = Scenario::new(&format!(
        r#"
target: {}
phases: [ {{ duration: 1s, arrival_rate: 3 }} ]
graceful_stop: 200ms
thresholds:
  latency: ["p95 < 1m"]
flows:
  - steps:
      - get: /slow/2000
"#,
        srv.url()
    ));
    let out_path = sc.out("c.json");
    let output = loadline()
        .arg("capacity")
        .arg(&sc.path)
        .args(["--start", "3", "--max-rate", "3", "--step-duration", "1s"])
        .args(["--refine", "0", "--quiet", "--summary-json"])
        .arg(&out_path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    let c = &read_json(&out_path).unwrap()["capacity"];
    let steps = c["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 1, "{c:#}");
    let step = &steps[0];
    assert_eq!(step["passed"], false, "{step:#}");
    assert_eq!(step["interrupted"], 3, "{step:#}");
    assert_eq!(step["iterations"], 0, "{step:#}");
    assert_eq!(step["achieved_rate"], 3.0, "{step:#}");
    let failed: Vec<&str> = step["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["passed"] == false)
        .map(|t| t["metric"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["interrupted_iterations"]);
    assert_eq!(c["max_passing_rate"], serde_json::Value::Null);
    assert_eq!(srv.seen().count("GET /slow/{ms}"), 3);
}

/// With a `dropped_iterations` threshold of the scenario's own, a step whose
/// arrivals were dropped names that failure once, not once more as the search's
/// own criterion.
#[test]
fn a_dropped_iterations_threshold_is_named_once() {
    let srv = TestServer::start();
    let sc = Scenario::new(&format!(
        r#"
target: {}
phases: [ {{ duration: 1s, arrival_rate: 10 }} ]
graceful_stop: 5s
thresholds:
  dropped_iterations: ["count == 0"]
flows:
  - steps:
      - get: /slow/1500
"#,
        srv.url()
    ));
    let out_path = sc.out("c.json");
    let output = loadline()
        .arg("capacity")
        .arg(&sc.path)
        .args(["--start", "10", "--max-rate", "10", "--max-vus", "2"])
        .args(["--step-duration", "1s", "--refine", "0", "--summary-json"])
        .arg(&out_path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    for line in stdout.lines().filter(|l| l.contains("dropped_iterations")) {
        assert_eq!(line.matches("dropped_iterations").count(), 1, "{stdout}");
    }
    let step = &read_json(&out_path).unwrap()["capacity"]["steps"][0];
    let named: Vec<&serde_json::Value> = step["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["metric"] == "dropped_iterations")
        .collect();
    assert_eq!(named.len(), 1, "{step:#}");
    assert_eq!(named[0]["value"], 8.0, "{step:#}");
    assert_eq!(step["dropped"], 8, "{step:#}");
}
