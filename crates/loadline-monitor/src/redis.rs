//! Redis servers under test: their own statistics (`INFO`), sampled each
//! interval on one connection of the monitor's own (short connect and reply
//! timeouts), counters turned into per-second rates between samples.
//!
//! | series (each labelled `{server=NAME}`) | from `INFO` |
//! |---|---|
//! | `redis.keyspace_hits_per_s`, `redis.keyspace_misses_per_s` | `keyspace_hits`, `keyspace_misses` |
//! | `redis.hit_ratio` | hits / (hits + misses) over the interval (absent when there were no lookups) |
//! | `redis.keyspace_hits`, `redis.keyspace_misses` | the lookups since the monitor's first sample: over a run, `last` of each gives the run's hit ratio as the server saw it |
//! | `redis.evicted_keys_per_s`, `redis.expired_keys_per_s` | `evicted_keys`, `expired_keys` |
//! | `redis.ops_per_s` | `total_commands_processed`, less the monitor's own `INFO` |
//! | `redis.used_memory_bytes` | `used_memory` |
//! | `redis.connected_clients` | `connected_clients`, less the monitor's own connection |
//!
//! The counts are the server's, whoever sends the commands: on a shared server
//! they include other clients. A server that cannot be reached (or a sample that
//! fails) is a warning once per failure streak; its series leave the snapshot
//! and the monitor keeps trying each interval on a new connection. It never
//! slows or stops the load.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use loadline_core::monitor::MonitorValue;
use loadline_core::protocol::BoxFuture;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client};
use tokio_util::sync::CancellationToken;

use crate::board::{series_key, value, Slot};
use crate::connected::{self, ConnectedSampler};
use crate::database::redact;

/// How long connecting, and then one sample, may take.
const TIMEOUT: Duration = Duration::from_secs(2);

/// A Redis server to watch: from `monitor: { redis: … }`, by a name of the
/// scenario's `redis:` section (filled by the scenario loader) or by URL.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RedisMonitorSpec {
    /// The `server` label of its series: the scenario's name for it, or the
    /// URL's `host:port` when it was given by URL.
    pub name: String,
    /// A `redis://` or `rediss://` URL.
    pub url: String,
}

impl fmt::Debug for RedisMonitorSpec {
    // The URL may hold a password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisMonitorSpec")
            .field("name", &self.name)
            .field("url", &redact(&self.url))
            .finish()
    }
}

impl RedisMonitorSpec {
    /// The spec of a server given by URL, named by its `host:port`.
    pub fn from_url(url: &str) -> Self {
        let name = url::Url::parse(url)
            .ok()
            .and_then(|u| {
                let host = u.host_str()?.to_owned();
                Some(format!("{host}:{}", u.port().unwrap_or(6379)))
            })
            .unwrap_or_else(|| "redis".into());
        Self {
            name,
            url: url.to_owned(),
        }
    }
}

/// A checked server to watch.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) name: String,
    pub(crate) redacted: String,
    client: Client,
}

impl Target {
    pub(crate) fn new(spec: &RedisMonitorSpec) -> Result<Self, String> {
        let lower = spec.url.to_ascii_lowercase();
        if !(lower.starts_with("redis://") || lower.starts_with("rediss://")) {
            return Err(format!(
                "`{}`: expected a redis:// or rediss:// URL",
                redact(&spec.url)
            ));
        }
        let client = Client::open(spec.url.as_str())
            .map_err(|e| format!("`{}` is not a usable Redis URL: {e}", redact(&spec.url)))?;
        Ok(Self {
            name: spec.name.clone(),
            redacted: redact(&spec.url),
            client,
        })
    }

    async fn connect(&self) -> redis::RedisResult<MultiplexedConnection> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(TIMEOUT)
            .set_response_timeout(TIMEOUT);
        self.client
            .get_multiplexed_async_connection_with_config(&config)
            .await
    }
}

/// The figures of one `INFO` reply that the series are made of.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Raw {
    counters: HashMap<&'static str, f64>,
    gauges: HashMap<&'static str, f64>,
}

const COUNTERS: [&str; 5] = [
    "keyspace_hits",
    "keyspace_misses",
    "evicted_keys",
    "expired_keys",
    "total_commands_processed",
];
const GAUGES: [&str; 2] = ["used_memory", "connected_clients"];

/// Reads the `name:value` lines of an `INFO` reply.
pub(crate) fn parse_info(text: &str) -> Raw {
    let mut raw = Raw::default();
    for line in text.lines() {
        let Some((name, v)) = line.trim_end().split_once(':') else {
            continue;
        };
        let Ok(v) = v.parse::<f64>() else {
            continue;
        };
        if let Some(c) = COUNTERS.iter().find(|c| **c == name) {
            raw.counters.insert(c, v);
        } else if let Some(g) = GAUGES.iter().find(|g| **g == name) {
            raw.gauges.insert(g, v);
        }
    }
    raw
}

/// Turns samples into series values: rates and the hit ratio between two
/// samples, gauges as they are.
#[derive(Debug)]
pub(crate) struct Rates {
    name: String,
    last: Option<(Instant, Raw)>,
    /// The hit and miss counters of the first sample: the totals count from
    /// there.
    base: Option<(f64, f64)>,
}

impl Rates {
    pub(crate) fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            last: None,
            base: None,
        }
    }

    fn key(&self, series: &str) -> String {
        series_key(series, [("server", self.name.as_str())])
    }

    /// The values of a sample taken at `at`.
    pub(crate) fn values(&mut self, at: Instant, raw: Raw) -> Vec<MonitorValue> {
        let mut out = Vec::new();
        if let Some(v) = raw.gauges.get("used_memory") {
            out.extend(value(self.key("redis.used_memory_bytes"), *v));
        }
        if let Some(v) = raw.gauges.get("connected_clients") {
            // The monitor's own connection is not the load's.
            out.extend(value(
                self.key("redis.connected_clients"),
                (v - 1.0).max(0.0),
            ));
        }
        if let (Some(hits), Some(misses)) = (
            raw.counters.get("keyspace_hits").copied(),
            raw.counters.get("keyspace_misses").copied(),
        ) {
            let mut base = *self.base.get_or_insert((hits, misses));
            // Counters that went back (a restart, CONFIG RESETSTAT) count anew.
            if hits < base.0 || misses < base.1 {
                base = (0.0, 0.0);
                self.base = Some(base);
            }
            out.extend(value(self.key("redis.keyspace_hits"), hits - base.0));
            out.extend(value(self.key("redis.keyspace_misses"), misses - base.1));
        }
        if let Some((then, before)) = &self.last {
            let secs = at.duration_since(*then).as_secs_f64();
            let delta = |name: &str| {
                let now = raw.counters.get(name)?;
                let was = before.counters.get(name)?;
                // A counter that went back: the server restarted, or CONFIG
                // RESETSTAT.
                (now >= was).then_some(now - was)
            };
            if secs > 0.0 {
                let rate = |d: Option<f64>| d.map(|d| d.max(0.0) / secs);
                for (series, v) in [
                    ("redis.keyspace_hits_per_s", rate(delta("keyspace_hits"))),
                    (
                        "redis.keyspace_misses_per_s",
                        rate(delta("keyspace_misses")),
                    ),
                    ("redis.evicted_keys_per_s", rate(delta("evicted_keys"))),
                    ("redis.expired_keys_per_s", rate(delta("expired_keys"))),
                    // The monitor's own INFO is one command.
                    (
                        "redis.ops_per_s",
                        rate(delta("total_commands_processed").map(|d| d - 1.0)),
                    ),
                ] {
                    if let Some(v) = v {
                        out.extend(value(self.key(series), v));
                    }
                }
            }
            let ratio = delta("keyspace_hits")
                .zip(delta("keyspace_misses"))
                .and_then(|(hit, miss)| (hit + miss > 0.0).then(|| hit / (hit + miss)));
            if let Some(r) = ratio {
                out.extend(value(self.key("redis.hit_ratio"), r));
            }
        }
        self.last = Some((at, raw));
        out
    }
}

/// Samples `target` every `every` until `stop`.
pub(crate) async fn run(target: Target, slot: Slot, every: Duration, stop: CancellationToken) {
    let rates = Rates::new(&target.name);
    let sampler = Sampler { target, rates };
    connected::drive_connected(sampler, slot, every, TIMEOUT, stop).await;
}

/// A Redis server's `INFO`, read over a connection of the monitor's own.
struct Sampler {
    target: Target,
    rates: Rates,
}

impl ConnectedSampler for Sampler {
    type Conn = MultiplexedConnection;

    fn what(&self) -> String {
        format!(
            "redis monitor `{}` ({})",
            self.target.name, self.target.redacted
        )
    }

    fn answers_again(&self) -> &'static str {
        "the Redis server answers again"
    }

    fn connect(&self) -> BoxFuture<'_, Result<Self::Conn, String>> {
        Box::pin(async { self.target.connect().await.map_err(|e| e.to_string()) })
    }

    fn sample<'a>(
        &'a mut self,
        conn: &'a mut Self::Conn,
    ) -> BoxFuture<'a, Result<Vec<MonitorValue>, String>> {
        Box::pin(async move {
            let text: String = redis::cmd("INFO")
                .query_async(conn)
                .await
                .map_err(|e| format!("INFO failed: {e}"))?;
            Ok(self.rates.values(Instant::now(), parse_info(&text)))
        })
    }

    fn reset(&mut self) {
        self.rates = Rates::new(&self.target.name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(values: &[MonitorValue]) -> HashMap<String, f64> {
        values.iter().map(|v| (v.series.clone(), v.value)).collect()
    }

    fn info(hits: u64, misses: u64, commands: u64) -> String {
        format!(
            "# Stats\r\ntotal_commands_processed:{commands}\r\nkeyspace_hits:{hits}\r\n\
             keyspace_misses:{misses}\r\nevicted_keys:0\r\nexpired_keys:2\r\n\
             # Memory\r\nused_memory:1048576\r\nused_memory_human:1.00M\r\n\
             # Clients\r\nconnected_clients:4\r\n"
        )
    }

    #[test]
    fn rates_and_the_hit_ratio_are_over_the_interval() {
        let mut rates = Rates::new("cache");
        let t0 = Instant::now();
        let first = series(&rates.values(t0, parse_info(&info(100, 100, 1000))));
        assert_eq!(
            first.get("redis.used_memory_bytes{server=cache}"),
            Some(&1048576.0)
        );
        assert_eq!(
            first.get("redis.connected_clients{server=cache}"),
            Some(&3.0)
        );
        assert!(!first.contains_key("redis.hit_ratio{server=cache}"));
        assert_eq!(first.get("redis.keyspace_hits{server=cache}"), Some(&0.0));
        let second = series(&rates.values(
            t0 + Duration::from_secs(2),
            parse_info(&info(190, 110, 1201)),
        ));
        assert_eq!(
            second.get("redis.keyspace_hits_per_s{server=cache}"),
            Some(&45.0)
        );
        assert_eq!(
            second.get("redis.keyspace_misses_per_s{server=cache}"),
            Some(&5.0)
        );
        assert_eq!(second.get("redis.hit_ratio{server=cache}"), Some(&0.9));
        assert_eq!(second.get("redis.keyspace_hits{server=cache}"), Some(&90.0));
        assert_eq!(
            second.get("redis.keyspace_misses{server=cache}"),
            Some(&10.0)
        );
        assert_eq!(second.get("redis.ops_per_s{server=cache}"), Some(&100.0));
        assert_eq!(
            second.get("redis.expired_keys_per_s{server=cache}"),
            Some(&0.0)
        );
        // No lookups in an interval: no ratio.
        let third = series(&rates.values(
            t0 + Duration::from_secs(3),
            parse_info(&info(190, 110, 1202)),
        ));
        assert!(!third.contains_key("redis.hit_ratio{server=cache}"));
    }

    #[test]
    fn servers_given_by_url_are_named_by_host_and_port() {
        assert_eq!(
            RedisMonitorSpec::from_url("redis://:pw@127.0.0.1:6380/2").name,
            "127.0.0.1:6380"
        );
        assert_eq!(
            RedisMonitorSpec::from_url("redis://cache.local").name,
            "cache.local:6379"
        );
        assert!(Target::new(&RedisMonitorSpec::from_url("http://x")).is_err());
    }
}
