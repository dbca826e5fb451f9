//! JUnit XML for CI systems: one test case per threshold (failed thresholds are
//! failures), plus one for the run itself when it was interrupted or aborted.

use std::fmt::Write as _;

use loadline_core::summary::{Status, Summary};

use crate::markup::escape as xml;

/// Renders the JUnit XML document.
pub fn render(summary: &Summary) -> String {
    let suite = summary.name.as_deref().unwrap_or(&summary.scenario);
    let run_case = matches!(summary.status, Status::Aborted | Status::Interrupted);
    let tests = summary.thresholds.len() + usize::from(run_case);
    let failures = summary.thresholds.iter().filter(|t| !t.passed).count() + usize::from(run_case);
    let mut o = String::new();
    let _ = write!(
        o,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"loadline\" tests=\"{tests}\" failures=\"{failures}\" time=\"{d:.3}\">\n  <testsuite name=\"{n}\" tests=\"{tests}\" failures=\"{failures}\" time=\"{d:.3}\">\n",
        d = summary.duration_s,
        n = xml(suite)
    );
    if !summary.monitors.is_empty() {
        o.push_str("    <properties>\n");
        for (k, m) in &summary.monitors {
            let _ = writeln!(
                o,
                "      <property name=\"monitor {}\" value=\"min {} mean {} max {}\"/>",
                xml(k),
                m.min,
                m.mean,
                m.max
            );
        }
        o.push_str("    </properties>\n");
    }
    for t in &summary.thresholds {
        let name = format!("{}: {}", t.metric, t.expr);
        let _ = write!(
            o,
            "    <testcase classname=\"thresholds\" name=\"{}\"",
            xml(&name)
        );
        if t.passed {
            let _ = writeln!(
                o,
                "><system-out>measured {}</system-out></testcase>",
                xml(&t.display)
            );
        } else {
            let _ = writeln!(
                o,
                "><failure message=\"{m}\">measured {d}, expected {e}</failure></testcase>",
                m = xml(&format!("{name} failed: measured {}", t.display)),
                d = xml(&t.display),
                e = xml(&t.expr)
            );
        }
    }
    if run_case {
        let _ = writeln!(
            o,
            "    <testcase classname=\"run\" name=\"run completed\"><failure message=\"the run was {s}\">{n}</failure></testcase>",
            s = summary.status.as_str(),
            n = xml(&summary.notes.join("; "))
        );
    }
    o.push_str("  </testsuite>\n</testsuites>\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    #[test]
    fn each_threshold_is_a_test_case() {
        let x = render(&fixtures::summary());
        assert!(x.starts_with("<?xml"));
        assert!(x.contains("tests=\"2\" failures=\"1\""));
        assert_eq!(x.matches("<testcase ").count(), 2);
        assert!(x.contains(
            "<property name=\"monitor process.rss_bytes{name=shop}\" value=\"min 20000000 mean 25000000 max 31500000\"/>"
        ));
        assert_eq!(x.matches("<failure ").count(), 1);
        assert!(x.contains("name=\"errors: rate &lt; 1%\""));
        assert!(x.contains("name=\"shop &lt;smoke&gt;\""));
    }
}
