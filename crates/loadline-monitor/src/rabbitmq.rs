//! RabbitMQ brokers under test: the depth and the consumers of named queues,
//! read over AMQP each interval by a passive declare (which neither creates
//! nor changes a queue), so no management plugin is needed.
//!
//! | series (each labelled `{broker=HOST:PORT,queue=NAME}`) | from |
//! |---|---|
//! | `rabbitmq.queue_messages` | the queue's ready messages |
//! | `rabbitmq.queue_consumers` | its consumers |
//!
//! A queue that does not exist, or a broker that cannot be reached, is a
//! warning once per failure streak; its series leave the snapshot and the
//! monitor keeps trying.

use std::time::Duration;

use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties};
use loadline_core::monitor::MonitorValue;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::board::{series_key, value, Slot};

/// How long connecting or one declare may take.
const TIMEOUT: Duration = Duration::from_secs(2);

/// A broker's queues to watch.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) name: String,
    url: String,
    queues: Vec<String>,
}

impl Target {
    /// The `queues` of the broker at `url` (`amqp://user:password@host:5672/vhost`).
    pub(crate) fn new(url: &str, queues: Vec<String>) -> Result<Self, String> {
        let parsed =
            url::Url::parse(url).map_err(|_| "the broker's URL is not a URL".to_owned())?;
        if !matches!(parsed.scheme(), "amqp" | "amqps") {
            return Err(
                "expected the broker's amqp:// URL, e.g. amqp://guest:guest@127.0.0.1:5672/%2f"
                    .into(),
            );
        }
        if queues.is_empty() {
            return Err("name the queues to watch: `queues: [orders]`".into());
        }
        let host = parsed.host_str().unwrap_or("rabbitmq").to_owned();
        let port = parsed.port().unwrap_or(5672);
        Ok(Self {
            name: format!("{host}:{port}"),
            url: url.to_owned(),
            queues,
        })
    }
}

/// The series values of one sample: per queue, its depth and consumers.
pub(crate) fn values(broker: &str, sample: &[(String, u32, u32)]) -> Vec<MonitorValue> {
    let mut out = Vec::new();
    for (queue, messages, consumers) in sample {
        let labels = [("broker", broker), ("queue", queue.as_str())];
        out.extend(value(
            series_key("rabbitmq.queue_messages", labels),
            f64::from(*messages),
        ));
        out.extend(value(
            series_key("rabbitmq.queue_consumers", labels),
            f64::from(*consumers),
        ));
    }
    out
}

async fn sample(
    connection: &mut Option<Connection>,
    channel: &mut Option<Channel>,
    target: &Target,
) -> Result<Vec<(String, u32, u32)>, String> {
    if connection.as_ref().is_none_or(|c| !c.status().connected()) {
        let c = tokio::time::timeout(
            TIMEOUT,
            Connection::connect(&target.url, ConnectionProperties::default()),
        )
        .await
        .map_err(|_| format!("no answer within {TIMEOUT:?}"))?
        .map_err(|e| e.to_string())?;
        *connection = Some(c);
        *channel = None;
    }
    let mut out = Vec::new();
    for queue in &target.queues {
        let ch = match channel.as_ref().filter(|c| c.status().connected()) {
            Some(ch) => ch.clone(),
            None => {
                let Some(conn) = connection.as_ref() else {
                    return Err("not connected".into());
                };
                let ch = conn.create_channel().await.map_err(|e| e.to_string())?;
                *channel = Some(ch.clone());
                ch
            }
        };
        let passive = QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        let q = tokio::time::timeout(
            TIMEOUT,
            ch.queue_declare(queue.as_str().into(), passive, FieldTable::default()),
        )
        .await
        .map_err(|_| format!("no answer within {TIMEOUT:?}"))?
        .map_err(|e| format!("queue `{queue}`: {e}"))?;
        out.push((queue.clone(), q.message_count(), q.consumer_count()));
    }
    Ok(out)
}

/// Samples `target` every `every` until `stop`.
pub(crate) async fn run(target: Target, slot: Slot, every: Duration, stop: CancellationToken) {
    let what = format!("rabbitmq monitor {}", target.name);
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let (mut connection, mut channel) = (None, None);
    let mut failing = false;
    loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => break,
            _ = ticker.tick() => {}
        }
        let sampled = tokio::select! {
            biased;
            () = stop.cancelled() => break,
            s = sample(&mut connection, &mut channel, &target) => s,
        };
        match sampled {
            Ok(queues) => {
                if failing {
                    failing = false;
                    tracing::info!(monitor = %what, "the RabbitMQ broker answers again");
                }
                slot.publish(values(&target.name, &queues));
            }
            Err(problem) => {
                channel = None;
                slot.publish(Vec::new());
                if !failing {
                    failing = true;
                    slot.warn(format!(
                        "{what}: sample failed: {problem} (will keep trying each interval)"
                    ));
                }
            }
        }
    }
    if let Some(c) = connection {
        let _ = tokio::time::timeout(TIMEOUT, c.close(200, "OK".into())).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queues_become_labelled_gauges() {
        let t = Target::new(
            "amqp://guest:guest@127.0.0.1:5672/%2f",
            vec!["orders".into()],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.name, "127.0.0.1:5672");
        let v = values(&t.name, &[("orders".into(), 12, 2)]);
        let series: Vec<(&str, f64)> = v.iter().map(|v| (v.series.as_str(), v.value)).collect();
        assert_eq!(
            series,
            [
                (
                    "rabbitmq.queue_messages{broker=127.0.0.1:5672,queue=orders}",
                    12.0
                ),
                (
                    "rabbitmq.queue_consumers{broker=127.0.0.1:5672,queue=orders}",
                    2.0
                ),
            ]
        );
        assert!(Target::new("http://127.0.0.1:15672", vec!["q".into()]).is_err());
        assert!(Target::new("amqp://127.0.0.1", vec![]).is_err());
    }
}
