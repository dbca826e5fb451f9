//! HTTP/1.1 over TCP or rustls TLS, driven inline by each VU's task (the response
//! head parsed by httparse). Each VU owns its connections (one per origin), like a
//! real user's browser.
//!
//! [`HttpProtocol`] holds what a plan's HTTP steps share (settings, the TLS
//! configurations, built once); each VU gets a state with its connections, its
//! cookie jar and reused buffers; [`build_step`] turns a compiled
//! [`HttpStepSpec`] into the executor that sends the request, follows redirects,
//! runs the checks and captures, and reports one sample per request.

mod build;
pub mod cache;
mod conn;
pub mod doc;
mod dump;
mod exec;
mod h2;
mod spec;
#[cfg(test)]
mod tests;
mod tls;
pub mod wire;

use std::any::Any;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use cookie_store::CookieStore;
use loadline_core::protocol::{Protocol, StepExec};

pub use build::{Http, REQUESTS_SUFFIX};
pub use spec::*;

use conn::{Origin, Pool};

/// Response body capacity a VU keeps between requests; a larger buffer is shrunk
/// back so that 10,000 VUs do not each hold their largest body ever seen.
const KEPT_BODY_CAPACITY: usize = 64 * 1024;

/// The HTTP protocol of one plan: shared TLS configuration and settings.
#[derive(Debug)]
pub struct HttpProtocol {
    pub settings: HttpSettings,
    shared: Arc<Shared>,
}

/// What every VU state of one protocol points to.
#[derive(Debug)]
struct Shared {
    settings: HttpSettings,
    /// `None` only if rustls rejected its own default configuration; https
    /// requests then fail with a TLS error.
    tls: Option<tls::TlsConnectors>,
    /// Redirects to another host that were not followed (`redirects: same_host`).
    off_host: AtomicU64,
    /// The HTTP/2 connections, shared by VUs.
    h2: h2::H2Pool,
    /// The index the next VU state gets (which HTTP/2 connection it uses).
    next_vu: std::sync::atomic::AtomicUsize,
}

impl HttpProtocol {
    pub fn new(settings: HttpSettings) -> Arc<Self> {
        let tls = match tls::connectors() {
            Ok(t) => Some(t),
            Err(error) => {
                tracing::error!(%error, "TLS configuration failed; https requests will fail");
                None
            }
        };
        Arc::new(Self {
            shared: Arc::new(Shared {
                settings: settings.clone(),
                tls,
                off_host: AtomicU64::new(0),
                h2: h2::H2Pool::default(),
                next_vu: std::sync::atomic::AtomicUsize::new(0),
            }),
            settings,
        })
    }
}

impl Protocol for HttpProtocol {
    fn name(&self) -> &'static str {
        "http"
    }

    fn new_vu_state(&self) -> Box<dyn Any + Send> {
        Box::new(VuState {
            index: self.shared.next_vu.fetch_add(1, Ordering::Relaxed),
            shared: self.shared.clone(),
            pool: Pool::default(),
            jar: CookieStore::default(),
            last_origin: None,
            url: String::new(),
            text: String::new(),
            value: String::new(),
            body: Vec::new(),
            read: Vec::new(),
            head: wire::Head::default(),
            req: Vec::new(),
            latency: std::time::Duration::ZERO,
            h2: None,
        })
    }

    fn notes(&self) -> Vec<String> {
        let off_host = self.shared.off_host.swap(0, Ordering::Relaxed);
        if off_host == 0 {
            return Vec::new();
        }
        vec![format!(
            "{off_host} redirects to another host were not followed (`redirects: same_host`, the default): their 3xx responses ended the requests; set `defaults: {{ redirects: any }}` to follow them"
        )]
    }

    fn start_iteration(&self, state: &mut (dyn Any + Send)) {
        if let Some(s) = state.downcast_mut::<VuState>() {
            if s.shared.settings.cookies {
                s.jar.clear();
            }
        }
    }
}

/// One VU's HTTP state (opaque: its connections, cookie jar and buffers).
pub struct VuState {
    /// Which VU of the protocol this is, from 0.
    index: usize,
    shared: Arc<Shared>,
    pool: Pool,
    jar: CookieStore,
    /// The origin of the last absolute URL, reused while the next one has the same.
    last_origin: Option<Arc<Origin>>,
    /// Scratch: the request target, then full URLs for cookies and redirects.
    url: String,
    /// Scratch: rendered header values and bodies.
    text: String,
    /// Scratch: rendered form and query values.
    value: String,
    /// The kept part of the last response body.
    body: Vec<u8>,
    /// The read buffer of the current exchange.
    read: Vec<u8>,
    /// The head of the last response.
    head: wire::Head,
    /// The serialised request being sent.
    req: Vec<u8>,
    /// The latency of the last response.
    latency: std::time::Duration,
    /// The VU's HTTP/2 side, made on its first HTTP/2 request.
    h2: Option<Box<h2::H2Vu>>,
}

impl VuState {
    /// Whether the cookie jar holds anything (so the hot path can skip it).
    fn jar_in_use(&self) -> bool {
        self.shared.settings.cookies && self.jar.iter_any().next().is_some()
    }

    fn release_body(&mut self) {
        self.body.clear();
        if self.body.capacity() > KEPT_BODY_CAPACITY {
            self.body.shrink_to(KEPT_BODY_CAPACITY);
        }
    }
}

/// The spec an HTTP step's executor was built from, for tests and tools that
/// inspect a plan; `None` for any other step.
pub fn spec_of(step: &dyn StepExec) -> Option<&HttpStepSpec> {
    let any: &dyn Any = step;
    any.downcast_ref::<exec::HttpStep>()
        .map(exec::HttpStep::spec)
}

/// The settings of a plan's HTTP protocol; `None` for any other protocol.
pub fn settings_of(protocol: &dyn Protocol) -> Option<&HttpSettings> {
    let any: &dyn Any = protocol;
    any.downcast_ref::<HttpProtocol>().map(|p| &p.settings)
}

/// Builds the executor of one HTTP step.
pub fn build_step(spec: HttpStepSpec) -> Arc<dyn StepExec> {
    Arc::new(exec::HttpStep::new(spec))
}
