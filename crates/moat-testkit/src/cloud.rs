//! The identity services behind the enterprise clouds, as the emulator plays them: Microsoft Entra
//! ID's token endpoint (client credentials), Google's OAuth token endpoint (a service account's
//! signed JWT, verified against its public key), and AWS STS (`AssumeRoleWithWebIdentity`), plus the
//! state they share with the provider routes: which tokens and temporary keys were issued.
//!
//! Paths: `POST /{tenant}/oauth2/v2.0/token` (Entra), `POST /token` (Google, the `token_uri` of
//! [`service_account_json`]), `POST /` with `Action=AssumeRoleWithWebIdentity` (STS); and
//! `POST /_emulator/directive` (a JSON directive, or `null`), which sets the emulator's default
//! directive as `Emulator::set_directive` does, for test scripts.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method, Response, StatusCode};
use serde_json::{json, Value};

use crate::server::Shared;
use crate::ResponseBody;

/// The private half of the test service account (PKCS#8, as Google's key files carry it). A
/// throwaway key made for these tests; it protects nothing.
pub const SERVICE_ACCOUNT_PRIVATE_KEY: &str = include_str!("fixtures/sa_private.pem");
const SERVICE_ACCOUNT_PUBLIC_KEY: &str = include_str!("fixtures/sa_public.pem");

/// A Google service-account key file for the test account, whose tokens come from `token_uri`.
pub fn service_account_json(client_email: &str, token_uri: &str) -> String {
    json!({
        "type": "service_account",
        "project_id": "moat-test",
        "private_key_id": "test-key-1",
        "private_key": SERVICE_ACCOUNT_PRIVATE_KEY,
        "client_email": client_email,
        "client_id": "1234567890",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
    })
    .to_string()
}

/// An Entra application the token endpoint accepts.
#[derive(Debug, Clone, Default)]
pub struct EntraApp {
    pub tenant_id: String,
    pub client_id: String,
    /// Accepted as `client_secret`, or as the `client_assertion` of a federated credential.
    pub secret: String,
}

/// AWS identities the emulator accepts: long-term keys, and a role assumable with a web identity.
#[derive(Debug, Clone, Default)]
pub struct AwsAccount {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub region: String,
    /// `(role ARN, web identity token)` that STS exchanges for temporary keys.
    pub web_identity: Option<(String, String)>,
}

/// Credentials issued so far.
#[derive(Debug, Default)]
pub(crate) struct Issued {
    /// Bearer token → expiry.
    tokens: Mutex<HashMap<String, Instant>>,
    /// Temporary AWS access key id → (secret, session token, expiry).
    aws_keys: Mutex<HashMap<String, (String, String, Instant)>>,
    pub(crate) token_requests: AtomicU64,
}

impl Issued {
    fn mint(&self, prefix: &str, lifetime: Duration) -> String {
        let n = self.token_requests.fetch_add(1, Ordering::SeqCst) + 1;
        let token = format!("{prefix}-{n}-{}", std::process::id());
        self.tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(token.clone(), Instant::now() + lifetime);
        token
    }

    /// True when `token` was issued here and has not expired.
    pub(crate) fn bearer_valid(&self, token: &str) -> bool {
        self.tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(token)
            .is_some_and(|exp| *exp > Instant::now())
    }

    /// The secret and session token of unexpired temporary keys.
    pub(crate) fn aws_temp(&self, key_id: &str) -> Option<(String, String)> {
        self.aws_keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key_id)
            .filter(|(_, _, exp)| *exp > Instant::now())
            .map(|(s, t, _)| (s.clone(), t.clone()))
    }
}

/// Bearer token from `Authorization`.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// Answers a token-endpoint request; `None` leaves the request to the other routes.
pub(crate) fn route(
    shared: &Shared,
    method: &Method,
    path: &str,
    body: &Bytes,
) -> Option<Response<ResponseBody>> {
    if method != Method::POST {
        return None;
    }
    if path == "/_emulator/directive" {
        // A test script's way to set `Emulator::set_directive` (the SDKs of wires whose requests
        // cannot carry an `emulate` member script the emulator through this).
        let directive = serde_json::from_slice::<Value>(body)
            .ok()
            .filter(|v| !v.is_null());
        shared.set_default_directive(directive);
        return Some(crate::handler::json(StatusCode::OK, &json!({"ok": true})));
    }
    let form: HashMap<String, String> = form_urlencoded::parse(body).into_owned().collect();
    if let Some(tenant) = path
        .strip_suffix("/oauth2/v2.0/token")
        .map(|t| t.trim_start_matches('/'))
    {
        return Some(entra_token(shared, tenant, &form));
    }
    if path == "/token" && shared.google.is_some() {
        return Some(google_token(shared, &form));
    }
    if path == "/" && form.get("Action").map(String::as_str) == Some("AssumeRoleWithWebIdentity") {
        return Some(sts(shared, &form));
    }
    None
}

fn oauth_error(status: StatusCode, code: &str, description: &str) -> Response<ResponseBody> {
    crate::handler::json(status, &json!({"error": code, "error_description": description}))
}

fn token_answer(token: &str, lifetime: Duration) -> Response<ResponseBody> {
    crate::handler::json(
        StatusCode::OK,
        &json!({"token_type": "Bearer", "expires_in": lifetime.as_secs(), "access_token": token}),
    )
}

fn entra_token(shared: &Shared, tenant: &str, form: &HashMap<String, String>) -> Response<ResponseBody> {
    let Some(app) = &shared.entra else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "no application is registered",
        );
    };
    let get = |k: &str| form.get(k).map(String::as_str);
    if tenant != app.tenant_id {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_tenant",
            "AADSTS90002: Tenant not found.",
        );
    }
    if get("grant_type") != Some("client_credentials")
        || get("scope") != Some("https://cognitiveservices.azure.com/.default")
    {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "AADSTS70011: The provided request must include a valid scope.",
        );
    }
    let proof = match (
        get("client_secret"),
        get("client_assertion_type"),
        get("client_assertion"),
    ) {
        (Some(s), None, None) => s,
        (None, Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer"), Some(a)) => a,
        _ => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "AADSTS900144: client credential missing.",
            )
        }
    };
    if get("client_id") != Some(app.client_id.as_str()) || proof != app.secret {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "AADSTS7000215: Invalid client secret provided.",
        );
    }
    let token = shared.issued.mint("entra", shared.token_lifetime);
    token_answer(&token, shared.token_lifetime)
}

#[derive(serde::Deserialize)]
struct GoogleClaims {
    iss: String,
    scope: String,
}

fn google_token(shared: &Shared, form: &HashMap<String, String>) -> Response<ResponseBody> {
    let (Some(email), Some(token_uri)) = (&shared.google, &shared.google_token_uri) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "no service account is registered",
        );
    };
    if form.get("grant_type").map(String::as_str) != Some("urn:ietf:params:oauth:grant-type:jwt-bearer") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Invalid grant_type",
        );
    }
    let Some(assertion) = form.get("assertion") else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Missing required parameter: assertion",
        );
    };
    let Ok(key) = jsonwebtoken::DecodingKey::from_rsa_pem(SERVICE_ACCOUNT_PUBLIC_KEY.as_bytes()) else {
        return oauth_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "bad fixture key",
        );
    };
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    // Google wants its token endpoint's fixed URL as the audience (google-auth always sends it);
    // the file's own `token_uri` is accepted too.
    validation.set_audience(&[token_uri.as_str(), "https://oauth2.googleapis.com/token"]);
    validation.set_required_spec_claims(&["exp", "iat", "aud"]);
    match jsonwebtoken::decode::<GoogleClaims>(assertion, &key, &validation) {
        Ok(data)
            if &data.claims.iss == email
                && data
                    .claims
                    .scope
                    .split(' ')
                    .any(|s| s == "https://www.googleapis.com/auth/cloud-platform") =>
        {
            let token = shared.issued.mint("ya29", shared.token_lifetime);
            token_answer(&token, shared.token_lifetime)
        }
        Ok(_) => oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "Invalid issuer or scope",
        ),
        Err(_) => oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "Invalid JWT Signature."),
    }
}

fn sts(shared: &Shared, form: &HashMap<String, String>) -> Response<ResponseBody> {
    let xml_error = |status: StatusCode, code: &str, message: &str| {
        let body = format!("<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error></ErrorResponse>");
        xml(status, body)
    };
    let Some((role, token)) = shared.aws.as_ref().and_then(|a| a.web_identity.clone()) else {
        return xml_error(StatusCode::FORBIDDEN, "AccessDenied", "no role is assumable here");
    };
    let get = |k: &str| form.get(k).map(String::as_str);
    if get("RoleArn") != Some(role.as_str()) || get("RoleSessionName").is_none_or(str::is_empty) {
        return xml_error(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "Not authorized to perform sts:AssumeRoleWithWebIdentity",
        );
    }
    if get("WebIdentityToken") != Some(token.as_str()) {
        return xml_error(
            StatusCode::BAD_REQUEST,
            "InvalidIdentityToken",
            "Couldn't retrieve verification key from your identity provider",
        );
    }
    let n = shared.issued.token_requests.fetch_add(1, Ordering::SeqCst) + 1;
    let (id, secret, session) = (
        format!("ASIATEMP{n:08}"),
        format!("tempsecret{n}"),
        format!("session{n}"),
    );
    let lifetime = shared.token_lifetime;
    shared
        .issued
        .aws_keys
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(
            id.clone(),
            (secret.clone(), session.clone(), Instant::now() + lifetime),
        );
    let expiration = time::OffsetDateTime::now_utc() + lifetime;
    let expiration = expiration
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let body = format!(
        "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\
<AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>{id}</AccessKeyId>\
<SecretAccessKey>{secret}</SecretAccessKey><SessionToken>{session}</SessionToken>\
<Expiration>{expiration}</Expiration></Credentials><AssumedRoleUser><Arn>{role}/moatd</Arn>\
</AssumedRoleUser></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>"
    );
    xml(StatusCode::OK, body)
}

fn xml(status: StatusCode, body: String) -> Response<ResponseBody> {
    use http_body_util::{BodyExt, Full};
    let mut response = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|e| match e {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/xml"),
    );
    response
}

/// The answer text for a prompt: scripted, or an echo of the last user text.
pub(crate) fn answer_text(last_user_text: &str, scripted: Option<&str>) -> String {
    scripted.map_or_else(|| format!("You said: {last_user_text}"), str::to_owned)
}

/// The JSON of a request body, or `None` when it is not an object.
pub(crate) fn object(body: &Bytes) -> Option<Value> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .filter(Value::is_object)
}
