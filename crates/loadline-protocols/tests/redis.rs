//! Redis steps against the real Redis on this machine (127.0.0.1:6379),
//! scenarios built by the native format and run by the engine. A test whose
//! server is not reachable says so and passes, unless
//! `LOADLINE_REQUIRE_SERVICES=1`, when it fails. Every test works on keys of
//! its own (a prefix with the process id and a random part) in database 0, and
//! deletes them; none flushes a database. Every run is bounded: a few hundred
//! commands, a few seconds.

#![cfg(feature = "redis")]
// Test set-up failures are bugs in the test; unwrapping keeps them short.
#![allow(clippy::unwrap_used)]

mod common;
use common::{group, plan, run_with};

use std::sync::{Arc, Mutex};
use std::time::Duration;

use loadline_core::plan::Plan;
use loadline_core::runner::{self, Observer, RunOptions, Tick};
use redis::AsyncCommands;

const ADDR: &str = "127.0.0.1:6379";

async fn reachable() -> bool {
    common::reachable("Redis", ADDR).await
}

/// A key prefix of this test run.
fn prefix(test: &str) -> String {
    common::unique(test, ':')
}

async fn client() -> redis::aio::MultiplexedConnection {
    redis::Client::open(format!("redis://{ADDR}/0"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Deletes every key of `prefix`.
async fn cleanup(prefix: &str) {
    let mut c = client().await;
    let keys: Vec<String> = c.keys(format!("{prefix}*")).await.unwrap();
    if !keys.is_empty() {
        let _: () = c.del(keys).await.unwrap();
    }
}

fn class(plan: &Plan, name: &str) -> loadline_core::metrics::ErrorClass {
    let i = plan.error_classes.iter().position(|c| c == name).unwrap();
    loadline_core::metrics::ErrorClass::from_index(i as u16)
}

const COMMANDS: &str = r#"
redis:
  cache: { url: "redis://127.0.0.1:6379/0" }
phases: [{ iterations: 3, vus: 1 }]
flows:
  - steps:
      - redis: { set: "PREFIX:p", value: { name: "lamp", price: 12 }, ttl: 60s, name: set }
      - redis:
          get: "PREFIX:p"
          name: get
          capture: { price: { json: "$.price" }, whole: reply }
          check: { reply: { path: "$.name", equals: lamp } }
      - redis:
          mget: ["PREFIX:p", "PREFIX:none"]
          name: mget
          capture: { missing: { index: 1 } }
          check: { reply: { path: "$[1]", equals: "null" } }
      - redis: { hset: "PREFIX:h", fields: { a: "1", price: "{{ price }}" }, name: hset }
      - redis: { hget: "PREFIX:h", field: price, name: hget, check: { reply: { equals: 12 } } }
      - redis: { incr: "PREFIX:n", name: incr }
      - redis: { incr: "PREFIX:n", by: 10, name: incrby }
      - redis: { expire: "PREFIX:n", ttl: 60s, name: expire, check: { reply: { equals: 1 } } }
      - redis: { command: [ZADD, "PREFIX:z", 2, "{{ price }}"], name: zadd }
      - redis:
          name: pipeline
          pipeline:
            - get: "PREFIX:p"
            - set: "PREFIX:q"
              value: "q-{{ price }}"
            - incr: "PREFIX:n"
            - command: [ZSCORE, "PREFIX:z", "12"]
          capture: { counter: { index: 2 } }
          check: { reply: { path: "$[3]", equals: "2" } }
      - redis: { del: ["PREFIX:q", "PREFIX:nothing"], name: del, check: { reply: { equals: 1 } } }
      - redis: { get: "PREFIX:never-set", name: nil, check: { reply: { equals: "null" } } }
"#;

#[tokio::test]
async fn every_command_form_runs_with_captures_and_checks() {
    if !reachable().await {
        return;
    }
    let prefix = prefix("commands");
    let plan = plan(COMMANDS, &prefix);
    let stats = run_with(&plan, RunOptions::default(), Box::new(runner::NoObserver)).await;
    for name in [
        "set", "get", "mget", "hset", "hget", "incr", "incrby", "expire", "zadd", "pipeline",
        "del", "nil",
    ] {
        let g = group(&plan, &stats, name);
        assert_eq!((g.requests, g.failed), (3, 0), "{name}: {g:?}");
        assert_eq!(
            g.cache.counts, [0; 5],
            "{name}: plain commands do not classify"
        );
    }
    let all = stats.all_groups();
    assert_eq!(
        all.checks_failed,
        0,
        "{:?}",
        stats.all_groups().check_failures
    );
    assert_eq!(all.checks_passed, 3 * 7);
    // What Redis holds afterwards, read without loadline.
    let mut c = client().await;
    let p: String = c.get(format!("{prefix}:p")).await.unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&p).unwrap(),
        serde_json::json!({"name": "lamp", "price": 12})
    );
    let ttl: i64 = c.ttl(format!("{prefix}:p")).await.unwrap();
    assert!((1..=60).contains(&ttl), "{ttl}");
    let price: String = c.hget(format!("{prefix}:h"), "price").await.unwrap();
    assert_eq!(price, "12");
    // Each iteration: INCR, INCRBY 10, and the pipeline's INCR.
    let n: i64 = c.get(format!("{prefix}:n")).await.unwrap();
    assert_eq!(n, 3 * 12);
    let q: Option<String> = c.get(format!("{prefix}:q")).await.unwrap();
    assert_eq!(q, None, "DEL removed it");
    cleanup(&prefix).await;
}

#[tokio::test]
async fn error_classes_each_come_from_their_reply() {
    if !reachable().await {
        return;
    }
    let prefix = prefix("classes");
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // One flow, each failing command in a loop of its own so that each runs
    // once per iteration (a failed step ends its iteration: one per flow).
    let flows: Vec<String> = [
        ("wrongtype", "redis: { get: \"PREFIX:h\", name: wrongtype, server: cache }"),
        ("unknown", "redis: { command: [NOSUCHCOMMAND], name: unknown, server: cache }"),
        (
            "pipeline",
            "redis: { name: pipeline, server: cache, pipeline: [{ get: \"PREFIX:x\" }, { incr: \"PREFIX:h\" }] }",
        ),
        ("refused", "redis: { get: \"PREFIX:x\", name: refused, server: gone }"),
    ]
    .iter()
    .map(|(name, step)| {
        format!("  - name: {name}\n    weight: 1\n    steps:\n      - redis: {{ hset: \"PREFIX:h\", field: a, value: \"1\", server: cache }}\n      - {step}\n")
    })
    .collect();
    let text = format!(
        "redis:\n  cache: {{ url: \"redis://127.0.0.1:6379/0\" }}\n  gone: {{ url: \"redis://127.0.0.1:{closed}/0\" }}\nphases: [{{ iterations: 40, vus: 1 }}]\nflows:\n{}",
        flows.concat()
    );
    let plan = plan(&text, &prefix);
    let stats = runner::run(
        plan.clone(),
        RunOptions {
            seed: Some(3),
            ..RunOptions::default()
        },
        Box::new(runner::NoObserver),
    )
    .await
    .total;
    let mut ran = 0;
    for (name, class_name) in [
        ("wrongtype", "wrongtype"),
        ("unknown", "redis"),
        ("pipeline", "wrongtype"),
        ("refused", "connect"),
    ] {
        let g = group(&plan, &stats, name);
        assert_eq!(g.failed, g.requests, "{name}: {g:?}");
        assert_eq!(g.errors_of(class(&plan, class_name)), g.requests, "{name}");
        ran += u64::from(g.requests > 0);
    }
    // 40 iterations over 4 equal flows: each ran (seed fixed).
    assert_eq!(ran, 4);
    cleanup(&prefix).await;
}

const CACHE_ASIDE: &str = r#"
redis:
  cache: { url: "redis://127.0.0.1:6379/0", connection: shared }
phases: [{ iterations: 2, vus: 1 }]
flows:
  - steps:
      - loop: 3
        steps:
          - cache_aside:
              name: lookup
              key: "PREFIX:product:{{ $iteration }}"
              ttl: 60s
              on_miss:
                - redis: { incr: "PREFIX:origin", name: origin, capture: { fetched: reply } }
              value: '{"fetched": {{ fetched }}}'
              capture: cached
          - redis: { set: "PREFIX:seen", value: "{{ cached.fetched }}", name: seen }
"#;

#[tokio::test]
async fn cache_aside_misses_and_sets_first_then_hits() {
    if !reachable().await {
        return;
    }
    let prefix = prefix("aside");
    let plan = plan(CACHE_ASIDE, &prefix);
    let stats = run_with(&plan, RunOptions::default(), Box::new(runner::NoObserver)).await;
    // Iteration 0: a miss (the origin runs, the value is SET), then two hits;
    // iteration 1: a new key, the same again.
    let lookup = group(&plan, &stats, "lookup");
    assert_eq!(lookup.requests, 6);
    assert_eq!((lookup.cache.hit(), lookup.cache.miss()), (4, 2));
    assert_eq!(lookup.failed, 0);
    assert_eq!(group(&plan, &stats, "lookup (set)").requests, 2);
    assert_eq!(group(&plan, &stats, "origin").requests, 2);
    assert_eq!(group(&plan, &stats, "seen").failed, 0);
    // The lookup is the caller's wait; its GETs are commands of their own,
    // with no outcome of their own.
    let get = group(&plan, &stats, "lookup (get)");
    assert_eq!((get.requests, get.cache.lookups()), (6, 0));
    // A miss waits for the GET, the origin and the SET: longer than a GET.
    let (_, miss_p50) = lookup.cache.p50_ms();
    let get_p50 = get.latency.value_at_quantile(0.5) as f64 / 1000.0;
    assert!(
        miss_p50.is_some_and(|m| m > get_p50),
        "{miss_p50:?} {get_p50}"
    );
    let mut c = client().await;
    // The value of the last iteration's miss, captured from the cache on a hit.
    let seen: String = c.get(format!("{prefix}:seen")).await.unwrap();
    assert_eq!(seen, "2");
    let cached: String = c.get(format!("{prefix}:product:1")).await.unwrap();
    assert_eq!(cached, r#"{"fetched": 2}"#);
    cleanup(&prefix).await;
}

#[tokio::test]
async fn cache_aside_misses_again_once_the_ttl_expired() {
    if !reachable().await {
        return;
    }
    let prefix = prefix("ttl");
    let text = r#"
redis:
  cache: { url: "redis://127.0.0.1:6379/0" }
phases: [{ iterations: 1, vus: 1 }]
flows:
  - steps:
      - cache_aside: &lookup
          name: lookup
          key: "PREFIX:k"
          ttl: 300ms
          on_miss: [{ redis: { incr: "PREFIX:origin", name: origin } }]
          value: fresh
      - cache_aside: *lookup
      - think: 700ms
      - cache_aside: *lookup
"#;
    let plan = plan(text, &prefix);
    let stats = run_with(&plan, RunOptions::default(), Box::new(runner::NoObserver)).await;
    let lookup = group(&plan, &stats, "lookup");
    assert_eq!((lookup.cache.hit(), lookup.cache.miss()), (1, 2));
    assert_eq!(group(&plan, &stats, "origin").requests, 2);
    cleanup(&prefix).await;
}

/// Hits and misses of group `lookup` in each tick.
struct Ticks {
    group: usize,
    seen: Arc<Mutex<Vec<(Duration, u64, u64)>>>,
}

impl Observer for Ticks {
    fn on_tick(&mut self, tick: &Tick<'_>) {
        if let Some(g) = tick.interval.groups.get(self.group) {
            self.seen
                .lock()
                .unwrap()
                .push((tick.elapsed, g.cache.hit(), g.cache.miss()));
        }
    }
}

#[tokio::test]
async fn deleting_the_keys_mid_run_shows_as_misses_in_that_tick_only() {
    if !reachable().await {
        return;
    }
    let prefix = prefix("flush");
    let text = r#"
redis:
  cache: { url: "redis://127.0.0.1:6379/0" }
phases: [{ duration: 3s, vus: 2 }]
flows:
  - steps:
      - cache_aside:
          name: lookup
          key: "PREFIX:k{{ $randint(1, 5) }}"
          ttl: 60s
          on_miss: [{ redis: { incr: "PREFIX:origin", name: origin } }]
          value: fresh
      - think: 5ms
"#;
    let plan = plan(text, &prefix);
    let group_index = plan.groups.iter().position(|g| g.name == "lookup").unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let observer = Ticks {
        group: group_index,
        seen: seen.clone(),
    };
    // The flush: every key of the run deleted once, 1.5 s in.
    let flusher = {
        let prefix = prefix.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let started = std::time::Instant::now();
            cleanup(&prefix).await;
            started
        })
    };
    let began = std::time::Instant::now();
    let opts = RunOptions {
        tick: Duration::from_millis(250),
        ..RunOptions::default()
    };
    let stats = run_with(&plan, opts, Box::new(observer)).await;
    let flushed_at = flusher.await.unwrap().duration_since(began);
    let ticks = seen.lock().unwrap().clone();
    let lookup = group(&plan, &stats, "lookup");
    assert!(lookup.requests > 50, "{lookup:?}");
    // Before the flush (after the first half-second's warm-up), all hits; at
    // most 5 keys can miss after it, then hits again.
    let before: Vec<_> = ticks
        .iter()
        .filter(|(at, _, _)| {
            *at > Duration::from_millis(600) && *at + Duration::from_millis(300) < flushed_at
        })
        .collect();
    assert!(!before.is_empty(), "{ticks:?}");
    assert!(
        before
            .iter()
            .all(|(_, hits, misses)| *hits > 0 && *misses == 0),
        "{ticks:?}"
    );
    let after_misses: u64 = ticks
        .iter()
        .filter(|(at, _, _)| *at > flushed_at)
        .map(|(_, _, m)| m)
        .sum();
    assert!(
        (1..=10).contains(&after_misses),
        "{ticks:?} flushed at {flushed_at:?}"
    );
    let last = ticks.iter().rev().find(|t| t.1 + t.2 > 0).unwrap();
    assert!(
        last.1 > 0 && last.2 == 0,
        "hits again at the end: {ticks:?}"
    );
    // Every miss ran the origin once and SET once.
    assert_eq!(group(&plan, &stats, "origin").requests, lookup.cache.miss());
    assert_eq!(
        group(&plan, &stats, "lookup (set)").requests,
        lookup.cache.miss()
    );
    cleanup(&prefix).await;
}

/// A cache that answers with an error (here the key holds a hash, so GET says
/// WRONGTYPE) is bypassed: the origin's steps run, nothing is SET, and the
/// lookup counts as a bypass, not as a miss.
#[tokio::test]
async fn a_failing_cache_is_bypassed_to_the_origin() {
    if !reachable().await {
        return;
    }
    let prefix = prefix("bypass");
    let mut c = client().await;
    let _: () = c.hset(format!("{prefix}:product"), "f", "v").await.unwrap();
    let text = r#"
redis:
  cache: { url: "redis://127.0.0.1:6379/0" }
phases: [{ iterations: 3, vus: 1 }]
flows:
  - steps:
      - cache_aside:
          name: lookup
          key: "PREFIX:product"
          on_miss: [{ redis: { incr: "PREFIX:origin", name: origin, capture: { n: reply } } }]
          value: "{{ n }}"
          capture: got
      - redis: { set: "PREFIX:got", value: "{{ got }}", name: after }
"#;
    let plan = plan(text, &prefix);
    let stats = run_with(&plan, RunOptions::default(), Box::new(runner::NoObserver)).await;
    let lookup = group(&plan, &stats, "lookup");
    assert_eq!(lookup.cache.counts, [0, 0, 0, 3, 0]);
    assert_eq!(lookup.failed, 0);
    let get = group(&plan, &stats, "lookup (get)");
    assert_eq!((get.requests, get.failed), (3, 3));
    assert_eq!(group(&plan, &stats, "origin").requests, 3);
    assert_eq!(group(&plan, &stats, "lookup (set)").requests, 0);
    // The flow went on with the origin's value.
    let got: String = c.get(format!("{prefix}:got")).await.unwrap();
    assert_eq!(got, "3");
    cleanup(&prefix).await;
}

/// A private Redis with TLS only, on a free loopback port, with a fresh
/// self-signed certificate for 127.0.0.1; stopped when dropped.
struct TlsRedis {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts it; `None` (printed, or a failure when `LOADLINE_REQUIRE_SERVICES=1`)
/// when this machine has no `redis-server` that speaks TLS.
async fn tls_redis() -> Option<TlsRedis> {
    let skip = |why: String| {
        if std::env::var("LOADLINE_REQUIRE_SERVICES").as_deref() == Ok("1") {
            panic!("{why} (LOADLINE_REQUIRE_SERVICES=1)");
        }
        println!("skipped: {why}");
        None
    };
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    std::fs::write(dir.path().join("cert.pem"), cert.cert.pem()).unwrap();
    std::fs::write(dir.path().join("key.pem"), cert.key_pair.serialize_pem()).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new("redis-server")
        .current_dir(dir.path())
        .args([
            "--port",
            "0",
            "--bind",
            "127.0.0.1",
            "--tls-port",
            &port.to_string(),
        ])
        .args(["--tls-cert-file", "cert.pem", "--tls-key-file", "key.pem"])
        .args([
            "--tls-auth-clients",
            "no",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    let child = match child {
        Ok(c) => c,
        Err(e) => return skip(format!("no redis-server to start with TLS: {e}")),
    };
    let server = TlsRedis {
        child,
        port,
        _dir: dir,
    };
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Some(server);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    skip(format!(
        "redis-server did not listen with TLS on port {port}"
    ))
}

/// `rediss://` verifies the server's certificate: a self-signed one is
/// refused before any load, and accepted with `#insecure` (a test server's).
#[tokio::test]
async fn rediss_verifies_the_certificate_unless_insecure() {
    let Some(server) = tls_redis().await else {
        return;
    };
    let text = |url: String| {
        format!(
            r#"
redis:
  cache: {{ url: "{url}" }}
phases: [{{ iterations: 10, vus: 2 }}]
flows:
  - steps:
      - redis: {{ set: "tls:{{{{ $vu }}}}", value: "v", name: set }}
      - redis: {{ get: "tls:{{{{ $vu }}}}", name: get, check: {{ reply: {{ equals: v }} }} }}
"#
        )
    };
    let verified = plan(&text(format!("rediss://127.0.0.1:{}", server.port)), "");
    let refused = verified.protocols[0].prepare(&verified).await;
    let why = refused
        .expect_err("a self-signed certificate is refused")
        .join("\n");
    assert!(why.contains("certificate"), "{why}");

    let insecure = plan(
        &text(format!("rediss://127.0.0.1:{}/#insecure", server.port)),
        "",
    );
    let stats = run_with(
        &insecure,
        RunOptions::default(),
        Box::new(runner::NoObserver),
    )
    .await;
    for name in ["set", "get"] {
        let g = group(&insecure, &stats, name);
        assert_eq!((g.requests, g.failed), (10, 0), "{name}: {g:?}");
    }
    assert_eq!(group(&insecure, &stats, "get").checks_passed, 10);
}
