//! MQTT steps and consumers against the real Mosquitto on this machine
//! (127.0.0.1:1883, MQTT 5), scenarios built by the native format and run by
//! the engine. A test whose broker is not reachable says so and passes,
//! unless `LOADLINE_REQUIRE_SERVICES=1`, when it fails. Every test uses
//! topics of its own (a prefix with the process id and a random part). Every
//! run is bounded: a few hundred messages, a few seconds.

#![cfg(feature = "mqtt")]
// Test set-up failures are bugs in the test; unwrapping keeps them short.
#![allow(clippy::unwrap_used)]

mod common;
use common::{group, plan, run_with};

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use loadline_core::metrics::Stats;
use loadline_core::plan::Plan;
use loadline_core::runner::{NoObserver, RunOptions};
use rumqttc::v5::mqttbytes::v5::{Packet, Publish};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};

const ADDR: &str = "127.0.0.1:1883";
const HEADER: &str = "Loadline-Envelope";

async fn reachable() -> bool {
    common::reachable("Mosquitto", ADDR).await
}

/// A topic prefix of this test run.
fn prefix(test: &str) -> String {
    common::unique(test, '_')
}

async fn run(plan: &Arc<Plan>) -> Stats {
    run_with(plan, RunOptions::default(), Box::new(NoObserver)).await
}

fn envelope(p: &Publish) -> Option<String> {
    p.properties
        .as_ref()?
        .user_properties
        .iter()
        .find(|(k, _)| k == HEADER)
        .map(|(_, v)| v.clone())
}

/// A client subscribed to `filter` (the SUBACK received); its event loop.
async fn subscribed(id: &str, filter: &str, qos: QoS) -> (AsyncClient, EventLoop) {
    let mut o = MqttOptions::new(id, "127.0.0.1", 1883);
    o.set_keep_alive(Duration::from_secs(30));
    let (client, mut events) = AsyncClient::new(o, 256);
    client.subscribe(filter, qos).await.unwrap();
    loop {
        if let Event::Incoming(Packet::SubAck(_)) = events.poll().await.unwrap() {
            break;
        }
    }
    (client, events)
}

const QOS: &str = r#"
mqtt:
  url: "mqtt://127.0.0.1:1883"
  consumers:
    all: { topic: "PREFIX/#", qos: 2 }
phases: [{ duration: 2s, arrival_rate: 100 }]
flows:
  - steps:
      - mqtt: { publish: "PREFIX/q0/{{ $vu }}", qos: 0, payload: { n: 0 }, name: qos0 }
      - mqtt: { publish: "PREFIX/q1/{{ $vu }}", qos: 1, payload: { n: 1 }, headers: { tenant: acme }, name: qos1 }
      - mqtt: { wait_for_event: all, match: { envelope: true }, timeout: 2s, name: echoed }
      - mqtt: { publish: "PREFIX/q2/{{ $vu }}", qos: 2, payload: "two", name: qos2 }
"#;

#[tokio::test]
async fn every_qos_arrives_once_and_counts_equal_an_independent_subscriber() {
    if !reachable().await {
        return;
    }
    let p = prefix("qos");
    let (watcher, mut events) =
        subscribed(&format!("{p}-watch"), &format!("{p}/#"), QoS::ExactlyOnce).await;
    let seen = Arc::new(Mutex::new((0u64, HashSet::new())));
    let counts = seen.clone();
    let watching = tokio::spawn(async move {
        while let Ok(e) = events.poll().await {
            if let Event::Incoming(Packet::Publish(m)) = e {
                if let Some(env) = envelope(&m) {
                    let mut c = counts.lock().unwrap();
                    c.0 += 1;
                    c.1.insert(env);
                }
            }
        }
    });
    let plan = plan(QOS, &p);
    let st = run(&plan).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = watcher.disconnect().await;
    let _ = tokio::time::timeout(Duration::from_secs(2), watching).await;
    let (independent, distinct) = {
        let c = seen.lock().unwrap();
        (c.0, c.1.len() as u64)
    };
    let e = group(&plan, &st, "all").events;
    let [q0, q1, q2] = ["qos0", "qos1", "qos2"].map(|g| group(&plan, &st, g));
    println!(
        "mqtt qos: {e:?}, independent subscriber {independent} ({distinct} distinct), published {} {} {}",
        q0.requests, q1.requests, q2.requests
    );
    assert!(q0.requests >= 150, "{}", q0.requests);
    assert_eq!((q0.failed, q1.failed, q2.failed), (0, 0, 0));
    assert_eq!((q1.requests, q2.requests), (q0.requests, q0.requests));
    assert_eq!(e.sent, q0.requests * 3);
    assert_eq!(e.received, e.sent);
    assert_eq!(independent, e.sent);
    assert_eq!(distinct, e.sent);
    assert_eq!((e.lost, e.duplicated, e.out_of_order), (0, 0, 0));
    assert_eq!(e.lag_max, None, "MQTT reports no lag");
    let echoed = group(&plan, &st, "echoed");
    assert_eq!((echoed.requests, echoed.failed), (q0.requests, 0));
}

const PIPELINE: &str = r#"
mqtt:
  url: "mqtt://127.0.0.1:1883"
  grace: 1500ms
  consumers:
    out: { topic: "PREFIX/out", expects: "PREFIX/in", qos: 1 }
phases: [{ duration: 2500ms, vus: 1 }]
flows:
  - steps:
      - mqtt: { publish: "PREFIX/in", qos: 1, payload: "x", name: publish }
      - think: 5ms
"#;

/// What the relay forwarded.
#[derive(Debug, Default)]
struct Relayed {
    envelopes: HashSet<String>,
    forwarded: u64,
}

/// A system under test between two topics: forwards `PREFIX/in` to
/// `PREFIX/out` with its user properties, but is disconnected for a second
/// mid-run (no session kept: what is published meanwhile is lost to it), and
/// sends its 20th message again (a retry after a lost acknowledgement).
#[tokio::test]
async fn a_relay_that_disconnects_and_retries_is_measured_exactly() {
    if !reachable().await {
        return;
    }
    let p = prefix("relay");
    let relayed = Arc::new(Mutex::new(Relayed::default()));
    let (input, out, counts) = (format!("{p}/in"), format!("{p}/out"), relayed.clone());
    let (client, events) = subscribed(&format!("{p}-relay"), &input, QoS::AtLeastOnce).await;
    let relay = tokio::spawn(async move {
        let (mut client, mut events) = (client, events);
        let mut first: Option<Instant> = None;
        let mut stopped = false;
        let mut n = 0u64;
        loop {
            let Ok(e) = events.poll().await else {
                continue;
            };
            let Event::Incoming(Packet::Publish(m)) = e else {
                continue;
            };
            let t0 = *first.get_or_insert_with(Instant::now);
            if !stopped && t0.elapsed() > Duration::from_millis(800) {
                // Gone for a second: a new connection, subscribed again.
                stopped = true;
                let _ = client.disconnect().await;
                drop(events);
                tokio::time::sleep(Duration::from_secs(1)).await;
                (client, events) =
                    subscribed(&format!("{input}-relay2"), &input, QoS::AtLeastOnce).await;
                continue;
            }
            n += 1;
            let times = if n == 20 { 2 } else { 1 };
            for _ in 0..times {
                client
                    .publish_with_properties(
                        out.clone(),
                        QoS::AtLeastOnce,
                        false,
                        m.payload.clone(),
                        m.properties.clone().unwrap_or_default(),
                    )
                    .await
                    .unwrap();
                let mut c = counts.lock().unwrap();
                c.forwarded += 1;
                c.envelopes.insert(envelope(&m).unwrap_or_default());
            }
        }
    });
    let plan = plan(PIPELINE, &p);
    let st = run(&plan).await;
    relay.abort();
    let e = group(&plan, &st, "out").events;
    let published = group(&plan, &st, "publish");
    let r = relayed.lock().unwrap();
    let distinct = r.envelopes.len() as u64;
    println!(
        "mqtt relay: {e:?}, published {}, relay forwarded {} ({distinct} distinct)",
        published.requests, r.forwarded
    );
    assert_eq!(published.failed, 0);
    assert_eq!(e.sent, published.requests);
    assert!(
        e.sent > distinct + 20,
        "the relay missed messages while gone"
    );
    assert_eq!(e.lost, e.sent - distinct);
    assert_eq!(e.received, r.forwarded);
    assert_eq!(e.duplicated, 1);
}

/// Scenario mistakes are reported where they are written, before anything
/// connects (no broker needed).
#[test]
fn mistakes_are_reported_at_their_line() {
    let text = r#"target: http://127.0.0.1:9
mqtt:
  url: tcp://127.0.0.1:1883
  consumers:
    temps: { topic: "a/+", qos: 3 }
phases: [{ duration: 1s, arrival_rate: 1 }]
flows:
  - steps:
      - mqtt: { wait_for_event: temp, match: { json: "$.id", equals: "1" }, retain: true }
      - mqtt: { publish: a, qos: 5 }
      - mqtt: { publish: a, match: { envelope: true } }
"#;
    let err = common::load_errors(text);
    for expected in [
        "bad.yaml:3:8: mqtt.url: expected a mqtt:// URL",
        "bad.yaml:5:33: mqtt.consumers.temps.qos: QoS 3 does not exist: expected 0, 1 or 2",
        "bad.yaml:9:33: flows[0].steps[0].mqtt.wait_for_event: no MQTT consumer is called `temp`",
        "`retain` is not a setting of `wait_for_event`",
        "QoS 5 does not exist",
        "`match` is not a setting of `publish`",
    ] {
        assert!(err.contains(expected), "missing `{expected}` in:\n{err}");
    }
}
