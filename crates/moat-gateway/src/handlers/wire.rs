//! What differs by the wire a caller speaks once the request path has answered: errors in OpenAI's
//! shape (`{"error":{…}}`) on most routes and in Anthropic's (`{"type":"error","error":{…}}`) on
//! `/v1/messages` and its `count_tokens`, both from the one mapping in `crate::error`; and answers
//! carried through a translator on their way back (Anthropic's events, the Responses events).

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use http::{header, HeaderValue, StatusCode};
use moat_translate::anthropic::{error_body, error_type_for_status};
use moat_translate::StreamTranslator;
use moat_upstream::translating::{translate, AfterEnd, Interrupted};
use moat_wire::error::ErrorBody;

use crate::error::Rendered;
use crate::GatewayError;

/// The error shape a route answers in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wire {
    OpenAi,
    Anthropic,
}

impl Wire {
    /// The wire of the route at `path` (as called, or as a nested router sees it).
    pub(crate) fn of(path: &str) -> Wire {
        if path.ends_with("/messages") || path.ends_with("/messages/count_tokens") {
            Wire::Anthropic
        } else {
            Wire::OpenAi
        }
    }
}

/// A failure answered in the caller's wire.
#[derive(Debug)]
pub(crate) enum WireError {
    OpenAi(GatewayError),
    Anthropic(GatewayError),
}

impl WireError {
    pub(crate) fn new(wire: Wire, error: GatewayError) -> WireError {
        match wire {
            Wire::OpenAi => WireError::OpenAi(error),
            Wire::Anthropic => WireError::Anthropic(error),
        }
    }
}

impl IntoResponse for WireError {
    fn into_response(self) -> Response {
        match self {
            WireError::OpenAi(e) => e.into_response(),
            WireError::Anthropic(e) => anthropic(e.render()),
        }
    }
}

/// An error in Anthropic's shape, saying what OpenAI's would: the provider's own message when it sent
/// an error object, moatd's otherwise, with the headers clients act on (`retry-after`,
/// `www-authenticate`, moatd's `x-` headers).
fn anthropic(rendered: Rendered) -> Response {
    let message = ErrorBody::from_slice(&rendered.body)
        .map(|b| b.error.message)
        .unwrap_or_else(|| {
            String::from_utf8_lossy(&rendered.body)
                .chars()
                .take(300)
                .collect()
        });
    let mut resp = anthropic_error(rendered.status, &message);
    let kept = rendered.headers.iter().filter(|(name, _)| {
        *name == header::RETRY_AFTER || *name == header::WWW_AUTHENTICATE || name.as_str().starts_with("x-")
    });
    for (name, value) in kept {
        resp.headers_mut().insert(name.clone(), value.clone());
    }
    resp
}

/// Anthropic's error object with `message`, its type chosen by status.
fn anthropic_error(status: StatusCode, message: &str) -> Response {
    let body = error_body(error_type_for_status(status.as_u16()), message);
    let mut resp = (status, Bytes::from(body)).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// The forwarding path's streamed answer (OpenAI's SSE) through `translator`, with `observe` seeing
/// the translator after each step. The relay under it is read to its end, since it settles only then;
/// a translator that fails on its own ends the body after its error event, and dropping the relay
/// there (as when the client leaves) cancels the provider's work and settles.
pub(crate) fn translated_body<T, O>(body: Body, translator: T, observe: O) -> Body
where
    T: StreamTranslator + 'static,
    O: FnMut(&T) + Send + 'static,
{
    let stream = translate(
        body.into_data_stream(),
        Box::new(translator),
        AfterEnd::Drain,
        observe,
    );
    Body::from_stream(stream.filter_map(|item| {
        std::future::ready(match item {
            Ok(bytes) => Some(Ok(bytes)),
            Err(Interrupted::Source(e)) => Some(Err(e)),
            // Its error event has gone out already: nothing more to send.
            Err(Interrupted::Stopped(_)) => None,
        })
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anthropic_routes_are_told_apart_by_path() {
        for path in ["/v1/messages", "/api/v1/messages/count_tokens", "/messages"] {
            assert_eq!(Wire::of(path), Wire::Anthropic, "{path}");
        }
        for path in ["/v1/chat/completions", "/v1/responses", "/v1/messages/x"] {
            assert_eq!(Wire::of(path), Wire::OpenAi, "{path}");
        }
    }

    #[tokio::test]
    async fn an_anthropic_error_says_what_the_openai_one_says() {
        let limited = || GatewayError::RateLimited {
            scope: "key",
            what: "requests per minute",
            retry_after: 7,
        };
        let openai = WireError::OpenAi(limited()).into_response();
        let anthropic = WireError::Anthropic(limited()).into_response();
        assert_eq!(openai.status(), anthropic.status());
        assert_eq!(anthropic.headers()[header::RETRY_AFTER], "7");
        let body = axum::body::to_bytes(anthropic.into_body(), 1 << 20)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["type"], "error");
        assert_eq!(body["error"]["type"], "rate_limit_error");
        assert_eq!(body["error"]["message"], limited().to_string());

        let refused = WireError::Anthropic(GatewayError::Unauthorized).into_response();
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(refused.headers()[header::WWW_AUTHENTICATE], "Bearer");
    }
}
