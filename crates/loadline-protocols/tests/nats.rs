//! NATS steps and consumers against the real NATS server on this machine
//! (127.0.0.1:4222, with JetStream), scenarios built by the native format
//! and run by the engine. A test whose server is not reachable says so and
//! passes, unless `LOADLINE_REQUIRE_SERVICES=1`, when it fails. Every test
//! uses subjects of its own (a prefix with the process id and a random part)
//! and deletes the JetStream streams it creates. Every run is bounded: a few
//! hundred messages, a few seconds.

#![cfg(feature = "nats")]
// Test set-up failures are bugs in the test; unwrapping keeps them short.
#![allow(clippy::unwrap_used)]

mod common;
use common::{group, plan, run_with};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use loadline_core::events::EventCounts;
use loadline_core::metrics::Stats;
use loadline_core::plan::Plan;
use loadline_core::runner::{self, NoObserver, RunOptions};

const ADDR: &str = "127.0.0.1:4222";
const HEADER: &str = "Loadline-Envelope";

async fn reachable() -> bool {
    common::reachable("NATS", ADDR).await
}

/// A subject prefix (and stream name part) of this test run.
fn prefix(test: &str) -> String {
    common::unique(test, '_')
}

async fn client() -> async_nats::Client {
    async_nats::connect(format!("nats://{ADDR}")).await.unwrap()
}

/// Runs a plan with its protocols' hooks; its figures.
async fn run(plan: &Arc<Plan>) -> Stats {
    run_with(plan, RunOptions::default(), Box::new(NoObserver)).await
}

/// Counts the messages with loadline's envelope on `subject` until stopped.
fn count_on(
    sub: async_nats::Subscriber,
    stop: tokio_util::sync::CancellationToken,
) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let mut sub = sub;
        let mut n = 0;
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                m = sub.next() => match m {
                    Some(m) if m.headers.as_ref().is_some_and(|h| h.get(HEADER).is_some()) => n += 1,
                    Some(_) => {}
                    None => break,
                },
            }
        }
        n
    })
}

const CORE: &str = r#"
nats:
  url: "nats://127.0.0.1:4222"
  consumers:
    orders: { subject: "PREFIX.orders" }
phases: [{ duration: 2s, arrival_rate: 150 }]
flows:
  - steps:
      - nats:
          publish: "PREFIX.orders"
          payload: { id: "{{ $uuid() }}", vu: "{{ $vu }}" }
          headers: { tenant: acme }
          name: publish
      - nats: { wait_for_event: orders, match: { envelope: true }, timeout: 2s, name: echoed }
      - nats:
          request: "PREFIX.price"
          payload: '{"sku": "lamp"}'
          capture: { price: "$.price" }
          name: price
"#;

#[tokio::test]
async fn core_counts_equal_an_independent_subscriber() {
    if !reachable().await {
        return;
    }
    let p = prefix("core");
    let nc = client().await;
    // A responder for the request step, and an independent count.
    let mut responder = nc.subscribe(format!("{p}.price")).await.unwrap();
    let replier = nc.clone();
    tokio::spawn(async move {
        while let Some(m) = responder.next().await {
            if let Some(reply) = m.reply {
                let _ = replier.publish(reply, r#"{"price": 12}"#.into()).await;
            }
        }
    });
    let stop = tokio_util::sync::CancellationToken::new();
    let independent = count_on(
        nc.subscribe(format!("{p}.orders")).await.unwrap(),
        stop.clone(),
    );
    nc.flush().await.unwrap();
    let plan = plan(CORE, &p);
    let st = run(&plan).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.cancel();
    let independent = independent.await.unwrap();
    let e = group(&plan, &st, "orders").events;
    let published = group(&plan, &st, "publish");
    println!("core: {e:?}, independent subscriber {independent}");
    assert!(published.requests >= 250, "{}", published.requests);
    assert_eq!(published.failed, 0);
    assert_eq!(e.sent, published.requests);
    assert_eq!(e.received, independent);
    assert_eq!(e.received, e.sent);
    assert_eq!((e.lost, e.duplicated, e.out_of_order), (0, 0, 0));
    let orders = group(&plan, &st, "orders");
    assert_eq!(orders.latency.len(), e.received);
    let echoed = group(&plan, &st, "echoed");
    assert_eq!((echoed.requests, echoed.failed), (published.requests, 0));
    let price = group(&plan, &st, "price");
    assert_eq!((price.requests, price.failed), (published.requests, 0));
}

const TWICE: &str = r#"
nats:
  url: "nats://127.0.0.1:4222"
  grace: 500ms
  consumers:
    orders: { subject: "PREFIX.orders" }
phases: [{ duration: 1s, arrival_rate: 100 }]
flows:
  - steps:
      - nats: { publish: "PREFIX.orders", payload: "x", name: publish }
"#;

/// A plan run several times (a capacity search's steps) keeps its consumers
/// and counts each run on its own.
#[tokio::test]
async fn each_run_of_a_plan_is_counted_on_its_own() {
    if !reachable().await {
        return;
    }
    let p = prefix("twice");
    let plan = plan(TWICE, &p);
    for protocol in &plan.protocols {
        protocol.prepare(&plan).await.unwrap();
    }
    for round in 0..2 {
        let result = runner::run(plan.clone(), RunOptions::default(), Box::new(NoObserver)).await;
        let e = group(&plan, &result.total, "orders").events;
        let sent = group(&plan, &result.total, "publish").requests;
        println!("run {round}: {e:?}");
        assert!(sent >= 90, "{sent}");
        assert_eq!((e.sent, e.received, e.lost), (sent, sent, 0), "run {round}");
    }
    for protocol in &plan.protocols {
        protocol.finish().await.unwrap();
    }
}

const JETSTREAM: &str = r#"
nats:
  url: "nats://127.0.0.1:4222"
  consumers:
    acked: { stream: "PREFIX", subject: "PREFIX.js.>", expects: "PREFIX.js.>" }
phases: [{ duration: 2s, arrival_rate: 100 }]
flows:
  - steps:
      - nats:
          publish: "PREFIX.js.{{ $vu }}"
          payload: "n={{ $vu }}"
          jetstream: true
          name: publish
"#;

#[tokio::test]
async fn jetstream_acks_equal_the_stream_and_a_stored_retry_is_a_duplicate() {
    if !reachable().await {
        return;
    }
    let p = prefix("js");
    let nc = client().await;
    let js = async_nats::jetstream::new(nc.clone());
    let mut stream = js
        .create_stream(async_nats::jetstream::stream::Config {
            name: p.clone(),
            subjects: vec![format!("{p}.js.>")],
            max_age: Duration::from_secs(600),
            ..Default::default()
        })
        .await
        .unwrap();
    // A producer's retry: the first message loadline publishes is stored
    // twice more, with its envelope.
    let mut first = nc.subscribe(format!("{p}.js.>")).await.unwrap();
    nc.flush().await.unwrap();
    let retry = js.clone();
    let retried = tokio::spawn(async move {
        let m = first.next().await.unwrap();
        for _ in 0..2 {
            retry
                .publish_with_headers(
                    m.subject.clone(),
                    m.headers.clone().unwrap(),
                    m.payload.clone(),
                )
                .await
                .unwrap()
                .await
                .unwrap();
        }
    });
    let plan = plan(JETSTREAM, &p);
    let st = run(&plan).await;
    retried.await.unwrap();
    let stored = stream.info().await.unwrap().state.messages;
    js.delete_stream(&p).await.unwrap();
    let e = group(&plan, &st, "acked").events;
    let published = group(&plan, &st, "publish");
    println!("jetstream: {e:?}, stream holds {stored}");
    assert!(published.requests >= 150, "{}", published.requests);
    assert_eq!(published.failed, 0);
    assert_eq!(e.sent + 2, stored);
    assert_eq!(e.received, stored);
    assert_eq!((e.lost, e.duplicated, e.out_of_order), (0, 2, 0));
    assert!(e.lag_max.is_some(), "the consumer's pending count was read");
}

const PIPELINE: &str = r#"
nats:
  url: "nats://127.0.0.1:4222"
  grace: 1s
  consumers:
    out: { subject: "PREFIX.out", expects: "PREFIX.in" }
phases: [{ duration: 2500ms, vus: 1 }]
flows:
  - steps:
      - nats: { publish: "PREFIX.in", payload: "x", name: publish }
      - think: 5ms
"#;

/// What the relay did.
#[derive(Debug, Default)]
struct Relayed {
    dropped: AtomicU64,
    replayed: AtomicU64,
    swapped: AtomicU64,
}

#[tokio::test]
async fn a_relay_that_stops_replays_and_swaps_is_measured_exactly() {
    if !reachable().await {
        return;
    }
    let p = prefix("relay");
    let nc = client().await;
    // The system under test: forwards `in` to `out` with its headers, but
    // discards everything for a second (a consumer stopped mid-run), sends
    // its 20th message three times and its 30th after its 31st.
    let mut input = nc.subscribe(format!("{p}.in")).await.unwrap();
    nc.flush().await.unwrap();
    let relayed = Arc::new(Relayed::default());
    let (out, forward, counts) = (format!("{p}.out"), nc.clone(), relayed.clone());
    tokio::spawn(async move {
        let mut first: Option<Instant> = None;
        let mut n = 0u64;
        let mut held: Option<async_nats::Message> = None;
        while let Some(m) = input.next().await {
            let t0 = *first.get_or_insert_with(Instant::now);
            let age = t0.elapsed();
            if age > Duration::from_millis(800) && age < Duration::from_millis(1800) {
                counts.dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            n += 1;
            let send = |m: &async_nats::Message| {
                forward.publish_with_headers(
                    out.clone(),
                    m.headers.clone().unwrap_or_default(),
                    m.payload.clone(),
                )
            };
            if n == 30 {
                held = Some(m);
                continue;
            }
            send(&m).await.unwrap();
            if n == 20 {
                send(&m).await.unwrap();
                send(&m).await.unwrap();
                counts.replayed.fetch_add(2, Ordering::Relaxed);
            }
            if let Some(h) = held.take() {
                send(&h).await.unwrap();
                counts.swapped.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    let plan = plan(PIPELINE, &p);
    let st = run(&plan).await;
    let e = group(&plan, &st, "out").events;
    let published = group(&plan, &st, "publish").requests;
    println!("relay: {e:?}, published {published}, relay {relayed:?}");
    let dropped = relayed.dropped.load(Ordering::Relaxed);
    assert!(dropped > 50, "the relay dropped {dropped}");
    assert_eq!(e.sent, published);
    assert_eq!(e.lost, dropped);
    assert_eq!(e.duplicated, relayed.replayed.load(Ordering::Relaxed));
    assert_eq!(e.out_of_order, relayed.swapped.load(Ordering::Relaxed));
    assert_eq!(
        e,
        EventCounts {
            sent: published,
            received: published - dropped + 2,
            duplicated: 2,
            out_of_order: 1,
            lost: dropped,
            lag_max: None,
        }
    );
}

/// Scenario mistakes are reported where they are written, before anything
/// connects (no server needed).
#[test]
fn mistakes_are_reported_at_their_line() {
    let text = r#"target: http://127.0.0.1:9
nats:
  url: http://127.0.0.1:4222
  consumers:
    orders: { subject: orders.created }
    js: { durable: x }
phases: [{ duration: 1s, arrival_rate: 1 }]
thresholds:
  "events_lost{dest:ordres}": ["count == 0"]
  "events_latency{step:orders}": ["p99 < 1s"]
flows:
  - steps:
      - nats: { wait_for_event: order, match: { json: "$.id" } }
      - nats: { publish: a, request: b }
      - nats: { publish: a, headers: { Loadline-Envelope: x }, match: { envelope: true } }
"#;
    let err = common::load_errors(text);
    for expected in [
        "bad.yaml:3:8: nats.url: expected a nats:// or tls:// URL",
        "bad.yaml:6:9: nats.consumers.js: consumer `js` needs `subject` (core NATS) or `stream` (JetStream)",
        "bad.yaml:9:3: thresholds[\"events_lost{dest:ordres}\"]: no event destination has the name `ordres`",
        "`events_latency` is counted per destination: write `{dest:NAME}`",
        "bad.yaml:13:33: flows[0].steps[0].nats.wait_for_event: no NATS consumer is called `order`",
        "`match` takes `json` and `equals` together, or `envelope: true`",
        "bad.yaml:14:15: flows[0].steps[1].nats: a `nats:` step needs exactly one of",
        "`Loadline-Envelope` is loadline's own header",
        "`match` is not a setting of `publish`",
    ] {
        assert!(err.contains(expected), "missing `{expected}` in:\n{err}");
    }
}
