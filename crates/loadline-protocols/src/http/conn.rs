//! Connections: where a request goes ([`Origin`]), the VU's kept-alive connections
//! ([`Pool`]), opening one (DNS, TCP, TLS, the HTTP/1.1 handshake), running one
//! exchange on it, and sorting failures into the fixed [`ErrorKind`] classes by
//! their types (never by their messages).

use std::error::Error as StdError;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::response::Parts;
use http::{HeaderValue, Request};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use loadline_core::metrics::ErrorKind;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use url::{Host, Url};

use super::VuState;

/// The sending half of one HTTP/1.1 connection.
pub(crate) type Sender = SendRequest<Full<Bytes>>;

/// At most this many origins keep a connection per VU; past it the oldest goes.
const MAX_ORIGINS: usize = 64;

/// A connection idle longer than this may have been closed by the server unseen:
/// the runtime gets one chance to notice before it is used again. A VU that
/// loops without pause never waits for it.
const NOTICE_CLOSE_AFTER: Duration = Duration::from_millis(1);

/// Scheme, host and port, plus what requests to it need, computed once.
#[derive(Debug)]
pub(crate) struct Origin {
    pub(crate) https: bool,
    /// The host as written in a URL (IPv6 in brackets).
    pub(crate) host: String,
    /// The address, when the host is an IP literal (no DNS lookup then).
    pub(crate) ip: Option<IpAddr>,
    pub(crate) port: u16,
    /// The `host` header: host, and the port when it is not the scheme's default.
    pub(crate) authority: HeaderValue,
    /// `scheme://authority`, to rebuild a full URL for cookies and redirects.
    pub(crate) prefix: String,
    /// The TLS server name (SNI), for https.
    pub(crate) server_name: Option<ServerName<'static>>,
}

impl Origin {
    /// The origin of an http or https URL; `None` for any other URL.
    pub(crate) fn from_url(url: &Url) -> Option<Self> {
        let https = match url.scheme() {
            "http" => false,
            "https" => true,
            _ => return None,
        };
        let (host, ip) = match url.host()? {
            Host::Domain(d) => (d.to_string(), None),
            Host::Ipv4(a) => (a.to_string(), Some(IpAddr::V4(a))),
            Host::Ipv6(a) => (format!("[{a}]"), Some(IpAddr::V6(a))),
        };
        let port = url.port_or_known_default()?;
        let authority = match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.clone(),
        };
        let prefix = format!("{}://{authority}", url.scheme());
        let server_name = if https {
            match ip {
                Some(ip) => Some(ServerName::IpAddress(ip.into())),
                None => ServerName::try_from(host.clone()).ok(),
            }
        } else {
            None
        };
        Some(Self {
            https,
            authority: HeaderValue::from_str(&authority).ok()?,
            host,
            ip,
            port,
            prefix,
            server_name,
        })
    }

    /// Whether both are the same scheme, host and port.
    pub(crate) fn same(&self, o: &Origin) -> bool {
        self.https == o.https && self.port == o.port && self.host == o.host
    }
}

/// A VU's kept-alive connections, one per origin. A connection is taken out while
/// a request runs on it and put back only after a complete response, so a
/// failed or cancelled exchange simply drops it.
#[derive(Default)]
pub(crate) struct Pool {
    entries: Vec<Entry>,
}

struct Entry {
    https: bool,
    host: Box<str>,
    port: u16,
    sender: Option<Sender>,
    idle_since: Instant,
}

impl Entry {
    fn is(&self, o: &Origin) -> bool {
        self.https == o.https && self.port == o.port && *self.host == *o.host
    }
}

impl Pool {
    fn take(&mut self, o: &Origin) -> Option<(Sender, Instant)> {
        let e = self.entries.iter_mut().find(|e| e.is(o))?;
        Some((e.sender.take()?, e.idle_since))
    }

    fn put(&mut self, o: &Origin, sender: Sender) {
        let now = Instant::now();
        if let Some(e) = self.entries.iter_mut().find(|e| e.is(o)) {
            e.sender = Some(sender);
            e.idle_since = now;
            return;
        }
        if self.entries.len() >= MAX_ORIGINS {
            self.entries.remove(0);
        }
        self.entries.push(Entry {
            https: o.https,
            host: o.host.as_str().into(),
            port: o.port,
            sender: Some(sender),
            idle_since: now,
        });
    }
}

/// What an exchange got through, also when it failed or was cut off by the timeout.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    /// The request was handed to a connection.
    pub(crate) sent: bool,
    /// Response bytes: the head (approximately) and all body bytes.
    pub(crate) received: u64,
}

/// Sends `req` to `origin` on the VU's connection (opened when there is none, or
/// reopened once when a kept-alive one turns out closed before the request went
/// out), and reads the whole response. Keeps at most `keep` body bytes in
/// `state.body`.
pub(crate) async fn exchange(
    state: &mut VuState,
    origin: &Origin,
    req: Request<Full<Bytes>>,
    keep: usize,
    progress: &mut Progress,
) -> Result<Parts, ErrorKind> {
    let mut reused = None;
    if let Some((mut s, idle_since)) = state.pool.take(origin) {
        if idle_since.elapsed() > NOTICE_CLOSE_AFTER {
            // Let the runtime poll its I/O driver, so that the connection's task
            // sees a close that arrived while the connection sat idle, before
            // the request is written into a dead socket.
            tokio::task::yield_now().await;
        }
        if !s.is_closed() && s.ready().await.is_ok() {
            reused = Some(s);
        }
    }
    let was_reused = reused.is_some();
    let mut sender = match reused {
        Some(s) => s,
        None => connect(state, origin).await?,
    };
    progress.sent = true;
    let response = match sender.try_send_request(req).await {
        Ok(r) => r,
        Err(mut e) => {
            let unsent = e.take_message();
            if unsent.is_some() {
                progress.sent = false;
            }
            match unsent {
                // Never written: the server closed the idle connection. Once more
                // on a fresh one; nothing is counted twice.
                Some(req) if was_reused => {
                    sender = connect(state, origin).await?;
                    progress.sent = true;
                    sender
                        .try_send_request(req)
                        .await
                        .map_err(|e| classify(e.error()))?
                }
                _ => return Err(classify(e.error())),
            }
        }
    };
    let (parts, mut body) = response.into_parts();
    progress.received = head_len(&parts);
    state.body.clear();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| classify(&e))?;
        if let Ok(data) = frame.into_data() {
            progress.received += data.len() as u64;
            let room = keep.saturating_sub(state.body.len());
            if room > 0 {
                state.body.extend_from_slice(&data[..room.min(data.len())]);
            }
        }
    }
    if !sender.is_closed() {
        state.pool.put(origin, sender);
    }
    Ok(parts)
}

/// The approximate size of a response head: status line, headers, blank line.
fn head_len(parts: &Parts) -> u64 {
    let reason = parts.status.canonical_reason().map_or(0, str::len);
    let headers: usize = parts
        .headers
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum();
    (15 + reason + headers + 2) as u64
}

/// Opens a connection: DNS (unless the host is an IP), TCP with no delay, TLS for
/// https, the HTTP/1.1 handshake; the connection's driver runs on its own task
/// and ends when the VU drops the sender.
async fn connect(state: &VuState, origin: &Origin) -> Result<Sender, ErrorKind> {
    let tcp = match origin.ip {
        Some(ip) => tcp_connect(SocketAddr::new(ip, origin.port)).await?,
        None => {
            let addrs = tokio::net::lookup_host((origin.host.as_str(), origin.port))
                .await
                .map_err(|_| ErrorKind::Dns)?;
            let mut last = ErrorKind::Dns;
            let mut found = None;
            for addr in addrs {
                match tcp_connect(addr).await {
                    Ok(s) => {
                        found = Some(s);
                        break;
                    }
                    Err(kind) => last = kind,
                }
            }
            found.ok_or(last)?
        }
    };
    if !origin.https {
        return handshake(tcp).await;
    }
    let tls = state.shared.tls.as_ref().ok_or(ErrorKind::Tls)?;
    let connector = if state.shared.settings.insecure {
        &tls.insecure
    } else {
        &tls.verified
    };
    let name = origin.server_name.clone().ok_or(ErrorKind::Tls)?;
    let stream = connector
        .connect(name, tcp)
        .await
        .map_err(|e| tls_failure(&e))?;
    handshake(stream).await
}

async fn tcp_connect(addr: SocketAddr) -> Result<TcpStream, ErrorKind> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| match e.kind() {
        io::ErrorKind::TimedOut => ErrorKind::Timeout,
        _ => ErrorKind::Connect,
    })?;
    // Only a latency tweak: a socket that refuses it still works.
    let _ = tcp.set_nodelay(true);
    Ok(tcp)
}

async fn handshake<T>(io: T) -> Result<Sender, ErrorKind>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| classify(&e))?;
    tokio::spawn(async move {
        // Its errors reach the request that was running; nothing else to do.
        let _ = conn.await;
    });
    Ok(sender)
}

/// A failed TLS handshake: rustls' own errors and anything unexpected are `Tls`;
/// a reset or a timeout of the socket under it keeps its own class.
fn tls_failure(e: &io::Error) -> ErrorKind {
    if e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()) {
        return ErrorKind::Tls;
    }
    match e.kind() {
        io::ErrorKind::TimedOut => ErrorKind::Timeout,
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => ErrorKind::Reset,
        _ => ErrorKind::Tls,
    }
}

/// Classifies a hyper error by walking its source chain: hyper's own flags, TLS
/// errors and I/O error kinds.
pub(crate) fn classify(top: &hyper::Error) -> ErrorKind {
    let mut fallback = None;
    let mut cur: Option<&(dyn StdError + 'static)> = Some(top);
    while let Some(e) = cur {
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            if h.is_parse() {
                return ErrorKind::Protocol;
            }
            if h.is_timeout() {
                return ErrorKind::Timeout;
            }
            let cut_off = h.is_incomplete_message()
                || h.is_canceled()
                || h.is_closed()
                || h.is_body_write_aborted();
            if fallback.is_none() && cut_off {
                fallback = Some(ErrorKind::Reset);
            }
        } else if e.is::<rustls::Error>() {
            return ErrorKind::Tls;
        } else if let Some(io) = e.downcast_ref::<io::Error>() {
            // An io::Error's `source` skips its inner error, so look at it here.
            if io
                .get_ref()
                .is_some_and(|inner| inner.is::<rustls::Error>())
            {
                return ErrorKind::Tls;
            }
            if let Some(kind) = io_kind(io.kind()) {
                return kind;
            }
        }
        cur = e.source();
    }
    fallback.unwrap_or(ErrorKind::Other)
}

fn io_kind(kind: io::ErrorKind) -> Option<ErrorKind> {
    use io::ErrorKind as K;
    Some(match kind {
        K::ConnectionRefused
        | K::NetworkUnreachable
        | K::HostUnreachable
        | K::AddrNotAvailable
        | K::NotConnected => ErrorKind::Connect,
        K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof => {
            ErrorKind::Reset
        }
        K::TimedOut => ErrorKind::Timeout,
        K::InvalidData => ErrorKind::Protocol,
        _ => return None,
    })
}
