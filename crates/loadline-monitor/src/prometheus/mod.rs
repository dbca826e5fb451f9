//! Prometheus endpoints of the system under test: scraped over HTTP each
//! interval (asynchronously, with a timeout), the selected series kept as
//! `prom.<name>{labels}`, and counters turned into per-second rates between
//! scrapes as `prom.<name>:rate{labels}`. A scrape that fails is a warning once
//! per failure streak, and the endpoint's values leave the snapshot until it
//! answers again.

pub mod exposition;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use loadline_core::monitor::MonitorValue;
use tokio::net::TcpStream;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use url::{Host, Url};

use crate::board::{series_key, value, Slot};
use exposition::{MetricType, Sample, Selector};

/// Pages larger than this are refused (a metrics page is a few hundred KiB).
const MAX_PAGE: usize = 32 * 1024 * 1024;

/// One endpoint to scrape, checked.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    pub url: Url,
    pub selectors: Vec<Selector>,
    /// The names to treat as counters; `None`: by name and `# TYPE`.
    pub rate: Option<Vec<String>>,
    pub timeout: Duration,
}

/// Scrapes `endpoint` every `every` until `stop`.
pub(crate) async fn run(endpoint: Endpoint, slot: Slot, every: Duration, stop: CancellationToken) {
    let source = endpoint.url.to_string();
    let mut selection = Selection::new(endpoint.selectors.clone(), endpoint.rate.clone());
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut failing = false;
    let mut bad_lines_told = false;
    loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let scraped = tokio::select! {
            biased;
            () = stop.cancelled() => return,
            scraped = tokio::time::timeout(endpoint.timeout, fetch(&endpoint.url)) => scraped,
        };
        let text = match scraped {
            Ok(Ok(text)) => text,
            Ok(Err(problem)) => {
                fail(&slot, &mut failing, &source, &problem);
                continue;
            }
            Err(_) => {
                let problem = format!("no answer within {:?}", endpoint.timeout);
                fail(&slot, &mut failing, &source, &problem);
                continue;
            }
        };
        let at = Instant::now();
        if failing {
            failing = false;
            tracing::info!(endpoint = %source, "prometheus endpoint answers again");
        }
        let page = exposition::parse(&text);
        if let Some(first) = page.problems.first() {
            if !bad_lines_told {
                bad_lines_told = true;
                slot.warn(format!(
                    "prometheus monitor {source}: skipped {} line(s) that are not in the \
                     exposition format, the first at {first}",
                    page.problems.len()
                ));
            }
        }
        let mut warnings = Vec::new();
        let values = selection.apply(&page.samples, at, &source, &mut warnings);
        slot.publish(values);
        for warning in warnings {
            slot.warn(warning);
        }
    }
}

fn fail(slot: &Slot, failing: &mut bool, source: &str, problem: &str) {
    tracing::trace!(monitor = %source, %problem, "monitor sample failed");
    slot.publish(Vec::new());
    if !*failing {
        *failing = true;
        slot.warn(format!(
            "prometheus monitor {source}: scrape failed: {problem} (will keep trying each interval)"
        ));
    }
}

/// Fetches the page at `url` (plain HTTP/1.1).
pub(crate) async fn fetch(url: &Url) -> Result<String, String> {
    let port = url.port_or_known_default().unwrap_or(80);
    let stream = match url.host() {
        Some(Host::Domain(domain)) => TcpStream::connect((domain, port)).await,
        Some(Host::Ipv4(ip)) => TcpStream::connect((ip, port)).await,
        Some(Host::Ipv6(ip)) => TcpStream::connect((ip, port)).await,
        None => return Err("the URL has no host".into()),
    }
    .map_err(|e| format!("cannot connect: {e}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake failed: {e}"))?;
    let authority = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_owned(),
    };
    let target = &url[url::Position::BeforePath..url::Position::AfterQuery];
    let request = hyper::Request::get(target)
        .header(hyper::header::HOST, authority)
        .header(
            hyper::header::ACCEPT,
            "text/plain;version=0.0.4;q=1,*/*;q=0.1",
        )
        .header(hyper::header::USER_AGENT, "loadline-monitor")
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("cannot build the request: {e}"))?;
    let exchange = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("HTTP status {status}"));
        }
        let body = Limited::new(response.into_body(), MAX_PAGE)
            .collect()
            .await
            .map_err(|e| format!("cannot read the page: {e}"))?
            .to_bytes();
        Ok(String::from_utf8_lossy(&body).into_owned())
    };
    let mut connection = std::pin::pin!(connection);
    let mut exchange = std::pin::pin!(exchange);
    // The connection must be driven while the exchange runs; if it ends first
    // without an error, the exchange has everything it needs to finish.
    tokio::select! {
        result = &mut exchange => result,
        ended = &mut connection => match ended {
            Ok(()) => exchange.await,
            Err(e) => Err(format!("connection failed: {e}")),
        },
    }
}

/// Keeps the selected series of each scrape and the counters' last values.
#[derive(Debug)]
pub(crate) struct Selection {
    selectors: Vec<Selector>,
    rate: Option<Vec<String>>,
    last: HashMap<String, (f64, Instant)>,
    unmatched_told: Vec<bool>,
}

impl Selection {
    /// No selectors selects every series.
    pub(crate) fn new(selectors: Vec<Selector>, rate: Option<Vec<String>>) -> Self {
        let unmatched_told = vec![false; selectors.len()];
        Selection {
            selectors,
            rate,
            last: HashMap::new(),
            unmatched_told,
        }
    }

    /// Whether a sample counts up, so that its rate is what to show: those named
    /// in `rate`, or else counters by `# TYPE` and names ending in `_total`,
    /// `_count` or `_sum`.
    fn is_counter(&self, sample: &Sample) -> bool {
        match &self.rate {
            Some(names) => names
                .iter()
                .any(|n| *n == sample.name || *n == sample.family),
            None => {
                (sample.kind == MetricType::Counter && !sample.name.ends_with("_created"))
                    || ["_total", "_count", "_sum"]
                        .iter()
                        .any(|suffix| sample.name.ends_with(suffix))
            }
        }
    }

    /// The values of one scrape taken at `at`.
    pub(crate) fn apply(
        &mut self,
        samples: &[Sample],
        at: Instant,
        source: &str,
        warnings: &mut Vec<String>,
    ) -> Vec<MonitorValue> {
        let mut out = Vec::new();
        let mut counters = HashMap::new();
        let mut matched = vec![false; self.selectors.len()];
        for sample in samples {
            let mut hit = self.selectors.is_empty();
            for (i, selector) in self.selectors.iter().enumerate() {
                if selector.matches(sample) {
                    matched[i] = true;
                    hit = true;
                }
            }
            if !hit {
                continue;
            }
            let labels = sample.labels.iter().map(|(k, v)| (k.as_str(), v.as_str()));
            if !self.is_counter(sample) {
                out.extend(value(
                    series_key(&format!("prom.{}", sample.name), labels),
                    sample.value,
                ));
                continue;
            }
            let key = series_key(&format!("prom.{}:rate", sample.name), labels);
            if let Some(&(before, then)) = self.last.get(&key) {
                let seconds = at.saturating_duration_since(then).as_secs_f64();
                // A counter that went down was reset: it counted up from zero since.
                let increase = if sample.value >= before {
                    sample.value - before
                } else {
                    sample.value
                };
                if seconds > 0.0 {
                    out.extend(value(key.clone(), increase / seconds));
                }
            }
            if sample.value.is_finite() {
                counters.insert(key, (sample.value, at));
            }
        }
        self.last = counters;
        for (selector, (told, matched)) in self
            .selectors
            .iter()
            .zip(self.unmatched_told.iter_mut().zip(matched))
        {
            if !matched && !*told {
                *told = true;
                warnings.push(format!(
                    "prometheus monitor {source}: no series matches `{selector}`"
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(requests: f64, depth: f64) -> Vec<Sample> {
        exposition::parse(&format!(
            "# TYPE jobs counter\njobs{{queue=\"a\"}} 7\n\
             http_requests_total{{code=\"200\"}} {requests}\nqueue_depth {depth}\nother 1\n"
        ))
        .samples
    }

    fn get(values: &[MonitorValue], series: &str) -> Option<f64> {
        values.iter().find(|v| v.series == series).map(|v| v.value)
    }

    #[test]
    fn gauges_as_scraped_counters_as_rates() {
        let selectors = [
            "http_requests_total",
            "queue_depth",
            "jobs",
            "missing{a=\"b\"}",
        ]
        .iter()
        .map(|s| Selector::parse(s).unwrap())
        .collect();
        let mut selection = Selection::new(selectors, None);
        let t0 = Instant::now();
        let mut warnings = Vec::new();
        let first = selection.apply(&page(100.0, 3.0), t0, "src", &mut warnings);
        assert_eq!(
            first,
            vec![MonitorValue {
                series: "prom.queue_depth".into(),
                value: 3.0
            }]
        );
        assert_eq!(
            warnings,
            ["prometheus monitor src: no series matches `missing{a=\"b\"}`"]
        );

        let t1 = t0 + Duration::from_secs(2);
        let second = selection.apply(&page(160.0, 4.0), t1, "src", &mut warnings);
        assert_eq!(
            get(&second, "prom.http_requests_total:rate{code=200}"),
            Some(30.0)
        );
        assert_eq!(get(&second, "prom.jobs:rate{queue=a}"), Some(0.0));
        assert_eq!(get(&second, "prom.queue_depth"), Some(4.0));
        assert_eq!(get(&second, "prom.other"), None);
        assert_eq!(warnings.len(), 1, "an unmatched selector is told once");

        // The process restarted: its counter starts again from zero.
        let t2 = t1 + Duration::from_secs(1);
        let third = selection.apply(&page(5.0, 4.0), t2, "src", &mut warnings);
        assert_eq!(
            get(&third, "prom.http_requests_total:rate{code=200}"),
            Some(5.0)
        );
    }

    #[test]
    fn explicit_rate_names_replace_the_rules_and_no_selector_keeps_all() {
        let mut selection = Selection::new(Vec::new(), Some(vec!["queue_depth".into()]));
        let t0 = Instant::now();
        let mut warnings = Vec::new();
        let first = selection.apply(&page(1.0, 10.0), t0, "src", &mut warnings);
        assert_eq!(get(&first, "prom.http_requests_total{code=200}"), Some(1.0));
        assert_eq!(get(&first, "prom.other"), Some(1.0));
        let second = selection.apply(
            &page(1.0, 14.0),
            t0 + Duration::from_secs(4),
            "src",
            &mut warnings,
        );
        assert_eq!(get(&second, "prom.queue_depth:rate"), Some(1.0));
        assert!(warnings.is_empty());
    }
}
