//! The client's error type: what went wrong, grouped by what the user has to do about it, and the
//! exit code each group means (2 for a mistake on the command line or in the config, 1 for the rest).

use std::io;

/// Everything `moat` can fail with. Messages are one line and never contain a key.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command line or the config file asks for something impossible; nothing was sent.
    #[error("{0}")]
    Usage(String),
    /// The TLS handshake failed; the message is the reason (unknown issuer, expired, name mismatch).
    #[error("TLS error talking to {host}: {reason}")]
    Tls { host: String, reason: String },
    /// The server could not be reached, or the connection broke.
    #[error("{0}")]
    Network(String),
    /// The server answered with an error status, or reported an error inside the stream.
    #[error("{context}: {message}")]
    Api { context: String, message: String },
    /// Finding, reading or storing the API key failed (including a key file others can read).
    #[error("{0}")]
    Key(String),
    /// A local file operation failed; `context` says which.
    #[error("{context}: {source}")]
    Io { context: String, source: io::Error },
}

impl Error {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => 2,
            _ => 1,
        }
    }

    /// Wraps an I/O error with what was being attempted.
    pub fn io(context: impl Into<String>, source: io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    pub fn usage(message: impl Into<String>) -> Error {
        Error::Usage(message.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        assert_eq!(Error::usage("x").exit_code(), 2);
        assert_eq!(Error::Network("x".into()).exit_code(), 1);
        let tls = Error::Tls {
            host: "h".into(),
            reason: "certificate expired".into(),
        };
        assert_eq!(tls.to_string(), "TLS error talking to h: certificate expired");
        assert_eq!(tls.exit_code(), 1);
    }
}
