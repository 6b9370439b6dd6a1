//! The one place where anything that goes wrong in a request becomes an HTTP response in OpenAI's
//! error shape `{"error":{"message","type","code","param"}}`. Handlers return [`GatewayError`];
//! nothing else builds error responses. Domain errors (routing, budgets, the store, the admin API)
//! become a [`GatewayError`] through the `From` impls here, so each mapping is written once.
//! Internal failures are logged here with their detail and answered with a generic message: the
//! client gets the request id (`x-request-id`), never the gateway's internals.

use std::time::Duration;

use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{header, HeaderValue, StatusCode};
use moat_policy::budget::Refusal;
use moat_policy::route::RouteError;
use moat_upstream::UpstreamError;
use moat_wire::error::ErrorBody;

/// Why a request was refused with 403: the `code` clients read in the error object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The key's model allow-list does not name the model.
    ModelNotAllowed,
    /// The key is local-only and no local provider serves the model.
    LocalOnly,
    /// A privacy rule with `action = "block"` matched.
    PolicyBlocked,
    /// A privacy rule keeps the request local and no local provider serves the model.
    PolicyLocalOnly,
    /// The request holds content the privacy scan cannot read, and no local provider serves the model.
    PolicyUninspectable,
    /// A browser's origin is not in `server.cors_origins`.
    CorsOriginNotAllowed,
    /// A console session's change without its CSRF token, or from another origin.
    CsrfFailed,
    /// The operator's role does not allow this admin action.
    RoleForbidden,
    /// `/metrics` beyond loopback with no admin keys configured: never open to the network.
    AdminKeyRequired,
}

impl Refused {
    /// The code as sent in the error object.
    pub fn as_str(self) -> &'static str {
        match self {
            Refused::ModelNotAllowed => "model_not_allowed",
            Refused::LocalOnly => "local_only",
            Refused::PolicyBlocked => "policy_blocked",
            Refused::PolicyLocalOnly => "policy_local_only",
            Refused::PolicyUninspectable => "policy_uninspectable",
            Refused::CorsOriginNotAllowed => "cors_origin_not_allowed",
            Refused::CsrfFailed => "csrf_failed",
            Refused::RoleForbidden => "role_forbidden",
            Refused::AdminKeyRequired => "admin_key_required",
        }
    }
}

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    InvalidJson(String),
    #[error("missing or invalid API key: send `Authorization: Bearer <key>`")]
    Unauthorized,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("request body larger than {limit} bytes (server.max_body_bytes)")]
    PayloadTooLarge { limit: usize },
    #[error("request body not received within {0:?}")]
    BodyTimeout(Duration),
    #[error("{0}")]
    BadGateway(String),
    #[error("{0}")]
    Conflict(String),
    #[error("this request does not fit the {scope}'s budget")]
    BudgetExceeded {
        scope: &'static str,
        retry_after: Option<u64>,
    },
    #[error("the {scope}'s {what} limit is reached")]
    RateLimited {
        scope: &'static str,
        what: &'static str,
        retry_after: u64,
    },
    #[error("{message}")]
    Forbidden { message: String, code: Refused },
    #[error("no price is known for `{0}`, so its cost cannot be reserved against a budget; add it to the provider's `prices` in the config")]
    PriceUnknown(String),
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error("{0}")]
    Internal(String),
    /// The shared limits (Valkey) cannot be reached, so a metered request cannot be reserved safely.
    #[error("budgets and rate limits cannot be checked right now (the cluster's limits store is unreachable); retry shortly")]
    LimitsUnavailable,
}

impl From<RouteError> for GatewayError {
    fn from(err: RouteError) -> Self {
        match err {
            RouteError::UnknownModel { .. } => GatewayError::NotFound(err.to_string()),
            RouteError::NoModel | RouteError::EmptyModel(_) | RouteError::TooManyTargets => {
                GatewayError::BadRequest(err.to_string())
            }
        }
    }
}

impl From<Refusal> for GatewayError {
    fn from(refusal: Refusal) -> Self {
        // Accounts are checked key first, then its team.
        let scope = |account: usize| if account == 0 { "key" } else { "team" };
        match refusal {
            Refusal::Budget { account, retry_after } => GatewayError::BudgetExceeded {
                scope: scope(account),
                retry_after,
            },
            Refusal::Rpm { account, retry_after } => GatewayError::RateLimited {
                scope: scope(account),
                what: "requests per minute",
                retry_after,
            },
            Refusal::Tpm { account, retry_after } => GatewayError::RateLimited {
                scope: scope(account),
                what: "tokens per minute",
                retry_after,
            },
        }
    }
}

impl From<crate::admin::AdminError> for GatewayError {
    fn from(e: crate::admin::AdminError) -> Self {
        use crate::admin::AdminError;
        match e {
            AdminError::Invalid(m) => GatewayError::BadRequest(m),
            AdminError::NotFound(what) => GatewayError::NotFound(format!("{what} not found")),
            AdminError::Conflict(what) => GatewayError::Conflict(format!("{what} already exists")),
            other => GatewayError::Internal(other.to_string()),
        }
    }
}

impl From<moat_store::StoreError> for GatewayError {
    fn from(e: moat_store::StoreError) -> Self {
        GatewayError::Internal(format!("the store is unavailable: {e}"))
    }
}

/// What a client is told about an internal failure (the detail goes to the log).
const INTERNAL_MESSAGE: &str =
    "internal error in the gateway; its log has the details under this request's x-request-id";

impl GatewayError {
    /// The status this error maps to.
    pub fn status(&self) -> StatusCode {
        match self {
            GatewayError::BadRequest(_) | GatewayError::InvalidJson(_) => StatusCode::BAD_REQUEST,
            GatewayError::Unauthorized => StatusCode::UNAUTHORIZED,
            GatewayError::NotFound(_) => StatusCode::NOT_FOUND,
            GatewayError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            GatewayError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            GatewayError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            GatewayError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            GatewayError::LimitsUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            GatewayError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            GatewayError::Conflict(_) => StatusCode::CONFLICT,
            GatewayError::BudgetExceeded { .. } | GatewayError::PriceUnknown(_) => {
                StatusCode::PAYMENT_REQUIRED
            }
            GatewayError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            GatewayError::Forbidden { .. } => StatusCode::FORBIDDEN,
            GatewayError::Upstream(e) => match e {
                UpstreamError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
                UpstreamError::Status { status, .. } => {
                    StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_GATEWAY)
                }
                UpstreamError::Config(_) => StatusCode::INTERNAL_SERVER_ERROR,
                UpstreamError::Connect { .. }
                | UpstreamError::Tls { .. }
                | UpstreamError::Protocol { .. }
                | UpstreamError::Credential { .. }
                | UpstreamError::TooLarge { .. } => StatusCode::BAD_GATEWAY,
            },
        }
    }

    fn kind_and_code(&self) -> (&'static str, &'static str) {
        match self {
            GatewayError::BadRequest(_) => ("invalid_request_error", "invalid_request"),
            GatewayError::InvalidJson(_) => ("invalid_request_error", "invalid_json"),
            GatewayError::Unauthorized => ("authentication_error", "invalid_api_key"),
            GatewayError::NotFound(_) => ("invalid_request_error", "not_found"),
            GatewayError::MethodNotAllowed(_) => ("invalid_request_error", "method_not_allowed"),
            GatewayError::PayloadTooLarge { .. } => ("invalid_request_error", "payload_too_large"),
            GatewayError::BodyTimeout(_) => ("invalid_request_error", "request_timeout"),
            GatewayError::Internal(_) => ("server_error", "internal_error"),
            GatewayError::LimitsUnavailable => ("server_error", "limits_unavailable"),
            GatewayError::BadGateway(_) => ("upstream_error", "upstream_unavailable"),
            GatewayError::Conflict(_) => ("invalid_request_error", "conflict"),
            GatewayError::BudgetExceeded { .. } => ("insufficient_quota", "budget_exceeded"),
            GatewayError::PriceUnknown(_) => ("insufficient_quota", "price_unknown"),
            GatewayError::RateLimited { .. } => ("rate_limit_error", "rate_limit_exceeded"),
            GatewayError::Forbidden { code, .. } => ("permission_error", code.as_str()),
            GatewayError::Upstream(e) => match e {
                UpstreamError::Timeout { .. } => ("upstream_error", "upstream_timeout"),
                UpstreamError::Tls { .. } => ("upstream_error", "upstream_tls_error"),
                UpstreamError::Connect { .. } => ("upstream_error", "upstream_unreachable"),
                UpstreamError::TooLarge { .. } => ("upstream_error", "upstream_response_too_large"),
                UpstreamError::Protocol { .. } => ("upstream_error", "upstream_protocol_error"),
                UpstreamError::Credential { .. } => ("upstream_error", "upstream_credential_error"),
                UpstreamError::Status { .. } => ("upstream_error", "upstream_error"),
                UpstreamError::Config(_) => ("server_error", "internal_error"),
            },
        }
    }
}

/// An error as it is sent: status, OpenAI-shaped body and headers. Routes that answer in another wire
/// (Anthropic's, see `handlers::wire`) reshape this, so both say the same thing.
#[derive(Debug)]
pub(crate) struct Rendered {
    pub(crate) status: StatusCode,
    pub(crate) headers: http::HeaderMap,
    pub(crate) body: Bytes,
}

impl Rendered {
    fn json(status: StatusCode, body: ErrorBody) -> Rendered {
        Rendered::raw(status, Bytes::from(body.to_json_bytes()))
    }

    fn raw(status: StatusCode, body: Bytes) -> Rendered {
        let mut headers = http::HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Rendered {
            status,
            headers,
            body,
        }
    }
}

impl IntoResponse for Rendered {
    fn into_response(self) -> Response {
        let mut resp = (self.status, self.body).into_response();
        for (name, value) in &self.headers {
            resp.headers_mut().insert(name.clone(), value.clone());
        }
        resp
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        self.render().into_response()
    }
}

impl GatewayError {
    /// The response this error becomes, before it is one.
    pub(crate) fn render(self) -> Rendered {
        let status = self.status();
        if let GatewayError::Upstream(UpstreamError::Status {
            provider,
            status: code,
            body,
            retry_after,
        }) = &self
        {
            // The provider's own error passes through untouched when it is already an error object
            // (OpenAI's or OpenRouter's shape); anything else is wrapped so clients can parse it.
            let mut resp = if ErrorBody::from_slice(body).is_some() {
                Rendered::raw(status, body.clone())
            } else {
                let text = String::from_utf8_lossy(body);
                let snippet: String = text.chars().take(300).collect();
                let message = if snippet.trim().is_empty() {
                    format!("provider `{provider}` answered {code}")
                } else {
                    format!("provider `{provider}` answered {code}: {}", snippet.trim())
                };
                Rendered::json(
                    status,
                    ErrorBody::new(message, "upstream_error", Some("upstream_error")),
                )
            };
            if let Some(wait) = retry_after {
                if let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
                    resp.headers.insert(header::RETRY_AFTER, v);
                }
            }
            return resp;
        }
        let (kind, code) = self.kind_and_code();
        let message = match &self {
            GatewayError::Internal(detail) | GatewayError::Upstream(UpstreamError::Config(detail)) => {
                tracing::error!(error = %detail, "internal error");
                INTERNAL_MESSAGE.to_owned()
            }
            other => other.to_string(),
        };
        let mut resp = Rendered::json(status, ErrorBody::new(message, kind, Some(code)));
        let retry_after = match &self {
            GatewayError::BudgetExceeded { retry_after, .. } => *retry_after,
            GatewayError::RateLimited { retry_after, .. } => Some(*retry_after),
            GatewayError::LimitsUnavailable => Some(1),
            _ => None,
        };
        if let Some(v) = retry_after.and_then(|s| HeaderValue::from_str(&s.to_string()).ok()) {
            resp.headers.insert(header::RETRY_AFTER, v);
        }
        if matches!(self, GatewayError::Unauthorized) {
            resp.headers
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}
