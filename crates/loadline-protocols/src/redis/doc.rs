//! The Redis parts of the native format as plain serde data: the `redis:`
//! section (the servers, by name), `redis:` command steps (one command or a
//! pipeline) and `cache_aside:` steps. Shapes and types only; [`super::build`]
//! checks what the values mean.

use loadline_doc::de::{Entries, Items, Lenient, Raw, Spanned};
use loadline_doc::value::JsonDoc;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::check::ValueTestDoc;

/// A Redis server that steps name with `server:`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerDoc {
    /// `redis://[user:password@]host:port/db`, or `rediss://…` for TLS
    /// (`vars` and `{{ $env.NAME }}` may be used, e.g. for the password).
    pub url: Spanned<String>,
    /// `per_vu` (default): each VU opens a connection of its own on its first
    /// command and keeps it; `shared`: one multiplexed connection for every VU.
    pub connection: Option<Spanned<ConnectionDoc>>,
    /// The server is a node of a Redis Cluster: commands go to the node that
    /// holds their key, following the cluster's slots (default false).
    pub cluster: Option<Spanned<bool>>,
    /// How long a command (or a pipeline) may wait for its reply, for every
    /// step on this server that does not say (default 10s).
    pub timeout: Option<Spanned<String>>,
}

/// How the VUs get their connections to a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionDoc {
    /// A connection per VU, opened on its first command.
    PerVu,
    /// One multiplexed connection for every VU (their commands are pipelined
    /// on it as they come).
    Shared,
}

/// A `redis:` step.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RedisStepDoc {
    /// One Redis command (`get:`, `set:`, … or `command: [NAME, args…]`) or a
    /// `pipeline:` of them, with the step's own settings.
    pub redis: Spanned<CommandDoc>,
}

/// One command, as a `redis:` step or an item of a `pipeline:`. Exactly one of
/// the command keys (`get`, `set`, `mget`, `hget`, `hset`, `incr`, `expire`,
/// `del`, `command`, `pipeline`); the other keys are its arguments and, in a
/// step (not in a pipeline's item), the step's settings. Keys, fields and
/// values are templates.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "RedisCommandDoc")]
pub struct CommandDoc {
    /// GET this key; a missing key replies nil (not an error).
    pub get: Option<Spanned<String>>,
    /// SET this key to `value` (with `ttl`: expiring after it).
    pub set: Option<Spanned<String>>,
    /// MGET these keys (a list, or one key).
    #[schemars(with = "Option<KeysSchema>")]
    pub mget: Option<Spanned<JsonDoc>>,
    /// HGET `field` of this hash.
    pub hget: Option<Spanned<String>>,
    /// HSET `field` to `value`, or each of `fields`, in this hash.
    pub hset: Option<Spanned<String>>,
    /// INCR this key (INCRBY with `by`).
    pub incr: Option<Spanned<String>>,
    /// EXPIRE this key after `ttl`.
    pub expire: Option<Spanned<String>>,
    /// DEL these keys (a list, or one key).
    #[schemars(with = "Option<KeysSchema>")]
    pub del: Option<Spanned<JsonDoc>>,
    /// Any command: its name, then its arguments (templates, numbers), e.g.
    /// `[ZADD, "scores", 1, "{{ user }}"]`.
    #[schemars(with = "Option<Vec<serde_json::Value>>")]
    pub command: Option<Spanned<Vec<Spanned<JsonDoc>>>>,
    /// Several commands sent in one round trip; their replies, in order, are
    /// the step's reply (a list). One sample for the whole pipeline.
    #[schemars(with = "Option<Vec<CommandDoc>>")]
    pub pipeline: Option<Items<CommandDoc>>,
    /// The value of `set` and `hset` (a template; a mapping or a list is sent
    /// as its JSON text).
    #[schemars(with = "Option<serde_json::Value>")]
    pub value: Option<Spanned<JsonDoc>>,
    /// The expiry of `set` and `expire`, e.g. `60s`, `1m`, `500ms`.
    pub ttl: Option<Spanned<String>>,
    /// The hash field of `hget` and `hset`.
    pub field: Option<Spanned<String>>,
    /// Fields and values of `hset`, several at once.
    #[schemars(with = "Option<std::collections::BTreeMap<String, serde_json::Value>>")]
    pub fields: Option<Entries<Spanned<JsonDoc>>>,
    /// The increment of `incr` (INCRBY).
    pub by: Option<Spanned<i64>>,
    /// The server (a name from `redis:`; optional when there is one).
    pub server: Option<Spanned<String>>,
    /// The metric group (default `redis ` and the command as written, e.g.
    /// `redis GET product:{{ id }}`).
    pub name: Option<Spanned<String>>,
    /// How long the reply may take (default: the server's, 10s).
    pub timeout: Option<Spanned<String>>,
    /// Values to capture from the reply, by name: `reply` (the whole reply),
    /// or `{ index: N, json: "$.path" }` (an item of a list reply, and/or a
    /// JSONPath into a reply holding JSON text).
    #[schemars(with = "Option<std::collections::BTreeMap<String, CaptureSchema>>")]
    pub capture: Option<Entries<Lenient<Spanned<JsonDoc>>>>,
    /// Checks on the reply.
    pub check: Option<Spanned<CheckDoc>>,
}

/// Checks on a command's reply.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "RedisCheckDoc")]
pub struct CheckDoc {
    /// Tests on the reply (or, with `path`, on a JSONPath into it: a reply
    /// holding JSON text is read as JSON).
    pub reply: Option<Spanned<ValueTestDoc>>,
}

/// A `cache_aside:` step.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CacheAsideStepDoc {
    /// Read `key` from the cache; on a miss run `on_miss`, then SET `value`.
    pub cache_aside: Spanned<CacheAsideDoc>,
}

/// Cache-aside: GET the key; a hit is done, a miss runs the `on_miss` steps
/// (fetching from the origin) and SETs `value` with `ttl`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CacheAsideDoc {
    /// The key (a template), e.g. `product:{{ id }}`.
    pub key: Option<Spanned<String>>,
    /// The steps run on a miss (any kind: HTTP, SQL, Redis…), whose captures
    /// `value` may use.
    #[schemars(with = "Option<Vec<serde_json::Value>>")]
    pub on_miss: Option<Items<Raw>>,
    /// What is SET on a miss (a template, e.g. `"{{ product }}"`; a mapping
    /// or a list is stored as its JSON text).
    #[schemars(with = "Option<serde_json::Value>")]
    pub value: Option<Spanned<JsonDoc>>,
    /// How long the value stays cached, e.g. `60s` (default: no expiry).
    pub ttl: Option<Spanned<String>>,
    /// Capture the value, from the cache or fresh, under this name (JSON text
    /// of an object or a list is captured as that JSON value).
    pub capture: Option<Spanned<String>>,
    /// The server (a name from `redis:`; optional when there is one).
    pub server: Option<Spanned<String>>,
    /// The metric group of the GET, whose samples are hits and misses
    /// (default `cache ` and the key as written); the SET of a miss is
    /// `NAME (set)`.
    pub name: Option<Spanned<String>>,
    /// How long each Redis reply may take (default: the server's).
    pub timeout: Option<Spanned<String>>,
}

/// One key or a list of keys, as the schema describes them.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum KeysSchema {
    One(String),
    Many(Vec<String>),
}

/// A capture's source, as the schema describes it.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum CaptureSchema {
    /// `reply`: the whole reply.
    Whole(String),
    /// An item of a list reply and/or a JSONPath into it.
    Part {
        /// The item of a list reply (MGET, a pipeline), from 0.
        index: Option<u32>,
        /// A JSONPath into the reply's JSON text, e.g. `$.price`.
        json: Option<String>,
    },
}
