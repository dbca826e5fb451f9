//! HTTP/1.1 on the wire, for the client side: the parsed response head (its
//! headers looked up in place, without building a map per response) and the
//! body framing — content-length, chunked, or until the connection closes.
//! Parsing of the head is httparse's, the parser hyper itself uses.

use std::ops::Range;

use loadline_core::metrics::ErrorKind;

/// At most this many response headers are accepted.
pub const MAX_HEADERS: usize = 128;
/// Bit `n` set: a cache header name has `n` bytes (`Age`, `X-Cache`,
/// `Cache-Status`, `X-Cache-Status`, `CF-Cache-Status`).
const CACHE_NAME_LENGTHS: u32 = 1 << 3 | 1 << 7 | 1 << 12 | 1 << 14 | 1 << 15;
/// A response head larger than this is a protocol error.
pub const MAX_HEAD: usize = 256 * 1024;

/// A response's status line and headers, kept as bytes with the places of each
/// header's name and value.
#[derive(Debug, Default)]
pub struct Head {
    pub status: u16,
    /// HTTP/1.0 (`0`), HTTP/1.1 (`1`) or HTTP/2 (`2`).
    pub version: u8,
    raw: Vec<u8>,
    fields: Vec<(Range<usize>, Range<usize>)>,
    /// Whether a header a cache answers in (`Cache-Status`, `X-Cache`, …,
    /// `Age`) is among them: noted while parsing, so that most responses are
    /// classified without a second look at their headers.
    cache_headers: bool,
}

impl Head {
    /// Parses a head at the start of `buf`: `Ok(Some(len))` when complete (the
    /// head's bytes are copied in), `Ok(None)` when more bytes are needed.
    pub fn parse(&mut self, buf: &[u8]) -> Result<Option<usize>, ErrorKind> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut headers);
        let len = match resp.parse(buf) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => {
                return if buf.len() > MAX_HEAD {
                    Err(ErrorKind::Protocol)
                } else {
                    Ok(None)
                };
            }
            Err(_) => return Err(ErrorKind::Protocol),
        };
        self.status = resp.code.ok_or(ErrorKind::Protocol)?;
        self.version = resp.version.ok_or(ErrorKind::Protocol)?;
        self.raw.clear();
        self.raw.extend_from_slice(&buf[..len]);
        self.fields.clear();
        self.cache_headers = false;
        let base = buf.as_ptr() as usize;
        for h in resp.headers.iter() {
            let n = h.name.as_bytes();
            // The length and the second byte rule out nearly every other
            // header (`Content-Type` is as long as `Cache-Status`) before a call.
            if n.len() < 16
                && CACHE_NAME_LENGTHS >> n.len() & 1 == 1
                && matches!(n[1] | 0x20, b'g' | b'-' | b'a' | b'f')
            {
                self.cache_headers |= crate::http::cache::is_cache_header(n);
            }
            let name = h.name.as_ptr() as usize - base;
            let value = h.value.as_ptr() as usize - base;
            self.fields
                .push((name..name + h.name.len(), value..value + h.value.len()));
        }
        Ok(Some(len))
    }

    /// Takes an HTTP/2 response's status and headers (version `2`), written
    /// out as a head (`HTTP/2 200`, one `name: value` line each).
    pub fn set_h2(&mut self, status: u16, headers: &http::HeaderMap) {
        self.status = status;
        self.version = 2;
        self.raw.clear();
        self.fields.clear();
        self.cache_headers = false;
        self.raw.extend_from_slice(b"HTTP/2 ");
        let digits = [status / 100 % 10, status / 10 % 10, status % 10];
        self.raw.extend(digits.iter().map(|d| b'0' + *d as u8));
        self.raw.extend_from_slice(b"\r\n");
        for (name, value) in headers {
            self.cache_headers |= crate::http::cache::is_cache_header(name.as_str().as_bytes());
            let n = self.raw.len();
            self.raw.extend_from_slice(name.as_str().as_bytes());
            let end = self.raw.len();
            self.raw.extend_from_slice(b": ");
            let v = self.raw.len();
            self.raw.extend_from_slice(value.as_bytes());
            self.fields.push((n..end, v..self.raw.len()));
            self.raw.extend_from_slice(b"\r\n");
        }
        self.raw.extend_from_slice(b"\r\n");
    }

    /// Whether the head has a header a cache answers in (see
    /// [`crate::http::cache`]).
    pub fn has_cache_headers(&self) -> bool {
        self.cache_headers
    }

    /// The head as received: status line, headers and the blank line.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// Every header as `(name, value)`, in order.
    pub fn fields(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.fields
            .iter()
            .map(|(n, v)| (&self.raw[n.clone()], &self.raw[v.clone()]))
    }

    /// Every value of header `name` (ASCII case-insensitive), in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.fields
            .iter()
            .filter(move |(n, _)| self.raw[n.clone()].eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| &self.raw[v.clone()])
    }

    /// The first value of header `name`.
    pub fn get<'a>(&'a self, name: &'a str) -> Option<&'a [u8]> {
        self.get_all(name).next()
    }

    /// How the body that follows is delimited, for a response to `method_head`
    /// (a HEAD request) or not.
    pub fn framing(&self, method_head: bool) -> Result<Framing, ErrorKind> {
        if method_head || (100..200).contains(&self.status) || matches!(self.status, 204 | 304) {
            return Ok(Framing::Length(0));
        }
        if let Some(te) = self.get_all("transfer-encoding").last() {
            // Chunked must be the last coding; anything else runs to the close.
            let last = te.rsplit(|b| *b == b',').next().unwrap_or(te);
            return Ok(if trim(last).eq_ignore_ascii_case(b"chunked") {
                Framing::Chunked
            } else {
                Framing::UntilClose
            });
        }
        let mut length = None;
        for v in self.get_all("content-length") {
            let n = std::str::from_utf8(trim(v))
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or(ErrorKind::Protocol)?;
            if length.is_some_and(|l| l != n) {
                return Err(ErrorKind::Protocol);
            }
            length = Some(n);
        }
        Ok(length.map_or(Framing::UntilClose, Framing::Length))
    }

    /// Whether the server lets the connection be used again.
    pub fn keep_alive(&self) -> bool {
        let has = |token: &[u8]| {
            self.get_all("connection").any(|v| {
                v.split(|b| *b == b',')
                    .any(|t| trim(t).eq_ignore_ascii_case(token))
            })
        };
        if self.version == 0 {
            has(b"keep-alive")
        } else {
            !has(b"close")
        }
    }
}

fn trim(mut b: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = b {
        if first.is_ascii_whitespace() {
            b = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = b {
        if last.is_ascii_whitespace() {
            b = rest;
        } else {
            break;
        }
    }
    b
}

/// How a response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Length(u64),
    Chunked,
    /// Read until the server closes; the connection cannot be reused.
    UntilClose,
}

/// Decodes a chunked body as its bytes arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunked {
    /// Reading the chunk size (hex digits so far).
    Size {
        n: u64,
        digits: u8,
    },
    /// Skipping a chunk extension up to CR.
    Extension {
        n: u64,
    },
    /// Expecting the LF after the size line.
    SizeLf {
        n: u64,
    },
    /// Inside chunk data, this many bytes to go.
    Data(u64),
    DataCr,
    DataLf,
    /// At the start of a trailer line (or the final empty line).
    TrailerStart,
    TrailerLine,
    TrailerLineLf,
    EndLf,
    Done,
}

impl Default for Chunked {
    fn default() -> Self {
        Chunked::Size { n: 0, digits: 0 }
    }
}

impl Chunked {
    /// Consumes `input`, handing body bytes to `body`; returns how many bytes of
    /// `input` were used (all of them unless the body ended inside it).
    pub fn feed(&mut self, input: &[u8], mut body: impl FnMut(&[u8])) -> Result<usize, ErrorKind> {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            *self = match *self {
                Chunked::Size { n, digits } => match b {
                    b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                        if digits >= 15 {
                            return Err(ErrorKind::Protocol);
                        }
                        let d = (b as char).to_digit(16).unwrap_or(0) as u64;
                        Chunked::Size {
                            n: n * 16 + d,
                            digits: digits + 1,
                        }
                    }
                    b';' | b' ' | b'\t' if digits > 0 => Chunked::Extension { n },
                    b'\r' if digits > 0 => Chunked::SizeLf { n },
                    _ => return Err(ErrorKind::Protocol),
                },
                Chunked::Extension { n } => match b {
                    b'\r' => Chunked::SizeLf { n },
                    b'\n' => return Err(ErrorKind::Protocol),
                    _ => Chunked::Extension { n },
                },
                Chunked::SizeLf { n } => match b {
                    b'\n' if n == 0 => Chunked::TrailerStart,
                    b'\n' => Chunked::Data(n),
                    _ => return Err(ErrorKind::Protocol),
                },
                Chunked::Data(left) => {
                    let take = (left.min((input.len() - i) as u64)) as usize;
                    body(&input[i..i + take]);
                    i += take;
                    let left = left - take as u64;
                    *self = if left == 0 {
                        Chunked::DataCr
                    } else {
                        Chunked::Data(left)
                    };
                    continue;
                }
                Chunked::DataCr => match b {
                    b'\r' => Chunked::DataLf,
                    _ => return Err(ErrorKind::Protocol),
                },
                Chunked::DataLf => match b {
                    b'\n' => Chunked::Size { n: 0, digits: 0 },
                    _ => return Err(ErrorKind::Protocol),
                },
                Chunked::TrailerStart => match b {
                    b'\r' => Chunked::EndLf,
                    _ => Chunked::TrailerLine,
                },
                Chunked::TrailerLine => match b {
                    b'\r' => Chunked::TrailerLineLf,
                    _ => Chunked::TrailerLine,
                },
                Chunked::TrailerLineLf => match b {
                    b'\n' => Chunked::TrailerStart,
                    _ => return Err(ErrorKind::Protocol),
                },
                Chunked::EndLf => match b {
                    b'\n' => Chunked::Done,
                    _ => return Err(ErrorKind::Protocol),
                },
                Chunked::Done => return Ok(i),
            };
            i += 1;
        }
        Ok(i)
    }

    pub fn done(&self) -> bool {
        *self == Chunked::Done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_in_pieces(wire: &[u8], piece: usize) -> Result<(Vec<u8>, usize), ErrorKind> {
        let mut dec = Chunked::default();
        let mut out = Vec::new();
        let mut used = 0;
        for chunk in wire.chunks(piece) {
            used += dec.feed(chunk, |b| out.extend_from_slice(b))?;
            if dec.done() {
                break;
            }
        }
        assert!(dec.done(), "not done: {dec:?}");
        Ok((out, used))
    }

    #[test]
    fn chunked_bodies_decode_whatever_the_read_sizes() {
        let wire =
            b"5\r\nhello\r\n1;ext=1\r\n \r\nA\r\n0123456789\r\n0\r\nx-trailer: 1\r\n\r\nEXTRA";
        for piece in [1, 2, 3, 7, 64] {
            let (body, used) = decode_in_pieces(wire, piece).unwrap();
            assert_eq!(body, b"hello 0123456789");
            assert_eq!(used, wire.len() - 5, "piece {piece}");
        }
        assert_eq!(decode_in_pieces(b"0\r\n\r\n", 1).unwrap().0, b"");
    }

    #[test]
    fn malformed_chunks_are_protocol_errors() {
        for bad in [
            &b"zz\r\n"[..],
            b"5\nhello",
            b"5\r\nhelloXX",
            b"\r\n",
            b"ffffffffffffffffff\r\n",
        ] {
            let mut dec = Chunked::default();
            assert_eq!(dec.feed(bad, |_| {}), Err(ErrorKind::Protocol), "{bad:?}");
        }
    }

    #[test]
    fn heads_parse_and_frame() {
        let mut h = Head::default();
        assert_eq!(h.parse(b"HTTP/1.1 200 OK\r\nContent-Len"), Ok(None));
        let wire = b"HTTP/1.1 201 Created\r\nContent-Length: 12\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\nConnection: keep-alive, Close\r\n\r\nbody";
        let len = h.parse(wire).unwrap().unwrap();
        assert_eq!(len, wire.len() - 4);
        assert_eq!(h.status, 201);
        assert_eq!(h.get("content-length"), Some(&b"12"[..]));
        assert_eq!(
            h.get_all("SET-COOKIE").collect::<Vec<_>>(),
            vec![&b"a=1"[..], b"b=2"]
        );
        assert_eq!(h.framing(false), Ok(Framing::Length(12)));
        assert_eq!(h.framing(true), Ok(Framing::Length(0)));
        assert!(!h.keep_alive());

        h.parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n")
            .unwrap();
        assert_eq!(h.framing(false), Ok(Framing::Chunked));
        assert!(h.keep_alive());
        h.parse(b"HTTP/1.0 200 OK\r\n\r\n").unwrap();
        assert_eq!(h.framing(false), Ok(Framing::UntilClose));
        assert!(!h.keep_alive());
        h.parse(b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n")
            .unwrap();
        assert_eq!(h.framing(false), Ok(Framing::Length(0)));
        h.parse(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n")
            .unwrap();
        assert_eq!(h.framing(false), Err(ErrorKind::Protocol));
        h.parse(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n")
            .unwrap();
        assert_eq!(h.framing(false), Err(ErrorKind::Protocol));
        assert_eq!(h.parse(b"garbage\r\n\r\n"), Err(ErrorKind::Protocol));
    }
}
