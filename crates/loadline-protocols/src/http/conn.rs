//! Connections: where a request goes ([`Origin`]), the VU's kept-alive connections
//! ([`Pool`]), opening one (DNS, TCP, TLS), running one HTTP/1.1 exchange on it,
//! and sorting failures into the fixed [`ErrorKind`] classes by their types
//! (never by their messages).
//!
//! The exchange is driven inline by the VU's own task: the request is written in
//! one piece, the response read into the VU's buffer and parsed in place
//! ([`super::wire`]). No connection task, no channel, no per-response header map:
//! this is the hot path of every HTTP request.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use http::HeaderValue;
use loadline_core::metrics::ErrorKind;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use url::{Host, Url};

use super::dump;
use super::spec::HttpVersion;
use super::wire::{Chunked, Framing, Head};
use super::VuState;
use crate::registry::Dump;

/// At most this many origins keep a connection per VU; past it the oldest goes.
const MAX_ORIGINS: usize = 64;

/// A connection idle longer than this is checked (without blocking) for a close
/// by the server before it is used again. A VU that loops without pause skips it.
const NOTICE_CLOSE_AFTER: Duration = Duration::from_millis(1);

/// Read buffer capacity of a VU: pages are only touched as far as data arrives.
const READ_CAPACITY: usize = 16 * 1024;

/// An open connection: plain TCP or TLS over TCP.
pub(crate) enum Conn {
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Conn {
    async fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Conn::Tcp(s) => s.write_all(buf).await,
            Conn::Tls(s) => {
                s.write_all(buf).await?;
                s.flush().await
            }
        }
    }

    /// Reads into the spare capacity of `buf`, growing it first when full.
    async fn read_into(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        if buf.capacity() == buf.len() {
            buf.reserve(READ_CAPACITY);
        }
        match self {
            Conn::Tcp(s) => s.read_buf(buf).await,
            Conn::Tls(s) => s.read_buf(buf).await,
        }
    }

    /// False when the server closed the connection (or sent something unasked)
    /// while it sat idle; never blocks.
    fn looks_alive(&self) -> bool {
        let tcp = match self {
            Conn::Tcp(s) => s,
            Conn::Tls(s) => s.get_ref().0,
        };
        let mut probe = [0u8; 1];
        matches!(tcp.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }
}

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
    conn: Option<Conn>,
    idle_since: Instant,
}

impl Entry {
    fn is(&self, o: &Origin) -> bool {
        self.https == o.https && self.port == o.port && *self.host == *o.host
    }
}

impl Pool {
    fn take(&mut self, o: &Origin) -> Option<(Conn, Instant)> {
        let e = self.entries.iter_mut().find(|e| e.is(o))?;
        Some((e.conn.take()?, e.idle_since))
    }

    pub(crate) fn put(&mut self, o: &Origin, conn: Conn) {
        let now = Instant::now();
        if let Some(e) = self.entries.iter_mut().find(|e| e.is(o)) {
            e.conn = Some(conn);
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
            conn: Some(conn),
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

/// How a round trip failed: the error class, and whether any response byte came.
struct Failure {
    kind: ErrorKind,
    answered: bool,
}

/// [`exchange`], printing the exchange on stderr as `--http-debug` asks.
pub(crate) async fn exchange_dumped(
    state: &mut VuState,
    origin: &Origin,
    req: &[u8],
    head_request: bool,
    keep: usize,
    progress: &mut Progress,
) -> Result<(), ErrorKind> {
    let dump = state.shared.settings.dump;
    if dump == Dump::Off {
        return exchange(state, origin, req, head_request, keep, progress).await;
    }
    // A step that keeps no body for its checks keeps some to be printed.
    let keep = if dump == Dump::Full && keep == 0 {
        dump::BODY_BOUND
    } else {
        keep
    };
    let result = exchange(state, origin, req, head_request, keep, progress).await;
    dump::print(dump, origin, req, result, &state.head, &state.body);
    result
}

/// Sends the serialised request `req` to `origin` on the VU's connection (opened
/// when there is none) and reads the whole response: its head into `state.head`,
/// at most `keep` body bytes into `state.body`. A kept-alive connection that the
/// server closed before answering (it closed while idle) is replaced once and the
/// request sent again: the server never saw the first, so nothing counts twice.
pub(crate) async fn exchange(
    state: &mut VuState,
    origin: &Origin,
    req: &[u8],
    head_request: bool,
    keep: usize,
    progress: &mut Progress,
) -> Result<(), ErrorKind> {
    let reused = match state.pool.take(origin) {
        Some((conn, idle_since)) => {
            let alive = idle_since.elapsed() <= NOTICE_CLOSE_AFTER || conn.looks_alive();
            if alive {
                tracing::debug!(host = %origin.host, port = origin.port, "connection reused");
            } else {
                tracing::debug!(host = %origin.host, port = origin.port, "connection closed by the server while idle");
            }
            alive.then_some(conn)
        }
        None => None,
    };
    let was_reused = reused.is_some();
    let mut conn = match reused {
        Some(c) => c,
        None => connect(state, origin).await?,
    };
    let VuState {
        read, head, body, ..
    } = state;
    progress.sent = true;
    let mut result = round_trip(
        &mut conn,
        read,
        req,
        head_request,
        keep,
        head,
        body,
        progress,
    )
    .await;
    if let Err(Failure {
        kind: ErrorKind::Reset,
        answered: false,
    }) = result
    {
        if was_reused {
            tracing::debug!(host = %origin.host, port = origin.port, "kept-alive connection closed before answering; sending again on a new one");
            progress.received = 0;
            conn = connect(state, origin).await?;
            let VuState {
                read, head, body, ..
            } = state;
            result = round_trip(
                &mut conn,
                read,
                req,
                head_request,
                keep,
                head,
                body,
                progress,
            )
            .await;
        }
    }
    match result {
        Ok(true) => {
            state.pool.put(origin, conn);
            Ok(())
        }
        Ok(false) => {
            tracing::debug!(host = %origin.host, port = origin.port, "connection closed: the response does not let it be reused");
            Ok(())
        }
        Err(f) => {
            tracing::debug!(host = %origin.host, port = origin.port, error = f.kind.as_str(), "connection closed after a failed exchange");
            Err(f.kind)
        }
    }
}

/// One request and its response on `conn`. `Ok(reusable)`.
#[allow(clippy::too_many_arguments)]
async fn round_trip(
    conn: &mut Conn,
    read: &mut Vec<u8>,
    req: &[u8],
    head_request: bool,
    keep: usize,
    head: &mut Head,
    body: &mut Vec<u8>,
    progress: &mut Progress,
) -> Result<bool, Failure> {
    let unanswered = |kind| Failure {
        kind,
        answered: false,
    };
    let answered = |kind| Failure {
        kind,
        answered: true,
    };
    conn.write_all(req)
        .await
        .map_err(|e| unanswered(io_failure(&e)))?;
    read.clear();
    body.clear();
    // The head, skipping interim (1xx) responses.
    let head_len = loop {
        if !read.is_empty() {
            match head.parse(read) {
                Ok(Some(n)) if (100..200).contains(&head.status) && head.status != 101 => {
                    read.drain(..n);
                    continue;
                }
                Ok(Some(n)) => break n,
                Ok(None) => {}
                Err(kind) => return Err(answered(kind)),
            }
        }
        let got_any = !read.is_empty() || progress.received > 0;
        let n = conn.read_into(read).await.map_err(|e| Failure {
            kind: io_failure(&e),
            answered: got_any,
        })?;
        if n == 0 {
            return Err(Failure {
                kind: ErrorKind::Reset,
                answered: got_any,
            });
        }
        progress.received += n as u64;
    };
    let mut sink = |data: &[u8]| {
        let room = keep.saturating_sub(body.len());
        if room > 0 {
            body.extend_from_slice(&data[..room.min(data.len())]);
        }
    };
    let framing = head.framing(head_request).map_err(answered)?;
    let mut clean = true;
    match framing {
        Framing::Length(total) => {
            let mut left = total;
            let mut start = head_len;
            loop {
                let avail = (read.len() - start) as u64;
                let take = avail.min(left) as usize;
                sink(&read[start..start + take]);
                left -= take as u64;
                if avail > take as u64 {
                    // Bytes past the response: the connection is out of step.
                    clean = false;
                }
                if left == 0 {
                    break;
                }
                read.clear();
                start = 0;
                let n = conn
                    .read_into(read)
                    .await
                    .map_err(|e| answered(io_failure(&e)))?;
                if n == 0 {
                    return Err(answered(ErrorKind::Reset));
                }
                progress.received += n as u64;
            }
        }
        Framing::Chunked => {
            let mut dec = Chunked::default();
            let mut start = head_len;
            loop {
                let used = dec.feed(&read[start..], &mut sink).map_err(answered)?;
                if dec.done() {
                    clean = start + used == read.len();
                    break;
                }
                read.clear();
                start = 0;
                let n = conn
                    .read_into(read)
                    .await
                    .map_err(|e| answered(io_failure(&e)))?;
                if n == 0 {
                    return Err(answered(ErrorKind::Reset));
                }
                progress.received += n as u64;
            }
        }
        Framing::UntilClose => {
            clean = false;
            sink(&read[head_len..]);
            loop {
                read.clear();
                match conn.read_into(read).await {
                    Ok(0) => break,
                    Ok(n) => {
                        progress.received += n as u64;
                        sink(read);
                    }
                    Err(e) => return Err(answered(io_failure(&e))),
                }
            }
        }
    }
    if read.capacity() > 4 * READ_CAPACITY {
        read.clear();
        read.shrink_to(READ_CAPACITY);
    }
    Ok(clean && head.keep_alive())
}

/// A connection opened for HTTP/2 (or `auto`): plain TCP (h2c), TLS where the
/// server chose `h2`, or TLS where it chose HTTP/1.1 (`auto` only).
pub(crate) enum Opened {
    Tcp(TcpStream),
    H2Tls(Box<TlsStream<TcpStream>>),
    H1Tls(Box<TlsStream<TcpStream>>),
}

/// Opens a connection offering `version` by ALPN (for https).
pub(crate) async fn connect_for(
    state: &VuState,
    origin: &Origin,
    version: HttpVersion,
) -> Result<Opened, ErrorKind> {
    let tcp = tcp_to(origin).await?;
    if !origin.https {
        return Ok(Opened::Tcp(tcp));
    }
    let tls = state.shared.tls.as_ref().ok_or(ErrorKind::Tls)?;
    let insecure = state.shared.settings.insecure;
    let connector = match (version, insecure) {
        (HttpVersion::Http2, false) => &tls.h2_verified,
        (HttpVersion::Http2, true) => &tls.h2_insecure,
        (_, false) => &tls.auto_verified,
        (_, true) => &tls.auto_insecure,
    };
    let name = origin.server_name.clone().ok_or(ErrorKind::Tls)?;
    let stream = connector
        .connect(name, tcp)
        .await
        .map_err(|e| tls_failure(&e))?;
    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
    match (h2, version) {
        (true, _) => Ok(Opened::H2Tls(Box::new(stream))),
        // Asked for HTTP/2 only, and the server does not speak it.
        (false, HttpVersion::Http2) => Err(ErrorKind::Protocol),
        (false, _) => Ok(Opened::H1Tls(Box::new(stream))),
    }
}

/// DNS (unless the host is an IP), then TCP with no delay.
async fn tcp_to(origin: &Origin) -> Result<TcpStream, ErrorKind> {
    Ok(match origin.ip {
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
    })
}

/// Opens a connection: DNS (unless the host is an IP), TCP with no delay, TLS for
/// https.
async fn connect(state: &VuState, origin: &Origin) -> Result<Conn, ErrorKind> {
    let began = Instant::now();
    let conn = open(state, origin).await;
    match &conn {
        Ok(Conn::Tcp(tcp)) => tracing::debug!(
            host = %origin.host,
            port = origin.port,
            peer = ?tcp.peer_addr().ok(),
            took_us = began.elapsed().as_micros() as u64,
            "connected"
        ),
        Ok(Conn::Tls(tls)) => {
            let (tcp, session) = tls.get_ref();
            tracing::debug!(
                host = %origin.host,
                port = origin.port,
                peer = ?tcp.peer_addr().ok(),
                tls = ?session.protocol_version(),
                cipher = ?session.negotiated_cipher_suite().map(|c| c.suite()),
                alpn = ?session.alpn_protocol().map(String::from_utf8_lossy),
                took_us = began.elapsed().as_micros() as u64,
                "connected with TLS"
            );
        }
        Err(kind) => tracing::debug!(
            host = %origin.host,
            port = origin.port,
            error = kind.as_str(),
            "connection failed"
        ),
    }
    conn
}

/// Opens the connection of [`connect`].
async fn open(state: &VuState, origin: &Origin) -> Result<Conn, ErrorKind> {
    let tcp = tcp_to(origin).await?;
    if !origin.https {
        return Ok(Conn::Tcp(tcp));
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
    Ok(Conn::Tls(Box::new(stream)))
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

/// Classifies an I/O error of an exchange: TLS errors inside it, then its kind.
pub(crate) fn io_failure(e: &io::Error) -> ErrorKind {
    if e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()) {
        return ErrorKind::Tls;
    }
    io_kind(e.kind()).unwrap_or(ErrorKind::Other)
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
