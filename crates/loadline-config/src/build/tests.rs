use std::path::Path;
use std::time::Duration;

use loadline_core::plan::{Arrivals, Pacing, Step, Stop, DEFAULT_MAX_VUS};
use loadline_core::threshold::MetricName;
use loadline_protocols::http::{
    BodySpec, CaptureSource, Check, CheckSpec, HttpSettings, HttpStepSpec, UrlSpec,
};

use super::*;

const EXAMPLE: &str = r#"name: shop smoke                       # optional
target: http://127.0.0.1:8080          # base URL; step URLs that start with / are joined to it
defaults:                              # optional, for every HTTP step
  headers: { accept: application/json }
  timeout: 5s
data:                                  # optional feeders: each iteration draws one row from each
  users: { file: users.csv, order: sequential }   # CSV with a header row, or .jsonl; order: sequential | random | unique
vars: { page_size: 20 }                # optional constants
phases:                                # run one after the other
  - name: warm up
    duration: 10s
    arrival_rate: 5                    # open model: iterations started per second
    ramp_to: 50                        # optional
    max_vus: 500                       # optional
  - name: steady
    duration: 30s
    vus: 20                            # closed model
  - name: fixed amount
    vus: 5
    iterations: 100                    # closed model with a total, no duration needed
thresholds:
  latency: ["p95 < 300ms", "p99 < 1s"]
  "latency{step:product detail}": ["p95 < 100ms"]
  errors: ["rate < 1%"]
  checks: ["rate > 99%"]
  iterations: ["rate > 10/s"]
  # long form: { expr: "rate < 5%", abort_on_fail: true, delay: 5s }
flows:
  - name: browse
    weight: 3
    steps:
      - get: /products?page={{ $randint(1, 5) }}
        name: list products
        check: { status: 200 }
        capture:
          first_id: { json: "$.items[0].id" }       # also: { regex: "...", group: 1 }, { header: "x-request-id" }
      - think: 1s..3s
      - get: /products/{{ first_id }}
        name: product detail
        check: { status: 200, body_contains: '"id"' }
  - name: buy
    weight: 1
    steps:
      - post: /login
        json: { user: "{{ users.name }}", password: "{{ users.password }}" }
        capture:
          token: { json: "$.token" }
      - loop: 2
        steps:
          - post: /orders
            headers: { authorization: "Bearer {{ token }}" }
            json: { product: "{{ $randint(1, 100) }}", qty: 1 }
            check: { status: 201 }
"#;

/// A folder with the data files the tests refer to.
fn data_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("users.csv"),
        "name,password\nann,secret1\nbob,secret2\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("empty.csv"), "").unwrap();
    dir
}

/// The spec of an HTTP step.
fn http_spec(step: &Step) -> &HttpStepSpec {
    let Step::Exec(exec) = step else {
        panic!("not a protocol step: {step:?}")
    };
    loadline_protocols::http::spec_of(exec.as_ref()).expect("an HTTP step")
}

/// The settings of the plan's HTTP protocol.
fn http_settings(d: &Draft) -> &HttpSettings {
    d.protocols
        .iter()
        .find_map(|p| loadline_protocols::http::settings_of(p.as_ref()))
        .expect("an HTTP protocol")
}

fn draft(text: &str, dir: &Path) -> Draft {
    let built = build(text, dir);
    assert!(built.problems.is_empty(), "{:#?}", built.problems);
    built.draft.unwrap()
}

#[test]
fn the_documented_example_builds() {
    let dir = data_dir();
    let d = draft(EXAMPLE, dir.path());
    assert_eq!(d.name.as_deref(), Some("shop smoke"));

    let phases: Vec<_> = d
        .phases
        .iter()
        .map(|p| (p.name.as_str(), &p.pacing, &p.stop))
        .collect();
    assert_eq!(
        phases,
        vec![
            (
                "warm up",
                &Pacing::Open {
                    rate: 5.0,
                    ramp_to: Some(50.0),
                    max_vus: 500,
                    arrivals: Arrivals::Uniform,
                },
                &Stop::Duration(Duration::from_secs(10))
            ),
            (
                "steady",
                &Pacing::Closed { vus: 20 },
                &Stop::Duration(Duration::from_secs(30))
            ),
            (
                "fixed amount",
                &Pacing::Closed { vus: 5 },
                &Stop::Iterations {
                    total: 100,
                    max_duration: None
                }
            ),
        ]
    );

    let flows: Vec<_> = d
        .flows
        .iter()
        .map(|f| (f.name.as_str(), f.weight, f.steps.len()))
        .collect();
    assert_eq!(flows, vec![("browse", 3, 3), ("buy", 1, 2)]);

    let groups: Vec<_> = d.groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(
        groups,
        [
            "list products",
            "product detail",
            "POST /login",
            "POST /orders"
        ]
    );
    assert!(d.groups.iter().all(|g| g.kind == "http"));

    // Five metric keys, six conditions.
    assert_eq!(d.thresholds.len(), 6);
    let keys: Vec<_> = d.thresholds.iter().map(|t| t.metric_key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "latency",
            "latency",
            "latency{step:product detail}",
            "errors",
            "checks",
            "iterations"
        ]
    );
    let detail = &d.thresholds[2];
    assert_eq!(
        (detail.metric, detail.group),
        (MetricName::Latency, Some(1))
    );
    assert_eq!(detail.condition.bound, 100.0);
    assert!(d
        .thresholds
        .iter()
        .filter(|t| t.metric_key != detail.metric_key)
        .all(|t| t.group.is_none()));

    assert_eq!(d.feeders.len(), 1);
    assert_eq!(d.feeders[0].columns, ["name", "password"]);
    assert_eq!(d.feeders[0].rows.len(), 2);
    assert_eq!(d.capture_slots, 2);
    assert_eq!(d.graceful_stop, DEFAULT_GRACEFUL_STOP);
    let http = http_settings(&d);
    assert!(http.cookies && !http.insecure);

    // The first request: relative URL, default headers, status check, JSON capture.
    let list = http_spec(&d.flows[0].steps[0]);
    assert_eq!(list.method.as_str(), "GET");
    assert_eq!(list.group, 0);
    assert_eq!(list.timeout, Duration::from_secs(5));
    assert_eq!(list.max_redirects, 10);
    let UrlSpec::Relative { base, path } = &list.url else {
        panic!("not relative")
    };
    assert_eq!(base.as_str(), "http://127.0.0.1:8080/");
    assert!(path.static_text().is_none());
    assert_eq!(list.headers.len(), 1);
    assert_eq!(list.headers[0].0.as_str(), "accept");
    assert_eq!(list.headers[0].1.static_text(), Some("application/json"));
    assert!(
        matches!(list.checks.as_slice(), [CheckSpec { check: Check::Status(s), .. }] if s == &[200])
    );
    assert!(matches!(
        list.captures.as_slice(),
        [c] if c.name == "first_id" && c.slot == 0 && matches!(c.source, CaptureSource::Json(_))
    ));
    assert!(matches!(&d.flows[0].steps[1], Step::Think(r) if r.max == Duration::from_secs(3)));

    // The loop's request: header merged over the defaults, JSON body, capture slot 1.
    let Step::Loop { count: 2, steps } = &d.flows[1].steps[1] else {
        panic!("not a loop of 2")
    };
    let order = http_spec(&steps[0]);
    assert_eq!(order.group, 3);
    let names: Vec<_> = order.headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["accept", "authorization"]);
    assert!(matches!(order.body, BodySpec::Json(_)));
    assert!(
        matches!(order.checks.as_slice(), [CheckSpec { check: Check::Status(s), .. }] if s == &[201])
    );
}

#[test]
fn the_documented_example_loads_into_a_plan() {
    let dir = data_dir();
    let loaded = crate::load_str("example.yaml", EXAMPLE, dir.path()).unwrap();
    let plan = loaded.plan;
    assert_eq!(plan.source, "example.yaml");
    assert_eq!(plan.protocols.len(), 1);
    assert_eq!(plan.protocols[0].name(), "http");
    assert_eq!(plan.flows.len(), 2);
    assert_eq!(plan.phases[1].pacing, Pacing::Closed { vus: 20 });
    assert_eq!(plan.planned_duration(), None);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

/// One malformed file of `tests/scenarios/malformed.jsonl` (shared with the
/// CLI's end-to-end test): its lines, the line of its first error, and words
/// that error must hold.
#[derive(serde::Deserialize)]
struct Case {
    name: String,
    lines: Vec<String>,
    line: usize,
    words: Vec<String>,
}

fn malformed_cases() -> Vec<Case> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/scenarios/malformed.jsonl"
    );
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn malformed_files_report_their_first_error_where_it_is() {
    let dir = data_dir();
    let mut failures = Vec::new();
    let cases = malformed_cases();
    for c in &cases {
        let text = c.lines.join("\n") + "\n";
        let built = build(&text, dir.path());
        let Some(first) = built.problems.first() else {
            failures.push(format!("{}: no error", c.name));
            continue;
        };
        let missing: Vec<_> = c
            .words
            .iter()
            .filter(|w| !first.message.contains(w.as_str()))
            .collect();
        if first.mark.line != c.line || !missing.is_empty() {
            failures.push(format!(
                "{}: expected line {} with {:?}, got {}:{} {}: {}",
                c.name,
                c.line,
                c.words,
                first.mark.line,
                first.mark.column,
                first.path,
                first.message
            ));
        }
        assert!(built.draft.is_none(), "{}: a draft despite errors", c.name);
    }
    assert!(cases.len() >= 40, "{}", cases.len());
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn every_error_in_a_file_is_reported() {
    let dir = data_dir();
    let text = [
        "target: http://127.0.0.1:8080",
        "graceful_stop: soon",
        "phases:",
        "  - duration: 10x",
        "    vus: 1",
        "  - duration: 1s",
        "    vus: -1",
        "  - arival_rate: 3",
        "flows:",
        "  - weight: 0",
        "    steps:",
        "      - gett: /",
        "      - get: /{{ nope }}",
        "      - think: 3s..1s",
        "thresholds:",
        "  errors: [ p95 < 1s ]",
    ]
    .join("\n");
    let built = build(&text, dir.path());
    let lines: Vec<usize> = built.problems.iter().map(|p| p.mark.line).collect();
    // A misspelt key is reported once, not again as a missing key.
    assert_eq!(
        lines,
        [2, 4, 7, 8, 10, 12, 13, 14, 16],
        "{:#?}",
        built.problems
    );
}

#[test]
fn template_errors_point_at_their_column() {
    let dir = data_dir();
    let text = "target: http://127.0.0.1:8080\nphases: [ { duration: 1s, vus: 1 } ]\nflows:\n  - steps:\n      - get: /a/{{ nope }}\n      - get: \"/b/{{ nope }}\"\n";
    let built = build(text, dir.path());
    let marks: Vec<_> = built
        .problems
        .iter()
        .map(|p| (p.mark.line, p.mark.column))
        .collect();
    // The offset the template engine reports is just after `{{`.
    assert_eq!(marks, [(5, 19), (6, 20)], "{:#?}", built.problems);
    assert_eq!(built.problems[0].path, "flows[0].steps[0].get");
}

#[test]
fn defaults_absolute_urls_and_options() {
    let dir = data_dir();
    let text = r#"
defaults:
  headers: { Accept: text/plain, x-a: "1" }
  timeout: 2s
  follow_redirects: false
  insecure: true
  max_body: 2048
graceful_stop: 0s
phases:
  - { duration: 1m, arrival_rate: 0 }
flows:
  - steps:
      - get: https://example.test/a
        headers: { accept: application/json }
        query: { page: 2, q: "{{ $vu }}" }
        timeout: 1s
        follow_redirects: true
        capture:
          rid: { header: x-request-id }
          n: { regex: 'n=(\d+)' }
          all: { regex: 'n=\d+' }
      - put: https://example.test/b
        form: { a: "{{ n }}", b: x }
"#;
    let built = build(text, dir.path());
    assert!(built.problems.is_empty(), "{:#?}", built.problems);
    assert_eq!(built.warnings.len(), 1, "{:#?}", built.warnings);
    assert!(built.warnings[0].message.contains("starts no iterations"));
    let d = built.draft.unwrap();
    assert_eq!(d.graceful_stop, Duration::ZERO);
    let settings = http_settings(&d).clone();
    assert!(settings.insecure);
    assert_eq!(settings.max_body, 2048);
    assert!(
        matches!(d.phases[0].pacing, Pacing::Open { max_vus, .. } if max_vus == DEFAULT_MAX_VUS)
    );
    let a = http_spec(&d.flows[0].steps[0]);
    assert!(
        matches!(&a.url, UrlSpec::Absolute(t) if t.static_text() == Some("https://example.test/a"))
    );
    let headers: Vec<_> = a
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.static_text()))
        .collect();
    assert_eq!(
        headers,
        [("accept", Some("application/json")), ("x-a", Some("1"))]
    );
    let query: Vec<_> = a
        .query
        .iter()
        .map(|(k, v)| (k.as_str(), v.static_text()))
        .collect();
    assert_eq!(query, [("page", Some("2")), ("q", None)]);
    assert_eq!(a.timeout, Duration::from_secs(1));
    assert_eq!(a.max_redirects, 10);
    let groups: Vec<_> = a
        .captures
        .iter()
        .map(|c| match &c.source {
            CaptureSource::Regex { group, .. } => Some(*group),
            _ => None,
        })
        .collect();
    assert_eq!(groups, [None, Some(1), Some(0)]);
    let b = http_spec(&d.flows[0].steps[1]);
    assert_eq!(b.max_redirects, 0);
    assert_eq!(b.timeout, Duration::from_secs(2));
    assert!(matches!(&b.body, BodySpec::Form(f) if f.len() == 2));
    assert_eq!(d.groups[1].name, "PUT https://example.test/b");
}

#[test]
fn long_form_thresholds_jsonl_data_and_warnings() {
    let dir = data_dir();
    std::fs::write(
        dir.path().join("items.jsonl"),
        "{\"id\": 7, \"tags\": [\"a\"]}\n{\"id\": 8}\n",
    )
    .unwrap();
    let text = r#"
target: http://127.0.0.1:8080/api/
data: { items: { file: items.jsonl, order: unique } }
vars: { paging: { size: 20, pages: [1, 2] } }
phases: [ { vus: 2, iterations: 10, duration: 1m } ]
flows:
  - steps:
      - get: /items/{{ items.id }}?size={{ paging.size }}&p={{ paging.pages[1] }}
thresholds:
  errors:
    - { expr: "rate < 5%", abort_on_fail: true, delay: 5s }
  checks: [ "rate > 99%" ]
"#;
    let built = build(text, dir.path());
    assert!(built.problems.is_empty(), "{:#?}", built.problems);
    let d = built.draft.unwrap();
    assert_eq!(
        d.phases[0].stop,
        Stop::Iterations {
            total: 10,
            max_duration: Some(Duration::from_secs(60))
        }
    );
    assert!(d.thresholds[0].abort_on_fail);
    assert_eq!(d.thresholds[0].delay, Duration::from_secs(5));
    assert_eq!(d.feeders[0].columns, ["id", "tags"]);
    assert_eq!(d.feeders[0].order, loadline_core::plan::FeederOrder::Unique);
    let s = http_spec(&d.flows[0].steps[0]);
    let UrlSpec::Relative { base, .. } = &s.url else {
        panic!()
    };
    assert_eq!(base.as_str(), "http://127.0.0.1:8080/api");
    assert_eq!(built.warnings.len(), 1);
    assert!(built.warnings[0].message.contains("no step has a `check:`"));
}

#[test]
fn an_empty_file_is_an_error() {
    let built = build("# nothing\n", Path::new("."));
    assert_eq!(built.problems.len(), 1);
    assert!(built.problems[0].message.contains("empty"));
}

const POLLING: &str = r#"
target: http://127.0.0.1:8080
phases: [ { duration: 1s, vus: 1 } ]
thresholds:
  "latency{step:order confirmed}": ["p95 < 2s"]
flows:
  - steps:
      - post: /orders
        capture: { order_id: { json: "$.id" } }
      - get: /orders/{{ order_id }}
        name: order confirmed
        until: { json: "$.state", equals: confirmed }
        poll: { interval: 100ms, timeout: 5s }
      - get: /health
        until: { status: [200, 204] }
      - get: /orders/{{ order_id }}
        name: has items
        until: { json: "$.items[0]" }
      - get: /ready
        until: { body_contains: ready }
        poll: { timeout: 1s }
      - get: /orders/{{ order_id }}
        name: order confirmed
        until: { json: "$.total", equals: { amount: 3, currency: [EUR] } }
"#;

/// The HTTP step specs of the first flow, in order.
fn http_steps(d: &Draft) -> Vec<&loadline_protocols::http::HttpStepSpec> {
    d.flows[0]
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Exec(e) => loadline_protocols::http::spec_of(e.as_ref()),
            _ => None,
        })
        .collect()
}

#[test]
fn polling_steps_measure_an_outcome_group_and_send_to_a_request_group() {
    use loadline_core::plan::OUTCOME_KIND;
    use loadline_protocols::http::Until;
    let dir = data_dir();
    let d = draft(POLLING, dir.path());
    let groups: Vec<(&str, &str)> = d
        .groups
        .iter()
        .map(|g| (g.name.as_str(), g.kind.as_str()))
        .collect();
    assert_eq!(
        groups,
        [
            ("POST /orders", "http"),
            ("order confirmed", OUTCOME_KIND),
            ("order confirmed (requests)", "http"),
            ("GET /health", OUTCOME_KIND),
            ("GET /health (requests)", "http"),
            ("has items", OUTCOME_KIND),
            ("has items (requests)", "http"),
            ("GET /ready", OUTCOME_KIND),
            ("GET /ready (requests)", "http"),
        ]
    );
    // The threshold names the outcome group.
    assert_eq!(d.thresholds[0].group, Some(1));
    let steps = http_steps(&d);
    assert!(steps[0].poll.is_none());
    let confirmed = steps[1].poll.as_ref().unwrap();
    assert_eq!(steps[1].group, 2);
    assert_eq!(confirmed.outcome_group, 1);
    assert_eq!(confirmed.interval, Duration::from_millis(100));
    assert_eq!(confirmed.timeout, Duration::from_secs(5));
    assert!(matches!(
        &confirmed.until,
        Until::Json { equals: Some(v), .. } if v == "confirmed"
    ));
    let health = steps[2].poll.as_ref().unwrap();
    assert!(matches!(&health.until, Until::Status(s) if s == &[200, 204]));
    assert_eq!(health.interval, Duration::from_millis(200));
    assert_eq!(health.timeout, Duration::from_secs(30));
    assert!(matches!(
        &steps[3].poll.as_ref().unwrap().until,
        Until::Json { equals: None, .. }
    ));
    let ready = steps[4].poll.as_ref().unwrap();
    assert!(matches!(&ready.until, Until::BodyContains(t) if t == "ready"));
    assert_eq!(ready.timeout, Duration::from_secs(1));
    // Two polling steps of the same name share both groups.
    let again = steps[5].poll.as_ref().unwrap();
    assert_eq!((steps[5].group, again.outcome_group), (2, 1));
    assert!(matches!(
        &again.until,
        Until::Json { equals: Some(v), .. }
            if v == &serde_json::json!({"amount": 3, "currency": ["EUR"]})
    ));
}

#[test]
fn polling_mistakes_are_located() {
    let dir = data_dir();
    let text = [
        "target: http://127.0.0.1:8080",
        "phases: [ { duration: 1s, vus: 1 } ]",
        "flows:",
        "  - steps:",
        "      - get: /a",
        "        poll: { interval: 1s }",
        "      - get: /b",
        "        until: { status: 200, body_contains: x }",
        "      - get: /c",
        "        until: { body_contains: x, equals: 3 }",
        "      - get: /d",
        "        until: { status: 99 }",
        "      - get: /e",
        "        until: { json: \"$.[\" }",
        "      - get: /f",
        "        until: {}",
        "      - get: /g",
        "        name: same",
        "        until: { status: 200 }",
        "      - get: /h",
        "        name: same",
        "      - think: 1s",
        "        until: { status: 200 }",
        "      - get: /i",
        "        until: { status: 200 }",
        "        poll: { interval: 0s, timeout: 1x }",
    ]
    .join("\n");
    let built = build(&text, dir.path());
    let found: Vec<(usize, &str)> = built
        .problems
        .iter()
        .map(|p| (p.mark.line, p.message.as_str()))
        .collect();
    let expect = [
        (6, "`poll` goes with `until`"),
        (8, "one condition: found both `status` and `body_contains`"),
        (10, "`equals` goes with `json`"),
        (12, "from 100 to 599, found 99"),
        (14, "invalid JSONPath"),
        (16, "`until` needs a condition"),
        (21, "used by outcomes (a time until something happened"),
        (23, "`until` does not fit a `think` step"),
        (26, "above zero"),
        (26, "unknown unit"),
    ];
    assert_eq!(found.len(), expect.len(), "{found:#?}");
    for ((line, msg), (want_line, want)) in found.iter().zip(expect) {
        assert!(
            *line == want_line && msg.contains(want),
            "expected line {want_line} with {want:?}, got {line}: {msg}"
        );
    }
}

const PROFILES: &str = r#"
target: http://127.0.0.1:8080
profiles:
  normal:
    - { name: warm up, duration: 10s, arrival_rate: 1, ramp_to: 5 }
    - { name: steady, duration: 30s, arrival_rate: 5 }
  peak:
    - { duration: 20s, arrival_rate: 15 }
    - { vus: 2, iterations: 10 }
  smoke:
    - { vus: 1, iterations: 1 }
default_profile: normal
capacity: { start: 4, factor: 2, step_duration: 3s, max_rate: 100, refine: 2, max_vus: 50, pause: 1s }
flows: [ { steps: [ { get: / } ] } ]
"#;

fn with(text: &str, overrides: Overrides) -> Built {
    let dir = data_dir();
    build_with(&Registry::builtin(), text, dir.path(), &overrides)
}

fn phase_names(d: &Draft) -> Vec<&str> {
    d.phases.iter().map(|p| p.name.as_str()).collect()
}

#[test]
fn profiles_replace_phases_by_name_or_by_default() {
    let built = with(PROFILES, Overrides::default());
    assert!(built.problems.is_empty(), "{:#?}", built.problems);
    let d = built.draft.unwrap();
    assert_eq!(d.profile.as_deref(), Some("normal"));
    assert_eq!(phase_names(&d), ["warm up", "steady"]);
    let names: Vec<_> = d.profiles.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["normal", "peak", "smoke"]);
    assert_eq!(
        d.profiles[0].planned_duration(),
        Some(Duration::from_secs(40))
    );

    let peak = with(
        PROFILES,
        Overrides {
            profile: Some("peak".into()),
            ..Overrides::default()
        },
    )
    .draft
    .unwrap();
    assert_eq!(peak.profile.as_deref(), Some("peak"));
    assert_eq!(
        peak.phases[0].pacing,
        Pacing::Open {
            rate: 15.0,
            ramp_to: None,
            max_vus: DEFAULT_MAX_VUS,
            arrivals: Arrivals::Uniform,
        }
    );
    assert_eq!(peak.phases[1].name, "phase 2");

    // `phases` runs without --profile, and a profile still replaces it.
    let both = PROFILES.replace(
        "default_profile: normal",
        "phases: [ { name: only, duration: 1s, vus: 1 } ]",
    );
    let d = with(&both, Overrides::default()).draft.unwrap();
    assert_eq!(
        (d.profile.as_deref(), phase_names(&d)),
        (None, vec!["only"])
    );
    let d = with(
        &both,
        Overrides {
            profile: Some("smoke".into()),
            ..Overrides::default()
        },
    )
    .draft
    .unwrap();
    assert_eq!(phase_names(&d), ["phase 1"]);
}

#[test]
fn the_capacity_settings_are_read() {
    use loadline_core::capacity::{Growth, SearchSpec};
    let d = with(PROFILES, Overrides::default()).draft.unwrap();
    assert_eq!(
        d.capacity,
        SearchSpec {
            start: Some(4.0),
            growth: Some(Growth::Factor(2.0)),
            step_duration: Some(Duration::from_secs(3)),
            max_rate: Some(100.0),
            refine: Some(2),
            max_vus: Some(50),
            pause: Some(Duration::from_secs(1)),
        }
    );
    let bad = PROFILES.replace(
        "capacity: { start: 4, factor: 2,",
        "capacity: { start: 0, factor: 1, step: 5,",
    );
    let built = with(&bad, Overrides::default());
    let messages: Vec<&str> = built.problems.iter().map(|p| p.message.as_str()).collect();
    assert_eq!(messages.len(), 2, "{messages:#?}");
    assert!(messages[0].contains("cannot start at 0"));
    assert!(messages[1].contains("either by a `factor` or by a `step`"));
}

#[test]
fn profile_mistakes_are_errors() {
    let unknown = with(
        PROFILES,
        Overrides {
            profile: Some("peek".into()),
            ..Overrides::default()
        },
    );
    assert_eq!(unknown.problems.len(), 1, "{:#?}", unknown.problems);
    let p = &unknown.problems[0];
    assert_eq!(p.mark.line, 4);
    assert_eq!(p.path, "profiles");
    assert_eq!(
        p.message,
        "unknown profile `peek` (--profile): expected one of `normal`, `peak`, `smoke`, or `capacity` (the capacity search); did you mean `peak`?"
    );

    // Only profiles, no default: the caller must choose, unless it runs no phases.
    let no_default = PROFILES.replace("default_profile: normal", "");
    let built = with(&no_default, Overrides::default());
    assert_eq!(built.problems.len(), 1);
    assert!(built.problems[0]
        .message
        .contains("choose one with --profile (normal, peak, smoke)"));
    let built = with(
        &no_default,
        Overrides {
            phases_optional: true,
            ..Overrides::default()
        },
    );
    assert!(built.problems.is_empty(), "{:#?}", built.problems);
    assert!(built.draft.unwrap().phases.is_empty());

    let text = [
        "target: http://127.0.0.1:8080",
        "phases: [ { duration: 1s, vus: 1 } ]",
        "profiles:",
        "  capacity: [ { duration: 1s, vus: 1 } ]",
        "  empty: []",
        "default_profile: nromal",
        "flows: [ { steps: [ { get: / } ] } ]",
    ]
    .join("\n");
    let built = with(&text, Overrides::default());
    let found: Vec<(usize, &str)> = built
        .problems
        .iter()
        .map(|p| (p.mark.line, p.message.as_str()))
        .collect();
    assert_eq!(found.len(), 3, "{found:#?}");
    assert!(found[0].0 == 4 && found[0].1.contains("built-in capacity search"));
    assert!(found[1].0 == 5 && found[1].1.contains("profile `empty` is empty"));
    assert!(found[2].0 == 6 && found[2].1.contains("both say what runs"));

    let plain = "target: http://127.0.0.1:8080\nphases: [ { duration: 1s, vus: 1 } ]\nflows: [ { steps: [ { get: / } ] } ]\n";
    let built = with(
        plain,
        Overrides {
            profile: Some("peak".into()),
            ..Overrides::default()
        },
    );
    assert_eq!(built.problems.len(), 1);
    assert!(built.problems[0]
        .message
        .starts_with("--profile peak: the scenario defines no `profiles`"));
}

#[test]
fn duration_scales_timed_phases_and_keeps_iteration_phases() {
    let scaled = |profile: &str, secs: u64| {
        let built = with(
            PROFILES,
            Overrides {
                profile: Some(profile.into()),
                scale_to: Some(Duration::from_secs(secs)),
                ..Overrides::default()
            },
        );
        (built.draft, built.problems)
    };
    let (d, _) = scaled("normal", 8);
    let d = d.unwrap();
    let stops: Vec<_> = d.phases.iter().map(|p| p.stop.clone()).collect();
    assert_eq!(
        stops,
        [
            Stop::Duration(Duration::from_secs(2)),
            Stop::Duration(Duration::from_secs(6))
        ]
    );
    // Rates stay as they are; ramps take the shorter time.
    assert_eq!(
        d.phases[0].pacing,
        Pacing::Open {
            rate: 1.0,
            ramp_to: Some(5.0),
            max_vus: DEFAULT_MAX_VUS,
            arrivals: Arrivals::Uniform,
        }
    );
    let (d, _) = scaled("peak", 60);
    let d = d.unwrap();
    assert_eq!(d.phases[0].stop, Stop::Duration(Duration::from_secs(60)));
    assert!(matches!(
        d.phases[1].stop,
        Stop::Iterations { total: 10, .. }
    ));
    let (d, problems) = scaled("smoke", 60);
    assert!(d.is_none());
    assert_eq!(problems[0].path, "--scale-to");
    assert!(problems[0].message.contains("no phase has a duration"));
}

#[test]
fn the_command_line_load_replaces_the_phases() {
    use crate::LoadOverride;
    let load = |l: LoadOverride| {
        with(
            PROFILES,
            Overrides {
                load: Some(l),
                ..Overrides::default()
            },
        )
    };
    let secs = Duration::from_secs;
    let d = load(LoadOverride {
        rate: Some(100.0),
        duration: Some(secs(3)),
        ..LoadOverride::default()
    })
    .draft
    .unwrap();
    assert_eq!(phase_names(&d), ["default"]);
    assert_eq!(d.profile, None);
    assert_eq!(
        d.phases[0].pacing,
        Pacing::Open {
            rate: 100.0,
            ramp_to: None,
            max_vus: DEFAULT_MAX_VUS,
            arrivals: Arrivals::Uniform,
        }
    );
    assert_eq!(d.phases[0].stop, Stop::Duration(secs(3)));
    let d = load(LoadOverride {
        vus: Some(4),
        duration: Some(secs(9)),
        iterations: Some(40),
        ..LoadOverride::default()
    })
    .draft
    .unwrap();
    assert_eq!(d.phases[0].pacing, Pacing::Closed { vus: 4 });
    assert_eq!(
        d.phases[0].stop,
        Stop::Iterations {
            total: 40,
            max_duration: Some(secs(9))
        }
    );
    // `--iterations` alone: one VU, as k6 does.
    let d = load(LoadOverride {
        iterations: Some(3),
        ..LoadOverride::default()
    })
    .draft
    .unwrap();
    assert_eq!(d.phases[0].pacing, Pacing::Closed { vus: 1 });
    // A file with no phases at all is fine when the command line gives them.
    let bare = "target: http://127.0.0.1:8080\nflows: [ { steps: [ { get: / } ] } ]\n";
    let built = with(
        bare,
        Overrides {
            load: Some(LoadOverride {
                vus: Some(1),
                iterations: Some(1),
                ..LoadOverride::default()
            }),
            ..Overrides::default()
        },
    );
    assert!(built.problems.is_empty(), "{:#?}", built.problems);

    let wrong = |l: LoadOverride| {
        let built = load(l);
        assert!(built.draft.is_none());
        built
            .problems
            .iter()
            .map(|p| format!("{}: {}", p.path, p.message))
            .collect::<Vec<_>>()
    };
    let e = wrong(LoadOverride {
        duration: Some(secs(5)),
        ..LoadOverride::default()
    });
    assert!(
        e[0].starts_with("--duration: ") && e[0].contains("--scale-to"),
        "{e:?}"
    );
    let e = wrong(LoadOverride {
        rate: Some(10.0),
        iterations: Some(5),
        duration: Some(secs(5)),
        ..LoadOverride::default()
    });
    assert!(e[0].starts_with("--iterations: "), "{e:?}");
    let e = wrong(LoadOverride {
        rate: Some(10.0),
        ..LoadOverride::default()
    });
    assert!(e[0].starts_with("--rate: say how long"), "{e:?}");
    let e = wrong(LoadOverride {
        vus: Some(0),
        iterations: Some(1),
        ..LoadOverride::default()
    });
    assert_eq!(e, ["--vus: expected from 1 to 100000 VUs, found 0"]);
    let built = with(
        PROFILES,
        Overrides {
            profile: Some("peak".into()),
            load: Some(LoadOverride {
                vus: Some(1),
                iterations: Some(1),
                ..LoadOverride::default()
            }),
            ..Overrides::default()
        },
    );
    assert_eq!(built.problems[0].path, "--profile");
}

#[test]
fn arrivals_are_read_and_the_command_line_wins() {
    let text = "target: http://127.0.0.1:8080\nphases:\n  - { duration: 1s, arrival_rate: 5, arrivals: poisson }\n  - { duration: 1s, arrival_rate: 5 }\nflows: [ { steps: [ { get: / } ] } ]\n";
    let arrivals = |d: &Draft| -> Vec<Arrivals> {
        d.phases
            .iter()
            .map(|p| match p.pacing {
                Pacing::Open { arrivals, .. } => arrivals,
                Pacing::Closed { .. } => panic!("closed"),
            })
            .collect()
    };
    let d = with(text, Overrides::default()).draft.unwrap();
    assert_eq!(arrivals(&d), [Arrivals::Poisson, Arrivals::Uniform]);
    let d = with(
        text,
        Overrides {
            arrivals: Some(Arrivals::Uniform),
            ..Overrides::default()
        },
    )
    .draft
    .unwrap();
    assert_eq!(arrivals(&d), [Arrivals::Uniform, Arrivals::Uniform]);
    let bad = text.replace("arrivals: poisson", "arrivals: poison");
    let built = with(&bad, Overrides::default());
    assert_eq!(built.problems.len(), 1);
    assert_eq!(built.problems[0].path, "phases[0].arrivals");
    assert!(built.problems[0]
        .message
        .ends_with("did you mean `poisson`?"));
    let closed = text.replace("arrival_rate: 5, arrivals", "vus: 1, arrivals");
    let built = with(&closed, Overrides::default());
    assert!(built.problems[0]
        .message
        .contains("`arrivals` goes with `arrival_rate`"));
}

#[test]
fn env_values_from_the_command_line_win() {
    std::env::set_var("LOADLINE_TEST_ENV_A", "process");
    let text = "target: http://127.0.0.1:8080\nphases: [ { vus: 1, iterations: 1 } ]\nflows: [ { steps: [ { get: \"/{{ $env.LOADLINE_TEST_ENV_A }}/{{ $env.LOADLINE_TEST_ENV_B }}\" } ] } ]\n";
    let built = with(text, Overrides::default());
    assert!(
        built.problems[0].message.contains("LOADLINE_TEST_ENV_B"),
        "{:#?}",
        built.problems
    );
    let d = with(
        text,
        Overrides {
            env: vec![
                ("LOADLINE_TEST_ENV_B".into(), "b1".into()),
                ("LOADLINE_TEST_ENV_A".into(), "flag".into()),
                ("LOADLINE_TEST_ENV_B".into(), "b2".into()),
            ],
            ..Overrides::default()
        },
    )
    .draft
    .unwrap();
    let UrlSpec::Relative { path, .. } = &http_steps(&d)[0].url else {
        panic!()
    };
    assert_eq!(path.static_text(), Some("/flag/b2"));
}

#[test]
fn a_target_override_replaces_the_target() {
    let built = with(
        PROFILES,
        Overrides {
            target: Some("http://127.0.0.1:9999/shop".into()),
            ..Overrides::default()
        },
    );
    let d = built.draft.unwrap();
    let UrlSpec::Relative { base, .. } = &http_steps(&d)[0].url else {
        panic!()
    };
    assert_eq!(base.as_str(), "http://127.0.0.1:9999/shop");
    let no_target = "phases: [ { duration: 1s, vus: 1 } ]\nflows: [ { steps: [ { get: /a } ] } ]\n";
    let built = with(
        no_target,
        Overrides {
            target: Some("http://127.0.0.1:1".into()),
            ..Overrides::default()
        },
    );
    assert!(built.problems.is_empty(), "{:#?}", built.problems);
    let built = with(
        no_target,
        Overrides {
            target: Some("ftp://x".into()),
            ..Overrides::default()
        },
    );
    assert_eq!(built.problems[0].path, "--target");
    assert!(built.problems[0].message.contains("http:// or https://"));
}

#[test]
fn protocol_sections_and_steps_keep_their_messages() {
    let dir = data_dir();
    // An empty section (its items commented out) is as good as absent.
    let text = "target: http://127.0.0.1:8080\ndefaults:\nteardown:\n#  - { sql: main, query: x }\nphases: [ { vus: 1, iterations: 1 } ]\nflows: [ { steps: [ { get: / } ] } ]\n";
    let built = build(text, dir.path());
    assert!(built.problems.is_empty(), "{:#?}", built.problems);

    let text = r#"target: http://127.0.0.1:8080
defualts: { timeout: 1s }
databases: { main: { url: "sqlite::memory:" } }
phases: [ { vus: 1, iterations: 1 } ]
flows:
  - steps:
      - get:
      - nmae: x
      - transaction: main
        steps:
          - sq: main
            query: SELECT 1
          - get: /x
"#;
    let found: Vec<(usize, String)> = build(text, dir.path())
        .problems
        .into_iter()
        .map(|p| (p.mark.line, p.message))
        .collect();
    let at = |line: usize, words: &str| {
        assert!(
            found.iter().any(|(l, m)| *l == line && m.contains(words)),
            "line {line}: `{words}` not in {found:#?}"
        );
    };
    // A misspelt protocol section is suggested, and listed among the keys.
    at(2, "unknown key `defualts`");
    at(2, "did you mean `defaults`?");
    at(2, "databases");
    // A request without its URL is an error, not a dropped step.
    at(7, "`get` needs a URL");
    // A key that is no kind suggests the key it resembles.
    at(8, "did you mean `name`?");
    // Inside a transaction: a misspelt `sql`, and another kind of step.
    at(11, "did you mean `sql`?");
    at(13, "a `get` step cannot run inside one");
}

#[test]
fn threshold_flags_join_the_scenario_thresholds() {
    let text = "target: http://127.0.0.1:8080\nphases: [ { vus: 1, iterations: 1 } ]\nflows: [ { steps: [ { get: /, name: home } ] } ]\nthresholds: { errors: [\"rate < 1%\"] }\n";
    let flags = |t: &[&str]| {
        with(
            text,
            Overrides {
                thresholds: t.iter().map(|s| s.to_string()).collect(),
                ..Overrides::default()
            },
        )
    };
    let d = flags(&["latency: p95 < 200ms", "latency{step:home}: max < 1s"])
        .draft
        .unwrap();
    let keys: Vec<&str> = d.thresholds.iter().map(|t| t.metric_key.as_str()).collect();
    assert_eq!(keys, ["errors", "latency", "latency{step:home}"]);
    let built = flags(&[
        "latency p95 < 200ms",
        "latency{step:hom}: p95 < 1s",
        "latency: p95 <",
    ]);
    let found: Vec<String> = built
        .problems
        .iter()
        .map(|p| format!("{}:{}: {}", p.mark.line, p.path, p.message))
        .collect();
    assert_eq!(found.len(), 3, "{found:#?}");
    assert!(
        found[0].starts_with("0:--threshold: expected METRIC: CONDITION"),
        "{found:#?}"
    );
    assert!(found[1].contains("did you mean `home`?"), "{found:#?}");
    assert!(
        found.iter().all(|f| f.starts_with("0:--threshold: ")),
        "{found:#?}"
    );
}

const SCENARIOS: &str = r#"
target: http://127.0.0.1:8080
scenarios:
  browse:
    phases:
      - { name: steady, duration: 10s, arrival_rate: 20 }
    flows:
      - { name: look, steps: [ { get: /products, name: list } ] }
  buy:
    start_after: 2s
    phases:
      - { name: steady, duration: 4s, arrival_rate: 5 }
      - { name: spike, duration: 2s, vus: 3 }
    flows:
      - { name: pay, weight: 2, steps: [ { post: /orders, name: order } ] }
      - { name: peek, steps: [ { get: /products, name: list } ] }
thresholds:
  latency{scenario:buy}: [ p95 < 1s ]
  errors{scenario:buy, phase:spike, step:order}: [ rate < 1% ]
  requests{phase:spike}: [ count > 0 ]
"#;

#[test]
fn scenarios_lay_out_their_phases_and_flows_and_resolve_thresholds() {
    let d = draft(SCENARIOS, Path::new("."));
    let names: Vec<_> = d.scenarios.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["browse", "buy"]);
    assert_eq!(d.scenarios[0].phases, 0..1);
    assert_eq!(d.scenarios[0].flows, 0..1);
    assert_eq!(d.scenarios[1].phases, 1..3);
    assert_eq!(d.scenarios[1].flows, 1..3);
    assert_eq!(d.scenarios[1].start_after, Duration::from_secs(2));
    assert_eq!(d.flows[1].weight, 2);
    let t = &d.thresholds;
    assert_eq!(t[0].scenario.as_ref().map(|s| s.phases.clone()), Some(1..3));
    assert_eq!(t[0].phase, None);
    assert_eq!(t[1].phase, Some(2));
    assert_eq!(t[1].scenario.as_ref().map(|s| s.name.as_str()), Some("buy"));
    // `spike` is buy's only: unambiguous without the scenario.
    assert_eq!((t[2].phase, t[2].scenario.is_none()), (Some(2), true));
    let plan = d.into_plan("s.yaml".into());
    assert_eq!(plan.planned_duration(), Some(Duration::from_secs(10)));
    assert_eq!(plan.shape().scenarios, 2);
}

#[test]
fn scale_to_scales_every_scenario_by_one_factor() {
    let built = with(
        SCENARIOS,
        Overrides {
            scale_to: Some(Duration::from_secs(5)),
            ..Overrides::default()
        },
    );
    assert!(built.problems.is_empty(), "{:?}", built.problems);
    let d = built.draft.unwrap();
    let secs: Vec<_> = d.phases.iter().map(|p| p.planned_duration()).collect();
    let s = |ms| Some(Duration::from_millis(ms));
    // browse (10 s) is the longest: everything is halved.
    assert_eq!(secs, [s(5000), s(2000), s(1000)]);
    assert_eq!(d.scenarios[1].start_after, Duration::from_secs(1));
}

#[test]
fn scenarios_refuse_the_flags_that_replace_phases() {
    use crate::LoadOverride;
    let flags = with(
        SCENARIOS,
        Overrides {
            load: Some(LoadOverride {
                vus: Some(2),
                duration: Some(Duration::from_secs(1)),
                ..LoadOverride::default()
            }),
            profile: Some("peak".into()),
            ..Overrides::default()
        },
    );
    let messages: Vec<_> = flags.problems.iter().map(|p| p.message.as_str()).collect();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(
        messages.iter().any(|m| m.contains("drop the flags")),
        "{messages:?}"
    );
    assert!(
        messages.iter().any(|m| m.contains("--profile peak")),
        "{messages:?}"
    );
    // A scenario threshold in a file without scenarios.
    let plain = build(
        "target: http://127.0.0.1:8080\nphases: [ { duration: 1s, vus: 1 } ]\nflows: [ { steps: [ { get: / } ] } ]\nthresholds:\n  latency{scenario:buy}: [ p95 < 1s ]\n",
        Path::new("."),
    );
    assert_eq!(plain.problems.len(), 1, "{:?}", plain.problems);
    assert!(plain.problems[0].message.contains("has no `scenarios:`"));
    assert_eq!(plain.problems[0].mark.line, 5);
}
