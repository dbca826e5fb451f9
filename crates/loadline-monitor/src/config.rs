//! The `monitor:` block of a scenario as plain serde data, and its check into the
//! settings the samplers run with. Checking reports every problem it finds, each
//! with its path inside the block (`prometheus[0].url`).

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use loadline_core::duration::parse_duration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use url::{Host, Url};

use crate::database::{self, DatabaseMonitorSpec};
use crate::prometheus::exposition::Selector;
use crate::prometheus::Endpoint;
use crate::redis::{self as redis_monitor, RedisMonitorSpec};
use crate::MonitorError;

/// What to watch while the load runs. Every field is optional; with none, loadline
/// watches the host, itself, and — when the target is on this machine — the
/// process listening on the target's port.
///
/// ```yaml
/// monitor:
///   interval: 1s
///   processes:
///     - name: nginx
///     - port: 5432
///   prometheus:
///     - url: http://127.0.0.1:9090/metrics
///       series: [demo_shop_queue_depth, 'demo_shop_requests_total{route="/orders"}']
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MonitorConfig {
    /// How often every monitor samples, e.g. `1s` (the default) or `500ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// Processes of the system under test to watch, each by `pid`, by `name` or by
    /// the TCP `port` it listens on (on this machine).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub processes: Vec<ProcessSpec>,
    /// Also watch the process listening on the target's port when the target's
    /// host is this machine (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_process: Option<bool>,
    /// Watch this machine's CPU, memory, load and network (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<bool>,
    /// Prometheus endpoints of the system under test to scrape.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prometheus: Vec<PrometheusSpec>,
    /// Watch loadline's own CPU and memory, and warn when it nears saturation
    /// (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_monitor: Option<bool>,
    /// Databases of the scenario's `databases:` to watch, by name (one, or a
    /// list): PostgreSQL's and MySQL/MariaDB's own statistics, sampled on a
    /// connection of the monitor's own.
    #[serde(
        default,
        deserialize_with = "database_names",
        skip_serializing_if = "Vec::is_empty"
    )]
    #[schemars(with = "Option<DatabaseNames>")]
    pub database: Vec<String>,
    /// The databases to watch with their URLs, filled from `database` by the
    /// scenario loader (which knows the URLs).
    #[serde(skip)]
    #[schemars(skip)]
    pub databases: Vec<DatabaseMonitorSpec>,
    /// Redis servers to watch (one, or a list): a name from the scenario's
    /// `redis:` section, or a `redis://` URL. Their `INFO` statistics
    /// (keyspace hits and misses, hit ratio, evictions, memory, clients,
    /// commands per second) are sampled on a connection of the monitor's own.
    #[serde(
        default,
        deserialize_with = "redis_names",
        skip_serializing_if = "Vec::is_empty"
    )]
    #[schemars(with = "Option<DatabaseNames>")]
    pub redis: Vec<String>,
    /// The Redis servers to watch with their URLs: those of `redis` given by
    /// URL, and those given by name filled by the scenario loader.
    #[serde(skip)]
    #[schemars(skip)]
    pub redis_servers: Vec<RedisMonitorSpec>,
    /// NATS servers to watch (one, or a list), by their monitoring port's
    /// URL (`http://127.0.0.1:8222`, the server started with `-m 8222`):
    /// `/varz` and `/jsz` (messages and bytes per second, connections, slow
    /// consumers, JetStream messages).
    #[serde(
        default,
        deserialize_with = "database_names",
        skip_serializing_if = "Vec::is_empty"
    )]
    #[schemars(with = "Option<DatabaseNames>")]
    pub nats: Vec<String>,
    /// Mosquitto brokers to watch (one, or a list), by their `mqtt://` URL:
    /// their `$SYS/broker/#` topics (clients, publishes and bytes per second,
    /// stored and dropped messages), which Mosquitto publishes every
    /// `sys_interval` (10s by default).
    #[serde(
        default,
        deserialize_with = "database_names",
        skip_serializing_if = "Vec::is_empty"
    )]
    #[schemars(with = "Option<DatabaseNames>")]
    pub mosquitto: Vec<String>,
    /// RabbitMQ queues to watch: `{ url: "amqp://guest:guest@127.0.0.1:5672/%2f",
    /// queues: [orders] }`, their depth and consumers (read by passive
    /// declares: no management plugin needed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rabbitmq: Option<RabbitMqSpec>,
}

/// The RabbitMQ queues to watch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RabbitMqSpec {
    /// The broker, `amqp://user:password@host:5672/vhost`.
    pub url: String,
    /// The queues whose depth and consumers are read.
    pub queues: Vec<String>,
}

/// Reads `redis: cache` or `redis: [cache, "redis://127.0.0.1:6380"]`.
fn redis_names<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    database_names(d)
}

/// Whether an entry of `redis` is a URL (not a name).
pub(crate) fn is_url(entry: &str) -> bool {
    entry.contains("://")
}

/// One database name, or a list of them, as the schema describes `database`.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum DatabaseNames {
    One(String),
    Many(Vec<String>),
}

/// Reads `database: main` or `database: [main, replica]`.
fn database_names<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a database name from `databases:`, or a list of them")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(vec![v.to_owned()])
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut names = Vec::new();
            while let Some(name) = seq.next_element::<String>()? {
                names.push(name);
            }
            Ok(names)
        }
    }
    d.deserialize_any(V)
}

/// One process (or group of processes) to watch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProcessSpec {
    /// The process with this PID; once it exits it is not looked for again.
    Pid(u32),
    /// Every process whose executable has this name (as `ps -e` shows it, or the
    /// file name of its command); looked for again when they go away.
    Name(String),
    /// The processes listening on this TCP port on this machine; looked for again
    /// when they go away (a restart).
    Port(u16),
}

/// A Prometheus endpoint to scrape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrometheusSpec {
    /// The page to scrape, e.g. `http://127.0.0.1:9090/metrics` (plain HTTP), or a
    /// path such as `/metrics` on the scenario's target (after `--target`).
    pub url: String,
    /// The series to keep: a metric name, optionally with labels to match, e.g.
    /// `demo_shop_requests_total{route="/orders"}`. Empty keeps every series.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub series: Vec<String>,
    /// The metric names to show as per-second rates. Without it: counters by their
    /// `# TYPE` and names ending in `_total`, `_count` or `_sum`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<Vec<String>>,
    /// How long a scrape may take, e.g. `2s` (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

/// One thing wrong in a [`MonitorConfig`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// Where, inside the `monitor:` block: `interval`, `prometheus[1].series[0]`.
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
const DEFAULT_SCRAPE_TIMEOUT: Duration = Duration::from_secs(2);
const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// A checked [`MonitorConfig`], with the run's target taken into account.
#[derive(Debug)]
pub(crate) struct Settings {
    pub interval: Duration,
    /// Each process to watch, with where it was asked for.
    pub processes: Vec<(ProcessSpec, String)>,
    pub host: bool,
    /// Watch every network interface, not only the loopback.
    pub all_interfaces: bool,
    pub self_monitor: bool,
    pub prometheus: Vec<Endpoint>,
    pub databases: Vec<database::Target>,
    pub redis: Vec<redis_monitor::Target>,
    pub nats: Vec<crate::nats::Target>,
    pub mosquitto: Vec<crate::mosquitto::Target>,
    pub rabbitmq: Option<crate::rabbitmq::Target>,
    /// Things to tell the user when the monitors start.
    pub notes: Vec<String>,
}

impl MonitorConfig {
    /// Checks the configuration, reporting every problem at once.
    ///
    /// ```
    /// use loadline_monitor::{MonitorConfig, PrometheusSpec};
    ///
    /// let config = MonitorConfig {
    ///     interval: Some("soon".into()),
    ///     prometheus: vec![PrometheusSpec {
    ///         url: "not a url".into(),
    ///         series: vec![],
    ///         rate: None,
    ///         timeout: None,
    ///     }],
    ///     ..MonitorConfig::default()
    /// };
    /// let error = config.validate().unwrap_err().to_string();
    /// assert!(error.contains("interval: "));
    /// assert!(error.contains("prometheus[0].url: "));
    /// ```
    pub fn validate(&self) -> Result<(), MonitorError> {
        self.checked(None, false).map(|_| ())
    }

    pub(crate) fn settings(&self, target: Option<&Url>) -> Result<Settings, MonitorError> {
        self.checked(target, true)
    }

    /// The settings, every problem reported; `for_run`: a run's (a scrape path
    /// then needs the target), not `validate`'s.
    fn checked(&self, target: Option<&Url>, for_run: bool) -> Result<Settings, MonitorError> {
        let mut problems = Vec::new();
        let mut notes = Vec::new();
        let mut problem =
            |path: String, message: String| problems.push(ConfigProblem { path, message });

        let interval = match &self.interval {
            None => DEFAULT_INTERVAL,
            Some(text) => match parse_duration(text) {
                Ok(d) if d >= MIN_INTERVAL => d,
                Ok(_) => {
                    problem(
                        "interval".into(),
                        format!("`{text}` is too short: at least 10ms"),
                    );
                    DEFAULT_INTERVAL
                }
                Err(message) => {
                    problem("interval".into(), message);
                    DEFAULT_INTERVAL
                }
            },
        };

        let mut processes = Vec::new();
        for (i, spec) in self.processes.iter().enumerate() {
            let path = format!("processes[{i}]");
            match spec {
                ProcessSpec::Name(name) if name.trim().is_empty() => {
                    problem(
                        format!("{path}.name"),
                        "expected a process name, found an empty string".into(),
                    );
                }
                ProcessSpec::Port(0) => problem(
                    format!("{path}.port"),
                    "expected a TCP port from 1 to 65535".into(),
                ),
                ProcessSpec::Pid(0) => problem(
                    format!("{path}.pid"),
                    "expected a PID greater than 0".into(),
                ),
                _ => processes.push((spec.clone(), format!("monitor.{path}"))),
            }
        }
        if let Some(target) = target {
            if self.target_process.unwrap_or(true) && is_loopback(target) {
                if let Some(port) = target.port_or_known_default() {
                    let spec = ProcessSpec::Port(port);
                    if !processes.iter().any(|(s, _)| *s == spec) {
                        processes.push((spec, format!("the target's port {port}")));
                    }
                }
            }
        }

        let mut prometheus = Vec::new();
        for (i, spec) in self.prometheus.iter().enumerate() {
            let path = format!("prometheus[{i}]");
            // A path is on the target (`/metrics`), wherever `--target` sends the load.
            let parsed = match (spec.url.starts_with('/'), target) {
                (true, Some(t)) => Some(t.join(&spec.url)),
                // Checked without a run (`validate`): a path is fine.
                (true, None) if !for_run => None,
                (true, None) => {
                    notes.push(format!(
                        "prometheus monitor `{}`: a path is scraped on the scenario's target, and this run has none; not scraped",
                        spec.url
                    ));
                    None
                }
                (false, _) => Some(Url::parse(&spec.url)),
            };
            let url = match parsed {
                None => None,
                Some(Ok(url)) if url.scheme() == "http" && url.host().is_some() => Some(url),
                Some(Ok(url)) if url.scheme() == "https" => {
                    notes.push(format!(
                        "prometheus monitor {url}: https is not supported; this endpoint is not \
                         scraped (use its plain http address)"
                    ));
                    None
                }
                Some(Ok(url)) => {
                    problem(
                        format!("{path}.url"),
                        format!("`{url}`: expected an http:// URL with a host"),
                    );
                    None
                }
                Some(Err(e)) => {
                    problem(
                        format!("{path}.url"),
                        format!("`{}` is not a URL: {e}", spec.url),
                    );
                    None
                }
            };
            let mut selectors = Vec::new();
            for (j, text) in spec.series.iter().enumerate() {
                match Selector::parse(text) {
                    Ok(selector) => selectors.push(selector),
                    Err(message) => problem(format!("{path}.series[{j}]"), message),
                }
            }
            let timeout = match &spec.timeout {
                None => DEFAULT_SCRAPE_TIMEOUT,
                Some(text) => match parse_duration(text) {
                    Ok(d) if !d.is_zero() => d,
                    Ok(_) => {
                        problem(
                            format!("{path}.timeout"),
                            "expected a timeout longer than 0".into(),
                        );
                        DEFAULT_SCRAPE_TIMEOUT
                    }
                    Err(message) => {
                        problem(format!("{path}.timeout"), message);
                        DEFAULT_SCRAPE_TIMEOUT
                    }
                },
            };
            if let Some(url) = url {
                prometheus.push(Endpoint {
                    url,
                    selectors,
                    rate: spec.rate.clone(),
                    timeout,
                });
            }
        }

        let mut databases = Vec::new();
        for (i, spec) in self.databases.iter().enumerate() {
            match database::Target::new(spec) {
                Ok(target) => databases.push(target),
                Err(message) => problem(format!("databases[{i}] ({})", spec.name), message),
            }
        }
        for name in &self.database {
            if !self.databases.iter().any(|d| d.name == *name) {
                notes.push(format!(
                    "database monitor `{name}`: its URL is not known (the scenario's \
                     `databases:` gives it); it is not watched"
                ));
            }
        }

        let mut redis = Vec::new();
        let by_url = self
            .redis
            .iter()
            .filter(|e| is_url(e))
            .map(|url| RedisMonitorSpec::from_url(url));
        let given: Vec<RedisMonitorSpec> =
            self.redis_servers.iter().cloned().chain(by_url).collect();
        for (i, spec) in given.iter().enumerate() {
            if given[..i].iter().any(|s| s.url == spec.url) {
                continue;
            }
            match redis_monitor::Target::new(spec) {
                Ok(target) => redis.push(target),
                Err(message) => problem(format!("redis ({})", spec.name), message),
            }
        }
        for name in self.redis.iter().filter(|e| !is_url(e)) {
            if !self.redis_servers.iter().any(|s| s.name == *name) {
                notes.push(format!(
                    "redis monitor `{name}`: its URL is not known (the scenario's \
                     `redis:` section gives it); it is not watched"
                ));
            }
        }

        let mut nats = Vec::new();
        for url in &self.nats {
            match crate::nats::Target::new(url) {
                Ok(target) => nats.push(target),
                Err(message) => problem("nats".into(), message),
            }
        }

        let mut mosquitto = Vec::new();
        for url in &self.mosquitto {
            match crate::mosquitto::Target::new(url) {
                Ok(target) => mosquitto.push(target),
                Err(message) => problem("mosquitto".into(), message),
            }
        }
        let mut rabbitmq = None;
        if let Some(spec) = &self.rabbitmq {
            match crate::rabbitmq::Target::new(&spec.url, spec.queues.clone()) {
                Ok(target) => rabbitmq = Some(target),
                Err(message) => problem("rabbitmq".into(), message),
            }
        }

        if !problems.is_empty() {
            return Err(MonitorError::Invalid(problems));
        }
        Ok(Settings {
            interval,
            processes,
            host: self.host.unwrap_or(true),
            all_interfaces: target.is_some_and(|t| !is_loopback(t)),
            self_monitor: self.self_monitor.unwrap_or(true),
            prometheus,
            databases,
            redis,
            nats,
            mosquitto,
            rabbitmq,
            notes,
        })
    }
}

/// Whether the URL's host is this machine's loopback.
pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(domain)) => {
            let domain = domain.trim_end_matches('.').to_ascii_lowercase();
            domain == "localhost" || domain.ends_with(".localhost")
        }
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn reads_from_json_with_every_process_form() {
        let config: MonitorConfig = serde_json::from_str(
            r#"{"interval": "500ms", "processes": [{"pid": 42}, {"name": "nginx"}, {"port": 8080}],
                "host": false, "prometheus": [{"url": "http://127.0.0.1:9090/metrics",
                "series": ["up"], "rate": ["jobs"], "timeout": "1s"}]}"#,
        )
        .unwrap();
        assert_eq!(
            config.processes,
            [
                ProcessSpec::Pid(42),
                ProcessSpec::Name("nginx".into()),
                ProcessSpec::Port(8080)
            ]
        );
        let settings = config.settings(None).unwrap();
        assert_eq!(settings.interval, Duration::from_millis(500));
        assert!(!settings.host);
        assert!(settings.self_monitor);
        assert_eq!(settings.prometheus[0].timeout, Duration::from_secs(1));
    }

    #[test]
    fn a_scrape_path_is_on_the_target() {
        let config: MonitorConfig =
            serde_json::from_str(r#"{"prometheus": [{"url": "/metrics", "series": ["up"]}]}"#)
                .unwrap();
        assert!(config.validate().is_ok());
        let settings = config
            .settings(Some(&url("http://127.0.0.1:8123/api")))
            .unwrap();
        assert_eq!(
            settings.prometheus[0].url.as_str(),
            "http://127.0.0.1:8123/metrics"
        );
        // A run without a target scrapes nothing, and says why.
        let settings = config.settings(None).unwrap();
        assert!(settings.prometheus.is_empty());
        assert!(settings
            .notes
            .iter()
            .any(|n| n.contains("this run has none")));
    }

    #[test]
    fn unknown_fields_and_process_forms_are_refused() {
        assert!(serde_json::from_str::<MonitorConfig>(r#"{"intervall": "1s"}"#).is_err());
        assert!(serde_json::from_str::<MonitorConfig>(r#"{"processes": [{"exe": "x"}]}"#).is_err());
        assert!(serde_json::from_str::<MonitorConfig>(
            r#"{"processes": [{"pid": 1, "name": "x"}]}"#
        )
        .is_err());
        assert!(
            serde_json::from_str::<PrometheusSpec>(r#"{"url": "http://a", "step": 1}"#).is_err()
        );
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let config = MonitorConfig {
            interval: Some("1 minute".into()),
            processes: vec![ProcessSpec::Port(0), ProcessSpec::Name(" ".into())],
            prometheus: vec![
                PrometheusSpec {
                    url: "ftp://127.0.0.1/metrics".into(),
                    series: vec!["ok".into(), "bad{x=1}".into()],
                    rate: None,
                    timeout: Some("0s".into()),
                },
                PrometheusSpec {
                    url: "https://127.0.0.1/metrics".into(),
                    series: vec![],
                    rate: None,
                    timeout: None,
                },
            ],
            ..MonitorConfig::default()
        };
        let Err(MonitorError::Invalid(problems)) = config.settings(None) else {
            panic!("expected problems");
        };
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "interval",
                "processes[0].port",
                "processes[1].name",
                "prometheus[0].url",
                "prometheus[0].series[1]",
                "prometheus[0].timeout"
            ]
        );
    }

    #[test]
    fn https_is_a_note_not_an_error() {
        let config = MonitorConfig {
            prometheus: vec![PrometheusSpec {
                url: "https://127.0.0.1/metrics".into(),
                series: vec![],
                rate: None,
                timeout: None,
            }],
            ..MonitorConfig::default()
        };
        let settings = config.settings(None).unwrap();
        assert!(settings.prometheus.is_empty());
        assert!(settings.notes[0].contains("https is not supported"));
    }

    #[test]
    fn a_loopback_target_adds_its_port_once() {
        let config = MonitorConfig::default();
        let s = config
            .settings(Some(&url("http://localhost:8080/api")))
            .unwrap();
        assert_eq!(
            s.processes,
            [(
                ProcessSpec::Port(8080),
                "the target's port 8080".to_string()
            )]
        );
        assert!(!s.all_interfaces);

        let s = config.settings(Some(&url("http://[::1]/"))).unwrap();
        assert_eq!(s.processes[0].0, ProcessSpec::Port(80));

        let s = config
            .settings(Some(&url("https://shop.example.com/")))
            .unwrap();
        assert!(s.processes.is_empty());
        assert!(s.all_interfaces);

        let off = MonitorConfig {
            target_process: Some(false),
            ..MonitorConfig::default()
        };
        assert!(off
            .settings(Some(&url("http://127.0.0.1:8080/")))
            .unwrap()
            .processes
            .is_empty());

        let listed = MonitorConfig {
            processes: vec![ProcessSpec::Port(8080)],
            ..MonitorConfig::default()
        };
        let s = listed
            .settings(Some(&url("http://127.0.0.1:8080/")))
            .unwrap();
        assert_eq!(s.processes.len(), 1);
    }

    #[test]
    fn the_schema_names_the_fields() {
        let schema = serde_json::to_string(&schemars::schema_for!(MonitorConfig)).unwrap();
        for field in [
            "interval",
            "processes",
            "target_process",
            "prometheus",
            "self_monitor",
            "pid",
            "port",
        ] {
            assert!(schema.contains(field), "{field} missing from {schema}");
        }
    }
}
