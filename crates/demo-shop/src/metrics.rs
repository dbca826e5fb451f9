//! The shop's own measurements: request counts and latency per route pattern, cache
//! hits and misses, orders by state and the event queue's depth. Exposed as
//! Prometheus text (`GET /metrics`, written by hand here: it is small) and as
//! [`ShopStats`] for tests.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use serde::Serialize;

use crate::api::AppState;

/// Upper bounds (seconds) of the latency histogram's buckets; `+Inf` is implied.
const BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The route label of requests that matched no route.
const UNMATCHED: &str = "unmatched";

/// What the shop has served so far, for tests and the demo's summary.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ShopStats {
    /// Requests answered per route pattern (e.g. `/products/{id}`), any status.
    pub requests: BTreeMap<String, u64>,
    /// Orders written (each entered the `pending` state).
    pub orders_placed: u64,
    /// Orders the consumer moved to `confirmed`.
    pub orders_confirmed: u64,
    /// Product detail answers served from the cache.
    pub cache_hits: u64,
    /// Product detail answers that had to query the database.
    pub cache_misses: u64,
}

/// Pool occupancy, read when `/metrics` is rendered.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PoolGauge {
    pub in_use: u32,
    pub size: u32,
}

#[derive(Default)]
struct RouteStats {
    statuses: BTreeMap<u16, u64>,
    /// Per-bucket (not cumulative) counts; the last slot is `+Inf`.
    buckets: [u64; BUCKETS.len() + 1],
    sum_seconds: f64,
    count: u64,
}

impl RouteStats {
    fn record(&mut self, status: u16, elapsed: Duration) {
        *self.statuses.entry(status).or_insert(0) += 1;
        let seconds = elapsed.as_secs_f64();
        let slot = BUCKETS
            .iter()
            .position(|&le| seconds <= le)
            .unwrap_or(BUCKETS.len());
        self.buckets[slot] += 1;
        self.sum_seconds += seconds;
        self.count += 1;
    }
}

#[derive(Default)]
pub(crate) struct Metrics {
    routes: Mutex<BTreeMap<String, RouteStats>>,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    orders_placed: AtomicU64,
    orders_confirmed: AtomicU64,
    /// Events published and not yet handled by the consumer.
    queue_depth: AtomicI64,
}

impl Metrics {
    pub(crate) fn record_request(&self, route: &str, status: u16, elapsed: Duration) {
        let mut routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        match routes.get_mut(route) {
            Some(stats) => stats.record(status, elapsed),
            None => {
                let mut stats = RouteStats::default();
                stats.record(status, elapsed);
                routes.insert(route.to_owned(), stats);
            }
        }
    }

    pub(crate) fn cache_hit(&self) {
        self.cache_hits.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn cache_miss(&self) {
        self.cache_misses.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn order_placed(&self) {
        self.orders_placed.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn event_published(&self) {
        self.queue_depth.fetch_add(1, Ordering::Relaxed);
    }

    /// The consumer is done with one event, whether the order got confirmed or not.
    pub(crate) fn event_handled(&self, confirmed: bool) {
        self.queue_depth.fetch_sub(1, Ordering::Relaxed);
        if confirmed {
            self.orders_confirmed.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn stats(&self) -> ShopStats {
        let routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        ShopStats {
            requests: routes
                .iter()
                .map(|(route, stats)| (route.clone(), stats.count))
                .collect(),
            orders_placed: self.orders_placed.load(Ordering::Relaxed),
            orders_confirmed: self.orders_confirmed.load(Ordering::Relaxed),
            cache_hits: self.cache_hits.load(Ordering::Relaxed),
            cache_misses: self.cache_misses.load(Ordering::Relaxed),
        }
    }

    /// The Prometheus text exposition (format 0.0.4) of every metric.
    pub(crate) fn render(&self, pool: PoolGauge) -> String {
        let mut out = String::with_capacity(4096);
        {
            let routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
            header(
                &mut out,
                "demo_shop_requests_total",
                "counter",
                "Requests answered, by route pattern and status code.",
            );
            for (route, stats) in routes.iter() {
                let route = escape(route);
                for (status, count) in &stats.statuses {
                    let _ = writeln!(
                        out,
                        "demo_shop_requests_total{{route=\"{route}\",status=\"{status}\"}} {count}"
                    );
                }
            }
            header(
                &mut out,
                "demo_shop_request_duration_seconds",
                "histogram",
                "Time from receiving a request to its response, by route pattern.",
            );
            for (route, stats) in routes.iter() {
                let route = escape(route);
                let mut cumulative = 0;
                for (i, count) in stats.buckets.iter().enumerate() {
                    cumulative += count;
                    let le = BUCKETS
                        .get(i)
                        .map_or_else(|| "+Inf".to_owned(), |le| le.to_string());
                    let _ = writeln!(
                        out,
                        "demo_shop_request_duration_seconds_bucket{{route=\"{route}\",le=\"{le}\"}} {cumulative}"
                    );
                }
                let _ = writeln!(
                    out,
                    "demo_shop_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                    stats.sum_seconds
                );
                let _ = writeln!(
                    out,
                    "demo_shop_request_duration_seconds_count{{route=\"{route}\"}} {}",
                    stats.count
                );
            }
        }
        let mut single = |name: &str, kind: &str, help: &str, value: String| {
            header(&mut out, name, kind, help);
            let _ = writeln!(out, "{name} {value}");
        };
        single(
            "demo_shop_cache_hits_total",
            "counter",
            "Product detail answers served from the cache.",
            self.cache_hits.load(Ordering::Relaxed).to_string(),
        );
        single(
            "demo_shop_cache_misses_total",
            "counter",
            "Product detail answers that had to query the database.",
            self.cache_misses.load(Ordering::Relaxed).to_string(),
        );
        single(
            "demo_shop_queue_depth",
            "gauge",
            "Order events published and not yet handled by the consumer.",
            self.queue_depth.load(Ordering::Relaxed).to_string(),
        );
        single(
            "demo_shop_db_pool_in_use",
            "gauge",
            "Database connections currently checked out of the pool.",
            pool.in_use.to_string(),
        );
        single(
            "demo_shop_db_pool_size",
            "gauge",
            "Database connections currently open (in use or idle).",
            pool.size.to_string(),
        );
        header(
            &mut out,
            "demo_shop_orders_total",
            "counter",
            "Orders that entered each state.",
        );
        let _ = writeln!(
            out,
            "demo_shop_orders_total{{state=\"pending\"}} {}",
            self.orders_placed.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "demo_shop_orders_total{{state=\"confirmed\"}} {}",
            self.orders_confirmed.load(Ordering::Relaxed)
        );
        out
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Escapes a label value: backslash, double quote and line feed.
fn escape(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// Middleware on every route: counts the answer and its latency under the matched
/// route pattern (so `/products/7` and `/products/8` are one series).
pub(crate) async fn record(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let route = request.extensions().get::<MatchedPath>().cloned();
    let response = next.run(request).await;
    let route = route.as_ref().map_or(UNMATCHED, MatchedPath::as_str);
    state
        .metrics
        .record_request(route, response.status().as_u16(), started.elapsed());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_value(text: &str, series: &str) -> f64 {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .unwrap()
            .parse()
            .unwrap()
    }

    #[test]
    fn buckets_are_cumulative_and_end_with_inf() {
        let metrics = Metrics::default();
        metrics.record_request("/a", 200, Duration::from_micros(500));
        metrics.record_request("/a", 200, Duration::from_millis(30));
        metrics.record_request("/a", 500, Duration::from_secs(20));
        let text = metrics.render(PoolGauge { in_use: 1, size: 4 });
        let bucket = |le: &str| {
            sample_value(
                &text,
                &format!("demo_shop_request_duration_seconds_bucket{{route=\"/a\",le=\"{le}\"}}"),
            )
        };
        assert_eq!(bucket("0.001"), 1.0);
        assert_eq!(bucket("0.025"), 1.0);
        assert_eq!(bucket("0.05"), 2.0);
        assert_eq!(bucket("10"), 2.0);
        assert_eq!(bucket("+Inf"), 3.0);
        assert_eq!(
            sample_value(
                &text,
                "demo_shop_request_duration_seconds_count{route=\"/a\"}"
            ),
            3.0
        );
        assert_eq!(
            sample_value(
                &text,
                "demo_shop_requests_total{route=\"/a\",status=\"500\"}"
            ),
            1.0
        );
        assert_eq!(sample_value(&text, "demo_shop_db_pool_in_use"), 1.0);
    }

    #[test]
    fn every_family_has_help_and_type() {
        let text = Metrics::default().render(PoolGauge { in_use: 0, size: 0 });
        for family in [
            "demo_shop_requests_total",
            "demo_shop_request_duration_seconds",
            "demo_shop_cache_hits_total",
            "demo_shop_cache_misses_total",
            "demo_shop_queue_depth",
            "demo_shop_db_pool_in_use",
            "demo_shop_orders_total",
        ] {
            assert!(text.contains(&format!("# HELP {family} ")), "{family}");
            assert!(text.contains(&format!("# TYPE {family} ")), "{family}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn queue_depth_follows_events() {
        let metrics = Metrics::default();
        metrics.event_published();
        metrics.event_published();
        metrics.event_handled(true);
        let text = metrics.render(PoolGauge { in_use: 0, size: 0 });
        assert_eq!(sample_value(&text, "demo_shop_queue_depth"), 1.0);
        assert_eq!(metrics.stats().orders_confirmed, 1);
    }
}
