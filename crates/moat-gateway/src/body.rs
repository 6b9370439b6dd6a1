//! Reading a client's request body within the size and time limits, before anything else looks at it.

use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http::HeaderMap;
use http_body_util::{BodyExt, Limited};

use crate::GatewayError;

/// How much of an over-limit body we read and throw away before answering 413. Answering while the
/// client is still sending makes many clients see a reset instead of our answer; reading (and
/// discarding) a bounded amount first lets the 413 arrive.
const DRAIN_LIMIT: usize = 32 * 1024 * 1024;

/// Reads the whole body, refusing more than `limit` bytes (413) or a body slower than `timeout` (408).
pub async fn read_limited(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, GatewayError> {
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        drain(body, timeout).await;
        return Err(GatewayError::PayloadTooLarge { limit });
    }
    let read = async {
        match Limited::new(body, limit).collect().await {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
                Err(GatewayError::PayloadTooLarge { limit })
            }
            Err(e) => Err(GatewayError::BadRequest(format!(
                "could not read the request body: {e}"
            ))),
        }
    };
    match tokio::time::timeout(timeout, read).await {
        Ok(result) => result,
        Err(_) => Err(GatewayError::BodyTimeout(timeout)),
    }
}

/// The request body as an extractor, read with [`read_limited`] and the gateway's limits
/// (`server.max_body_bytes`, `server.body_read_timeout`). Put it last, after the extractors that
/// authenticate, so nobody unauthenticated gets a byte of the body read.
#[derive(Debug)]
pub(crate) struct LimitedBody(pub Bytes);

impl axum::extract::FromRequest<std::sync::Arc<crate::gateway::Gateway>> for LimitedBody {
    type Rejection = GatewayError;

    async fn from_request(
        req: axum::extract::Request,
        gw: &std::sync::Arc<crate::gateway::Gateway>,
    ) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        read_limited(
            &parts.headers,
            body,
            gw.server.max_body_bytes,
            gw.server.body_read_timeout,
        )
        .await
        .map(LimitedBody)
    }
}

async fn drain(body: Body, timeout: Duration) {
    let mut body = body.into_data_stream();
    let drain = async {
        use futures_util::StreamExt;
        let mut seen = 0usize;
        while let Some(Ok(chunk)) = body.next().await {
            seen += chunk.len();
            if seen > DRAIN_LIMIT {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(timeout, drain).await;
}
