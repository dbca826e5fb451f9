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
