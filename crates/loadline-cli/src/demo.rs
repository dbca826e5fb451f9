//! `loadline demo`: starts demo-shop inside the process, runs the bundled strategy
//! (tests/load/shop.yaml, built into the binary with its data files) against it,
//! and reports like `run` — plus what the shop itself saw: its cache hit ratio by
//! phase and over time, and its orders placed and confirmed.
//!
//! `loadline demo --serve` only starts the shop, for trying other scenarios on it.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use demo_shop::{Capacity, Knobs, Shop, ShopConfig, ShopStats};
use loadline_config::{Overrides, CAPACITY_PROFILE};
use loadline_core::runner::{Observer, Tick};
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
/// The width of the windows of the cache hit ratio over time.
const WINDOW: Duration = Duration::from_secs(5);
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
        let seen = ShopFigures::new(shop, backends, &before, &Tally::default());
        let mut extra = seen.json();
        extra["demo_shop"]["limiter_requests_per_second"] = json!(limit);
        return capacity::finish(&plan, &opts, &report, &args.output, Some(extra));
    }
    let env = run::env_of("tests/load/shop.yaml (embedded)", &loaded);
    let plan = Arc::new(loaded.plan);
    let tally = Arc::new(Mutex::new(Tally::new(plan.phases.len(), before.clone())));
    let observer = Box::new(ShopObserver {
        inner: run::progress(&plan, args.output.quiet),
        shop: Arc::clone(shop),
        tally: tally.clone(),
    });
    let interrupt = loadline_run::watch_signals(plan.graceful_stop, Arc::new(run::Stderr));
    let mut done = match run::execute(plan.clone(), &args.output, observer, &env, &interrupt).await
    {
        Ok(done) => done,
        Err(code) => return code,
    };
    let mut tally = tally.lock().unwrap_or_else(PoisonError::into_inner).clone();
    // What the shop served after the last tick belongs to the last phase.
    tally.add(&shop.stats(), plan.phases.len().saturating_sub(1), None);
    let phase_names: Vec<String> = plan.phases.iter().map(|p| p.name.clone()).collect();
    let seen = ShopFigures::new(shop, backends, &before, &tally);
    done.summary.notes.extend(seen.notes(&phase_names));
    run::finish(
        &done,
        &args.output,
        Some(seen.json_with_phases(&phase_names)),
    )
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

/// The shop's cache answers, attributed to the phase and the time window in which
/// the run's aggregator saw them.
#[derive(Debug, Clone, Default)]
struct Tally {
    last: ShopStats,
    phases: Vec<CacheCount>,
    windows: Vec<CacheCount>,
}

impl Tally {
    fn new(phases: usize, start: ShopStats) -> Self {
        Self {
            last: start,
            phases: vec![CacheCount::default(); phases],
            windows: Vec::new(),
        }
    }

    /// Counts what changed since the last reading in `phase` (and the window of
    /// `elapsed`, when given).
    fn add(&mut self, now: &ShopStats, phase: usize, elapsed: Option<Duration>) {
        let delta = CacheCount {
            hits: now.cache_hits.saturating_sub(self.last.cache_hits),
            misses: now.cache_misses.saturating_sub(self.last.cache_misses),
        };
        self.last = now.clone();
        if let Some(p) = self.phases.get_mut(phase) {
            p.hits += delta.hits;
            p.misses += delta.misses;
        }
        let window = match elapsed {
            Some(e) => (e.as_secs_f64() / WINDOW.as_secs_f64()).ceil().max(1.0) as usize - 1,
            None => self.windows.len().saturating_sub(1),
        };
        if self.windows.len() <= window {
            self.windows.resize(window + 1, CacheCount::default());
        }
        self.windows[window].hits += delta.hits;
        self.windows[window].misses += delta.misses;
    }
}

/// Passes the ticks on to the progress display and reads the shop's counters
/// once a second.
struct ShopObserver {
    inner: Box<dyn Observer>,
    shop: Arc<Shop>,
    tally: Arc<Mutex<Tally>>,
}

impl Observer for ShopObserver {
    fn on_tick(&mut self, tick: &Tick<'_>) {
        self.inner.on_tick(tick);
        let now = self.shop.stats();
        self.tally
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .add(&now, tick.phase, Some(tick.elapsed));
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
    tally: Tally,
}

impl ShopFigures {
    fn new(shop: &Shop, backends: Backends, before: &ShopStats, tally: &Tally) -> Self {
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
            tally: tally.clone(),
        }
    }

    fn notes(&self, phase_names: &[String]) -> Vec<String> {
        let pct = |c: &CacheCount| match c.ratio() {
            Some(r) => format!("{:.0}% ({} of {})", r * 100.0, c.hits, c.hits + c.misses),
            None => "-".into(),
        };
        let mut notes = Vec::new();
        let by_phase: Vec<String> = phase_names
            .iter()
            .zip(&self.tally.phases)
            .map(|(name, c)| format!("{name} {}", pct(c)))
            .collect();
        notes.push(format!(
            "demo-shop cache hit ratio (its Cache-Status answers to product details) by phase: {}; overall {}",
            by_phase.join(", "),
            pct(&self.cache)
        ));
        let windows: Vec<String> = self
            .tally
            .windows
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let from = i as u64 * WINDOW.as_secs();
                match c.ratio() {
                    Some(r) => format!("{from}s {:.0}%", r * 100.0),
                    None => format!("{from}s -"),
                }
            })
            .collect();
        if !windows.is_empty() {
            notes.push(format!(
                "demo-shop cache hit ratio per {}s: {}",
                WINDOW.as_secs(),
                windows.join(", ")
            ));
        }
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

    fn json_with_phases(&self, phase_names: &[String]) -> serde_json::Value {
        let mut v = self.json();
        let by_phase: Vec<serde_json::Value> = phase_names
            .iter()
            .zip(&self.tally.phases)
            .map(|(name, c)| {
                let mut o = self.cache_json(c);
                o["phase"] = json!(name);
                o
            })
            .collect();
        let over_time: Vec<serde_json::Value> = self
            .tally
            .windows
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let mut o = self.cache_json(c);
                o["from_s"] = json!(i as u64 * WINDOW.as_secs());
                o["to_s"] = json!((i as u64 + 1) * WINDOW.as_secs());
                o
            })
            .collect();
        v["demo_shop"]["cache_by_phase"] = json!(by_phase);
        v["demo_shop"]["cache_over_time"] = json!(over_time);
        v
    }
}
