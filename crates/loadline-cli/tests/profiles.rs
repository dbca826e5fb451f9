//! Load profiles: `--profile` picks a named list of phases, an unknown name is
//! invalid input, `--scale-to` scales the phases, `--target` redirects the load.

use crate::util::*;

fn scenario(url: &str) -> Scenario {
    Scenario::new(&format!(
        r#"
target: {url}
default_profile: two
profiles:
  two:   [ {{ vus: 1, iterations: 2 }} ]
  five:  [ {{ vus: 1, iterations: 5 }} ]
  timed:
    - {{ name: slow, duration: 10s, arrival_rate: 2 }}
    - {{ name: fast, duration: 10s, arrival_rate: 8 }}
flows:
  - steps:
      - get: /hello
"#
    ))
}

#[test]
fn a_profile_picks_its_phases() {
    let srv = TestServer::start();
    let sc = scenario(&srv.url());
    let (out, s) = run_scenario(&sc, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(s.unwrap()["iterations"]["total"], 2);
    let (out, s) = run_scenario(&sc, &["--profile", "five"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(s.unwrap()["iterations"]["total"], 5);
    assert_eq!(srv.seen().count("GET /hello"), 7);
}

#[test]
fn scale_to_scales_the_phases_proportionally() {
    let srv = TestServer::start();
    let sc = scenario(&srv.url());
    // 10s at 2/s + 10s at 8/s, scaled to 2s: 1s at 2/s + 1s at 8/s.
    let (out, s) = run_scenario(&sc, &["--profile", "timed", "--scale-to", "2s"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = s.unwrap();
    assert_eq!(s["phases"][0]["iterations"], 2, "{:#}", s["phases"]);
    assert_eq!(s["phases"][1]["iterations"], 8, "{:#}", s["phases"]);
    assert!(s["duration_s"].as_f64().unwrap() < 6.0);
    assert_eq!(srv.seen().count("GET /hello"), 10);

    // Iteration phases keep their count; with nothing timed there is nothing to scale.
    let (out, _) = run_scenario(&sc, &["--profile", "five", "--scale-to", "1s"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--scale-to: no phase has a duration"));
}

#[test]
fn an_unknown_profile_is_invalid_input() {
    let sc = scenario("http://127.0.0.1:9");
    let (out, s) = run_scenario(&sc, &["--profile", "fiev"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(s.is_none());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(":5:3: profiles: unknown profile `fiev` (--profile): expected one of `two`, `five`, `timed`, or `capacity` (the capacity search); did you mean `five`?"),
        "{stderr}"
    );
    assert!(
        stderr.contains("1 error found; nothing was run"),
        "{stderr}"
    );
}

#[test]
fn validate_describes_the_profiles_and_the_chosen_phases() {
    let sc = scenario("http://127.0.0.1:9");
    let out = loadline()
        .arg("validate")
        .arg(&sc.path)
        .args(["--profile", "timed", "--scale-to", "1m"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let expected = "  phases (profile timed) (2):
    slow: 2/s, at most 10000 VUs, for 30s
    fast: 8/s, at most 10000 VUs, for 30s
  profiles (3):
    two: 1 phase, until its iterations are done
    five: 1 phase, until its iterations are done
    timed: 2 phases, 20s, up to 8/s
";
    assert!(stdout.contains(expected), "{stdout}");
}

#[test]
fn target_redirects_the_load() {
    let srv = TestServer::start();
    let sc = scenario("http://127.0.0.1:9");
    let (out, _) = run_scenario(&sc, &["--target", &srv.url()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(srv.seen().count("GET /hello"), 2);
}
