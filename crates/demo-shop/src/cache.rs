//! The product-detail cache (cache-aside with a TTL): an in-process map by default,
//! Redis when a URL is given (one key per product, written with `SET … EX`). The
//! cached value is the product's JSON answer, served as is on a hit.
//!
//! A cache that fails (Redis unreachable mid-run) degrades to misses: the answer then
//! comes from the database, and the failure is logged, never returned to the client.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use redis::aio::MultiplexedConnection;

use crate::{redact_url, ShopError};

/// How long connecting to Redis may take at start.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) enum Cache {
    Memory {
        entries: Mutex<HashMap<i64, (Instant, Bytes)>>,
        ttl: Duration,
    },
    Redis {
        connection: MultiplexedConnection,
        /// `demo_shop:<instance>:product:`, so instances sharing a Redis never mix.
        prefix: String,
        ttl_seconds: u64,
    },
}

impl Cache {
    /// An in-process cache, or a connection to the Redis at `url` (checked with a
    /// `PING`).
    pub(crate) async fn open(
        url: Option<&str>,
        instance: &str,
        ttl: Duration,
    ) -> Result<Cache, ShopError> {
        let Some(url) = url else {
            return Ok(Cache::Memory {
                entries: Mutex::new(HashMap::new()),
                ttl,
            });
        };
        let client = redis::Client::open(url)?;
        let connect = async {
            let mut connection = client.get_multiplexed_async_connection().await?;
            redis::cmd("PING")
                .query_async::<()>(&mut connection)
                .await?;
            Ok::<_, redis::RedisError>(connection)
        };
        let connection = tokio::time::timeout(CONNECT_TIMEOUT, connect)
            .await
            .map_err(|_| {
                ShopError::Config(format!(
                    "Redis at {} did not answer within {CONNECT_TIMEOUT:?}",
                    redact_url(url)
                ))
            })??;
        Ok(Cache::Redis {
            connection,
            prefix: format!("demo_shop:{instance}:product:"),
            // Redis expiries are whole seconds with EX; round up, at least one.
            ttl_seconds: ttl.as_millis().div_ceil(1000).max(1) as u64,
        })
    }

    /// `memory` or `redis`, for logs.
    pub(crate) fn backend(&self) -> &'static str {
        match self {
            Cache::Memory { .. } => "memory",
            Cache::Redis { .. } => "redis",
        }
    }

    /// The cached answer for a product, if present and fresh.
    pub(crate) async fn get(&self, id: i64) -> Option<Bytes> {
        match self {
            Cache::Memory { entries, .. } => {
                let mut entries = entries.lock().unwrap_or_else(PoisonError::into_inner);
                match entries.get(&id) {
                    Some((expires, value)) if *expires > Instant::now() => Some(value.clone()),
                    Some(_) => {
                        entries.remove(&id);
                        None
                    }
                    None => None,
                }
            }
            Cache::Redis {
                connection, prefix, ..
            } => {
                let mut connection = connection.clone();
                let value: Result<Option<Vec<u8>>, _> = redis::cmd("GET")
                    .arg(format!("{prefix}{id}"))
                    .query_async(&mut connection)
                    .await;
                match value {
                    Ok(value) => value.map(Bytes::from),
                    Err(error) => {
                        tracing::warn!(%error, "redis GET failed; answering from the database");
                        None
                    }
                }
            }
        }
    }

    /// Stores a product's answer for the TTL.
    pub(crate) async fn put(&self, id: i64, value: Bytes) {
        match self {
            Cache::Memory { entries, ttl } => {
                let expires = Instant::now() + *ttl;
                entries
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(id, (expires, value));
            }
            Cache::Redis {
                connection,
                prefix,
                ttl_seconds,
            } => {
                let mut connection = connection.clone();
                let stored: Result<(), _> = redis::cmd("SET")
                    .arg(format!("{prefix}{id}"))
                    .arg(value.as_ref())
                    .arg("EX")
                    .arg(*ttl_seconds)
                    .query_async(&mut connection)
                    .await;
                if let Err(error) = stored {
                    tracing::warn!(%error, "redis SET failed; the product stays uncached");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_entries_expire_after_the_ttl() {
        let cache = Cache::open(None, "t", Duration::from_millis(30))
            .await
            .unwrap();
        assert!(cache.get(1).await.is_none());
        cache.put(1, Bytes::from_static(b"{}")).await;
        assert_eq!(cache.get(1).await.as_deref(), Some(&b"{}"[..]));
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(cache.get(1).await.is_none());
    }
}
