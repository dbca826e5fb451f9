//! `--http-debug`: each exchange printed on stderr as it happened — the request
//! head (and body), then the response head (and body) or why none came — with
//! credentials in headers shown as `***`. One write per exchange, so the lines
//! of VUs running at once do not interleave. Nothing here runs unless asked:
//! the exchange checks one setting first.

use std::fmt::Write as _;
use std::io::Write as _;

use loadline_core::metrics::ErrorKind;

use super::conn::Origin;
use super::wire::Head;
use crate::registry::Dump;

/// At most this many bytes of a body are printed (and, when a step keeps no
/// body for its checks, kept for printing).
pub(crate) const BODY_BOUND: usize = 8 * 1024;

/// Headers whose values are credentials.
const SECRET_HEADERS: [&str; 5] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
];

/// Prints one exchange: `req` as sent, then the response in `head` and `body`
/// (the part kept), or the error class when none came.
pub(crate) fn print(
    dump: Dump,
    origin: &Origin,
    req: &[u8],
    result: Result<(), ErrorKind>,
    head: &Head,
    body: &[u8],
) {
    let text = render(dump, origin, req, result, head, body);
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes());
    let _ = err.flush();
}

/// The text [`print`] writes.
pub(crate) fn render(
    dump: Dump,
    origin: &Origin,
    req: &[u8],
    result: Result<(), ErrorKind>,
    head: &Head,
    body: &[u8],
) -> String {
    let full = dump == Dump::Full;
    let scheme = if origin.https { "https" } else { "http" };
    let mut o = format!("* {scheme}://{}:{}\n", origin.host, origin.port);
    let (req_head, req_body) = split_head(req);
    lines(&mut o, "> ", req_head);
    if full && !req_body.is_empty() {
        body_text(&mut o, "> ", req_body, req_body.len() > BODY_BOUND);
    }
    match result {
        Ok(()) => {
            lines(&mut o, "< ", head.raw());
            if full && !body.is_empty() {
                body_text(&mut o, "< ", body, body.len() >= BODY_BOUND);
            }
        }
        Err(kind) => {
            let _ = writeln!(o, "< no response: {}", kind.as_str());
        }
    }
    o.push('\n');
    o
}

/// A message's head and body.
fn split_head(msg: &[u8]) -> (&[u8], &[u8]) {
    match msg.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(end) => (&msg[..end + 4], &msg[end + 4..]),
        None => (msg, &[]),
    }
}

/// The lines of a head, each after `mark`, credentials hidden.
fn lines(o: &mut String, mark: &str, head: &[u8]) {
    let text = String::from_utf8_lossy(head);
    for (i, line) in text.split("\r\n").enumerate() {
        if line.is_empty() {
            continue;
        }
        o.push_str(mark);
        match line.split_once(':') {
            Some((name, _)) if i > 0 && is_secret(name) => {
                o.push_str(name);
                o.push_str(": ***");
            }
            _ => o.push_str(line),
        }
        o.push('\n');
    }
    o.push_str(mark.trim_end());
    o.push('\n');
}

fn is_secret(name: &str) -> bool {
    SECRET_HEADERS
        .iter()
        .any(|s| s.eq_ignore_ascii_case(name.trim()))
}

/// A body as text, at most [`BODY_BOUND`] bytes of it; binary data by its size.
fn body_text(o: &mut String, mark: &str, body: &[u8], cut: bool) {
    let shown = &body[..body.len().min(BODY_BOUND)];
    let binary = shown
        .iter()
        .any(|b| *b == 0 || (*b < 0x20 && !matches!(b, b'\n' | b'\r' | b'\t')));
    if binary {
        let _ = writeln!(o, "{mark}[{} bytes of binary data]", body.len());
        return;
    }
    for line in String::from_utf8_lossy(shown).lines() {
        o.push_str(mark);
        o.push_str(line);
        o.push('\n');
    }
    if cut {
        let _ = writeln!(o, "{mark}[… cut at {BODY_BOUND} bytes]");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn origin() -> Origin {
        Origin::from_url(&url::Url::parse("http://127.0.0.1:8080/").unwrap()).unwrap()
    }

    fn head(raw: &[u8]) -> Head {
        let mut h = Head::default();
        h.parse(raw).unwrap();
        h
    }

    #[test]
    fn heads_are_shown_with_credentials_hidden() {
        let req = b"POST /login HTTP/1.1\r\nhost: 127.0.0.1:8080\r\nAuthorization: Bearer s3cret\r\ncookie: sid=s3cret\r\ncontent-length: 2\r\n\r\n{}";
        let h = head(b"HTTP/1.1 200 OK\r\nset-cookie: sid=s3cret\r\ncontent-length: 4\r\n\r\n");
        let text = render(Dump::Heads, &origin(), req, Ok(()), &h, b"body");
        assert_eq!(
            text,
            "* http://127.0.0.1:8080\n\
             > POST /login HTTP/1.1\n> host: 127.0.0.1:8080\n> Authorization: ***\n> cookie: ***\n> content-length: 2\n>\n\
             < HTTP/1.1 200 OK\n< set-cookie: ***\n< content-length: 4\n<\n\n"
        );
        let full = render(Dump::Full, &origin(), req, Ok(()), &h, b"body");
        assert!(full.contains(">\n> {}\n< HTTP/1.1 200 OK"), "{full}");
        assert!(full.ends_with("<\n< body\n\n"), "{full}");
        assert!(!full.contains("s3cret"), "{full}");
    }

    #[test]
    fn failures_binary_and_long_bodies_are_shown_for_what_they_are() {
        let req = b"GET / HTTP/1.1\r\n\r\n";
        let text = render(
            Dump::Full,
            &origin(),
            req,
            Err(ErrorKind::Timeout),
            &Head::default(),
            b"",
        );
        assert!(text.ends_with(">\n< no response: timeout\n\n"), "{text}");
        let h = head(b"HTTP/1.1 200 OK\r\n\r\n");
        let text = render(Dump::Full, &origin(), req, Ok(()), &h, &[0u8, 1, 2]);
        assert!(text.contains("< [3 bytes of binary data]"), "{text}");
        let long = vec![b'a'; BODY_BOUND];
        let text = render(Dump::Full, &origin(), req, Ok(()), &h, &long);
        assert!(text.contains("< [… cut at 8192 bytes]"), "{text}");
        assert!(text.len() < BODY_BOUND + 200);
    }
}
