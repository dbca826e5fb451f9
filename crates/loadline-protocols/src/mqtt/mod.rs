//! Event-driven load over MQTT 5, over rumqttc: publishes at QoS 0, 1 or 2,
//! timed to the broker's acknowledgement (PUBACK for QoS 1, PUBCOMP for QoS
//! 2; the write for QoS 0), and consumers that subscribe to topic filters
//! for the whole run.
//!
//! [`MqttProtocol`] holds the plan's broker, consumers and producers. Every
//! VU publishes over one shared connection (a VU is a user, not a
//! connection); each consumer has a connection of its own, so that each
//! message reaches exactly one destination. rumqttc reports packets, not
//! the fate of one publish: publishes enter its request queue in order
//! under a lock, so the n-th `Outgoing::Publish` the event loop reports is
//! the n-th publish, and its packet id then names its acknowledgement.
//!
//! [`Protocol::prepare`] connects every connection and subscribes every
//! consumer before any load; [`Protocol::load_starting`] starts counting
//! what the consumers receive; [`Protocol::load_ended`] waits the grace
//! period and counts the rest as lost; `finish` disconnects.
//!
//! # Metrics
//!
//! A `publish` is a request sample of its group (kind `mqtt`). A
//! `wait_for_event` is an outcome ([`crate::events::wait`]). Each consumer
//! is a destination group of kind `events`. MQTT reports no consumer lag.

mod build;
pub mod doc;
mod exec;

use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use loadline_core::metrics::MetricsHub;
use loadline_core::plan::Plan;
use loadline_core::protocol::{BoxFuture, HookResult, Protocol};
use rumqttc::v5::mqttbytes::v5::{ConnectReturnCode, Packet, PubAckReason, PubRecReason};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};
use rumqttc::Outgoing;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::events::envelope::HEADER;
use crate::events::run::{Consumers, Sink};
use crate::events::track::Destination;
use crate::events::vu::VuEvents;

pub use build::Mqtt;

/// How long connecting and subscribing may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Requests the publishing connection's queue holds.
const QUEUE: usize = 4096;
/// After a connection error, the pause before the event loop reconnects.
const RECONNECT_AFTER: Duration = Duration::from_millis(200);

/// A consumer as the scenario declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    pub name: String,
    pub topic: String,
    pub qos: u8,
    /// The topic filter whose publishes count as sent here.
    pub expects: String,
}

/// Whether an MQTT topic filter (`+` one level, `#` the rest) matches a
/// topic.
pub fn topic_matches(filter: &str, topic: &str) -> bool {
    let mut want = filter.split('/');
    let mut have = topic.split('/');
    loop {
        match (want.next(), have.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(w), Some(h)) if w == h => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// The QoS of a number (0, 1 or 2).
pub(crate) fn qos(n: u8) -> QoS {
    match n {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
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

/// The options of a connection to `url` as client `client_id`.
fn options(url: &str, client_id: String) -> Result<MqttOptions, String> {
    let parsed = url::Url::parse(url).map_err(|e| e.to_string())?;
    let host = parsed
        .host_str()
        .ok_or("the URL names no host")?
        .trim_matches(['[', ']'])
        .to_owned();
    let mut o = MqttOptions::new(client_id, host, parsed.port().unwrap_or(1883));
    o.set_keep_alive(Duration::from_secs(30))
        .set_clean_start(true)
        .set_connection_timeout(CONNECT_TIMEOUT.as_secs())
        .set_request_channel_capacity(QUEUE);
    if !parsed.username().is_empty() {
        o.set_credentials(parsed.username(), parsed.password().unwrap_or(""));
    }
    Ok(o)
}

/// What a publish waits for: written (QoS 0) or acknowledged; `Err` with
/// the reason it failed.
pub(crate) type Done = oneshot::Sender<Result<(), Failure>>;

/// Why a publish failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The connection was lost before its acknowledgement.
    Lost,
    /// The broker refused it (a reason code of failure).
    Refused,
}

/// The publishes in flight on the shared connection.
#[derive(Default)]
pub(crate) struct InFlight {
    /// Queued for writing, in order.
    queued: VecDeque<Done>,
    /// Written, awaiting their acknowledgement, by packet id.
    acked_by: HashMap<u16, Done>,
}

impl InFlight {
    fn fail_all(&mut self) {
        for tx in self
            .queued
            .drain(..)
            .chain(self.acked_by.drain().map(|(_, t)| t))
        {
            let _ = tx.send(Err(Failure::Lost));
        }
    }

    fn finish(&mut self, pkid: u16, result: Result<(), Failure>) {
        if let Some(tx) = self.acked_by.remove(&pkid) {
            let _ = tx.send(result);
        }
    }
}

/// The shared publishing connection.
pub(crate) struct Publisher {
    pub(crate) client: AsyncClient,
    /// Held while a publish enters the queue, so that its place is known.
    pub(crate) in_flight: Arc<Mutex<InFlight>>,
}

/// The plan's broker, consumers and producers.
pub struct MqttProtocol {
    url: String,
    redacted: String,
    pub(crate) timeout: Duration,
    specs: Vec<TopicSpec>,
    pub(crate) consumers: Consumers,
    pub(crate) publisher: std::sync::OnceLock<Publisher>,
    clients: Mutex<Vec<AsyncClient>>,
    stop: CancellationToken,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl fmt::Debug for MqttProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MqttProtocol")
            .field("url", &self.redacted)
            .field("consumers", &self.specs)
            .finish_non_exhaustive()
    }
}

/// Polls a publishing connection: tells each publish its fate.
async fn drive_publisher(
    mut events: EventLoop,
    in_flight: Arc<Mutex<InFlight>>,
    connected: oneshot::Sender<Result<(), String>>,
    stop: CancellationToken,
) {
    let mut connected = Some(connected);
    loop {
        let event = tokio::select! {
            () = stop.cancelled() => break,
            e = events.poll() => e,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                if let Some(tx) = connected.take() {
                    let _ = tx.send(match ack.code {
                        ConnectReturnCode::Success => Ok(()),
                        code => Err(format!("the broker refused the connection: {code:?}")),
                    });
                }
            }
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                let mut f = lock(&in_flight);
                if let Some(tx) = f.queued.pop_front() {
                    if pkid == 0 {
                        let _ = tx.send(Ok(()));
                    } else {
                        f.acked_by.insert(pkid, tx);
                    }
                }
            }
            Ok(Event::Incoming(Packet::PubAck(ack))) => {
                let ok = matches!(
                    ack.reason,
                    PubAckReason::Success | PubAckReason::NoMatchingSubscribers
                );
                lock(&in_flight).finish(ack.pkid, ok.then_some(()).ok_or(Failure::Refused));
            }
            Ok(Event::Incoming(Packet::PubRec(rec))) => {
                let ok = matches!(
                    rec.reason,
                    PubRecReason::Success | PubRecReason::NoMatchingSubscribers
                );
                if !ok {
                    lock(&in_flight).finish(rec.pkid, Err(Failure::Refused));
                }
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) => break,
            Ok(Event::Incoming(Packet::PubComp(comp))) => {
                lock(&in_flight).finish(comp.pkid, Ok(()));
            }
            Ok(_) => {}
            Err(error) => {
                if let Some(tx) = connected.take() {
                    let _ = tx.send(Err(error.to_string()));
                    break;
                }
                tracing::debug!(%error, "mqtt: the publishing connection failed");
                // What was in flight is failed, not published again.
                events.pending.clear();
                lock(&in_flight).fail_all();
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(RECONNECT_AFTER) => {}
                }
            }
        }
    }
    lock(&in_flight).fail_all();
}

/// Polls a consumer's connection: hands each message to its destination.
async fn drive_consumer(
    mut events: EventLoop,
    dest: Arc<Destination>,
    sink: Sink,
    subscribed: oneshot::Sender<Result<(), String>>,
    stop: CancellationToken,
) {
    let mut subscribed = Some(subscribed);
    loop {
        let event = tokio::select! {
            () = stop.cancelled() => break,
            e = events.poll() => e,
        };
        match event {
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let envelope = p.properties.as_ref().and_then(|props| {
                    props
                        .user_properties
                        .iter()
                        .find(|(k, _)| k == HEADER)
                        .map(|(_, v)| v.as_str())
                });
                sink.received(&dest, envelope, &p.payload);
            }
            // Our own disconnect, at the end.
            Ok(Event::Outgoing(Outgoing::Disconnect)) => break,
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                if let Some(tx) = subscribed.take() {
                    let refused = ack.return_codes.iter().find(|c| {
                        !matches!(
                            c,
                            rumqttc::v5::mqttbytes::v5::SubscribeReasonCode::Success(_)
                        )
                    });
                    let _ = tx.send(match refused {
                        None => Ok(()),
                        Some(code) => Err(format!("the broker refused the subscription: {code:?}")),
                    });
                }
            }
            Ok(_) => {}
            Err(error) => {
                if let Some(tx) = subscribed.take() {
                    let _ = tx.send(Err(error.to_string()));
                    break;
                }
                tracing::warn!(dest = %dest.name, %error, "mqtt: a consumer's connection failed; reconnecting");
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(RECONNECT_AFTER) => {}
                }
            }
        }
    }
}

impl MqttProtocol {
    pub(crate) fn new(
        url: String,
        timeout: Duration,
        grace: Duration,
        specs: Vec<TopicSpec>,
        dests: Vec<Arc<Destination>>,
        run: u64,
    ) -> Self {
        let fed = dests
            .into_iter()
            .zip(specs.iter().map(|s| Some(s.expects.clone())))
            .collect();
        Self {
            redacted: redact_url(&url),
            url,
            timeout,
            specs,
            consumers: Consumers::new(fed, topic_matches, run, grace),
            publisher: std::sync::OnceLock::new(),
            clients: Mutex::new(Vec::new()),
            stop: CancellationToken::new(),
            tasks: Mutex::new(Vec::new()),
        }
    }

    async fn connect(&self) -> Result<(), String> {
        let unreachable =
            |reason: String| format!("mqtt broker at {} cannot be used: {reason}", self.redacted);
        let run = self.consumers.run;
        let wait = |rx: oneshot::Receiver<Result<(), String>>| async move {
            match tokio::time::timeout(CONNECT_TIMEOUT + Duration::from_secs(1), rx).await {
                Ok(Ok(r)) => r,
                Ok(Err(_)) => Err("the connection ended".to_owned()),
                Err(_) => Err("no answer within 5s".to_owned()),
            }
        };
        // Consumers first: each subscribed before the first publish.
        for (i, spec) in self.specs.iter().enumerate() {
            let Some(dest) = self.consumers.dests.get(i).cloned() else {
                continue;
            };
            let o = options(&self.url, format!("loadline-{run:x}-c{i}")).map_err(&unreachable)?;
            let (client, events) = AsyncClient::new(o, 64);
            let (tx, rx) = oneshot::channel();
            lock(&self.tasks).push(tokio::spawn(drive_consumer(
                events,
                dest,
                self.consumers.sink(),
                tx,
                self.stop.clone(),
            )));
            client
                .subscribe(spec.topic.clone(), qos(spec.qos))
                .await
                .map_err(|e| unreachable(e.to_string()))?;
            wait(rx)
                .await
                .map_err(|e| format!("mqtt consumer `{}` ({}): {e}", spec.name, spec.topic))?;
            lock(&self.clients).push(client);
        }
        let o = options(&self.url, format!("loadline-{run:x}-pub")).map_err(&unreachable)?;
        let (client, events) = AsyncClient::new(o, QUEUE);
        let in_flight = Arc::new(Mutex::new(InFlight::default()));
        let (tx, rx) = oneshot::channel();
        lock(&self.tasks).push(tokio::spawn(drive_publisher(
            events,
            in_flight.clone(),
            tx,
            self.stop.clone(),
        )));
        wait(rx).await.map_err(unreachable)?;
        let _ = self.publisher.set(Publisher { client, in_flight });
        Ok(())
    }

    async fn disconnect(&self) {
        let mut clients = std::mem::take(&mut *lock(&self.clients));
        if let Some(p) = self.publisher.get() {
            clients.push(p.client.clone());
        }
        for c in clients {
            let _ = tokio::time::timeout(Duration::from_secs(1), c.disconnect()).await;
        }
        // Let the event loops write the disconnects.
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.stop.cancel();
        let tasks = std::mem::take(&mut *lock(&self.tasks));
        for t in tasks {
            let _ = tokio::time::timeout(CONNECT_TIMEOUT, t).await;
        }
    }
}

impl Protocol for MqttProtocol {
    fn name(&self) -> &'static str {
        "mqtt"
    }

    fn new_vu_state(&self) -> Box<dyn Any + Send> {
        Box::new(VuEvents::default())
    }

    fn prepare<'a>(&'a self, _plan: &'a Plan) -> BoxFuture<'a, HookResult> {
        Box::pin(async move {
            let connected = self.connect().await;
            if connected.is_err() {
                self.disconnect().await;
            }
            self.consumers.prepared(
                "mqtt",
                "the MQTT broker",
                &self.redacted,
                "subscribed",
                connected,
            )
        })
    }

    fn load_starting(&self, hub: &Arc<MetricsHub>) {
        // The consumers' connections are read since `prepare`; from now on
        // what they receive is counted.
        self.consumers.start(hub, |_| Vec::new());
    }

    fn load_ended(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.consumers.settle().await;
        })
    }

    fn finish(&self) -> BoxFuture<'_, HookResult> {
        Box::pin(async move {
            self.disconnect().await;
            Ok(Vec::new())
        })
    }

    fn describe(&self) -> Vec<String> {
        let mut lines = vec![format!(
            "mqtt broker: {} (MQTT 5; not connected: `run` connects first)",
            self.redacted
        )];
        for c in &self.specs {
            lines.push(format!(
                "mqtt consumer {}: topic {} at QoS {}, expecting what is published to {}",
                c.name, c.topic, c.qos, c.expects
            ));
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_filters() {
        assert!(topic_matches("sensors/+/temp", "sensors/7/temp"));
        assert!(topic_matches("sensors/#", "sensors/7/temp"));
        assert!(topic_matches("sensors/#", "sensors"));
        assert!(topic_matches("#", "a/b"));
        assert!(!topic_matches("sensors/+/temp", "sensors/7/8/temp"));
        assert!(!topic_matches("sensors/+", "sensors"));
        assert!(!topic_matches("a/b", "a/c"));
    }

    #[test]
    fn options_take_the_url_apart() {
        let o = options("mqtt://u:pw@127.0.0.1:1884", "c".into()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(o.broker_address(), ("127.0.0.1".to_owned(), 1884));
        assert_eq!(
            redact_url("mqtt://u:pw@127.0.0.1:1884"),
            "mqtt://u:***@127.0.0.1:1884"
        );
        assert!(options("not a url", "c".into()).is_err());
    }
}
