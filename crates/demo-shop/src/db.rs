//! The shop's database: SQLite in a temporary folder by default, PostgreSQL when a
//! `postgres://` URL is given.
//!
//! The two backends are an enum over sqlx's typed pools (`SqlitePool`, `PgPool`)
//! rather than sqlx's `Any` driver: `Any` needs driver registration at run time and maps
//! types through a lowest common denominator, while the enum keeps each backend's own
//! types and lets each choose how to begin a write transaction (`BEGIN IMMEDIATE` on
//! SQLite, so concurrent writers wait for the lock instead of failing to upgrade a read
//! lock). The SQL text is shared: both backends accept `$N` parameters, `RETURNING`
//! and `ON CONFLICT … DO UPDATE`. The `on_pool!` macro runs the same code against
//! whichever pool is open, type-checked once per backend.
//!
//! Every PostgreSQL instance lives in a schema of its own, `demo_shop_<random>`, set as
//! the connections' `search_path` at connect time and dropped by `Db::close`, so
//! shops started in parallel against one database never see each other's tables.

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::Connection;
use tempfile::TempDir;

use crate::catalog::{self, Product, ProductSummary};
use crate::{redact_url, ShopError};

/// Pooled connections for SQLite (one writer at a time anyway; readers run in parallel
/// in WAL mode).
const SQLITE_CONNECTIONS: u32 = 8;
/// Pooled connections for PostgreSQL.
const POSTGRES_CONNECTIONS: u32 = 16;
/// Rows per multi-row `INSERT` while seeding (5 parameters each: well under both
/// backends' parameter limits).
const SEED_BATCH: u32 = 500;
/// How long a request waits for a pooled connection before failing.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the open pool, whichever backend it is.
macro_rules! on_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match &$db.pool {
            Pool::Sqlite($pool) => $body,
            Pool::Postgres($pool) => $body,
        }
    };
}

/// A handle on the shop's database (cheap to clone: the pools are shared).
#[derive(Clone)]
pub(crate) struct Db {
    pool: Pool,
    /// The PostgreSQL schema owned by this instance.
    schema: Option<String>,
    /// The `slow_query_ms` knob, slept inside the catalog queries.
    slow_query_ms: Arc<AtomicU64>,
}

/// What an order is made of.
#[derive(Clone, Copy, Debug)]
pub(crate) enum OrderItems {
    /// One product, bought directly.
    Product { id: i64, qty: i64 },
    /// Everything in the user's cart (which the order empties).
    Cart,
}

/// Why an order was not written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OrderRefused {
    NoSuchProduct,
    EmptyCart,
}

/// An order as stored; times are milliseconds since the Unix epoch.
#[derive(Clone, Debug)]
pub(crate) struct OrderRow {
    pub id: i64,
    pub state: String,
    pub created_at: i64,
    pub confirmed_at: Option<i64>,
}

type SummaryRow = (i64, String, i64, String);

fn summary((id, name, price_cents, category): SummaryRow) -> ProductSummary {
    ProductSummary {
        id,
        name,
        price_cents,
        category,
    }
}

impl Db {
    /// Opens the pool: a new SQLite file in a fresh temporary folder (returned, and
    /// removed when dropped), or a new schema in the PostgreSQL database at `url`.
    pub(crate) async fn open(
        url: Option<&str>,
        instance: &str,
        slow_query_ms: Arc<AtomicU64>,
    ) -> Result<(Db, Option<TempDir>), ShopError> {
        match url {
            None => {
                let dir = tempfile::Builder::new()
                    .prefix("demo-shop-")
                    .tempdir()
                    .map_err(ShopError::TempDir)?;
                let options = SqliteConnectOptions::new()
                    .filename(dir.path().join("shop.db"))
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true);
                let pool = SqlitePoolOptions::new()
                    .max_connections(SQLITE_CONNECTIONS)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect_with(options)
                    .await?;
                let db = Db {
                    pool: Pool::Sqlite(pool),
                    schema: None,
                    slow_query_ms,
                };
                Ok((db, Some(dir)))
            }
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                // Only [a-z0-9_]: safe to splice into SQL as an identifier.
                let schema = format!("demo_shop_{instance}");
                let options =
                    PgConnectOptions::from_str(url)?.options([("search_path", schema.as_str())]);
                // One plain connection first: it fails at once when the server is
                // unreachable (the pool would keep retrying until its timeout).
                let mut first = PgConnection::connect_with(&options).await?;
                sqlx::raw_sql(&format!("CREATE SCHEMA {schema}"))
                    .execute(&mut first)
                    .await?;
                first.close().await?;
                let pool = PgPoolOptions::new()
                    .max_connections(POSTGRES_CONNECTIONS)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect_with(options)
                    .await?;
                let db = Db {
                    pool: Pool::Postgres(pool),
                    schema: Some(schema),
                    slow_query_ms,
                };
                Ok((db, None))
            }
            Some(other) => Err(ShopError::Config(format!(
                "unsupported database URL {}: give a postgres:// URL, or none for SQLite",
                redact_url(other)
            ))),
        }
    }

    /// The PostgreSQL schema holding this instance's tables.
    pub(crate) fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// `sqlite` or `postgres`, for logs.
    pub(crate) fn backend(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    /// The statement opening a transaction that will write.
    fn begin_write(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "BEGIN IMMEDIATE",
            Pool::Postgres(_) => "BEGIN",
        }
    }

    /// Sleeps for the `slow_query_ms` knob (called while holding a connection).
    async fn slow_query(&self) {
        let ms = self.slow_query_ms.load(Ordering::Relaxed);
        if ms > 0 {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
    }

    /// Creates the tables.
    pub(crate) async fn create_schema(&self) -> Result<(), sqlx::Error> {
        let ddl = match self.pool {
            Pool::Sqlite(_) => catalog::SQLITE_SCHEMA,
            Pool::Postgres(_) => catalog::POSTGRES_SCHEMA,
        };
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::raw_sql(ddl).execute(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Inserts products `1..=products` and users `1..=users`, in batches, in one
    /// transaction.
    pub(crate) async fn seed(&self, products: u32, users: u32) -> Result<(), sqlx::Error> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_with(self.begin_write()).await?;
            for first in (1..=products).step_by(SEED_BATCH as usize) {
                let last = first.saturating_add(SEED_BATCH - 1).min(products);
                let mut insert = sqlx::QueryBuilder::new(
                    "INSERT INTO products (id, name, category, price_cents, description) ",
                );
                insert.push_values((first..=last).map(catalog::product), |mut row, p| {
                    row.push_bind(p.id)
                        .push_bind(p.name)
                        .push_bind(p.category)
                        .push_bind(p.price_cents)
                        .push_bind(p.description);
                });
                insert.build().execute(&mut *tx).await?;
            }
            for first in (1..=users).step_by(SEED_BATCH as usize) {
                let last = first.saturating_add(SEED_BATCH - 1).min(users);
                let mut insert = sqlx::QueryBuilder::new("INSERT INTO users (id, name, password) ");
                insert.push_values(first..=last, |mut row, n| {
                    let (name, password) = catalog::user(n);
                    row.push_bind(i64::from(n)).push_bind(name).push_bind(password);
                });
                insert.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// One page of the catalog, in id order.
    pub(crate) async fn products(
        &self,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<ProductSummary>, sqlx::Error> {
        const SQL: &str = "SELECT id, name, price_cents, category FROM products \
                           ORDER BY id LIMIT $1 OFFSET $2";
        let rows: Vec<SummaryRow> = on_pool!(self, pool => {
            let mut conn = pool.acquire().await?;
            self.slow_query().await;
            sqlx::query_as(SQL).bind(limit).bind(offset).fetch_all(&mut *conn).await?
        });
        Ok(rows.into_iter().map(summary).collect())
    }

    /// Up to `limit` products whose lower-cased name is `LIKE` the (lower-case,
    /// escaped with `\`) pattern.
    pub(crate) async fn search(
        &self,
        pattern: &str,
        limit: i64,
    ) -> Result<Vec<ProductSummary>, sqlx::Error> {
        const SQL: &str = r"SELECT id, name, price_cents, category FROM products
                            WHERE LOWER(name) LIKE $1 ESCAPE '\' ORDER BY id LIMIT $2";
        let rows: Vec<SummaryRow> = on_pool!(self, pool => {
            let mut conn = pool.acquire().await?;
            self.slow_query().await;
            sqlx::query_as(SQL).bind(pattern).bind(limit).fetch_all(&mut *conn).await?
        });
        Ok(rows.into_iter().map(summary).collect())
    }

    /// The product with this id, if any.
    pub(crate) async fn product(&self, id: i64) -> Result<Option<Product>, sqlx::Error> {
        const SQL: &str = "SELECT id, name, price_cents, category, description \
                           FROM products WHERE id = $1";
        let row: Option<(i64, String, i64, String, String)> = on_pool!(self, pool => {
            let mut conn = pool.acquire().await?;
            self.slow_query().await;
            sqlx::query_as(SQL).bind(id).fetch_optional(&mut *conn).await?
        });
        Ok(
            row.map(|(id, name, price_cents, category, description)| Product {
                id,
                name,
                price_cents,
                category,
                description,
            }),
        )
    }

    /// The id of the user with this name and password, if they match.
    pub(crate) async fn login(
        &self,
        name: &str,
        password: &str,
    ) -> Result<Option<i64>, sqlx::Error> {
        const SQL: &str = "SELECT id FROM users WHERE name = $1 AND password = $2";
        let id: Option<i64> = on_pool!(self, pool => {
            sqlx::query_scalar(SQL).bind(name).bind(password).fetch_optional(pool).await?
        });
        Ok(id)
    }

    /// Adds `qty` of a product to the user's cart; the number of distinct products in
    /// the cart after it, or `None` when the product does not exist.
    pub(crate) async fn add_to_cart(
        &self,
        user: i64,
        product: i64,
        qty: i64,
    ) -> Result<Option<i64>, sqlx::Error> {
        // The write comes first in the transaction, and joins `products` itself, so
        // the existence check needs no separate read.
        const ADD: &str = "INSERT INTO carts (user_id, product_id, qty) \
                           SELECT $1, id, $3 FROM products WHERE id = $2 \
                           ON CONFLICT (user_id, product_id) DO UPDATE SET qty = carts.qty + excluded.qty";
        const COUNT: &str = "SELECT COUNT(*) FROM carts WHERE user_id = $1";
        on_pool!(self, pool => {
            let mut tx = pool.begin_with(self.begin_write()).await?;
            let added = sqlx::query(ADD)
                .bind(user)
                .bind(product)
                .bind(qty)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if added == 0 {
                tx.rollback().await?;
                return Ok(None);
            }
            let count: i64 = sqlx::query_scalar(COUNT).bind(user).fetch_one(&mut *tx).await?;
            tx.commit().await?;
            Ok(Some(count))
        })
    }

    /// Writes an order and its lines (and empties the cart when ordering it) in one
    /// transaction; the new order's id, in state `pending`.
    pub(crate) async fn place_order(
        &self,
        user: i64,
        items: OrderItems,
        now_ms: i64,
    ) -> Result<Result<i64, OrderRefused>, sqlx::Error> {
        const ORDER: &str = "INSERT INTO orders (user_id, state, created_at) \
                             VALUES ($1, 'pending', $2) RETURNING id";
        const PRODUCT_LINE: &str =
            "INSERT INTO order_lines (order_id, product_id, qty, price_cents) \
                                    SELECT $1, id, $3, price_cents FROM products WHERE id = $2";
        const CART_LINES: &str =
            "INSERT INTO order_lines (order_id, product_id, qty, price_cents) \
                                  SELECT $1, c.product_id, c.qty, p.price_cents \
                                  FROM carts c JOIN products p ON p.id = c.product_id \
                                  WHERE c.user_id = $2";
        const CLEAR_CART: &str = "DELETE FROM carts WHERE user_id = $1";
        on_pool!(self, pool => {
            let mut tx = pool.begin_with(self.begin_write()).await?;
            let order: i64 = sqlx::query_scalar(ORDER)
                .bind(user)
                .bind(now_ms)
                .fetch_one(&mut *tx)
                .await?;
            let (lines, refusal) = match items {
                OrderItems::Product { id, qty } => {
                    let lines = sqlx::query(PRODUCT_LINE)
                        .bind(order)
                        .bind(id)
                        .bind(qty)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    (lines, OrderRefused::NoSuchProduct)
                }
                OrderItems::Cart => {
                    let lines = sqlx::query(CART_LINES)
                        .bind(order)
                        .bind(user)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    sqlx::query(CLEAR_CART).bind(user).execute(&mut *tx).await?;
                    (lines, OrderRefused::EmptyCart)
                }
            };
            if lines == 0 {
                tx.rollback().await?;
                return Ok(Err(refusal));
            }
            tx.commit().await?;
            Ok(Ok(order))
        })
    }

    /// Moves a pending order to `confirmed`; false when it was not pending (or absent).
    pub(crate) async fn confirm_order(&self, id: i64, now_ms: i64) -> Result<bool, sqlx::Error> {
        const SQL: &str = "UPDATE orders SET state = 'confirmed', confirmed_at = $1 \
                           WHERE id = $2 AND state = 'pending'";
        let updated = on_pool!(self, pool => {
            sqlx::query(SQL).bind(now_ms).bind(id).execute(pool).await?.rows_affected()
        });
        Ok(updated == 1)
    }

    /// The user's order with this id, if it exists and is theirs.
    pub(crate) async fn order(&self, user: i64, id: i64) -> Result<Option<OrderRow>, sqlx::Error> {
        const SQL: &str = "SELECT id, state, created_at, confirmed_at FROM orders \
                           WHERE id = $1 AND user_id = $2";
        let row: Option<(i64, String, i64, Option<i64>)> = on_pool!(self, pool => {
            sqlx::query_as(SQL).bind(id).bind(user).fetch_optional(pool).await?
        });
        Ok(row.map(|(id, state, created_at, confirmed_at)| OrderRow {
            id,
            state,
            created_at,
            confirmed_at,
        }))
    }

    /// Connections checked out of the pool, and connections open.
    pub(crate) fn pool_usage(&self) -> (u32, u32) {
        let (size, idle) = on_pool!(self, pool => (pool.size(), pool.num_idle()));
        let idle = u32::try_from(idle).unwrap_or(u32::MAX);
        (size.saturating_sub(idle), size)
    }

    /// Drops this instance's PostgreSQL schema (if any) and closes the pool.
    pub(crate) async fn close(&self) {
        if let (Pool::Postgres(pool), Some(schema)) = (&self.pool, &self.schema) {
            let drop = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
            if let Err(error) = sqlx::raw_sql(&drop).execute(pool).await {
                tracing::warn!(%schema, %error, "could not drop the demo-shop schema");
            }
        }
        on_pool!(self, pool => pool.close().await);
    }
}
