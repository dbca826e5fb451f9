//! Sample summaries and series for the renderers' tests.

use std::collections::BTreeMap;

use loadline_core::summary::*;

use crate::series::{CachePoint, EventPoint, GroupPoint, Percentiles, SeriesPoint};

pub(crate) fn lat(base: f64) -> LatencyMs {
    LatencyMs {
        min: base,
        mean: base * 2.0,
        p50: base * 2.0,
        p90: base * 3.0,
        p95: base * 4.0,
        p99: base * 5.0,
        max: base * 10.0,
    }
}

pub(crate) fn cache() -> CacheSummary {
    CacheSummary {
        hit: 900,
        miss: 80,
        stale: 0,
        bypass: 0,
        unknown: 0,
        hit_ratio: Some(0.9184),
        hit_p50_ms: Some(0.8),
        miss_p50_ms: Some(12.5),
        speedup: Some(15.63),
        warm_after_s: Some(4.0),
        warm_at: 0.9,
        layers: Vec::new(),
    }
}

pub(crate) fn summary() -> Summary {
    Summary {
        name: Some("shop <smoke>".into()),
        scenario: "shop.yaml".into(),
        tags: BTreeMap::new(),
        status: Status::Failed,
        duration_s: 12.345,
        requests: RequestTotals {
            total: 1000,
            failed: 20,
            rate: 81.0,
        },
        latency_ms: lat(1.5),
        iterations: IterationTotals {
            total: 200,
            dropped: 0,
            late: 0,
            interrupted: 1,
            rate: 16.2,
        },
        checks: CheckTotals {
            passed: 990,
            failed: 10,
            failures: Vec::new(),
        },
        schedule_lag_ms: Some(lat(0.05)),
        bytes_sent: 123_456,
        bytes_received: 9_876_543,
        steps: vec![StepSummary {
            name: "product detail".into(),
            requests: 1000,
            failed: 20,
            latency_ms: lat(1.5),
            status: BTreeMap::from([("200".into(), 980), ("500".into(), 20)]),
            errors: BTreeMap::from([("timeout".into(), 3)]),
            checks: CheckTotals {
                passed: 990,
                failed: 10,
                failures: Vec::new(),
            },
            bytes_sent: 123_456,
            bytes_received: 9_876_543,
            counters: Default::default(),
            cache: Some(cache()),
        }],
        events: vec![EventSummary {
            dest: "orders.confirmed".into(),
            sent: 240,
            received: 239,
            lost: 1,
            duplicated: 0,
            out_of_order: 0,
            sent_rate: 19.44,
            received_rate: 19.36,
            lag_max: None,
            latency_ms: lat(26.0),
        }],
        thresholds: vec![
            ThresholdResult {
                metric: "errors".into(),
                expr: "rate < 1%".into(),
                value: Some(0.02),
                display: "2.00%".into(),
                passed: false,
                abort_on_fail: false,
            },
            ThresholdResult {
                metric: "latency".into(),
                expr: "p95 < 300ms".into(),
                value: Some(6.0),
                display: "6.00ms".into(),
                passed: true,
                abort_on_fail: false,
            },
        ],
        phases: vec![PhaseSummary {
            name: "steady".into(),
            scenario: None,
            model: "open",
            iterations: 200,
            dropped: 0,
            late: 0,
            interrupted: 1,
            duration_s: 12.3,
            requests: 1000,
            failed: 20,
            rate: 81.3,
            latency_ms: lat(1.5),
            cache: None,
        }],
        scenarios: vec![],
        latency_distribution: vec![[0.0, 1.5], [50.0, 3.0], [99.0, 7.5], [100.0, 15.0]],
        monitors: std::collections::BTreeMap::from([(
            "process.rss_bytes{name=shop}".to_string(),
            loadline_core::summary::MonitorSummary {
                min: 20e6,
                mean: 25e6,
                max: 31.5e6,
                first: 20e6,
                last: 31.5e6,
            },
        )]),
        cache: Some(cache()),
        notes: vec!["1 iterations were cut off at the end of the graceful stop".into()],
    }
}

/// A cache warming up: 30% hits in the first second, 8 points more each.
fn cache_point(i: i64) -> CachePoint {
    let hit = (22 + 8 * i as u64).min(78);
    CachePoint {
        hit,
        miss: 80 - hit,
        stale: 0,
        bypass: 0,
        unknown: 0,
        hit_ratio: Some(hit as f64 / 80.0),
    }
}

pub(crate) fn series() -> Vec<SeriesPoint> {
    (1..=12)
        .map(|i| SeriesPoint {
            t: i as f64,
            phase: if i <= 6 {
                "warm up".into()
            } else {
                "steady".into()
            },
            vus: i,
            requests: 80 + i as u64,
            failed: (i % 3) as u64,
            rate: 80.0 + i as f64,
            latency_ms: Some(Percentiles {
                p50: 3.0,
                p95: 6.0,
                p99: 7.5,
            }),
            cache: Some(cache_point(i)),
            errors: BTreeMap::from([("timeout".to_string(), (i % 2) as u64)]),
            iterations: 16,
            dropped: 0,
            schedule_lag_p99_ms: Some(0.2),
            tags: BTreeMap::new(),
            groups: BTreeMap::from([(
                "product detail".to_string(),
                GroupPoint {
                    requests: 80 + i as u64,
                    failed: (i % 3) as u64,
                    rate: 80.0 + i as f64,
                    latency_ms: Some(Percentiles {
                        p50: 3.0,
                        p95: 6.0,
                        p99: 7.5,
                    }),
                    cache: Some(cache_point(i)),
                },
            )]),
            events: BTreeMap::from([(
                "orders.confirmed".to_string(),
                EventPoint {
                    sent: 20,
                    received: 20 - (i == 7) as u64,
                    sent_rate: 20.0,
                    received_rate: 20.0 - (i == 7) as u64 as f64,
                    duplicated: 0,
                    out_of_order: 0,
                    lost: 0,
                    latency_ms: Some(Percentiles {
                        p50: 52.0,
                        p95: 55.0,
                        p99: 60.0 + i as f64,
                    }),
                },
            )]),
            monitors: BTreeMap::from([
                (
                    "process.cpu_percent{name=shop,pid=42}".to_string(),
                    20.0 + i as f64,
                ),
                ("host.mem_used_bytes".to_string(), 1e9),
            ]),
        })
        .collect()
}
