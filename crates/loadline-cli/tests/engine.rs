//! What loadline counts equals what the server served; captures, feeders, cookies
//! and open-model arrival rates work as documented.

use crate::util::*;

#[test]
fn counts_equal_the_server_counts_exactly() {
    let srv = TestServer::start();
    let sc = Scenario::new(&format!(
        r#"
target: {}
phases:
  - vus: 4
    iterations: 60
flows:
  - name: mixed
    steps:
      - get: /hello
      - get: /status/500
        name: failing
      - loop: 2
        steps:
          - get: /products/{{{{ $randint(1, 9) }}}}
            check: {{ status: 200, body_contains: '"id"' }}
"#,
        srv.url()
    ));
    let (out, summary) = run_scenario(&sc, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = summary.expect("summary written");
    let seen = srv.seen();
    assert_eq!(seen.count("GET /hello"), 60);
    assert_eq!(seen.count("GET /status/500"), 60);
    assert_eq!(seen.count("GET /products/{id}"), 120);
    assert_eq!(s["requests"]["total"], seen.total());
    assert_eq!(s["requests"]["failed"], 60);
    assert_eq!(s["iterations"]["total"], 60);
    assert_eq!(s["status"], "passed");
    let hello = step(&s, "GET /hello");
    assert_eq!(hello["requests"], 60);
    assert_eq!(hello["status"]["200"], 60);
    let failing = step(&s, "failing");
    assert_eq!(failing["failed"], 60);
    assert_eq!(failing["status"]["500"], 60);
    let detail = step(&s, "GET /products/{{ $randint(1, 9) }}");
    assert_eq!(detail["requests"], 120);
    assert_eq!(detail["checks"]["passed"], 240);
    assert_eq!(s["checks"]["passed"], 240);
    assert_eq!(s["checks"]["failed"], 0);
    assert!(seen.details.iter().all(|id| (1..=9).contains(id)));
    assert_eq!(s["phases"][0]["iterations"], 60);
}

#[test]
fn captures_feeders_and_cookies_deliver_the_right_values() {
    let srv = TestServer::start();
    let sc = Scenario::new(&format!(
        r#"
target: {}
data:
  users: {{ file: users.csv, order: sequential }}
vars: {{ start_page: 3 }}
phases:
  - vus: 1
    iterations: 6
flows:
  - name: shop
    steps:
      - get: /products?page={{{{ start_page }}}}{{{{ $iteration }}}}
        name: list
        capture:
          first_id: {{ json: "$.items[0].id" }}
          page: {{ regex: '"page":(\d+)' }}
      - get: /products/{{{{ first_id }}}}
        name: detail
      - get: /products/{{{{ page }}}}
        name: by page
      - post: /login
        json: {{ user: "{{{{ users.name }}}}", password: "{{{{ users.password }}}}" }}
        capture:
          token: {{ json: "$.token" }}
      - post: /orders
        headers: {{ authorization: "Bearer {{{{ token }}}}" }}
        json: {{ product: "{{{{ first_id }}}}", qty: 1 }}
        check: {{ status: 201 }}
      - get: /cookie/set
      - get: /cookie/check
        check: {{ status: 200 }}
"#,
        srv.url()
    ));
    sc.file("users.csv", "name,password\nann,pw-a\nbob,pw-b\ncid,pw-c\n");
    let (out, summary) = run_scenario(&sc, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = summary.unwrap();
    let seen = srv.seen();
    // Pages 30..35 in order (one VU); each detail asked for the first id listed
    // (a JSON capture), then for the page number (a regex capture).
    assert_eq!(seen.pages, vec![30, 31, 32, 33, 34, 35]);
    let expected: Vec<u64> = seen.pages.iter().flat_map(|p| [p * 100 + 1, *p]).collect();
    assert_eq!(seen.details, expected);
    let users: Vec<(&str, &str)> = seen
        .logins
        .iter()
        .map(|(u, p)| (u.as_str(), p.as_str()))
        .collect();
    assert_eq!(
        users,
        vec![
            ("ann", "pw-a"),
            ("bob", "pw-b"),
            ("cid", "pw-c"),
            ("ann", "pw-a"),
            ("bob", "pw-b"),
            ("cid", "pw-c")
        ]
    );
    let tokens: Vec<&str> = seen.order_tokens.iter().map(String::as_str).collect();
    assert_eq!(
        tokens,
        vec!["tok-ann", "tok-bob", "tok-cid", "tok-ann", "tok-bob", "tok-cid"]
    );
    // The JSON capture kept its type: the order endpoint answers 400 to a string.
    assert_eq!(step(&s, "POST /orders")["status"]["201"], 6);
    assert_eq!(s["checks"]["failed"], 0);
    assert!(
        seen.cookie_checks.iter().all(|ok| *ok),
        "{:?}",
        seen.cookie_checks
    );
    assert_eq!(seen.cookie_checks.len(), 6);
    assert_eq!(s["requests"]["total"], seen.total());
}

#[test]
fn open_model_reaches_its_arrival_rate() {
    let srv = TestServer::start();
    let sc = Scenario::new(&format!(
        r#"
target: {}
phases:
  - name: constant
    duration: 3s
    arrival_rate: 100
flows:
  - steps:
      - get: /tick
"#,
        srv.url()
    ));
    let (out, summary) = run_scenario(&sc, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = summary.unwrap();
    let seen = srv.seen();
    let n = seen.ticks.len();
    assert_eq!(n as u64, seen.count("GET /tick"));
    assert_eq!(s["iterations"]["total"], n as u64);
    assert_eq!(s["phases"][0]["dropped"], 0);
    // 300 arrivals planned: all of them, spread over the 3 s at 100/s (±2%).
    assert_eq!(n, 300);
    let span = seen.ticks[n - 1]
        .duration_since(seen.ticks[0])
        .as_secs_f64();
    let rate = (n - 1) as f64 / span;
    assert!(
        (rate - 100.0).abs() <= 2.0,
        "rate {rate:.2}/s over {span:.3}s"
    );
    assert!(s["schedule_lag_ms"]["p99"].as_f64().is_some());
}

/// The scenario of the format's contract (examples/shop-smoke.yaml) runs unchanged
/// but for its target, which points at the test server.
#[test]
fn the_contract_example_runs_unchanged() {
    let srv = TestServer::start();
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples");
    let yaml = std::fs::read_to_string(format!("{root}/shop-smoke.yaml")).unwrap();
    assert!(yaml.contains("target: http://127.0.0.1:8080"));
    let yaml = yaml.replace("http://127.0.0.1:8080", &srv.url());
    let sc = Scenario::new(&yaml);
    sc.file(
        "users.csv",
        &std::fs::read_to_string(format!("{root}/users.csv")).unwrap(),
    );
    let (out, summary) = run_scenario(&sc, &[]);
    let s = summary.expect("summary written");
    let seen = srv.seen();
    assert_eq!(s["requests"]["total"], seen.total(), "{}", text(&out));
    assert_eq!(
        step(&s, "list products")["requests"],
        seen.count("GET /products")
    );
    assert_eq!(
        step(&s, "product detail")["requests"],
        seen.count("GET /products/{id}")
    );
    assert_eq!(
        step(&s, "POST /login")["requests"],
        seen.count("POST /login")
    );
    assert_eq!(
        step(&s, "POST /orders")["requests"],
        seen.count("POST /orders")
    );
    assert_eq!(seen.count("POST /orders"), 2 * seen.count("POST /login"));
    assert_eq!(s["requests"]["failed"], 0);
    assert_eq!(s["phases"][2]["iterations"], 100);
    assert!(seen.order_tokens.iter().all(|t| t.starts_with("tok-")));
    // Every SLA holds on loopback, except perhaps `iterations: rate > 10/s`, which
    // this example's think times put near its bound (about 11/s); that one must
    // agree with the counts.
    let thresholds = s["thresholds"].as_array().unwrap();
    assert_eq!(thresholds.len(), 6);
    for t in thresholds {
        if t["metric"] == "iterations" {
            let rate =
                s["iterations"]["total"].as_f64().unwrap() / s["duration_s"].as_f64().unwrap();
            assert!(
                (t["value"].as_f64().unwrap() - rate).abs() < 0.05,
                "{t} vs {rate}"
            );
            assert_eq!(t["passed"], rate > 10.0);
        } else {
            assert_eq!(t["passed"], true, "{t}");
        }
    }
    let expected = if s["status"] == "passed" { 0 } else { 3 };
    assert_eq!(out.status.code(), Some(expected), "{}", text(&out));
}

/// A redirect to another host is not followed unless the scenario says
/// `redirects: any`; then only the headers it marks to forward go along.
#[test]
fn redirects_stay_on_the_host_unless_the_scenario_allows_any() {
    let here = TestServer::start();
    // The same machine under another host name: `[::1]` is not `127.0.0.1`.
    let elsewhere = TestServer::start_on("[::1]:0");
    let away = format!("{}/landing", elsewhere.url());
    let same = format!("{}/landing", here.url());
    let scenario = |defaults: &str| {
        Scenario::new(&format!(
            r#"
target: {}
defaults:
  headers: {{ x-api-key: secret-key }}
{defaults}
phases:
  - vus: 1
    iterations: 3
flows:
  - name: f
    steps:
      - get: /redirect?to={away}
        name: away
      - get: /redirect?to={same}
        name: same
"#,
            here.url()
        ))
    };

    // Default (same_host): the off-host redirect ends with its 302, counted.
    let (out, summary) = run_scenario(&scenario(""), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = summary.expect("summary written");
    assert_eq!(elsewhere.seen().total(), 0, "no request left the host");
    assert_eq!(step(&s, "away")["status"]["302"], 3);
    assert_eq!(step(&s, "same")["status"]["200"], 3);
    assert_eq!(
        here.seen().landing_keys,
        vec![Some("secret-key".to_string()); 3]
    );
    let notes = s["notes"].to_string();
    assert!(
        notes.contains("3 redirects to another host were not followed"),
        "{notes}"
    );

    // `any`: followed, and the key stays behind unless it is marked to forward.
    let (out, summary) = run_scenario(&scenario("  redirects: any"), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = summary.expect("summary written");
    assert_eq!(step(&s, "away")["status"]["200"], 3);
    assert_eq!(elsewhere.seen().landing_keys, vec![None; 3]);
    assert!(!s["notes"].to_string().contains("redirects to another host"));

    let (out, _) = run_scenario(
        &scenario("  redirects: any\n  forward_headers: [x-api-key]"),
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let keys = &elsewhere.seen().landing_keys;
    assert_eq!(keys.len(), 6);
    assert!(
        keys[3..].iter().all(|k| k.as_deref() == Some("secret-key")),
        "{keys:?}"
    );
}

/// JSON, header and latency checks: each failing one is named in the summary
/// with how often it failed and the value it saw; passing ones count passed.
#[test]
fn json_and_header_checks_name_the_expected_and_the_actual_value() {
    let srv = TestServer::start();
    let sc = Scenario::new(&format!(
        r#"
target: {}
phases:
  - vus: 2
    iterations: 6
flows:
  - steps:
      - get: /products?page=2
        name: list
        capture: {{ first: {{ json: "$.items[0].id" }} }}
        check:
          status: 200
          latency_below: 30s
          headers:
            content-type: {{ matches: "^application/json" }}
          json:
            - {{ path: $.page, equals: 2 }}
            - {{ path: $.page, one_of: [1, 2] }}
            - {{ path: "$.items[0].id", gt: 200, lt: 202 }}
            - {{ path: "$.items[2].name", matches: "^p[0-9]$" }}
            - {{ path: "$.items[3]", exists: false }}
            - {{ path: $.page, not_equals: 3 }}
      - get: /products/{{{{ first }}}}
        name: detail
        check:
          json:
            - {{ path: $.id, equals: "{{{{ first }}}}" }}
            - {{ path: $.name, equals: widget }}
            - {{ path: $.price, exists: true }}
            - {{ path: $.id, lt: 100 }}
          headers:
            content-type: {{ equals: text/plain }}
"#,
        srv.url()
    ));
    let (out, summary) = run_scenario(&sc, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = summary.expect("summary written");
    let list = step(&s, "list");
    assert_eq!(list["checks"]["passed"], 6 * 9, "{list}");
    assert_eq!(list["checks"]["failed"], 0);
    assert!(list["checks"].get("failures").is_none());
    let detail = step(&s, "detail");
    assert_eq!(detail["checks"]["passed"], 6);
    assert_eq!(detail["checks"]["failed"], 6 * 4);
    let failures = detail["checks"]["failures"].as_array().expect("failures");
    let seen: Vec<(String, u64, String)> = failures
        .iter()
        .map(|f| {
            (
                f["check"].as_str().unwrap_or("").to_string(),
                f["failed"].as_u64().unwrap_or(0),
                f["actual"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (
                r#"header content-type equals "text/plain""#.to_string(),
                6,
                r#""application/json""#.to_string()
            ),
            (
                r#"json $.name equals "widget""#.to_string(),
                6,
                r#""thing""#.to_string()
            ),
            ("json $.price exists".to_string(), 6, "missing".to_string()),
            ("json $.id < 100".to_string(), 6, "201".to_string()),
        ]
    );

    // The terminal names them too.
    let out = loadline()
        .args(["run", "--no-monitor"])
        .arg(&sc.path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(r#"6 × detail · json $.name equals "widget" (actual: "thing")"#),
        "{stdout}"
    );
}

/// `http: { version: 2 }` sends HTTP/2 (h2c with prior knowledge on plain
/// http), a step can go back to 1.1, and `auto` stays on HTTP/1.1 without TLS;
/// the server counts what loadline counts.
#[test]
fn http2_requests_are_http2_on_the_wire() {
    let srv = TestServer::start();
    let sc = Scenario::new(&format!(
        r#"
target: {}
http: {{ version: 2, max_streams: 2 }}
phases:
  - vus: 4
    iterations: 20
flows:
  - steps:
      - get: /version
        name: h2
        check: {{ body_contains: "HTTP/2.0" }}
      - get: /version
        name: h1
        http: {{ version: 1.1 }}
        check: {{ body_contains: "HTTP/1.1" }}
      - get: /version
        name: auto
        http: {{ version: auto }}
        check: {{ body_contains: "HTTP/1.1" }}
"#,
        srv.url()
    ));
    let (out, summary) = run_scenario(&sc, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = summary.expect("summary written");
    for name in ["h2", "h1", "auto"] {
        let st = step(&s, name);
        assert_eq!(st["requests"], 20, "{st}");
        assert_eq!(st["checks"]["passed"], 20, "{st}");
    }
    assert_eq!(srv.seen().count("GET /version"), 60);
    assert_eq!(s["requests"]["total"], 60);

    // A misspelt version is refused where it is written.
    let bad = Scenario::new(&format!(
        "target: {}\nhttp: {{ version: 3 }}\nphases: [ {{ vus: 1, iterations: 1 }} ]\nflows: [ {{ steps: [ {{ get: /hello }} ] }} ]\n",
        srv.url()
    ));
    let out = loadline().arg("validate").arg(&bad.path).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains(":2:18: "), "{}", text(&out));
    assert!(text(&out).contains("expected an HTTP version: 1.1, 2 or auto"));
}

/// nginx itself logs loadline's `version: 2` requests as HTTP/2.0 (h2c with
/// prior knowledge). Skipped, with the reason, where nginx is not installed.
#[test]
fn nginx_logs_http2_requests_as_http2() {
    let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let Some(nginx) = nginx else {
        eprintln!("skipped: nginx is not installed (apt install nginx)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().display().to_string();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let conf = format!(
        r#"worker_processes 1;
daemon off;
master_process off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 64; }}
http {{
    log_format proto '$server_protocol $status $request_uri';
    access_log {prefix}/access.log proto;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server {{
        listen 127.0.0.1:{port} http2;
        location / {{ default_type text/plain; return 200 "hello\n"; }}
    }}
}}
"#
    );
    let conf_path = dir.path().join("nginx.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let mut server = std::process::Command::new(nginx)
        .arg("-c")
        .arg(&conf_path)
        .arg("-p")
        .arg(dir.path())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while !reachable(port) {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "nginx did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let sc = Scenario::new(&format!(
        "target: http://127.0.0.1:{port}\nhttp: {{ version: 2 }}\nphases: [ {{ vus: 2, iterations: 10 }} ]\nflows: [ {{ steps: [ {{ get: /h2, check: {{ status: 200, body_contains: hello }} }} ] }} ]\n"
    ));
    let (out, summary) = run_scenario(&sc, &["--no-monitor"]);
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = summary.expect("summary written");
    assert_eq!(s["requests"]["total"], 10);
    assert_eq!(s["checks"]["passed"], 20);
    let log = std::fs::read_to_string(dir.path().join("access.log")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 10, "{log}");
    assert!(lines.iter().all(|l| *l == "HTTP/2.0 200 /h2"), "{log}");
}
