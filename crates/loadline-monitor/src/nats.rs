//! NATS servers under test: their monitoring port (`nats-server -m 8222`),
//! `/varz` and `/jsz` read each interval over plain HTTP, counters turned into
//! per-second rates between samples.
//!
//! | series (each labelled `{server=HOST:PORT}`) | from |
//! |---|---|
//! | `nats.in_msgs_per_s`, `nats.out_msgs_per_s` | `/varz` `in_msgs`, `out_msgs` |
//! | `nats.in_bytes_per_s`, `nats.out_bytes_per_s` | `/varz` `in_bytes`, `out_bytes` |
//! | `nats.connections` | `/varz` `connections` |
//! | `nats.slow_consumers` | `/varz` `slow_consumers`, since the monitor's first sample |
//! | `nats.jetstream_messages`, `nats.jetstream_bytes`, `nats.jetstream_consumers` | `/jsz` `messages`, `bytes`, `consumers` (absent without JetStream) |
//!
//! The counts are the server's, whoever sends: on a shared server they
//! include other clients. A server that cannot be read is a warning once per
//! failure streak; its series leave the snapshot and the monitor keeps trying.

use std::time::{Duration, Instant};

use loadline_core::monitor::MonitorValue;
use serde_json::Value;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::board::{series_key, value, Slot};

/// How long one page may take.
const TIMEOUT: Duration = Duration::from_secs(2);

/// A NATS monitoring endpoint to watch.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) name: String,
    base: Url,
}

impl Target {
    /// The endpoint at `url` (`http://host:8222`).
    pub(crate) fn new(url: &str) -> Result<Self, String> {
        let base = Url::parse(url).map_err(|e| format!("`{url}` is not a URL: {e}"))?;
        if base.scheme() != "http" {
            return Err(format!(
                "`{url}`: expected the server's monitoring port as an http:// URL, e.g. http://127.0.0.1:8222"
            ));
        }
        let host = base.host_str().unwrap_or("nats").to_owned();
        let name = format!("{host}:{}", base.port().unwrap_or(8222));
        Ok(Self { name, base })
    }

    fn page(&self, path: &str) -> Url {
        let mut url = self.base.clone();
        url.set_path(path);
        url
    }
}

/// The figures of one sample.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Raw {
    counters: [Option<f64>; 5],
    connections: Option<f64>,
    jetstream: [Option<f64>; 3],
}

const COUNTERS: [(&str, &str); 5] = [
    ("in_msgs", "nats.in_msgs_per_s"),
    ("out_msgs", "nats.out_msgs_per_s"),
    ("in_bytes", "nats.in_bytes_per_s"),
    ("out_bytes", "nats.out_bytes_per_s"),
    ("slow_consumers", ""),
];
const JETSTREAM: [(&str, &str); 3] = [
    ("messages", "nats.jetstream_messages"),
    ("bytes", "nats.jetstream_bytes"),
    ("consumers", "nats.jetstream_consumers"),
];

/// Reads a `/varz` page and, when there is one, a `/jsz` page.
pub(crate) fn parse(varz: &str, jsz: Option<&str>) -> Result<Raw, String> {
    let varz: Value = serde_json::from_str(varz).map_err(|e| format!("/varz is not JSON: {e}"))?;
    let number = |doc: &Value, key: &str| doc.get(key).and_then(Value::as_f64);
    let mut raw = Raw {
        connections: number(&varz, "connections"),
        ..Raw::default()
    };
    for (slot, (key, _)) in raw.counters.iter_mut().zip(COUNTERS) {
        *slot = number(&varz, key);
    }
    if let Some(jsz) = jsz.and_then(|t| serde_json::from_str::<Value>(t).ok()) {
        for (slot, (key, _)) in raw.jetstream.iter_mut().zip(JETSTREAM) {
            *slot = number(&jsz, key);
        }
    }
    Ok(raw)
}

/// Turns samples into series values.
#[derive(Debug)]
pub(crate) struct Rates {
    name: String,
    last: Option<(Instant, Raw)>,
    slow_base: Option<f64>,
}

impl Rates {
    pub(crate) fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            last: None,
            slow_base: None,
        }
    }

    fn key(&self, series: &str) -> String {
        series_key(series, [("server", self.name.as_str())])
    }

    pub(crate) fn values(&mut self, at: Instant, raw: Raw) -> Vec<MonitorValue> {
        let mut out = Vec::new();
        if let Some(c) = raw.connections {
            // The monitor reads over HTTP: it is not a client connection.
            out.extend(value(self.key("nats.connections"), c));
        }
        if let Some(slow) = raw.counters[4] {
            let base = *self.slow_base.get_or_insert(slow);
            let base = if slow < base { 0.0 } else { base };
            out.extend(value(self.key("nats.slow_consumers"), slow - base));
        }
        for (v, (_, series)) in raw.jetstream.iter().zip(JETSTREAM) {
            if let Some(v) = v {
                out.extend(value(self.key(series), *v));
            }
        }
        if let Some((then, before)) = &self.last {
            let secs = at.duration_since(*then).as_secs_f64();
            let pairs = raw.counters.iter().zip(&before.counters).zip(COUNTERS);
            for ((now, was), (_, series)) in pairs.take(4) {
                if let (Some(now), Some(was)) = (now, was) {
                    if secs > 0.0 && now >= was {
                        out.extend(value(self.key(series), (now - was) / secs));
                    }
                }
            }
        }
        self.last = Some((at, raw));
        out
    }
}

/// Samples `target` every `every` until `stop`.
pub(crate) async fn run(target: Target, slot: Slot, every: Duration, stop: CancellationToken) {
    let what = format!("nats monitor {}", target.base);
    let mut rates = Rates::new(&target.name);
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => break,
            _ = ticker.tick() => {}
        }
        let read = async {
            let varz = crate::prometheus::fetch(&target.page("/varz")).await?;
            let jsz = crate::prometheus::fetch(&target.page("/jsz")).await.ok();
            parse(&varz, jsz.as_deref())
        };
        let sampled = tokio::select! {
            biased;
            () = stop.cancelled() => break,
            sampled = tokio::time::timeout(TIMEOUT, read) => sampled,
        };
        let problem = match sampled {
            Ok(Ok(raw)) => {
                if failing {
                    failing = false;
                    tracing::info!(monitor = %what, "the NATS server answers again");
                }
                slot.publish(rates.values(Instant::now(), raw));
                continue;
            }
            Ok(Err(problem)) => problem,
            Err(_) => format!("no answer within {TIMEOUT:?}"),
        };
        rates = Rates::new(&target.name);
        slot.publish(Vec::new());
        if !failing {
            failing = true;
            slot.warn(format!(
                "{what}: sample failed: {problem} (will keep trying each interval)"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parts of a nats-server 2.9 `/varz` and `/jsz`, as captured (this
    /// machine's server runs without its monitoring port).
    const VARZ: &str = r#"{"server_id":"NB…","version":"2.9.10","connections":3,
        "total_connections":12,"in_msgs":1000,"out_msgs":2000,"in_bytes":64000,
        "out_bytes":128000,"slow_consumers":2,"subscriptions":14,"jetstream":{}}"#;
    const JSZ: &str = r#"{"server_id":"NB…","streams":2,"consumers":3,"messages":450,
        "bytes":28800,"api":{"total":40,"errors":0}}"#;

    fn get(values: &[MonitorValue], series: &str) -> Option<f64> {
        let key = format!("{series}{{server=127.0.0.1:8222}}");
        values.iter().find(|v| v.series == key).map(|v| v.value)
    }

    #[test]
    fn varz_and_jsz_become_rates_and_gauges() {
        let target = Target::new("http://127.0.0.1:8222").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(target.page("/varz").as_str(), "http://127.0.0.1:8222/varz");
        let mut rates = Rates::new(&target.name);
        let t0 = Instant::now();
        let first = rates.values(t0, parse(VARZ, Some(JSZ)).unwrap_or_default());
        assert_eq!(get(&first, "nats.connections"), Some(3.0));
        assert_eq!(get(&first, "nats.slow_consumers"), Some(0.0));
        assert_eq!(get(&first, "nats.jetstream_messages"), Some(450.0));
        assert_eq!(get(&first, "nats.jetstream_consumers"), Some(3.0));
        assert_eq!(
            get(&first, "nats.in_msgs_per_s"),
            None,
            "a rate needs two samples"
        );
        let later = VARZ
            .replace(r#""in_msgs":1000"#, r#""in_msgs":1500"#)
            .replace(r#""out_msgs":2000"#, r#""out_msgs":3000"#)
            .replace(r#""slow_consumers":2"#, r#""slow_consumers":5"#);
        let second = rates.values(
            t0 + Duration::from_millis(500),
            parse(&later, None).unwrap_or_default(),
        );
        assert_eq!(get(&second, "nats.in_msgs_per_s"), Some(1000.0));
        assert_eq!(get(&second, "nats.out_msgs_per_s"), Some(2000.0));
        assert_eq!(get(&second, "nats.in_bytes_per_s"), Some(0.0));
        assert_eq!(get(&second, "nats.slow_consumers"), Some(3.0));
        assert_eq!(get(&second, "nats.jetstream_messages"), None);
        assert!(parse("<html>", None).is_err());
        assert!(Target::new("nats://127.0.0.1:4222").is_err());
    }
}
