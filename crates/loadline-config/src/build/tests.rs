use std::path::Path;
use std::time::Duration;

use loadline_core::plan::{Pacing, Stop, DEFAULT_MAX_VUS};
use loadline_core::threshold::MetricName;
use loadline_protocols::http::{BodySpec, CaptureSource, Check, UrlSpec};

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
                    max_vus: 500
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
    let http = d.http.as_ref().unwrap();
    assert!(http.cookies && !http.insecure);

    // The first request: relative URL, default headers, status check, JSON capture.
    let StepDraft::Http(list) = &d.flows[0].steps[0] else {
        panic!("not an HTTP step")
    };
    assert_eq!(list.method, ::http::Method::GET);
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
    assert!(matches!(list.checks.as_slice(), [Check::Status(s)] if s == &[200]));
    assert!(matches!(
        list.captures.as_slice(),
        [c] if c.name == "first_id" && c.slot == 0 && matches!(c.source, CaptureSource::Json(_))
    ));
    assert!(matches!(&d.flows[0].steps[1], StepDraft::Think(r) if r.max == Duration::from_secs(3)));

    // The loop's request: header merged over the defaults, JSON body, capture slot 1.
    let StepDraft::Loop { count: 2, steps } = &d.flows[1].steps[1] else {
        panic!("not a loop of 2")
    };
    let StepDraft::Http(order) = &steps[0] else {
        panic!("not an HTTP step")
    };
    assert_eq!(order.group, 3);
    let names: Vec<_> = order.headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["accept", "authorization"]);
    assert!(matches!(order.body, BodySpec::Json(_)));
    assert!(matches!(order.checks.as_slice(), [Check::Status(s)] if s == &[201]));
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

/// One malformed file: its lines, the line of the first error, and words its
/// message must hold.
struct Case {
    name: &'static str,
    lines: &'static [&'static str],
    line: usize,
    words: &'static [&'static str],
}

const fn case(
    name: &'static str,
    lines: &'static [&'static str],
    line: usize,
    words: &'static [&'static str],
) -> Case {
    Case {
        name,
        lines,
        line,
        words,
    }
}

const CASES: &[Case] = &[
    case(
        "YAML syntax error",
        &[
            "target: http://127.0.0.1:8080",
            "phases: [ { vus: 1 }",
            "flows: []",
        ],
        3,
        &["invalid YAML"],
    ),
    case(
        "unknown top-level key",
        &[
            "target: http://127.0.0.1:8080",
            "phase:",
            "  - { duration: 1s, vus: 1 }",
            "flows: [ { steps: [ { get: / } ] } ]",
        ],
        2,
        &["unknown key `phase`", "did you mean `phases`?"],
    ),
    case(
        "misspelt arrival_rate",
        &[
            "target: http://127.0.0.1:8080",
            "phases:",
            "  - duration: 10s",
            "    arival_rate: 5",
            "flows: [ { steps: [ { get: / } ] } ]",
        ],
        4,
        &[
            "unknown key `arival_rate`",
            "expected one of duration, arrival_rate, ramp_to, max_vus, vus, iterations, name",
            "did you mean `arrival_rate`?",
        ],
    ),
    case(
        "string for vus",
        &[
            "target: http://127.0.0.1:8080",
            "phases:",
            "  - duration: 10s",
            "    vus: ten",
            "flows: [ { steps: [ { get: / } ] } ]",
        ],
        4,
        &["expected an integer", "found the string \"ten\""],
    ),
    case(
        "bad duration",
        &[
            "target: http://127.0.0.1:8080",
            "phases:",
            "  - duration: 10x",
            "    vus: 1",
            "flows: [ { steps: [ { get: / } ] } ]",
        ],
        3,
        &["unknown unit `x`", "10x"],
    ),
    case(
        "negative rate",
        &[
            "target: http://127.0.0.1:8080",
            "phases:",
            "  - duration: 10s",
            "    arrival_rate: -5",
            "flows: [ { steps: [ { get: / } ] } ]",
        ],
        4,
        &["expected a rate from 0 to", "found -5"],
    ),
    case(
        "both arrival_rate and vus",
        &[
            "target: http://127.0.0.1:8080",
            "phases:",
            "  - duration: 10s",
            "    arrival_rate: 5",
            "    vus: 3",
            "flows: [ { steps: [ { get: / } ] } ]",
        ],
        5,
        &["either `arrival_rate`", "not both"],
    ),
    case(
        "neither arrival_rate nor vus",
        &[
            "target: http://127.0.0.1:8080",
            "phases:",
            "  - duration: 10s",
            "flows: [ { steps: [ { get: / } ] } ]",
        ],
        3,
        &["needs `arrival_rate`", "or `vus`"],
    ),
    case(
        "vus without duration or iterations",
        &[
            "target: http://127.0.0.1:8080",
            "phases:",
            "  - name: p",
            "    vus: 3",
            "flows: [ { steps: [ { get: / } ] } ]",
        ],
        3,
        &["needs a `duration` or a number of `iterations`"],
    ),
    case(
        "iterations with arrival_rate",
        &[
            "target: http://127.0.0.1:8080",
            "phases:",
            "  - duration: 10s",
            "    arrival_rate: 5",
            "    iterations: 100",
            "flows: [ { steps: [ { get: / } ] } ]",
        ],
        5,
        &["`iterations` goes with `vus`"],
    ),
    case(
        "zero weight",
        &[
            "target: http://127.0.0.1:8080",
            "phases: [ { duration: 1s, vus: 1 } ]",
            "flows:",
            "  - weight: 0",
            "    steps: [ { get: / } ]",
        ],
        4,
        &["expected an integer from 1 to", "found 0"],
    ),
    case(
        "empty flows",
        &[
            "target: http://127.0.0.1:8080",
            "phases: [ { duration: 1s, vus: 1 } ]",
            "flows: []",
        ],
        3,
        &["`flows` is empty"],
    ),
    case(
        "empty steps",
        &[
            "target: http://127.0.0.1:8080",
            "phases: [ { duration: 1s, vus: 1 } ]",
            "flows:",
            "  - name: f",
            "    steps: []",
        ],
        5,
        &["`steps` is empty"],
    ),
    case(
        "unknown step kind",
        &[
            "target: http://127.0.0.1:8080",
            "phases: [ { duration: 1s, vus: 1 } ]",
            "flows:",
            "  - steps:",
            "      - gett: /products",
        ],
        5,
        &["unknown key `gett`", "did you mean `get`?"],
    ),
    case(
        "two kinds in one step",
        &[
            "target: http://127.0.0.1:8080",
            "phases: [ { duration: 1s, vus: 1 } ]",
            "flows:",
            "  - steps:",
            "      - get: /a",
            "        post: /b",
        ],
        6,
        &["found both `get` and `post`"],
    ),
    case(
        "unclosed template",
        &[
            "target: http://127.0.0.1:8080",
            "phases: [ { duration: 1s, vus: 1 } ]",
            "flows:",
            "  - steps:",
            "      - get: /a/{{ x",
        ],
        5,
        &["never closed"],
    ),
    case(
        "unknown template name",
        &[
            "target: http://127.0.0.1:8080",
            "vars: { page_size: 20 }",
            "phases: [ { duration: 1s, vus: 1 } ]",
            "flows:",
            "  - steps:",
            "      - get: /a?n={{ page_sise }}",
        ],
        6,
        &["unknown name `page_sise`", "did you mean `page_size`?"],
    ),
    case(
        "capture used before it is assigned",
        &[
            "target: http://127.0.0.1:8080",
            "phases: [ { duration: 1s, vus: 1 } ]",
            "flows:",
            "  - steps:",
            "      - get: /orders",
            "        headers: { authorization: 'Bearer {{ token }}' }",
            "      - post: /login",
            "        capture: { token: { json: $.token } }",
        ],
        6,
        &["`token` is used before any step captures it"],
    ),
    case(
        "unknown data column",
        &[
            "target: http://127.0.0.1:8080",
            "data: { users: { file: users.csv } }",
            "phases: [ { duration: 1s, vus: 1 } ]",
            "flows:",
            "  - steps:",
            "      - get: /u/{{ users.nme }}",
        ],
        6,
        &[
            "no column `nme`",
            "name, password",
            "did you mean `users.name`?",
        ],
    ),
    case(
        "missing data file",
        &[
            "target: http://127.0.0.1:8080",
            "data:",
            "  users:",
            "    file: nope.csv",
            "phases: [ { duration: 1s, vus: 1 } ]",
            "flows: [ { steps: [ { get: / } ] } ]",
        ],
        4,
        &["cannot read data file `nope.csv`"],
    ),
    case(
        "empty data file",
        &[
            "target: http://127.0.0.1:8080",
            "data:",
            "  users: { file: empty.csv }",
            "phases: [ { duration: 1s, vus: 1 } ]",
            "flows: [ { steps: [ { get: / } ] } ]",
        ],
        3,
        &["`empty.csv` is empty", "header row"],
    ),
    case(
        "invalid JSONPath",
        &[
            "target: http://127.0.0.1:8080",
            "phases: [ { duration: 1s, vus: 1 } ]",
            "flows:",
            "  - steps:",
            "      - get: /a",
            "        capture:",
            "          id: { json: '$.items[' }",
        ],
        7,
        &["invalid JSONPath `$.items[`"],
    ),
    case(
        "invalid regex",
        &[
            "target: http://127.0.0.1:8080",
            "phases: [ { duration: 1s, vus: 1 } ]",
            "flows:",
            "  - steps:",
            "      - get: /a",
            "        capture:",
            "          id: { regex: 'id=(\\d+' }",
        ],
        7,
        &["invalid regex"],
    ),
    case(
        "regex group out of range",
        &[
            "target: http://127.0.0.1:8080",
            "phases: [ { duration: 1s, vus: 1 } ]",
            "flows:",
            "  - steps:",
            "      - get: /a",
            "        capture:",
            "          id:",
            "            regex: 'id=(\\d+)'",
            "            group: 2",
        ],
        9,
        &["expected an integer from 0 to 1, found 2"],
    ),
    case(
        "bad threshold expression",
        &[
            "target: http://127.0.0.1:8080",
            "phases: [ { duration: 1s, vus: 1 } ]",
            "flows: [ { steps: [ { get: / } ] } ]",
            "thresholds:",
            "  latency:",
            "    - p95 < 300ms",
            "    - p95 300ms",
        ],
        7,
        &["expected a comparison"],
    ),
    case(
        "unknown metric",
        &[
            "target: http://127.0.0.1:8080",
            "phases: [ { duration: 1s, vus: 1 } ]",
            "flows: [ { steps: [ { get: / } ] } ]",
            "thresholds:",
            "  latncy: [ p95 < 300ms ]",
        ],
        5,
        &["unknown metric `latncy`", "latency"],
    ),
    case(
        "threshold on an unknown step",
        &[
            "target: http://127.0.0.1:8080",
            "phases: [ { duration: 1s, vus: 1 } ]",
            "flows: [ { steps: [ { get: /a, name: home } ] } ]",
            "thresholds:",
            "  'latency{step:nope}': [ p95 < 300ms ]",
        ],
        5,
        &["no step has the name `nope`", "`home`"],
    ),
    case(
        "invalid target URL",
        &[
            "target: http//127.0.0.1:8080",
            "phases: [ { duration: 1s, vus: 1 } ]",
            "flows: [ { steps: [ { get: / } ] } ]",
        ],
        1,
        &["invalid target URL", "expected e.g. http://"],
    ),
    case(
        "relative URL without target",
        &[
            "phases: [ { duration: 1s, vus: 1 } ]",
            "flows:",
            "  - steps:",
            "      - get: http://127.0.0.1:8080/a",
            "      - get: /b",
        ],
        5,
        &["`/b` is a path but the scenario has no `target:`"],
    ),
    case(
        "URL that is neither a path nor http(s)",
        &[
            "target: http://127.0.0.1:8080",
            "phases: [ { duration: 1s, vus: 1 } ]",
            "flows: [ { steps: [ { get: products } ] } ]",
        ],
        3,
        &["expected a path starting with / or an absolute http(s) URL"],
    ),
    case(
        "duplicate keys",
        &[
            "target: http://127.0.0.1:8080",
            "phases:",
            "  - duration: 10s",
            "    vus: 1",
            "    vus: 2",
            "flows: [ { steps: [ { get: / } ] } ]",
        ],
        5,
        &["duplicate key `vus`", "line 4"],
    ),
    case(
        "json and body together",
        &[
            "target: http://127.0.0.1:8080",
            "phases: [ { duration: 1s, vus: 1 } ]",
            "flows:",
            "  - steps:",
            "      - post: /a",
            "        json: { a: 1 }",
            "        body: hello",
        ],
        7,
        &["found both `json` and `body`"],
    ),
    case(
        "bad header name",
        &[
            "target: http://127.0.0.1:8080",
            "phases: [ { duration: 1s, vus: 1 } ]",
            "flows:",
            "  - steps:",
            "      - get: /a",
            "        headers:",
            "          bad header: x",
        ],
        7,
        &["invalid header name `bad header`"],
    ),
    case(
        "absurd number of VUs",
        &[
            "target: http://127.0.0.1:8080",
            "phases:",
            "  - duration: 10s",
            "    vus: 10000000",
            "flows: [ { steps: [ { get: / } ] } ]",
        ],
        4,
        &["expected an integer from 1 to 100000", "found 10000000"],
    ),
    case(
        "float where an integer is needed",
        &[
            "target: http://127.0.0.1:8080",
            "phases:",
            "  - duration: 10s",
            "    vus: 2.5",
            "flows: [ { steps: [ { get: / } ] } ]",
        ],
        4,
        &["expected an integer", "2.5"],
    ),
    case(
        "loop of zero",
        &[
            "target: http://127.0.0.1:8080",
            "phases: [ { duration: 1s, vus: 1 } ]",
            "flows:",
            "  - steps:",
            "      - loop: 0",
            "        steps: [ { get: / } ]",
        ],
        5,
        &["expected an integer from 1 to", "found 0"],
    ),
    case(
        "missing phases",
        &[
            "target: http://127.0.0.1:8080",
            "flows: [ { steps: [ { get: / } ] } ]",
        ],
        1,
        &["missing key `phases`"],
    ),
    case(
        "a data file used without a column",
        &[
            "target: http://127.0.0.1:8080",
            "data: { users: { file: users.csv } }",
            "phases: [ { duration: 1s, vus: 1 } ]",
            "flows: [ { steps: [ { get: '/u/{{ users }}' } ] } ]",
        ],
        4,
        &["`users` is a data file: use `users.<column>`"],
    ),
    case(
        "a capture hiding a var",
        &[
            "target: http://127.0.0.1:8080",
            "vars: { token: abc }",
            "phases: [ { duration: 1s, vus: 1 } ]",
            "flows:",
            "  - steps:",
            "      - post: /login",
            "        capture: { token: { json: $.token } }",
        ],
        7,
        &["would hide the var"],
    ),
    case(
        "unknown data order",
        &[
            "target: http://127.0.0.1:8080",
            "data: { users: { file: users.csv, order: randon } }",
            "phases: [ { duration: 1s, vus: 1 } ]",
            "flows: [ { steps: [ { get: / } ] } ]",
        ],
        2,
        &["unknown value `randon`", "did you mean `random`?"],
    ),
    case(
        "a status code out of range",
        &[
            "target: http://127.0.0.1:8080",
            "phases: [ { duration: 1s, vus: 1 } ]",
            "flows:",
            "  - steps:",
            "      - get: /",
            "        check: { status: [200, 99] }",
        ],
        6,
        &["from 100 to 599, found 99"],
    ),
];

#[test]
fn malformed_files_report_their_first_error_where_it_is() {
    let dir = data_dir();
    let mut failures = Vec::new();
    for c in CASES {
        let text = c.lines.join("\n") + "\n";
        let built = build(&text, dir.path());
        let Some(first) = built.problems.first() else {
            failures.push(format!("{}: no error", c.name));
            continue;
        };
        let missing: Vec<_> = c
            .words
            .iter()
            .filter(|w| !first.message.contains(*w))
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
    assert!(CASES.len() >= 25);
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
    let settings = d.http.unwrap();
    assert!(settings.insecure);
    assert_eq!(settings.max_body, 2048);
    assert!(
        matches!(d.phases[0].pacing, Pacing::Open { max_vus, .. } if max_vus == DEFAULT_MAX_VUS)
    );
    let StepDraft::Http(a) = &d.flows[0].steps[0] else {
        panic!()
    };
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
    let StepDraft::Http(b) = &d.flows[0].steps[1] else {
        panic!()
    };
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
    let StepDraft::Http(s) = &d.flows[0].steps[0] else {
        panic!()
    };
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
