//! The one error type of the crate: a body that cannot be translated.

/// Why a body could not be translated. The message is safe to show a client: it names fields, never
/// their contents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    /// The client's request is not valid for the target wire (a 400 for the client).
    #[error("{0}")]
    InvalidRequest(String),
    /// The provider's answer could not be read (a 502 for the client).
    #[error("{0}")]
    InvalidResponse(String),
}
