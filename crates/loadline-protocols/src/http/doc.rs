//! The HTTP step document (`get: /path` and the other methods, with headers,
//! query, body, checks, captures, polling) and the `defaults:` section, as plain
//! serde data read by loadline's lenient deserializer: shapes and types only;
//! [`super::build`] checks what the values mean.

use std::collections::BTreeMap;
use std::fmt;

use loadline_doc::de::{Entries, Lenient, Spanned};
use loadline_doc::value::{JsonDoc, StatusDoc};

use crate::check::ValueTestDoc;
use schemars::JsonSchema;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

/// An HTTP request: one of `get`, `post`, `put`, `patch`, `delete` or `head`,
/// with the URL.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("oneOf" = [
    {"required": ["get"]}, {"required": ["post"]}, {"required": ["put"]},
    {"required": ["patch"]}, {"required": ["delete"]}, {"required": ["head"]}
]))]
pub struct HttpStepDoc {
    /// GET this URL: a path starting with `/` or an absolute http(s) URL.
    pub get: Option<Spanned<String>>,
    pub post: Option<Spanned<String>>,
    pub put: Option<Spanned<String>>,
    pub patch: Option<Spanned<String>>,
    pub delete: Option<Spanned<String>>,
    pub head: Option<Spanned<String>>,
    /// The metric group (default: `METHOD url`).
    pub name: Option<Spanned<String>>,
    /// Request headers (templates), over the defaults' headers.
    pub headers: Option<Entries<Spanned<String>>>,
    /// Query parameters (templates), appended to the URL.
    pub query: Option<Spanned<QueryDoc>>,
    /// A JSON body; strings may hold templates.
    pub json: Option<Spanned<JsonDoc>>,
    /// A raw body (a template).
    pub body: Option<Spanned<String>>,
    /// A URL-encoded form body (templates).
    pub form: Option<Spanned<Entries<Spanned<String>>>>,
    /// Checks on the response.
    pub check: Option<CheckDoc>,
    /// Values to capture from the response, by name.
    pub capture: Option<Entries<Lenient<Spanned<CaptureDoc>>>>,
    /// Request timeout, overriding the default.
    pub timeout: Option<Spanned<String>>,
    /// Follow redirects, overriding the default.
    pub follow_redirects: Option<bool>,
    /// The HTTP version of this step's requests, e.g. `http: { version: 2 }`.
    pub http: Option<Spanned<HttpDoc>>,
    /// Repeat the request until this condition on the response holds (a polling
    /// step); the step's name then measures the time until it held.
    pub until: Option<Spanned<UntilDoc>>,
    /// How often and how long a polling step repeats (`until` required).
    pub poll: Option<Spanned<PollDoc>>,
}

/// Settings for every HTTP step.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DefaultsDoc {
    /// Headers sent with every request; a step's headers override them.
    pub headers: Option<Entries<Spanned<String>>>,
    /// Request timeout, e.g. `5s` (default 30s).
    pub timeout: Option<Spanned<String>>,
    /// Accept any TLS certificate (default false).
    pub insecure: Option<bool>,
    /// Keep cookies per virtual user (default true).
    pub cookies: Option<bool>,
    /// Follow redirects (default true).
    pub follow_redirects: Option<bool>,
    /// At most this many redirects per request (default 10).
    pub max_redirects: Option<Spanned<i64>>,
    /// Which redirects are followed: `same_host` (default; a redirect to another
    /// host is not followed, and is counted in the notes) or `any`.
    pub redirects: Option<Spanned<RedirectsDoc>>,
    /// Headers that go along when a redirect leads to another host (with
    /// `redirects: any`), e.g. `[x-api-key]`; every other header of the scenario
    /// is dropped there.
    pub forward_headers: Option<Vec<Spanned<String>>>,
    /// At most this many bytes of a response body are kept for checks (default 1 MiB).
    pub max_body: Option<Spanned<i64>>,
    /// How to tell a cache hit from a miss when the standard headers
    /// (`Cache-Status`, `X-Cache`, `X-Cache-Status`, `CF-Cache-Status`, `Age`)
    /// do not say: a header and patterns for its value.
    pub cache: Option<Spanned<CacheRuleDoc>>,
}

/// A cache classification rule: the header to read, and for each outcome the
/// patterns (case-insensitive regular expressions) that mean it. The first
/// outcome with a matching pattern wins, tried hit, miss, stale, bypass; a value
/// none matches falls through to the standard headers.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CacheRuleDoc {
    /// The response header, e.g. `X-Edge-Result`.
    pub header: Spanned<String>,
    /// Patterns that mean a fresh hit, e.g. `["^HIT", "from-cache"]`.
    #[serde(default)]
    pub hit: Vec<Spanned<String>>,
    /// Patterns that mean a miss.
    #[serde(default)]
    pub miss: Vec<Spanned<String>>,
    /// Patterns that mean a stale answer (served stale, or revalidated).
    #[serde(default)]
    pub stale: Vec<Spanned<String>>,
    /// Patterns that mean the cache was not used.
    #[serde(default)]
    pub bypass: Vec<Spanned<String>>,
}

/// The `http:` section (and a step's `http:`): which HTTP version requests use.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpDoc {
    /// `1.1` (default), `2` (HTTP/2: ALPN over TLS, prior knowledge without) or
    /// `auto` (HTTP/2 where the TLS server offers it).
    pub version: Option<Spanned<JsonDoc>>,
    /// How many VUs share one HTTP/2 connection, each with its stream in flight
    /// (default 1: a connection per VU). Scenario-wide only.
    pub max_streams: Option<Spanned<i64>>,
}

/// Which redirects are followed.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RedirectsDoc {
    /// Only to the host the request went to.
    SameHost,
    /// To any host.
    Any,
}

/// The condition a polling step waits for: exactly one of `status`,
/// `body_contains` or `json` (with an optional `equals`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("oneOf" = [
    {"required": ["status"]}, {"required": ["body_contains"]}, {"required": ["json"]}
]))]
pub struct UntilDoc {
    /// The status is this one, or one of this list.
    pub status: Option<Spanned<StatusDoc>>,
    /// The body contains this text.
    pub body_contains: Option<Spanned<String>>,
    /// A JSONPath into the JSON body, e.g. `$.state`.
    pub json: Option<Spanned<String>>,
    /// The value the JSONPath's first match must equal (any YAML value); without
    /// it, the path only has to match something.
    pub equals: Option<Spanned<JsonDoc>>,
}

/// The pace of a polling step.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PollDoc {
    /// The pause between two requests (default 200ms).
    pub interval: Option<Spanned<String>>,
    /// Give up after this long, counted as a failure with error `timeout` (default 30s).
    pub timeout: Option<Spanned<String>>,
}

/// A query parameter's value as the schema describes it: the text of any scalar
/// (`page: 2` sends `page=2`).
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum QueryValue {
    Text(String),
    Number(f64),
    Bool(bool),
}

/// A step's `query:`: a mapping of query parameters; text is read too, to say
/// that it does not belong here.
#[derive(Debug, JsonSchema)]
#[serde(untagged)]
pub enum QueryDoc {
    /// Query parameters (templates), appended to the URL.
    Params(#[schemars(with = "BTreeMap<String, QueryValue>")] Entries<Spanned<String>>),
    #[schemars(skip)]
    Text(String),
}

impl<'de> Deserialize<'de> for QueryDoc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = QueryDoc;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping of query parameters")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(QueryDoc::Text(v.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                Entries::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(QueryDoc::Params)
            }
        }
        d.deserialize_any(V)
    }
}

/// Checks on a response.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "HttpCheckDoc")]
pub struct CheckDoc {
    /// The expected status code, or a list of them.
    pub status: Option<Spanned<StatusDoc>>,
    /// Text the body must contain.
    pub body_contains: Option<Spanned<String>>,
    /// A header the response must have.
    pub header: Option<Spanned<String>>,
    /// Tests on header values, by header name, e.g.
    /// `headers: { content-type: { matches: "^application/json" } }`.
    pub headers: Option<Entries<Spanned<ValueTestDoc>>>,
    /// Tests on values of the JSON body, each with its JSONPath, e.g.
    /// `json: [ { path: $.state, equals: confirmed } ]`.
    pub json: Option<Vec<Spanned<ValueTestDoc>>>,
    /// The response came within this time, e.g. `500ms`.
    pub latency_below: Option<Spanned<String>>,
}

/// Where a captured value comes from: exactly one of `json`, `regex` or
/// `header`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "HttpCaptureDoc")]
#[schemars(extend("oneOf" = [
    {"required": ["json"]}, {"required": ["regex"]}, {"required": ["header"]}
]))]
pub struct CaptureDoc {
    /// A JSONPath into the JSON body, e.g. `$.items[0].id`.
    pub json: Option<Spanned<String>>,
    /// A regular expression run on the body.
    pub regex: Option<Spanned<String>>,
    /// The regex capture group (default 1 when the regex has one, else 0).
    pub group: Option<Spanned<i64>>,
    /// A response header's name.
    pub header: Option<Spanned<String>>,
}
