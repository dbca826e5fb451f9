//! Connections to a Redis server: a multiplexed connection (or, for a cluster,
//! a cluster connection that routes each command to the node of its key),
//! opened per VU on its first command or shared by every VU. A connection that
//! broke (reset, protocol error) is dropped and opened again on the next
//! command; a shared one is replaced once, for every VU.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{AsyncConnectionConfig, Client, Cmd, Pipeline, RedisError, RedisResult, Value};

use super::errors::ErrorKind;

/// How long opening a connection may take.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How the VUs get their connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionMode {
    /// Each VU opens one on its first command and keeps it.
    PerVu,
    /// One multiplexed connection for every VU.
    Shared,
}

/// A client for one server (or cluster).
#[derive(Clone)]
pub(crate) enum Opener {
    Single(Client),
    Cluster(ClusterClient),
}

impl Opener {
    /// Reads a URL (`redis://`, `rediss://`); `Err` says why it is not usable.
    pub(crate) fn new(url: &str, cluster: bool) -> Result<Self, String> {
        let lower = url.to_ascii_lowercase();
        if !(lower.starts_with("redis://")
            || lower.starts_with("rediss://")
            || lower.starts_with("redis+unix://")
            || lower.starts_with("unix://"))
        {
            return Err("expected a redis:// or rediss:// URL".into());
        }
        if cluster {
            ClusterClient::new(vec![url])
                .map(Opener::Cluster)
                .map_err(|e| e.to_string())
        } else {
            Client::open(url)
                .map(Opener::Single)
                .map_err(|e| e.to_string())
        }
    }

    /// Opens a connection, within [`CONNECT_TIMEOUT`].
    pub(crate) async fn open(&self) -> Result<Conn, (ErrorKind, String)> {
        let work = async {
            match self {
                Opener::Single(client) => {
                    let config =
                        AsyncConnectionConfig::new().set_connection_timeout(CONNECT_TIMEOUT);
                    client
                        .get_multiplexed_async_connection_with_config(&config)
                        .await
                        .map(Conn::Single)
                }
                Opener::Cluster(client) => client.get_async_connection().await.map(Conn::Cluster),
            }
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, work).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err((connect_kind(&e), e.to_string())),
            Err(_) => Err((
                ErrorKind::Timeout,
                format!("no connection within {CONNECT_TIMEOUT:?}"),
            )),
        }
    }
}

/// The class of a failure to connect: an error reply (a refused password) by
/// its code, a timeout as such, anything else `connect`.
fn connect_kind(e: &RedisError) -> ErrorKind {
    match ErrorKind::of_error(e) {
        ErrorKind::Timeout => ErrorKind::Timeout,
        ErrorKind::NoAuth => ErrorKind::NoAuth,
        k if e.code().is_some() => k,
        _ => ErrorKind::Connect,
    }
}

/// An open connection.
#[derive(Clone)]
pub(crate) enum Conn {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl Conn {
    /// Sends one command; an error reply may come as `Ok(Value::ServerError)`
    /// or as `Err`.
    pub(crate) async fn send(&mut self, cmd: &Cmd) -> RedisResult<Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd).await,
            Conn::Cluster(c) => c.req_packed_command(cmd).await,
        }
    }

    /// Sends a pipeline in one write and reads its `count` replies.
    pub(crate) async fn send_pipeline(
        &mut self,
        pipe: &Pipeline,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipe, 0, count).await,
            Conn::Cluster(c) => c.req_packed_commands(pipe, 0, count).await,
        }
    }
}

/// A VU's connection to one server, with the generation of the shared
/// connection it is a clone of.
pub(crate) struct Held {
    pub(crate) conn: Conn,
    generation: u64,
}

/// The shared connection of a server in shared mode.
#[derive(Default)]
pub(crate) struct Shared {
    conn: tokio::sync::Mutex<Option<(u64, Conn)>>,
    generation: AtomicU64,
}

impl Shared {
    /// A clone of the shared connection, opened when there is none.
    pub(crate) async fn get(&self, opener: &Opener) -> Result<Held, (ErrorKind, String)> {
        let mut guard = self.conn.lock().await;
        if let Some((generation, conn)) = guard.as_ref() {
            return Ok(Held {
                conn: conn.clone(),
                generation: *generation,
            });
        }
        let conn = opener.open().await?;
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        *guard = Some((generation, conn.clone()));
        Ok(Held { conn, generation })
    }

    /// Forgets the shared connection when it is the one `held` was cloned
    /// from (a VU saw it break); the next command opens a new one.
    pub(crate) async fn broken(&self, held: &Held) {
        let mut guard = self.conn.lock().await;
        if guard.as_ref().is_some_and(|(g, _)| *g == held.generation) {
            *guard = None;
        }
    }

    /// Drops the shared connection (after the load).
    pub(crate) async fn close(&self) {
        self.conn.lock().await.take();
    }
}

/// Opens a VU's own connection.
pub(crate) async fn open_own(opener: &Opener) -> Result<Held, (ErrorKind, String)> {
    opener.open().await.map(|conn| Held {
        conn,
        generation: 0,
    })
}
