//! What went wrong with Redis, said so that an operator knows where to look: a connection that
//! never came up, a TLS handshake that refused the certificate, credentials Redis refused, a
//! cluster node gone or a storm of redirects. Every message is scrubbed of the password.

use std::error::Error as _;

use redis::{ErrorKind, RedisError, ServerErrorKind};

/// Why the store could not answer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The `[store]` settings cannot work (no URL, a URL that does not parse, an unreadable CA
    /// file, ...).
    #[error("[store] configuration: {0}")]
    Config(String),
    /// Redis could not be reached, or not safely (TLS), or did not answer in time. Keep
    /// delivering without dedup.
    #[error("Redis at {url} is unreachable ({failure}): {reason}")]
    Unreachable { url: String, failure: Failure, reason: String },
    /// Redis answered with an error (authentication, permissions, wrong key type, ...).
    #[error("Redis at {url} answered with an error ({failure}): {reason}")]
    Redis { url: String, failure: Failure, reason: String },
    /// The lease ran out and another delivery claimed the action before this one completed it:
    /// the action may be sent twice. Raise the lease if this happens.
    #[error("the claim on `{key}` was lost (lease expired and taken over): it may be sent twice")]
    LeaseLost { key: String },
    /// Redis answered a script with a value the script cannot return (`2` where it answers 0
    /// or 1): the store is not the one the scripts were written for, or not honest. Treated
    /// like any failed store call, by the same rule everywhere: fail open with a warning
    /// (deliver without duplicate protection, accept a validly signed callback) rather than
    /// refuse or skip on an answer that cannot be trusted.
    #[error("Redis answered {what} with {answer}, which it cannot return: not trusted")]
    Unexpected { what: &'static str, answer: i64 },
    /// An outbox entry that does not decode (written by an incompatible version).
    #[error("outbox entry `{key}` is unreadable: {reason}")]
    Corrupt { key: String, reason: String },
}

impl StoreError {
    /// True when the store was out of reach (connection refused or dropped, TLS refused, timeout,
    /// a cluster node gone, Redis loading or read-only): the caller should deliver anyway and
    /// report it.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, StoreError::Unreachable { .. })
    }

    /// What kind of failure it was, when Redis was involved.
    pub fn failure(&self) -> Option<Failure> {
        match self {
            StoreError::Unreachable { failure, .. } | StoreError::Redis { failure, .. } => Some(*failure),
            _ => None,
        }
    }
}

/// The kinds of Redis failure an operator tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No connection: refused, reset, a name that does not resolve.
    Connection,
    /// No answer in time.
    Timeout,
    /// The TLS handshake failed: a certificate from an untrusted CA or for another host name,
    /// or a server that does not speak TLS.
    Tls,
    /// Redis refused the credentials (`WRONGPASS`, `NOAUTH`).
    Auth,
    /// Cluster: the node serving a key went away, or the cluster is down.
    NodeGone,
    /// Cluster: more `MOVED`/`ASK` redirects than the client follows (the cluster is
    /// resharding, or `cluster = false` against a cluster).
    Redirects,
    /// Redis is loading its data, read-only, or asked to try again.
    Busy,
    /// Redis refused the command (ACL permissions, a disabled `EVAL`, `CROSSSLOT`, ...).
    Refused,
}

impl Failure {
    /// The failures that mean "not there (safely) right now" rather than "said no".
    pub fn is_unreachable(self) -> bool {
        !matches!(self, Failure::Auth | Failure::Refused)
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Failure::Connection => "connection failed",
            Failure::Timeout => "timed out",
            Failure::Tls => "TLS handshake failed",
            Failure::Auth => "authentication failed",
            Failure::NodeGone => "cluster node gone",
            Failure::Redirects => {
                "redirected by the cluster: resharding, or `cluster = false` against a cluster"
            }
            Failure::Busy => "busy",
            Failure::Refused => "command refused",
        })
    }
}

/// What kind of failure `e` is.
pub fn failure_of(e: &RedisError) -> Failure {
    if tls_failure(e).is_some() {
        return Failure::Tls;
    }
    if matches!(e.code(), Some("WRONGPASS" | "NOAUTH")) {
        return Failure::Auth;
    }
    match e.kind() {
        ErrorKind::AuthenticationFailed => Failure::Auth,
        ErrorKind::ClusterConnectionNotFound => Failure::NodeGone,
        ErrorKind::Server(kind) => match kind {
            ServerErrorKind::Moved | ServerErrorKind::Ask => Failure::Redirects,
            ServerErrorKind::ClusterDown | ServerErrorKind::MasterDown => Failure::NodeGone,
            ServerErrorKind::BusyLoading | ServerErrorKind::TryAgain | ServerErrorKind::ReadOnly => {
                Failure::Busy
            }
            _ => Failure::Refused,
        },
        _ if e.is_timeout() => Failure::Timeout,
        _ if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() => Failure::Connection,
        _ => Failure::Refused,
    }
}

/// How a TLS handshake failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TlsFailure {
    UnknownIssuer,
    WrongHost,
    Expired,
    NotTls,
    Other,
}

/// Why the handshake failed, in words that point at the setting to fix; `None` when `e` is not
/// a TLS failure. `host` is the host name of `url`, which the certificate must name.
pub fn tls_reason(e: &RedisError, host: &str) -> Option<String> {
    let detail = e.to_string();
    Some(match tls_failure(e)? {
        TlsFailure::UnknownIssuer => format!(
            "the server's certificate is not signed by a trusted CA (the public roots, and \
             `tls_ca_file` when set): {detail}"
        ),
        TlsFailure::WrongHost => {
            format!("the server's certificate is not valid for the host name {host:?} of `url`: {detail}")
        }
        TlsFailure::Expired => format!("the server's certificate has expired: {detail}"),
        TlsFailure::NotTls => {
            format!("the server does not speak TLS on this port (a plain redis:// port?): {detail}")
        }
        TlsFailure::Other => detail,
    })
}

/// The TLS failure in `e`, if it is one. rustls errors travel inside `io::Error`s, and the
/// connection manager keeps only their text, so both the type and the text are looked at.
fn tls_failure(e: &RedisError) -> Option<TlsFailure> {
    use rustls::CertificateError as Cert;
    if let Some(err) = rustls_error(e) {
        return Some(match err {
            rustls::Error::InvalidCertificate(Cert::UnknownIssuer) => TlsFailure::UnknownIssuer,
            rustls::Error::InvalidCertificate(
                Cert::NotValidForName | Cert::NotValidForNameContext { .. },
            ) => TlsFailure::WrongHost,
            rustls::Error::InvalidCertificate(Cert::Expired | Cert::ExpiredContext { .. }) => {
                TlsFailure::Expired
            }
            rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
                TlsFailure::NotTls
            }
            _ => TlsFailure::Other,
        });
    }
    // rustls's own wording (its `Display`), for errors that reach us as text.
    let text = e.to_string();
    let found = |needles: &[&str]| needles.iter().any(|n| text.contains(n));
    if found(&["UnknownIssuer", "unknown issuer"]) {
        Some(TlsFailure::UnknownIssuer)
    } else if found(&["NotValidForName", "not valid for name"]) {
        Some(TlsFailure::WrongHost)
    } else if text.contains("invalid peer certificate") && found(&["Expired", "expired"]) {
        Some(TlsFailure::Expired)
    } else if found(&["received corrupt message", "InvalidContentType"]) {
        Some(TlsFailure::NotTls)
    } else if found(&[
        "invalid peer certificate",
        "received fatal alert",
        "peer is incompatible",
        "peer misbehaved",
    ]) {
        Some(TlsFailure::Other)
    } else {
        None
    }
}

/// The rustls error somewhere in `e`'s chain (inside an `io::Error`, which hides it from
/// `source()`: hence `get_ref`).
fn rustls_error(e: &RedisError) -> Option<&rustls::Error> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = e.source();
    while let Some(err) = next {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        if let Some(tls) = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Some(tls);
        }
        next = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io(
        kind: std::io::ErrorKind,
        inner: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> RedisError {
        RedisError::from(std::io::Error::new(kind, inner))
    }

    #[test]
    fn tls_failures_are_found_inside_io_errors() {
        let unknown = io(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        assert_eq!(failure_of(&unknown), Failure::Tls);
        let reason = tls_reason(&unknown, "redis.internal").unwrap_or_default();
        assert!(reason.contains("tls_ca_file"), "{reason}");

        let other_host = io(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName),
        );
        let reason = tls_reason(&other_host, "redis.internal").unwrap_or_default();
        assert!(reason.contains("\"redis.internal\""), "{reason}");
    }

    #[test]
    fn tls_failures_known_only_by_their_text_are_found_too() {
        let text =
            RedisError::from((ErrorKind::Io, "io", "invalid peer certificate: UnknownIssuer".to_owned()));
        assert_eq!(failure_of(&text), Failure::Tls);
        assert!(tls_reason(&text, "h").unwrap_or_default().contains("not signed by a trusted CA"));
        let name = "invalid peer certificate: certificate not valid for name \"localhost\"".to_owned();
        let text = RedisError::from((ErrorKind::Io, "io", name));
        assert!(tls_reason(&text, "localhost").unwrap_or_default().contains("host name \"localhost\""));
    }

    #[test]
    fn plain_io_errors_are_connection_failures() {
        let refused = io(std::io::ErrorKind::ConnectionRefused, "connection refused");
        assert_eq!(failure_of(&refused), Failure::Connection);
        assert!(tls_reason(&refused, "h").is_none());
        assert!(Failure::Connection.is_unreachable() && !Failure::Auth.is_unreachable());
    }

    #[test]
    fn server_errors_are_told_apart() {
        let moved =
            RedisError::from((ErrorKind::Server(ServerErrorKind::Moved), "MOVED", "3999 127.0.0.1:1".into()));
        assert_eq!(failure_of(&moved), Failure::Redirects);
        let down = RedisError::from((ErrorKind::Server(ServerErrorKind::ClusterDown), "CLUSTERDOWN"));
        assert_eq!(failure_of(&down), Failure::NodeGone);
        let auth = RedisError::from((ErrorKind::AuthenticationFailed, "WRONGPASS"));
        assert_eq!(failure_of(&auth), Failure::Auth);
    }
}
