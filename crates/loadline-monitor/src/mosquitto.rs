//! Mosquitto brokers under test: their `$SYS/broker/#` topics, subscribed to
//! over MQTT for the whole run. Mosquitto publishes them every
//! `sys_interval` (10 s by default), so the values change at that pace; the
//! rates are taken between two publications of a counter.
//!
//! | series (each labelled `{broker=HOST:PORT}`) | from `$SYS/broker/…` |
//! |---|---|
//! | `mosquitto.clients_connected` | `clients/connected` |
//! | `mosquitto.publish_received_per_s`, `mosquitto.publish_sent_per_s` | `publish/messages/received`, `…/sent` |
//! | `mosquitto.bytes_received_per_s`, `mosquitto.bytes_sent_per_s` | `bytes/received`, `bytes/sent` |
//! | `mosquitto.messages_stored` | `store/messages/count` |
//! | `mosquitto.publish_dropped` | `publish/messages/dropped`, since the monitor's first value |
//! | `mosquitto.heap_bytes` | `heap/current` |
//!
//! The counts are the broker's, whoever publishes (the monitor's own
//! connection included). A broker that cannot be reached is a warning once
//! per failure streak; its series leave the snapshot and the monitor keeps
//! trying.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use loadline_core::monitor::MonitorValue;
use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::board::{series_key, value, Slot};

/// The gauges: topic (under `$SYS/broker/`) → series.
const GAUGES: [(&str, &str); 3] = [
    ("clients/connected", "mosquitto.clients_connected"),
    ("store/messages/count", "mosquitto.messages_stored"),
    ("heap/current", "mosquitto.heap_bytes"),
];
/// The counters whose rate is a series.
const COUNTERS: [(&str, &str); 4] = [
    (
        "publish/messages/received",
        "mosquitto.publish_received_per_s",
    ),
    ("publish/messages/sent", "mosquitto.publish_sent_per_s"),
    ("bytes/received", "mosquitto.bytes_received_per_s"),
    ("bytes/sent", "mosquitto.bytes_sent_per_s"),
];
const DROPPED: &str = "publish/messages/dropped";

/// A broker to watch.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) name: String,
    host: String,
    port: u16,
    credentials: Option<(String, String)>,
}

impl Target {
    /// The broker at `url` (`mqtt://host:1883`).
    pub(crate) fn new(url: &str) -> Result<Self, String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("`{url}` is not a URL: {e}"))?;
        if parsed.scheme() != "mqtt" {
            return Err(format!(
                "`{url}`: expected the broker's mqtt:// URL, e.g. mqtt://127.0.0.1:1883"
            ));
        }
        let host = parsed
            .host_str()
            .ok_or_else(|| format!("`{url}` names no host"))?
            .trim_matches(['[', ']'])
            .to_owned();
        let port = parsed.port().unwrap_or(1883);
        let credentials = (!parsed.username().is_empty()).then(|| {
            (
                parsed.username().to_owned(),
                parsed.password().unwrap_or("").to_owned(),
            )
        });
        Ok(Self {
            name: format!("{host}:{port}"),
            host,
            port,
            credentials,
        })
    }
}

/// A topic's last value and when it came, and the one before.
type Latest = (f64, Instant, Option<(f64, Instant)>);

/// What the broker published, and when, turned into series values.
#[derive(Debug)]
pub(crate) struct Sys {
    name: String,
    /// Topic (under `$SYS/broker/`) → its last two values and when they came.
    latest: HashMap<String, Latest>,
    dropped_base: Option<f64>,
}

impl Sys {
    pub(crate) fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            latest: HashMap::new(),
            dropped_base: None,
        }
    }

    fn key(&self, series: &str) -> String {
        series_key(series, [("broker", self.name.as_str())])
    }

    /// Takes in one `$SYS` publication.
    pub(crate) fn note(&mut self, topic: &str, payload: &[u8], at: Instant) {
        let Some(topic) = topic.strip_prefix("$SYS/broker/") else {
            return;
        };
        let Some(v) = std::str::from_utf8(payload)
            .ok()
            .and_then(|t| t.split_whitespace().next()?.parse::<f64>().ok())
        else {
            return;
        };
        let entry = self.latest.entry(topic.to_owned()).or_insert((v, at, None));
        if entry.1 != at {
            *entry = (v, at, Some((entry.0, entry.1)));
        }
    }

    pub(crate) fn values(&mut self) -> Vec<MonitorValue> {
        let mut out = Vec::new();
        for (topic, series) in GAUGES {
            if let Some((v, _, _)) = self.latest.get(topic) {
                out.extend(value(self.key(series), *v));
            }
        }
        for (topic, series) in COUNTERS {
            if let Some((now, at, Some((was, then)))) = self.latest.get(topic) {
                let secs = at.duration_since(*then).as_secs_f64();
                if secs > 0.0 && now >= was {
                    out.extend(value(self.key(series), (now - was) / secs));
                }
            }
        }
        if let Some((dropped, _, _)) = self.latest.get(DROPPED).copied() {
            let base = *self.dropped_base.get_or_insert(dropped);
            let base = if dropped < base { 0.0 } else { base };
            out.extend(value(self.key("mosquitto.publish_dropped"), dropped - base));
        }
        out
    }
}

/// Watches `target`, publishing its values every `every` until `stop`.
pub(crate) async fn run(target: Target, slot: Slot, every: Duration, stop: CancellationToken) {
    let what = format!("mosquitto monitor {}", target.name);
    let id = format!("loadline-monitor-{:x}", fastrand::u64(..));
    let mut options = MqttOptions::new(id, target.host.clone(), target.port);
    options.set_keep_alive(Duration::from_secs(30));
    if let Some((user, password)) = &target.credentials {
        options.set_credentials(user.clone(), password.clone());
    }
    let (client, mut events) = AsyncClient::new(options, 16);
    if client
        .subscribe("$SYS/broker/#", QoS::AtMostOnce)
        .await
        .is_err()
    {
        slot.warn(format!("{what}: cannot subscribe to $SYS/broker/#"));
        return;
    }
    let mut sys = Sys::new(&target.name);
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => break,
            _ = ticker.tick() => slot.publish(sys.values()),
            e = events.poll() => match e {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if failing {
                        failing = false;
                        tracing::info!(monitor = %what, "the Mosquitto broker answers again");
                    }
                    sys.note(&String::from_utf8_lossy(&p.topic), &p.payload, Instant::now());
                }
                Ok(_) => {}
                Err(problem) => {
                    sys = Sys::new(&target.name);
                    slot.publish(Vec::new());
                    if !failing {
                        failing = true;
                        slot.warn(format!(
                            "{what}: {problem} (will keep trying each interval)"
                        ));
                    }
                    tokio::select! {
                        () = stop.cancelled() => break,
                        () = tokio::time::sleep(every) => {}
                    }
                }
            },
        }
    }
    let _ = client.try_disconnect();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(values: &[MonitorValue], series: &str) -> Option<f64> {
        let key = format!("{series}{{broker=127.0.0.1:1883}}");
        values.iter().find(|v| v.series == key).map(|v| v.value)
    }

    #[test]
    fn sys_topics_become_gauges_and_rates() {
        let target = Target::new("mqtt://127.0.0.1:1883").unwrap_or_else(|e| panic!("{e}"));
        let mut sys = Sys::new(&target.name);
        let t0 = Instant::now();
        sys.note("$SYS/broker/clients/connected", b"3", t0);
        sys.note("$SYS/broker/publish/messages/received", b"1000", t0);
        sys.note("$SYS/broker/publish/messages/dropped", b"7", t0);
        sys.note("$SYS/broker/uptime", b"1386 seconds", t0);
        sys.note("$SYS/broker/version", b"mosquitto version 2.0.11", t0);
        sys.note("elsewhere/clients/connected", b"99", t0);
        let first = sys.values();
        assert_eq!(get(&first, "mosquitto.clients_connected"), Some(3.0));
        assert_eq!(get(&first, "mosquitto.publish_dropped"), Some(0.0));
        assert_eq!(get(&first, "mosquitto.publish_received_per_s"), None);
        let t1 = t0 + Duration::from_secs(10);
        sys.note("$SYS/broker/publish/messages/received", b"6000", t1);
        sys.note("$SYS/broker/publish/messages/dropped", b"12", t1);
        let second = sys.values();
        assert_eq!(
            get(&second, "mosquitto.publish_received_per_s"),
            Some(500.0)
        );
        assert_eq!(get(&second, "mosquitto.publish_dropped"), Some(5.0));
        assert!(Target::new("http://127.0.0.1:1883").is_err());
        assert_eq!(
            Target::new("mqtt://u:p@localhost").map(|t| (t.name, t.credentials)),
            Ok(("localhost:1883".to_owned(), Some(("u".into(), "p".into()))))
        );
    }
}
