//! What an HTTP step is, as a scenario format describes it: everything compiled and
//! validated, ready to execute.

use std::time::Duration;

use http::{HeaderName, Method};
use loadline_core::metrics::{CheckId, GroupId};
use loadline_core::protocol::Slot;
use loadline_core::template::{JsonTemplate, Template};

use crate::check::ValueTest;

/// Settings shared by every HTTP step of a plan.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Accept any TLS certificate (self-signed test servers).
    pub insecure: bool,
    /// Keep a cookie jar per VU, cleared at the start of each iteration.
    pub cookies: bool,
    /// At most this many bytes of a response body are kept for checks and
    /// captures; the rest is read and discarded (but counted).
    pub max_body: usize,
    /// Which redirects are followed (when a step follows redirects at all).
    pub redirects: Redirects,
    /// The HTTP version of steps that do not set their own.
    pub version: HttpVersion,
    /// How many VUs share one HTTP/2 connection (streams in flight on it).
    pub max_streams: usize,
    /// Headers of the scenario that go along when a redirect leads to another
    /// host (`redirects: any`); every other header of the scenario stays behind.
    pub forward_headers: Vec<HeaderName>,
    /// What each exchange prints on stderr (`--http-debug`).
    pub dump: crate::registry::Dump,
    /// The scenario's own cache classification, tried before the standard
    /// headers.
    pub cache_rule: Option<std::sync::Arc<super::cache::CacheRule>>,
}

/// Which HTTP version a request goes over.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum HttpVersion {
    /// HTTP/1.1 (the default).
    #[default]
    Http1,
    /// HTTP/2: negotiated by ALPN over TLS, prior knowledge (h2c) without.
    Http2,
    /// HTTP/2 where the TLS server offers it by ALPN, else HTTP/1.1.
    Auto,
}

/// Which redirects are followed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Redirects {
    /// Only to the host the request went to (any scheme or port): a redirect to
    /// another host ends the request with its 3xx response, and is counted.
    #[default]
    SameHost,
    /// To any host; the scenario's headers go along only where
    /// [`HttpSettings::forward_headers`] names them.
    Any,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            insecure: false,
            cookies: true,
            max_body: 1024 * 1024,
            redirects: Redirects::SameHost,
            forward_headers: Vec::new(),
            version: HttpVersion::Http1,
            max_streams: 1,
            dump: crate::registry::Dump::Off,
            cache_rule: None,
        }
    }
}

/// Where a request goes.
#[derive(Debug, Clone)]
pub enum UrlSpec {
    /// A path template joined to a fixed base URL (`target:`): the origin is known
    /// at load time, only the path and query are rendered per request. `base` has
    /// no trailing slash; `path` starts with `/`.
    Relative { base: url::Url, path: Template },
    /// A full URL template, parsed per request.
    Absolute(Template),
}

/// A request body.
#[derive(Debug, Clone)]
pub enum BodySpec {
    None,
    /// A raw string body (`body:`); the content type comes from the headers.
    Raw(Template),
    /// A JSON body (`json:`); sets `content-type: application/json` unless given.
    Json(JsonTemplate),
    /// A URL-encoded form (`form:`); sets `content-type:
    /// application/x-www-form-urlencoded` unless given.
    Form(Vec<(String, Template)>),
}

/// A check on the response; each is counted passed or failed, and never fails the
/// request itself.
#[derive(Debug, Clone)]
pub enum Check {
    /// The status is one of these.
    Status(Vec<u16>),
    /// The body (up to `max_body`) contains this text.
    BodyContains(String),
    /// The response has this header (and, when given, one of its values passes
    /// every test).
    Header {
        name: HeaderName,
        tests: Vec<ValueTest>,
    },
    /// The first match of a JSONPath in the JSON body passes every test.
    Json {
        path: serde_json_path::JsonPath,
        tests: Vec<ValueTest>,
    },
    /// The response came within this time.
    LatencyBelow(Duration),
}

/// A check of a step, with the plan's name for it.
#[derive(Debug, Clone)]
pub struct CheckSpec {
    pub id: CheckId,
    pub check: Check,
}

impl CheckSpec {
    /// Checks numbered in order, for a plan built by hand (the scenario format
    /// numbers them through the build context).
    pub fn numbered(checks: Vec<Check>) -> Vec<CheckSpec> {
        checks
            .into_iter()
            .enumerate()
            .map(|(i, check)| CheckSpec {
                id: CheckId::from_index(u16::try_from(i).unwrap_or(u16::MAX)),
                check,
            })
            .collect()
    }
}
/// Where a captured value comes from.
#[derive(Debug, Clone)]
pub enum CaptureSource {
    /// The first match of a JSONPath in the JSON body, keeping its JSON type.
    Json(serde_json_path::JsonPath),
    /// Capture group `group` (0 = whole match) of the first regex match in the body.
    Regex { re: regex::Regex, group: usize },
    /// A response header's value.
    Header(HeaderName),
}

/// A value to capture into a VU's capture slot.
#[derive(Debug, Clone)]
pub struct CaptureSpec {
    pub slot: usize,
    /// The capture's name, for messages.
    pub name: String,
    pub source: CaptureSource,
}

/// One HTTP request step.
#[derive(Debug, Clone)]
pub struct HttpStepSpec {
    /// Where each VU keeps its HTTP state.
    pub slot: Slot<super::VuState>,
    pub group: GroupId,
    pub method: Method,
    pub url: UrlSpec,
    /// Extra query parameters (`query:` map), appended URL-encoded.
    pub query: Vec<(String, Template)>,
    /// Headers: the defaults' merged with the step's (the step's win).
    pub headers: Vec<(HeaderName, Template)>,
    pub body: BodySpec,
    pub timeout: Duration,
    pub checks: Vec<CheckSpec>,
    pub captures: Vec<CaptureSpec>,
    /// Follow 3xx responses up to this many times (0 = never).
    pub max_redirects: u32,
    /// The HTTP version of the step's requests.
    pub version: HttpVersion,
    /// Repeat the request until a condition holds (`until:`), when set.
    pub poll: Option<PollSpec>,
}

/// The condition a polling step waits for.
#[derive(Debug, Clone)]
pub enum Until {
    /// The status is one of these.
    Status(Vec<u16>),
    /// The body contains this text.
    BodyContains(String),
    /// The first match of a JSONPath equals `equals` (or, without it, exists).
    Json {
        path: serde_json_path::JsonPath,
        equals: Option<serde_json::Value>,
    },
}

/// Makes a step repeat its request until a condition on the response holds.
#[derive(Debug, Clone)]
pub struct PollSpec {
    pub until: Until,
    /// The pause between two requests.
    pub interval: std::time::Duration,
    /// Give up after this long (counted as a failed outcome, error kind timeout).
    pub timeout: std::time::Duration,
    /// The metric group that gets one sample per poll: the time from the first
    /// request until the condition held (the step's own `group` gets every
    /// request).
    pub outcome_group: GroupId,
}
