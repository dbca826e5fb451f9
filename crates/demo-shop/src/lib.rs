//! demo-shop: the system under test that `loadline demo` and loadline's tests run
//! against, embedded in the process.
//!
//! A small but realistic shop: an HTTP JSON API (axum) over a SQL database (SQLite in
//! a temporary folder, or PostgreSQL), a cache in front of product details (in
//! process, or Redis) and an event pipeline that confirms orders asynchronously (an in
//! process queue, or NATS). It is seeded at start (10,000 products and 1,000 users by
//! default: `user{N}` / `pw{N}`), listens on 127.0.0.1 on an ephemeral port by default,
//! exposes Prometheus metrics at `/metrics`, and has fault and capacity [`Knobs`] that
//! can be changed while it runs (`PUT /admin/knobs`).
//!
//! | route | answers |
//! |---|---|
//! | `GET /health` | `{"status":"ok"}` |
//! | `GET /products?page=N&size=M` | a page of the catalog (size ≤ 100) |
//! | `GET /products/search?q=TEXT` | up to 20 products whose name contains TEXT |
//! | `GET /products/{id}` | one product, cached; header `Cache-Status: demo-shop; hit` or `demo-shop; fwd=miss` |
//! | `POST /login` | `{"token": ...}` for `{"user","password"}`, else 401 |
//! | `POST /cart` | adds `{"product","qty"}` to the bearer's cart: 201 `{"items": n}` |
//! | `POST /orders` | orders `{"product","qty"}`, or the cart for `{}`: 201 `{"id","state":"pending"}` |
//! | `GET /orders/{id}` | `{"id","state","created_at","confirmed_at"}`; `pending` turns `confirmed` |
//! | `GET /metrics` | Prometheus text |
//! | `GET`/`PUT /admin/knobs` | the fault knobs, as JSON |
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), demo_shop::ShopError> {
//! let shop = demo_shop::start(demo_shop::ShopConfig {
//!     products: 100,
//!     users: 10,
//!     ..Default::default()
//! })
//! .await?;
//! assert!(shop.url().starts_with("http://127.0.0.1:"));
//! shop.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod api;
mod cache;
mod catalog;
mod clock;
mod db;
mod events;
mod knobs;
mod metrics;

use std::fmt;
use std::future::IntoFuture;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};

pub use knobs::{Capacity, Knobs};
pub use metrics::ShopStats;

use api::{AppState, Sessions};
use cache::Cache;
use db::Db;
use knobs::KnobState;
use metrics::Metrics;

/// How long [`Shop::shutdown`] waits for requests in flight before cutting them off.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How to start a shop. Every field has a default (see [`ShopConfig::default`]).
#[derive(Clone)]
pub struct ShopConfig {
    /// Where to listen; default `127.0.0.1:0` (a free port, see [`Shop::addr`]).
    pub listen: SocketAddr,
    /// `None`: SQLite in a fresh temporary folder; `Some("postgres://…")`: PostgreSQL,
    /// in a schema of the instance's own, dropped by [`Shop::shutdown`].
    pub database_url: Option<String>,
    /// `None`: an in-process cache; `Some("redis://…")`: Redis (cache-aside).
    pub redis_url: Option<String>,
    /// `None`: an in-process queue; `Some("nats://…")`: core NATS pub/sub on a
    /// subject of the instance's own.
    pub nats_url: Option<String>,
    /// Products seeded; default 10,000.
    pub products: u32,
    /// Users seeded, `user1`/`pw1` … `user{N}`/`pw{N}`; default 1,000.
    pub users: u32,
    /// How long a product detail stays cached; default 30 s.
    pub cache_ttl: Duration,
    /// How long the consumer takes to confirm an order; default 50 ms.
    pub confirm_delay: Duration,
    /// Faults and limits in force from the start.
    pub knobs: Knobs,
}

impl Default for ShopConfig {
    fn default() -> Self {
        ShopConfig {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            database_url: None,
            redis_url: None,
            nats_url: None,
            products: 10_000,
            users: 1_000,
            cache_ttl: Duration::from_secs(30),
            confirm_delay: Duration::from_millis(50),
            knobs: Knobs::default(),
        }
    }
}

/// Shows the configuration with passwords in URLs redacted.
impl fmt::Debug for ShopConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = |u: &Option<String>| u.as_deref().map(redact_url);
        f.debug_struct("ShopConfig")
            .field("listen", &self.listen)
            .field("database_url", &url(&self.database_url))
            .field("redis_url", &url(&self.redis_url))
            .field("nats_url", &url(&self.nats_url))
            .field("products", &self.products)
            .field("users", &self.users)
            .field("cache_ttl", &self.cache_ttl)
            .field("confirm_delay", &self.confirm_delay)
            .field("knobs", &self.knobs)
            .finish()
    }
}

/// Why a shop could not start.
#[derive(Debug, thiserror::Error)]
pub enum ShopError {
    /// A setting is unusable (an unsupported URL, invalid knobs, a service that did
    /// not answer in time).
    #[error("invalid demo-shop configuration: {0}")]
    Config(String),
    /// The temporary folder for SQLite could not be made.
    #[error("could not create a temporary folder for the SQLite database: {0}")]
    TempDir(#[source] std::io::Error),
    /// Connecting to, creating or seeding the database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Connecting to Redis failed.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// Connecting or subscribing to NATS failed.
    #[error("nats at {url}: {source}")]
    Nats {
        /// The server's URL, password redacted.
        url: String,
        /// What failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The listening socket could not be opened.
    #[error("could not listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
}

/// A running shop. Stop it with [`Shop::shutdown`]; merely dropping it stops serving
/// but leaves a PostgreSQL schema behind.
pub struct Shop {
    addr: SocketAddr,
    state: Arc<AppState>,
    cancel: CancellationToken,
    /// Cancels the server and consumer if the shop is dropped without `shutdown`.
    _stop_on_drop: DropGuard,
    server: JoinHandle<std::io::Result<()>>,
    consumer: JoinHandle<()>,
    /// The SQLite database's folder, removed when the shop goes.
    _storage: Option<TempDir>,
}

/// Starts a shop: opens the database, creates and seeds the schema, connects the
/// cache and event transport, binds the listener and spawns the server and the order
/// consumer. Returns once the shop is ready to serve.
pub async fn start(config: ShopConfig) -> Result<Shop, ShopError> {
    config.knobs.validate().map_err(ShopError::Config)?;
    let instance = format!("{:016x}", fastrand::u64(..));
    let knobs = Arc::new(KnobState::new(config.knobs.clone()));
    let (db, storage) = Db::open(
        config.database_url.as_deref(),
        &instance,
        knobs.slow_query_handle(),
    )
    .await?;
    match assemble(&config, &instance, db.clone(), knobs).await {
        Ok((addr, state, cancel, server, consumer)) => {
            tracing::info!(
                %addr,
                database = state.db.backend(),
                cache = state.cache.backend(),
                queue = state.events.backend(),
                products = config.products,
                users = config.users,
                "demo-shop ready"
            );
            Ok(Shop {
                addr,
                state,
                _stop_on_drop: cancel.clone().drop_guard(),
                cancel,
                server,
                consumer,
                _storage: storage,
            })
        }
        Err(error) => {
            db.close().await;
            Err(error)
        }
    }
}

type Running = (
    SocketAddr,
    Arc<AppState>,
    CancellationToken,
    JoinHandle<std::io::Result<()>>,
    JoinHandle<()>,
);

/// Everything after the database is open (so that a failure here can close it).
async fn assemble(
    config: &ShopConfig,
    instance: &str,
    db: Db,
    knobs: Arc<KnobState>,
) -> Result<Running, ShopError> {
    db.create_schema().await?;
    db.seed(config.products, config.users).await?;
    let cache = Cache::open(config.redis_url.as_deref(), instance, config.cache_ttl).await?;
    let (events, source) = events::connect(config.nats_url.as_deref(), instance).await?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ShopError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ShopError::Bind {
        addr: config.listen,
        source,
    })?;
    let metrics = Arc::new(Metrics::default());
    let cancel = CancellationToken::new();
    let consumer = events::spawn_consumer(
        source,
        db.clone(),
        Arc::clone(&metrics),
        config.confirm_delay,
        cancel.clone(),
    );
    let state = Arc::new(AppState {
        db,
        cache,
        events,
        knobs,
        metrics,
        sessions: Sessions::default(),
        product_total: u64::from(config.products),
    });
    let app = api::router(Arc::clone(&state));
    let server = tokio::spawn(
        axum::serve(listener, app)
            .with_graceful_shutdown(cancel.clone().cancelled_owned())
            .into_future(),
    );
    Ok((addr, state, cancel, server, consumer))
}

impl Shop {
    /// The address the shop listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The shop's base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The PostgreSQL schema holding this shop's tables (`demo_shop_<random>`), or
    /// `None` on SQLite.
    pub fn database_schema(&self) -> Option<&str> {
        self.state.db.schema()
    }

    /// The knobs in force.
    pub fn knobs(&self) -> Knobs {
        self.state.knobs.get()
    }

    /// Replaces the knobs, as `PUT /admin/knobs` does.
    pub fn set_knobs(&self, knobs: Knobs) -> Result<(), ShopError> {
        knobs.validate().map_err(ShopError::Config)?;
        self.state.knobs.set(knobs);
        Ok(())
    }

    /// What the shop has served so far.
    pub fn stats(&self) -> ShopStats {
        self.state.metrics.stats()
    }

    /// Stops serving (requests in flight get a few seconds to finish), stops the
    /// order consumer, drops the PostgreSQL schema and closes the database; the
    /// SQLite folder is removed.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        let mut server = self.server;
        match tokio::time::timeout(SHUTDOWN_GRACE, &mut server).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(error))) => tracing::warn!(%error, "demo-shop server failed"),
            Ok(Err(error)) => tracing::warn!(%error, "demo-shop server task failed"),
            Err(_) => {
                tracing::warn!(
                    "demo-shop requests still in flight after the grace period; cut off"
                );
                server.abort();
            }
        }
        if let Err(error) = self.consumer.await {
            tracing::warn!(%error, "demo-shop consumer task failed");
        }
        self.state.db.close().await;
        tracing::info!(addr = %self.addr, "demo-shop stopped");
    }
}

/// A URL with the password of its user information replaced by `***`.
pub(crate) fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let authority_start = scheme_end + 3;
    let rest = &url[authority_start..];
    let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_len].rfind('@') else {
        return url.to_owned();
    };
    match rest[..at].find(':') {
        Some(colon) => format!(
            "{}{}:***{}",
            &url[..authority_start],
            &rest[..colon],
            &rest[at..]
        ),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(
            redact_url("postgres://app:s3cret@127.0.0.1:5432/db"),
            "postgres://app:***@127.0.0.1:5432/db"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1/test"),
            "postgres://postgres@127.0.0.1/test"
        );
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(redact_url("not a url"), "not a url");
        let config = ShopConfig {
            database_url: Some("postgres://u:pw@127.0.0.1/x".to_owned()),
            ..ShopConfig::default()
        };
        assert!(!format!("{config:?}").contains("pw@"));
    }

    #[tokio::test]
    async fn an_unsupported_database_url_is_refused() {
        let result = start(ShopConfig {
            database_url: Some("mysql://127.0.0.1/x".to_owned()),
            ..ShopConfig::default()
        })
        .await;
        assert!(matches!(result, Err(ShopError::Config(_))));
    }
}
