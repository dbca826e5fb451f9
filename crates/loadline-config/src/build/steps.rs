//! Flows' steps: HTTP requests (URL, headers, body, checks, captures), pauses
//! and loops, with templates compiled against the names in scope at each step.
//! SQL statements and transactions are read in [`super::sql`].

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, HeaderValue, Method};
use loadline_core::duration::DurationRange;
use loadline_core::plan::{default_group_name, OUTCOME_KIND};
use loadline_core::protocol::StepExec;
use loadline_core::template::{JsonTemplate, Scope, Template};
use loadline_protocols::http::{
    BodySpec, CaptureSource, CaptureSpec, Check, HttpSettings, HttpStepSpec, PollSpec, Until,
    UrlSpec,
};
use serde_json::Value;

use super::scope::{NameScope, Names};
use super::{is_identifier, Builder, HTTP_PROTOCOL};
use crate::de::{Entries, Lenient, Span, Spanned};
use crate::model::{
    CaptureDoc, CheckDoc, DefaultsDoc, Items, JsonDoc, PollDoc, QueryDoc, StatusDoc, StepDoc,
    UntilDoc,
};
use crate::yaml::Mark;

/// A step whose HTTP request is still a spec.
#[derive(Debug)]
pub(crate) enum StepDraft {
    Http(Box<HttpStepSpec>),
    /// A step built already (SQL statements and transactions, built as they
    /// are read so that their problems are located).
    Exec(Arc<dyn StepExec>),
    Think(DurationRange),
    Loop {
        count: u64,
        steps: Vec<StepDraft>,
    },
}

/// What every HTTP step starts from.
pub(crate) struct HttpDefaults {
    target: Target,
    headers: Vec<(HeaderName, Template)>,
    timeout: Duration,
    follow_redirects: bool,
    max_redirects: u32,
    pub settings: HttpSettings,
}

enum Target {
    Missing,
    /// Given but invalid (already reported).
    Invalid,
    Base(url::Url),
}

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_MAX_REDIRECTS: i64 = 10;
const MAX_REDIRECTS: i64 = 100;
const MAX_BODY: i64 = 1 << 30;
const MAX_LOOP: i64 = 1_000_000;
const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(200);
const DEFAULT_POLL_TIMEOUT: Duration = Duration::from_secs(30);
/// The suffix of the metric group that gets a polling step's every request.
pub(crate) const REQUESTS_SUFFIX: &str = " (requests)";

const METHODS: [(&str, Method); 6] = [
    ("get", Method::GET),
    ("post", Method::POST),
    ("put", Method::PUT),
    ("patch", Method::PATCH),
    ("delete", Method::DELETE),
    ("head", Method::HEAD),
];

const KINDS: &str = "get, post, put, patch, delete, head, sql, transaction, think or loop";

/// What a step does, by its kind key.
pub(super) enum Kind<'d> {
    Request(&'static str, Method, &'d Spanned<String>),
    Think(&'d Spanned<String>),
    Loop(&'d Spanned<i64>),
    /// An SQL statement on this database.
    Sql(&'d Spanned<String>),
    /// A transaction on this database.
    Transaction(&'d Spanned<String>),
}

impl Kind<'_> {
    pub(super) fn key(&self) -> &'static str {
        match self {
            Kind::Request(key, ..) => key,
            Kind::Think(_) => "think",
            Kind::Loop(_) => "loop",
            Kind::Sql(_) => "sql",
            Kind::Transaction(_) => "transaction",
        }
    }

    pub(super) fn span(&self) -> &Span {
        match self {
            Kind::Request(_, _, url) => &url.span,
            Kind::Think(t) => &t.span,
            Kind::Loop(n) => &n.span,
            Kind::Sql(db) | Kind::Transaction(db) => &db.span,
        }
    }
}

/// The kind keys a step has, in written order (one, when the step is valid).
pub(super) fn kinds(doc: &StepDoc) -> Vec<Kind<'_>> {
    let urls = [
        &doc.get,
        &doc.post,
        &doc.put,
        &doc.patch,
        &doc.delete,
        &doc.head,
    ];
    let mut kinds: Vec<Kind<'_>> = METHODS
        .iter()
        .zip(urls)
        .filter_map(|((key, method), url)| {
            url.as_ref()
                .map(|url| Kind::Request(key, method.clone(), url))
        })
        .collect();
    kinds.extend(doc.think.as_ref().map(Kind::Think));
    kinds.extend(doc.repeat.as_ref().map(Kind::Loop));
    kinds.extend(doc.sql.as_ref().map(Kind::Sql));
    kinds.extend(doc.transaction.as_ref().map(Kind::Transaction));
    kinds.sort_by_key(|k| k.span().mark);
    kinds
}

/// The names a step flow has seen so far.
pub(super) struct FlowScope<'n> {
    names: &'n Names,
    /// Captures assigned by the steps walked so far, with their slots.
    known: Vec<(String, usize)>,
    /// Every capture name some step of the flow assigns.
    all: Vec<String>,
}

impl FlowScope<'_> {
    pub(super) fn scope(&self) -> NameScope<'_> {
        NameScope {
            names: self.names,
            captures: &self.known,
            flow_captures: &self.all,
        }
    }
}

impl Builder<'_> {
    pub(super) fn http_defaults(
        &mut self,
        target: Option<&Spanned<String>>,
        doc: Option<&DefaultsDoc>,
        names: &Names,
    ) -> HttpDefaults {
        let target = match target {
            None => Target::Missing,
            Some(t) => match self.target(t) {
                Some(url) => Target::Base(url),
                None => Target::Invalid,
            },
        };
        let mut defaults = HttpDefaults {
            target,
            headers: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            follow_redirects: true,
            max_redirects: DEFAULT_MAX_REDIRECTS as u32,
            settings: HttpSettings::default(),
        };
        let Some(doc) = doc else {
            return defaults;
        };
        let scope = NameScope {
            names,
            captures: &[],
            flow_captures: &[],
        };
        if let Some(headers) = &doc.headers {
            defaults.headers = self.headers(Vec::new(), headers, &scope);
        }
        if let Some(t) = &doc.timeout {
            defaults.timeout = self.duration(t, false).unwrap_or(DEFAULT_TIMEOUT);
        }
        defaults.follow_redirects = doc.follow_redirects.unwrap_or(true);
        if let Some(m) = &doc.max_redirects {
            defaults.max_redirects = self.int_in(m, 0, MAX_REDIRECTS).unwrap_or(0) as u32;
        }
        defaults.settings.insecure = doc.insecure.unwrap_or(false);
        defaults.settings.cookies = doc.cookies.unwrap_or(true);
        if let Some(m) = &doc.max_body {
            if let Some(bytes) = self.int_in(m, 0, MAX_BODY) {
                defaults.settings.max_body = bytes as usize;
            }
        }
        defaults
    }

    fn target(&mut self, t: &Spanned<String>) -> Option<url::Url> {
        let text = t.value.trim();
        let url = match url::Url::parse(text.trim_end_matches('/')) {
            Ok(url) => url,
            Err(e) => {
                self.error(
                    &t.span,
                    format!(
                        "invalid target URL `{text}`: {e}; expected e.g. http://127.0.0.1:8080"
                    ),
                );
                return None;
            }
        };
        let problem = if !matches!(url.scheme(), "http" | "https") {
            Some(format!(
                "the target must be an http:// or https:// URL, found scheme `{}`",
                url.scheme()
            ))
        } else if url.host_str().is_none_or(str::is_empty) {
            Some(format!("the target URL `{text}` has no host"))
        } else if url.query().is_some() || url.fragment().is_some() {
            Some(format!(
                "the target URL `{text}` is a base: drop its `?query` or `#fragment`"
            ))
        } else {
            None
        };
        match problem {
            Some(p) => {
                self.error(&t.span, p);
                None
            }
            None => Some(url),
        }
    }

    pub(super) fn flow_steps(
        &mut self,
        steps: &Items<StepDoc>,
        names: &Names,
        defaults: &HttpDefaults,
    ) -> Vec<StepDraft> {
        let mut all = Vec::new();
        collect_captures(&steps.value, &mut all);
        let mut scope = FlowScope {
            names,
            known: Vec::new(),
            all,
        };
        self.steps(steps, &mut scope, defaults)
    }

    fn steps(
        &mut self,
        steps: &Items<StepDoc>,
        scope: &mut FlowScope<'_>,
        defaults: &HttpDefaults,
    ) -> Vec<StepDraft> {
        if steps.value.is_empty() {
            self.error(
                &steps.span,
                "`steps` is empty: expected at least one step, e.g. `- get: /`",
            );
        }
        steps
            .value
            .iter()
            .filter_map(Lenient::get)
            .filter_map(|s| self.step(s, scope, defaults))
            .collect()
    }

    fn step(
        &mut self,
        step: &Spanned<StepDoc>,
        scope: &mut FlowScope<'_>,
        defaults: &HttpDefaults,
    ) -> Option<StepDraft> {
        let doc = &step.value;
        match kinds(doc).as_slice() {
            [] => {
                let all: Vec<&str> = METHODS
                    .iter()
                    .map(|(k, _)| *k)
                    .chain(["think", "loop", "sql", "transaction"])
                    .collect();
                self.missing(&step.span, &all, format!("a step needs one of {KINDS}"));
                None
            }
            [first, second, ..] => {
                self.error(
                    second.span(),
                    format!(
                        "a step does one thing: found both `{}` and `{}`; split them into two steps",
                        first.key(),
                        second.key()
                    ),
                );
                None
            }
            [kind] => {
                self.check_keys_fit(kind.key(), step);
                match kind {
                    Kind::Think(t) => self.think(t),
                    Kind::Loop(_) => self.repeat(step, scope, defaults),
                    Kind::Request(_, method, url) => self
                        .http_step(method.clone(), url, doc, scope, defaults)
                        .map(|spec| StepDraft::Http(Box::new(spec))),
                    Kind::Sql(db) => self.sql_step(step, db, scope),
                    Kind::Transaction(db) => self.transaction_step(step, db, scope),
                }
            }
        }
    }

    /// Reports keys that do not belong with the step's kind.
    pub(super) fn check_keys_fit(&mut self, kind: &str, step: &Spanned<StepDoc>) {
        if kind == "sql" || kind == "transaction" {
            self.check_sql_keys_fit(kind, step);
            return;
        }
        let d = &step.value;
        let whole = || step.span.clone();
        let span_of = |s: &Option<Spanned<_>>| s.as_ref().map(|s: &Spanned<_>| s.span.clone());
        let mut misplaced: Vec<(&str, Option<Span>)> = Vec::new();
        if kind == "think" || kind == "loop" {
            misplaced.extend([
                ("name", span_of(&d.name)),
                ("headers", first_key(&d.headers)),
                ("query", d.query.as_ref().map(|s| s.span.clone())),
                ("json", d.json.as_ref().map(|s| s.span.clone())),
                ("body", span_of(&d.body)),
                ("form", d.form.as_ref().map(|s| s.span.clone())),
                ("check", d.check.as_ref().map(|_| whole())),
                ("capture", first_key(&d.capture)),
                ("timeout", span_of(&d.timeout)),
                ("follow_redirects", d.follow_redirects.map(|_| whole())),
                ("until", d.until.as_ref().map(|s| s.span.clone())),
                ("poll", d.poll.as_ref().map(|s| s.span.clone())),
            ]);
        }
        if kind != "loop" {
            misplaced.push(("steps", d.steps.as_ref().map(|s| s.span.clone())));
        }
        misplaced.push(("params", d.params.as_ref().map(|s| s.span.clone())));
        misplaced.push(("isolation", d.isolation.as_ref().map(|s| s.span.clone())));
        for (key, span) in misplaced {
            let Some(span) = span else { continue };
            let belongs = match key {
                "steps" => "a `loop` or a `transaction`",
                "params" => "an `sql:` step",
                "isolation" => "a `transaction`",
                _ => "an HTTP request step",
            };
            self.error(
                &span,
                format!("`{key}` does not fit a `{kind}` step: it belongs to {belongs}"),
            );
        }
    }

    fn think(&mut self, t: &Spanned<String>) -> Option<StepDraft> {
        match DurationRange::parse(&t.value) {
            Ok(range) => Some(StepDraft::Think(range)),
            Err(message) => {
                self.error(&t.span, message);
                None
            }
        }
    }

    fn repeat(
        &mut self,
        step: &Spanned<StepDoc>,
        scope: &mut FlowScope<'_>,
        defaults: &HttpDefaults,
    ) -> Option<StepDraft> {
        let count = step
            .value
            .repeat
            .as_ref()
            .and_then(|c| self.int_in(c, 1, MAX_LOOP));
        let steps = match &step.value.steps {
            Some(steps) => self.steps(steps, scope, defaults),
            None => {
                self.missing(
                    &step.span,
                    &["steps"],
                    "a `loop` needs `steps:`, the list of steps to repeat",
                );
                return None;
            }
        };
        Some(StepDraft::Loop {
            count: count?,
            steps,
        })
    }

    fn http_step(
        &mut self,
        method: Method,
        url: &Spanned<String>,
        doc: &StepDoc,
        flow: &mut FlowScope<'_>,
        defaults: &HttpDefaults,
    ) -> Option<HttpStepSpec> {
        self.any_http = true;
        let before = self.problems.len();
        let scope = flow.scope();
        let url_spec = self.url(url, &scope, defaults);
        let group_name = match &doc.name {
            Some(n) => n.value.clone(),
            None => default_group_name(method.as_str(), &url.value),
        };
        let name_span = doc.name.as_ref().map_or(&url.span, |n| &n.span).clone();
        let (group, poll) = match self.poll(doc) {
            None => (self.group(group_name, "http", &name_span), None),
            // A polling step: its name measures the outcome, its requests go to
            // a group of their own.
            Some(pace) => {
                let outcome = self.group(group_name.clone(), OUTCOME_KIND, &name_span);
                let requests =
                    self.group(format!("{group_name}{REQUESTS_SUFFIX}"), "http", &name_span);
                let poll = match (pace, outcome) {
                    (Some((until, interval, timeout)), Some(outcome_group)) => Some(PollSpec {
                        until,
                        interval,
                        timeout,
                        outcome_group,
                    }),
                    _ => None,
                };
                (requests, poll)
            }
        };
        let query = match doc.query.as_ref() {
            None => Vec::new(),
            Some(Spanned {
                value: QueryDoc::Params(q),
                ..
            }) => self.pairs(q, &scope),
            Some(q) => {
                self.error(
                    &q.span,
                    "the `query` of an HTTP step is a mapping of query parameters, e.g. `query: { page: 2 }` (SQL text belongs to `sql:` steps)",
                );
                Vec::new()
            }
        };
        let headers = match &doc.headers {
            Some(h) => self.headers(defaults.headers.clone(), h, &scope),
            None => defaults.headers.clone(),
        };
        let body = self.body(doc, &scope);
        let checks = doc
            .check
            .as_ref()
            .map(|c| self.checks(c))
            .unwrap_or_default();
        let timeout = match &doc.timeout {
            Some(t) => self.duration(t, false),
            None => Some(defaults.timeout),
        };
        let follow = doc.follow_redirects.unwrap_or(defaults.follow_redirects);
        // Captures become known to the steps after this one, even when this one
        // has errors, so that one mistake does not cascade.
        let captures = doc
            .capture
            .as_ref()
            .map(|c| self.captures(c, flow))
            .unwrap_or_default();
        if self.problems.len() > before {
            return None;
        }
        Some(HttpStepSpec {
            protocol_index: HTTP_PROTOCOL,
            group: group?,
            method,
            url: url_spec?,
            query,
            headers,
            body: body?,
            timeout: timeout?,
            checks,
            captures,
            max_redirects: if follow { defaults.max_redirects } else { 0 },
            poll,
        })
    }

    /// A polling step's condition, interval and timeout: `None` when the step does
    /// not poll, `Some(None)` when it does but something is wrong (reported).
    #[allow(clippy::type_complexity)]
    fn poll(&mut self, doc: &StepDoc) -> Option<Option<(Until, Duration, Duration)>> {
        let Some(until) = &doc.until else {
            if let Some(p) = &doc.poll {
                self.error(
                    &p.span,
                    "`poll` goes with `until`: add the condition to wait for, e.g. `until: { json: \"$.state\", equals: confirmed }`",
                );
            }
            return None;
        };
        let condition = self.until(until);
        let pace = doc.poll.as_ref().map(|p| self.pace(p));
        let (interval, timeout) = match pace {
            None => (Some(DEFAULT_POLL_INTERVAL), Some(DEFAULT_POLL_TIMEOUT)),
            Some(pace) => pace,
        };
        Some(
            condition
                .zip(interval)
                .zip(timeout)
                .map(|((c, i), t)| (c, i, t)),
        )
    }

    fn pace(&mut self, doc: &Spanned<PollDoc>) -> (Option<Duration>, Option<Duration>) {
        let interval = match &doc.value.interval {
            Some(i) => self.duration(i, false),
            None => Some(DEFAULT_POLL_INTERVAL),
        };
        let timeout = match &doc.value.timeout {
            Some(t) => self.duration(t, false),
            None => Some(DEFAULT_POLL_TIMEOUT),
        };
        if let (Some(i), Some(t)) = (interval, timeout) {
            if t <= i {
                self.warn(
                    &doc.span,
                    "the poll `timeout` is not longer than its `interval`: the step sends one request and gives up",
                );
            }
        }
        (interval, timeout)
    }

    fn until(&mut self, doc: &Spanned<UntilDoc>) -> Option<Until> {
        let d = &doc.value;
        let mut given: Vec<(&str, &Span)> = [
            ("status", d.status.as_ref().map(|s| &s.span)),
            ("body_contains", d.body_contains.as_ref().map(|s| &s.span)),
            ("json", d.json.as_ref().map(|s| &s.span)),
        ]
        .into_iter()
        .filter_map(|(k, s)| s.map(|s| (k, s)))
        .collect();
        given.sort_by_key(|(_, s)| s.mark);
        match given.as_slice() {
            [] => {
                self.missing(
                    &doc.span,
                    &["status", "body_contains", "json"],
                    "`until` needs a condition: `status: 200`, `body_contains: \"text\"` or `json: \"$.path\"` (with `equals: VALUE`)",
                );
                return None;
            }
            [first, second, ..] => {
                self.error(
                    second.1,
                    format!(
                        "`until` waits for one condition: found both `{}` and `{}`",
                        first.0, second.0
                    ),
                );
                return None;
            }
            [_] => {}
        }
        if let (Some(e), None) = (&d.equals, &d.json) {
            self.error(
                &e.span,
                "`equals` goes with `json`: the value a JSONPath must have",
            );
            return None;
        }
        if let Some(status) = &d.status {
            return self.status_codes(status).map(Until::Status);
        }
        if let Some(text) = &d.body_contains {
            return Some(Until::BodyContains(text.value.clone()));
        }
        let path = d.json.as_ref()?;
        let parsed = match serde_json_path::JsonPath::parse(&path.value) {
            Ok(p) => Some(p),
            Err(e) => {
                self.error(
                    &path.span,
                    format!(
                        "invalid JSONPath `{}`: {e}; expected e.g. `$.state`",
                        path.value
                    ),
                );
                None
            }
        };
        let equals = match &d.equals {
            Some(e) => Some(self.plain_value(e)?),
            None => None,
        };
        Some(Until::Json {
            path: parsed?,
            equals,
        })
    }

    /// A YAML value as JSON, as written (no templates).
    pub(super) fn plain_value(&mut self, doc: &Spanned<JsonDoc>) -> Option<Value> {
        Some(match &doc.value {
            JsonDoc::Null => Value::Null,
            JsonDoc::Bool(b) => Value::Bool(*b),
            JsonDoc::Int(i) => Value::from(*i),
            JsonDoc::UInt(u) => Value::from(*u),
            JsonDoc::Float(f) => match serde_json::Number::from_f64(*f) {
                Some(n) => Value::Number(n),
                None => {
                    self.error(&doc.span, format!("expected a finite number, found {f}"));
                    return None;
                }
            },
            JsonDoc::Str(s) => Value::String(s.clone()),
            JsonDoc::Seq(items) => Value::Array(
                items
                    .iter()
                    .map(|i| self.plain_value(i))
                    .collect::<Option<_>>()?,
            ),
            JsonDoc::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| Some((k.clone(), self.plain_value(v)?)))
                    .collect::<Option<_>>()?,
            ),
        })
    }

    /// Status codes from 100 to 599, at least one.
    fn status_codes(&mut self, status: &Spanned<StatusDoc>) -> Option<Vec<u16>> {
        let codes = status.value.codes();
        if codes.is_empty() {
            self.error(&status.span, "expected at least one status code");
            return None;
        }
        match codes.iter().find(|c| !(100..=599).contains(*c)) {
            Some(bad) => {
                self.error(
                    &status.span,
                    format!("expected HTTP status codes from 100 to 599, found {bad}"),
                );
                None
            }
            None => Some(codes.iter().map(|c| *c as u16).collect()),
        }
    }

    fn url(
        &mut self,
        url: &Spanned<String>,
        scope: &dyn Scope,
        defaults: &HttpDefaults,
    ) -> Option<UrlSpec> {
        let text = url.value.as_str();
        let lower = text.get(..8).unwrap_or(text).to_ascii_lowercase();
        if text.starts_with('/') {
            let path = self.template(text, &url.span, scope);
            match &defaults.target {
                Target::Base(base) => Some(UrlSpec::Relative {
                    base: base.clone(),
                    path: path?,
                }),
                Target::Invalid => None,
                Target::Missing => {
                    self.error(
                        &url.span,
                        format!(
                            "`{text}` is a path but the scenario has no `target:`: add e.g. `target: http://127.0.0.1:8080` at the top, or write an absolute URL"
                        ),
                    );
                    None
                }
            }
        } else if lower.starts_with("http://") || lower.starts_with("https://") {
            let t = self.template(text, &url.span, scope)?;
            if let Some(fixed) = t.static_text() {
                if let Err(e) = url::Url::parse(fixed) {
                    self.error(&url.span, format!("invalid URL `{fixed}`: {e}"));
                    return None;
                }
            }
            Some(UrlSpec::Absolute(t))
        } else {
            self.error(
                &url.span,
                format!(
                    "expected a path starting with / or an absolute http(s) URL, found `{text}`"
                ),
            );
            None
        }
    }

    /// Compiles a template; an error points at its column when the text is on
    /// one line as written.
    pub(super) fn template(
        &mut self,
        text: &str,
        span: &Span,
        scope: &dyn Scope,
    ) -> Option<Template> {
        match Template::compile(text, scope) {
            Ok(t) => Some(t),
            Err(e) => {
                let column = span
                    .content_column
                    .and_then(|c| text.get(..e.offset).map(|p| c + p.chars().count()))
                    .unwrap_or(span.mark.column);
                let mark = Mark {
                    line: span.mark.line,
                    column,
                };
                self.error_at(mark, &span.path, e.message);
                None
            }
        }
    }

    fn pairs(
        &mut self,
        entries: &Entries<Spanned<String>>,
        scope: &dyn Scope,
    ) -> Vec<(String, Template)> {
        entries
            .0
            .iter()
            .filter_map(|(k, v)| {
                let t = self.template(&v.value, &v.span, scope)?;
                Some((k.value.clone(), t))
            })
            .collect()
    }

    /// Merges `entries` over `base`; a header named again (in any case) replaces
    /// the earlier one.
    fn headers(
        &mut self,
        mut base: Vec<(HeaderName, Template)>,
        entries: &Entries<Spanned<String>>,
        scope: &dyn Scope,
    ) -> Vec<(HeaderName, Template)> {
        for (k, v) in &entries.0 {
            let name = match HeaderName::from_bytes(k.value.as_bytes()) {
                Ok(n) => Some(n),
                Err(_) => {
                    self.error(
                        &k.span,
                        format!(
                            "invalid header name `{}`: expected letters, digits and `-`, such as `x-request-id`",
                            k.value
                        ),
                    );
                    None
                }
            };
            let value = self.template(&v.value, &v.span, scope);
            if let Some(fixed) = value.as_ref().and_then(Template::static_text) {
                if HeaderValue::from_str(fixed).is_err() {
                    self.error(
                        &v.span,
                        "invalid header value: expected visible text without line breaks",
                    );
                }
            }
            if let (Some(name), Some(value)) = (name, value) {
                match base.iter_mut().find(|(n, _)| *n == name) {
                    Some(slot) => slot.1 = value,
                    None => base.push((name, value)),
                }
            }
        }
        base
    }

    fn body(&mut self, doc: &StepDoc, scope: &dyn Scope) -> Option<BodySpec> {
        let mut given: Vec<(&str, &Span)> = Vec::new();
        if let Some(j) = &doc.json {
            given.push(("json", &j.span));
        }
        if let Some(b) = &doc.body {
            given.push(("body", &b.span));
        }
        if let Some(f) = &doc.form {
            given.push(("form", &f.span));
        }
        given.sort_by_key(|(_, s)| s.mark);
        if let [first, second, ..] = given.as_slice() {
            self.error(
                second.1,
                format!(
                    "a request has one body: found both `{}` and `{}`; keep one of json, body and form",
                    first.0, second.0
                ),
            );
            return None;
        }
        if let Some(j) = &doc.json {
            let before = self.problems.len();
            let value = self.json_value(j, scope);
            if self.problems.len() > before {
                return None;
            }
            return match JsonTemplate::compile(&value, scope) {
                Ok(t) => Some(BodySpec::Json(t)),
                Err((at, e)) => {
                    self.error(&j.span, format!("{at}: {}", e.message));
                    None
                }
            };
        }
        if let Some(b) = &doc.body {
            return self.template(&b.value, &b.span, scope).map(BodySpec::Raw);
        }
        if let Some(f) = &doc.form {
            let before = self.problems.len();
            let pairs = self.pairs(&f.value, scope);
            return (self.problems.len() == before).then_some(BodySpec::Form(pairs));
        }
        Some(BodySpec::None)
    }

    /// Converts a JSON body to a value, checking each string's template where it
    /// was written.
    fn json_value(&mut self, doc: &Spanned<JsonDoc>, scope: &dyn Scope) -> Value {
        match &doc.value {
            JsonDoc::Null => Value::Null,
            JsonDoc::Bool(b) => Value::Bool(*b),
            JsonDoc::Int(i) => Value::from(*i),
            JsonDoc::UInt(u) => Value::from(*u),
            JsonDoc::Float(f) => match serde_json::Number::from_f64(*f) {
                Some(n) => Value::Number(n),
                None => {
                    self.error(&doc.span, format!("expected a finite number, found {f}"));
                    Value::Null
                }
            },
            JsonDoc::Str(s) => {
                self.template(s, &doc.span, scope);
                Value::String(s.clone())
            }
            JsonDoc::Seq(items) => {
                Value::Array(items.iter().map(|i| self.json_value(i, scope)).collect())
            }
            JsonDoc::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), self.json_value(v, scope)))
                    .collect(),
            ),
        }
    }

    fn checks(&mut self, doc: &CheckDoc) -> Vec<Check> {
        self.any_check = true;
        for (key, span) in [
            ("rows", doc.rows.as_ref().map(|s| &s.span)),
            ("rows_at_least", doc.rows_at_least.as_ref().map(|s| &s.span)),
            ("rows_at_most", doc.rows_at_most.as_ref().map(|s| &s.span)),
            ("column", doc.column.as_ref().map(|s| &s.span)),
            ("equals", doc.equals.as_ref().map(|s| &s.span)),
        ] {
            if let Some(span) = span {
                self.error(
                    span,
                    format!("`{key}` checks the result of an `sql:` step; an HTTP step checks `status`, `body_contains` or `header`"),
                );
            }
        }
        let mut checks = Vec::new();
        if let Some(status) = &doc.status {
            if let Some(codes) = self.status_codes(status) {
                checks.push(Check::Status(codes));
            }
        }
        if let Some(text) = &doc.body_contains {
            checks.push(Check::BodyContains(text.value.clone()));
        }
        if let Some(h) = &doc.header {
            match HeaderName::from_bytes(h.value.as_bytes()) {
                Ok(name) => checks.push(Check::Header {
                    name,
                    contains: None,
                }),
                Err(_) => self.error(
                    &h.span,
                    format!(
                        "invalid header name `{}`: expected letters, digits and `-`",
                        h.value
                    ),
                ),
            }
        }
        checks
    }

    fn captures(
        &mut self,
        entries: &Entries<Lenient<Spanned<CaptureDoc>>>,
        flow: &mut FlowScope<'_>,
    ) -> Vec<CaptureSpec> {
        let mut out = Vec::new();
        for (name, doc) in &entries.0 {
            let slot = self.capture_name(name, flow);
            let source = doc.get().and_then(|d| self.capture_source(d));
            if let (Some(slot), Some(source)) = (slot, source) {
                out.push(CaptureSpec {
                    slot,
                    name: name.value.clone(),
                    source,
                });
            }
        }
        out
    }

    /// Checks a capture's name and gives its slot (`None` when the name is
    /// refused). The name becomes known to the steps after this one either way,
    /// so that one mistake does not cascade.
    pub(super) fn capture_name(
        &mut self,
        name: &Spanned<String>,
        flow: &mut FlowScope<'_>,
    ) -> Option<usize> {
        let mut ok = true;
        if !is_identifier(&name.value) {
            self.error(
                &name.span,
                format!(
                    "`{}` is not a capture name: use letters, digits and `_`, such as `order_id`",
                    name.value
                ),
            );
            ok = false;
        } else if let Some(kind) = flow.names.is_declared(&name.value) {
            self.error(
                &name.span,
                format!(
                    "the capture `{}` would hide the {kind} of the same name: choose another name",
                    name.value
                ),
            );
            ok = false;
        }
        let slot = self.capture_slot(&name.value);
        if !flow.known.iter().any(|(n, _)| *n == name.value) {
            flow.known.push((name.value.clone(), slot));
        }
        ok.then_some(slot)
    }

    fn capture_source(&mut self, doc: &Spanned<CaptureDoc>) -> Option<CaptureSource> {
        let d = &doc.value;
        if let Some(column) = &d.column {
            self.error(
                &column.span,
                "`column` captures from the result of an `sql:` step; an HTTP step captures `json`, `regex` or `header`",
            );
            return None;
        }
        let mut sources: Vec<(&str, &Span)> = [
            ("json", &d.json),
            ("regex", &d.regex),
            ("header", &d.header),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k, &v.span)))
        .collect();
        sources.sort_by_key(|(_, s)| s.mark);
        match sources.as_slice() {
            [] => {
                self.missing(
                    &doc.span,
                    &["json", "regex", "header"],
                    "a capture needs one of `json: <JSONPath>`, `regex: <pattern>` or `header: <name>`",
                );
                return None;
            }
            [first, second, ..] => {
                self.error(
                    second.1,
                    format!(
                        "a capture has one source: found both `{}` and `{}`",
                        first.0, second.0
                    ),
                );
                return None;
            }
            [_] => {}
        }
        if let (Some(g), None) = (&d.group, &d.regex) {
            self.error(&g.span, "`group` goes with `regex`");
            return None;
        }
        if let Some(path) = &d.json {
            return match serde_json_path::JsonPath::parse(&path.value) {
                Ok(p) => Some(CaptureSource::Json(p)),
                Err(e) => {
                    self.error(
                        &path.span,
                        format!(
                            "invalid JSONPath `{}`: {e}; expected e.g. `$.items[0].id`",
                            path.value
                        ),
                    );
                    None
                }
            };
        }
        if let Some(pattern) = &d.regex {
            let re = match regex::Regex::new(&pattern.value) {
                Ok(re) => re,
                Err(e) => {
                    // The syntax error's text draws a caret over several lines;
                    // its last line says what is wrong.
                    let text = e.to_string();
                    let what = text.lines().last().unwrap_or_default();
                    let what = what.trim().trim_start_matches("error: ");
                    self.error(
                        &pattern.span,
                        format!("invalid regex `{}`: {what}", pattern.value),
                    );
                    return None;
                }
            };
            let groups = re.captures_len();
            let group = match &d.group {
                None => usize::from(groups > 1),
                Some(g) => {
                    let max = groups as i64 - 1;
                    usize::try_from(self.int_in(g, 0, max)?).ok()?
                }
            };
            return Some(CaptureSource::Regex { re, group });
        }
        let name = d.header.as_ref()?;
        match HeaderName::from_bytes(name.value.as_bytes()) {
            Ok(h) => Some(CaptureSource::Header(h)),
            Err(_) => {
                self.error(
                    &name.span,
                    format!(
                        "invalid header name `{}`: expected letters, digits and `-`",
                        name.value
                    ),
                );
                None
            }
        }
    }
}

/// Where a mapping's first key was written (or nothing for an empty mapping).
pub(super) fn first_key<T>(entries: &Option<Entries<T>>) -> Option<Span> {
    entries
        .as_ref()
        .and_then(|e| e.0.first())
        .map(|(k, _)| k.span.clone())
}

/// Every capture name the steps (and their loops) assign.
fn collect_captures(steps: &[Lenient<Spanned<StepDoc>>], out: &mut Vec<String>) {
    for step in steps.iter().filter_map(Lenient::get) {
        if let Some(c) = &step.value.capture {
            out.extend(c.0.iter().map(|(k, _)| k.value.clone()));
        }
        if let Some(inner) = &step.value.steps {
            collect_captures(&inner.value, out);
        }
    }
}
