//! loadline's monitors: what the system under test and loadline itself do while
//! the load runs, on the load's own timeline. [`Monitors::start`] turns a
//! [`MonitorConfig`] (the scenario's `monitor:` block) into samplers, each on its
//! own tokio task with its own timeout:
//!
//! | monitor | series |
//! |---|---|
//! | processes (by PID, name, or listening port; the target's by default) | `process.cpu_percent`, `process.rss_bytes`, `process.threads`, `process.fds`, labelled `{pid=…,name=…}` |
//! | the host | `host.cpu_user_percent`, `host.cpu_system_percent`, `host.cpu_iowait_percent`, `host.mem_used_bytes`, `host.mem_available_bytes`, `host.load1`, `host.net_rx_bytes_per_s{iface=…}`, `host.net_tx_bytes_per_s{iface=…}` |
//! | Prometheus endpoints | `prom.<name>{labels}` as scraped; counters as `prom.<name>:rate{labels}` per second |
//! | loadline itself | `loadline.cpu_percent`, `loadline.rss_bytes`, `loadline.cores`, `loadline.saturated` |
//! | Redis servers (`INFO`) | `redis.keyspace_hits_per_s`, `redis.keyspace_misses_per_s`, `redis.hit_ratio`, `redis.evicted_keys_per_s`, `redis.expired_keys_per_s`, `redis.ops_per_s`, `redis.used_memory_bytes`, `redis.connected_clients`, labelled `{server=NAME}` |
//! | NATS servers (`/varz`, `/jsz` of the monitoring port) | `nats.in_msgs_per_s`, `nats.out_msgs_per_s`, `nats.in_bytes_per_s`, `nats.out_bytes_per_s`, `nats.connections`, `nats.slow_consumers`, `nats.jetstream_messages`, `nats.jetstream_bytes`, `nats.jetstream_consumers`, labelled `{server=HOST:PORT}` |
//! | Mosquitto brokers (`$SYS/broker/#` over MQTT) | `mosquitto.clients_connected`, `mosquitto.publish_received_per_s`, `mosquitto.publish_sent_per_s`, `mosquitto.bytes_received_per_s`, `mosquitto.bytes_sent_per_s`, `mosquitto.messages_stored`, `mosquitto.publish_dropped`, `mosquitto.heap_bytes`, labelled `{broker=HOST:PORT}` |
//! | RabbitMQ queues (passive declares over AMQP) | `rabbitmq.queue_messages`, `rabbitmq.queue_consumers`, labelled `{broker=HOST:PORT,queue=NAME}` |
//! | databases (PostgreSQL, MySQL/MariaDB) | `db.xact_commit_per_s`, `db.cache_hit_ratio`, `db.connections{state=…}`, `db.queries_per_s`, `db.threads_running`, … labelled `{db=NAME}`; a database that cannot be reached is a warning |
//!
//! CPU percentages of a process are of one core (200 = two full cores); the
//! host's are of all cores. The aggregator reads the latest values once a tick
//! through [`loadline_core::monitor::MonitorSource`]. A monitor that cannot
//! sample is a warning, told once per streak; it never stops or slows the load.
//! Processes, host and self monitoring read Linux's `/proc`; elsewhere they are
//! skipped with a warning.

mod board;
mod config;
mod connected;
mod database;
#[cfg(target_os = "linux")]
mod host;
#[cfg(target_os = "linux")]
mod linux_proc;
mod mosquitto;
mod nats;
#[cfg(target_os = "linux")]
mod process;
mod prometheus;
mod rabbitmq;
mod redis;
#[cfg(target_os = "linux")]
mod sampling;
#[cfg(target_os = "linux")]
mod self_monitor;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use loadline_core::monitor::{MonitorSource, MonitorValue};
use tokio_util::sync::{CancellationToken, DropGuard};

pub use config::{ConfigProblem, MonitorConfig, ProcessSpec, PrometheusSpec, RabbitMqSpec};
pub use database::DatabaseMonitorSpec;
pub use redis::RedisMonitorSpec;

/// Whether an entry of `monitor: { redis: … }` is a URL (else a name from the
/// scenario's `redis:` section).
pub fn is_redis_url(entry: &str) -> bool {
    config::is_url(entry)
}
/// The reader of scraped Prometheus pages, public for the fuzz target (`fuzz/`):
/// not an interface to build on.
#[doc(hidden)]
pub use prometheus::exposition;

use board::Board;

/// Why the monitors could not start.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    /// The configuration has problems (every one is listed).
    #[error("invalid monitor configuration: {}", join(.0))]
    Invalid(Vec<ConfigProblem>),
    /// [`Monitors::start`] was called outside a tokio runtime.
    #[error("the monitors need a tokio runtime to run on")]
    NoRuntime,
}

fn join(problems: &[ConfigProblem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// The running monitors. Their samplers stop when the token given to
/// [`Monitors::start`] is cancelled, or when the last handle is dropped.
#[derive(Debug)]
pub struct Monitors {
    board: Arc<Board>,
    _stop: DropGuard,
}

impl Monitors {
    /// Starts the samplers on their own tokio tasks (each with its own timeout),
    /// stopping when `cancel` is cancelled. `target` is the run's target URL: when
    /// its host is this machine, the process listening on its port is watched too;
    /// when it is elsewhere, the host's network is watched on every interface.
    ///
    /// Fails only for an invalid configuration (or without a tokio runtime); a
    /// monitor that cannot sample while running is a warning from
    /// [`MonitorSource::take_warnings`].
    ///
    /// ```
    /// use loadline_core::monitor::MonitorSource;
    /// use loadline_monitor::{MonitorConfig, Monitors};
    /// use tokio_util::sync::CancellationToken;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), loadline_monitor::MonitorError> {
    /// let config = MonitorConfig { interval: Some("100ms".into()), ..MonitorConfig::default() };
    /// let cancel = CancellationToken::new();
    /// let monitors = Monitors::start(&config, None, cancel.clone())?;
    /// tokio::time::sleep(std::time::Duration::from_millis(350)).await;
    /// let values = monitors.snapshot();
    /// if cfg!(target_os = "linux") {
    ///     assert!(values.iter().any(|v| v.series == "loadline.rss_bytes"));
    ///     assert!(values.iter().any(|v| v.series == "host.mem_available_bytes"));
    /// }
    /// cancel.cancel();
    /// # Ok(())
    /// # }
    /// ```
    pub fn start(
        config: &MonitorConfig,
        target: Option<&url::Url>,
        cancel: CancellationToken,
    ) -> Result<Arc<Monitors>, MonitorError> {
        let settings = config.settings(target)?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| MonitorError::NoRuntime)?;
        let stop = cancel.child_token();
        let board = Arc::new(Board::default());
        for note in settings.notes {
            board.warn(note);
        }
        let every = settings.interval;
        #[cfg(target_os = "linux")]
        {
            if settings.self_monitor {
                tracing::debug!(?every, "monitor started: loadline itself");
                let sampler = self_monitor::SelfSampler::new(Arc::clone(&board.saturation_seen));
                sampling::spawn(&runtime, sampler, board.slot(), every, stop.clone());
            }
            if settings.host {
                tracing::debug!(
                    ?every,
                    all_interfaces = settings.all_interfaces,
                    "monitor started: the host"
                );
                let sampler = host::HostSampler::new(settings.all_interfaces);
                sampling::spawn(&runtime, sampler, board.slot(), every, stop.clone());
            }
            if !settings.processes.is_empty() {
                for (spec, origin) in &settings.processes {
                    tracing::debug!(?every, ?spec, %origin, "monitor started: process");
                }
                let sampler = process::ProcessSampler::new(settings.processes);
                sampling::spawn(&runtime, sampler, board.slot(), every, stop.clone());
            }
        }
        #[cfg(not(target_os = "linux"))]
        if !settings.processes.is_empty() || settings.host || settings.self_monitor {
            board.warn(
                "process, host and loadline's own monitors read Linux's /proc and are \
                 skipped on this system; Prometheus endpoints are still scraped"
                    .into(),
            );
        }
        for endpoint in settings.prometheus {
            tracing::debug!(?every, url = %endpoint.url, timeout = ?endpoint.timeout, "monitor started: prometheus endpoint");
            runtime.spawn(prometheus::run(endpoint, board.slot(), every, stop.clone()));
        }
        for target in settings.databases {
            tracing::debug!(?every, database = %target.name, flavor = ?target.flavor, "monitor started: database");
            runtime.spawn(database::run(target, board.slot(), every, stop.clone()));
        }
        for target in settings.redis {
            tracing::debug!(?every, server = %target.name, "monitor started: redis");
            runtime.spawn(redis::run(target, board.slot(), every, stop.clone()));
        }
        for target in settings.nats {
            tracing::debug!(?every, server = %target.name, "monitor started: nats");
            runtime.spawn(nats::run(target, board.slot(), every, stop.clone()));
        }
        for target in settings.mosquitto {
            tracing::debug!(?every, broker = %target.name, "monitor started: mosquitto");
            runtime.spawn(mosquitto::run(target, board.slot(), every, stop.clone()));
        }
        if let Some(target) = settings.rabbitmq {
            tracing::debug!(?every, broker = %target.name, "monitor started: rabbitmq");
            runtime.spawn(rabbitmq::run(target, board.slot(), every, stop.clone()));
        }
        Ok(Arc::new(Monitors {
            board,
            _stop: stop.drop_guard(),
        }))
    }

    /// Whether loadline was seen near CPU saturation at any time so far (its
    /// latencies then include its own queueing).
    pub fn saturation_seen(&self) -> bool {
        self.board.saturation_seen.load(Ordering::Relaxed)
    }
}

impl MonitorSource for Monitors {
    fn snapshot(&self) -> Vec<MonitorValue> {
        self.board.snapshot()
    }

    fn take_warnings(&self) -> Vec<String> {
        self.board.take_warnings()
    }
}
