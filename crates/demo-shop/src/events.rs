//! The order pipeline: placing an order publishes an `order.placed` event carrying the
//! order id; a consumer receives it, takes `confirm_delay` to "process" it and marks
//! the order `confirmed`. Over NATS, each confirmation is then published in turn, on
//! `demo_shop.<instance>.order.confirmed` as `{"order_id": ID}`: the pipeline's output,
//! which a load test can consume (`demo_shop.*.order.confirmed`) to time orders end
//! to end.
//!
//! The transport is an in-process tokio channel by default, or core NATS pub/sub on a
//! subject unique to the instance (`demo_shop.<instance>.order.placed`) when a URL is
//! given. Core NATS delivers at most once: an event published while the consumer is
//! not subscribed is lost, which is why the subscription is made (and flushed to the
//! server) before the shop serves its first request.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use futures_util::StreamExt;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::db::Db;
use crate::metrics::Metrics;
use crate::{clock, redact_url, ShopError};

/// Confirmations in progress at once; past it, events wait in the queue.
const CONSUMER_CONCURRENCY: usize = 256;
/// Attempts at writing a confirmation before giving up on an order.
const CONFIRM_ATTEMPTS: u32 = 3;
/// How long connecting to NATS may take at start.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The sending side, held by the API.
pub(crate) enum Publisher {
    Local(mpsc::UnboundedSender<i64>),
    Nats {
        client: async_nats::Client,
        subject: String,
    },
}

/// The receiving side, owned by the consumer task.
pub(crate) enum Source {
    Local(mpsc::UnboundedReceiver<i64>),
    Nats {
        subscriber: async_nats::Subscriber,
        /// Where confirmations are published.
        client: async_nats::Client,
        confirmed: String,
    },
}

/// A publish that did not go out.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PublishError {
    #[error("the in-process consumer has stopped")]
    Closed,
    #[error("NATS publish failed: {0}")]
    Nats(#[from] async_nats::PublishError),
}

/// Opens the transport: an in-process channel, or a NATS connection subscribed to the
/// instance's subject.
pub(crate) async fn connect(
    nats_url: Option<&str>,
    instance: &str,
) -> Result<(Publisher, Source), ShopError> {
    let Some(url) = nats_url else {
        let (sender, receiver) = mpsc::unbounded_channel();
        return Ok((Publisher::Local(sender), Source::Local(receiver)));
    };
    let nats_error = |error: Box<dyn std::error::Error + Send + Sync>| ShopError::Nats {
        url: redact_url(url),
        source: error,
    };
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(CONNECT_TIMEOUT)
        .connect(url)
        .await
        .map_err(|e| nats_error(e.into()))?;
    let subject = format!("demo_shop.{instance}.order.placed");
    let confirmed = format!("demo_shop.{instance}.order.confirmed");
    let subscriber = client
        .subscribe(subject.clone())
        .await
        .map_err(|e| nats_error(e.into()))?;
    client.flush().await.map_err(|e| nats_error(e.into()))?;
    Ok((
        Publisher::Nats {
            client: client.clone(),
            subject,
        },
        Source::Nats {
            subscriber,
            client,
            confirmed,
        },
    ))
}

impl Publisher {
    /// `memory` or `nats`, for logs.
    pub(crate) fn backend(&self) -> &'static str {
        match self {
            Publisher::Local(_) => "memory",
            Publisher::Nats { .. } => "nats",
        }
    }

    /// Publishes `order.placed` for an order.
    pub(crate) async fn publish(&self, order: i64) -> Result<(), PublishError> {
        match self {
            Publisher::Local(sender) => sender.send(order).map_err(|_| PublishError::Closed),
            Publisher::Nats { client, subject } => {
                client
                    .publish(subject.clone(), Bytes::from(order.to_string()))
                    .await?;
                Ok(())
            }
        }
    }
}

impl Source {
    /// Where confirmations are published (NATS only).
    fn confirmations(&self) -> Option<(async_nats::Client, String)> {
        match self {
            Source::Local(_) => None,
            Source::Nats {
                client, confirmed, ..
            } => Some((client.clone(), confirmed.clone())),
        }
    }

    /// The next event's order id; `None` when the transport has closed. NATS messages
    /// that are not an order id are skipped.
    async fn next(&mut self) -> Option<i64> {
        match self {
            Source::Local(receiver) => receiver.recv().await,
            Source::Nats { subscriber, .. } => loop {
                let message = subscriber.next().await?;
                match std::str::from_utf8(&message.payload)
                    .ok()
                    .and_then(|text| text.parse().ok())
                {
                    Some(order) => return Some(order),
                    None => tracing::warn!(
                        subject = %message.subject,
                        "ignored an order event that is not an order id"
                    ),
                }
            },
        }
    }
}

/// Spawns the consumer: for each event, waits `confirm_delay` then confirms the order,
/// up to [`CONSUMER_CONCURRENCY`] at once. Stops (abandoning confirmations in
/// progress) when `cancel` fires.
pub(crate) fn spawn_consumer(
    mut source: Source,
    db: Db,
    metrics: Arc<Metrics>,
    confirm_delay: Duration,
    cancel: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let slots = Arc::new(Semaphore::new(CONSUMER_CONCURRENCY));
        let confirmations_out = source.confirmations();
        let mut confirmations = JoinSet::new();
        loop {
            let order = tokio::select! {
                () = cancel.cancelled() => break,
                order = source.next() => match order {
                    Some(order) => order,
                    None => break,
                },
            };
            let slot = tokio::select! {
                () = cancel.cancelled() => break,
                slot = Arc::clone(&slots).acquire_owned() => match slot {
                    Ok(slot) => slot,
                    Err(_) => break,
                },
            };
            // Reap finished confirmations so the set stays small.
            while confirmations.try_join_next().is_some() {}
            let db = db.clone();
            let metrics = Arc::clone(&metrics);
            let out = confirmations_out.clone();
            confirmations.spawn(async move {
                tokio::time::sleep(confirm_delay).await;
                let confirmed = confirm(&db, order).await;
                metrics.event_handled(confirmed);
                if let (true, Some((client, subject))) = (confirmed, out) {
                    let body = Bytes::from(format!("{{\"order_id\":{order}}}"));
                    if let Err(error) = client.publish(subject, body).await {
                        tracing::warn!(order, %error, "could not publish the confirmation");
                    }
                }
                drop(slot);
            });
        }
        confirmations.shutdown().await;
    })
}

/// Marks the order confirmed, retrying a failed write a few times.
async fn confirm(db: &Db, order: i64) -> bool {
    for attempt in 1..=CONFIRM_ATTEMPTS {
        match db.confirm_order(order, clock::now_millis()).await {
            Ok(confirmed) => return confirmed,
            Err(error) if attempt < CONFIRM_ATTEMPTS => {
                tracing::debug!(order, attempt, %error, "confirming the order failed; retrying");
                tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
            }
            Err(error) => {
                tracing::warn!(order, %error, "could not confirm the order");
            }
        }
    }
    false
}
