//! Who is calling an API route, known from the headers before a byte of the body is read. [`Caller`]
//! authenticates; [`Audited`] also opens the request's audit record first, so a refused key is
//! recorded like any other request. Either refuses with 401 in the caller's wire (Anthropic's on
//! `/v1/messages` and its `count_tokens`, OpenAI's elsewhere), before the handler runs.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, OriginalUri};
use axum::response::Response;
use http::request::Parts;

use super::wire::{Wire, WireError};
use crate::audit::Trail;
use crate::gateway::Gateway;
use crate::identity::Principal;
use crate::observe::Observation;
use crate::GatewayError;

/// The path as the client called it: nested routers see it without its `/v1` prefix.
fn called_path(parts: &Parts) -> &str {
    parts
        .extensions
        .get::<OriginalUri>()
        .map_or_else(|| parts.uri.path(), |u| u.0.path())
}

fn authenticate(gw: &Gateway, parts: &Parts) -> Result<Principal, GatewayError> {
    gw.identities.authenticate(&parts.headers, crate::ledger::now())
}

/// The GenAI operation of a route that forwards (the pipeline names it for requests it admits).
fn forwarded_operation(path: &str) -> Option<&'static str> {
    let route = crate::observe::layer::route_of(path);
    let forwards = matches!(
        route,
        "/v1/chat/completions"
            | "/v1/completions"
            | "/v1/embeddings"
            | "/v1/messages"
            | "/v1/messages/count_tokens"
            | "/v1/responses"
    );
    forwards.then(|| crate::observe::operation_of(route.trim_start_matches("/v1")))
}

/// An authenticated caller, for reads that leave no audit record (the model list, the key's own
/// limits).
#[derive(Debug)]
pub(crate) struct Caller(pub(crate) Principal);

impl FromRequestParts<Arc<Gateway>> for Caller {
    type Rejection = WireError;

    async fn from_request_parts(parts: &mut Parts, gw: &Arc<Gateway>) -> Result<Self, WireError> {
        authenticate(gw, parts)
            .map(Caller)
            .map_err(|e| WireError::new(Wire::of(called_path(parts)), e))
    }
}

/// An authenticated caller whose request is audited: the record is open, naming the key, and is
/// written once, however the request ends (see `crate::audit::Trail`). Put it after the extractors
/// that may refuse on their own, or their refusal is recorded as a client that left (499).
pub(crate) struct Audited {
    pub(crate) principal: Principal,
    /// The layer's request id (the response's `x-request-id`), so the record can be found by it.
    pub(crate) request_id: String,
    pub(crate) trail: Trail,
}

impl FromRequestParts<Arc<Gateway>> for Audited {
    type Rejection = WireError;

    async fn from_request_parts(parts: &mut Parts, gw: &Arc<Gateway>) -> Result<Self, WireError> {
        let observed = parts.extensions.get::<Arc<Observation>>().cloned();
        let request_id = observed
            .as_ref()
            .map_or_else(|| gw.next_request_id(), |o| o.request_id.clone());
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
        let path = called_path(parts);
        let mut trail = Trail::start(gw.audit.clone(), &request_id, path, peer, observed);
        match authenticate(gw, parts) {
            Ok(principal) => {
                trail.principal(&principal);
                Ok(Audited {
                    principal,
                    request_id,
                    trail,
                })
            }
            Err(e) => {
                if let (Some(o), Some(op)) = (trail.observation(), forwarded_operation(path)) {
                    // Counted under its operation like the requests let through (`crate::observe`).
                    o.operation(op);
                }
                trail.finish(e.status().as_u16());
                Err(WireError::new(Wire::of(path), e))
            }
        }
    }
}

impl Audited {
    /// Answers a request moatd serves itself (stored state, local estimates): nothing leaves, but who
    /// asked for what is recorded like any other request.
    pub(crate) fn answer(
        self,
        f: impl FnOnce(&Principal) -> Result<Response, GatewayError>,
    ) -> Result<Response, GatewayError> {
        let result = f(&self.principal);
        match &result {
            Ok(r) => self.finish(r.status().as_u16()),
            Err(e) => self.finish(e.status().as_u16()),
        }
        result
    }

    /// Refuses the request with `error`, recording it.
    pub(crate) fn refuse(self, error: GatewayError) -> GatewayError {
        self.finish(error.status().as_u16());
        error
    }

    fn finish(mut self, status: u16) {
        self.trail.finish(status);
    }
}
