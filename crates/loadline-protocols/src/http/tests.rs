//! The executor against real servers on 127.0.0.1:0 started by each test: a small
//! hyper server for well-behaved exchanges, raw TCP responders for hostile ones.
//! Every test sends a handful of requests with short timeouts.

// Test set-up failures are bugs in the test; unwrapping keeps them short.
#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use loadline_core::metrics::{ErrorKind, GroupStats, MetricsHub};
use loadline_core::plan::{GroupInfo, Plan};
use loadline_core::protocol::StepOutcome;
use loadline_core::template::{JsonTemplate, PathSeg, Scope, Template, VarRef};
use loadline_core::vu::Vu;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;
use crate::check::ValueTest;

/// What the test server saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    version: http::Version,
    method: Method,
    target: String,
    headers: HeaderMap,
    body: Bytes,
}

#[derive(Clone, Default)]
struct Log {
    seen: Arc<Mutex<Vec<Seen>>>,
    connections: Arc<AtomicUsize>,
}

impl Log {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// The routes of [`server`] over HTTP/2 without TLS (prior knowledge).
async fn h2c_server() -> (SocketAddr, Log) {
    serve(true).await
}

/// A keep-alive HTTP/1.1 server with a few fixed routes.
async fn server() -> (SocketAddr, Log) {
    serve(false).await
}

/// The fixed routes on 127.0.0.1, over HTTP/2 (h2c) or HTTP/1.1.
async fn serve(http2: bool) -> (SocketAddr, Log) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log = Log::default();
    let accept_log = log.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            accept_log.connections.fetch_add(1, Ordering::SeqCst);
            let log = accept_log.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| route(req, log.clone()));
                let io = TokioIo::new(tcp);
                let _ = if http2 {
                    hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .serve_connection(io, service)
                        .await
                } else {
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await
                };
            });
        }
    });
    (addr, log)
}

async fn route(req: Request<Incoming>, log: Log) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let target = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    log.seen.lock().unwrap().push(Seen {
        version: parts.version,
        method: parts.method.clone(),
        target,
        headers: parts.headers.clone(),
        body: body.clone(),
    });
    let resp = Response::builder();
    let resp = match parts.uri.path() {
        "/hello" => resp
            .header("content-type", "text/plain")
            .body(Full::new(Bytes::from_static(b"hello world"))),
        "/echo" => resp.body(Full::new(body)),
        "/json" => resp
            .header("x-trace", "t-1")
            .body(Full::new(Bytes::from_static(
                br#"{"token":"abc123","items":[{"id":7},{"id":8}]}"#,
            ))),
        "/login" => resp
            .header("set-cookie", "sid=s1; Path=/")
            .body(Full::new(Bytes::new())),
        "/me" => {
            let cookie = parts
                .headers
                .get("cookie")
                .map_or(&b"none"[..], |v| v.as_bytes());
            resp.body(Full::new(Bytes::copy_from_slice(cookie)))
        }
        "/redirect" => resp
            .status(StatusCode::FOUND)
            .header("location", "/hello")
            .body(Full::new(Bytes::new())),
        "/cache/hit" => resp
            .header("cache-status", "edge; hit; ttl=30")
            .body(Full::new(Bytes::from_static(b"cached"))),
        "/cache/chain" => resp
            .header(
                "cache-status",
                "origin-cache; hit, edge; fwd=uri-miss; stored",
            )
            .body(Full::new(Bytes::from_static(b"cached"))),
        "/cache/x-cache" => resp
            .header("x-cache", "MISS from squid")
            .body(Full::new(Bytes::new())),
        "/cache/age" => resp.header("age", "42").body(Full::new(Bytes::new())),
        "/cache/custom" => resp
            .header("x-edge-result", "origin-fetch")
            .header("age", "42")
            .body(Full::new(Bytes::new())),
        "/redirect307" => resp
            .status(StatusCode::TEMPORARY_REDIRECT)
            .header("location", "/echo")
            .body(Full::new(Bytes::new())),
        _ => resp
            .status(StatusCode::NOT_FOUND)
            .body(Full::new(Bytes::from_static(b"not found"))),
    };
    Ok(resp.unwrap())
}

/// The routes of [`server`] over TLS with a fresh self-signed certificate for
/// 127.0.0.1; the log records the ALPN protocol each handshake settled on.
async fn tls_server() -> (SocketAddr, Log, Arc<Mutex<Vec<Option<Vec<u8>>>>>) {
    tls_server_offering(&[b"http/1.1"]).await
}

/// [`tls_server`] offering these ALPN protocols; a connection that settles on
/// `h2` is served over HTTP/2.
async fn tls_server_offering(
    protocols: &[&[u8]],
) -> (SocketAddr, Log, Arc<Mutex<Vec<Option<Vec<u8>>>>>) {
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key_pair.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .unwrap();
    config.alpn_protocols = protocols.iter().map(|p| p.to_vec()).collect();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log = Log::default();
    let alpn = Arc::new(Mutex::new(Vec::new()));
    let (accept_log, accept_alpn) = (log.clone(), alpn.clone());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            accept_log.connections.fetch_add(1, Ordering::SeqCst);
            let (log, alpn, acceptor) = (accept_log.clone(), accept_alpn.clone(), acceptor.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let chosen = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
                let h2 = chosen.as_deref() == Some(b"h2");
                alpn.lock().unwrap().push(chosen);
                let service = service_fn(move |req| route(req, log.clone()));
                if h2 {
                    let _ = hyper::server::conn::http2::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
                } else {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                }
            });
        }
    });
    (addr, log, alpn)
}

/// A raw TCP server: `handle` gets each accepted connection.
async fn raw_server<F, Fut>(handle: F) -> (SocketAddr, Arc<AtomicUsize>)
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(handle(tcp));
        }
    });
    (addr, accepted)
}

/// Reads one request head (the tests' hostile servers only get GETs).
async fn read_head(tcp: &mut TcpStream) -> bool {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match tcp.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if buf.len() > 64 * 1024 {
            return false;
        }
    }
    true
}

/// Knows one name, `name`, captured into slot 0.
struct OneCapture;
impl Scope for OneCapture {
    fn resolve(&self, name: &str, path: &[PathSeg]) -> Result<VarRef, String> {
        match name {
            "name" => Ok(VarRef::Capture {
                slot: 0,
                path: path.to_vec(),
            }),
            other => Err(format!("unknown name `{other}`")),
        }
    }
}

struct Harness {
    plan: Plan,
    hub: Arc<MetricsHub>,
    vu: Vu,
}

impl Harness {
    fn new(settings: HttpSettings) -> Self {
        let plan = Plan {
            name: None,
            source: "test".into(),
            phases: vec![],
            flows: vec![],
            scenarios: vec![],
            feeders: Arc::new(vec![]),
            thresholds: vec![],
            groups: vec![
                GroupInfo {
                    name: "g".into(),
                    kind: "http".into(),
                },
                GroupInfo {
                    name: "outcome".into(),
                    kind: loadline_core::plan::OUTCOME_KIND.into(),
                },
            ],
            protocols: vec![HttpProtocol::new(settings)],
            capture_slots: 3,
            graceful_stop: Duration::from_secs(1),
            cache_warm_at: 0.9,
            error_classes: loadline_core::metrics::generic_error_classes(),
            counters: vec![],
            checks: vec![],
        };
        let hub = MetricsHub::new(plan.shape());
        let vu = Vu::new(&plan, 1, hub.clone(), 7);
        Self { plan, hub, vu }
    }

    async fn run(&mut self, spec: HttpStepSpec) -> StepOutcome {
        build_step(spec).run(&mut self.vu).await
    }

    fn start_iteration(&mut self) {
        self.plan.protocols[0].start_iteration(self.vu.states[0].as_mut());
    }

    fn stats(&self) -> GroupStats {
        self.hub.collect().groups[0].clone()
    }
}

fn spec(addr: SocketAddr, method: Method, path: &str) -> HttpStepSpec {
    HttpStepSpec {
        slot: loadline_core::protocol::Slot::new(0),
        group: 0,
        method,
        url: UrlSpec::Relative {
            base: url::Url::parse(&format!("http://{addr}")).unwrap(),
            path: Template::literal(path),
        },
        query: vec![],
        headers: vec![],
        body: BodySpec::None,
        timeout: Duration::from_secs(5),
        checks: vec![],
        captures: vec![],
        max_redirects: 0,
        version: HttpVersion::Http1,
        poll: None,
    }
}

fn error_count(s: &GroupStats, kind: ErrorKind) -> u64 {
    s.errors_of(kind)
}

#[tokio::test]
async fn get_is_counted_with_status_and_bytes() {
    let (addr, log) = server().await;
    let mut h = Harness::new(HttpSettings::default());
    let mut step = spec(addr, Method::GET, "/hello?x=1");
    step.query = vec![("q".into(), Template::literal("a b&c"))];
    assert_eq!(h.run(step).await, StepOutcome::Continue);
    let s = h.stats();
    assert_eq!((s.requests, s.failed), (1, 0));
    assert_eq!(s.status, vec![(200, 1)]);
    assert!(s.bytes_sent > 40, "{}", s.bytes_sent);
    assert!(s.bytes_received > 11 + 17, "{}", s.bytes_received);
    assert_eq!(s.latency.len(), 1);
    let seen = log.seen();
    assert_eq!(seen[0].target, "/hello?x=1&q=a+b%26c");
    let ua = seen[0].headers.get("user-agent").unwrap().to_str().unwrap();
    assert!(ua.starts_with("loadline/"), "{ua}");
    assert_eq!(seen[0].headers.get("host").unwrap(), &addr.to_string());
}

#[tokio::test]
async fn not_found_counts_as_failed_but_continues() {
    let (addr, _log) = server().await;
    let mut h = Harness::new(HttpSettings::default());
    assert_eq!(
        h.run(spec(addr, Method::GET, "/nope")).await,
        StepOutcome::Continue
    );
    let s = h.stats();
    assert_eq!((s.requests, s.failed), (1, 1));
    assert_eq!(s.status, vec![(404, 1)]);
    assert_eq!(s.error_counts().count(), 0);
}

#[tokio::test]
async fn post_json_body_arrives_intact() {
    let (addr, log) = server().await;
    let mut h = Harness::new(HttpSettings::default());
    h.vu.vars.captures[0] = Some(json!("ann"));
    let body =
        JsonTemplate::compile(&json!({"name": "{{ name }}", "qty": 2}), &OneCapture).unwrap();
    let mut step = spec(addr, Method::POST, "/echo");
    step.body = BodySpec::Json(body);
    step.headers = vec![(
        HeaderName::from_static("x-user"),
        Template::compile("u-{{ name }}", &OneCapture).unwrap(),
    )];
    assert_eq!(h.run(step).await, StepOutcome::Continue);
    let seen = log.seen();
    let got: Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(got, json!({"name": "ann", "qty": 2}));
    assert_eq!(seen[0].method, Method::POST);
    assert_eq!(
        seen[0].headers.get("content-type").unwrap(),
        "application/json"
    );
    assert_eq!(seen[0].headers.get("x-user").unwrap(), "u-ann");
    let len: usize = seen[0]
        .headers
        .get("content-length")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(len, seen[0].body.len());
    let s = h.stats();
    assert!(s.bytes_received >= seen[0].body.len() as u64);
}

#[tokio::test]
async fn form_body_is_url_encoded() {
    let (addr, log) = server().await;
    let mut h = Harness::new(HttpSettings::default());
    let mut step = spec(addr, Method::POST, "/echo");
    step.body = BodySpec::Form(vec![
        ("user".into(), Template::literal("ann lee")),
        ("x".into(), Template::literal("1&2")),
    ]);
    h.run(step).await;
    let seen = log.seen();
    assert_eq!(&seen[0].body[..], b"user=ann+lee&x=1%262");
    assert_eq!(
        seen[0].headers.get("content-type").unwrap(),
        "application/x-www-form-urlencoded"
    );
}

#[tokio::test]
async fn captures_json_regex_and_header() {
    let (addr, _log) = server().await;
    let mut h = Harness::new(HttpSettings::default());
    let mut step = spec(addr, Method::GET, "/json");
    step.captures = vec![
        CaptureSpec {
            slot: 0,
            name: "id".into(),
            source: CaptureSource::Json(serde_json_path::JsonPath::parse("$.items[*].id").unwrap()),
        },
        CaptureSpec {
            slot: 1,
            name: "token".into(),
            source: CaptureSource::Regex {
                re: regex::Regex::new(r#""token":"(\w+)""#).unwrap(),
                group: 1,
            },
        },
        CaptureSpec {
            slot: 2,
            name: "trace".into(),
            source: CaptureSource::Header(HeaderName::from_static("x-trace")),
        },
    ];
    assert_eq!(h.run(step).await, StepOutcome::Continue);
    assert_eq!(h.vu.vars.captures[0], Some(json!(7)));
    assert_eq!(h.vu.vars.captures[1], Some(json!("abc123")));
    assert_eq!(h.vu.vars.captures[2], Some(json!("t-1")));
    assert_eq!(error_count(&h.stats(), ErrorKind::Capture), 0);
}

#[tokio::test]
async fn failed_capture_aborts_the_iteration() {
    let (addr, _log) = server().await;
    let mut h = Harness::new(HttpSettings::default());
    let mut step = spec(addr, Method::GET, "/json");
    step.captures = vec![CaptureSpec {
        slot: 0,
        name: "nope".into(),
        source: CaptureSource::Json(serde_json_path::JsonPath::parse("$.nope").unwrap()),
    }];
    assert_eq!(h.run(step).await, StepOutcome::AbortIteration);
    // A body that is not JSON fails a JSON capture too.
    let mut step = spec(addr, Method::GET, "/hello");
    step.captures = vec![CaptureSpec {
        slot: 0,
        name: "id".into(),
        source: CaptureSource::Json(serde_json_path::JsonPath::parse("$.id").unwrap()),
    }];
    assert_eq!(h.run(step).await, StepOutcome::AbortIteration);
    let s = h.stats();
    assert_eq!(error_count(&s, ErrorKind::Capture), 2);
    assert_eq!((s.requests, s.failed), (2, 0));
    assert_eq!(h.vu.vars.captures[0], None);
}

#[tokio::test]
async fn checks_are_counted_and_never_fail_the_request() {
    let (addr, _log) = server().await;
    let mut h = Harness::new(HttpSettings::default());
    let mut step = spec(addr, Method::GET, "/hello");
    step.checks = CheckSpec::numbered(vec![
        Check::Status(vec![200, 201]),
        Check::BodyContains("world".into()),
        Check::BodyContains("planet".into()),
        Check::Header {
            name: HeaderName::from_static("content-type"),
            tests: vec![ValueTest::Contains("text/".into())],
        },
        Check::Header {
            name: HeaderName::from_static("x-missing"),
            tests: Vec::new(),
        },
        Check::Status(vec![500]),
    ]);
    assert_eq!(h.run(step).await, StepOutcome::Continue);
    let s = h.stats();
    assert_eq!((s.checks_passed, s.checks_failed), (3, 3));
    assert_eq!((s.requests, s.failed), (1, 0));
    // Each failure is tallied under its check, with what it saw.
    let failed: Vec<(usize, u64, Option<&str>)> = s
        .failed_checks()
        .map(|(id, t)| (id.index(), t.failed, t.actual.as_deref()))
        .collect();
    assert_eq!(
        failed,
        [
            (2, 1, Some("not in the 11 bytes kept")),
            (4, 1, Some("missing")),
            (5, 1, Some("200"))
        ]
    );
}

#[tokio::test]
async fn cookies_follow_the_session_and_reset_per_iteration() {
    let (addr, log) = server().await;
    let mut h = Harness::new(HttpSettings::default());
    h.run(spec(addr, Method::GET, "/login")).await;
    h.run(spec(addr, Method::GET, "/me")).await;
    h.start_iteration();
    h.run(spec(addr, Method::GET, "/me")).await;
    let seen = log.seen();
    assert!(seen[0].headers.get("cookie").is_none());
    assert_eq!(seen[1].headers.get("cookie").unwrap(), "sid=s1");
    assert!(seen[2].headers.get("cookie").is_none());

    // With cookies off, nothing is kept.
    let (addr, log) = server().await;
    let mut h = Harness::new(HttpSettings {
        cookies: false,
        ..HttpSettings::default()
    });
    h.run(spec(addr, Method::GET, "/login")).await;
    h.run(spec(addr, Method::GET, "/me")).await;
    assert!(log.seen()[1].headers.get("cookie").is_none());
}

#[tokio::test]
async fn redirects_are_followed_and_each_hop_counted() {
    let (addr, log) = server().await;
    let mut h = Harness::new(HttpSettings::default());
    let mut step = spec(addr, Method::GET, "/redirect");
    step.max_redirects = 3;
    step.checks = CheckSpec::numbered(vec![Check::BodyContains("hello".into())]);
    assert_eq!(h.run(step).await, StepOutcome::Continue);
    let s = h.stats();
    assert_eq!((s.requests, s.failed, s.checks_passed), (2, 0, 1));
    let mut status = s.status.clone();
    status.sort();
    assert_eq!(status, vec![(200, 1), (302, 1)]);
    assert_eq!(log.seen().len(), 2);
    assert_eq!(log.seen()[1].target, "/hello");

    // 302 turns a POST into a GET without body; 307 keeps method and body.
    let mut step = spec(addr, Method::POST, "/redirect");
    step.body = BodySpec::Raw(Template::literal("payload"));
    step.max_redirects = 1;
    h.run(step).await;
    let mut step = spec(addr, Method::POST, "/redirect307");
    step.body = BodySpec::Raw(Template::literal("payload"));
    step.max_redirects = 1;
    h.run(step).await;
    let seen = log.seen();
    assert_eq!(
        (seen[3].method.clone(), seen[3].body.len()),
        (Method::GET, 0)
    );
    assert!(seen[3].headers.get("content-length").is_none());
    assert_eq!(seen[5].method, Method::POST);
    assert_eq!(&seen[5].body[..], b"payload");

    // Not followed when the step says so.
    let mut h = Harness::new(HttpSettings::default());
    h.run(spec(addr, Method::GET, "/redirect")).await;
    assert_eq!(h.stats().status, vec![(302, 1)]);
}

#[tokio::test]
async fn keep_alive_reuses_one_connection() {
    let (addr, log) = server().await;
    let mut h = Harness::new(HttpSettings::default());
    for _ in 0..5 {
        assert_eq!(
            h.run(spec(addr, Method::GET, "/hello")).await,
            StepOutcome::Continue
        );
    }
    assert_eq!(h.stats().requests, 5);
    assert_eq!(log.seen().len(), 5);
    assert_eq!(log.connections(), 1);
}

#[tokio::test]
async fn server_closing_idle_connections_costs_no_request() {
    let (addr, accepted) = raw_server(|mut tcp| async move {
        if read_head(&mut tcp).await {
            let _ = tcp
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                .await;
        }
        // Dropped: closed after one response, without saying so.
    })
    .await;
    let mut h = Harness::new(HttpSettings::default());
    for _ in 0..4 {
        assert_eq!(
            h.run(spec(addr, Method::GET, "/")).await,
            StepOutcome::Continue
        );
    }
    let s = h.stats();
    assert_eq!((s.requests, s.failed), (4, 0));
    assert_eq!(s.error_counts().count(), 0);
    assert_eq!(accepted.load(Ordering::SeqCst), 4);
}

/// The server closes an idle kept-alive connection while the runtime is too busy
/// to notice: the VU must still find out before writing into the dead socket,
/// and reconnect instead of counting a reset.
#[tokio::test]
async fn close_unnoticed_while_idle_costs_no_request() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        for _ in 0..2 {
            let Ok((mut tcp, _)) = listener.accept() else {
                return;
            };
            let _ = tcp.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = [0u8; 4096];
            let _ = tcp.read(&mut buf);
            let _ = tcp.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let mut h = Harness::new(HttpSettings::default());
    assert_eq!(
        h.run(spec(addr, Method::GET, "/")).await,
        StepOutcome::Continue
    );
    // Block the runtime so that nothing notices the close before the next send.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        h.run(spec(addr, Method::GET, "/")).await,
        StepOutcome::Continue
    );
    let s = h.stats();
    assert_eq!((s.requests, s.failed), (2, 0));
    assert_eq!(s.error_counts().count(), 0);
    server.join().unwrap();
}

#[tokio::test]
async fn refused_connection_is_a_connect_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut h = Harness::new(HttpSettings::default());
    assert_eq!(
        h.run(spec(addr, Method::GET, "/")).await,
        StepOutcome::AbortIteration
    );
    let s = h.stats();
    assert_eq!((s.requests, s.failed), (1, 1));
    assert_eq!(error_count(&s, ErrorKind::Connect), 1);
    assert_eq!(s.bytes_sent, 0);
}

#[tokio::test]
async fn silent_server_is_a_timeout() {
    let (addr, _) = raw_server(|mut tcp| async move {
        read_head(&mut tcp).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await;
    let mut h = Harness::new(HttpSettings::default());
    let mut step = spec(addr, Method::GET, "/");
    step.timeout = Duration::from_millis(200);
    assert_eq!(h.run(step).await, StepOutcome::AbortIteration);
    let s = h.stats();
    assert_eq!((s.requests, s.failed), (1, 1));
    assert_eq!(error_count(&s, ErrorKind::Timeout), 1);
    assert!(s.latency.min() >= 190_000, "{}", s.latency.min());
}

#[tokio::test]
async fn close_after_headers_is_a_reset() {
    let (addr, _) = raw_server(|mut tcp| async move {
        if read_head(&mut tcp).await {
            let _ = tcp
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial")
                .await;
        }
    })
    .await;
    let mut h = Harness::new(HttpSettings::default());
    assert_eq!(
        h.run(spec(addr, Method::GET, "/")).await,
        StepOutcome::AbortIteration
    );
    let s = h.stats();
    assert_eq!((s.requests, s.failed), (1, 1));
    assert_eq!(error_count(&s, ErrorKind::Reset), 1);
    assert!(s.bytes_received >= 7);
}

#[tokio::test]
async fn garbage_is_a_protocol_error() {
    let (addr, _) = raw_server(|mut tcp| async move {
        if read_head(&mut tcp).await {
            let _ = tcp.write_all(b"SPLAT 42 \x01\x02 nonsense\r\n\r\n").await;
        }
    })
    .await;
    let mut h = Harness::new(HttpSettings::default());
    assert_eq!(
        h.run(spec(addr, Method::GET, "/")).await,
        StepOutcome::AbortIteration
    );
    let s = h.stats();
    assert_eq!(error_count(&s, ErrorKind::Protocol), 1);
}

#[tokio::test]
async fn bad_absolute_url_is_other() {
    let mut h = Harness::new(HttpSettings::default());
    let mut step = spec("127.0.0.1:9".parse().unwrap(), Method::GET, "/");
    step.url = UrlSpec::Absolute(Template::literal("http://[not a url"));
    assert_eq!(h.run(step).await, StepOutcome::AbortIteration);
    let s = h.stats();
    assert_eq!((s.requests, s.failed), (1, 1));
    assert_eq!(error_count(&s, ErrorKind::Other), 1);
}

#[tokio::test]
async fn absolute_urls_and_body_limit() {
    let (addr, log) = server().await;
    let mut h = Harness::new(HttpSettings {
        max_body: 4,
        ..HttpSettings::default()
    });
    let mut step = spec(addr, Method::GET, "/");
    step.url = UrlSpec::Absolute(
        Template::compile(
            &format!("http://{addr}/hello?who={{{{ name }}}}"),
            &OneCapture,
        )
        .unwrap(),
    );
    h.vu.vars.captures[0] = Some(json!("a b"));
    step.checks = CheckSpec::numbered(vec![
        Check::BodyContains("hell".into()),
        Check::BodyContains("world".into()),
    ]);
    h.run(step.clone()).await;
    h.run(step).await;
    let s = h.stats();
    // Only 4 bytes are kept for checks, but every byte is counted.
    assert_eq!((s.checks_passed, s.checks_failed), (2, 2));
    assert!(s.bytes_received >= 22);
    assert_eq!(log.seen()[0].target, "/hello?who=a%20b");
    assert_eq!(log.connections(), 1);
}

#[tokio::test]
async fn https_insecure_accepts_self_signed_and_verified_refuses_it() {
    let (addr, log, alpn) = tls_server().await;
    let https = |addr: SocketAddr| {
        let mut step = spec(addr, Method::GET, "/hello");
        step.url = UrlSpec::Relative {
            base: url::Url::parse(&format!("https://{addr}")).unwrap(),
            path: Template::literal("/hello"),
        };
        step.checks = CheckSpec::numbered(vec![Check::BodyContains("hello".into())]);
        step
    };
    let mut h = Harness::new(HttpSettings {
        insecure: true,
        ..HttpSettings::default()
    });
    for _ in 0..3 {
        assert_eq!(h.run(https(addr)).await, StepOutcome::Continue);
    }
    let s = h.stats();
    assert_eq!((s.requests, s.failed, s.checks_passed), (3, 0, 3));
    assert_eq!(log.seen().len(), 3);
    assert_eq!(log.connections(), 1);
    assert_eq!(
        alpn.lock().unwrap().clone(),
        vec![Some(b"http/1.1".to_vec())]
    );

    let mut h = Harness::new(HttpSettings::default());
    assert_eq!(h.run(https(addr)).await, StepOutcome::AbortIteration);
    let s = h.stats();
    assert_eq!((s.requests, s.failed), (1, 1));
    assert_eq!(error_count(&s, ErrorKind::Tls), 1);
    assert_eq!(log.seen().len(), 3);
}

#[tokio::test]
async fn chunked_bodies_interim_responses_and_head_requests() {
    // Each connection: a 100 Continue then a chunked JSON body; then a HEAD
    // answered with a content-length and no body; all on one kept-alive connection.
    let (addr, accepted) = raw_server(|mut tcp| async move {
        while read_head(&mut tcp).await {
            let reply: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-type: application/json\r\n\r\n7\r\n{\"id\": \r\n3\r\n42}\r\n0\r\n\r\n";
            if tcp.write_all(reply).await.is_err() {
                return;
            }
            if !read_head(&mut tcp).await {
                return;
            }
            let head: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n";
            if tcp.write_all(head).await.is_err() {
                return;
            }
        }
    })
    .await;
    let mut h = Harness::new(HttpSettings::default());
    let mut get = spec(addr, Method::GET, "/");
    get.captures = vec![CaptureSpec {
        slot: 0,
        name: "id".into(),
        source: CaptureSource::Json(serde_json_path::JsonPath::parse("$.id").unwrap()),
    }];
    let head = spec(addr, Method::HEAD, "/");
    for _ in 0..3 {
        assert_eq!(h.run(get.clone()).await, StepOutcome::Continue);
        assert_eq!(h.vu.vars.captures[0], Some(json!(42)));
        assert_eq!(h.run(head.clone()).await, StepOutcome::Continue);
    }
    let s = h.stats();
    assert_eq!((s.requests, s.failed), (6, 0));
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

/// A server whose order is `pending` for the first `pending` requests, then
/// `confirmed`.
async fn order_server(pending: usize) -> SocketAddr {
    let served = Arc::new(AtomicUsize::new(0));
    let (addr, _) = raw_server(move |mut tcp| {
        let served = served.clone();
        async move {
            while read_head(&mut tcp).await {
                let n = served.fetch_add(1, Ordering::SeqCst);
                let body = if n < pending {
                    r#"{"state":"pending"}"#
                } else {
                    r#"{"state":"confirmed"}"#
                };
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                if tcp.write_all(reply.as_bytes()).await.is_err() {
                    return;
                }
            }
        }
    })
    .await;
    addr
}

fn poll_spec(addr: SocketAddr, timeout: Duration) -> HttpStepSpec {
    let mut step = spec(addr, Method::GET, "/orders/1");
    step.poll = Some(PollSpec {
        until: Until::Json {
            path: serde_json_path::JsonPath::parse("$.state").unwrap(),
            equals: Some(json!("confirmed")),
        },
        interval: Duration::from_millis(20),
        timeout,
        outcome_group: 1,
    });
    step
}

#[tokio::test]
async fn polling_repeats_until_the_condition_holds_and_times_it() {
    let addr = order_server(3).await;
    let mut h = Harness::new(HttpSettings::default());
    assert_eq!(
        h.run(poll_spec(addr, Duration::from_secs(5))).await,
        StepOutcome::Continue
    );
    let st = h.hub.collect();
    assert_eq!((st.groups[0].requests, st.groups[0].failed), (4, 0));
    let outcome = &st.groups[1];
    assert_eq!((outcome.requests, outcome.failed), (1, 0));
    // Three pauses of 20 ms came before the condition held.
    assert!(outcome.latency.max() >= 60_000, "{}", outcome.latency.max());
    assert_eq!(st.all_requests(&h.plan.groups).requests, 4);
}

#[tokio::test]
async fn polling_gives_up_at_its_timeout() {
    let addr = order_server(usize::MAX).await;
    let mut h = Harness::new(HttpSettings::default());
    assert_eq!(
        h.run(poll_spec(addr, Duration::from_millis(100))).await,
        StepOutcome::AbortIteration
    );
    let st = h.hub.collect();
    assert!(
        (3..=6).contains(&st.groups[0].requests),
        "{}",
        st.groups[0].requests
    );
    let outcome = &st.groups[1];
    assert_eq!((outcome.requests, outcome.failed), (1, 1));
    assert_eq!(error_count(outcome, ErrorKind::Timeout), 1);
}

// Hostile and failing targets (docs/reliability.md lists each with what loadline
// reports for it).

#[tokio::test]
async fn huge_bodies_are_streamed_not_kept() {
    // 256 MiB announced and sent; only `max_body` bytes may stay in memory.
    const SIZE: u64 = 256 * 1024 * 1024;
    let (addr, _) = raw_server(|mut tcp| async move {
        if read_head(&mut tcp).await {
            let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {SIZE}\r\n\r\n");
            if tcp.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let chunk = vec![b'x'; 1 << 20];
            for _ in 0..SIZE >> 20 {
                if tcp.write_all(&chunk).await.is_err() {
                    return;
                }
            }
        }
    })
    .await;
    let mut h = Harness::new(HttpSettings {
        max_body: 1024,
        ..HttpSettings::default()
    });
    let mut step = spec(addr, Method::GET, "/");
    step.checks = CheckSpec::numbered(vec![Check::BodyContains("xxxx".into())]);
    step.timeout = Duration::from_secs(60);
    assert_eq!(h.run(step).await, StepOutcome::Continue);
    let s = h.stats();
    assert_eq!((s.requests, s.failed, s.checks_passed), (1, 0, 1));
    assert!(s.bytes_received > SIZE, "{}", s.bytes_received);
}

#[tokio::test]
async fn an_endless_body_ends_at_the_timeout() {
    let (addr, _) = raw_server(|mut tcp| async move {
        if read_head(&mut tcp).await {
            let _ = tcp
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 10737418240\r\n\r\n")
                .await;
            let chunk = vec![b'x'; 64 * 1024];
            while tcp.write_all(&chunk).await.is_ok() {}
        }
    })
    .await;
    let mut h = Harness::new(HttpSettings::default());
    let mut step = spec(addr, Method::GET, "/");
    step.timeout = Duration::from_millis(300);
    assert_eq!(h.run(step).await, StepOutcome::AbortIteration);
    let s = h.stats();
    assert_eq!(error_count(&s, ErrorKind::Timeout), 1);
    assert!(s.bytes_received > 1 << 20, "{}", s.bytes_received);
}

#[tokio::test]
async fn a_dribbling_response_times_out_on_time() {
    let (addr, _) = raw_server(|mut tcp| async move {
        if read_head(&mut tcp).await {
            for b in b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n".iter() {
                if tcp.write_all(&[*b]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    })
    .await;
    let mut h = Harness::new(HttpSettings::default());
    let mut step = spec(addr, Method::GET, "/");
    step.timeout = Duration::from_millis(400);
    assert_eq!(h.run(step).await, StepOutcome::AbortIteration);
    let s = h.stats();
    assert_eq!(error_count(&s, ErrorKind::Timeout), 1);
    // Fired at the timeout (with scheduling slack), not at the end of the dribble.
    let took = s.latency.max();
    assert!((400_000..1_500_000).contains(&took), "{took}us");
}

#[tokio::test]
async fn a_reset_while_sending_is_a_reset() {
    // The server reads the head of a large POST and resets the connection.
    let (addr, _) = raw_server(|mut tcp| async move {
        if read_head(&mut tcp).await {
            // A reset rather than a clean close; blocking on drop is moot here.
            #[allow(deprecated)]
            let _ = tcp.set_linger(Some(Duration::ZERO));
            drop(tcp);
        }
    })
    .await;
    let mut h = Harness::new(HttpSettings::default());
    let mut step = spec(addr, Method::POST, "/upload");
    step.body = BodySpec::Raw(Template::literal("y".repeat(8 << 20)));
    assert_eq!(h.run(step).await, StepOutcome::AbortIteration);
    let s = h.stats();
    assert_eq!((s.requests, s.failed), (1, 1));
    assert_eq!(error_count(&s, ErrorKind::Reset), 1, "{:?}", s.errors);
}

#[tokio::test]
async fn errors_everywhere_are_statuses_and_the_vu_goes_on() {
    let (addr, _) = raw_server(|mut tcp| async move {
        while read_head(&mut tcp).await {
            let reply = b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 4\r\n\r\noops";
            if tcp.write_all(reply).await.is_err() {
                return;
            }
        }
    })
    .await;
    let mut h = Harness::new(HttpSettings::default());
    for _ in 0..5 {
        assert_eq!(
            h.run(spec(addr, Method::GET, "/")).await,
            StepOutcome::Continue
        );
    }
    let s = h.stats();
    assert_eq!((s.requests, s.failed), (5, 5));
    assert_eq!(s.status, vec![(500, 5)]);
    assert_eq!(s.error_counts().count(), 0);
}

#[tokio::test]
async fn a_target_that_goes_down_and_comes_back() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Connections live in the serving task's JoinSet: aborting it drops them all.
    let serve = |listener: TcpListener| {
        tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((mut tcp, _)) = listener.accept().await {
                conns.spawn(async move {
                    while read_head(&mut tcp).await {
                        let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        if tcp.write_all(reply).await.is_err() {
                            return;
                        }
                    }
                });
            }
        })
    };
    let up = serve(listener);
    let mut h = Harness::new(HttpSettings::default());
    assert_eq!(
        h.run(spec(addr, Method::GET, "/")).await,
        StepOutcome::Continue
    );
    // Down: the listener and the kept-alive connection go away.
    up.abort();
    let _ = up.await;
    h.start_iteration();
    let mut down = 0;
    for _ in 0..3 {
        if h.run(spec(addr, Method::GET, "/")).await == StepOutcome::AbortIteration {
            down += 1;
        }
    }
    // Back on the same port.
    let again = serve(TcpListener::bind(addr).await.unwrap());
    assert_eq!(
        h.run(spec(addr, Method::GET, "/")).await,
        StepOutcome::Continue
    );
    again.abort();
    let s = h.stats();
    assert!(down >= 2, "{down}");
    assert_eq!(s.requests, 5);
    assert_eq!(s.status, vec![(200, 5 - down)]);
    assert!(
        error_count(&s, ErrorKind::Connect) + error_count(&s, ErrorKind::Reset) == down,
        "{:?}",
        s.errors
    );
}

#[tokio::test]
async fn http2_without_tls_uses_prior_knowledge_and_shares_connections() {
    let (addr, log) = h2c_server().await;
    let mut step = spec(addr, Method::POST, "/echo");
    step.version = HttpVersion::Http2;
    step.body = BodySpec::Raw(Template::literal("ping"));
    step.checks = CheckSpec::numbered(vec![Check::BodyContains("ping".into())]);
    let mut h = Harness::new(HttpSettings {
        max_streams: 4,
        ..HttpSettings::default()
    });
    for _ in 0..5 {
        assert_eq!(h.run(step.clone()).await, StepOutcome::Continue);
    }
    let s = h.stats();
    assert_eq!((s.requests, s.failed, s.checks_passed), (5, 0, 5));
    let seen = log.seen();
    assert_eq!(seen.len(), 5);
    assert!(seen.iter().all(|r| r.version == http::Version::HTTP_2));
    assert!(seen.iter().all(|r| r.body == "ping"));
    assert_eq!(log.connections(), 1);
}

#[tokio::test]
async fn http2_over_tls_by_alpn_and_auto_falls_back_to_http1() {
    let https = |addr: SocketAddr, version| {
        let mut step = spec(addr, Method::GET, "/hello");
        step.url = UrlSpec::Relative {
            base: url::Url::parse(&format!("https://{addr}")).unwrap(),
            path: Template::literal("/hello"),
        };
        step.version = version;
        step.checks = CheckSpec::numbered(vec![Check::BodyContains("hello".into())]);
        step
    };
    let insecure = || HttpSettings {
        insecure: true,
        ..HttpSettings::default()
    };
    // A server offering h2: `2` and `auto` both get it.
    let (addr, log, alpn) = tls_server_offering(&[b"h2", b"http/1.1"]).await;
    for version in [HttpVersion::Http2, HttpVersion::Auto] {
        let mut h = Harness::new(insecure());
        for _ in 0..2 {
            assert_eq!(h.run(https(addr, version)).await, StepOutcome::Continue);
        }
        assert_eq!(h.stats().checks_passed, 2);
    }
    assert!(log
        .seen()
        .iter()
        .all(|r| r.version == http::Version::HTTP_2));
    assert_eq!(log.seen().len(), 4);
    assert_eq!(alpn.lock().unwrap().clone(), vec![Some(b"h2".to_vec()); 2]);

    // A server with HTTP/1.1 only: `auto` falls back; `2` fails the handshake
    // (the server refuses a client that offers only h2).
    let (addr, log, _) = tls_server().await;
    let mut h = Harness::new(insecure());
    for _ in 0..2 {
        assert_eq!(
            h.run(https(addr, HttpVersion::Auto)).await,
            StepOutcome::Continue
        );
    }
    assert_eq!(h.stats().checks_passed, 2);
    assert!(log
        .seen()
        .iter()
        .all(|r| r.version == http::Version::HTTP_11));
    assert_eq!(log.connections(), 1, "the negotiated connection is reused");
    let mut h = Harness::new(insecure());
    assert_eq!(
        h.run(https(addr, HttpVersion::Http2)).await,
        StepOutcome::AbortIteration
    );
    assert_eq!(error_count(&h.stats(), ErrorKind::Tls), 1);
}

#[tokio::test]
async fn responses_are_classified_by_their_cache_headers_over_both_versions() {
    for http2 in [false, true] {
        let (addr, _log) = if http2 {
            h2c_server().await
        } else {
            server().await
        };
        let mut h = Harness::new(HttpSettings::default());
        let version = if http2 {
            HttpVersion::Http2
        } else {
            HttpVersion::Http1
        };
        for path in [
            "/cache/hit",
            "/cache/hit",
            "/cache/chain",
            "/cache/x-cache",
            "/cache/age",
            "/hello",
        ] {
            let mut step = spec(addr, Method::GET, path);
            step.version = version;
            assert_eq!(h.run(step).await, StepOutcome::Continue);
        }
        let c = h.stats().cache;
        // hit, hit, miss (the nearest cache of the chain), miss, hit (age),
        // unknown (no cache header).
        assert_eq!(c.counts, [3, 2, 0, 0, 1], "HTTP/2: {http2}");
        let split = c.split.as_ref().expect("hits and misses were timed");
        assert_eq!((split.hit.len(), split.miss.len()), (3, 2));
        let layers: Vec<(&str, [u64; 5])> =
            split.layers.iter().map(|l| (&*l.name, l.counts)).collect();
        assert_eq!(
            layers,
            vec![("origin-cache", [1, 0, 0, 0, 0]), ("edge", [0, 1, 0, 0, 0])]
        );
    }
}

#[tokio::test]
async fn a_scenario_rule_classifies_before_the_standard_headers() {
    let (addr, _log) = server().await;
    let rule = crate::http::cache::CacheRule {
        header: "x-edge-result".into(),
        patterns: vec![(
            loadline_core::cache::CacheOutcome::Miss,
            regex::Regex::new("(?i)^origin").unwrap(),
        )],
    };
    let settings = HttpSettings {
        cache_rule: Some(Arc::new(rule)),
        ..HttpSettings::default()
    };
    let mut h = Harness::new(settings);
    h.run(spec(addr, Method::GET, "/cache/custom")).await;
    // Without the rule, `Age: 42` would make it a hit.
    h.run(spec(addr, Method::GET, "/cache/age")).await;
    assert_eq!(h.stats().cache.counts, [1, 1, 0, 0, 0]);
}
