//! The forwarding path's side of the provider adapters (`moat_upstream::adapter`): one attempt's
//! request written for its provider's kind, with the adapter's errors as the gateway's. Everything
//! that differs by kind is the adapter's; nothing here looks at the kind.

use std::borrow::Cow;
use std::sync::Arc;

use bytes::Bytes;
use moat_upstream::adapter::{self, EncodeError, ProviderAdapter};
use moat_wire::edit::Unique;

pub(crate) use moat_upstream::adapter::Translation;

use super::request_kinds::{Forward, SET_MEMBERS};
use crate::GatewayError;

/// The path and body to send to `provider` (of `adapter`'s kind) for `request`, and how its answer
/// is read back (a stream translator holding at most `max_event` bytes of one event). The typed
/// request is encoded directly, never serialized and parsed again; or, given `sent` (the client's own
/// bytes, which `request` was decoded from as it is, no object in them repeating a key), those bytes
/// are edited in place where the kind passes the request through: only the members the forwarding
/// path sets ([`SET_MEMBERS`]) are written anew.
pub(crate) fn outbound<T: Forward>(
    adapter: &Arc<dyn ProviderAdapter>,
    provider: &str,
    (request, sent): (&T, Option<Unique<&[u8]>>),
    request_id: &str,
    max_event: usize,
) -> Result<(Cow<'static, str>, Bytes, Translation), GatewayError> {
    let out = match sent {
        Some(sent) => {
            adapter::outbound_edited(adapter, provider, request.wire(), (sent, SET_MEMBERS), request_id)
        }
        None => adapter::outbound(adapter, provider, request.wire(), request_id),
    }
    .map_err(|e| match e {
        EncodeError::Unsupported { .. } => GatewayError::BadRequest(format!("provider `{provider}` {e}")),
        EncodeError::Translate(e) => GatewayError::BadRequest(e.to_string()),
        EncodeError::Json(e) => GatewayError::Internal(e.to_string()),
    })?;
    Ok((out.path, out.body, out.translation.with_max_event(max_event)))
}
