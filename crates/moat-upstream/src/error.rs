//! What can go wrong talking to a provider, classified so the gateway can map each case to one HTTP
//! status and decide whether another attempt could help.

use std::time::Duration;

use bytes::Bytes;

/// Which wait ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// TCP connect and TLS handshake.
    Connect,
    /// From sending the request until the response headers arrive.
    FirstByte,
    /// Between two pieces of the response body.
    Idle,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::Connect => "connecting",
            Phase::FirstByte => "waiting for the first byte",
            Phase::Idle => "waiting for more of the response",
        })
    }
}

/// An upstream failure. Messages name the provider and the cause but never a key or a prompt.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("provider `{provider}` unreachable: {detail}")]
    Connect { provider: String, detail: String },
    #[error("provider `{provider}`: TLS failure: {reason}")]
    Tls { provider: String, reason: String },
    #[error("provider `{provider}` timed out {phase} (after {after:?})")]
    Timeout {
        provider: String,
        phase: Phase,
        after: Duration,
    },
    #[error("provider `{provider}` answered {status}")]
    Status {
        provider: String,
        status: u16,
        body: Bytes,
        retry_after: Option<Duration>,
    },
    #[error("provider `{provider}`: {detail}")]
    Protocol { provider: String, detail: String },
    #[error("provider `{provider}`: response larger than {limit} bytes")]
    TooLarge { provider: String, limit: usize },
    /// The provider's credential could not be produced (a token endpoint refused or failed, a key
    /// file is unreadable): the provider is unusable until that is fixed, so fall back.
    #[error("provider `{provider}`: credential: {detail}")]
    Credential { provider: String, detail: String },
    #[error("{0}")]
    Config(String),
}

impl UpstreamError {
    /// True when another attempt (same target after back-off, or the next fallback) may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            UpstreamError::Connect { .. } | UpstreamError::Timeout { .. } => true,
            UpstreamError::Status { status, .. } => moat_policy::retry::is_retryable_status(*status),
            UpstreamError::Tls { .. }
            | UpstreamError::Protocol { .. }
            | UpstreamError::TooLarge { .. }
            | UpstreamError::Credential { .. }
            | UpstreamError::Config(_) => false,
        }
    }

    /// The provider's `Retry-After`, if it sent one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            UpstreamError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Classifies a transport error from the HTTP client, walking its cause chain to find TLS and
    /// socket errors (reqwest wraps them several layers deep).
    pub(crate) fn from_transport(provider: &str, err: &reqwest::Error, connect_timeout: Duration) -> Self {
        let provider = provider.to_string();
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
        let mut io_kind = None;
        while let Some(e) = source {
            if let Some(tls) = e.downcast_ref::<rustls::Error>() {
                return UpstreamError::Tls {
                    provider,
                    reason: crate::tls::describe(tls),
                };
            }
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                io_kind.get_or_insert(io.kind());
                // `io::Error::source` skips the error it wraps, and TLS errors arrive wrapped in two
                // layers of `io::Error`: step into the wrapped error instead.
                if let Some(inner) = io.get_ref() {
                    source = Some(inner);
                    continue;
                }
            }
            source = e.source();
        }
        if err.is_timeout() && err.is_connect() {
            return UpstreamError::Timeout {
                provider,
                phase: Phase::Connect,
                after: connect_timeout,
            };
        }
        if err.is_connect() {
            let detail = match io_kind {
                Some(std::io::ErrorKind::ConnectionRefused) => "connection refused".to_string(),
                Some(kind) => format!("connect failed ({kind})"),
                None => "connect failed (could not resolve or reach the host)".to_string(),
            };
            return UpstreamError::Connect { provider, detail };
        }
        let detail = match io_kind {
            Some(std::io::ErrorKind::ConnectionReset) => "connection reset by the provider".to_string(),
            Some(kind) => format!("connection failed ({kind})"),
            None if err.is_body() || err.is_decode() => "the response body was cut off".to_string(),
            None => "the connection failed before a response arrived".to_string(),
        };
        UpstreamError::Connect { provider, detail }
    }
}
