//! Shared fixtures: an HTTP server on 127.0.0.1 that counts what it serves, and
//! helpers to run the real `loadline` binary on a scenario written to a temp folder.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

/// What the server saw.
#[derive(Debug, Default)]
pub struct Seen {
    /// Requests per route pattern (e.g. `GET /products/{id}`).
    pub counts: BTreeMap<String, u64>,
    /// (page asked, id asked) in arrival order: pages from the list, ids from detail.
    pub pages: Vec<u64>,
    pub details: Vec<u64>,
    pub logins: Vec<(String, String)>,
    /// The bearer tokens orders came with.
    pub order_tokens: Vec<String>,
    /// Arrival times of `GET /tick`.
    pub ticks: Vec<Instant>,
    /// Cookie checks: true when the cookie set earlier came back.
    pub cookie_checks: Vec<bool>,
    /// `GET /landing`: the `x-api-key` each request came with, if any.
    pub landing_keys: Vec<Option<String>>,
}

impl Seen {
    pub fn count(&self, route: &str) -> u64 {
        self.counts.get(route).copied().unwrap_or(0)
    }
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }
}

type Shared = Arc<Mutex<Seen>>;

/// Held by a test while it runs `tests/load/db.yaml`: its setup and teardown
/// create and drop fixed table names in the shared PostgreSQL database, so two
/// tests running it at once would drop each other's tables.
pub static OLTP_TABLES: Mutex<()> = Mutex::new(());

/// Held by every test whose load goes through the Redis on this machine:
/// tests that compare Redis' own server-wide counters (commandstats, keyspace
/// hits) with loadline's take turns with the others.
pub static REDIS: Mutex<()> = Mutex::new(());

fn bump<'a>(s: &'a Shared, route: &str) -> std::sync::MutexGuard<'a, Seen> {
    let mut g = s.lock().unwrap();
    *g.counts.entry(route.to_string()).or_default() += 1;
    g
}

/// A test HTTP server on 127.0.0.1 (ephemeral port), stopped on drop.
pub struct TestServer {
    pub addr: SocketAddr,
    pub seen: Shared,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    pub fn start() -> Self {
        Self::start_on("127.0.0.1:0")
    }

    /// The same server on a loopback address of choice (`127.0.0.1:0`, `[::1]:0`).
    pub fn start_on(bind: &'static str) -> Self {
        let seen: Shared = Arc::default();
        let app = Router::new()
            .route("/hello", get(hello))
            .route("/products", get(list_products))
            .route("/products/{id}", get(product))
            .route("/login", post(login))
            .route("/orders", post(order))
            .route("/status/{code}", get(status))
            .route("/slow/{ms}", get(slow))
            .route("/tick", get(tick))
            .route("/cookie/set", get(cookie_set))
            .route("/cookie/check", get(cookie_check))
            .route("/metrics", get(metrics))
            .route("/redirect", get(redirect))
            .route("/landing", get(landing))
            .route("/fail-after/{n}", get(fail_after))
            .route("/version", get(version))
            .with_state(seen.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind(bind).await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = rx.await;
                    })
                    .await
                    .unwrap();
            });
        });
        let addr = addr_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        Self {
            addr,
            seen,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn hello(State(s): State<Shared>) -> &'static str {
    drop(bump(&s, "GET /hello"));
    "hello"
}

async fn list_products(
    State(s): State<Shared>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Json<Value> {
    let page: u64 = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    bump(&s, "GET /products").pages.push(page);
    let items: Vec<Value> = (1..=3)
        .map(|i| json!({"id": page * 100 + i, "name": format!("p{i}")}))
        .collect();
    Json(json!({ "items": items, "page": page }))
}

async fn product(State(s): State<Shared>, UrlPath(id): UrlPath<u64>) -> Json<Value> {
    bump(&s, "GET /products/{id}").details.push(id);
    Json(json!({ "id": id, "name": "thing" }))
}

async fn login(State(s): State<Shared>, Json(body): Json<Value>) -> Response {
    let user = body["user"].as_str().unwrap_or("").to_string();
    let password = body["password"].as_str().unwrap_or("").to_string();
    bump(&s, "POST /login")
        .logins
        .push((user.clone(), password));
    Json(json!({ "token": format!("tok-{user}") })).into_response()
}

async fn order(State(s): State<Shared>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
        .to_string();
    bump(&s, "POST /orders").order_tokens.push(token.clone());
    if token.is_empty() || !body["product"].is_number() {
        return (StatusCode::BAD_REQUEST, "bad order").into_response();
    }
    (StatusCode::CREATED, Json(json!({ "order": 1 }))).into_response()
}

async fn status(State(s): State<Shared>, UrlPath(code): UrlPath<u16>) -> Response {
    drop(bump(&s, &format!("GET /status/{code}")));
    let code = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST);
    (code, "status").into_response()
}

async fn slow(State(s): State<Shared>, UrlPath(ms): UrlPath<u64>) -> &'static str {
    drop(bump(&s, "GET /slow/{ms}"));
    tokio::time::sleep(Duration::from_millis(ms.min(60_000))).await;
    "slow"
}

async fn tick(State(s): State<Shared>) -> &'static str {
    bump(&s, "GET /tick").ticks.push(Instant::now());
    "tick"
}

/// Prometheus text: a counter that grows by 10 per scrape, and a fixed gauge.
async fn metrics(State(s): State<Shared>) -> String {
    let n = {
        let g = bump(&s, "GET /metrics");
        g.count("GET /metrics")
    };
    format!(
        "# HELP test_jobs_total Jobs.\n# TYPE test_jobs_total counter\ntest_jobs_total{{queue=\"a\"}} {}\n# TYPE test_depth gauge\ntest_depth 7\n",
        n * 10
    )
}

/// `302` to the URL given as `?to=`.
async fn redirect(State(s): State<Shared>, Query(q): Query<BTreeMap<String, String>>) -> Response {
    drop(bump(&s, "GET /redirect"));
    let to = q.get("to").cloned().unwrap_or_else(|| "/hello".into());
    (StatusCode::FOUND, [("location", to)]).into_response()
}

/// The request's HTTP version, as `HTTP/1.1` or `HTTP/2.0`.
async fn version(State(s): State<Shared>, req: axum::extract::Request) -> String {
    drop(bump(&s, "GET /version"));
    format!("{:?}", req.version())
}

/// `200` to the first `n` requests, `500` to every one after.
async fn fail_after(State(s): State<Shared>, UrlPath(n): UrlPath<u64>) -> StatusCode {
    let seen = bump(&s, "GET /fail-after/{n}").count("GET /fail-after/{n}");
    if seen > n {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    }
}

async fn landing(State(s): State<Shared>, headers: HeaderMap) -> &'static str {
    let key = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    bump(&s, "GET /landing").landing_keys.push(key);
    "landed"
}

async fn cookie_set(State(s): State<Shared>) -> Response {
    drop(bump(&s, "GET /cookie/set"));
    ([("set-cookie", "sid=abc123; Path=/")], "set").into_response()
}

async fn cookie_check(State(s): State<Shared>, headers: HeaderMap) -> Response {
    let ok = headers
        .get("cookie")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.contains("sid=abc123"));
    bump(&s, "GET /cookie/check").cookie_checks.push(ok);
    if ok {
        (StatusCode::OK, "ok").into_response()
    } else {
        (StatusCode::UNAUTHORIZED, "no cookie").into_response()
    }
}

/// A temporary folder holding a scenario file (and data files).
pub struct Scenario {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl Scenario {
    pub fn new(yaml: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scenario.yaml");
        std::fs::write(&path, yaml).unwrap();
        Self { dir, path }
    }

    pub fn file(&self, name: &str, content: &str) -> &Self {
        std::fs::write(self.dir.path().join(name), content).unwrap();
        self
    }

    pub fn out(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// The `loadline` binary under test.
pub fn loadline() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_loadline"));
    c.env("NO_COLOR", "1").env_remove("LOADLINE_LOG");
    c
}

/// Runs `loadline run FILE --summary-json OUT --quiet` and returns the output and
/// the parsed summary (if written).
pub fn run_scenario(sc: &Scenario, extra: &[&str]) -> (Output, Option<Value>) {
    let out_path = sc.out("summary.json");
    let output = loadline()
        .arg("run")
        .arg(&sc.path)
        .arg("--summary-json")
        .arg(&out_path)
        .arg("--quiet")
        .args(extra)
        .output()
        .unwrap();
    let summary = read_json(&out_path);
    (output, summary)
}

pub fn read_json(path: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(serde_json::from_str(&text).unwrap())
}

/// The step named `name` in a summary.
pub fn step<'a>(summary: &'a Value, name: &str) -> &'a Value {
    summary["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name} in {summary:#}"))
}

pub fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `loadline demo --serve` as a child process: demo-shop on 127.0.0.1, stopped
/// with SIGINT on drop.
pub struct ShopProcess {
    pub url: String,
    child: std::process::Child,
    /// Everything the shop printed before it was ready.
    pub banner: String,
}

impl ShopProcess {
    /// Starts the shop with extra `demo --serve` flags; waits (at most 60 s) for
    /// its "ready at" line.
    pub fn start(extra: &[&str]) -> Self {
        use std::io::BufRead;
        let mut child = loadline()
            .args(["demo", "--serve"])
            .args(extra)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = std::io::BufReader::new(stdout).lines();
            let mut banner = String::new();
            for line in lines.by_ref() {
                let Ok(line) = line else { break };
                banner.push_str(&line);
                banner.push('\n');
                if let Some(rest) = line.split("ready at ").nth(1) {
                    let url = rest.split_whitespace().next().unwrap_or("").to_string();
                    let _ = tx.send((url, banner.clone()));
                    break;
                }
            }
            // Keep draining so the shop never blocks on a full pipe.
            for _ in lines {}
        });
        let (url, banner) = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("demo-shop printed its URL");
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        Self { url, child, banner }
    }

    /// Stops the shop (SIGINT) and returns its exit code.
    pub fn stop(mut self) -> Option<i32> {
        self.interrupt()
    }

    fn interrupt(&mut self) -> Option<i32> {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            if start.elapsed() > Duration::from_secs(20) {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ShopProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.interrupt();
        }
    }
}

/// A minimal HTTP/1.1 GET on 127.0.0.1: (status, body).
pub fn http_get(url: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut s = std::net::TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap();
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

/// Whether something listens on 127.0.0.1:`port`.
pub fn reachable(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(2),
    )
    .is_ok()
}

/// HTTPS in front of a plain HTTP server on 127.0.0.1: TLS with a fresh
/// self-signed certificate for 127.0.0.1, each connection's bytes passed on to
/// `backend` and back (for scenarios with `insecure: true`).
pub struct TlsFront {
    pub url: String,
}

impl TlsFront {
    pub fn start(backend: &str) -> Self {
        use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
        let backend: SocketAddr = backend
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .unwrap();
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
        std::thread::spawn(move || {
            for tcp in listener.incoming() {
                let Ok(tcp) = tcp else { return };
                let config = config.clone();
                std::thread::spawn(move || relay_tls(tcp, config, backend));
            }
        });
        Self {
            url: format!("https://127.0.0.1:{port}"),
        }
    }
}

/// Passes one TLS connection's plaintext to `backend` and back until either
/// side closes (polling both with short read timeouts).
fn relay_tls(mut tcp: std::net::TcpStream, config: Arc<rustls::ServerConfig>, backend: SocketAddr) {
    use std::io::{ErrorKind, Read, Write};
    let Ok(mut plain) = std::net::TcpStream::connect(backend) else {
        return;
    };
    let tick = Some(Duration::from_millis(2));
    if tcp.set_read_timeout(tick).is_err() || plain.set_read_timeout(tick).is_err() {
        return;
    }
    let Ok(conn) = rustls::ServerConnection::new(config) else {
        return;
    };
    let mut tls = rustls::StreamOwned::new(conn, &mut tcp);
    let mut buf = [0u8; 16 * 1024];
    let idle = |e: &std::io::Error| matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut);
    loop {
        match tls.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if plain.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(e) if idle(&e) => {}
            Err(_) => return,
        }
        match plain.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if tls.write_all(&buf[..n]).and_then(|()| tls.flush()).is_err() {
                    return;
                }
            }
            Err(e) if idle(&e) => {}
            Err(_) => return,
        }
    }
}
