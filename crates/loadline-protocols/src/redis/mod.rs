//! Redis commands, pipelines and cache-aside reads against a Redis server (or
//! a Redis Cluster), over redis-rs's multiplexed connections.
//!
//! [`RedisProtocol`] holds a plan's servers (their clients and, in shared mode,
//! the one connection every VU uses); [`build`] turns `redis:` and
//! `cache_aside:` steps into executors ([`exec`]). Before the load,
//! [`Protocol::prepare`] opens a connection to every server and PINGs it, so
//! an unreachable server or a refused password stops the run before any load;
//! after it, [`Protocol::finish`] drops the shared connections.
//!
//! # Metrics
//!
//! One sample per command sent, in the step's group (kind `redis`): latency
//! from sending the command to its reply, after a connection was got (a VU's
//! first command opens its connection first; a failure to open one is an
//! unsent sample of class `connect`, `timeout` or `noauth`). A pipeline is one
//! sample: from sending its commands to the last reply. Bytes are the
//! payloads: the arguments sent and the strings received. A nil reply is not
//! an error. An error reply fails the sample with a class from its code (see
//! [`errors`]); a failed command, capture or check-less failure ends the
//! iteration.
//!
//! A `cache_aside:` step records its GET with [`CacheOutcome::Hit`] or
//! [`CacheOutcome::Miss`] (every other command records
//! [`CacheOutcome::None`]); on a miss its `on_miss:` steps run (they record
//! their own samples), then the SET goes to the group `NAME (set)`.
//!
//! [`CacheOutcome::Hit`]: loadline_core::cache::CacheOutcome::Hit
//! [`CacheOutcome::Miss`]: loadline_core::cache::CacheOutcome::Miss
//! [`CacheOutcome::None`]: loadline_core::cache::CacheOutcome::None
//!
//! # Replies as values
//!
//! Captures and checks see a reply as JSON: nil as null, integers and doubles
//! as numbers, strings (bulk or simple, `OK`) as strings (bytes that are not
//! UTF-8 are replaced), arrays and sets as lists, maps as objects. A JSONPath
//! (`json:` in a capture, `path:` in a check) reads a string reply as JSON
//! text.

mod build;
mod conn;
pub mod doc;
mod errors;
mod exec;

use std::any::Any;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use loadline_core::plan::Plan;
use loadline_core::protocol::{BoxFuture, HookResult, Protocol};

pub use build::Redis;
pub use conn::ConnectionMode;
pub use errors::{ErrorKind, RedisMetrics, DECLARED_CLASSES};

use conn::{Held, Opener, Shared};

/// One server of the plan, as the steps use it.
pub(crate) struct Server {
    pub(crate) name: String,
    /// Its index in the protocol's list (and in each VU's connections).
    pub(crate) index: usize,
    /// Its URL with the password replaced by `***`.
    pub(crate) redacted: String,
    opener: Opener,
    pub(crate) mode: ConnectionMode,
    pub(crate) cluster: bool,
    /// The default timeout of its commands.
    pub(crate) timeout: Duration,
    shared: Shared,
    pub(crate) metrics: RedisMetrics,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("name", &self.name)
            .field("url", &self.redacted)
            .field("mode", &self.mode)
            .field("cluster", &self.cluster)
            .finish()
    }
}

/// A server as the scenario declares it.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerSpec {
    pub name: String,
    pub url: String,
    pub mode: ConnectionMode,
    pub cluster: bool,
    pub timeout: Duration,
}

impl Server {
    /// The server of `spec`; `Err` says why its URL is not usable.
    pub(crate) fn new(
        index: usize,
        spec: &ServerSpec,
        metrics: RedisMetrics,
    ) -> Result<Self, String> {
        let redacted = redact_url(&spec.url);
        let opener = Opener::new(&spec.url, spec.cluster).map_err(|reason| {
            format!(
                "`{redacted}` is not a usable Redis URL: {}",
                scrub(&reason, &spec.url)
            )
        })?;
        Ok(Self {
            name: spec.name.clone(),
            index,
            redacted,
            opener,
            mode: spec.mode,
            cluster: spec.cluster,
            timeout: spec.timeout,
            shared: Shared::default(),
            metrics,
        })
    }

    /// The VU's connection in `slot`, opened (per VU) or cloned (shared) when
    /// it has none.
    pub(crate) async fn connection<'s>(
        &self,
        slot: &'s mut Option<Held>,
    ) -> Result<&'s mut Held, (ErrorKind, String)> {
        let held = match slot.take() {
            Some(held) => held,
            None => match self.mode {
                ConnectionMode::PerVu => conn::open_own(&self.opener).await?,
                ConnectionMode::Shared => self.shared.get(&self.opener).await?,
            },
        };
        Ok(slot.insert(held))
    }

    /// Drops the VU's connection in `slot`, which broke (and, shared, the
    /// connection every VU uses).
    pub(crate) async fn broken(&self, slot: &mut Option<Held>) {
        if let Some(held) = slot.take() {
            if self.mode == ConnectionMode::Shared {
                self.shared.broken(&held).await;
            }
        }
    }

    /// Opens a connection and PINGs the server.
    async fn check(&self) -> Result<(), String> {
        let unreachable = |reason: String| {
            format!(
                "redis server `{}` at {} cannot be used: {reason}",
                self.name, self.redacted
            )
        };
        let mut slot = None;
        let held = self
            .connection(&mut slot)
            .await
            .map_err(|(_, reason)| unreachable(reason))?;
        let ping = redis::cmd("PING");
        match tokio::time::timeout(conn::CONNECT_TIMEOUT, held.conn.send(&ping)).await {
            Ok(Ok(redis::Value::ServerError(e))) => Err(unreachable(format!(
                "PING was answered with {}",
                e.details()
                    .map_or_else(|| e.code().to_owned(), |d| format!("{} {d}", e.code()))
            ))),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(unreachable(e.to_string())),
            Err(_) => Err(unreachable(format!(
                "no reply to PING within {:?}",
                conn::CONNECT_TIMEOUT
            ))),
        }
    }
}

/// Replaces the password of a Redis URL with `***`.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

/// `text` without the password of `url`.
fn scrub(text: &str, url: &str) -> String {
    match url::Url::parse(url)
        .ok()
        .and_then(|u| u.password().map(str::to_owned))
    {
        Some(p) if p.len() >= 3 => text.replace(&p, "***"),
        _ => text.to_owned(),
    }
}

/// The Redis servers of a plan.
pub struct RedisProtocol {
    servers: Vec<Arc<Server>>,
    /// Whether `prepare` reached every server.
    prepared: AtomicBool,
}

impl fmt::Debug for RedisProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisProtocol")
            .field("servers", &self.servers)
            .finish()
    }
}

/// A VU's Redis state: a connection per server, and a reused text buffer.
#[derive(Default)]
pub(crate) struct VuState {
    pub(crate) conns: Vec<Option<Held>>,
    pub(crate) text: String,
}

impl RedisProtocol {
    /// The protocol of these servers; `Err` names a server whose URL is not
    /// usable.
    pub fn new(specs: &[ServerSpec], metrics: RedisMetrics) -> Result<Arc<Self>, String> {
        let servers = specs
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                Server::new(i, spec, metrics)
                    .map(Arc::new)
                    .map_err(|e| format!("redis server `{}`: {e}", spec.name))
            })
            .collect::<Result<_, _>>()?;
        Ok(Arc::new(Self {
            servers,
            prepared: AtomicBool::new(false),
        }))
    }

    pub(crate) fn server(&self, index: usize) -> Option<&Arc<Server>> {
        self.servers.get(index)
    }
}

impl Protocol for RedisProtocol {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn new_vu_state(&self) -> Box<dyn Any + Send> {
        Box::new(VuState {
            conns: self.servers.iter().map(|_| None).collect(),
            text: String::new(),
        })
    }

    fn prepare<'a>(&'a self, _plan: &'a Plan) -> BoxFuture<'a, HookResult> {
        Box::pin(async move {
            tracing::debug!(servers = self.servers.len(), "redis: connecting");
            let checks = self.servers.iter().map(|s| s.check());
            let failed: Vec<String> = futures_util::future::join_all(checks)
                .await
                .into_iter()
                .filter_map(Result::err)
                .collect();
            if !failed.is_empty() {
                let mut lines = failed;
                lines.push("a Redis server is not available: nothing was run".into());
                return Err(lines);
            }
            self.prepared.store(true, Ordering::Relaxed);
            let names: Vec<String> = self
                .servers
                .iter()
                .map(|s| format!("{} ({})", s.name, s.redacted))
                .collect();
            Ok(vec![format!("redis: ready: {}", names.join(", "))])
        })
    }

    fn finish(&self) -> BoxFuture<'_, HookResult> {
        Box::pin(async move {
            for server in &self.servers {
                server.shared.close().await;
            }
            tracing::debug!(
                reached = self.prepared.load(Ordering::Relaxed),
                "redis: connections closed"
            );
            Ok(Vec::new())
        })
    }

    fn describe(&self) -> Vec<String> {
        let servers: Vec<String> = self
            .servers
            .iter()
            .map(|s| {
                let mode = match s.mode {
                    ConnectionMode::PerVu => "a connection per VU",
                    ConnectionMode::Shared => "one shared connection",
                };
                let cluster = if s.cluster { ", cluster" } else { "" };
                format!("{} at {} ({mode}{cluster})", s.name, s.redacted)
            })
            .collect();
        vec![format!(
            "redis servers ({}): {} (not connected: `run` connects first)",
            self.servers.len(),
            servers.join("; ")
        )]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("redis://:s3cret@127.0.0.1:6379/0"),
            "redis://:***@127.0.0.1:6379/0"
        );
        assert_eq!(
            redact_url("rediss://app:s3cret@cache.local/2"),
            "rediss://app:***@cache.local/2"
        );
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(
            scrub("bad s3cret here", "redis://:s3cret@h"),
            "bad *** here"
        );
    }

    #[test]
    fn urls_are_checked() {
        let spec = |url: &str| ServerSpec {
            name: "cache".into(),
            url: url.into(),
            mode: ConnectionMode::PerVu,
            cluster: false,
            timeout: Duration::from_secs(1),
        };
        assert!(
            RedisProtocol::new(&[spec("redis://127.0.0.1:6379/0")], RedisMetrics::default())
                .is_ok()
        );
        let err = RedisProtocol::new(&[spec("http://127.0.0.1/")], RedisMetrics::default())
            .err()
            .unwrap_or_default();
        assert!(
            err.contains("expected a redis:// or rediss:// URL"),
            "{err}"
        );
    }
}
