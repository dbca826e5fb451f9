//! A compact Markdown summary for a CI job's page (e.g. `$GITHUB_STEP_SUMMARY`).

use std::fmt::Write as _;

use loadline_core::summary::Summary;

use crate::terminal::{ms, quantity};

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// Renders the Markdown summary.
pub fn render(s: &Summary) -> String {
    let mut o = String::new();
    let title = s.name.as_deref().unwrap_or(&s.scenario);
    let mark = if s.status == loadline_core::summary::Status::Passed {
        "✅"
    } else {
        "❌"
    };
    let _ = writeln!(
        o,
        "## {mark} loadline · {} · {}\n",
        cell(title),
        s.status.as_str()
    );
    let _ = writeln!(
        o,
        "{} requests in {:.1} s ({:.1}/s), {} failed · {} iterations ({} dropped) · p95 {} · p99 {}\n",
        s.requests.total,
        s.duration_s,
        s.requests.rate,
        s.requests.failed,
        s.iterations.total,
        s.iterations.dropped,
        ms(s.latency_ms.p95),
        ms(s.latency_ms.p99)
    );
    if !s.thresholds.is_empty() {
        o.push_str("| | threshold | measured |\n|---|---|---|\n");
        for t in &s.thresholds {
            let _ = writeln!(
                o,
                "| {} | `{}: {}` | {} |",
                if t.passed { "✅" } else { "❌" },
                cell(&t.metric),
                cell(&t.expr),
                cell(&t.display)
            );
        }
        o.push('\n');
    }
    o.push_str("| step | requests | failed | p50 | p95 | p99 |\n|---|--:|--:|--:|--:|--:|\n");
    for st in &s.steps {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} |",
            cell(&st.name),
            st.requests,
            st.failed,
            ms(st.latency_ms.p50),
            ms(st.latency_ms.p95),
            ms(st.latency_ms.p99)
        );
    }
    if s.cache.is_some() {
        o.push_str("\n| cache | hit | miss | hit ratio | hit p50 | miss p50 | warm |\n|---|--:|--:|--:|--:|--:|--:|\n");
        for st in &s.steps {
            if let Some(c) = &st.cache {
                let _ = writeln!(
                    o,
                    "| {} | {} | {} | {} | {} | {} | {} |",
                    cell(&st.name),
                    c.hit,
                    c.miss,
                    c.hit_ratio
                        .map_or_else(|| "-".into(), |r| format!("{:.1}%", r * 100.0)),
                    c.hit_p50_ms.map_or_else(|| "-".into(), ms),
                    c.miss_p50_ms.map_or_else(|| "-".into(), ms),
                    c.warm_after_s
                        .map_or_else(|| "never".into(), |t| format!("{t:.1}s")),
                );
            }
        }
    }
    if !s.monitors.is_empty() {
        o.push_str("\n| monitor | min | mean | max |\n|---|--:|--:|--:|\n");
        for (k, m) in &s.monitors {
            let _ = writeln!(
                o,
                "| `{}` | {} | {} | {} |",
                cell(k),
                quantity(m.min),
                quantity(m.mean),
                quantity(m.max)
            );
        }
    }
    for n in &s.notes {
        let _ = writeln!(o, "\n> {}", cell(n));
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    #[test]
    fn renders_the_expected_text() {
        let expected = "## ❌ loadline · shop <smoke> · failed

1000 requests in 12.3 s (81.0/s), 20 failed · 200 iterations (0 dropped) · p95 6.00ms · p99 7.50ms

| | threshold | measured |
|---|---|---|
| ❌ | `errors: rate < 1%` | 2.00% |
| ✅ | `latency: p95 < 300ms` | 6.00ms |

| step | requests | failed | p50 | p95 | p99 |
|---|--:|--:|--:|--:|--:|
| product detail | 1000 | 20 | 3.00ms | 6.00ms | 7.50ms |

| cache | hit | miss | hit ratio | hit p50 | miss p50 | warm |
|---|--:|--:|--:|--:|--:|--:|
| product detail | 900 | 80 | 91.8% | 800us | 12.50ms | 4.0s |

| monitor | min | mean | max |
|---|--:|--:|--:|
| `process.rss_bytes{name=shop}` | 20.00M | 25.00M | 31.50M |

> 1 iterations were cut off at the end of the graceful stop
";
        assert_eq!(render(&fixtures::summary()), expected);
    }
}
