//! A live Prometheus exporter (`--prometheus-listen ADDR`): `GET /metrics` answers
//! the run's counters (cumulative) and the last interval's gauges (latency
//! percentiles, VUs, schedule lag, monitors) in the text exposition format, so an
//! existing Prometheus and Grafana can watch the run (see
//! docs/grafana-dashboard.json).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::series::SeriesPoint;
use crate::stream::PointSink;
use crate::tags::Tags;

#[derive(Debug, Default)]
struct State {
    requests: BTreeMap<String, (u64, u64)>,
    errors: BTreeMap<String, u64>,
    iterations: u64,
    dropped: u64,
    last: Option<SeriesPoint>,
    /// The run's tags as labels (`env="ci",region="eu"`), on every series.
    extra: String,
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
    /// An exporter whose every series carries the run's tags as labels.
    pub fn with_tags(tags: &Tags) -> Self {
        let extra = tags
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", label(v)))
            .collect::<Vec<_>>()
            .join(",");
        let sink = Self::default();
        sink.0.lock().unwrap_or_else(|e| e.into_inner()).extra = extra;
        sink
    }

    /// The exposition text of the current state.
    pub fn render(&self) -> String {
        let st = self.0.lock().unwrap_or_else(|e| e.into_inner());
        // A series' label set: its own labels, then the run's tags.
        let labels = |own: &str| match (own.is_empty(), st.extra.is_empty()) {
            (true, true) => String::new(),
            (false, true) => format!("{{{own}}}"),
            (true, false) => format!("{{{}}}", st.extra),
            (false, false) => format!("{{{own},{}}}", st.extra),
        };
        let mut o = String::new();
        o.push_str("# HELP loadline_requests_total Requests sent, by step.\n# TYPE loadline_requests_total counter\n");
        for (step, (n, _)) in &st.requests {
            let l = labels(&format!("step=\"{}\"", label(step)));
            let _ = writeln!(o, "loadline_requests_total{l} {n}");
        }
        o.push_str("# HELP loadline_requests_failed_total Requests with no response or a status >= 400, by step.\n# TYPE loadline_requests_failed_total counter\n");
        for (step, (_, f)) in &st.requests {
            let l = labels(&format!("step=\"{}\"", label(step)));
            let _ = writeln!(o, "loadline_requests_failed_total{l} {f}");
        }
        o.push_str("# HELP loadline_errors_total Requests without a usable response, by error kind.\n# TYPE loadline_errors_total counter\n");
        for (k, n) in &st.errors {
            let l = labels(&format!("kind=\"{}\"", label(k)));
            let _ = writeln!(o, "loadline_errors_total{l} {n}");
        }
        let bare = labels("");
        let _ = write!(
            o,
            "# HELP loadline_iterations_total Completed iterations.\n# TYPE loadline_iterations_total counter\nloadline_iterations_total{bare} {}\n\
# HELP loadline_dropped_iterations_total Open-model arrivals dropped at max_vus.\n# TYPE loadline_dropped_iterations_total counter\nloadline_dropped_iterations_total{bare} {}\n",
            st.iterations, st.dropped
        );
        if let Some(p) = &st.last {
            let _ = write!(
                o,
                "# HELP loadline_vus Active VUs.\n# TYPE loadline_vus gauge\nloadline_vus{bare} {}\n",
                p.vus
            );
            o.push_str("# HELP loadline_latency_ms Latency percentiles over the last interval, by step.\n# TYPE loadline_latency_ms gauge\n");
            for (step, g) in &p.groups {
                if let Some(l) = g.latency_ms {
                    for (q, v) in [("0.5", l.p50), ("0.95", l.p95), ("0.99", l.p99)] {
                        let l = labels(&format!("step=\"{}\",quantile=\"{q}\"", label(step)));
                        let _ = writeln!(o, "loadline_latency_ms{l} {v}");
                    }
                }
            }
            if let Some(lag) = p.schedule_lag_p99_ms {
                let _ = write!(o, "# HELP loadline_schedule_lag_p99_ms Open-model schedule lag p99 over the last interval.\n# TYPE loadline_schedule_lag_p99_ms gauge\nloadline_schedule_lag_p99_ms{bare} {lag}\n");
            }
            if !p.monitors.is_empty() {
                o.push_str("# HELP loadline_monitor Monitored values of the system under test, the host and loadline.\n# TYPE loadline_monitor gauge\n");
                for (k, v) in &p.monitors {
                    let l = labels(&format!("series=\"{}\"", label(k)));
                    let _ = writeln!(o, "loadline_monitor{l} {v}");
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
        tokio::spawn(accept(listener, self.clone(), cancel));
        Ok(bound)
    }

    /// The answer to one request: the exposition text at `/metrics` (and `/`),
    /// 404 elsewhere.
    fn answer<B>(&self, request: &Request<B>) -> Response<Full<Bytes>> {
        let found =
            request.method() == Method::GET && matches!(request.uri().path(), "/metrics" | "/");
        let (status, content_type, body) = if found {
            (StatusCode::OK, EXPOSITION_TYPE, self.render())
        } else {
            (
                StatusCode::NOT_FOUND,
                "text/plain; charset=utf-8",
                "not found: try /metrics\n".to_owned(),
            )
        };
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        response
    }
}

/// The media type of the text exposition format.
const EXPOSITION_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// How long a client may take to send its request head, and an answer may take
/// to finish once the exporter is told to stop.
const PATIENCE: Duration = Duration::from_secs(5);

/// Accepts connections until `cancel`, each served by hyper on its own task. A
/// connection carries one request (as a scrape needs), then closes.
async fn accept(listener: TcpListener, sink: PromSink, cancel: CancellationToken) {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(PATIENCE)
        .keep_alive(false);
    loop {
        let tcp = tokio::select! {
            () = cancel.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(error) => {
                    // Out of file descriptors, say: wait a little before trying again.
                    tracing::debug!(%error, "prometheus exporter: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let sink = sink.clone();
        let service = service_fn(move |request| {
            let response = sink.answer(&request);
            async move { Ok::<_, Infallible>(response) }
        });
        let connection = http.serve_connection(TokioIo::new(tcp), service);
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                () = cancel.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(PATIENCE, connection).await;
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;
    use http_body_util::{BodyExt, Empty};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Asks `path` of the exporter at `addr` with hyper's client, on a
    /// connection of its own; answers the status, the content type and the body.
    async fn get(addr: SocketAddr, path: &str) -> (StatusCode, String, String) {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .unwrap();
        tokio::spawn(connection);
        let request = Request::get(path)
            .header(hyper::header::HOST, addr.to_string())
            .body(Empty::<Bytes>::new())
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        let status = response.status();
        let content_type = response.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_owned();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            content_type,
            String::from_utf8(body.to_vec()).unwrap(),
        )
    }

    #[tokio::test]
    async fn answers_a_real_http_get_and_stops_when_cancelled() {
        let mut sink = PromSink::default();
        for p in &fixtures::series() {
            sink.point(p);
        }
        let cancel = CancellationToken::new();
        let addr = sink
            .serve("127.0.0.1:0".parse().unwrap(), cancel.clone())
            .await
            .unwrap();
        let exchanges = async {
            let (status, content_type, body) = get(addr, "/metrics").await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
            assert!(body.contains("\nloadline_vus 12\n"), "{body}");
            assert_eq!(body, sink.render());

            let (status, _, body) = get(addr, "/nothing/here").await;
            assert_eq!(status, StatusCode::NOT_FOUND);
            assert_eq!(body, "not found: try /metrics\n");

            cancel.cancel();
            // The listener goes away soon after: connecting is then refused.
            while tokio::net::TcpStream::connect(addr).await.is_ok() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), exchanges)
            .await
            .expect("the exporter answers and stops within 10 s");
    }

    #[tokio::test]
    async fn a_taken_port_is_an_error() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let error = PromSink::default()
            .serve(addr, CancellationToken::new())
            .await
            .unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::AddrInUse);
    }

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
