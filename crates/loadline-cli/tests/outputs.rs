//! The run's outputs: the HTML report agrees with the JSON summary, the
//! streamed time series carries the monitors (the target's process found by its
//! port, a scraped Prometheus endpoint), survives SIGKILL line by line, and the
//! live Prometheus exporter answers during the run.

use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::*;

fn jsonl(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line {l:?}: {e}")))
        .collect()
}

#[test]
fn report_junit_markdown_and_series_agree_with_the_summary() {
    let srv = TestServer::start();
    let sc = Scenario::new(&format!(
        r#"
name: outputs
target: {}
phases:
  - vus: 3
    duration: 3s
thresholds:
  latency: ["p95 < 5s"]
  errors: ["rate < 1%"]
monitor:
  prometheus:
    - url: {}/metrics
      series: [test_jobs_total, test_depth]
flows:
  - steps:
      - get: /hello
        name: hello
        check: {{ status: 200 }}
      - get: /status/503
        name: unavailable
"#,
        srv.url(),
        srv.url()
    ));
    let (html, junit, md, series, csv) = (
        sc.out("r.html"),
        sc.out("r.xml"),
        sc.out("r.md"),
        sc.out("r.jsonl"),
        sc.out("r.csv"),
    );
    let (out, summary) = run_scenario(
        &sc,
        &[
            "--report",
            html.to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
            "--markdown",
            md.to_str().unwrap(),
            "--out",
            &format!("jsonl={}", series.display()),
            "--out",
            &format!("csv={}", csv.display()),
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let s = summary.unwrap();

    // The report's tables are the summary's numbers; its embedded summary is the summary.
    let page = std::fs::read_to_string(&html).unwrap();
    for st in s["steps"].as_array().unwrap() {
        let row = format!(
            "<td>{}</td><td class=\"num\" data-requests>{}</td><td class=\"num\" data-failed>{}</td>",
            st["name"].as_str().unwrap(),
            st["requests"],
            st["failed"]
        );
        assert!(page.contains(&row), "missing {row}");
    }
    let start = page.find("id=\"summary\">").unwrap() + "id=\"summary\">".len();
    let end = start + page[start..].find("</script>").unwrap();
    let embedded: Value = serde_json::from_str(&page[start..end]).unwrap();
    assert_eq!(embedded, s);
    assert!(
        !page.contains("src=\"http"),
        "the report must not fetch anything"
    );
    assert!(page.contains(">Throughput") && page.contains(">prom.test_depth"));

    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<testcase ").count(), 2);
    assert_eq!(xml.matches("<failure ").count(), 1);
    let md = std::fs::read_to_string(&md).unwrap();
    assert!(md.contains("| ❌ | `errors: rate < 1%` |"), "{md}");

    // The series: one point a second whose counts add up to the summary's, with
    // the scraped series in it.
    let points = jsonl(&series);
    assert!(points.len() >= 2, "{}", points.len());
    let total: u64 = points.iter().map(|p| p["requests"].as_u64().unwrap()).sum();
    assert_eq!(total, s["requests"]["total"].as_u64().unwrap());
    assert!(points
        .windows(2)
        .all(|w| w[0]["t"].as_f64() < w[1]["t"].as_f64()));
    let last = points.last().unwrap();
    assert_eq!(last["monitors"]["prom.test_depth"], 7.0, "{last}");
    let rates: Vec<f64> = points
        .iter()
        .filter_map(|p| p["monitors"]["prom.test_jobs_total:rate{queue=a}"].as_f64())
        .collect();
    assert!(
        !rates.is_empty() && rates.iter().all(|r| *r > 0.0),
        "{rates:?}"
    );
    let csv = std::fs::read_to_string(&csv).unwrap();
    assert!(csv.starts_with("t,series,value\n"));
    assert!(csv
        .lines()
        .skip(1)
        .all(|l| l.rsplit(',').next().unwrap().parse::<f64>().is_ok()));
    assert!(csv.contains(",prom.test_depth,7"));
}

#[test]
fn the_target_process_is_found_by_its_port_and_busy() {
    // The test server runs in this test process: it is the target's process.
    let srv = TestServer::start();
    let sc = Scenario::new(&format!(
        "target: {}\nphases:\n  - vus: 8\n    duration: 3s\nflows:\n  - steps:\n      - get: /products?page=3\n",
        srv.url()
    ));
    let series = sc.out("r.jsonl");
    let (out, _) = run_scenario(&sc, &["--out", &format!("jsonl={}", series.display())]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let key = format!("process.cpu_percent{{pid={}", std::process::id());
    let busiest = jsonl(&series)
        .iter()
        .flat_map(|p| {
            p["monitors"]
                .as_object()
                .unwrap()
                .iter()
                .filter(|(k, _)| k.starts_with(&key))
                .map(|(_, v)| v.as_f64().unwrap())
                .collect::<Vec<_>>()
        })
        .fold(0.0, f64::max);
    assert!(busiest > 0.0, "no CPU seen for {key}");
}

/// `monitor.processes` in each documented form (flow and block mappings of
/// `pid`, `name` and `port`, and the tagged `!pid 42`) finds this test process,
/// which serves the load.
#[test]
fn monitored_processes_are_found_by_pid_name_and_port() {
    let srv = TestServer::start();
    let pid = std::process::id();
    let exe = std::env::current_exe().unwrap();
    let name = exe.file_name().unwrap().to_str().unwrap().to_string();
    let port = srv.addr.port();
    let forms = [
        format!("  processes: [ {{ pid: {pid} }} ]"),
        format!("  processes:\n    - pid: {pid}"),
        format!("  processes: [ {{ name: \"{name}\" }} ]"),
        format!("  processes:\n    - name: \"{name}\""),
        format!("  processes: [ {{ port: {port} }} ]"),
        format!("  processes:\n    - port: {port}"),
        format!("  processes: [ !pid {pid} ]"),
        format!("  processes:\n    - !port {port}"),
    ];
    for form in forms {
        let sc = Scenario::new(&format!(
            "target: {}\nphases:\n  - vus: 1\n    duration: 1500ms\nmonitor:\n  interval: 200ms\n  \
             host: false\n  self_monitor: false\n  target_process: false\n{form}\nflows:\n  - steps:\n      \
             - get: /hello\n      - think: 50ms\n",
            srv.url()
        ));
        let series = sc.out("r.jsonl");
        let (out, _) = run_scenario(&sc, &["--out", &format!("jsonl={}", series.display())]);
        assert_eq!(out.status.code(), Some(0), "{form}\n{}", text(&out));
        let key = format!("process.rss_bytes{{pid={pid}");
        let seen = jsonl(&series).iter().any(|p| {
            p["monitors"]
                .as_object()
                .is_some_and(|m| m.keys().any(|k| k.starts_with(&key)))
        });
        assert!(seen, "{form}: no {key} series");
    }
}

#[test]
fn sigkill_leaves_a_series_that_parses_to_the_last_second() {
    let srv = TestServer::start();
    let sc = Scenario::new(&format!(
        "target: {}\nphases:\n  - vus: 2\n    duration: 60s\nflows:\n  - steps:\n      - get: /slow/20\n",
        srv.url()
    ));
    let series = sc.out("r.jsonl");
    let mut child = loadline()
        .arg("run")
        .arg(&sc.path)
        .args(["--quiet", "--prometheus-listen", "127.0.0.1:0"])
        .arg("--out")
        .arg(format!("jsonl={}", series.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while std::fs::read_to_string(&series).map_or(0, |t| t.lines().count()) < 3 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no series written"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(err.contains("/metrics"), "{err}");
    let text = std::fs::read_to_string(&series).unwrap();
    assert!(text.ends_with('\n'), "a torn last line");
    let points = jsonl(&series);
    assert!(points.len() >= 3);
    for (i, p) in points.iter().enumerate() {
        let t = p["t"].as_f64().unwrap();
        assert!((t - (i + 1) as f64).abs() < 0.5, "point {i} at t={t}");
    }
}

#[test]
fn the_prometheus_exporter_answers_during_the_run() {
    let srv = TestServer::start();
    let sc = Scenario::new(&format!(
        "target: {}\nphases:\n  - vus: 1\n    duration: 4s\nflows:\n  - steps:\n      - get: /hello\n        name: hello\n",
        srv.url()
    ));
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let child = loadline()
        .arg("run")
        .arg(&sc.path)
        .args([
            "--quiet",
            "--prometheus-listen",
            &format!("127.0.0.1:{port}"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let body = loop {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "exporter never answered"
        );
        std::thread::sleep(Duration::from_millis(200));
        if let Some(body) = http_get(port, "/metrics") {
            if body.contains("loadline_requests_total{step=\"hello\"}") {
                break body;
            }
        }
    };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(body.contains("# TYPE loadline_requests_total counter"));
    assert!(body.contains("loadline_vus 1"), "{body}");
}

fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::Write;
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    tcp.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(tcp, "GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").ok()?;
    let mut s = String::new();
    tcp.read_to_string(&mut s).ok()?;
    Some(s)
}

/// End-of-run files are written as a shell redirect would: a link keeps being a
/// link and its target gets the summary, a pipe is written through (not replaced
/// by a file), a read-only file and two outputs on one path are refused before
/// the run with exit code 2.
#[test]
fn outputs_write_through_links_and_pipes_and_refuse_what_they_cannot_write() {
    let srv = TestServer::start();
    let sc = Scenario::new(&format!(
        "target: {}\nphases: [ {{ vus: 1, iterations: 3 }} ]\nflows: [ {{ steps: [ {{ get: /hello }} ] }} ]\n",
        srv.url()
    ));
    let run = |extra: &[&std::ffi::OsStr]| {
        loadline()
            .arg("run")
            .arg(&sc.path)
            .arg("--quiet")
            .arg("--no-monitor")
            .args(extra)
            .output()
            .unwrap()
    };

    // A link to a file: the link stays, its target gets the summary.
    let target = sc.out("real.json");
    std::fs::write(&target, "old").unwrap();
    let link = sc.out("link.json");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let out = run(&["--summary-json".as_ref(), link.as_os_str()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(&target).unwrap()).unwrap();
    assert_eq!(summary["requests"]["total"], 3);

    // A pipe: a reader gets the Markdown summary, and the pipe stays a pipe.
    let fifo = sc.out("summary.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut got = String::new();
            std::fs::File::open(&fifo)
                .unwrap()
                .read_to_string(&mut got)
                .unwrap();
            got
        })
    };
    let out = run(&["--markdown".as_ref(), fifo.as_os_str()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // Should nothing have been written through the pipe, the reader still waits
    // for a writer: open it without blocking (O_NONBLOCK; it fails when the reader
    // is gone) so the reader sees the end, and the test fails instead of hanging.
    std::thread::sleep(Duration::from_millis(100));
    if !reader.is_finished() {
        use std::os::unix::fs::OpenOptionsExt;
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(0o4000)
            .open(&fifo);
    }
    let got = reader.join().unwrap();
    assert!(got.contains("requests"), "{got}");
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());

    // A read-only file is refused before the run, and left as it was.
    let ro = sc.out("ro.json");
    std::fs::write(&ro, "keep").unwrap();
    let mut perms = std::fs::metadata(&ro).unwrap().permissions();
    perms.set_readonly(true);
    std::fs::set_permissions(&ro, perms).unwrap();
    let hits = srv.seen().count("/hello");
    let out = run(&["--summary-json".as_ref(), ro.as_os_str()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("read-only"), "{}", text(&out));
    assert_eq!(std::fs::read_to_string(&ro).unwrap(), "keep");

    // Two outputs on one path are refused before the run.
    let both = sc.out("both.out");
    let out = run(&[
        "--summary-json".as_ref(),
        both.as_os_str(),
        "--markdown".as_ref(),
        sc.dir.path().join(".").join("both.out").as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("writes that file already"),
        "{}",
        text(&out)
    );
    assert!(!both.exists());
    // Nothing was sent by the refused runs.
    assert_eq!(srv.seen().count("/hello"), hits);
}
