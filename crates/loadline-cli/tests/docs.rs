//! The docs and the program agree: every fenced YAML block of README.md and
//! docs/*.md goes through `loadline validate`, and the documented JSON summary
//! names the fields the program writes.
//!
//! A YAML block says what it is with the words after `yaml` on its opening fence:
//!
//! - ` ```yaml ` — a whole scenario: it must be valid.
//! - ` ```yaml fragment ` — part of one, valid once put into a minimal scenario
//!   (`target`, one 1 s phase, one flow with one `get: /`): a mapping's top-level
//!   keys are added to it, replacing the minimal ones of the same name (and
//!   `default_profile` replaces `phases`); a list is the steps of its flow. `vars=a,b` adds vars the fragment takes from its
//!   context (captures of earlier steps), `databases=main` an SQLite database in
//!   memory of that name, and `steps="product detail;search"` names the minimal
//!   flow's steps (for thresholds that select them).
//! - ` ```yaml error ` — a scenario that must be refused (exit 2). The fenced
//!   block right after it is exactly what `loadline validate shop.yaml` prints
//!   for it (the block written as `shop.yaml`, alone in its folder).
//! - ` ```yaml other ` — YAML that is not a scenario (nothing is checked).
//!
//! Data files the blocks name (`users.csv`, `items.jsonl`, `search_terms.csv`)
//! are there, copied from examples/ and tests/load/.

use std::path::{Path, PathBuf};

use crate::util::*;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// One fenced block of a Markdown file.
#[derive(Debug)]
struct Block {
    file: String,
    /// 1-based line of the opening fence.
    line: usize,
    /// The words after the fence's backticks.
    info: Vec<String>,
    body: String,
}

impl Block {
    fn at(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }

    /// The values of `key=a,b` (for `steps`, `key="a b;c"`).
    fn attr(&self, key: &str) -> Vec<String> {
        let separator = if key == "steps" { ';' } else { ',' };
        self.info
            .iter()
            .filter_map(|w| w.strip_prefix(&format!("{key}=")))
            .flat_map(|v| v.split(separator).map(str::to_string))
            .collect()
    }
}

/// An info string's words; a double-quoted part may hold spaces (`a="b c"` is
/// the word `a=b c`).
fn words(info: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in info.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

fn blocks(path: &Path) -> Vec<Block> {
    let name = path
        .strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string();
    let text = std::fs::read_to_string(path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let trimmed = lines[i].trim_start();
        if let Some(info) = trimmed.strip_prefix("```") {
            let indent = lines[i].len() - trimmed.len();
            let start = i;
            let mut body = Vec::new();
            i += 1;
            while i < lines.len() && lines[i].trim() != "```" {
                let l = lines[i];
                body.push(if l.len() >= indent {
                    &l[indent..]
                } else {
                    l.trim_start()
                });
                i += 1;
            }
            assert!(
                i < lines.len(),
                "{name}:{}: a fence that is never closed",
                start + 1
            );
            out.push(Block {
                file: name.clone(),
                line: start + 1,
                info: words(info),
                body: body.join("\n") + "\n",
            });
        }
        i += 1;
    }
    out
}

fn documents() -> Vec<PathBuf> {
    let mut files = vec![root().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

/// A folder with the data files the docs' blocks name.
fn folder_with_data() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        root().join("examples/users.csv"),
        dir.path().join("users.csv"),
    )
    .unwrap();
    std::fs::copy(
        root().join("tests/load/search_terms.csv"),
        dir.path().join("search_terms.csv"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("items.jsonl"),
        "{\"id\": 1, \"name\": \"cup\"}\n{\"id\": 2, \"name\": \"pot\"}\n",
    )
    .unwrap();
    dir
}

const MINIMAL: [(&str, &str); 3] = [
    ("target", "target: http://127.0.0.1:8080"),
    ("phases", "phases: [ { duration: 1s, arrival_rate: 1 } ]"),
    ("flows", "flows: [ { steps: [ { get: / } ] } ]"),
];

/// The fragment put into the minimal scenario.
fn wrap(block: &Block) -> String {
    let body = &block.body;
    let first = body
        .lines()
        .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .unwrap_or("");
    let mut out = String::new();
    let vars = block.attr("vars");
    if !vars.is_empty() {
        let vars: Vec<String> = vars.iter().map(|v| format!("{v}: \"1\"")).collect();
        out.push_str(&format!("vars: {{ {} }}\n", vars.join(", ")));
    }
    let databases = block.attr("databases");
    if !databases.is_empty() {
        out.push_str("databases:\n");
        for db in databases {
            out.push_str(&format!("  {db}: {{ url: \"sqlite::memory:\" }}\n"));
        }
    }
    if first.starts_with("- ") {
        for (_, line) in &MINIMAL[..2] {
            out.push_str(line);
            out.push('\n');
        }
        out.push_str("flows:\n  - steps:\n");
        for line in body.lines() {
            out.push_str(&format!("      {line}\n"));
        }
        return out;
    }
    let top: Vec<&str> = body
        .lines()
        .filter(|l| !l.starts_with([' ', '#', '-']) && !l.trim().is_empty())
        .filter_map(|l| l.split(':').next())
        .collect();
    // A default profile says which phases run: it takes the place of `phases`.
    let replaced =
        |key: &str| top.contains(&key) || (key == "phases" && top.contains(&"default_profile"));
    let steps = block.attr("steps");
    for (key, line) in MINIMAL {
        if key == "flows" && !steps.is_empty() && !replaced(key) {
            out.push_str("flows:\n  - steps:\n");
            for name in &steps {
                out.push_str(&format!("      - {{ get: /, name: \"{name}\" }}\n"));
            }
        } else if !replaced(key) {
            out.push_str(line);
            out.push('\n');
        }
    }
    out.push_str(body);
    out
}

fn validate(dir: &Path, file: &str) -> std::process::Output {
    loadline()
        .current_dir(dir)
        .args(["validate", file])
        .output()
        .unwrap()
}

#[test]
fn every_yaml_block_in_the_docs_loads_as_marked() {
    let mut problems = Vec::new();
    let mut checked = 0;
    for doc in documents() {
        let all = blocks(&doc);
        for (n, block) in all.iter().enumerate() {
            let Some(kind) = block.info.first() else {
                continue;
            };
            if kind != "yaml" && kind != "yml" {
                continue;
            }
            let mark = block.info.get(1).map(String::as_str).unwrap_or("");
            let dir = folder_with_data();
            let scenario = match mark {
                "" => block.body.clone(),
                "fragment" => wrap(block),
                "error" => block.body.clone(),
                "other" => continue,
                _ => {
                    problems.push(format!(
                        "{}: unknown mark `{mark}`: expected fragment, error or other",
                        block.at()
                    ));
                    continue;
                }
            };
            std::fs::write(dir.path().join("shop.yaml"), &scenario).unwrap();
            let out = validate(dir.path(), "shop.yaml");
            checked += 1;
            if mark == "error" {
                let Some(expected) = all.get(n + 1) else {
                    problems.push(format!("{}: no block with the error after it", block.at()));
                    continue;
                };
                let stderr = String::from_utf8_lossy(&out.stderr);
                if out.status.code() != Some(2) || stderr != expected.body {
                    problems.push(format!(
                        "{}: `loadline validate` gave (exit {:?}):\n{stderr}\nwhere {} shows:\n{}",
                        block.at(),
                        out.status.code(),
                        expected.at(),
                        expected.body
                    ));
                }
            } else if out.status.code() != Some(0) {
                problems.push(format!(
                    "{} ({}): not valid:\n{}\n--- as validated:\n{scenario}",
                    block.at(),
                    if mark.is_empty() {
                        "a whole scenario"
                    } else {
                        mark
                    },
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n\n"));
    assert!(checked >= 15, "only {checked} YAML blocks found");
}

/// The rule of the minimal scenario itself: a broken fragment is caught.
#[test]
fn a_broken_fragment_is_caught() {
    let block = Block {
        file: "x.md".into(),
        line: 1,
        info: vec!["yaml".into(), "fragment".into()],
        body: "- get: /orders/{{ order_id }}\n".into(),
    };
    let dir = folder_with_data();
    std::fs::write(dir.path().join("shop.yaml"), wrap(&block)).unwrap();
    assert_eq!(validate(dir.path(), "shop.yaml").status.code(), Some(2));
    let block = Block {
        info: vec!["yaml".into(), "fragment".into(), "vars=order_id".into()],
        ..block
    };
    std::fs::write(dir.path().join("shop.yaml"), wrap(&block)).unwrap();
    let out = validate(dir.path(), "shop.yaml");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

/// docs/summary-json.md names every top-level field the summary has, and its
/// example has exactly the summary's top-level fields.
#[test]
fn the_summary_json_doc_names_every_field() {
    let srv = TestServer::start();
    let sc = Scenario::new(&format!(
        "target: {}\nphases: [ {{ duration: 1s, arrival_rate: 5 }} ]\nflows: [ {{ steps: [ {{ get: /hello }} ] }} ]\n",
        srv.url()
    ));
    let (out, summary) = run_scenario(&sc, &["--no-monitor"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let summary = summary.unwrap();
    let mut fields: Vec<&str> = summary
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort();
    let doc_path = root().join("docs/summary-json.md");
    let doc = std::fs::read_to_string(&doc_path).unwrap();
    // The names in the first cell of the doc's table rows: `a`, `b.c`, `d`.
    let named: Vec<&str> = doc
        .lines()
        .filter_map(|l| l.strip_prefix('|')?.split('|').next())
        .flat_map(|cell| cell.split('`').skip(1).step_by(2))
        .collect();
    for field in &fields {
        let nested = format!("{field}.");
        assert!(
            named.iter().any(|n| n == field || n.starts_with(&nested)),
            "docs/summary-json.md has no row for `{field}`"
        );
    }
    let example = blocks(&doc_path)
        .into_iter()
        .find(|b| b.info.first().is_some_and(|i| i == "json"))
        .unwrap();
    let example: serde_json::Value = serde_json::from_str(&example.body).unwrap();
    let mut documented: Vec<&str> = example
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    documented.sort();
    assert_eq!(documented, fields);
}

/// The scenario files of a folder of the repository.
fn yaml_files(folder: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join(folder))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    files
}

/// The services a scenario file's databases need, as (name, port).
fn services_needed(text: &str) -> Vec<(&'static str, u16)> {
    let mut needed = Vec::new();
    if text.contains("postgres://") || text.contains("postgresql://") {
        needed.push(("PostgreSQL", 5432));
    }
    if text.contains("mysql://") || text.contains("mariadb://") {
        needed.push(("MariaDB", 3306));
    }
    if text.contains("redis://") {
        needed.push(("Redis", 6379));
    }
    if text.contains("nats://") {
        needed.push(("NATS", 4222));
    }
    needed
}

/// Whether the services are there; when not, the file is skipped with a printed
/// reason, or the test fails when `LOADLINE_REQUIRE_SERVICES=1`.
fn services_up(file: &Path, needed: &[(&str, u16)]) -> bool {
    for (name, port) in needed {
        if !reachable(*port) {
            let reason = format!("{name} not reachable on 127.0.0.1:{port}");
            if std::env::var("LOADLINE_REQUIRE_SERVICES").as_deref() == Ok("1") {
                panic!(
                    "LOADLINE_REQUIRE_SERVICES=1 but {reason} ({})",
                    file.display()
                );
            }
            eprintln!("skipped {}: {reason}", file.display());
            return false;
        }
    }
    true
}

/// Runs `loadline run FILE --scale-to 3s` (its phases scaled to 3 s in all),
/// stopped with SIGINT after 8 s if it has not ended (a phase bounded by
/// iterations is not scaled), and cut off 4 s later; returns the summary.
fn run_briefly(file: &Path, target: Option<&str>, out: &Path) -> serde_json::Value {
    use std::time::{Duration, Instant};
    let mut cmd = loadline();
    cmd.arg("run")
        .arg(file)
        .args([
            "--scale-to",
            "3s",
            "--seed",
            "7",
            "--quiet",
            "--summary-json",
        ])
        .arg(out)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    if let Some(target) = target {
        cmd.args(["--target", target]);
    }
    let mut child = cmd.spawn().unwrap();
    let start = Instant::now();
    // A first signal stops new iterations, a second cuts off those in flight.
    let mut signals = 0;
    while child.try_wait().unwrap().is_none() {
        let due = [Duration::from_secs(8), Duration::from_secs(12)];
        if signals < due.len() && start.elapsed() > due[signals] {
            signals += 1;
            let _ = std::process::Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{} did not stop",
            file.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    let code = output.status.code();
    assert!(
        matches!(code, Some(0) | Some(3) | Some(130)),
        "{}: {}",
        file.display(),
        text(&output)
    );
    read_json(out).unwrap_or_else(|| panic!("{}: no summary\n{}", file.display(), text(&output)))
}

/// Every example and every scenario of tests/load runs against demo-shop (or its
/// own databases) without a failed request or check: none of them can rot.
/// Thresholds may fail in so short a run (exit 3); requests may not.
#[cfg(feature = "demo")]
#[test]
fn every_example_and_load_file_runs_against_the_shop() {
    let shop = ShopProcess::start(&[]);
    let mut nats_shop: Option<ShopProcess> = None;
    let mut files = yaml_files("examples");
    files.extend(yaml_files("tests/load"));
    assert!(files.len() >= 3, "{files:?}");
    let dir = tempfile::tempdir().unwrap();
    let mut ran = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let needed = services_needed(&text);
        if !services_up(file, &needed) {
            continue;
        }
        // An `https://` target goes to the shop behind TLS with a self-signed
        // certificate (such a file sets `insecure: true`).
        let front = text
            .lines()
            .any(|l| l.starts_with("target: https://"))
            .then(|| TlsFront::start(&shop.url));
        // A file that reads the shop's events needs the shop in NATS mode.
        let nats_shop = text.contains("nats://").then(|| {
            nats_shop
                .get_or_insert_with(|| ShopProcess::start(&["--nats-url", "nats://127.0.0.1:4222"]))
                .url
                .clone()
        });
        let target = text.lines().any(|l| l.starts_with("target:")).then_some(
            nats_shop
                .as_deref()
                .unwrap_or(front.as_ref().map_or(shop.url.as_str(), |f| f.url.as_str())),
        );
        let out = dir.path().join("summary.json");
        let _tables = text
            .contains("ll_oltp")
            .then(|| OLTP_TABLES.lock().unwrap_or_else(|p| p.into_inner()));
        let _redis = text
            .contains("redis://")
            .then(|| REDIS.lock().unwrap_or_else(|p| p.into_inner()));
        let s = run_briefly(file, target, &out);
        let name = file.display();
        let requests = s["requests"]["total"].as_u64().unwrap();
        assert!(requests > 0, "{name}: nothing was sent\n{s:#}");
        // Requests cut off by the stop are counted as failed with error
        // `interrupted`; any other failure is the file's own.
        let cut: u64 = s["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|st| st["errors"]["interrupted"].as_u64())
            .sum();
        let failed = s["requests"]["failed"].as_u64().unwrap();
        assert_eq!(failed, cut, "{name}: failed requests\n{s:#}");
        assert_eq!(s["checks"]["failed"], 0, "{name}: failed checks\n{s:#}");
        if text.contains("url: /metrics") {
            // A scrape path follows the target to the shop's own page.
            assert!(
                s["monitors"]
                    .as_object()
                    .is_some_and(|m| m.contains_key("prom.demo_shop_queue_depth")),
                "{name}: the shop's /metrics was not scraped\n{}",
                s["monitors"]
            );
        }
        ran += 1;
    }
    assert!(ran >= 2, "only {ran} files ran");
    assert_eq!(shop.stop(), Some(0));
    if let Some(nats_shop) = nats_shop {
        assert_eq!(nats_shop.stop(), Some(0));
    }
}

/// The benchmark scenarios (run against nginx by bench/run.py and by hand, as
/// docs/performance.md and docs/reliability.md say) stay valid.
#[test]
fn the_benchmark_scenarios_are_valid() {
    let files = yaml_files("bench/scenarios");
    assert!(files.iter().any(|f| f.ends_with("soak.yaml")), "{files:?}");
    let dir = tempfile::tempdir().unwrap();
    for file in files {
        // bench/run.py fills `DURATION` in before it runs a file.
        let filled = std::fs::read_to_string(&file)
            .unwrap()
            .replace("DURATION", "10s");
        let copy = dir.path().join(file.file_name().unwrap());
        std::fs::write(&copy, filled).unwrap();
        let out = loadline().arg("validate").arg(&copy).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {}",
            file.display(),
            text(&out)
        );
    }
}

/// The errors docs/database_load.md shows before the load are the program's: an
/// unreachable database (nothing listens on port 9) and a statement that does
/// not prepare (PostgreSQL).
#[test]
fn the_database_errors_in_the_docs_are_the_programs() {
    let doc = root().join("docs/database_load.md");
    let shown = |needle: &str| {
        blocks(&doc)
            .into_iter()
            .find(|b| b.body.contains(needle))
            .unwrap_or_else(|| panic!("no block with `{needle}`"))
            .body
    };
    let cases = [
        (
            "postgres://app:secret@127.0.0.1:9/shop",
            "cannot be reached",
            false,
        ),
        (
            "postgres://postgres@127.0.0.1:5432/test",
            "does not prepare",
            true,
        ),
    ];
    for (url, needle, needs_postgres) in cases {
        if needs_postgres && !services_up(&doc, &[("PostgreSQL", 5432)]) {
            continue;
        }
        let url = if needs_postgres {
            std::env::var("LOADLINE_TEST_PG_URL").unwrap_or(url.to_string())
        } else {
            url.to_string()
        };
        let sc = Scenario::new(&format!(
            "databases:\n  main: {{ url: \"{url}\" }}\nphases: [ {{ vus: 1, iterations: 1 }} ]\nflows: [ {{ steps: [ {{ sql: main, name: typo, query: \"SELEC 1\" }} ] }} ]\n"
        ));
        let (out, _) = run_scenario(&sc, &["--no-monitor"]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr, shown(needle), "{needle}");
    }
}

/// The `monitor:` block of docs/monitoring_and_reports.md, pointed at demo-shop's
/// `/metrics`, gives the series it selects: the shop's queue depth and its
/// `/orders` request rate.
#[cfg(feature = "demo")]
#[test]
fn the_documented_monitor_block_scrapes_the_shop() {
    let shop = ShopProcess::start(&[]);
    let doc = root().join("docs/monitoring_and_reports.md");
    let block = blocks(&doc)
        .into_iter()
        .find(|b| b.body.starts_with("monitor:"))
        .expect("a monitor: block");
    let monitor = block.body.replace(
        "http://127.0.0.1:9100/metrics",
        &format!("{}/metrics", shop.url),
    );
    assert_ne!(monitor, block.body, "the block's endpoint moved");
    let sc = Scenario::new(&format!(
        r#"target: {}
phases: [ {{ vus: 2, duration: 3s }} ]
{monitor}
flows:
  - steps:
      - post: /login
        json: {{ user: user1, password: pw1 }}
        capture: {{ token: {{ json: "$.token" }} }}
      - post: /orders
        headers: {{ authorization: "Bearer {{{{ token }}}}" }}
        json: {{ product: 1, qty: 1 }}
        check: {{ status: 201 }}
      - think: 200ms
"#,
        shop.url
    ));
    let series = sc.out("r.jsonl");
    let (out, summary) = run_scenario(&sc, &["--out", &format!("jsonl={}", series.display())]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(summary.unwrap()["checks"]["failed"], 0);
    let keys: std::collections::BTreeSet<String> = std::fs::read_to_string(&series)
        .unwrap()
        .lines()
        .flat_map(|l| {
            let point: serde_json::Value = serde_json::from_str(l).unwrap();
            point["monitors"]
                .as_object()
                .map(|m| m.keys().cloned().collect::<Vec<_>>())
                .unwrap_or_default()
        })
        .collect();
    assert!(keys.contains("prom.demo_shop_queue_depth"), "{keys:#?}");
    assert!(
        keys.iter()
            .any(|k| k.starts_with("prom.demo_shop_requests_total:rate{")
                && k.contains("route=/orders")),
        "{keys:#?}"
    );
    assert_eq!(shop.stop(), Some(0));
}

/// The `loadline run` command of a CI pipeline file, split into arguments as a
/// shell would (double quotes kept together): the line that holds it, and the
/// lines of a folded block that continue it.
fn ci_command(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let first = lines
        .iter()
        .position(|l| l.contains("loadline run ") && !l.trim_start().starts_with('#'))
        .expect("a `loadline run` command");
    let indent = |l: &str| l.len() - l.trim_start().len();
    let mut command = lines[first][lines[first].find("loadline run ").unwrap()..].to_string();
    for l in &lines[first + 1..] {
        if l.trim().is_empty() || indent(l) < indent(lines[first]) {
            break;
        }
        command.push(' ');
        command.push_str(l.trim());
    }
    let mut args = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in command.chars() {
        match c {
            '"' => quoted = !quoted,
            ' ' if !quoted => {
                if !current.is_empty() {
                    args.push(std::mem::take(&mut current));
                }
            }
            _ => current.push(c),
        }
    }
    if !current.is_empty() {
        args.push(current);
    }
    args
}

/// Each CI pipeline example's own command runs against demo-shop, with the
/// job's variables filled in and the run shortened (`--scale-to 3s`), judges
/// its thresholds and writes every file the pipeline publishes.
#[test]
fn the_ci_pipeline_examples_run_their_command() {
    let shop = ShopProcess::start(&[]);
    for file in [
        "examples/ci/github-actions.yml",
        "examples/ci/gitlab-ci.yml",
    ] {
        let pipeline = std::fs::read_to_string(root().join(file)).unwrap();
        let args = ci_command(&pipeline);
        assert_eq!(&args[..2], ["loadline", "run"], "{file}: {args:?}");
        let dir = tempfile::tempdir().unwrap();
        let mut published = Vec::new();
        let mut run: Vec<String> = Vec::new();
        let mut previous = String::new();
        for arg in &args[1..] {
            let value = arg
                .replace("$TARGET", &shop.url)
                .replace("$GITHUB_SHA", "0123abc")
                .replace("$CI_COMMIT_SHA", "0123abc")
                .replace("$GITHUB_STEP_SUMMARY", "step-summary.md");
            let value = match previous.as_str() {
                "--scale-to" => "3s".to_string(),
                "--junit" | "--report" | "--markdown" | "--summary-json" => {
                    let path = dir.path().join(&value);
                    published.push(path.clone());
                    path.display().to_string()
                }
                _ => value,
            };
            previous = arg.clone();
            run.push(value);
        }
        assert!(
            !run.iter().any(|a| a.contains('$')),
            "{file}: a variable left: {run:?}"
        );
        let out = loadline()
            .current_dir(root())
            .args(&run)
            .arg("--quiet")
            .output()
            .unwrap();
        // The gate's verdict is the machine's business (0 passed, 3 a threshold
        // failed: both are the pipeline working); anything else is the command's.
        assert!(
            matches!(out.status.code(), Some(0 | 3)),
            "{file}: {run:?}\n{}",
            text(&out)
        );
        assert_eq!(published.len(), 4, "{file}: {run:?}");
        for path in &published {
            let written = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
            assert!(written > 0, "{file}: {} not written", path.display());
        }
    }
    assert_eq!(shop.stop(), Some(0));
}
