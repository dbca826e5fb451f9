//! Bad input never runs: exit code 2, and a message naming file:line, what was found
//! and what was expected.

use crate::util::*;

const HEAD: &str = "target: http://127.0.0.1:9\nphases:\n  - vus: 1\n    iterations: 1\n";

/// (scenario, line of the first error, words the message must contain)
fn cases() -> Vec<(String, usize, Vec<&'static str>)> {
    let flow = "flows:\n  - steps:\n      - get: /x\n";
    vec![
        // 1. YAML syntax error.
        (format!("{HEAD}flows: [\n  - steps: {{ get: /x\n"), 0, vec![]),
        // 2. Misspelt key with a did-you-mean.
        (
            format!("target: http://127.0.0.1:9\nphases:\n  - duration: 1s\n    arival_rate: 5\n{flow}"),
            4,
            vec!["arival_rate", "arrival_rate"],
        ),
        // 3. Bad duration.
        (
            format!("target: http://127.0.0.1:9\nphases:\n  - duration: 10x\n    vus: 1\n{flow}"),
            3,
            vec!["10x"],
        ),
        // 4. Negative rate.
        (
            format!("target: http://127.0.0.1:9\nphases:\n  - duration: 1s\n    arrival_rate: -5\n{flow}"),
            4,
            vec!["arrival_rate"],
        ),
        // 5. Unknown template name.
        (format!("{HEAD}flows:\n  - steps:\n      - get: /x/{{{{ nope }}}}\n"), 7, vec!["nope"]),
        // 6. Capture used before assignment.
        (
            format!("{HEAD}flows:\n  - steps:\n      - get: /x/{{{{ token }}}}\n      - get: /login\n        capture:\n          token: {{ json: \"$.token\" }}\n"),
            7,
            vec!["token"],
        ),
        // 7. Missing data file.
        (
            format!("target: http://127.0.0.1:9\ndata:\n  users: {{ file: nowhere.csv }}\nphases:\n  - vus: 1\n    iterations: 1\n{flow}"),
            3,
            vec!["nowhere.csv"],
        ),
        // 8. Invalid JSONPath.
        (
            format!("{HEAD}flows:\n  - steps:\n      - get: /x\n        capture:\n          a: {{ json: \"$.[\" }}\n"),
            9,
            vec![],
        ),
        // 9. Invalid regex.
        (
            format!("{HEAD}flows:\n  - steps:\n      - get: /x\n        capture:\n          a: {{ regex: \"(unclosed\" }}\n"),
            9,
            vec![],
        ),
        // 10. Unknown step kind.
        (format!("{HEAD}flows:\n  - steps:\n      - gett: /x\n"), 7, vec!["gett"]),
        // 11. Zero weight.
        (format!("{HEAD}flows:\n  - weight: 0\n    steps:\n      - get: /x\n"), 6, vec!["weight"]),
        // 12. Bad threshold expression.
        (format!("{HEAD}thresholds:\n  latency: [\"p95 < 10x\"]\n{flow}"), 6, vec!["10x"]),
        // 13. Unclosed template.
        (format!("{HEAD}flows:\n  - steps:\n      - get: /x/{{{{ token\n"), 7, vec!["}}"]),
        // 14. Wrong type.
        (
            format!("target: http://127.0.0.1:9\nphases:\n  - vus: lots\n    iterations: 1\n{flow}"),
            3,
            vec!["vus"],
        ),
    ]
}

#[test]
fn each_bad_file_exits_2_with_its_line_before_any_request() {
    for (i, (yaml, line, words)) in cases().into_iter().enumerate() {
        let sc = Scenario::new(&yaml);
        for cmd in ["validate", "run"] {
            let out = loadline().arg(cmd).arg(&sc.path).output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(
                out.status.code(),
                Some(2),
                "case {}: {cmd}\n{}",
                i + 1,
                text(&out)
            );
            if line > 0 {
                assert!(
                    err.contains(&format!("scenario.yaml:{line}:")),
                    "case {}: expected line {line}\n{err}",
                    i + 1
                );
            } else {
                assert!(err.contains("scenario.yaml:"), "case {}: {err}", i + 1);
            }
            for w in &words {
                assert!(err.contains(w), "case {}: expected `{w}` in\n{err}", i + 1);
            }
            assert!(!err.contains("panicked"), "case {}: {err}", i + 1);
        }
    }
}

#[test]
fn an_unwritable_summary_path_is_refused_before_the_load() {
    let srv = TestServer::start();
    let sc = Scenario::new(&format!(
        "target: {}\nphases:\n  - vus: 1\n    iterations: 3\nflows:\n  - steps:\n      - get: /hello\n",
        srv.url()
    ));
    let out = loadline()
        .arg("run")
        .arg(&sc.path)
        .arg("--summary-json")
        .arg(sc.out("no/such/folder/s.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert_eq!(srv.seen().total(), 0);
}

#[test]
fn a_missing_scenario_file_exits_2() {
    let out = loadline()
        .args(["validate", "/nonexistent/x.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let out = loadline().args(["run"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn the_published_schema_is_current() {
    let out = loadline().arg("schema").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let generated: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/loadline.schema.json"
    );
    let published: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(path).expect("docs/loadline.schema.json exists"),
    )
    .unwrap();
    assert_eq!(
        generated, published,
        "docs/loadline.schema.json is stale: run `cargo run -p loadline-cli -- schema > docs/loadline.schema.json`"
    );
}

mod shared {
    /// One malformed file of `tests/scenarios/malformed.jsonl` (the table the
    /// config builder's unit test reads too).
    #[derive(serde::Deserialize)]
    struct Case {
        name: String,
        lines: Vec<String>,
        line: usize,
        words: Vec<String>,
    }

    /// Every malformed file of the shared table, through the binary.
    #[test]
    fn the_whole_malformed_table_exits_2_at_the_right_line() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/scenarios/malformed.jsonl"
        );
        let cases: Vec<Case> = std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert!(cases.len() >= 40, "{}", cases.len());
        let mut failures = Vec::new();
        for c in &cases {
            let sc = crate::util::Scenario::new(&(c.lines.join("\n") + "\n"));
            sc.file("users.csv", "name,password\nann,secret1\nbob,secret2\n");
            sc.file("empty.csv", "");
            let out = crate::util::loadline()
                .arg("validate")
                .arg(&sc.path)
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            let first = err.lines().next().unwrap_or("");
            let at = format!("scenario.yaml:{}:", c.line);
            if out.status.code() != Some(2)
                || !first.contains(&at)
                || c.words.iter().any(|w| !first.contains(w.as_str()))
                || err.contains("panicked")
            {
                failures.push(format!("{}: {:?}: {first}", c.name, out.status.code()));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}

/// A scenario that is not a bounded text file is refused before it is read
/// whole: a device, a folder, a file over the bound, NUL bytes, bytes that are not
/// UTF-8. Each gives exit code 2 and says what it found.
#[test]
fn scenario_files_are_bounded_regular_text_files() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.yaml");
    let mut text = "# filler\n".repeat(2 * 1024 * 1024);
    text.push_str("phases: []\n");
    std::fs::write(&big, text).unwrap();
    let nul = dir.path().join("nul.yaml");
    std::fs::write(&nul, vec![0u8; 300_000]).unwrap();
    let latin1 = dir.path().join("latin1.yaml");
    std::fs::write(&latin1, b"name: caf\xe9\n").unwrap();
    let cases: [(&std::path::Path, &str); 5] = [
        (std::path::Path::new("/dev/zero"), "not a regular file"),
        (dir.path(), "not a regular file"),
        (&big, "at most 16 MiB is read"),
        (&nul, "not text: it holds a NUL byte (at byte 0)"),
        (&latin1, "not UTF-8 text"),
    ];
    for (path, words) in cases {
        for command in ["validate", "run"] {
            let out = loadline().arg(command).arg(path).output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{command} {}: {err}",
                path.display()
            );
            assert!(err.contains(words), "{command} {}: {err}", path.display());
        }
    }
}
