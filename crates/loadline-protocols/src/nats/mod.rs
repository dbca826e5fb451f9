//! Event-driven load over NATS: core publish, JetStream publish with its
//! acknowledgement, request-reply, and consumers that read destinations (core
//! subscriptions or JetStream durable pull consumers) for the whole run,
//! over async-nats.
//!
//! [`NatsProtocol`] holds the plan's server, consumers and producers. Every
//! VU shares one client connection (NATS multiplexes; a VU is not a
//! connection). [`Protocol::prepare`] connects and opens every consumer's
//! subscription before any load, so that no message of the run is missed;
//! [`Protocol::load_starting`] starts reading them (into the run's hub; a
//! plan run several times, as a capacity search does, keeps reading);
//! [`Protocol::load_ended`] waits the grace period for late messages (less,
//! once everything sent has arrived) and counts the rest as lost; `finish`
//! stops the consumers.
//!
//! # Metrics
//!
//! A `publish` is a request sample of its group (kind `nats`): latency from
//! the publish to the client having taken it (core) or to the stream's
//! acknowledgement (JetStream). A `request` is one sample to its reply. A
//! `wait_for_event` is an outcome: from the step's start to the matching
//! message's arrival (zero when it arrived before). Each consumer is a
//! destination group of kind `events` ([`crate::events`]).

mod build;
pub mod doc;
mod exec;

use std::any::Any;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures_util::StreamExt;
use loadline_core::metrics::MetricsHub;
use loadline_core::plan::Plan;
use loadline_core::protocol::{BoxFuture, HookResult, Protocol};
use tokio_util::sync::CancellationToken;

use crate::events::envelope::HEADER;
use crate::events::run::{Consumers, Sink};
use crate::events::track::Destination;
use crate::events::vu::VuEvents;

pub use build::Nats;

/// How long connecting and opening a consumer may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a JetStream consumer's pending count is read.
const LAG_EVERY: Duration = Duration::from_secs(1);

/// Where a consumer reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsumerSource {
    /// A core subscription to a subject.
    Core { subject: String },
    /// A JetStream durable pull consumer on a stream.
    JetStream {
        stream: String,
        durable: String,
        filter: Option<String>,
    },
}

/// A consumer as the scenario declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerSpec {
    pub name: String,
    pub source: ConsumerSource,
    /// The subject whose publishes count as sent here.
    pub expects: Option<String>,
}

/// An opened consumer, waiting for the load.
enum Opened {
    Core(async_nats::Subscriber),
    Pull(Box<async_nats::jetstream::consumer::PullConsumer>),
}

/// The plan's NATS server, consumers and producers.
pub struct NatsProtocol {
    url: String,
    redacted: String,
    pub(crate) timeout: Duration,
    specs: Vec<ConsumerSpec>,
    pub(crate) consumers: Consumers,
    client: OnceLock<async_nats::Client>,
    jetstream: OnceLock<async_nats::jetstream::Context>,
    opened: Mutex<Vec<(usize, Opened)>>,
}

impl fmt::Debug for NatsProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsProtocol")
            .field("url", &self.redacted)
            .field("consumers", &self.specs)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Replaces a URL's password or token with `***`.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(mut parsed) if !parsed.username().is_empty() => {
            let _ = parsed.set_username("***");
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

/// Whether a NATS subject pattern (`*` one token, `>` the rest) matches a
/// subject.
pub fn subject_matches(pattern: &str, subject: &str) -> bool {
    let mut want = pattern.split('.');
    let mut have = subject.split('.');
    loop {
        match (want.next(), have.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(w), Some(h)) if w == h => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

impl NatsProtocol {
    pub(crate) fn new(
        url: String,
        timeout: Duration,
        grace: Duration,
        specs: Vec<ConsumerSpec>,
        dests: Vec<Arc<Destination>>,
        run: u64,
    ) -> Self {
        let fed = dests
            .into_iter()
            .zip(specs.iter().map(|s| s.expects.clone()))
            .collect();
        Self {
            redacted: redact_url(&url),
            url,
            timeout,
            specs,
            consumers: Consumers::new(fed, subject_matches, run, grace),
            client: OnceLock::new(),
            jetstream: OnceLock::new(),
            opened: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn client(&self) -> Option<&async_nats::Client> {
        self.client.get()
    }

    pub(crate) fn jetstream(&self) -> Option<&async_nats::jetstream::Context> {
        self.jetstream.get()
    }

    async fn connect(&self) -> Result<(), String> {
        let unreachable =
            |reason: String| format!("nats server at {} cannot be used: {reason}", self.redacted);
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(CONNECT_TIMEOUT)
            .connect(self.url.as_str())
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let jetstream = async_nats::jetstream::new(client.clone());
        let mut opened = Vec::new();
        for (i, spec) in self.specs.iter().enumerate() {
            let what = |reason: String| format!("nats consumer `{}`: {reason}", spec.name);
            let one = match &spec.source {
                ConsumerSource::Core { subject } => client
                    .subscribe(subject.clone())
                    .await
                    .map(Opened::Core)
                    .map_err(|e| what(format!("cannot subscribe to `{subject}`: {e}")))?,
                ConsumerSource::JetStream {
                    stream,
                    durable,
                    filter,
                } => {
                    let s = jetstream
                        .get_stream(stream)
                        .await
                        .map_err(|e| what(format!("no JetStream stream `{stream}`: {e}")))?;
                    let config = async_nats::jetstream::consumer::pull::Config {
                        durable_name: Some(durable.clone()),
                        filter_subject: filter.clone().unwrap_or_default(),
                        ..Default::default()
                    };
                    s.get_or_create_consumer(durable, config)
                        .await
                        .map(|c| Opened::Pull(Box::new(c)))
                        .map_err(|e| {
                            what(format!("cannot open durable consumer `{durable}`: {e}"))
                        })?
                }
            };
            opened.push((i, one));
        }
        // The server has every subscription before the first publish.
        tokio::time::timeout(CONNECT_TIMEOUT, client.flush())
            .await
            .map_err(|_| unreachable("no answer to a flush".into()))?
            .map_err(|e| unreachable(e.to_string()))?;
        *lock(&self.opened) = opened;
        let _ = self.client.set(client);
        let _ = self.jetstream.set(jetstream);
        Ok(())
    }
}

/// The envelope header's value of a message, when it has one.
fn envelope_of(headers: Option<&async_nats::HeaderMap>) -> Option<&str> {
    headers.and_then(|h| h.get(HEADER)).map(|v| v.as_str())
}

async fn read_core(
    mut sub: async_nats::Subscriber,
    dest: Arc<Destination>,
    sink: Sink,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            m = sub.next() => match m {
                Some(m) => sink.received(&dest, envelope_of(m.headers.as_ref()), &m.payload),
                None => break,
            },
        }
    }
    let _ = sub.unsubscribe().await;
}

async fn read_pull(
    mut consumer: async_nats::jetstream::consumer::PullConsumer,
    dest: Arc<Destination>,
    sink: Sink,
    stop: CancellationToken,
) {
    let mut messages = match consumer.messages().await {
        Ok(m) => m,
        Err(error) => {
            tracing::warn!(dest = %dest.name, %error, "nats: the JetStream consumer cannot be read");
            return;
        }
    };
    let mut lag = tokio::time::interval(LAG_EVERY);
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = lag.tick() => {
                if let Ok(info) = consumer.info().await {
                    sink.lag(&dest, info.num_pending);
                }
            }
            m = messages.next() => match m {
                Some(Ok(m)) => {
                    sink.received(&dest, envelope_of(m.headers.as_ref()), &m.payload);
                    if let Err(error) = m.ack().await {
                        tracing::debug!(dest = %dest.name, %error, "nats: an ack failed");
                    }
                }
                Some(Err(error)) => {
                    tracing::debug!(dest = %dest.name, %error, "nats: a pull failed");
                }
                None => break,
            },
        }
    }
}

impl Protocol for NatsProtocol {
    fn name(&self) -> &'static str {
        "nats"
    }

    fn new_vu_state(&self) -> Box<dyn Any + Send> {
        Box::new(VuEvents::default())
    }

    fn prepare<'a>(&'a self, _plan: &'a Plan) -> BoxFuture<'a, HookResult> {
        Box::pin(async move {
            let connected = self.connect().await;
            self.consumers
                .prepared("nats", "the NATS server", &self.redacted, "open", connected)
        })
    }

    fn load_starting(&self, hub: &Arc<MetricsHub>) {
        self.consumers.start(hub, |stop| {
            let opened = std::mem::take(&mut *lock(&self.opened));
            let mut tasks = Vec::new();
            for (i, consumer) in opened {
                let Some(dest) = self.consumers.dests.get(i).cloned() else {
                    continue;
                };
                let (sink, stop) = (self.consumers.sink(), stop.clone());
                tasks.push(match consumer {
                    Opened::Core(sub) => tokio::spawn(read_core(sub, dest, sink, stop)),
                    Opened::Pull(c) => tokio::spawn(read_pull(*c, dest, sink, stop)),
                });
            }
            tasks
        });
    }

    fn load_ended(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            // Everything published is on its way once the client flushed.
            if let Some(client) = self.client() {
                let _ = tokio::time::timeout(CONNECT_TIMEOUT, client.flush()).await;
            }
            self.consumers.settle().await;
        })
    }

    fn finish(&self) -> BoxFuture<'_, HookResult> {
        Box::pin(async move {
            self.consumers.stop().await;
            if let Some(client) = self.client() {
                let _ = tokio::time::timeout(CONNECT_TIMEOUT, client.flush()).await;
            }
            Ok(Vec::new())
        })
    }

    fn describe(&self) -> Vec<String> {
        let mut lines = vec![format!(
            "nats server: {} (not connected: `run` connects first)",
            self.redacted
        )];
        for c in &self.specs {
            let from = match &c.source {
                ConsumerSource::Core { subject } => format!("subject {subject}"),
                ConsumerSource::JetStream {
                    stream, durable, ..
                } => format!("JetStream stream {stream}, durable {durable}"),
            };
            let expects = c.expects.as_deref().map_or(String::new(), |e| {
                format!(", expecting what is published to {e}")
            });
            lines.push(format!("nats consumer {}: {from}{expects}", c.name));
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_patterns() {
        assert!(subject_matches("orders.created", "orders.created"));
        assert!(subject_matches("orders.*", "orders.created"));
        assert!(subject_matches("orders.>", "orders.eu.created"));
        assert!(subject_matches(
            "demo_shop.*.order.confirmed",
            "demo_shop.ab12.order.confirmed"
        ));
        assert!(!subject_matches("orders.*", "orders.eu.created"));
        assert!(!subject_matches("orders.created", "orders"));
        assert!(!subject_matches("orders.>", "orders"));
    }

    #[test]
    fn credentials_are_redacted() {
        assert_eq!(
            redact_url("nats://u:pw@127.0.0.1:4222"),
            "nats://u:***@127.0.0.1:4222"
        );
        assert_eq!(
            redact_url("nats://tok@127.0.0.1:4222"),
            "nats://***@127.0.0.1:4222"
        );
        assert_eq!(redact_url("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
    }
}
