//! Ctrl-C: in-flight iterations finish, the summary is printed and written with
//! status "interrupted", and the exit code is 130.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::util::*;

#[test]
fn sigint_writes_an_interrupted_summary_and_exits_130() {
    let srv = TestServer::start();
    let sc = Scenario::new(&format!(
        r#"
target: {}
phases:
  - vus: 3
    duration: 60s
flows:
  - steps:
      - get: /slow/100
"#,
        srv.url()
    ));
    let out_path = sc.out("summary.json");
    let child = loadline()
        .arg("run")
        .arg(&sc.path)
        .arg("--summary-json")
        .arg(&out_path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until load is flowing, then interrupt.
    let start = Instant::now();
    while srv.seen().count("GET /slow/{ms}") < 6 {
        assert!(start.elapsed() < Duration::from_secs(20), "no load arrived");
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert!(start.elapsed() < Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    let s = read_json(&out_path).expect("summary written on interrupt");
    assert_eq!(s["status"], "interrupted");
    // In-flight requests finished: what the server answered is what was counted.
    assert_eq!(s["requests"]["total"], srv.seen().total());
    assert_eq!(s["iterations"]["interrupted"], 0);
    assert!(String::from_utf8_lossy(&out.stdout).contains("INTERRUPTED"));
}

/// Iterations cut off at the end of the graceful stop are counted: the requests
/// in flight as failed requests with error `interrupted` (so loadline's request
/// count equals the server's), their iterations as interrupted, and the notes say
/// so; a think longer than the phase is cut off and counted the same way.
#[test]
fn iterations_cut_off_by_the_graceful_stop_are_counted() {
    let srv = TestServer::start();
    let sc = Scenario::new(&format!(
        r#"
target: {}
graceful_stop: 300ms
phases:
  - duration: 1s
    arrival_rate: 2
flows:
  - name: slow
    steps:
      - get: /slow/30000
"#,
        srv.url()
    ));
    let started = Instant::now();
    let (out, summary) = run_scenario(&sc, &["--no-monitor"]);
    assert!(started.elapsed() < Duration::from_secs(20));
    let summary = summary.unwrap_or_else(|| panic!("no summary: {}", text(&out)));
    let sent = srv.seen().count("GET /slow/{ms}");
    assert_eq!(sent, 2);
    assert_eq!(summary["requests"]["total"], sent);
    assert_eq!(summary["iterations"]["interrupted"], 2);
    assert_eq!(summary["iterations"]["total"], 0);
    let step = step(&summary, "GET /slow/30000");
    assert_eq!(step["errors"]["interrupted"], 2, "{step}");
    let notes = summary["notes"].to_string();
    assert!(notes.contains("2 iterations were cut off"), "{notes}");
    assert!(notes.contains("2 requests were in flight"), "{notes}");

    // A think longer than the phase: the iteration is cut off and counted.
    let sc = Scenario::new(&format!(
        "target: {}\ngraceful_stop: 200ms\nphases: [ {{ vus: 2, duration: 500ms }} ]\nflows: [ {{ steps: [ {{ get: /hello }}, {{ think: 20s }} ] }} ]\n",
        srv.url()
    ));
    let (out, summary) = run_scenario(&sc, &["--no-monitor"]);
    let summary = summary.unwrap_or_else(|| panic!("no summary: {}", text(&out)));
    assert_eq!(summary["iterations"]["interrupted"], 2, "{summary}");
    assert_eq!(summary["requests"]["total"], 2);
}

/// A second Ctrl-C cuts the graceful stop short: the requests in flight are
/// counted `interrupted`, their iterations too, and the summary is still written.
#[test]
fn a_second_signal_cuts_in_flight_iterations_off_and_counts_them() {
    let srv = TestServer::start();
    let sc = Scenario::new(&format!(
        r#"
target: {}
graceful_stop: 60s
phases:
  - vus: 2
    duration: 60s
flows:
  - steps:
      - get: /slow/30000
"#,
        srv.url()
    ));
    let out_path = sc.out("summary.json");
    let child = loadline()
        .args(["run", "--no-monitor", "--summary-json"])
        .arg(&out_path)
        .arg(&sc.path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while srv.seen().count("GET /slow/{ms}") < 2 {
        assert!(start.elapsed() < Duration::from_secs(20), "no load arrived");
        std::thread::sleep(Duration::from_millis(20));
    }
    let interrupt = || {
        let status = std::process::Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    };
    interrupt();
    // The first signal only stops new iterations: both requests stay in flight.
    std::thread::sleep(Duration::from_millis(500));
    interrupt();
    let out = child.wait_with_output().unwrap();
    // Well before the 30 s responses or the 60 s graceful stop.
    assert!(start.elapsed() < Duration::from_secs(25));
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    let s = read_json(&out_path).expect("summary written after a second signal");
    assert_eq!(s["status"], "interrupted");
    assert_eq!(s["requests"]["total"], 2);
    assert_eq!(srv.seen().total(), 2);
    assert_eq!(s["iterations"]["interrupted"], 2, "{s}");
    assert_eq!(step(&s, "GET /slow/30000")["errors"]["interrupted"], 2);
    assert!(s["notes"].to_string().contains("2 iterations were cut off"));
}

/// While in-flight iterations finish after the load, the progress line says the
/// graceful stop is running instead of a clock past the planned duration.
#[test]
fn the_progress_line_shows_the_graceful_stop() {
    let srv = TestServer::start();
    let sc = Scenario::new(&format!(
        "target: {}\ngraceful_stop: 6s\nphases:\n  - vus: 1\n    duration: 1s\nflows:\n  - steps:\n      - get: /slow/2500\n",
        srv.url()
    ));
    let out = loadline()
        .arg("run")
        .arg(&sc.path)
        .arg("--no-monitor")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stopping: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("graceful stop (in-flight iterations get up to 6s)"))
        .collect();
    assert!(!stopping.is_empty(), "{stdout}");
    for line in &stopping {
        // The time so far, without the planned duration it has passed.
        assert!(!line.contains(" / "), "{line}");
        assert!(line.contains("VUs 1"), "{line}");
    }
    assert_eq!(srv.seen().count("GET /slow/{ms}"), 1);
}
