//! Cache effectiveness end to end, against the Redis on this machine: the
//! cache-aside scenario of tests/load/cache.yaml (loadline's command counts equal
//! Redis' own, and a flush mid-run shows as a dip in the hit ratio), and
//! demo-shop in Redis mode (the hit ratio loadline reads from the shop's
//! `Cache-Status` answers agrees with the one the Redis monitor reads from the
//! server). Both hold the `REDIS` lock: Redis' counters are server-wide.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::*;

const REDIS_URL: &str = "redis://127.0.0.1:6379/0";

/// Whether Redis is there: when not, the test is skipped with a printed
/// reason, or fails under `LOADLINE_REQUIRE_SERVICES=1`.
fn redis_up(test: &str) -> bool {
    if reachable(6379) {
        return true;
    }
    let reason = "Redis not reachable on 127.0.0.1:6379";
    if std::env::var("LOADLINE_REQUIRE_SERVICES").as_deref() == Ok("1") {
        panic!("LOADLINE_REQUIRE_SERVICES=1 but {reason}");
    }
    eprintln!("skipped {test}: {reason}");
    false
}

fn redis() -> redis::Connection {
    redis::Client::open(REDIS_URL)
        .and_then(|c| c.get_connection())
        .unwrap()
}

/// Deletes every key matching `pattern`.
fn delete_keys(con: &mut redis::Connection, pattern: &str) -> i64 {
    redis::cmd("EVAL")
        .arg("local n = 0 for _, k in ipairs(redis.call('KEYS', ARGV[1])) do n = n + redis.call('DEL', k) end return n")
        .arg(0)
        .arg(pattern)
        .query(con)
        .unwrap()
}

/// `cmdstat_NAME:calls=N,…` of `INFO commandstats`.
fn calls(info: &str, command: &str) -> u64 {
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("cmdstat_{command}:calls=")))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn points(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn cache_yaml_counts_what_redis_counts_and_a_flush_shows_as_a_dip() {
    if !redis_up("cache_yaml_counts_what_redis_counts_and_a_flush_shows_as_a_dip") {
        return;
    }
    let _redis = REDIS.lock().unwrap_or_else(|p| p.into_inner());
    let shop = ShopProcess::start(&[]);
    let mut con = redis();
    delete_keys(&mut con, "ll_cache:*");
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query(&mut con)
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("summary.json");
    let series = dir.path().join("series.jsonl");
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/load/cache.yaml");
    let started = Instant::now();
    let child = loadline()
        .arg("run")
        .arg(&file)
        .args([
            "--target",
            &shop.url,
            "--scale-to",
            "8s",
            "--quiet",
            "--no-monitor",
        ])
        .arg(format!("--summary-json={}", summary.display()))
        .arg(format!("--out=jsonl={}", series.display()))
        .spawn()
        .unwrap();
    // Flush the cache in the warm phase (it starts at 2.7s of the scaled 8s).
    std::thread::sleep(Duration::from_millis(5_500).saturating_sub(started.elapsed()));
    let flushed = delete_keys(&mut con, "ll_cache:product:*");
    let out = child.wait_with_output().unwrap();
    assert!(
        matches!(out.status.code(), Some(0) | Some(3)),
        "{}",
        text(&out)
    );
    assert!(flushed > 5, "the flush found {flushed} cached products");

    // Redis counted exactly the commands loadline counted.
    let s = read_json(&summary).unwrap();
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut con)
        .unwrap();
    let ok = |name: &str| {
        let g = step(&s, name);
        g["requests"].as_u64().unwrap() - g["failed"].as_u64().unwrap()
    };
    assert_eq!(calls(&info, "get"), ok("product (cache) (get)"), "{info}");
    assert_eq!(calls(&info, "set"), ok("product (cache) (set)"), "{info}");
    assert_eq!(calls(&info, "incr"), ok("count a view"), "{info}");
    let lookup = &step(&s, "product (cache)")["cache"];
    let (hit, miss) = (
        lookup["hit"].as_u64().unwrap(),
        lookup["miss"].as_u64().unwrap(),
    );
    assert_eq!(hit + miss, calls(&info, "get"), "{lookup:#}");
    assert_eq!(
        miss,
        calls(&info, "set"),
        "every miss was stored: {lookup:#}"
    );
    assert!(
        lookup["speedup"].as_f64().unwrap() > 1.0,
        "a miss waits for the origin: {lookup:#}"
    );

    // The flush: the hit ratio of some second after the cache had warmed up
    // falls well below the best second before it, with at least twice the
    // misses of the quietest one (at 50 lookups a second a warm second's
    // ratio varies by about 0.05, its misses by about 3).
    let ticks: Vec<(f64, u64)> = points(&series)
        .iter()
        .filter_map(|p| {
            let c = &p["groups"]["product (cache)"]["cache"];
            Some((c["hit_ratio"].as_f64()?, c["miss"].as_u64()?))
        })
        .collect();
    let dip = (2..ticks.len()).find(|&i| {
        let (best, misses) = ticks[1..i]
            .iter()
            .fold((0.0f64, u64::MAX), |(r, m), t| (r.max(t.0), m.min(t.1)));
        ticks[i].0 <= best - 0.15 && ticks[i].1 >= 2 * misses
    });
    assert!(dip.is_some(), "no dip in {ticks:?}");
    eprintln!(
        "cache.yaml: GET {}, SET {}, INCR {} on both sides; {hit} hits, {miss} misses; flush of {flushed} keys; (hit ratio, misses) per second: {ticks:?}",
        calls(&info, "get"),
        calls(&info, "set"),
        calls(&info, "incr")
    );
    assert_eq!(shop.stop(), Some(0));
}

#[test]
fn the_redis_monitor_and_the_shops_cache_status_agree() {
    if !redis_up("the_redis_monitor_and_the_shops_cache_status_agree") {
        return;
    }
    let _redis = REDIS.lock().unwrap_or_else(|p| p.into_inner());
    let shop = ShopProcess::start(&["--redis-url", REDIS_URL]);
    // Quiet seconds at either end keep the monitor's first and last samples
    // off the load's edges.
    let sc = Scenario::new(&format!(
        r#"
target: {url}
data:
  products: {{ file: products.csv, order: random }}
monitor: {{ redis: "{REDIS_URL}", host: false, self_monitor: false, target_process: false }}
phases:
  - {{ name: quiet, vus: 1, duration: 2s }}
  - {{ name: load, arrival_rate: 40, duration: 6s }}
  - {{ name: tail, vus: 1, duration: 2s }}
flows:
  - steps:
      - think: 500ms
      - get: "/products/{{{{ products.id }}}}"
        name: product detail
        check: {{ status: 200 }}
"#,
        url = shop.url
    ));
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/load/products.csv"),
        sc.dir.path().join("products.csv"),
    )
    .unwrap();
    let report = sc.dir.path().join("report.html");
    let (out, s) = run_scenario(&sc, &["--report", &report.display().to_string()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = s.unwrap();
    let seen = &step(&s, "product detail")["cache"];
    let ours = seen["hit_ratio"].as_f64().unwrap();
    // The server's lookups over the run, as the monitor counted them from its
    // first sample (before the load) to its last (in the quiet tail).
    let monitors = s["monitors"].as_object().unwrap();
    let total = |name: &str| {
        monitors
            .iter()
            .find(|(k, _)| k.starts_with(&format!("{name}{{")))
            .and_then(|(_, m)| m["last"].as_f64())
            .unwrap_or_else(|| panic!("no {name} in {monitors:?}"))
    };
    let (hits, misses) = (total("redis.keyspace_hits"), total("redis.keyspace_misses"));
    assert!(
        hits + misses > 100.0,
        "the monitor saw {hits} hits, {misses} misses"
    );
    let theirs = hits / (hits + misses);
    assert!(
        (ours - theirs).abs() <= 0.02,
        "loadline {ours:.4} ({seen}) against Redis {theirs:.4} ({hits} hits, {misses} misses)"
    );
    eprintln!("demo-shop on Redis: loadline {ours:.4} ({seen}), the Redis monitor {theirs:.4} ({hits} hits, {misses} misses)");
    // The report draws the hit ratio from cold to warm.
    let html = std::fs::read_to_string(&report).unwrap();
    let curve = &html[html.find(">Cache hit ratio").expect("the hit-ratio chart")..];
    assert!(curve.contains("<path"));
    assert!(html.contains("redis.hit_ratio"));
    assert_eq!(shop.stop(), Some(0));
}
