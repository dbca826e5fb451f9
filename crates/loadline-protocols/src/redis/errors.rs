//! Redis's error classes. A failed command is one of the generic classes every
//! protocol counts (connect, dns, timeout, reset, tls, protocol) or, when the
//! server replied with an error, one that Redis declares to the plan, chosen by
//! the error reply's code (its first word), never by its message:
//! `wrongtype` (WRONGTYPE), `moved` (a cluster redirection: MOVED, ASK),
//! `noauth` (NOAUTH, WRONGPASS, NOPERM), `oom` (OOM: over `maxmemory` with no
//! key to evict) and `redis` (any other error reply, e.g. ERR).

use loadline_core::build::BuildCtx;
use loadline_core::metrics::{self, ErrorClass};
use redis::RedisError;

/// The error classes Redis declares, in [`ErrorKind`]'s order after the
/// generic ones.
pub const DECLARED_CLASSES: [&str; 5] = ["wrongtype", "moved", "noauth", "oom", "redis"];

/// Why a command failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    Connect,
    Dns,
    Timeout,
    Reset,
    Tls,
    Protocol,
    Capture,
    Other,
    /// An operation against a key holding the wrong kind of value.
    WrongType,
    /// The key lives on another node of the cluster.
    Moved,
    /// Authentication needed, refused, or not permitted by the ACL.
    NoAuth,
    /// Out of memory: `maxmemory` reached and nothing could be evicted.
    Oom,
    /// Any other error reply.
    Redis,
}

impl ErrorKind {
    /// The class's name, as the plan counts it.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Dns => "dns",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Reset => "reset",
            ErrorKind::Tls => "tls",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Capture => "capture",
            ErrorKind::Other => "other",
            ErrorKind::WrongType => DECLARED_CLASSES[0],
            ErrorKind::Moved => DECLARED_CLASSES[1],
            ErrorKind::NoAuth => DECLARED_CLASSES[2],
            ErrorKind::Oom => DECLARED_CLASSES[3],
            ErrorKind::Redis => DECLARED_CLASSES[4],
        }
    }

    /// The class of an error reply's code (`WRONGTYPE`, `MOVED`, `ERR`…).
    pub fn of_code(code: &str) -> Self {
        match code {
            "WRONGTYPE" => ErrorKind::WrongType,
            "MOVED" | "ASK" => ErrorKind::Moved,
            "NOAUTH" | "WRONGPASS" | "NOPERM" => ErrorKind::NoAuth,
            "OOM" => ErrorKind::Oom,
            _ => ErrorKind::Redis,
        }
    }

    /// The class of a failed exchange: an error reply by its code, else what
    /// happened to the connection.
    pub fn of_error(e: &RedisError) -> Self {
        use redis::ErrorKind as K;
        if e.is_timeout() {
            return ErrorKind::Timeout;
        }
        if e.is_connection_refusal() {
            return ErrorKind::Connect;
        }
        match e.kind() {
            K::AuthenticationFailed => return ErrorKind::NoAuth,
            K::Moved | K::Ask => return ErrorKind::Moved,
            K::ParseError => return ErrorKind::Protocol,
            _ => {}
        }
        if let Some(code) = e.code() {
            return Self::of_code(code);
        }
        // A connection lost mid-exchange (opening one that fails is counted
        // as `connect` by the caller, which knows it was connecting).
        if e.is_connection_dropped() || e.is_io_error() {
            return ErrorKind::Reset;
        }
        match e.kind() {
            K::ResponseError | K::ExtensionError => ErrorKind::Redis,
            K::ClientError => ErrorKind::Other,
            _ => ErrorKind::Redis,
        }
    }

    /// Whether the connection cannot be used after this failure.
    pub fn breaks_connection(self) -> bool {
        matches!(
            self,
            ErrorKind::Connect
                | ErrorKind::Dns
                | ErrorKind::Reset
                | ErrorKind::Tls
                | ErrorKind::Protocol
        )
    }
}

/// Where Redis's figures go in the plan's metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedisMetrics {
    /// The plan's classes of [`DECLARED_CLASSES`], in order.
    declared: [ErrorClass; 5],
}

impl Default for RedisMetrics {
    /// The classes right after the generic ones: the layout of a plan whose
    /// only declarations are Redis's.
    fn default() -> Self {
        let base = metrics::ErrorKind::ALL.len() as u16;
        Self {
            declared: std::array::from_fn(|i| ErrorClass::from_index(base + i as u16)),
        }
    }
}

impl RedisMetrics {
    /// Declares Redis's classes to the plan being built.
    pub fn declare(ctx: &mut dyn BuildCtx) -> Self {
        let mut out = Self::default();
        for (slot, class) in out
            .declared
            .iter_mut()
            .zip(ctx.error_classes(&DECLARED_CLASSES))
        {
            *slot = class;
        }
        out
    }

    /// The plan's class of `kind`.
    pub fn class(&self, kind: ErrorKind) -> ErrorClass {
        use metrics::ErrorKind as G;
        match kind {
            ErrorKind::Connect => G::Connect.into(),
            ErrorKind::Dns => G::Dns.into(),
            ErrorKind::Timeout => G::Timeout.into(),
            ErrorKind::Reset => G::Reset.into(),
            ErrorKind::Tls => G::Tls.into(),
            ErrorKind::Protocol => G::Protocol.into(),
            ErrorKind::Capture => G::Capture.into(),
            ErrorKind::Other => G::Other.into(),
            ErrorKind::WrongType => self.declared[0],
            ErrorKind::Moved => self.declared[1],
            ErrorKind::NoAuth => self.declared[2],
            ErrorKind::Oom => self.declared[3],
            ErrorKind::Redis => self.declared[4],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_have_their_classes() {
        for (code, kind) in [
            ("WRONGTYPE", ErrorKind::WrongType),
            ("MOVED", ErrorKind::Moved),
            ("ASK", ErrorKind::Moved),
            ("NOAUTH", ErrorKind::NoAuth),
            ("WRONGPASS", ErrorKind::NoAuth),
            ("NOPERM", ErrorKind::NoAuth),
            ("OOM", ErrorKind::Oom),
            ("ERR", ErrorKind::Redis),
            ("BUSYKEY", ErrorKind::Redis),
        ] {
            assert_eq!(ErrorKind::of_code(code), kind, "{code}");
        }
        let m = RedisMetrics::default();
        let base = metrics::ErrorKind::ALL.len();
        assert_eq!(m.class(ErrorKind::WrongType).index(), base);
        assert_eq!(m.class(ErrorKind::Redis).index(), base + 4);
        assert_eq!(
            m.class(ErrorKind::Timeout),
            metrics::ErrorKind::Timeout.into()
        );
    }
}
