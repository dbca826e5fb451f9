//! Load from the command line: `loadline run URL` with its request flags, k6's
//! `--vus`/`--rate`/`--duration`/`--iterations` over a scenario's phases,
//! `-e` for `$env`, `--tag` on every output, `--insecure`, and Poisson arrivals.

use std::io::{Read, Write};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::util::*;

/// `loadline run URL --quiet --summary-json …` with `extra`.
fn run_url(url: &str, extra: &[&str]) -> (std::process::Output, Option<serde_json::Value>) {
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("summary.json");
    let out = loadline()
        .arg("run")
        .arg(url)
        .arg("--quiet")
        .arg("--summary-json")
        .arg(&summary)
        .args(extra)
        .output()
        .unwrap();
    (out, read_json(&summary))
}

#[test]
fn a_url_is_loaded_and_its_counts_equal_the_servers() {
    let srv = TestServer::start();
    let url = format!("{}/hello", srv.url());
    // No load given: one VU, one request, as k6 does.
    let (out, s) = run_url(&url, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(s.unwrap()["requests"]["total"], 1);
    assert_eq!(srv.seen().count("GET /hello"), 1);

    let (out, s) = run_url(&url, &["--vus", "3", "--iterations", "30"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = s.unwrap();
    assert_eq!(s["requests"]["total"], 30);
    assert_eq!(s["iterations"]["total"], 30);
    assert_eq!(step(&s, &format!("GET {url}"))["requests"], 30);
    assert_eq!(s["scenario"], url);
    assert_eq!(srv.seen().count("GET /hello"), 31);

    // Open model: 20/s for 1 s starts exactly 20.
    let (out, s) = run_url(&url, &["--rate", "20", "--duration", "1s"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = s.unwrap();
    assert_eq!(s["requests"]["total"], 20);
    assert_eq!(s["phases"][0]["model"], "open");
    assert_eq!(srv.seen().count("GET /hello"), 51);
}

#[test]
fn a_url_takes_a_method_headers_a_body_and_thresholds() {
    let srv = TestServer::start();
    let url = format!("{}/orders", srv.url());
    let (out, s) = run_url(
        &url,
        &[
            "-m",
            "post",
            "-H",
            "Authorization: Bearer abc",
            "-H",
            "content-type:application/json",
            "-b",
            r#"{"product": 7}"#,
            "--iterations",
            "2",
            "--threshold",
            "errors: rate < 1%",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = s.unwrap();
    assert_eq!(s["requests"]["failed"], 0, "{s:#}");
    assert_eq!(s["thresholds"][0]["metric"], "errors", "{s:#}");
    assert_eq!(srv.seen().order_tokens, ["abc", "abc"]);

    // The body from a file; a failing threshold is exit code 3.
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("order.json");
    std::fs::write(&body, r#"{"product": 8}"#).unwrap();
    let (out, s) = run_url(
        &url,
        &[
            "--method",
            "POST",
            "--header",
            "Authorization: Bearer file",
            "-H",
            "Content-Type: application/json",
            "--body",
            &format!("@{}", body.display()),
            "--threshold",
            "latency: max < 0.001ms",
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert_eq!(s.unwrap()["status"], "failed");
    assert_eq!(srv.seen().order_tokens.last().unwrap(), "file");
    assert_eq!(srv.seen().count("POST /orders"), 3);
}

#[test]
fn command_line_mistakes_are_invalid_input_before_any_load() {
    let srv = TestServer::start();
    let url = format!("{}/hello", srv.url());
    let sc = Scenario::new(&format!(
        "target: {}\nphases: [ {{ vus: 1, iterations: 1 }} ]\nflows: [ {{ steps: [ {{ get: /hello }} ] }} ]\n",
        srv.url()
    ));
    let file = sc.path.to_str().unwrap().to_string();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec![&url, "-m", "BREW"], "-m BREW: expected one of GET"),
        (vec![&url, "-H", "no colon"], "expected 'Name: value'"),
        (vec![&url, "-b", "x"], "a GET request sends no body"),
        (
            vec![&url, "-m", "post", "-b", "@/nonexistent/body"],
            "cannot read the body file",
        ),
        (
            vec![&url, "--rate", "5"],
            "--rate: say how long the load lasts",
        ),
        (
            vec![&url, "--rate", "5", "--vus", "2"],
            "cannot be used with",
        ),
        (
            vec![&url, "--threshold", "latency p95 < 1s"],
            "--threshold: expected METRIC: CONDITION",
        ),
        (
            vec![&url, "--tag", "step=x"],
            "the exporter's series use that label",
        ),
        (vec![&url, "-e", "1A=b"], "is not a variable name"),
        (vec!["http://"], "invalid URL"),
        (
            vec![&file, "-m", "post"],
            "-m, -H and -b give the request of `loadline run URL`",
        ),
        (vec![&file, "--duration", "2s"], "use --scale-to"),
        (
            vec![
                &file,
                "--rate",
                "5",
                "--iterations",
                "3",
                "--duration",
                "1s",
            ],
            "--iterations goes with --vus",
        ),
        (
            vec![&file, "--vus", "2", "--duration", "1s", "--scale-to", "3s"],
            "--scale-to: the command line's",
        ),
    ];
    for (args, expected) in cases {
        let out = loadline()
            .arg("run")
            .args(&args)
            .arg("--quiet")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    assert_eq!(srv.seen().total(), 0);
}

#[test]
fn rate_and_duration_replace_the_scenarios_phases() {
    let srv = TestServer::start();
    let sc = Scenario::new(&format!(
        "target: {}\nphases:\n  - {{ name: long, vus: 50, duration: 1h }}\nflows: [ {{ steps: [ {{ get: /hello }} ] }} ]\n",
        srv.url()
    ));
    let (out, s) = run_scenario(&sc, &["--rate", "100", "--duration", "3s"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = s.unwrap();
    let started = s["iterations"]["total"].as_u64().unwrap();
    assert!(
        (294..=306).contains(&started),
        "{started} iterations, not 300 ± 2%"
    );
    assert_eq!(srv.seen().count("GET /hello"), started);
    assert_eq!(s["phases"].as_array().unwrap().len(), 1);
    assert_eq!(s["phases"][0]["name"], "default");

    // --vus with --iterations: shared iterations; --iterations alone: one VU.
    let (out, s) = run_scenario(&sc, &["--vus", "4", "--iterations", "12"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = s.unwrap();
    assert_eq!(
        (
            s["iterations"]["total"].as_u64(),
            s["phases"][0]["model"].as_str()
        ),
        (Some(12), Some("closed"))
    );
    let (out, s) = run_scenario(&sc, &["--iterations", "3"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(s.unwrap()["iterations"]["total"], 3);
    assert_eq!(srv.seen().count("GET /hello"), started + 15);
}

#[test]
fn env_flags_fill_env_templates_over_the_process_environment() {
    let srv = TestServer::start();
    let sc = Scenario::new(&format!(
        "target: {}\nphases: [ {{ vus: 1, iterations: 2 }} ]\nflows: [ {{ steps: [ {{ get: \"/{{{{ $env.LL_PAGE }}}}\" }} ] }} ]\n",
        srv.url()
    ));
    let out = loadline()
        .arg("run")
        .arg(&sc.path)
        .args(["--quiet", "-e", "LL_PAGE=hello"])
        .env("LL_PAGE", "status/500")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(srv.seen().count("GET /hello"), 2);
    assert_eq!(srv.seen().count("GET /status/500"), 0);
    // Without the flag the process's value is used; with neither, it is an
    // error before the run.
    let out = loadline()
        .arg("run")
        .arg(&sc.path)
        .args(["--quiet", "--env", "OTHER=1"])
        .env("LL_PAGE", "status/500")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(srv.seen().count("GET /status/500"), 2);
    let out = loadline()
        .arg("run")
        .arg(&sc.path)
        .arg("--quiet")
        .env_remove("LL_PAGE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("LL_PAGE"),
        "{}",
        text(&out)
    );
}

#[test]
fn tags_reach_the_summary_the_streams_and_the_exporter() {
    let srv = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (jsonl, csv, summary) = (
        dir.path().join("run.jsonl"),
        dir.path().join("run.csv"),
        dir.path().join("summary.json"),
    );
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let child = loadline()
        .arg("run")
        .arg(format!("{}/hello", srv.url()))
        .args(["--vus", "1", "--duration", "3s", "--quiet"])
        .args(["--tag", "env=ci", "--tag", "region=eu west"])
        .arg(format!("--out=jsonl={}", jsonl.display()))
        .arg(format!("--out=csv={}", csv.display()))
        .arg("--summary-json")
        .arg(&summary)
        .args(["--prometheus-listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let scraped = loop {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "exporter never answered"
        );
        std::thread::sleep(Duration::from_millis(200));
        if let Some(body) = http_get(port, "/metrics") {
            if body.contains("loadline_vus{") {
                break body;
            }
        }
    };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        scraped.contains("loadline_iterations_total{env=\"ci\",region=\"eu west\"} "),
        "{scraped}"
    );
    assert!(
        scraped.contains(&format!(
            "loadline_requests_total{{step=\"GET {}/hello\",env=\"ci\",region=\"eu west\"}} ",
            srv.url()
        )),
        "{scraped}"
    );
    let tags = serde_json::json!({"env": "ci", "region": "eu west"});
    assert_eq!(read_json(&summary).unwrap()["tags"], tags);
    let points: Vec<serde_json::Value> = std::fs::read_to_string(&jsonl)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(points.len() >= 2, "{points:?}");
    assert!(points.iter().all(|p| p["tags"] == tags));
    let csv = std::fs::read_to_string(&csv).unwrap();
    let mut rows = csv.lines();
    assert_eq!(rows.next(), Some("t,series,value,env,region"));
    assert!(rows.all(|r| r.ends_with(",ci,eu west")), "{csv}");
}

fn http_get(port: u16, path: &str) -> Option<String> {
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    tcp.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(tcp, "GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").ok()?;
    let mut s = String::new();
    tcp.read_to_string(&mut s).ok()?;
    Some(s)
}

/// An HTTPS server on 127.0.0.1 with a self-signed certificate: it answers
/// `ok` to every request and counts them.
struct TlsServer {
    port: u16,
    served: Arc<AtomicU64>,
}

impl TlsServer {
    fn start() -> Self {
        use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
        let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key_pair.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.cert.der().clone()], key)
            .unwrap();
        let config = Arc::new(config);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let served = Arc::new(AtomicU64::new(0));
        let count = served.clone();
        std::thread::spawn(move || {
            for tcp in listener.incoming() {
                let Ok(tcp) = tcp else { return };
                let (config, count) = (config.clone(), count.clone());
                std::thread::spawn(move || serve_tls(tcp, config, &count));
            }
        });
        Self { port, served }
    }
}

/// Answers each request head on one TLS connection until the client leaves.
fn serve_tls(mut tcp: std::net::TcpStream, config: Arc<rustls::ServerConfig>, served: &AtomicU64) {
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
    let Ok(conn) = rustls::ServerConnection::new(config) else {
        return;
    };
    let mut tls = rustls::StreamOwned::new(conn, &mut tcp);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            buf.drain(..end + 4);
            served.fetch_add(1, Ordering::SeqCst);
            let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
            if tls.write_all(reply).and_then(|()| tls.flush()).is_err() {
                return;
            }
        }
        match tls.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

#[test]
fn insecure_accepts_a_self_signed_certificate() {
    let srv = TlsServer::start();
    let url = format!("https://127.0.0.1:{}/", srv.port);
    // Verified (the default): the certificate is refused, nothing is served.
    let (out, s) = run_url(
        &url,
        &["--iterations", "2", "--threshold", "errors: rate < 1%"],
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let s = s.unwrap();
    assert_eq!(s["requests"]["failed"], 2, "{s:#}");
    assert_eq!(s["steps"][0]["errors"]["tls"], 2, "{s:#}");
    assert_eq!(srv.served.load(Ordering::SeqCst), 0);
    let (out, s) = run_url(&url, &["--iterations", "3", "--insecure"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(s.unwrap()["requests"]["failed"], 0);
    assert_eq!(srv.served.load(Ordering::SeqCst), 3);

    // The flag wins over a scenario's `defaults: { insecure: false }`.
    let sc = Scenario::new(&format!(
        "target: {url}\ndefaults: {{ insecure: false }}\nphases: [ {{ vus: 1, iterations: 2 }} ]\nflows: [ {{ steps: [ {{ get: / }} ] }} ]\n"
    ));
    let (out, _) = run_scenario(&sc, &["--insecure"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(srv.served.load(Ordering::SeqCst), 5);
}

/// The dispersion index (variance / mean) of the counts of arrivals per 100 ms
/// seen by the server, bins starting half a gap before the first arrival.
fn dispersion(ticks: &[Instant], gap: Duration) -> (f64, usize) {
    let first = ticks[0] - gap / 2;
    let bin = Duration::from_millis(100);
    let last = ticks
        .iter()
        .map(|t| t.duration_since(first).as_nanos() / bin.as_nanos())
        .max()
        .unwrap();
    let mut counts = vec![0.0f64; last as usize + 1];
    for t in ticks {
        counts[(t.duration_since(first).as_nanos() / bin.as_nanos()) as usize] += 1.0;
    }
    // The last bin is cut short by the phase's end.
    counts.pop();
    let n = counts.len() as f64;
    let mean = counts.iter().sum::<f64>() / n;
    let var = counts.iter().map(|c| (c - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (var / mean, counts.len())
}

#[test]
fn poisson_arrivals_vary_like_their_mean_and_uniform_ones_do_not() {
    let run = |arrivals: &str| {
        let srv = TestServer::start();
        let url = format!("{}/tick", srv.url());
        let (out, s) = run_url(
            &url,
            &[
                "--rate",
                "200",
                "--duration",
                "5s",
                "--arrivals",
                arrivals,
                "--seed",
                "11",
            ],
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let s = s.unwrap();
        let ticks = srv.seen().ticks.clone();
        assert_eq!(s["requests"]["total"].as_u64(), Some(ticks.len() as u64));
        ticks
    };
    let uniform = run("uniform");
    assert_eq!(uniform.len(), 1000);
    let (index, bins) = dispersion(&uniform, Duration::from_millis(5));
    assert!(bins >= 45, "{bins} bins");
    eprintln!(
        "uniform: {} arrivals, dispersion index {index:.3} over {bins} bins",
        uniform.len()
    );
    assert!(index < 0.3, "uniform arrivals: dispersion index {index}");

    let poisson = run("poisson");
    // 1,000 expected, the count's sd is about 32.
    assert!((850..1150).contains(&poisson.len()), "{}", poisson.len());
    let (index, bins) = dispersion(&poisson, Duration::from_millis(5));
    assert!(bins >= 45, "{bins} bins");
    // About 50 bins of mean 20: the index is 1 ± 0.2 (one sd).
    eprintln!(
        "poisson: {} arrivals, dispersion index {index:.3} over {bins} bins",
        poisson.len()
    );
    assert!(
        (0.55..1.6).contains(&index),
        "Poisson arrivals: dispersion index {index}"
    );
}

#[test]
fn http_debug_shows_what_is_sent_with_credentials_hidden() {
    let srv = TestServer::start();
    let url = format!("{}/hello", srv.url());
    let secret = "PLANTED-debug-9c1e";
    let auth = format!("Authorization: Bearer {secret}");
    let run = |extra: &[&str]| {
        let out = loadline()
            .arg("run")
            .arg(&url)
            .args(["--quiet", "--iterations", "2", "-H", &auth])
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert!(!text(&out).contains(secret), "{}", text(&out));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let quiet = run(&[]);
    assert!(!quiet.contains("> GET"), "{quiet}");

    let heads = run(&["--http-debug"]);
    assert_eq!(
        heads.matches("> GET /hello HTTP/1.1\n").count(),
        2,
        "{heads}"
    );
    assert_eq!(heads.matches("< HTTP/1.1 200 OK\n").count(), 2, "{heads}");
    assert!(heads.contains("> authorization: ***\n"), "{heads}");
    assert!(!heads.contains("< hello"), "{heads}");

    let full = run(&["--http-debug=full"]);
    assert_eq!(full.matches("<\n< hello\n").count(), 2, "{full}");

    // Connection events at LOADLINE_LOG=debug: one connect, then reuse.
    let out = loadline()
        .arg("run")
        .arg(&url)
        .args(["--quiet", "--iterations", "3"])
        .env("LOADLINE_LOG", "debug")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(log.matches(" connected").count(), 1, "{log}");
    assert_eq!(log.matches("connection reused").count(), 2, "{log}");
    assert_eq!(srv.seen().count("GET /hello"), 9);
}
