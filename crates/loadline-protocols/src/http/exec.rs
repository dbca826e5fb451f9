//! The executor of one HTTP step: renders the target, headers and body, sends the
//! request (following redirects), reports one sample per request, then runs the
//! checks and captures on the final response.
//!
//! Everything that does not vary per request is prepared in [`HttpStep::new`]:
//! the origin and path of a fixed target, the static headers, a static body.

use std::borrow::Cow;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, HOST, PROXY_AUTHORIZATION, USER_AGENT};
use http::uri::PathAndQuery;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use loadline_core::metrics::{ErrorKind, MetricsHub, RequestSample};
use loadline_core::protocol::{BoxFuture, StepExec, StepOutcome};
use loadline_core::template::{JsonTemplate, Vars};
use loadline_core::vu::Vu;
use serde_json::Value;
use url::{form_urlencoded, Position, Url};

use super::cache;
use super::conn::{self, Origin, Progress};
use super::h2;
use super::spec::{
    BodySpec, CaptureSource, Check, HttpStepSpec, HttpVersion, PollSpec, Redirects, Until, UrlSpec,
};
use super::wire::Head;
use super::VuState;
use crate::check::describe_actual;
use crate::registry::Dump;

const USER_AGENT_VALUE: &str = concat!("loadline/", env!("CARGO_PKG_VERSION"));

/// A step with everything static prepared.
#[derive(Debug)]
pub(crate) struct HttpStep {
    spec: HttpStepSpec,
    /// The origin of a relative target (`None` if the base is not http(s)).
    base: Option<Arc<Origin>>,
    /// The base URL's path, without its trailing slash, put before the step's path.
    base_path: String,
    /// The whole request target, when nothing in it varies.
    static_target: Option<PathAndQuery>,
    /// The headers that do not vary: user agent, content type, static step headers.
    headers: HeaderMap,
    /// `headers` serialised (`name: value\r\n` each), for the common request.
    static_block: Vec<u8>,
    /// The step sets its own `cookie` header.
    own_cookie: bool,
    /// Indexes into `spec.headers` of the headers rendered per request.
    dynamic_headers: Vec<usize>,
    /// The step sets its own `host` header.
    own_host: bool,
    static_body: Option<Bytes>,
    /// A check or capture reads the body.
    needs_body: bool,
    /// A literal searcher per `BodyContains` check, indexed like `spec.checks`.
    finders: Vec<Option<regex::bytes::Regex>>,
}

impl HttpStep {
    pub(crate) fn spec(&self) -> &HttpStepSpec {
        &self.spec
    }

    pub(crate) fn new(spec: HttpStepSpec) -> Self {
        let given = |n: &HeaderName| spec.headers.iter().any(|(h, _)| h == n);
        let mut headers = HeaderMap::new();
        if !given(&USER_AGENT) {
            headers.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
        }
        if !given(&CONTENT_TYPE) {
            match spec.body {
                BodySpec::Json(_) => {
                    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                }
                BodySpec::Form(_) => {
                    headers.insert(
                        CONTENT_TYPE,
                        HeaderValue::from_static("application/x-www-form-urlencoded"),
                    );
                }
                BodySpec::None | BodySpec::Raw(_) => {}
            }
        }
        let mut dynamic_headers = Vec::new();
        for (i, (name, t)) in spec.headers.iter().enumerate() {
            // A static value that is not a valid header value is rendered (and
            // rejected) per request, so the failure shows in the counts.
            match t.static_text().and_then(|s| HeaderValue::from_str(s).ok()) {
                Some(v) => {
                    headers.append(name.clone(), v);
                }
                None => dynamic_headers.push(i),
            }
        }

        let (base, base_path) = match &spec.url {
            UrlSpec::Relative { base, .. } => (
                Origin::from_url(base).map(Arc::new),
                base.path().trim_end_matches('/').to_string(),
            ),
            UrlSpec::Absolute(_) => (None, String::new()),
        };
        let static_target = match &spec.url {
            UrlSpec::Relative { path, .. } if base.is_some() => path.static_text().and_then(|p| {
                let mut target = base_path.clone();
                target.push_str(p);
                strip_fragment(&mut target);
                let mut sep = query_separator(&target);
                for (k, t) in &spec.query {
                    push_pair(&mut target, &mut sep, k, t.static_text()?);
                }
                path_and_query(&mut target, &mut String::new()).ok()
            }),
            _ => None,
        };

        let static_body = match &spec.body {
            BodySpec::None => Some(Bytes::new()),
            BodySpec::Raw(t) => t
                .static_text()
                .map(|s| Bytes::copy_from_slice(s.as_bytes())),
            BodySpec::Json(JsonTemplate::Static(s)) => Some(Bytes::copy_from_slice(s.as_bytes())),
            BodySpec::Json(_) => None,
            BodySpec::Form(pairs) => {
                let mut ser = form_urlencoded::Serializer::new(String::new());
                let all_static = pairs.iter().all(|(k, t)| match t.static_text() {
                    Some(v) => {
                        ser.append_pair(k, v);
                        true
                    }
                    None => false,
                });
                all_static.then(|| Bytes::from(ser.finish()))
            }
        };

        let needs_body = spec
            .checks
            .iter()
            .any(|c| matches!(c.check, Check::BodyContains(_) | Check::Json { .. }))
            || spec.captures.iter().any(|c| {
                matches!(
                    c.source,
                    CaptureSource::Json(_) | CaptureSource::Regex { .. }
                )
            })
            || spec
                .poll
                .as_ref()
                .is_some_and(|p| !matches!(p.until, Until::Status(_)));
        let finders = spec
            .checks
            .iter()
            .map(|c| match &c.check {
                Check::BodyContains(text) => regex::bytes::Regex::new(&regex::escape(text)).ok(),
                _ => None,
            })
            .collect();

        let mut static_block = Vec::new();
        for (name, value) in &headers {
            push_header(&mut static_block, name.as_str(), value.as_bytes());
        }
        Self {
            own_host: given(&HOST),
            own_cookie: given(&COOKIE),
            static_block,
            spec,
            base,
            base_path,
            static_target,
            headers,
            dynamic_headers,
            static_body,
            needs_body,
            finders,
        }
    }

    async fn execute(&self, vu: &mut Vu) -> StepOutcome {
        let group = self.spec.group;
        let Some((vars, state, hub)) = vu.parts_for(self.spec.slot, group) else {
            return StepOutcome::AbortIteration;
        };
        let outcome = match &self.spec.poll {
            None if self.send(vars, state, hub).await => self.check_and_capture(vars, state, hub),
            None => StepOutcome::AbortIteration,
            Some(poll) => self.poll(poll, vars, state, hub).await,
        };
        state.release_body();
        outcome
    }

    /// Repeats the request until the poll's condition holds on a response (then
    /// checks and captures run on it) or its timeout passes. One outcome sample:
    /// the time from the first request until the condition held.
    async fn poll(
        &self,
        poll: &PollSpec,
        vars: &mut Vars,
        state: &mut VuState,
        hub: &MetricsHub,
    ) -> StepOutcome {
        let start = Instant::now();
        loop {
            let answered = self.send(vars, state, hub).await;
            if answered && holds(&poll.until, state) {
                hub.record_request(&RequestSample {
                    group: poll.outcome_group,
                    latency: start.elapsed(),
                    status: Some(state.head.status),
                    failed: false,
                    error: None,
                    bytes_sent: 0,
                    bytes_received: 0,
                    cache: loadline_core::cache::CacheOutcome::None,
                });
                return self.check_and_capture(vars, state, hub);
            }
            if start.elapsed() + poll.interval > poll.timeout {
                hub.record_request(&RequestSample {
                    group: poll.outcome_group,
                    latency: start.elapsed(),
                    status: answered.then_some(state.head.status),
                    failed: true,
                    error: Some(ErrorKind::Timeout.into()),
                    bytes_sent: 0,
                    bytes_received: 0,
                    cache: loadline_core::cache::CacheOutcome::None,
                });
                return StepOutcome::AbortIteration;
            }
            tokio::time::sleep(poll.interval).await;
        }
    }

    /// Sends the request (following redirects), recording a sample per request.
    /// True when a final response is in `state.head` (and its kept body in
    /// `state.body`); false when none came.
    async fn send(&self, vars: &mut Vars, state: &mut VuState, hub: &MetricsHub) -> bool {
        let group = self.spec.group;
        let (mut origin, mut target) = match self.first_target(vars, state) {
            Ok(t) => t,
            Err(kind) => {
                hub.record_request(&RequestSample::unsent(group, kind));
                return false;
            }
        };
        let mut body = self.render_body(vars, state);
        let mut method = self.spec.method.clone();
        let mut body_headers = true;
        let first_origin = origin.clone();
        let mut crossed = false;
        let mut left_host = false;
        let keep = if self.needs_body {
            state.shared.settings.max_body
        } else {
            0
        };
        let mut hops = 0;

        loop {
            let mut req = std::mem::take(&mut state.req);
            let built = self.request(
                vars,
                state,
                &mut req,
                &origin,
                &target,
                &method,
                &body,
                body_headers,
                Crossing { crossed, left_host },
            );
            if let Err(kind) = built {
                state.req = req;
                hub.record_request(&RequestSample::unsent(group, kind));
                return false;
            }
            let request_len = req.len() as u64;
            let mut progress = Progress::default();
            let start = Instant::now();
            let in_flight = hub.in_flight(group, start, request_len);
            let head_request = method == Method::HEAD;
            // The common case awaits the HTTP/1.1 exchange itself; HTTP/2 and
            // --http-debug take a boxed detour, so as not to grow this future.
            let plain =
                self.spec.version == HttpVersion::Http1 && state.shared.settings.dump == Dump::Off;
            let result = if plain {
                tokio::time::timeout(
                    self.spec.timeout,
                    conn::exchange(state, &origin, &req, head_request, keep, &mut progress),
                )
                .await
            } else {
                tokio::time::timeout(
                    self.spec.timeout,
                    Box::pin(self.exchange(
                        state,
                        &origin,
                        &req,
                        head_request,
                        keep,
                        &mut progress,
                    )),
                )
                .await
            }
            .unwrap_or(Err(ErrorKind::Timeout));
            in_flight.done();
            state.req = req;
            let latency = start.elapsed();
            state.latency = latency;
            let mut sample = RequestSample {
                group,
                latency,
                status: None,
                failed: true,
                error: None,
                bytes_sent: if progress.sent { request_len } else { 0 },
                bytes_received: progress.received,
                cache: loadline_core::cache::CacheOutcome::None,
            };
            if let Err(kind) = result {
                sample.error = Some(kind.into());
                hub.record_request(&sample);
                return false;
            }
            let status = state.head.status;
            sample.status = Some(status);
            sample.failed = status >= 400;
            let (cache, chained) =
                cache::classify(&state.head, state.shared.settings.cache_rule.as_deref());
            sample.cache = cache;
            hub.record_request(&sample);
            if chained {
                let layers: Vec<_> = cache::chain(&state.head)
                    .iter()
                    .map(|e| (e.name, e.outcome))
                    .collect();
                hub.record_cache_layers(group, &layers);
            }

            if state.shared.settings.cookies && state.head.get("set-cookie").is_some() {
                store_cookies(state, &origin, &target);
            }
            if hops < self.spec.max_redirects && matches!(status, 301 | 302 | 303 | 307 | 308) {
                if let Some((next_origin, next_target)) = redirect_target(state, &origin, &target) {
                    let off_host = next_origin.host != first_origin.host;
                    if off_host && state.shared.settings.redirects == Redirects::SameHost {
                        state.shared.off_host.fetch_add(1, Ordering::Relaxed);
                        return true;
                    }
                    left_host |= off_host;
                    if status <= 303 && method != Method::HEAD {
                        method = Method::GET;
                        body = Bytes::new();
                        body_headers = false;
                    }
                    crossed |= !next_origin.same(&first_origin);
                    origin = next_origin;
                    target = next_target;
                    hops += 1;
                    continue;
                }
            }
            return true;
        }
    }

    /// One request and its response, over the step's HTTP version (HTTP/2, or
    /// HTTP/1.1 printed for `--http-debug`).
    async fn exchange(
        &self,
        state: &mut VuState,
        origin: &Origin,
        req: &[u8],
        head_request: bool,
        keep: usize,
        progress: &mut Progress,
    ) -> Result<(), ErrorKind> {
        let version = self.spec.version;
        if version != HttpVersion::Http1
            && matches!(h2::route(state, origin, version), h2::Route::H2)
            && h2::exchange(state, origin, req, version, keep, progress).await?
        {
            return Ok(());
        }
        conn::exchange_dumped(state, origin, req, head_request, keep, progress).await
    }

    /// The origin and request target of the step's own URL.
    fn first_target(
        &self,
        vars: &mut Vars,
        state: &mut VuState,
    ) -> Result<(Arc<Origin>, PathAndQuery), ErrorKind> {
        let buf = &mut state.url;
        buf.clear();
        match &self.spec.url {
            UrlSpec::Relative { path, .. } => {
                let origin = self.base.clone().ok_or(ErrorKind::Other)?;
                if let Some(t) = &self.static_target {
                    return Ok((origin, t.clone()));
                }
                buf.push_str(&self.base_path);
                path.render_into(vars, buf);
                strip_fragment(buf);
                self.append_query(vars, buf, &mut state.value);
                let target = path_and_query(buf, &mut state.text)?;
                Ok((origin, target))
            }
            UrlSpec::Absolute(t) => {
                t.render_into(vars, buf);
                strip_fragment(buf);
                self.append_query(vars, buf, &mut state.value);
                let url = Url::parse(buf).map_err(|_| ErrorKind::Other)?;
                let origin = match &state.last_origin {
                    Some(o) if origin_matches(&url, o) => o.clone(),
                    _ => {
                        let o = Arc::new(Origin::from_url(&url).ok_or(ErrorKind::Other)?);
                        state.last_origin = Some(o.clone());
                        o
                    }
                };
                Ok((origin, url_target(&url)?))
            }
        }
    }

    fn append_query(&self, vars: &mut Vars, buf: &mut String, value: &mut String) {
        if self.spec.query.is_empty() {
            return;
        }
        let mut sep = query_separator(buf);
        for (k, t) in &self.spec.query {
            value.clear();
            t.render_into(vars, value);
            push_pair(buf, &mut sep, k, value);
        }
    }

    fn render_body(&self, vars: &mut Vars, state: &mut VuState) -> Bytes {
        if let Some(b) = &self.static_body {
            return b.clone();
        }
        let text = &mut state.text;
        text.clear();
        match &self.spec.body {
            BodySpec::None => {}
            BodySpec::Raw(t) => t.render_into(vars, text),
            BodySpec::Json(j) => j.render_into(vars, text),
            BodySpec::Form(pairs) => {
                let mut ser = form_urlencoded::Serializer::for_suffix(&mut *text, 0);
                for (k, t) in pairs {
                    state.value.clear();
                    t.render_into(vars, &mut state.value);
                    ser.append_pair(k, &state.value);
                }
                ser.finish();
            }
        }
        Bytes::copy_from_slice(text.as_bytes())
    }

    /// Serialises the request of one hop into `out`: request line, headers, blank
    /// line, body. The common case writes the step's pre-serialised header block.
    #[allow(clippy::too_many_arguments)]
    fn request(
        &self,
        vars: &mut Vars,
        state: &mut VuState,
        out: &mut Vec<u8>,
        origin: &Origin,
        target: &PathAndQuery,
        method: &Method,
        body: &Bytes,
        body_headers: bool,
        crossing: Crossing,
    ) -> Result<(), ErrorKind> {
        let Crossing { crossed, left_host } = crossing;
        out.clear();
        out.extend_from_slice(method.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(target.as_str().as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\n");
        if !self.own_host || left_host {
            push_header(out, "host", origin.authority.as_bytes());
        }
        let jar = state.jar_in_use();
        // Credentials meant for the first origin do not follow a redirect away; a
        // step's own cookie header is merged with the jar's cookies.
        // On another host, only the headers the scenario marked as safe to
        // forward go along (and the user agent, and the body's content type).
        let forward = &state.shared.settings.forward_headers;
        let skip = |name: &HeaderName| {
            (!body_headers && name == CONTENT_TYPE)
                || (crossed
                    && (name == AUTHORIZATION || name == PROXY_AUTHORIZATION || name == COOKIE)
                    && !forward.contains(name))
                || (left_host
                    && name != CONTENT_TYPE
                    && name != USER_AGENT
                    && !forward.contains(name))
                || (jar && name == COOKIE)
        };
        if body_headers && !crossed && !(jar && self.own_cookie) {
            out.extend_from_slice(&self.static_block);
        } else {
            for (name, value) in &self.headers {
                if !skip(name) {
                    push_header(out, name.as_str(), value.as_bytes());
                }
            }
        }
        let mut own_cookie = None;
        for &i in &self.dynamic_headers {
            let Some((name, t)) = self.spec.headers.get(i) else {
                continue;
            };
            state.text.clear();
            t.render_into(vars, &mut state.text);
            let value = state.text.as_bytes();
            if value.iter().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
                return Err(ErrorKind::Other);
            }
            if jar && name == COOKIE {
                own_cookie = Some(state.text.clone());
            } else if !skip(name) {
                push_header(out, name.as_str(), value);
            }
        }
        if jar {
            let own = own_cookie.or_else(|| {
                self.headers
                    .get(COOKIE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            });
            add_cookies(
                state,
                out,
                origin,
                target,
                own.as_deref().filter(|_| !crossed),
            );
        }
        if !body.is_empty() {
            let mut n = itoa_buf();
            push_header(out, "content-length", format_u64(&mut n, body.len() as u64));
        } else if body_headers && matches!(*method, Method::POST | Method::PUT | Method::PATCH) {
            push_header(out, "content-length", b"0");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(body);
        Ok(())
    }

    fn check_and_capture(&self, vars: &mut Vars, state: &VuState, hub: &MetricsHub) -> StepOutcome {
        let group = self.spec.group;
        let head: &Head = &state.head;
        let status = head.status;
        // The body is parsed (or decoded) once, whatever the number of checks
        // and captures.
        let mut json: Option<Option<Value>> = None;
        for (i, spec) in self.spec.checks.iter().enumerate() {
            let passed = match &spec.check {
                Check::Status(codes) => codes.contains(&status),
                Check::BodyContains(text) => match self.finders.get(i).and_then(Option::as_ref) {
                    Some(finder) => finder.is_match(&state.body),
                    None => contains(&state.body, text.as_bytes()),
                },
                Check::Header { name, tests } => head.get_all(name.as_str()).any(|v| {
                    let value = Value::String(String::from_utf8_lossy(v).into_owned());
                    tests.iter().all(|t| t.passes(Some(&value), vars))
                }),
                Check::Json { path, tests } => {
                    let found = json
                        .get_or_insert_with(|| serde_json::from_slice(&state.body).ok())
                        .as_ref()
                        .and_then(|doc| path.query(doc).first().cloned());
                    tests.iter().all(|t| t.passes(found.as_ref(), vars))
                }
                Check::LatencyBelow(bound) => state.latency < *bound,
            };
            if passed {
                hub.check_passed(group);
            } else {
                let actual = self.actual(&spec.check, state, &mut json);
                hub.check_failed(group, spec.id, &actual);
            }
        }

        let mut text: Option<Cow<'_, str>> = None;
        for capture in &self.spec.captures {
            let value = match &capture.source {
                CaptureSource::Json(path) => json
                    .get_or_insert_with(|| serde_json::from_slice(&state.body).ok())
                    .as_ref()
                    .and_then(|doc| path.query(doc).first().cloned()),
                CaptureSource::Regex { re, group: n } => {
                    let text = text.get_or_insert_with(|| String::from_utf8_lossy(&state.body));
                    re.captures(text)
                        .and_then(|c| c.get(*n))
                        .map(|m| Value::String(m.as_str().to_owned()))
                }
                CaptureSource::Header(name) => head
                    .get(name.as_str())
                    .map(|v| Value::String(String::from_utf8_lossy(v).into_owned())),
            };
            match (value, vars.captures.get_mut(capture.slot)) {
                (Some(v), Some(slot)) => *slot = Some(v),
                _ => {
                    hub.record_error(group, ErrorKind::Capture);
                    return StepOutcome::AbortIteration;
                }
            }
        }
        StepOutcome::Continue
    }

    /// What a failed check saw: the status, the header's values, the JSON
    /// value (`missing`, or `not JSON`), the latency.
    fn actual(&self, check: &Check, state: &VuState, json: &mut Option<Option<Value>>) -> String {
        match check {
            Check::Status(_) => state.head.status.to_string(),
            Check::BodyContains(_) => format!("not in the {} bytes kept", state.body.len()),
            Check::Header { name, .. } => {
                let values: Vec<String> = state
                    .head
                    .get_all(name.as_str())
                    .map(|v| format!("{:?}", String::from_utf8_lossy(v)))
                    .collect();
                if values.is_empty() {
                    "missing".into()
                } else {
                    values.join(", ")
                }
            }
            Check::Json { path, .. } => match json
                .get_or_insert_with(|| serde_json::from_slice(&state.body).ok())
                .as_ref()
            {
                None => "the body is not JSON".into(),
                Some(doc) => describe_actual(path.query(doc).first()),
            },
            Check::LatencyBelow(_) => {
                format!("{:.1}ms", state.latency.as_secs_f64() * 1000.0)
            }
        }
    }
}

impl StepExec for HttpStep {
    fn run<'a>(&'a self, vu: &'a mut Vu) -> BoxFuture<'a, StepOutcome> {
        Box::pin(self.execute(vu))
    }
}

/// Whether a poll's condition holds on the last response.
fn holds(until: &Until, state: &VuState) -> bool {
    match until {
        Until::Status(codes) => codes.contains(&state.head.status),
        Until::BodyContains(text) => contains(&state.body, text.as_bytes()),
        Until::Json { path, equals } => serde_json::from_slice::<Value>(&state.body)
            .ok()
            .and_then(|doc| path.query(&doc).first().cloned())
            .is_some_and(|found| equals.as_ref().is_none_or(|want| *want == found)),
    }
}

/// Where a redirected request is, relative to where it started.
#[derive(Debug, Clone, Copy)]
struct Crossing {
    /// At another origin (scheme, host or port): credentials stay behind.
    crossed: bool,
    /// At another host: only the headers marked to forward go along.
    left_host: bool,
}

/// Rebuilds the full URL of a request target (for the cookie jar and redirects).
fn full_url(buf: &mut String, origin: &Origin, target: &PathAndQuery) -> Option<Url> {
    buf.clear();
    buf.push_str(&origin.prefix);
    buf.push_str(target.as_str());
    Url::parse(buf).ok()
}

/// Writes the `cookie` header: the step's own cookies, then the jar's for this URL.
fn add_cookies(
    state: &mut VuState,
    out: &mut Vec<u8>,
    origin: &Origin,
    target: &PathAndQuery,
    own: Option<&str>,
) {
    let Some(url) = full_url(&mut state.url, origin, target) else {
        return;
    };
    let text = &mut state.text;
    text.clear();
    if let Some(own) = own {
        text.push_str(own);
    }
    for (name, value) in state.jar.get_request_values(&url) {
        if !text.is_empty() {
            text.push_str("; ");
        }
        text.push_str(name);
        text.push('=');
        text.push_str(value);
    }
    if !text.is_empty() && !text.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        push_header(out, "cookie", text.as_bytes());
    }
}

fn store_cookies(state: &mut VuState, origin: &Origin, target: &PathAndQuery) {
    let Some(url) = full_url(&mut state.url, origin, target) else {
        return;
    };
    let cookies: Vec<cookie::Cookie<'static>> = state
        .head
        .get_all("set-cookie")
        .filter_map(|v| std::str::from_utf8(v).ok())
        .filter_map(|s| cookie::Cookie::parse(s.to_owned()).ok())
        .collect();
    state.jar.store_response_cookies(cookies.into_iter(), &url);
}

/// Where a redirect response points, resolved against the request's URL.
fn redirect_target(
    state: &mut VuState,
    origin: &Arc<Origin>,
    target: &PathAndQuery,
) -> Option<(Arc<Origin>, PathAndQuery)> {
    let location = std::str::from_utf8(state.head.get("location")?)
        .ok()?
        .to_owned();
    let next = full_url(&mut state.url, origin, target)?
        .join(&location)
        .ok()?;
    let next_origin = if origin_matches(&next, origin) {
        origin.clone()
    } else {
        Arc::new(Origin::from_url(&next)?)
    };
    Some((next_origin, url_target(&next).ok()?))
}

fn origin_matches(url: &Url, o: &Origin) -> bool {
    (url.scheme() == "https") == o.https
        && (o.https || url.scheme() == "http")
        && url.port_or_known_default() == Some(o.port)
        && url.host_str() == Some(o.host.as_str())
}

/// The path and query of a parsed URL (already percent-encoded by the parser).
fn url_target(url: &Url) -> Result<PathAndQuery, ErrorKind> {
    let pq = &url[Position::BeforePath..Position::AfterQuery];
    let pq = if pq.is_empty() { "/" } else { pq };
    PathAndQuery::try_from(pq).map_err(|_| ErrorKind::Other)
}

fn strip_fragment(buf: &mut String) {
    if let Some(i) = buf.find('#') {
        buf.truncate(i);
    }
}

fn query_separator(buf: &str) -> char {
    if buf.contains('?') {
        '&'
    } else {
        '?'
    }
}

/// Appends `k=v`, both URL-encoded, after `sep` (`?` first, `&` after).
fn push_pair(buf: &mut String, sep: &mut char, k: &str, v: &str) {
    buf.push(*sep);
    *sep = '&';
    buf.extend(form_urlencoded::byte_serialize(k.as_bytes()));
    buf.push('=');
    buf.extend(form_urlencoded::byte_serialize(v.as_bytes()));
}

/// Parses a rendered path and query, percent-encoding first any byte a request
/// target may not hold raw (spaces, quotes, non-ASCII from substituted values).
fn path_and_query(buf: &mut String, scratch: &mut String) -> Result<PathAndQuery, ErrorKind> {
    if buf.is_empty() {
        buf.push('/');
    }
    let parsed = if buf.bytes().any(needs_escape) {
        scratch.clear();
        for &b in buf.as_bytes() {
            if needs_escape(b) {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                scratch.push('%');
                scratch.push(char::from(HEX[usize::from(b >> 4)]));
                scratch.push(char::from(HEX[usize::from(b & 15)]));
            } else {
                scratch.push(char::from(b));
            }
        }
        PathAndQuery::try_from(scratch.as_str())
    } else {
        PathAndQuery::try_from(buf.as_str())
    };
    parsed.map_err(|_| ErrorKind::Other)
}

fn needs_escape(b: u8) -> bool {
    b <= b' '
        || b >= 0x7f
        || matches!(
            b,
            b'"' | b'<' | b'>' | b'\\' | b'^' | b'`' | b'{' | b'|' | b'}'
        )
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// Appends `name: value\r\n`.
fn push_header(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

fn itoa_buf() -> [u8; 20] {
    [0; 20]
}

/// Formats `n` in decimal into `buf`, without allocating.
fn format_u64(buf: &mut [u8; 20], mut n: u64) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}
