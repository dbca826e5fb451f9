//! Secrets stay secret: a planted token (in an Authorization header from the
//! environment, a Cookie header, a target URL's password and a data file's
//! column) appears in no output — not the terminal, the logs at trace level, the
//! JSON summary, the report, the streamed series, JUnit or Markdown.

use crate::util::*;

const SECRET: &str = "PLANTED-s3cr3t-7f3a";

#[test]
fn a_planted_secret_appears_in_no_output() {
    let srv = TestServer::start();
    let target = srv
        .url()
        .replace("http://", &format!("http://user:{SECRET}@"));
    let sc = Scenario::new(&format!(
        r#"
name: secrets
target: {target}
data:
  users: {{ file: users.csv }}
phases:
  - vus: 2
    iterations: 6
thresholds:
  errors: ["rate < 1%"]
flows:
  - steps:
      - post: /login
        headers:
          authorization: "Bearer {{{{ $env.LOADLINE_TEST_TOKEN }}}}"
          cookie: "session={SECRET}"
        json: {{ user: "{{{{ users.name }}}}", password: "{{{{ users.password }}}}" }}
        capture:
          token: {{ json: "$.token" }}
      - get: /status/500
        headers:
          authorization: "Bearer {{{{ $env.LOADLINE_TEST_TOKEN }}}}"
      - get: /cookie/check
        check: {{ status: 200 }}
"#
    ));
    sc.file("users.csv", &format!("name,password\nann,{SECRET}\n"));
    let files = ["s.json", "r.html", "r.jsonl", "r.csv", "r.xml", "r.md"].map(|f| sc.out(f));
    let output = loadline()
        .env("LOADLINE_TEST_TOKEN", SECRET)
        .env("LOADLINE_LOG", "trace")
        .arg("run")
        .arg(&sc.path)
        .args(["--summary-json", files[0].to_str().unwrap()])
        .args(["--report", files[1].to_str().unwrap()])
        .args(["--out", &format!("jsonl={}", files[2].display())])
        .args(["--out", &format!("csv={}", files[3].display())])
        .args(["--junit", files[4].to_str().unwrap()])
        .args(["--markdown", files[5].to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    // The secret did its job: the server saw it.
    assert!(srv.seen().logins.iter().all(|(_, p)| p == SECRET));
    let validate = loadline()
        .env("LOADLINE_TEST_TOKEN", SECRET)
        .env("LOADLINE_LOG", "trace")
        .arg("validate")
        .arg(&sc.path)
        .output()
        .unwrap();
    let mut outputs = vec![
        (
            "stdout".to_string(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        ),
        (
            "stderr".to_string(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        ),
        ("validate".to_string(), text(&validate)),
    ];
    for f in &files {
        outputs.push((f.display().to_string(), std::fs::read_to_string(f).unwrap()));
    }
    for (name, content) in &outputs {
        assert!(!content.is_empty() || name == "stderr", "{name} is empty");
        assert!(
            !content.contains(SECRET),
            "the secret leaked into {name}:\n{content}"
        );
    }
}
