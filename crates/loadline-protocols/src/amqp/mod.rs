//! Event-driven load over RabbitMQ (AMQP 0-9-1), over lapin: publishes to an
//! exchange with a routing key, timed to the broker's publisher confirm, and
//! consumers that read queues for the whole run, acknowledging each message
//! after it is counted.
//!
//! [`AmqpProtocol`] holds the plan's broker, exchanges, consumers and
//! producers. Every VU shares one connection; publishes go over a few
//! channels (AMQP multiplexes channels on a connection, and a VU is not a
//! channel), chosen by VU, in confirm mode for steps that wait for confirms.
//! [`Protocol::prepare`] connects, declares what the section asks for (the
//! exchanges and queues that do not exist, the bindings), and starts
//! consuming every queue before any load, so that no message of the run is
//! missed; [`Protocol::load_starting`] starts reading them, and reading each
//! queue's depth once a second (a passive declare: the consumer's lag);
//! [`Protocol::load_ended`] waits the grace period for late messages and
//! counts the rest as lost; `finish` stops the consumers and closes.
//!
//! # Metrics
//!
//! A `publish` is a request sample of its group (kind `amqp`): latency to the
//! publisher confirm (or to the client having written the frame, without
//! confirms). A `wait_for_event` is an outcome ([`crate::events::wait`]).
//! Each consumer is a destination group of kind `events`; a message the
//! broker redelivers (after a consumer died or nacked it) counts as a
//! duplicate there.

mod build;
pub mod doc;
mod exec;

use std::any::Any;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicQosOptions, ConfirmSelectOptions,
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};
use loadline_core::metrics::MetricsHub;
use loadline_core::plan::Plan;
use loadline_core::protocol::{BoxFuture, HookResult, Protocol};
use tokio_util::sync::CancellationToken;

use crate::events::envelope::HEADER;
use crate::events::run::{Consumers, Sink};
use crate::events::track::Destination;
use crate::events::vu::VuEvents;

pub use build::Amqp;

/// How long connecting and declaring may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often each queue's depth is read.
const LAG_EVERY: Duration = Duration::from_secs(1);
/// Channels publishes share, per confirm mode.
const CHANNELS: usize = 4;

/// A queue consumer as the scenario declares it.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueSpec {
    /// The destination's name.
    pub name: String,
    pub queue: String,
    /// Declare the queue (with `arguments`) when it does not exist.
    pub declare: bool,
    pub arguments: FieldTable,
    /// An exchange and routing key to bind the queue to.
    pub bind: Option<(String, String)>,
    pub prefetch: u16,
    /// The publishes that feed it: exchange and routing key pattern.
    pub expects: (String, String),
}

/// The key a publish is counted under: its exchange and routing key.
fn route(exchange: &str, routing_key: &str) -> String {
    format!("{exchange}\u{0}{routing_key}")
}

/// Whether a publish's route (exchange and routing key) matches a pattern's
/// (exchange and a topic pattern: `*` one word, `#` any words).
fn route_matches(pattern: &str, to: &str) -> bool {
    let (Some((pe, pk)), Some((e, k))) = (pattern.split_once('\u{0}'), to.split_once('\u{0}'))
    else {
        return false;
    };
    pe == e && (pk.is_empty() && k.is_empty() || topic_matches(pk, k))
}

/// Whether an AMQP topic pattern matches a routing key.
pub fn topic_matches(pattern: &str, key: &str) -> bool {
    fn go(p: &[&str], k: &[&str]) -> bool {
        match p.split_first() {
            None => k.is_empty(),
            Some((&"#", rest)) => (0..=k.len()).any(|skip| go(rest, &k[skip..])),
            Some((&w, rest)) => match k.split_first() {
                Some((&h, krest)) if w == "*" || w == h => go(rest, krest),
                _ => false,
            },
        }
    }
    let p: Vec<&str> = pattern.split('.').collect();
    let k: Vec<&str> = key.split('.').collect();
    go(&p, &k)
}

/// Replaces a URL's password with `***`.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A consumer opened before the load: its queue's stream and channel.
struct Opened {
    index: usize,
    consumer: lapin::Consumer,
    _channel: Channel,
}

/// The plan's broker, exchanges, consumers and producers.
pub struct AmqpProtocol {
    url: String,
    redacted: String,
    pub(crate) timeout: Duration,
    exchanges: Vec<(String, ExchangeKind)>,
    specs: Vec<QueueSpec>,
    pub(crate) consumers: Consumers,
    connection: OnceLock<Arc<Connection>>,
    /// Publishing channels: without confirms, then with.
    channels: [Mutex<Vec<Option<Channel>>>; 2],
    opened: Mutex<Vec<Opened>>,
}

impl fmt::Debug for AmqpProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmqpProtocol")
            .field("url", &self.redacted)
            .field("consumers", &self.specs)
            .finish_non_exhaustive()
    }
}

impl AmqpProtocol {
    pub(crate) fn new(
        url: String,
        timeout: Duration,
        grace: Duration,
        exchanges: Vec<(String, ExchangeKind)>,
        specs: Vec<QueueSpec>,
        dests: Vec<Arc<Destination>>,
        run: u64,
    ) -> Self {
        let fed = dests
            .into_iter()
            .zip(
                specs
                    .iter()
                    .map(|s| Some(route(&s.expects.0, &s.expects.1))),
            )
            .collect();
        Self {
            redacted: redact_url(&url),
            url,
            timeout,
            exchanges,
            specs,
            consumers: Consumers::new(fed, route_matches, run, grace),
            connection: OnceLock::new(),
            channels: [
                Mutex::new(vec![None; CHANNELS]),
                Mutex::new(vec![None; CHANNELS]),
            ],
            opened: Mutex::new(Vec::new()),
        }
    }

    /// A publishing channel for VU `vu` (in confirm mode or not), opened
    /// again when the broker closed it (a publish to a missing exchange
    /// closes its channel).
    pub(crate) async fn channel(&self, vu: u64, confirm: bool) -> Result<Channel, lapin::Error> {
        let pool = &self.channels[usize::from(confirm)];
        let at = (vu as usize) % CHANNELS;
        if let Some(ch) = lock(pool)[at].as_ref().filter(|c| c.status().connected()) {
            return Ok(ch.clone());
        }
        let Some(connection) = self.connection.get() else {
            return Err(
                lapin::ErrorKind::InvalidConnectionState(lapin::ConnectionState::Closed).into(),
            );
        };
        let ch = connection.create_channel().await?;
        if confirm {
            ch.confirm_select(ConfirmSelectOptions::default()).await?;
        }
        let mut slots = lock(pool);
        // Another VU may have opened one meanwhile: keep the first.
        match slots[at].as_ref().filter(|c| c.status().connected()) {
            Some(first) => Ok(first.clone()),
            None => {
                slots[at] = Some(ch.clone());
                Ok(ch)
            }
        }
    }

    async fn connect(&self) -> Result<(), String> {
        let unreachable =
            |reason: String| format!("amqp broker at {} cannot be used: {reason}", self.redacted);
        let connection = tokio::time::timeout(
            CONNECT_TIMEOUT,
            Connection::connect(&self.url, ConnectionProperties::default()),
        )
        .await
        .map_err(|_| unreachable("no answer within 5s".into()))?
        .map_err(|e| unreachable(e.to_string()))?;
        for (name, kind) in &self.exchanges {
            declare_exchange(&connection, name, kind)
                .await
                .map_err(|e| format!("amqp exchange `{name}`: {e}"))?;
        }
        let mut opened = Vec::new();
        for (index, spec) in self.specs.iter().enumerate() {
            let what = |reason: String| format!("amqp consumer `{}`: {reason}", spec.name);
            let channel = open_queue(&connection, spec).await.map_err(what)?;
            channel
                .basic_qos(spec.prefetch, BasicQosOptions::default())
                .await
                .map_err(|e| what(e.to_string()))?;
            let consumer = channel
                .basic_consume(
                    spec.queue.as_str().into(),
                    format!("loadline-{}-{index}", self.consumers.run).into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(|e| what(format!("cannot consume `{}`: {e}", spec.queue)))?;
            opened.push(Opened {
                index,
                consumer,
                _channel: channel,
            });
        }
        *lock(&self.opened) = opened;
        let _ = self.connection.set(Arc::new(connection));
        Ok(())
    }
}

/// Declares an exchange unless it exists (whatever its settings).
async fn declare_exchange(
    connection: &Connection,
    name: &str,
    kind: &ExchangeKind,
) -> Result<(), String> {
    let probe = connection
        .create_channel()
        .await
        .map_err(|e| e.to_string())?;
    let passive = ExchangeDeclareOptions {
        passive: true,
        ..Default::default()
    };
    if probe
        .exchange_declare(name.into(), kind.clone(), passive, FieldTable::default())
        .await
        .is_ok()
    {
        let _ = probe.close(200, "OK".into()).await;
        return Ok(());
    }
    // The failed passive declare closed the probe.
    let channel = connection
        .create_channel()
        .await
        .map_err(|e| e.to_string())?;
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    channel
        .exchange_declare(name.into(), kind.clone(), durable, FieldTable::default())
        .await
        .map_err(|e| format!("cannot declare it: {e}"))?;
    let _ = channel.close(200, "OK".into()).await;
    Ok(())
}

/// Checks or declares a consumer's queue, binds it; a channel to consume it.
async fn open_queue(connection: &Connection, spec: &QueueSpec) -> Result<Channel, String> {
    let channel = || async { connection.create_channel().await.map_err(|e| e.to_string()) };
    let probe = channel().await?;
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    let exists = probe
        .queue_declare(spec.queue.as_str().into(), passive, FieldTable::default())
        .await
        .is_ok();
    if exists {
        let _ = probe.close(200, "OK".into()).await;
    }
    let ch = channel().await?;
    if !exists {
        if !spec.declare {
            return Err(format!(
                "no queue `{}` (declare it, or leave `declare` at true)",
                spec.queue
            ));
        }
        ch.queue_declare(
            spec.queue.as_str().into(),
            QueueDeclareOptions::default(),
            spec.arguments.clone(),
        )
        .await
        .map_err(|e| format!("cannot declare queue `{}`: {e}", spec.queue))?;
    }
    if let Some((exchange, key)) = &spec.bind {
        ch.queue_bind(
            spec.queue.as_str().into(),
            exchange.as_str().into(),
            key.as_str().into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|e| format!("cannot bind `{}` to `{exchange}`: {e}", spec.queue))?;
    }
    Ok(ch)
}

/// The envelope header's value of a message, when it has one.
fn envelope_of(properties: &lapin::BasicProperties) -> Option<&str> {
    let table = properties.headers().as_ref()?;
    match table.inner().get(HEADER)? {
        AMQPValue::LongString(s) => std::str::from_utf8(s.as_bytes()).ok(),
        AMQPValue::ShortString(s) => Some(s.as_str()),
        _ => None,
    }
}

async fn read_queue(
    mut consumer: lapin::Consumer,
    dest: Arc<Destination>,
    sink: Sink,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            d = consumer.next() => match d {
                Some(Ok(delivery)) => {
                    sink.received(&dest, envelope_of(&delivery.properties), &delivery.data);
                    if let Err(error) = delivery.ack(BasicAckOptions::default()).await {
                        tracing::debug!(dest = %dest.name, %error, "amqp: an ack failed");
                    }
                }
                Some(Err(error)) => {
                    tracing::warn!(dest = %dest.name, %error, "amqp: the consumer failed");
                    break;
                }
                None => break,
            },
        }
    }
}

/// Reads every queue's depth once a second, as its destination's lag.
async fn read_depths(
    connection: Arc<Connection>,
    queues: Vec<(String, Arc<Destination>)>,
    sink: Sink,
    stop: CancellationToken,
) {
    let mut every = tokio::time::interval(LAG_EVERY);
    let mut channel: Option<Channel> = None;
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = every.tick() => {}
        }
        for (queue, dest) in &queues {
            let ch = match channel.as_ref().filter(|c| c.status().connected()) {
                Some(ch) => ch.clone(),
                None => match connection.create_channel().await {
                    Ok(ch) => {
                        channel = Some(ch.clone());
                        ch
                    }
                    Err(_) => break,
                },
            };
            if let Ok(q) = ch
                .queue_declare(queue.as_str().into(), passive, FieldTable::default())
                .await
            {
                sink.lag(dest, u64::from(q.message_count()));
            }
        }
    }
}

impl Protocol for AmqpProtocol {
    fn name(&self) -> &'static str {
        "amqp"
    }

    fn new_vu_state(&self) -> Box<dyn Any + Send> {
        Box::new(VuEvents::default())
    }

    fn prepare<'a>(&'a self, _plan: &'a Plan) -> BoxFuture<'a, HookResult> {
        Box::pin(async move {
            let connected = self.connect().await;
            self.consumers
                .prepared("amqp", "the AMQP broker", &self.redacted, "open", connected)
        })
    }

    fn load_starting(&self, hub: &Arc<MetricsHub>) {
        self.consumers.start(hub, |stop| {
            let opened = std::mem::take(&mut *lock(&self.opened));
            let mut tasks = Vec::new();
            let mut queues = Vec::new();
            for o in opened {
                let Some(dest) = self.consumers.dests.get(o.index).cloned() else {
                    continue;
                };
                if let Some(spec) = self.specs.get(o.index) {
                    queues.push((spec.queue.clone(), dest.clone()));
                }
                let (sink, stop) = (self.consumers.sink(), stop.clone());
                tasks.push(tokio::spawn(read_queue(o.consumer, dest, sink, stop)));
            }
            if let (Some(connection), false) = (self.connection.get(), queues.is_empty()) {
                tasks.push(tokio::spawn(read_depths(
                    connection.clone(),
                    queues,
                    self.consumers.sink(),
                    stop,
                )));
            }
            tasks
        });
    }

    fn load_ended(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.consumers.settle().await;
        })
    }

    fn finish(&self) -> BoxFuture<'_, HookResult> {
        Box::pin(async move {
            self.consumers.stop().await;
            if let Some(connection) = self.connection.get() {
                let _ = tokio::time::timeout(
                    CONNECT_TIMEOUT,
                    connection.close(200, "loadline: done".into()),
                )
                .await;
            }
            Ok(Vec::new())
        })
    }

    fn describe(&self) -> Vec<String> {
        let mut lines = vec![format!(
            "amqp broker: {} (not connected: `run` connects first)",
            self.redacted
        )];
        for (name, kind) in &self.exchanges {
            lines.push(format!(
                "amqp exchange {name} ({kind:?}), declared when missing"
            ));
        }
        for c in &self.specs {
            let bind = c
                .bind
                .as_ref()
                .map_or(String::new(), |(e, k)| format!(", bound to {e} with {k}"));
            lines.push(format!(
                "amqp consumer {}: queue {}{bind}, expecting what is published to {} with {}",
                c.name,
                c.queue,
                if c.expects.0.is_empty() {
                    "the default exchange"
                } else {
                    &c.expects.0
                },
                c.expects.1
            ));
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_patterns() {
        assert!(topic_matches("orders.#", "orders"));
        assert!(topic_matches("orders.#", "orders.eu.created"));
        assert!(topic_matches("#", "anything.at.all"));
        assert!(topic_matches("*.created", "orders.created"));
        assert!(topic_matches("a.#.z", "a.z"));
        assert!(topic_matches("a.#.z", "a.b.c.z"));
        assert!(!topic_matches("*.created", "orders.eu.created"));
        assert!(!topic_matches("orders.created", "orders.deleted"));
        assert!(route_matches(
            &route("ex", "orders.*"),
            &route("ex", "orders.eu")
        ));
        assert!(!route_matches(
            &route("ex", "orders.*"),
            &route("other", "orders.eu")
        ));
        assert!(route_matches(&route("", "q"), &route("", "q")));
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("amqp://guest:secret@127.0.0.1:5672/%2f"),
            "amqp://guest:***@127.0.0.1:5672/%2f"
        );
    }
}
