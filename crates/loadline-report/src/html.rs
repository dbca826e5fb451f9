//! The self-contained HTML report: one file, no network needed to view it. The
//! charts are SVG drawn here (no script, no chart library), on one time axis:
//! throughput, latency percentiles, errors, VUs, schedule lag and drops, then the
//! monitors (system under test, host, scraped series, loadline itself), then the
//! latency distribution. Tables come from the summary, unchanged.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use loadline_core::summary::Summary;

use crate::markup::escape as esc;
use crate::series::SeriesPoint;
use crate::terminal::{bytes, ms};

/// What the report shows besides the summary and the series.
#[derive(Debug, Clone, Default)]
pub struct ReportMeta {
    /// Rows of the settings table (e.g. "scenario", "phases", "started").
    pub settings: Vec<(String, String)>,
}

/// Colour-blind-safe palette (Okabe–Ito).
const PALETTE: [&str; 8] = [
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000",
];

/// Renders the report.
pub fn render(summary: &Summary, series: &[SeriesPoint], meta: &ReportMeta) -> String {
    let mut o = String::with_capacity(64 * 1024);
    let title = summary.name.as_deref().unwrap_or(&summary.scenario);
    let status = summary.status.as_str();
    let _ = write!(
        o,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>loadline · {t}</title><style>{CSS}</style></head><body>\n\
<header><h1>loadline · {t}</h1><span class=\"badge {status}\">{st}</span>\
<span class=\"dim\">{d:.1} s · {req} requests · {rate:.1}/s · {fail} failed</span></header>\n",
        t = esc(title),
        st = status.to_uppercase(),
        d = summary.duration_s,
        req = summary.requests.total,
        rate = summary.requests.rate,
        fail = summary.requests.failed,
    );
    if !summary.notes.is_empty() {
        o.push_str("<section class=\"notes\"><ul>");
        for n in &summary.notes {
            let _ = write!(o, "<li>{}</li>", esc(n));
        }
        o.push_str("</ul></section>\n");
    }

    // Settings and totals.
    o.push_str("<section class=\"cols\"><div><h2>Run</h2><table class=\"kv\">");
    for (k, v) in &meta.settings {
        let _ = write!(o, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(v));
    }
    let checks = summary.checks.passed + summary.checks.failed;
    let rows = [
        (
            "iterations",
            format!(
                "{} ({:.1}/s), dropped {}, interrupted {}",
                summary.iterations.total,
                summary.iterations.rate,
                summary.iterations.dropped,
                summary.iterations.interrupted
            ),
        ),
        (
            "checks",
            if checks == 0 {
                "none".into()
            } else {
                format!("{} of {} passed", summary.checks.passed, checks)
            },
        ),
        (
            "latency",
            format!(
                "p50 {}, p95 {}, p99 {}, max {}",
                ms(summary.latency_ms.p50),
                ms(summary.latency_ms.p95),
                ms(summary.latency_ms.p99),
                ms(summary.latency_ms.max)
            ),
        ),
        (
            "data",
            format!(
                "sent {}, received {}",
                bytes(summary.bytes_sent),
                bytes(summary.bytes_received)
            ),
        ),
    ];
    for (k, v) in rows {
        let _ = write!(o, "<tr><th>{k}</th><td>{}</td></tr>", esc(&v));
    }
    o.push_str("</table></div>");

    // Thresholds.
    o.push_str("<div><h2>Thresholds</h2>");
    if summary.thresholds.is_empty() {
        o.push_str("<p class=\"dim\">none defined</p>");
    } else {
        o.push_str("<table><tr><th></th><th>metric</th><th>condition</th><th>measured</th></tr>");
        for t in &summary.thresholds {
            let _ = write!(
                o,
                "<tr class=\"{c}\"><td>{v}</td><td>{m}</td><td><code>{e}</code></td><td class=\"num\">{d}</td></tr>",
                c = if t.passed { "pass" } else { "fail" },
                v = if t.passed { "PASS" } else { "FAIL" },
                m = esc(&t.metric),
                e = esc(&t.expr),
                d = esc(&t.display),
            );
        }
        o.push_str("</table>");
    }
    o.push_str("</div></section>\n");

    // Steps.
    o.push_str("<section><h2>Steps</h2><table class=\"steps\"><tr><th>step</th><th>requests</th><th>failed</th>\
<th>p50</th><th>p90</th><th>p95</th><th>p99</th><th>max</th><th>status</th><th>errors</th><th>checks</th></tr>");
    for s in &summary.steps {
        let l = &s.latency_ms;
        let lat = |v: f64| if s.requests > 0 { ms(v) } else { "-".into() };
        let join = |m: &BTreeMap<String, u64>| {
            if m.is_empty() {
                "-".to_string()
            } else {
                m.iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        let _ = write!(
            o,
            "<tr><td>{}</td><td class=\"num\" data-requests>{}</td><td class=\"num\" data-failed>{}</td>\
<td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
<td>{}</td><td>{}</td><td class=\"num\">{}</td></tr>",
            esc(&s.name),
            s.requests,
            s.failed,
            lat(l.p50),
            lat(l.p90),
            lat(l.p95),
            lat(l.p99),
            lat(l.max),
            esc(&join(&s.status)),
            esc(&join(&s.errors)),
            if s.checks.passed + s.checks.failed == 0 {
                "-".to_string()
            } else {
                format!("{}/{}", s.checks.passed, s.checks.passed + s.checks.failed)
            },
        );
    }
    o.push_str("</table>");
    let failures: Vec<_> = summary
        .steps
        .iter()
        .flat_map(|st| st.checks.failures.iter().map(move |f| (st, f)))
        .collect();
    if !failures.is_empty() {
        o.push_str("<h3>Failed checks</h3><table class=\"steps\"><tr><th>step</th><th>check</th><th>failed</th><th>actual (first seen)</th></tr>");
        for (st, f) in failures {
            let _ = write!(
                o,
                "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
                esc(&st.name),
                esc(&f.check),
                f.failed,
                esc(f.actual.as_deref().unwrap_or("-")),
            );
        }
        o.push_str("</table>");
    }
    o.push_str("</section>\n");

    // Event destinations.
    if !summary.events.is_empty() {
        o.push_str("<section><h2>Events</h2><table class=\"steps\"><tr><th>destination</th><th>sent</th>\
<th>received</th><th>lost</th><th>duplicated</th><th>out of order</th><th>received/s</th><th>p50</th>\
<th>p95</th><th>p99</th><th>max</th></tr>");
        for e in &summary.events {
            let l = &e.latency_ms;
            let lat = |v: f64| if l.max > 0.0 { ms(v) } else { "-".into() };
            let _ = write!(
                o,
                "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
<td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{:.1}</td><td class=\"num\">{}</td>\
<td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                esc(&e.dest),
                e.sent,
                e.received,
                e.lost,
                e.duplicated,
                e.out_of_order,
                e.received_rate,
                lat(l.p50),
                lat(l.p95),
                lat(l.p99),
                lat(l.max),
            );
        }
        o.push_str("</table></section>\n");
    }

    // Caches.
    if let Some(all) = &summary.cache {
        let _ = write!(
            o,
            "<section><h2>Caches</h2><table class=\"steps\"><tr><th>step</th><th>hit</th><th>miss</th>\
<th>stale</th><th>bypass</th><th>unknown</th><th>hit ratio</th><th>hit p50</th><th>miss p50</th>\
<th>speed-up</th><th>warm at {:.0}%</th></tr>",
            all.warm_at * 100.0
        );
        let mut rows: Vec<(&str, &loadline_core::summary::CacheSummary)> = summary
            .steps
            .iter()
            .filter_map(|st| st.cache.as_ref().map(|c| (st.name.as_str(), c)))
            .collect();
        if rows.len() > 1 {
            rows.push(("all", all));
        }
        for (name, c) in rows {
            let opt_ms = |v: Option<f64>| v.map_or_else(|| "-".into(), ms);
            let _ = write!(
                o,
                "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
<td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
<td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                esc(name),
                c.hit,
                c.miss,
                c.stale,
                c.bypass,
                c.unknown,
                c.hit_ratio
                    .map_or_else(|| "-".into(), |r| format!("{:.1}%", r * 100.0)),
                opt_ms(c.hit_p50_ms),
                opt_ms(c.miss_p50_ms),
                c.speedup.map_or_else(|| "-".into(), |x| format!("{x:.1}×")),
                c.warm_after_s
                    .map_or_else(|| "never".into(), |t| format!("{t:.1}s")),
            );
        }
        o.push_str("</table><p class=\"dim\">hit ratio: fresh hits over hits, misses and stale answers; bypassed and unclassified responses are left out.</p></section>\n");
    }

    // Phases.
    if !summary.phases.is_empty() {
        o.push_str("<section><h2>Phases</h2><table class=\"steps\"><tr><th>phase</th><th>model</th><th>time</th>\
<th>iterations</th><th>dropped</th><th>interrupted</th><th>requests</th><th>failed</th><th>rate</th>\
<th>p50</th><th>p95</th><th>p99</th></tr>");
        for p in &summary.phases {
            let l = &p.latency_ms;
            let lat = |v: f64| if p.requests > 0 { ms(v) } else { "-".into() };
            let _ = write!(
                o,
                "<tr><td>{}</td><td>{}</td><td class=\"num\">{:.1}s</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
<td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{:.1}/s</td>\
<td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                esc(&match &p.scenario {
                    Some(sc) => format!("{sc} · {}", p.name),
                    None => p.name.clone(),
                }),
                p.model,
                p.duration_s,
                p.iterations,
                p.dropped,
                p.interrupted,
                p.requests,
                p.failed,
                p.rate,
                lat(l.p50),
                lat(l.p95),
                lat(l.p99),
            );
        }
        o.push_str("</table></section>\n");
    }

    // Scenarios.
    if !summary.scenarios.is_empty() {
        o.push_str(
            "<section><h2>Scenarios</h2><table class=\"steps\"><tr><th>scenario</th><th>time</th>\
<th>iterations</th><th>dropped</th><th>requests</th><th>failed</th><th>rate</th>\
<th>p50</th><th>p95</th><th>p99</th></tr>",
        );
        for sc in &summary.scenarios {
            let l = &sc.latency_ms;
            let lat = |v: f64| if sc.requests > 0 { ms(v) } else { "-".into() };
            let _ = write!(
                o,
                "<tr><td>{}</td><td class=\"num\">{:.1}s</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
<td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{:.1}/s</td>\
<td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                esc(&sc.name),
                sc.duration_s,
                sc.iterations,
                sc.dropped,
                sc.requests,
                sc.failed,
                sc.rate,
                lat(l.p50),
                lat(l.p95),
                lat(l.p99),
            );
        }
        o.push_str("</table></section>\n");
    }

    // Charts on one time axis.
    o.push_str("<section><h2>Over time</h2><div class=\"charts\">");
    let xs: Vec<f64> = series.iter().map(|p| p.t).collect();
    let phases = phase_marks(series);
    let chart =
        |o: &mut String, title: &str, unit: &str, lines: Vec<(String, Vec<Option<f64>>)>| {
            if lines.iter().any(|(_, v)| v.iter().any(Option::is_some)) {
                o.push_str(&line_chart(title, unit, &xs, &lines, &phases));
            }
        };
    chart(
        &mut o,
        "Throughput",
        "requests/s",
        vec![
            (
                "requests/s".into(),
                series.iter().map(|p| Some(p.rate)).collect(),
            ),
            (
                "failed/s".into(),
                series
                    .iter()
                    .map(|p| Some(p.failed as f64 / step_secs(series, p.t)))
                    .collect(),
            ),
        ],
    );
    chart(
        &mut o,
        "Latency",
        "ms",
        vec![
            (
                "p50".into(),
                series.iter().map(|p| p.latency_ms.map(|l| l.p50)).collect(),
            ),
            (
                "p95".into(),
                series.iter().map(|p| p.latency_ms.map(|l| l.p95)).collect(),
            ),
            (
                "p99".into(),
                series.iter().map(|p| p.latency_ms.map(|l| l.p99)).collect(),
            ),
        ],
    );
    let cached: Vec<&String> = summary
        .steps
        .iter()
        .filter(|st| st.cache.is_some())
        .map(|st| &st.name)
        .collect();
    if !cached.is_empty() {
        let ratio =
            |c: Option<crate::series::CachePoint>| c.and_then(|c| c.hit_ratio).map(|r| r * 100.0);
        let mut lines = vec![(
            "all".to_string(),
            series.iter().map(|p| ratio(p.cache)).collect(),
        )];
        if cached.len() > 1 {
            for name in &cached {
                lines.push((
                    (*name).clone(),
                    series
                        .iter()
                        .map(|p| ratio(p.groups.get(*name).and_then(|g| g.cache)))
                        .collect(),
                ));
            }
        }
        chart(&mut o, "Cache hit ratio", "% of lookups", lines);
    }
    let dests: Vec<&String> = summary.events.iter().map(|e| &e.dest).collect();
    if !dests.is_empty() {
        let mut rates = Vec::new();
        let mut latency = Vec::new();
        for dest in &dests {
            let point = |p: &SeriesPoint| p.events.get(*dest).copied();
            rates.push((
                format!("{dest} sent/s"),
                series
                    .iter()
                    .map(|p| point(p).map(|e| e.sent_rate))
                    .collect(),
            ));
            rates.push((
                format!("{dest} received/s"),
                series
                    .iter()
                    .map(|p| point(p).map(|e| e.received_rate))
                    .collect(),
            ));
            latency.push((
                format!("{dest} p99"),
                series
                    .iter()
                    .map(|p| point(p).and_then(|e| e.latency_ms).map(|l| l.p99))
                    .collect(),
            ));
        }
        chart(&mut o, "Events sent and received", "messages/s", rates);
        chart(&mut o, "Event latency, send to receipt", "ms", latency);
    }
    let kinds: Vec<String> = {
        let mut k: Vec<String> = series
            .iter()
            .flat_map(|p| p.errors.keys().cloned())
            .collect();
        k.sort();
        k.dedup();
        k
    };
    let mut err_lines = vec![(
        "HTTP failures".to_string(),
        series.iter().map(|p| Some(p.failed as f64)).collect(),
    )];
    for k in &kinds {
        err_lines.push((
            k.clone(),
            series
                .iter()
                .map(|p| Some(p.errors.get(k).copied().unwrap_or(0) as f64))
                .collect(),
        ));
    }
    chart(&mut o, "Errors", "per interval", err_lines);
    chart(
        &mut o,
        "Active VUs",
        "VUs",
        vec![(
            "VUs".into(),
            series.iter().map(|p| Some(p.vus as f64)).collect(),
        )],
    );
    if series
        .iter()
        .any(|p| p.schedule_lag_p99_ms.is_some() || p.dropped > 0)
    {
        chart(
            &mut o,
            "Schedule lag p99 and dropped iterations",
            "ms / count",
            vec![
                (
                    "lag p99 (ms)".into(),
                    series.iter().map(|p| p.schedule_lag_p99_ms).collect(),
                ),
                (
                    "dropped".into(),
                    series.iter().map(|p| Some(p.dropped as f64)).collect(),
                ),
            ],
        );
    }
    for (family, unit, keys) in monitor_families(series) {
        let lines = keys
            .iter()
            .map(|k| {
                (
                    k.clone(),
                    series.iter().map(|p| p.monitors.get(k).copied()).collect(),
                )
            })
            .collect();
        chart(&mut o, &family, &unit, lines);
    }
    o.push_str("</div></section>\n");

    // Latency distribution.
    if !summary.latency_distribution.is_empty() {
        o.push_str("<section><h2>Latency distribution (all requests)</h2>");
        o.push_str(&percentile_chart(&summary.latency_distribution));
        o.push_str("</section>\n");
    }

    // The summary itself, for tools.
    let json = serde_json::to_string(summary)
        .unwrap_or_default()
        .replace("</", "<\\/");
    let _ = write!(
        o,
        "<script type=\"application/json\" id=\"summary\">{json}</script>\n\
<footer class=\"dim\">Generated by loadline {}. Percentiles are computed from merged HDR histograms \
(microsecond resolution, 3 significant digits).</footer></body></html>\n",
        env!("CARGO_PKG_VERSION")
    );
    o
}

/// The length of the interval that ended at `t` (the first one from 0).
fn step_secs(series: &[SeriesPoint], t: f64) -> f64 {
    let prev = series
        .iter()
        .map(|p| p.t)
        .filter(|x| *x < t)
        .fold(0.0, f64::max);
    (t - prev).max(1e-9)
}

/// Where each phase starts: (t, name).
fn phase_marks(series: &[SeriesPoint]) -> Vec<(f64, String)> {
    let mut out: Vec<(f64, String)> = Vec::new();
    let mut prev_t = 0.0;
    for p in series {
        if out.last().is_none_or(|(_, name)| *name != p.phase) {
            out.push((prev_t, p.phase.clone()));
        }
        prev_t = p.t;
    }
    out
}

/// Groups monitor series into charts: by the series name before its labels,
/// with the unit taken from its suffix.
fn monitor_families(series: &[SeriesPoint]) -> Vec<(String, String, Vec<String>)> {
    let mut fam: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in series {
        for k in p.monitors.keys() {
            let base = k.split('{').next().unwrap_or(k).to_string();
            let keys = fam.entry(base).or_default();
            if !keys.contains(k) {
                keys.push(k.clone());
            }
        }
    }
    fam.into_iter()
        .map(|(base, mut keys)| {
            keys.sort();
            keys.truncate(PALETTE.len());
            let unit = if base.ends_with("_percent") {
                "%"
            } else if base.ends_with("_bytes") {
                "bytes"
            } else if base.ends_with("_per_s") || base.ends_with(":rate") {
                "per second"
            } else {
                "value"
            };
            (base, unit.to_string(), keys)
        })
        .collect()
}

/// A "nice" upper bound and step for an axis up to `max`.
fn nice_axis(max: f64) -> (f64, f64) {
    if !(max.is_finite() && max > 0.0) {
        return (1.0, 0.25);
    }
    let raw = max / 4.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    ((max / step).ceil() * step, step)
}

fn fmt_axis(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 1e9 {
        format!("{:.1}G", v / 1e9)
    } else if v.abs() >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v.abs() >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

const W: f64 = 860.0;
const H: f64 = 240.0;
const L: f64 = 64.0;
const R: f64 = 16.0;
const T: f64 = 30.0;
const B: f64 = 34.0;

/// An SVG line chart over time.
fn line_chart(
    title: &str,
    unit: &str,
    xs: &[f64],
    lines: &[(String, Vec<Option<f64>>)],
    phases: &[(f64, String)],
) -> String {
    let x_max = xs.iter().copied().fold(1.0, f64::max);
    let y_raw = lines
        .iter()
        .flat_map(|(_, v)| v.iter().flatten())
        .copied()
        .fold(0.0, f64::max);
    let (y_max, y_step) = nice_axis(y_raw);
    let (x_top, x_step) = nice_axis(x_max);
    let px = |x: f64| L + x / x_top * (W - L - R);
    let py = |y: f64| T + (1.0 - y / y_max) * (H - T - B);
    let mut s = String::new();
    let _ = write!(
        s,
        "<figure><svg viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{t}\">\
<text x=\"{L}\" y=\"18\" class=\"title\">{t}</text>\
<text x=\"12\" y=\"{mid}\" class=\"unit\" transform=\"rotate(-90 12 {mid})\">{u}</text>",
        t = esc(title),
        u = esc(unit),
        mid = (T + H - B) / 2.0
    );
    let mut y = 0.0;
    while y <= y_max + 1e-9 {
        let _ = write!(
            s,
            "<line x1=\"{L}\" x2=\"{x2}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" class=\"grid\"/>\
<text x=\"{lx}\" y=\"{ty:.1}\" class=\"tick\" text-anchor=\"end\">{v}</text>",
            x2 = W - R,
            yy = py(y),
            lx = L - 6.0,
            ty = py(y) + 4.0,
            v = fmt_axis(y)
        );
        y += y_step;
    }
    let mut x = 0.0;
    while x <= x_top + 1e-9 {
        let _ = write!(
            s,
            "<text x=\"{xx:.1}\" y=\"{ty}\" class=\"tick\" text-anchor=\"middle\">{v}s</text>",
            xx = px(x),
            ty = H - B + 16.0,
            v = fmt_axis(x)
        );
        x += x_step;
    }
    let _ = write!(
        s,
        "<text x=\"{}\" y=\"{}\" class=\"unit\" text-anchor=\"end\">time since start</text>",
        W - R,
        H - 4.0
    );
    for (t, name) in phases.iter().skip(1) {
        let _ = write!(
            s,
            "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{T}\" y2=\"{y2}\" class=\"phase\"/><text x=\"{tx:.1}\" y=\"{ty}\" class=\"phase-label\">{n}</text>",
            x = px(*t),
            y2 = H - B,
            tx = px(*t) + 3.0,
            ty = T + 10.0,
            n = esc(name)
        );
    }
    for (i, (name, values)) in lines.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let mut d = String::new();
        let mut pen_down = false;
        for (x, v) in xs.iter().zip(values) {
            match v {
                Some(v) => {
                    let _ = write!(
                        d,
                        "{}{:.1},{:.1} ",
                        if pen_down { "L" } else { "M" },
                        px(*x),
                        py(*v)
                    );
                    pen_down = true;
                }
                None => pen_down = false,
            }
        }
        let _ = write!(
            s,
            "<path d=\"{d}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"1.8\"><title>{n}</title></path>",
            n = esc(name)
        );
    }
    s.push_str("</svg><figcaption>");
    for (i, (name, _)) in lines.iter().enumerate() {
        let _ = write!(
            s,
            "<span><i style=\"background:{}\"></i>{}</span>",
            PALETTE[i % PALETTE.len()],
            esc(name)
        );
    }
    s.push_str("</figcaption></figure>");
    s
}

/// Latency by percentile: the classic HDR percentile plot, x on a log scale of
/// 1 / (1 − p).
fn percentile_chart(points: &[[f64; 2]]) -> String {
    let xs: Vec<f64> = points
        .iter()
        .map(|[p, _]| (1.0 / (1.0 - (p / 100.0).min(0.99999))).log10())
        .collect();
    let x_max = xs.iter().copied().fold(1.0, f64::max);
    let y_raw = points.iter().map(|[_, v]| *v).fold(0.0, f64::max);
    let (y_max, y_step) = nice_axis(y_raw);
    let px = |x: f64| L + x / x_max * (W - L - R);
    let py = |y: f64| T + (1.0 - y / y_max) * (H - T - B);
    let mut s = String::new();
    let _ = write!(
        s,
        "<figure><svg viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"latency by percentile\">\
<text x=\"{L}\" y=\"18\" class=\"title\">Latency by percentile</text>\
<text x=\"12\" y=\"{mid}\" class=\"unit\" transform=\"rotate(-90 12 {mid})\">ms</text>",
        mid = (T + H - B) / 2.0
    );
    let mut y = 0.0;
    while y <= y_max + 1e-9 {
        let _ = write!(
            s,
            "<line x1=\"{L}\" x2=\"{x2}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" class=\"grid\"/><text x=\"{lx}\" y=\"{ty:.1}\" class=\"tick\" text-anchor=\"end\">{v}</text>",
            x2 = W - R,
            yy = py(y),
            lx = L - 6.0,
            ty = py(y) + 4.0,
            v = fmt_axis(y)
        );
        y += y_step;
    }
    for (label, p) in [
        ("p50", 50.0),
        ("p90", 90.0),
        ("p99", 99.0),
        ("p99.9", 99.9),
        ("p99.99", 99.99),
    ] {
        let x: f64 = (1.0f64 / (1.0 - p / 100.0)).log10();
        if x <= x_max + 1e-9 {
            let _ = write!(
                s,
                "<line x1=\"{xx:.1}\" x2=\"{xx:.1}\" y1=\"{T}\" y2=\"{y2}\" class=\"grid\"/><text x=\"{xx:.1}\" y=\"{ty}\" class=\"tick\" text-anchor=\"middle\">{label}</text>",
                xx = px(x),
                y2 = H - B,
                ty = H - B + 16.0
            );
        }
    }
    let _ = write!(
        s,
        "<text x=\"{}\" y=\"{}\" class=\"unit\" text-anchor=\"end\">percentile</text>",
        W - R,
        H - 4.0
    );
    let mut d = String::new();
    for (i, (x, [_, v])) in xs.iter().zip(points).enumerate() {
        let _ = write!(
            d,
            "{}{:.1},{:.1} ",
            if i == 0 { "M" } else { "L" },
            px(*x),
            py(*v)
        );
    }
    let _ = write!(
        s,
        "<path d=\"{d}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"/></svg></figure>",
        PALETTE[0]
    );
    s
}

const CSS: &str = "\
:root{--fg:#1d2430;--dim:#5b6675;--line:#d8dde4;--pass:#0a7d45;--fail:#b3261e;--bg:#fff}\
*{box-sizing:border-box}body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:var(--fg);background:var(--bg);max-width:1200px;margin:0 auto;padding:16px 20px}\
header{display:flex;align-items:baseline;gap:14px;flex-wrap:wrap;border-bottom:1px solid var(--line);padding-bottom:10px}\
h1{font-size:20px;margin:0}h2{font-size:16px;margin:20px 0 8px}\
.badge{font-weight:700;padding:2px 10px;border-radius:4px;color:#fff}.badge.passed{background:var(--pass)}.badge.failed,.badge.aborted{background:var(--fail)}.badge.interrupted{background:#8a6d00}\
.dim{color:var(--dim)}.notes{background:#fff8e1;border:1px solid #f0d98c;border-radius:4px;margin-top:12px;padding:2px 12px}\
.cols{display:grid;grid-template-columns:1fr 1fr;gap:24px}@media(max-width:900px){.cols{grid-template-columns:1fr}}\
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:4px 8px;border-bottom:1px solid var(--line);vertical-align:top}\
th{font-weight:600;color:var(--dim)}td.num{text-align:right;font-variant-numeric:tabular-nums}.kv th{width:140px}\
tr.pass td:first-child{color:var(--pass);font-weight:700}tr.fail td:first-child{color:var(--fail);font-weight:700}\
.steps{font-size:13px}.charts{display:grid;grid-template-columns:1fr;gap:8px}\
figure{margin:0;border:1px solid var(--line);border-radius:6px;padding:6px 8px}svg{width:100%;height:auto;display:block}\
.title{font-weight:600;font-size:14px;fill:var(--fg)}.tick{font-size:11px;fill:var(--dim)}.unit{font-size:11px;fill:var(--dim)}\
.grid{stroke:var(--line);stroke-width:1}.phase{stroke:#999;stroke-dasharray:4 3}.phase-label{font-size:10px;fill:#777}\
figcaption{display:flex;flex-wrap:wrap;gap:14px;font-size:12px;color:var(--dim);padding:2px 0 2px 56px}\
figcaption i{display:inline-block;width:12px;height:3px;margin-right:5px;vertical-align:middle}\
footer{margin-top:24px;font-size:12px}code{font-size:13px}";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    #[test]
    fn the_report_is_self_contained_and_matches_the_summary() {
        let s = fixtures::summary();
        let html = render(
            &s,
            &fixtures::series(),
            &ReportMeta {
                settings: vec![("scenario".into(), "shop.yaml".into())],
            },
        );
        // Nothing fetched from elsewhere.
        assert!(
            !html.contains("src=\"http") && !html.contains("<link") && !html.contains("@import")
        );
        // Names escaped, verdict shown, thresholds and steps tabled.
        assert!(html.contains("shop &lt;smoke&gt;"));
        assert!(html.contains("badge failed\">FAILED"));
        assert!(html.contains(
            "<td class=\"num\" data-requests>1000</td><td class=\"num\" data-failed>20</td>"
        ));
        assert!(html.contains("200: 980, 500: 20") && html.contains("timeout: 3"));
        assert!(html.contains("<code>rate &lt; 1%</code>"));
        // Charts: load, latency, errors, VUs, lag, two monitor families, distribution.
        for title in [
            "Throughput",
            "Latency",
            "Errors",
            "Active VUs",
            "Schedule lag",
            "process.cpu_percent",
            "host.mem_used_bytes",
            "Latency by percentile",
            "Cache hit ratio",
            "Events sent and received",
            "Event latency, send to receipt",
        ] {
            assert!(html.contains(&format!(">{title}")), "{title}");
        }
        assert!(html.contains("phase-label\">steady"));
        // The caches' table, and the hit-ratio curve from cold to warm.
        assert!(
            html.contains("<h2>Caches</h2>") && html.contains(">91.8%<") && html.contains(">4.0s<")
        );
        let curve = &html[html.find(">Cache hit ratio").unwrap_or(0)..];
        assert!(curve.contains("<path"), "the curve is drawn");
        // The embedded summary is the summary.
        let start = html.find("id=\"summary\">").unwrap() + "id=\"summary\">".len();
        let end = start + html[start..].find("</script>").unwrap();
        let embedded: serde_json::Value = serde_json::from_str(&html[start..end]).unwrap();
        assert_eq!(embedded, serde_json::to_value(&s).unwrap());
    }

    #[test]
    fn axes_are_nice() {
        assert_eq!(nice_axis(0.0), (1.0, 0.25));
        assert_eq!(nice_axis(97.0), (100.0, 25.0));
        assert_eq!(nice_axis(7.3), (8.0, 2.0));
        assert_eq!(fmt_axis(25000.0), "25k");
    }
}
