//! HTTP/2 through hyper's client: over TLS negotiated by ALPN (`h2`), without TLS
//! with prior knowledge (h2c). A connection carries the streams of up to
//! `max_streams` VUs: VU `n` uses connection `n / max_streams` of its origin, as
//! h2load's clients and streams do. The
//! HTTP/1.1 path ([`super::conn`]) is not involved; a request is serialised by
//! the same code, then rebuilt as an HTTP/2 one for hyper — once per distinct
//! request: a VU keeps the last few it built, and reuses one while the
//! serialised bytes are the same.
//!
//! `version: auto` offers `h2` and `http/1.1` by ALPN and remembers per origin
//! what the server chose; plain-text origins stay on HTTP/1.1 then.

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2::{self as client, SendRequest};
use hyper_util::rt::{TokioExecutor, TokioIo};
use loadline_core::metrics::ErrorKind;

use super::conn::{self, Origin, Progress};
use super::spec::HttpVersion;
use super::VuState;

type Sender = SendRequest<Full<Bytes>>;

/// Requests a VU keeps built, at most.
const KEPT: usize = 8;

/// A VU's HTTP/2 side: the requests it built last.
#[derive(Debug, Default)]
pub(crate) struct H2Vu {
    built: Vec<Built>,
    /// The next of `built` to replace.
    next: usize,
}

/// A request rebuilt as HTTP/2, and the serialised bytes it came from.
#[derive(Debug)]
struct Built {
    raw: Vec<u8>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

impl Built {
    fn request(&self) -> Request<Full<Bytes>> {
        let mut req = Request::new(Full::new(self.body.clone()));
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.uri.clone();
        *req.headers_mut() = self.headers.clone();
        req
    }
}

/// The HTTP/2 request of `raw` (an HTTP/1.1 request as [`super::exec`]
/// serialises it), built again only when the VU has not built it lately.
fn request_of(
    h2: &mut H2Vu,
    raw: &[u8],
    origin: &Origin,
) -> Result<Request<Full<Bytes>>, ErrorKind> {
    if let Some(b) = h2.built.iter().find(|b| b.raw == raw) {
        return Ok(b.request());
    }
    let built = build(raw, origin)?;
    let out = built.request();
    if h2.built.len() < KEPT {
        h2.built.push(built);
    } else {
        h2.built[h2.next] = built;
        h2.next = (h2.next + 1) % KEPT;
    }
    Ok(out)
}

/// The HTTP/2 connections of one protocol, shared by its VUs, and what `auto`
/// learnt of each TLS origin.
#[derive(Debug, Default)]
pub(crate) struct H2Pool {
    /// Origin prefix → its connections, by number (VU index / max_streams).
    conns: Mutex<HashMap<String, Vec<Option<Sender>>>>,
    /// Origin prefix → the server chose h2 by ALPN.
    negotiated: Mutex<HashMap<String, bool>>,
}

/// How a request goes: on HTTP/2, or on the HTTP/1.1 path.
pub(crate) enum Route {
    H2,
    H1,
}

/// Which path a request to `origin` takes under `version`, as far as known
/// before connecting.
pub(crate) fn route(state: &VuState, origin: &Origin, version: HttpVersion) -> Route {
    match version {
        HttpVersion::Http1 => Route::H1,
        HttpVersion::Http2 => Route::H2,
        HttpVersion::Auto if !origin.https => Route::H1,
        HttpVersion::Auto => {
            let known = lock(&state.shared.h2.negotiated)
                .get(&origin.prefix)
                .copied();
            match known {
                Some(false) => Route::H1,
                _ => Route::H2,
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Sends `raw` (an HTTP/1.1 request as [`super::exec`] serialises it) to
/// `origin` over HTTP/2 and reads the response like the HTTP/1.1 path: its head
/// into `state.head`, at most `keep` body bytes into `state.body`. `Ok(false)`:
/// `auto` found that the server speaks only HTTP/1.1 (the request was not sent).
pub(crate) async fn exchange(
    state: &mut VuState,
    origin: &Origin,
    raw: &[u8],
    version: HttpVersion,
    keep: usize,
    progress: &mut Progress,
) -> Result<bool, ErrorKind> {
    let h2 = state.h2.get_or_insert_with(Default::default);
    let request = request_of(h2, raw, origin)?;
    // The connection is looked up in place; opening one (TCP, TLS, the
    // HTTP/2 preface) is boxed, so that its large future is not part of, and
    // copied with, every request's.
    let sender = match open_sender(state, origin) {
        Some(s) => Some(s),
        None => Box::pin(sender(state, origin, version)).await?,
    };
    let Some(mut sender) = sender else {
        return Ok(false);
    };
    sender.ready().await.map_err(|e| failure(&e))?;
    progress.sent = true;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| failure(&e))?;
    let (parts, mut body) = response.into_parts();
    state.head.set_h2(parts.status.as_u16(), &parts.headers);
    progress.received = head_size(&parts.headers);
    state.body.clear();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| failure(&e))?;
        if let Ok(data) = frame.into_data() {
            progress.received += data.len() as u64;
            let room = keep.saturating_sub(state.body.len());
            state.body.extend_from_slice(&data[..data.len().min(room)]);
        }
    }
    Ok(true)
}

/// The number of the connection the VU shares (VU index / max_streams).
fn connection_number(state: &VuState) -> usize {
    state.index / state.shared.settings.max_streams.max(1)
}

/// The VU's sender to `origin` when its shared connection is open.
fn open_sender(state: &VuState, origin: &Origin) -> Option<Sender> {
    let conns = lock(&state.shared.h2.conns);
    let s = conns
        .get(origin.prefix.as_str())?
        .get(connection_number(state))?
        .as_ref()?;
    (!s.is_closed()).then(|| s.clone())
}

/// Opens the VU's shared connection to `origin` (another VU of it may have
/// just done so). `None`: `auto` and the server chose HTTP/1.1 — the TLS
/// connection then goes to the VU's HTTP/1.1 pool.
async fn sender(
    state: &mut VuState,
    origin: &Origin,
    version: HttpVersion,
) -> Result<Option<Sender>, ErrorKind> {
    if let Some(s) = open_sender(state, origin) {
        return Ok(Some(s));
    }
    let sender = match conn::connect_for(state, origin, version).await? {
        conn::Opened::Tcp(tcp) => handshake(tcp).await?,
        conn::Opened::H2Tls(tls) => {
            lock(&state.shared.h2.negotiated).insert(origin.prefix.clone(), true);
            handshake(*tls).await?
        }
        conn::Opened::H1Tls(tls) => {
            lock(&state.shared.h2.negotiated).insert(origin.prefix.clone(), false);
            state.pool.put(origin, conn::Conn::Tls(tls));
            return Ok(None);
        }
    };
    let number = connection_number(state);
    let mut conns = lock(&state.shared.h2.conns);
    let slots = conns.entry(origin.prefix.clone()).or_default();
    if slots.len() <= number {
        slots.resize(number + 1, None);
    }
    slots[number] = Some(sender.clone());
    Ok(Some(sender))
}

/// The HTTP/2 preface and settings on a fresh connection; the connection is
/// then driven by a task of its own until every sender is gone.
async fn handshake<T>(io: T) -> Result<Sender, ErrorKind>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = client::handshake(TokioExecutor::new(), TokioIo::new(io))
        .await
        .map_err(|e| failure(&e))?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, "HTTP/2 connection closed");
        }
    });
    Ok(sender)
}

/// Rebuilds the serialised HTTP/1.1 request as an HTTP/2 one: the same method,
/// target, headers and body; `host` becomes the `:authority`, and headers that
/// HTTP/2 forbids are left out.
fn build(raw: &[u8], origin: &Origin) -> Result<Built, ErrorKind> {
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut parsed = httparse::Request::new(&mut headers);
    let len = match parsed.parse(raw) {
        Ok(httparse::Status::Complete(len)) => len,
        _ => return Err(ErrorKind::Other),
    };
    let method = Method::from_bytes(parsed.method.unwrap_or("GET").as_bytes())
        .map_err(|_| ErrorKind::Other)?;
    let uri: Uri = format!("{}{}", origin.prefix, parsed.path.unwrap_or("/"))
        .parse()
        .map_err(|_| ErrorKind::Other)?;
    let mut map = HeaderMap::with_capacity(parsed.headers.len());
    for h in parsed.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| ErrorKind::Other)?;
        if is_connection_specific(&name) {
            continue;
        }
        let value = HeaderValue::from_bytes(h.value).map_err(|_| ErrorKind::Other)?;
        map.append(name, value);
    }
    Ok(Built {
        raw: raw.to_vec(),
        method,
        uri,
        headers: map,
        body: Bytes::copy_from_slice(&raw[len..]),
    })
}

fn is_connection_specific(name: &HeaderName) -> bool {
    use http::header::{CONNECTION, HOST, TE, TRANSFER_ENCODING, UPGRADE};
    *name == HOST
        || *name == CONNECTION
        || *name == TRANSFER_ENCODING
        || *name == UPGRADE
        || *name == TE
        || name.as_str() == "keep-alive"
        || name.as_str() == "proxy-connection"
}

/// About the bytes of a response head (HPACK makes the real figure smaller).
fn head_size(headers: &http::HeaderMap) -> u64 {
    headers
        .iter()
        .map(|(n, v)| (n.as_str().len() + v.len() + 4) as u64)
        .sum::<u64>()
        + 12
}

/// Sorts a hyper error into the fixed classes by its kind and source types.
fn failure(e: &hyper::Error) -> ErrorKind {
    if e.is_timeout() {
        return ErrorKind::Timeout;
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return conn::io_failure(io);
        }
        if s.is::<rustls::Error>() {
            return ErrorKind::Tls;
        }
        source = s.source();
    }
    if e.is_closed() || e.is_canceled() || e.is_incomplete_message() {
        return ErrorKind::Reset;
    }
    ErrorKind::Protocol
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_serialised_request_becomes_an_http2_one() {
        let origin = Origin::from_url(
            &url::Url::parse("https://example.test:8443/x").unwrap_or_else(|e| panic!("{e}")),
        )
        .unwrap_or_else(|| panic!("origin"));
        let raw = b"POST /orders?x=1 HTTP/1.1\r\nhost: example.test:8443\r\nconnection: keep-alive\r\ncontent-type: application/json\r\ncontent-length: 2\r\nx-key: k\r\n\r\n{}";
        let mut vu = H2Vu::default();
        let req = request_of(&mut vu, raw, &origin).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(req.method(), Method::POST);
        assert_eq!(
            req.uri().to_string(),
            "https://example.test:8443/orders?x=1"
        );
        assert!(req.headers().get("host").is_none());
        assert!(req.headers().get("connection").is_none());
        assert_eq!(req.headers()["x-key"], "k");
        assert_eq!(req.headers()["content-type"], "application/json");
        assert_eq!(hyper::body::Body::size_hint(req.body()).exact(), Some(2));
        // Built once, then reused while the bytes are the same.
        let again = request_of(&mut vu, raw, &origin).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(again.headers(), req.headers());
        assert_eq!(again.uri(), req.uri());
        assert_eq!(vu.built.len(), 1);
        for n in 0..KEPT + 2 {
            let other = format!("GET /{n} HTTP/1.1\r\nhost: example.test\r\n\r\n");
            let _ = request_of(&mut vu, other.as_bytes(), &origin);
        }
        assert_eq!(vu.built.len(), KEPT);
    }
}
