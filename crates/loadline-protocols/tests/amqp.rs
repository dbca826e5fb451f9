//! AMQP steps and consumers against the real RabbitMQ on this machine
//! (127.0.0.1:5672, guest/guest), scenarios built by the native format and
//! run by the engine. A test whose broker is not reachable says so and
//! passes, unless `LOADLINE_REQUIRE_SERVICES=1`, when it fails. Every test
//! uses exchanges and queues of its own (a prefix with the process id and a
//! random part) and deletes them. Every run is bounded: a few hundred
//! messages, a few seconds.

#![cfg(feature = "amqp")]
// Test set-up failures are bugs in the test; unwrapping keeps them short.
#![allow(clippy::unwrap_used)]

mod common;
use common::{group, plan, run_with};

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use loadline_core::metrics::Stats;
use loadline_core::plan::Plan;
use loadline_core::runner::{NoObserver, RunOptions};

const ADDR: &str = "127.0.0.1:5672";
const URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
const HEADER: &str = "Loadline-Envelope";

async fn reachable() -> bool {
    common::reachable("RabbitMQ", ADDR).await
}

/// A name prefix of this test run.
fn prefix(test: &str) -> String {
    common::unique(test, '_')
}

async fn channel() -> (Connection, Channel) {
    let conn = Connection::connect(URL, ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    (conn, ch)
}

async fn run(plan: &Arc<Plan>) -> Stats {
    run_with(plan, RunOptions::default(), Box::new(NoObserver)).await
}

async fn depth(ch: &Channel, queue: &str) -> u32 {
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    ch.queue_declare(queue.into(), passive, FieldTable::default())
        .await
        .unwrap()
        .message_count()
}

async fn delete_queue(ch: &Channel, queue: &str) {
    let _ = ch
        .queue_delete(queue.into(), QueueDeleteOptions::default())
        .await;
}

const TOPIC: &str = r#"
amqp:
  url: "amqp://guest:guest@127.0.0.1:5672/%2f"
  exchanges: { PREFIX: topic }
  consumers:
    orders: { queue: PREFIX_orders, bind: { exchange: PREFIX, routing_key: "orders.#" } }
phases: [{ duration: 2s, arrival_rate: 150 }]
flows:
  - steps:
      - amqp:
          publish: PREFIX
          routing_key: "orders.{{ $vu }}"
          payload: { id: "{{ $uuid() }}", vu: "{{ $vu }}" }
          headers: { tenant: acme }
          name: publish
      - amqp: { wait_for_event: orders, match: { envelope: true }, timeout: 2s, name: echoed }
      - amqp: { publish: PREFIX, routing_key: "audit.x", payload: "not for orders", name: audit }
"#;

#[tokio::test]
async fn confirmed_publishes_equal_an_independent_queue_and_arrive_once() {
    if !reachable().await {
        return;
    }
    let p = prefix("topic");
    let (conn, ch) = channel().await;
    // The exchange exists already (loadline keeps it), with an independent
    // queue bound to what loadline's consumer reads.
    ch.exchange_declare(
        p.as_str().into(),
        ExchangeKind::Topic,
        ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap();
    let independent = format!("{p}_independent");
    ch.queue_declare(
        independent.as_str().into(),
        QueueDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.queue_bind(
        independent.as_str().into(),
        p.as_str().into(),
        "orders.#".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let plan = plan(TOPIC, &p);
    let st = run(&plan).await;
    let held = depth(&ch, &independent).await;
    let left = depth(&ch, &format!("{p}_orders")).await;
    delete_queue(&ch, &independent).await;
    delete_queue(&ch, &format!("{p}_orders")).await;
    let _ = ch
        .exchange_delete(p.as_str().into(), ExchangeDeleteOptions::default())
        .await;
    let _ = conn.close(200, "OK".into()).await;
    let e = group(&plan, &st, "orders").events;
    let published = group(&plan, &st, "publish");
    let audit = group(&plan, &st, "audit");
    println!("amqp topic: {e:?}, independent queue {held}, left {left}");
    assert!(published.requests >= 250, "{}", published.requests);
    assert_eq!((published.failed, audit.failed), (0, 0));
    assert_eq!(audit.requests, published.requests);
    // Only what routes to the binding counts as sent there.
    assert_eq!(e.sent, published.requests);
    assert_eq!(u64::from(held), e.sent);
    assert_eq!(e.received, e.sent);
    assert_eq!((e.lost, e.duplicated, e.out_of_order), (0, 0, 0));
    assert_eq!(left, 0, "every message was acknowledged");
    assert!(e.lag_max.is_some(), "the queue's depth was read");
    let echoed = group(&plan, &st, "echoed");
    assert_eq!((echoed.requests, echoed.failed), (published.requests, 0));
    assert_eq!(group(&plan, &st, "orders").latency.len(), e.received);
}

const PIPELINE: &str = r#"
amqp:
  url: "amqp://guest:guest@127.0.0.1:5672/%2f"
  grace: 1500ms
  consumers:
    out: { queue: PREFIX_out, expects: { exchange: "", routing_key: PREFIX_in } }
phases: [{ duration: 2500ms, vus: 1 }]
flows:
  - steps:
      - amqp: { publish: "", routing_key: PREFIX_in, payload: "x", name: publish }
      - think: 5ms
"#;

/// What the relay forwarded.
#[derive(Debug, Default)]
struct Relayed {
    envelopes: HashSet<String>,
    forwarded: u64,
    nacked: u64,
}

fn envelope(props: &BasicProperties) -> String {
    match props
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get(HEADER).cloned())
    {
        Some(AMQPValue::LongString(s)) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        _ => String::new(),
    }
}

/// A system under test between two queues: reads `PREFIX_in` (at most 5
/// messages long: the broker drops the oldest beyond that) one message at a
/// time and forwards each to `PREFIX_out`; it stops reading for a second
/// mid-run (the queue overflows meanwhile), and nacks its 20th message back
/// to the queue once after forwarding it (the broker redelivers it).
#[tokio::test]
async fn a_stopped_consumer_behind_a_length_limit_and_a_redelivery_are_measured_exactly() {
    if !reachable().await {
        return;
    }
    let p = prefix("relay");
    let (conn, ch) = channel().await;
    let input = format!("{p}_in");
    let mut limit = FieldTable::default();
    limit.insert("x-max-length".into(), AMQPValue::LongLongInt(5));
    ch.queue_declare(input.as_str().into(), QueueDeclareOptions::default(), limit)
        .await
        .unwrap();
    ch.basic_qos(1, BasicQosOptions::default()).await.unwrap();
    let mut deliveries = ch
        .basic_consume(
            input.as_str().into(),
            "relay".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let relayed = Arc::new(Mutex::new(Relayed::default()));
    let (forward, out, counts) = (ch.clone(), format!("{p}_out"), relayed.clone());
    let relay = tokio::spawn(async move {
        let mut first: Option<Instant> = None;
        let mut paused = false;
        let mut n = 0u64;
        while let Some(Ok(d)) = deliveries.next().await {
            let t0 = *first.get_or_insert_with(Instant::now);
            if !paused && t0.elapsed() > Duration::from_millis(800) {
                paused = true;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            forward
                .basic_publish(
                    "".into(),
                    out.as_str().into(),
                    BasicPublishOptions::default(),
                    &d.data,
                    d.properties.clone(),
                )
                .await
                .unwrap()
                .await
                .unwrap();
            n += 1;
            {
                let mut c = counts.lock().unwrap();
                c.forwarded += 1;
                c.envelopes.insert(envelope(&d.properties));
            }
            if n == 20 {
                counts.lock().unwrap().nacked += 1;
                d.nack(BasicNackOptions {
                    requeue: true,
                    ..Default::default()
                })
                .await
                .unwrap();
            } else {
                d.ack(BasicAckOptions::default()).await.unwrap();
            }
        }
    });
    let plan = plan(PIPELINE, &p);
    let st = run(&plan).await;
    relay.abort();
    delete_queue(&ch, &input).await;
    delete_queue(&ch, &format!("{p}_out")).await;
    let _ = conn.close(200, "OK".into()).await;
    let e = group(&plan, &st, "out").events;
    let published = group(&plan, &st, "publish");
    let r = relayed.lock().unwrap();
    let distinct = r.envelopes.len() as u64;
    println!(
        "amqp relay: {e:?}, published {}, relay forwarded {} ({distinct} distinct, {} nacked)",
        published.requests, r.forwarded, r.nacked
    );
    assert_eq!(published.failed, 0);
    assert_eq!(e.sent, published.requests);
    assert!(e.sent > distinct + 20, "the overflow lost messages");
    assert_eq!(e.lost, e.sent - distinct);
    assert_eq!(e.received, r.forwarded);
    assert_eq!(e.duplicated, r.forwarded - distinct);
    assert!(
        r.nacked == 1 && e.duplicated >= 1,
        "the redelivery is a duplicate"
    );
}

/// A queue that must exist (`declare: false`) and does not stops the run
/// before any load.
#[tokio::test]
async fn a_missing_queue_stops_the_run_before_the_load() {
    if !reachable().await {
        return;
    }
    let p = prefix("missing");
    let text = r#"
amqp:
  url: "amqp://guest:guest@127.0.0.1:5672/%2f"
  consumers:
    gone: { queue: PREFIX_nowhere, declare: false }
phases: [{ duration: 1s, arrival_rate: 1 }]
flows:
  - steps:
      - amqp: { publish: "", routing_key: PREFIX_nowhere }
"#;
    let plan = plan(text, &p);
    let err = plan.protocols[0].prepare(&plan).await.err().unwrap();
    let err = err.join("\n");
    assert!(
        err.contains("amqp consumer `gone`: no queue") && err.contains("nothing was run"),
        "{err}"
    );
    plan.protocols[0].finish().await.unwrap();
}

/// Scenario mistakes are reported where they are written, before anything
/// connects (no broker needed).
#[test]
fn mistakes_are_reported_at_their_line() {
    let text = r#"target: http://127.0.0.1:9
amqp:
  url: http://127.0.0.1:5672
  exchanges: { orders: fan }
  consumers:
    orders: { queue: q, arguments: { x-max-length: [1] } }
phases: [{ duration: 1s, arrival_rate: 1 }]
flows:
  - steps:
      - amqp: { wait_for_event: order, match: { envelope: true }, routing_key: k }
      - amqp: { publish: a, wait_for_event: orders }
      - amqp: { publish: a, headers: { Loadline-Envelope: x } }
"#;
    let err = common::load_errors(text);
    for expected in [
        "bad.yaml:3:8: amqp.url: expected an amqp:// or amqps:// URL",
        "bad.yaml:4:24: amqp.exchanges.orders: `fan` is not an exchange type",
        "a queue argument is a number, a string or a boolean",
        "bad.yaml:10:33: flows[0].steps[0].amqp.wait_for_event: no AMQP consumer is called `order`",
        "`routing_key` is not a setting of `wait_for_event`",
        "an `amqp:` step needs exactly one of `publish` and `wait_for_event`",
        "`Loadline-Envelope` is loadline's own header",
    ] {
        assert!(err.contains(expected), "missing `{expected}` in:\n{err}");
    }
}
