//! `loadline demo`: starts demo-shop inside the process, runs the bundled strategy
//! (tests/load/shop.yaml, built into the binary with its data files) against it,
//! and reports like `run` — plus what the shop itself saw: its own cache counters
//! (beside the cache hit ratio loadline measured from the shop's `Cache-Status`
//! answers), and its orders placed and confirmed.
//!
//! `loadline demo --serve` only starts the shop, for trying other scenarios on it.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use demo_shop::{Capacity, Knobs, Shop, ShopConfig, ShopStats};
use loadline_config::{Overrides, CAPACITY_PROFILE};
use loadline_core::summary::Summary;
use serde::Serialize;
use serde_json::json;

use crate::args::DemoArgs;
use crate::{capacity, run, scenario, EXIT_INVALID, EXIT_RUNTIME};

/// The bundled strategy and its data files.
const SHOP_YAML: &str = include_str!("../../../tests/load/shop.yaml");
const USERS_CSV: &str = include_str!("../../../tests/load/users.csv");
const TERMS_CSV: &str = include_str!("../../../tests/load/search_terms.csv");
/// How the built-in scenario is named in messages and the summary.
const SOURCE: &str = "tests/load/shop.yaml (built in)";
/// The capacity limiter `--profile capacity` turns on unless told otherwise:
/// 8 permits x 20ms = 400 requests per second.
const SEARCH_LIMITER: Capacity = Capacity {
    permits: 8,
    service_time_ms: 20,
};

/// `loadline demo`.
pub fn demo(args: &DemoArgs) -> ExitCode {
    let config = match shop_config(args) {
        Ok(c) => c,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    if let Err(code) = run::check_output(&args.output) {
        return code;
    }
    let rt = match run::runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let code = rt.block_on(async {
        if args.serve {
            serve(config).await
        } else {
            strategy(config, args).await
        }
    });
    drop(rt);
    code
}

/// The shop's configuration from the flags.
fn shop_config(args: &DemoArgs) -> Result<ShopConfig, String> {
    let millis = |d: Option<Duration>| d.map_or(0, |d| d.as_millis() as u64);
    let searching = args.scenario.profile.as_deref() == Some(CAPACITY_PROFILE);
    let capacity = match args.capacity_permits {
        Some(permits) => Some(Capacity {
            permits,
            service_time_ms: args
                .capacity_service_time
                .map_or(50, |d| d.as_millis() as u64),
        }),
        None if searching && !args.no_capacity_limit && !args.serve => Some(SEARCH_LIMITER),
        None => None,
    };
    let knobs = Knobs {
        added_latency_ms: millis(args.added_latency),
        error_rate: args.error_rate.unwrap_or(0.0),
        slow_query_ms: millis(args.slow_query),
        capacity,
    };
    knobs.validate()?;
    let port = if args.serve {
        args.port.unwrap_or(0)
    } else {
        0
    };
    Ok(ShopConfig {
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        database_url: args.database_url.clone(),
        redis_url: args.redis_url.clone(),
        nats_url: args.nats_url.clone(),
        knobs,
        cache_ttl: args
            .cache_ttl
            .unwrap_or_else(|| ShopConfig::default().cache_ttl),
        ..ShopConfig::default()
    })
}

/// The shop's backends, for people.
fn backends(config: &ShopConfig) -> Backends {
    Backends {
        database: if config.database_url.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        },
        cache: if config.redis_url.is_some() {
            "Redis"
        } else {
            "in-process"
        },
        queue: if config.nats_url.is_some() {
            "NATS"
        } else {
            "in-process"
        },
    }
}

#[derive(Debug, Clone, Copy, Serialize)]
struct Backends {
    database: &'static str,
    cache: &'static str,
    queue: &'static str,
}

async fn start(config: ShopConfig) -> Result<Shop, ExitCode> {
    let b = backends(&config);
    let knobs = config.knobs.clone();
    println!(
        "starting demo-shop: database {}, cache {}, event queue {}",
        b.database, b.cache, b.queue
    );
    let began = Instant::now();
    match demo_shop::start(config).await {
        Ok(shop) => {
            println!(
                "demo-shop ready at {} after {}{}",
                shop.url(),
                loadline_core::duration::format_duration(began.elapsed()),
                knobs_text(&knobs)
            );
            Ok(shop)
        }
        Err(e) => {
            eprintln!("error: demo-shop did not start: {e}");
            Err(ExitCode::from(match e {
                demo_shop::ShopError::Config(_) => EXIT_INVALID,
                _ => EXIT_RUNTIME,
            }))
        }
    }
}

fn knobs_text(k: &Knobs) -> String {
    let mut parts = Vec::new();
    if k.added_latency_ms > 0 {
        parts.push(format!("added latency {}ms", k.added_latency_ms));
    }
    if k.error_rate > 0.0 {
        parts.push(format!("error rate {}", k.error_rate));
    }
    if k.slow_query_ms > 0 {
        parts.push(format!("slow queries +{}ms", k.slow_query_ms));
    }
    if let Some(c) = k.capacity {
        let rate = c
            .requests_per_second()
            .map(|r| format!(" = {r:.0} requests/s"))
            .unwrap_or_default();
        parts.push(format!(
            "capacity {} permits x {}ms{rate}",
            c.permits, c.service_time_ms
        ));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" (knobs: {})", parts.join(", "))
    }
}

/// `--serve`: the shop alone, until Ctrl-C or SIGTERM.
async fn serve(config: ShopConfig) -> ExitCode {
    let shop = match start(config).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    let url = shop.url();
    println!(
        "\n  try:   loadline run tests/load/shop.yaml --target {url}\n         loadline capacity tests/load/shop.yaml --target {url}\n  knobs: curl {url}/admin/knobs   (PUT a JSON document to change them)\n  stats: curl {url}/metrics\n\nserving until Ctrl-C"
    );
    wait_for_signal().await;
    println!("\nstopping demo-shop");
    shop.shutdown().await;
    ExitCode::SUCCESS
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// The bundled strategy against a fresh shop.
async fn strategy(config: ShopConfig, args: &DemoArgs) -> ExitCode {
    let backends = backends(&config);
    let dir = match data_dir() {
        Ok(dir) => dir,
        Err(e) => {
            eprintln!("error: cannot write the demo's data files: {e}");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    // Check the flags against the strategy before starting anything (nothing is
    // sent to this placeholder target).
    if let Err(code) = load(args, dir.path(), "http://127.0.0.1:9") {
        return code;
    }
    let shop = match start(config).await {
        Ok(s) => Arc::new(s),
        Err(code) => return code,
    };
    let code = run_strategy(&shop, backends, args, dir.path()).await;
    // The run's observer held the other reference; it is gone with the run.
    match Arc::try_unwrap(shop) {
        Ok(shop) => shop.shutdown().await,
        Err(_) => {
            tracing::warn!("demo-shop still in use at the end; dropped without a clean shutdown")
        }
    }
    code
}

/// Loads the bundled strategy as the flags ask, aimed at `target`.
fn load(args: &DemoArgs, data: &Path, target: &str) -> Result<loadline_config::Loaded, ExitCode> {
    let searching = args.scenario.profile.as_deref() == Some(CAPACITY_PROFILE);
    if searching && args.scenario.scale_to.is_some() {
        eprintln!("error: --scale-to does not apply to the capacity search: its length follows from --step-duration and the number of steps");
        return Err(ExitCode::from(EXIT_INVALID));
    }
    let overrides = Overrides {
        profile: args.scenario.profile.clone().filter(|_| !searching),
        scale_to: args.scenario.scale_to,
        target: Some(target.to_string()),
        phases_optional: searching,
        ..Overrides::default()
    };
    scenario::report(
        SOURCE,
        loadline_config::load_str_with(SOURCE, SHOP_YAML, data, &overrides),
    )
}

/// A temporary folder with the strategy's data files.
fn data_dir() -> std::io::Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("users.csv"), USERS_CSV)?;
    std::fs::write(dir.path().join("search_terms.csv"), TERMS_CSV)?;
    Ok(dir)
}

async fn run_strategy(
    shop: &Arc<Shop>,
    backends: Backends,
    args: &DemoArgs,
    data: &Path,
) -> ExitCode {
    let searching = args.scenario.profile.as_deref() == Some(CAPACITY_PROFILE);
    let loaded = match load(args, data, &shop.url()) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let before = shop.stats();
    if searching {
        let (plan, opts) = match capacity::prepare(loaded, &args.search) {
            Ok(p) => p,
            Err(code) => return code,
        };
        let limit = shop.knobs().capacity.and_then(|c| c.requests_per_second());
        if let Some(limit) = limit {
            println!(
                "\n  demo-shop's capacity limiter allows {limit:.0} requests/s: compare the requests/s of the capacity found{}",
                if args.capacity_permits.is_none() {
                    " (--no-capacity-limit searches the shop's own limits instead)"
                } else {
                    ""
                }
            );
        }
        let interrupt = loadline_run::watch_signals(plan.graceful_stop, Arc::new(run::Stderr));
        let report = capacity::execute(&plan, &opts, &args.output, &interrupt).await;
        let seen = ShopFigures::new(shop, backends, &before);
        let mut extra = seen.json();
        extra["demo_shop"]["limiter_requests_per_second"] = json!(limit);
        return capacity::finish(&plan, &opts, &report, &args.output, Some(extra));
    }
    let env = run::env_of("tests/load/shop.yaml (embedded)", &loaded);
    let plan = Arc::new(loaded.plan);
    let observer = run::progress(&plan, args.output.quiet);
    let interrupt = loadline_run::watch_signals(plan.graceful_stop, Arc::new(run::Stderr));
    let mut done = match run::execute(plan.clone(), &args.output, observer, &env, &interrupt).await
    {
        Ok(done) => done,
        Err(code) => return code,
    };
    let seen = ShopFigures::new(shop, backends, &before);
    let notes = seen.notes(&done.summary);
    done.summary.notes.extend(notes);
    run::finish(&done, &args.output, Some(seen.json()))
}

/// Cache hits and misses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
struct CacheCount {
    hits: u64,
    misses: u64,
}

impl CacheCount {
    fn ratio(&self) -> Option<f64> {
        let all = self.hits + self.misses;
        (all > 0).then(|| self.hits as f64 / all as f64)
    }
}

/// What the shop saw during the run.
struct ShopFigures {
    backends: Backends,
    url: String,
    requests: std::collections::BTreeMap<String, u64>,
    orders_placed: u64,
    orders_confirmed: u64,
    cache: CacheCount,
}

impl ShopFigures {
    fn new(shop: &Shop, backends: Backends, before: &ShopStats) -> Self {
        let after = shop.stats();
        Self {
            backends,
            url: shop.url(),
            requests: after
                .requests
                .iter()
                .map(|(route, n)| {
                    let earlier = before.requests.get(route).copied().unwrap_or(0);
                    (route.clone(), n.saturating_sub(earlier))
                })
                .filter(|(_, n)| *n > 0)
                .collect(),
            orders_placed: after.orders_placed.saturating_sub(before.orders_placed),
            orders_confirmed: after
                .orders_confirmed
                .saturating_sub(before.orders_confirmed),
            cache: CacheCount {
                hits: after.cache_hits.saturating_sub(before.cache_hits),
                misses: after.cache_misses.saturating_sub(before.cache_misses),
            },
        }
    }

    /// The cache as loadline saw it (from the shop's `Cache-Status` answers),
    /// by phase, and the shop's own counters beside it as a cross-check.
    fn notes(&self, summary: &Summary) -> Vec<String> {
        let pct = |r: Option<f64>| r.map_or_else(|| "-".into(), |r| format!("{:.0}%", r * 100.0));
        let mut notes = Vec::new();
        let by_phase: Vec<String> = summary
            .phases
            .iter()
            .map(|p| {
                format!(
                    "{} {}",
                    p.name,
                    pct(p.cache.as_ref().and_then(|c| c.hit_ratio))
                )
            })
            .collect();
        let seen = summary.cache.as_ref();
        notes.push(format!(
            "cache hit ratio (product details' Cache-Status) by phase: {}; overall {}{}",
            by_phase.join(", "),
            pct(seen.and_then(|c| c.hit_ratio)),
            match seen.map(|c| (c.warm_after_s, c.warm_at)) {
                Some((Some(t), level)) =>
                    format!(", {:.0}% first reached after {t:.0}s", level * 100.0),
                Some((None, level)) => format!(", never {:.0}% in a second", level * 100.0),
                None => String::new(),
            }
        ));
        let (hits, misses) = seen.map_or((0, 0), |c| (c.hit, c.miss));
        notes.push(format!(
            "demo-shop's own cache counters: {} hits, {} misses ({}){}",
            self.cache.hits,
            self.cache.misses,
            pct(self.cache.ratio()),
            if (hits, misses) == (self.cache.hits, self.cache.misses) {
                ", the same as loadline counted".to_string()
            } else {
                format!(", where loadline counted {hits} hits and {misses} misses")
            }
        ));
        notes.push(format!(
            "demo-shop orders: {} placed, {} confirmed by its event pipeline ({} database, {} cache, {} queue)",
            self.orders_placed,
            self.orders_confirmed,
            self.backends.database,
            self.backends.cache,
            self.backends.queue
        ));
        notes
    }

    fn json(&self) -> serde_json::Value {
        json!({
            "demo_shop": {
                "url": self.url,
                "backends": self.backends,
                "requests": self.requests,
                "orders_placed": self.orders_placed,
                "orders_confirmed": self.orders_confirmed,
                "cache": self.cache_json(&self.cache),
            }
        })
    }

    fn cache_json(&self, c: &CacheCount) -> serde_json::Value {
        json!({ "hits": c.hits, "misses": c.misses, "hit_ratio": c.ratio() })
    }
}
