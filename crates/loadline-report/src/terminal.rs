//! The end-of-run summary as text: totals, a table per metric group, phases,
//! thresholds with pass/fail, and the notes a reader needs to trust the numbers.

use std::fmt::Write as _;

use loadline_core::summary::{
    CacheSummary, EventSummary, LatencyMs, MonitorSummary, PhaseSummary, ScenarioSummary,
    StepSummary, Summary,
};

/// Formats milliseconds for people: `850us`, `12.3ms`, `1.24s`.
pub fn ms(v: f64) -> String {
    if v < 1.0 {
        format!("{:.0}us", v * 1000.0)
    } else if v < 100.0 {
        format!("{v:.2}ms")
    } else if v < 1000.0 {
        format!("{v:.1}ms")
    } else {
        format!("{:.2}s", v / 1000.0)
    }
}

/// Formats a byte count: `512 B`, `1.5 kB`, `12.3 MB`.
pub fn bytes(n: u64) -> String {
    let v = n as f64;
    if v < 1e3 {
        format!("{n} B")
    } else if v < 1e6 {
        format!("{:.1} kB", v / 1e3)
    } else if v < 1e9 {
        format!("{:.1} MB", v / 1e6)
    } else {
        format!("{:.2} GB", v / 1e9)
    }
}

fn pct(part: u64, whole: u64) -> String {
    if whole == 0 {
        "-".into()
    } else {
        format!("{:.2}%", part as f64 * 100.0 / whole as f64)
    }
}

fn latency_line(l: &LatencyMs) -> String {
    format!(
        "min {}  p50 {}  p90 {}  p95 {}  p99 {}  max {}",
        ms(l.min),
        ms(l.p50),
        ms(l.p90),
        ms(l.p95),
        ms(l.p99),
        ms(l.max)
    )
}

fn joined<'a>(items: impl Iterator<Item = (&'a String, &'a u64)>) -> String {
    let parts: Vec<String> = items.map(|(k, v)| format!("{k}:{v}")).collect();
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(" ")
    }
}

/// Renders the summary.
pub fn render(s: &Summary) -> String {
    let mut o = String::new();
    let title = s.name.as_deref().unwrap_or(&s.scenario);
    let _ = writeln!(
        o,
        "\nloadline · {title} · {} after {:.1}s\n",
        s.status.as_str().to_uppercase(),
        s.duration_s
    );
    let row = |o: &mut String, label: &str, text: String| {
        let _ = writeln!(o, "  {label:<14} {text}");
    };
    row(
        &mut o,
        "requests",
        format!(
            "{} ({:.1}/s), failed {} ({})",
            s.requests.total,
            s.requests.rate,
            s.requests.failed,
            pct(s.requests.failed, s.requests.total)
        ),
    );
    row(
        &mut o,
        "iterations",
        format!(
            "{} ({:.1}/s), dropped {}, interrupted {}",
            s.iterations.total, s.iterations.rate, s.iterations.dropped, s.iterations.interrupted
        ),
    );
    let checks = s.checks.passed + s.checks.failed;
    if checks > 0 {
        row(
            &mut o,
            "checks",
            format!(
                "{} passed ({} of {})",
                pct(s.checks.passed, checks),
                s.checks.passed,
                checks
            ),
        );
    }
    row(&mut o, "latency", latency_line(&s.latency_ms));
    if let Some(lag) = &s.schedule_lag_ms {
        row(
            &mut o,
            "schedule lag",
            format!(
                "p50 {}  p99 {}  max {}",
                ms(lag.p50),
                ms(lag.p99),
                ms(lag.max)
            ),
        );
    }
    row(
        &mut o,
        "data",
        format!(
            "sent {}, received {}",
            bytes(s.bytes_sent),
            bytes(s.bytes_received)
        ),
    );

    if !s.steps.is_empty() {
        let _ = writeln!(o);
        o.push_str(&steps_table(&s.steps));
    }

    let failures: Vec<_> = s
        .steps
        .iter()
        .flat_map(|st| st.checks.failures.iter().map(move |f| (st, f)))
        .collect();
    if !failures.is_empty() {
        let _ = writeln!(o, "\n  failed checks");
        for (st, f) in failures {
            let _ = write!(o, "    {} × {} · {}", f.failed, st.name, f.check);
            match &f.actual {
                Some(actual) => {
                    let _ = writeln!(o, " (actual: {actual})");
                }
                None => o.push('\n'),
            }
        }
    }

    if let Some(all) = &s.cache {
        let _ = writeln!(o);
        o.push_str(&caches_table(&s.steps, all));
    }

    if !s.events.is_empty() {
        let _ = writeln!(o);
        o.push_str(&events_table(&s.events));
    }

    if !s.phases.is_empty() {
        let _ = writeln!(o);
        o.push_str(&phases_table(&s.phases));
    }

    if !s.scenarios.is_empty() {
        let _ = writeln!(o);
        o.push_str(&scenarios_table(&s.scenarios));
    }

    if !s.monitors.is_empty() {
        let _ = writeln!(o);
        o.push_str(&monitors_table(&s.monitors));
    }

    if !s.thresholds.is_empty() {
        let _ = writeln!(o, "\n  thresholds");
        for t in &s.thresholds {
            let _ = writeln!(
                o,
                "    {} {:<30} {:<18} {}",
                if t.passed { "PASS" } else { "FAIL" },
                t.metric,
                t.expr,
                t.display
            );
        }
    }
    if !s.notes.is_empty() {
        let _ = writeln!(o, "\n  notes");
        for n in &s.notes {
            let _ = writeln!(o, "    - {n}");
        }
    }
    o
}

fn steps_table(steps: &[StepSummary]) -> String {
    let header = [
        "step", "requests", "failed", "p50", "p90", "p95", "p99", "max", "status", "errors",
    ];
    let rows = steps
        .iter()
        .map(|st| {
            let l = &st.latency_ms;
            let has = st.requests > 0;
            let lat = |v: f64| if has { ms(v) } else { "-".into() };
            vec![
                st.name.clone(),
                st.requests.to_string(),
                st.failed.to_string(),
                lat(l.p50),
                lat(l.p90),
                lat(l.p95),
                lat(l.p99),
                lat(l.max),
                joined(st.status.iter()),
                joined(st.errors.iter()),
            ]
        })
        .collect();
    // Names and code lists left-aligned, numbers right-aligned.
    table(&header, rows, |i| i == 0 || i >= 8)
}

/// Each event destination: counts, rates and latency end to end.
fn events_table(events: &[EventSummary]) -> String {
    let header = [
        "events", "sent", "received", "lost", "dup", "ooo", "recv/s", "p50", "p95", "p99", "max",
    ];
    let rows = events
        .iter()
        .map(|e| {
            let l = &e.latency_ms;
            let has = l.max > 0.0;
            let lat = |v: f64| if has { ms(v) } else { "-".into() };
            vec![
                e.dest.clone(),
                e.sent.to_string(),
                e.received.to_string(),
                e.lost.to_string(),
                e.duplicated.to_string(),
                e.out_of_order.to_string(),
                format!("{:.1}", e.received_rate),
                lat(l.p50),
                lat(l.p95),
                lat(l.p99),
                lat(l.max),
            ]
        })
        .collect();
    table(&header, rows, |i| i == 0)
}

/// The steps that met a cache, and all of them together: outcomes, hit ratio,
/// hit and miss medians, and when the cache was warm.
fn caches_table(steps: &[StepSummary], all: &CacheSummary) -> String {
    let header = [
        "cache",
        "hit",
        "miss",
        "stale",
        "bypass",
        "unknown",
        "hit ratio",
        "hit p50",
        "miss p50",
        "speed-up",
        "warm",
    ];
    let row = |name: &str, c: &CacheSummary| {
        let opt_ms = |v: Option<f64>| v.map_or_else(|| "-".into(), ms);
        vec![
            name.to_string(),
            c.hit.to_string(),
            c.miss.to_string(),
            c.stale.to_string(),
            c.bypass.to_string(),
            c.unknown.to_string(),
            c.hit_ratio
                .map_or_else(|| "-".into(), |r| format!("{:.1}%", r * 100.0)),
            opt_ms(c.hit_p50_ms),
            opt_ms(c.miss_p50_ms),
            c.speedup.map_or_else(|| "-".into(), |x| format!("{x:.1}x")),
            c.warm_after_s
                .map_or_else(|| "never".into(), |t| format!("{t:.1}s")),
        ]
    };
    let mut rows: Vec<Vec<String>> = steps
        .iter()
        .filter_map(|st| st.cache.as_ref().map(|c| row(&st.name, c)))
        .collect();
    if rows.len() > 1 {
        rows.push(row("all", all));
    }
    let mut o = table(&header, rows, |i| i == 0);
    let _ = writeln!(
        o,
        "  (hit ratio: hits / (hits + misses + stale); warm: when a second's hit ratio first reached {:.0}%)",
        all.warm_at * 100.0
    );
    for st in steps {
        for l in st.cache.iter().flat_map(|c| &c.layers) {
            let _ = writeln!(
                o,
                "    {} · cache {}: hit {}, miss {}, stale {}, bypass {}, unknown {}",
                st.name, l.name, l.hit, l.miss, l.stale, l.bypass, l.unknown
            );
        }
    }
    o
}

/// The phases; in a run of named scenarios, each with its scenario first.
fn phases_table(phases: &[PhaseSummary]) -> String {
    let scenarios = phases.iter().any(|p| p.scenario.is_some());
    let mut header = vec![
        "phase",
        "model",
        "time",
        "iterations",
        "dropped",
        "interrupted",
        "requests",
        "failed",
        "rate",
        "p50",
        "p95",
        "p99",
    ];
    if scenarios {
        header.insert(0, "scenario");
    }
    let rows = phases
        .iter()
        .map(|p| {
            let l = &p.latency_ms;
            let has = p.requests > 0;
            let lat = |v: f64| if has { ms(v) } else { "-".into() };
            let mut row = vec![
                p.name.clone(),
                p.model.to_string(),
                format!("{:.1}s", p.duration_s),
                p.iterations.to_string(),
                p.dropped.to_string(),
                p.interrupted.to_string(),
                p.requests.to_string(),
                if has {
                    format!("{} ({})", p.failed, pct(p.failed, p.requests))
                } else {
                    "0".into()
                },
                format!("{:.1}/s", p.rate),
                lat(l.p50),
                lat(l.p95),
                lat(l.p99),
            ];
            if scenarios {
                row.insert(0, p.scenario.clone().unwrap_or_default());
            }
            row
        })
        .collect();
    let text = usize::from(scenarios) + 1;
    table(&header, rows, |i| i <= text)
}

/// The named scenarios, each over its phases.
fn scenarios_table(scenarios: &[ScenarioSummary]) -> String {
    let header = [
        "scenario",
        "time",
        "iterations",
        "dropped",
        "requests",
        "failed",
        "rate",
        "p50",
        "p95",
        "p99",
    ];
    let rows = scenarios
        .iter()
        .map(|sc| {
            let l = &sc.latency_ms;
            let has = sc.requests > 0;
            let lat = |v: f64| if has { ms(v) } else { "-".into() };
            vec![
                sc.name.clone(),
                format!("{:.1}s", sc.duration_s),
                sc.iterations.to_string(),
                sc.dropped.to_string(),
                sc.requests.to_string(),
                if has {
                    format!("{} ({})", sc.failed, pct(sc.failed, sc.requests))
                } else {
                    "0".into()
                },
                format!("{:.1}/s", sc.rate),
                lat(l.p50),
                lat(l.p95),
                lat(l.p99),
            ]
        })
        .collect();
    table(&header, rows, |i| i == 0)
}

/// At most this many monitor series in the terminal; the JSON summary has all.
const MONITOR_ROWS: usize = 24;

fn monitors_table(monitors: &std::collections::BTreeMap<String, MonitorSummary>) -> String {
    let header = ["monitor", "min", "mean", "max", "last"];
    let rows = monitors
        .iter()
        .take(MONITOR_ROWS)
        .map(|(k, m)| {
            vec![
                k.clone(),
                quantity(m.min),
                quantity(m.mean),
                quantity(m.max),
                quantity(m.last),
            ]
        })
        .collect();
    let mut o = table(&header, rows, |i| i == 0);
    if monitors.len() > MONITOR_ROWS {
        let _ = writeln!(
            o,
            "  … {} more series in the JSON summary",
            monitors.len() - MONITOR_ROWS
        );
    }
    o
}

/// A monitor value: big values shortened (`1.50M`), the rest with two decimals.
pub(crate) use loadline_core::threshold::format_quantity as quantity;

/// Cells in columns as wide as their widest cell, two spaces apart;
/// `left(i)` says which columns are left-aligned (the rest are numbers).
fn table(header: &[&str], rows: Vec<Vec<String>>, left: impl Fn(usize) -> bool) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r.iter()) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut o = String::new();
    let line = |o: &mut String, cells: &[String]| {
        o.push_str("  ");
        for (i, (cell, w)) in cells.iter().zip(widths.iter()).enumerate() {
            let pad = w - cell.chars().count();
            if left(i) {
                o.push_str(cell);
                if i + 1 < cells.len() {
                    o.push_str(&" ".repeat(pad + 2));
                }
            } else {
                o.push_str(&" ".repeat(pad));
                o.push_str(cell);
                o.push_str("  ");
            }
        }
        // A right-aligned last column leaves two spaces behind.
        while o.ends_with(' ') {
            o.pop();
        }
        o.push('\n');
    };
    line(
        &mut o,
        &header.iter().map(|h| h.to_string()).collect::<Vec<_>>(),
    );
    for r in &rows {
        line(&mut o, r);
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::lat;
    use loadline_core::summary::*;
    use std::collections::BTreeMap;

    #[test]
    fn renders_the_expected_text() {
        let s = Summary {
            name: Some("shop smoke".into()),
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
                errors: BTreeMap::new(),
                checks: CheckTotals {
                    passed: 990,
                    failed: 10,
                    failures: vec![CheckFailure {
                        check: "json $.state equals \"confirmed\"".into(),
                        failed: 10,
                        actual: Some("\"pending\"".into()),
                    }],
                },
                bytes_sent: 123_456,
                bytes_received: 9_876_543,
                counters: Default::default(),
                cache: Some(crate::fixtures::cache()),
            }],
            events: Vec::new(),
            thresholds: vec![ThresholdResult {
                metric: "errors".into(),
                expr: "rate < 1%".into(),
                value: Some(0.02),
                display: "2.00%".into(),
                passed: false,
                abort_on_fail: false,
            }],
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
            latency_distribution: vec![],
            monitors: BTreeMap::from([(
                "process.cpu_percent{name=shop}".to_string(),
                MonitorSummary {
                    min: 1.5,
                    mean: 35.25,
                    max: 78.0,
                    first: 1.5,
                    last: 12.0,
                },
            )]),
            cache: Some(crate::fixtures::cache()),
            notes: vec!["1 iterations were cut off at the end of the graceful stop".into()],
        };
        let expected = "
loadline · shop smoke · FAILED after 12.3s

  requests       1000 (81.0/s), failed 20 (2.00%)
  iterations     200 (16.2/s), dropped 0, interrupted 1
  checks         99.00% passed (990 of 1000)
  latency        min 1.50ms  p50 3.00ms  p90 4.50ms  p95 6.00ms  p99 7.50ms  max 15.00ms
  schedule lag   p50 100us  p99 250us  max 500us
  data           sent 123.5 kB, received 9.9 MB

  step            requests  failed     p50     p90     p95     p99      max  status          errors
  product detail      1000      20  3.00ms  4.50ms  6.00ms  7.50ms  15.00ms  200:980 500:20  -

  failed checks
    10 × product detail · json $.state equals \"confirmed\" (actual: \"pending\")

  cache           hit  miss  stale  bypass  unknown  hit ratio  hit p50  miss p50  speed-up  warm
  product detail  900    80      0       0        0      91.8%    800us   12.50ms     15.6x  4.0s
  (hit ratio: hits / (hits + misses + stale); warm: when a second's hit ratio first reached 90%)

  phase   model   time  iterations  dropped  interrupted  requests      failed    rate     p50     p95     p99
  steady  open   12.3s         200        0            1      1000  20 (2.00%)  81.3/s  3.00ms  6.00ms  7.50ms

  monitor                          min   mean    max   last
  process.cpu_percent{name=shop}  1.50  35.25  78.00  12.00

  thresholds
    FAIL errors                         rate < 1%          2.00%

  notes
    - 1 iterations were cut off at the end of the graceful stop
";
        assert_eq!(render(&s), expected);
    }

    #[test]
    fn scenarios_name_their_phases_and_get_a_table() {
        let phase = |scenario: &str, name: &str, iterations: u64, requests: u64| PhaseSummary {
            name: name.into(),
            scenario: Some(scenario.into()),
            model: "open",
            iterations,
            dropped: 0,
            late: 0,
            interrupted: 0,
            duration_s: 3.0,
            requests,
            failed: 0,
            rate: requests as f64 / 3.0,
            latency_ms: lat(1.5),
            cache: None,
        };
        let phases = [
            phase("browse", "steady", 60, 60),
            phase("buy", "steady", 15, 30),
        ];
        let expected = "  scenario  phase   model  time  iterations  dropped  interrupted  requests     failed    rate     p50     p95     p99
  browse    steady  open   3.0s          60        0            0        60  0 (0.00%)  20.0/s  3.00ms  6.00ms  7.50ms
  buy       steady  open   3.0s          15        0            0        30  0 (0.00%)  10.0/s  3.00ms  6.00ms  7.50ms
";
        assert_eq!(phases_table(&phases), expected);
        let scenarios = [ScenarioSummary {
            name: "buy".into(),
            requests: 30,
            failed: 3,
            rate: 10.0,
            latency_ms: lat(1.5),
            iterations: 15,
            dropped: 2,
            duration_s: 3.0,
        }];
        let expected = "  scenario  time  iterations  dropped  requests      failed    rate     p50     p95     p99
  buy       3.0s          15        2        30  3 (10.00%)  10.0/s  3.00ms  6.00ms  7.50ms
";
        assert_eq!(scenarios_table(&scenarios), expected);
    }

    #[test]
    fn units() {
        assert_eq!(ms(0.25), "250us");
        assert_eq!(ms(250.0), "250.0ms");
        assert_eq!(ms(1250.0), "1.25s");
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(1_500_000), "1.5 MB");
    }

    #[test]
    fn events_table_lists_each_destination() {
        let lat = LatencyMs {
            min: 1.0,
            mean: 4.0,
            p50: 3.0,
            p90: 8.0,
            p95: 9.0,
            p99: 12.0,
            max: 20.0,
        };
        let e = |dest: &str, latency_ms| EventSummary {
            dest: dest.into(),
            sent: 100,
            received: 99,
            lost: 2,
            duplicated: 1,
            out_of_order: 0,
            sent_rate: 10.0,
            received_rate: 9.9,
            lag_max: None,
            latency_ms,
        };
        let text = events_table(&[e("orders", lat), e("audit", LatencyMs::default())]);
        let expected =
            "  events  sent  received  lost  dup  ooo  recv/s     p50     p95      p99      max
  orders   100        99     2    1    0     9.9  3.00ms  9.00ms  12.00ms  20.00ms
  audit    100        99     2    1    0     9.9       -       -        -        -
";
        assert_eq!(text, expected, "\n{text}");
    }
}
