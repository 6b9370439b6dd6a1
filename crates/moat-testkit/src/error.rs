//! The one error type of the test kit: what can go wrong while making certificates or starting a server.

use std::io;

/// Everything the test kit's fallible functions can report.
///
/// The emulator's *wire* errors (401, 429, …) are not here: those are answers it sends on purpose.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// rcgen refused to build or sign a certificate.
    #[error("certificate generation failed: {0}")]
    Certificate(#[from] rcgen::Error),
    /// rustls refused a configuration (for example a key that does not match its certificate).
    #[error("TLS configuration failed: {0}")]
    Tls(#[from] rustls::Error),
    /// A socket or file operation failed; `context` says which.
    #[error("{context}: {source}")]
    Io {
        /// What the test kit was doing, e.g. "binding 127.0.0.1:0".
        context: String,
        /// The operating system's error.
        source: io::Error,
    },
}

impl Error {
    /// Wraps an I/O error with what was being attempted, so a failing test says which step broke.
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}
