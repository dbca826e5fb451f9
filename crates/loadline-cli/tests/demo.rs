//! `loadline demo`: the embedded shop and the bundled strategy, end to end; the
//! same demo on PostgreSQL, Redis and NATS; and `demo --serve`.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::*;

/// Every metric group of tests/load/shop.yaml.
const GROUPS: [&str; 8] = [
    "list products",
    "product detail",
    "search",
    "login",
    "add to cart",
    "place order",
    "order confirmed",
    "order confirmed (requests)",
];

/// Runs `loadline demo` with `extra` flags; returns the output and the summary.
fn demo(extra: &[&str]) -> (std::process::Output, Value) {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("demo.json");
    let output = loadline()
        .arg("demo")
        .arg("--summary-json")
        .arg(&out_path)
        .args(extra)
        .output()
        .unwrap();
    let summary = read_json(&out_path).unwrap_or_else(|| panic!("no summary: {}", text(&output)));
    (output, summary)
}

/// What every passing demo shows: requests on every endpoint group, the order
/// confirmation latency, the thresholds, and counts that match the shop's own.
fn check_demo(output: &std::process::Output, s: &Value) {
    assert_eq!(output.status.code(), Some(0), "{}", text(output));
    assert_eq!(s["status"], "passed");
    for name in GROUPS {
        let g = step(s, name);
        assert!(g["requests"].as_u64().unwrap() > 0, "{name}: {g:#}");
        assert_eq!(g["failed"], 0, "{name}: {g:#}");
    }
    // One outcome per order, each the time until the order read `confirmed`:
    // at least the shop's confirmation delay, and polled at least once more.
    let confirmed = step(s, "order confirmed");
    let polls = step(s, "order confirmed (requests)");
    assert!(
        confirmed["latency_ms"]["min"].as_f64().unwrap() >= 40.0,
        "{confirmed:#}"
    );
    assert!(polls["requests"].as_u64() > confirmed["requests"].as_u64());
    let shop = &s["demo_shop"];
    assert_eq!(shop["orders_placed"], step(s, "place order")["requests"]);
    assert_eq!(shop["orders_confirmed"], confirmed["requests"]);
    // loadline counted exactly what the shop served (outcomes are not requests).
    let served: u64 = shop["requests"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(s["requests"]["total"].as_u64(), Some(served), "{shop:#}");
    let cache = &shop["cache"];
    assert_eq!(
        cache["hits"].as_u64().unwrap() + cache["misses"].as_u64().unwrap(),
        step(s, "product detail")["requests"].as_u64().unwrap()
    );
    // loadline's classification of the shop's Cache-Status answers counts
    // exactly what the shop's own counters saw.
    let seen = &step(s, "product detail")["cache"];
    assert_eq!(seen["hit"], cache["hits"], "{seen:#}");
    assert_eq!(seen["miss"], cache["misses"], "{seen:#}");
    assert_eq!(s["cache"]["hit"], cache["hits"]);
    assert!(
        seen["hit_p50_ms"].is_f64() && seen["miss_p50_ms"].is_f64(),
        "{seen:#}"
    );
    assert!(s["thresholds"].as_array().unwrap().len() >= 10);
    let stdout = String::from_utf8_lossy(&output.stdout);
    for words in [
        "PASS latency{step:order confirmed}",
        "cache hit ratio",
        "the same as loadline counted",
        "order confirmed (requests)",
    ] {
        assert!(stdout.contains(words), "{words}: {stdout}");
    }
}

#[test]
fn the_demo_runs_the_strategy_end_to_end() {
    let started = Instant::now();
    let (output, s) = demo(&["--duration", "10s", "--quiet"]);
    check_demo(&output, &s);
    // The `normal` profile, scaled from 25s to 10s.
    let phases: Vec<&str> = s["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(phases, ["warm up", "steady"]);
    // Scaled 5s + 20s → 2s + 8s at 2→10/s and 10/s: 12 + 80 arrivals.
    assert_eq!(s["iterations"]["total"], 92, "{:#}", s["phases"]);
    // The cache warms up: more of the product details hit it in the steady
    // phase than in the warm-up, and the hit ratio ends high.
    let by_phase = s["phases"].as_array().unwrap();
    let ratio = |v: &Value| v["cache"]["hit_ratio"].as_f64().unwrap_or(0.0);
    assert!(ratio(&by_phase[1]) > ratio(&by_phase[0]), "{by_phase:#?}");
    assert!(ratio(&by_phase[1]) >= 0.5, "{by_phase:#?}");
    assert!(started.elapsed() < Duration::from_secs(40));
}

#[test]
fn the_demo_passes_on_postgresql_redis_and_nats() {
    let _redis = REDIS.lock().unwrap_or_else(|p| p.into_inner());
    let services = [("PostgreSQL", 5432), ("Redis", 6379), ("NATS", 4222)];
    let missing: Vec<&str> = services
        .iter()
        .filter(|(_, port)| !reachable(*port))
        .map(|(name, _)| *name)
        .collect();
    if !missing.is_empty() {
        let reason = format!("not reachable on 127.0.0.1: {}", missing.join(", "));
        if std::env::var("LOADLINE_REQUIRE_SERVICES").as_deref() == Ok("1") {
            panic!("LOADLINE_REQUIRE_SERVICES=1 but {reason}");
        }
        eprintln!("skipped the_demo_passes_on_postgresql_redis_and_nats: {reason}");
        return;
    }
    let (output, s) = demo(&[
        "--database-url",
        "postgres://postgres@127.0.0.1:5432/test",
        "--redis-url",
        "redis://127.0.0.1:6379",
        "--nats-url",
        "nats://127.0.0.1:4222",
        "--duration",
        "8s",
        "--quiet",
    ]);
    check_demo(&output, &s);
    let backends = &s["demo_shop"]["backends"];
    assert_eq!(backends["database"], "PostgreSQL");
    assert_eq!(backends["cache"], "Redis");
    assert_eq!(backends["queue"], "NATS");
}

#[test]
fn demo_serve_starts_only_the_shop_until_interrupted() {
    let shop = ShopProcess::start(&["--error-rate", "1"]);
    assert!(shop.banner.contains("error rate 1"), "{}", shop.banner);
    let (status, body) = http_get(&format!("{}/health", shop.url));
    assert_eq!((status, body.contains("ok")), (200, true));
    // The knob applies to the API routes.
    assert_eq!(http_get(&format!("{}/products/1", shop.url)).0, 500);
    assert_eq!(shop.stop(), Some(0));
}

#[test]
fn demo_flags_are_checked_before_anything_starts() {
    let out = loadline()
        .args(["demo", "--profile", "nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unknown profile `nope` (--profile): expected one of `normal`, `peak`, `stress`, `spike`, `soak`, or `capacity`"),
        "{stderr}"
    );
    let out = loadline()
        .args(["demo", "--error-rate", "2"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("error_rate"));
}
