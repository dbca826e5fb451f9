//! A live Prometheus exporter (`--prometheus-listen ADDR`): `GET /metrics` answers
//! the run's counters (cumulative) and the last interval's gauges (latency
//! percentiles, VUs, schedule lag, monitors) in the text exposition format, so an
//! existing Prometheus and Grafana can watch the run (see
//! docs/grafana-dashboard.json).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::series::SeriesPoint;
use crate::stream::PointSink;

#[derive(Debug, Default)]
struct State {
    requests: BTreeMap<String, (u64, u64)>,
    errors: BTreeMap<String, u64>,
    iterations: u64,
    dropped: u64,
    last: Option<SeriesPoint>,
}

/// Feeds the exporter; a [`PointSink`].
#[derive(Debug, Clone, Default)]
pub struct PromSink(Arc<Mutex<State>>);

impl PointSink for PromSink {
    fn point(&mut self, p: &SeriesPoint) {
        let mut st = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for (name, g) in &p.groups {
            let e = st.requests.entry(name.clone()).or_default();
            e.0 += g.requests;
            e.1 += g.failed;
        }
        for (k, n) in &p.errors {
            *st.errors.entry(k.clone()).or_default() += n;
        }
        st.iterations += p.iterations;
        st.dropped += p.dropped;
        st.last = Some(p.clone());
    }
}

fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl PromSink {
    /// The exposition text of the current state.
    pub fn render(&self) -> String {
        let st = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut o = String::new();
        o.push_str("# HELP loadline_requests_total Requests sent, by step.\n# TYPE loadline_requests_total counter\n");
        for (step, (n, _)) in &st.requests {
            let _ = writeln!(o, "loadline_requests_total{{step=\"{}\"}} {n}", label(step));
        }
        o.push_str("# HELP loadline_requests_failed_total Requests with no response or a status >= 400, by step.\n# TYPE loadline_requests_failed_total counter\n");
        for (step, (_, f)) in &st.requests {
            let _ = writeln!(
                o,
                "loadline_requests_failed_total{{step=\"{}\"}} {f}",
                label(step)
            );
        }
        o.push_str("# HELP loadline_errors_total Requests without a usable response, by error kind.\n# TYPE loadline_errors_total counter\n");
        for (k, n) in &st.errors {
            let _ = writeln!(o, "loadline_errors_total{{kind=\"{}\"}} {n}", label(k));
        }
        let _ = write!(
            o,
            "# HELP loadline_iterations_total Completed iterations.\n# TYPE loadline_iterations_total counter\nloadline_iterations_total {}\n\
# HELP loadline_dropped_iterations_total Open-model arrivals dropped at max_vus.\n# TYPE loadline_dropped_iterations_total counter\nloadline_dropped_iterations_total {}\n",
            st.iterations, st.dropped
        );
        if let Some(p) = &st.last {
            let _ = write!(
                o,
                "# HELP loadline_vus Active VUs.\n# TYPE loadline_vus gauge\nloadline_vus {}\n",
                p.vus
            );
            o.push_str("# HELP loadline_latency_ms Latency percentiles over the last interval, by step.\n# TYPE loadline_latency_ms gauge\n");
            for (step, g) in &p.groups {
                if let Some(l) = g.latency_ms {
                    for (q, v) in [("0.5", l.p50), ("0.95", l.p95), ("0.99", l.p99)] {
                        let _ = writeln!(
                            o,
                            "loadline_latency_ms{{step=\"{}\",quantile=\"{q}\"}} {v}",
                            label(step)
                        );
                    }
                }
            }
            if let Some(lag) = p.schedule_lag_p99_ms {
                let _ = write!(o, "# HELP loadline_schedule_lag_p99_ms Open-model schedule lag p99 over the last interval.\n# TYPE loadline_schedule_lag_p99_ms gauge\nloadline_schedule_lag_p99_ms {lag}\n");
            }
            if !p.monitors.is_empty() {
                o.push_str("# HELP loadline_monitor Monitored values of the system under test, the host and loadline.\n# TYPE loadline_monitor gauge\n");
                for (k, v) in &p.monitors {
                    let _ = writeln!(o, "loadline_monitor{{series=\"{}\"}} {v}", label(k));
                }
            }
        }
        o
    }

    /// Binds `addr` and serves `/metrics` until `cancel`. Binding happens before
    /// this returns, so a taken port is an error before the load starts.
    pub async fn serve(
        &self,
        addr: SocketAddr,
        cancel: CancellationToken,
    ) -> std::io::Result<SocketAddr> {
        let listener = TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        let sink = self.clone();
        tokio::spawn(async move {
            loop {
                let (mut tcp, _) = tokio::select! {
                    r = listener.accept() => match r { Ok(c) => c, Err(_) => continue },
                    _ = cancel.cancelled() => return,
                };
                let sink = sink.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::with_capacity(1024);
                    let mut chunk = [0u8; 1024];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
                        match tokio::time::timeout(
                            std::time::Duration::from_secs(5),
                            tcp.read(&mut chunk),
                        )
                        .await
                        {
                            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                            _ => return,
                        }
                    }
                    let (status, body) =
                        if buf.starts_with(b"GET /metrics ") || buf.starts_with(b"GET / ") {
                            ("200 OK", sink.render())
                        } else {
                            ("404 Not Found", "not found: try /metrics\n".to_string())
                        };
                    let head = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = tcp.write_all(head.as_bytes()).await;
                    let _ = tcp.write_all(body.as_bytes()).await;
                });
            }
        });
        Ok(bound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    #[tokio::test]
    async fn serves_cumulative_counters_and_last_gauges() {
        let mut sink = PromSink::default();
        let points = fixtures::series();
        for p in &points {
            sink.point(p);
        }
        let total: u64 = points.iter().map(|p| p.requests).sum();
        let cancel = CancellationToken::new();
        let addr = sink
            .serve("127.0.0.1:0".parse().unwrap(), cancel.clone())
            .await
            .unwrap();
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut text = String::new();
        tcp.read_to_string(&mut text).await.unwrap();
        cancel.cancel();
        assert!(text.starts_with("HTTP/1.1 200 OK"));
        assert!(text.contains(&format!(
            "loadline_requests_total{{step=\"product detail\"}} {total}"
        )));
        assert!(text.contains("loadline_vus 12"));
        assert!(text.contains("loadline_latency_ms{step=\"product detail\",quantile=\"0.95\"} 6"));
        assert!(
            text.contains("loadline_monitor{series=\"process.cpu_percent{name=shop,pid=42}\"} 32")
        );
        assert!(text
            .contains("# TYPE loadline_iterations_total counter\nloadline_iterations_total 192"));
    }
}
