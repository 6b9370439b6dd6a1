//! Single sign-on: OpenID Connect's authorization code flow with PKCE (`openidconnect` crate), as a
//! confidential client. `GET /ui/login/sso` sends the browser to the provider with a fresh state,
//! nonce and PKCE challenge, bound to this browser by a short-lived cookie; `GET /ui/callback` checks
//! the state against that cookie, redeems the code with the PKCE verifier and the client secret,
//! verifies the ID token (signature, issuer, audience, expiry, nonce), maps its roles claim to a
//! moat role and starts a session. The provider's metadata is fetched on first use and kept.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use base64::Engine;
use http::{header, HeaderMap, HeaderValue, StatusCode};
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use serde::Deserialize;
use tokio::sync::OnceCell;

use super::session::Pending;
use crate::config::SsoSettings;
use crate::gateway::Gateway;
use crate::roles::{Operator, Role};
use crate::GatewayError;

/// Largest answer read from the identity provider (metadata, keys, tokens).
const MAX_IDP_RESPONSE: usize = 1024 * 1024;
/// How long a call to the identity provider may take.
const IDP_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub(crate) struct Sso {
    settings: SsoSettings,
    http: IdpHttp,
    metadata: OnceCell<CoreProviderMetadata>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct IdpError(String);

/// The HTTP client `openidconnect` calls: moat's verified TLS, no redirects, a time and size limit.
#[derive(Debug, Clone)]
struct IdpHttp(reqwest::Client);

type IdpFuture<'c> = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<openidconnect::HttpResponse, IdpError>> + Send + 'c>,
>;

impl<'c> openidconnect::AsyncHttpClient<'c> for IdpHttp {
    type Error = IdpError;
    type Future = IdpFuture<'c>;

    fn call(&'c self, request: openidconnect::HttpRequest) -> Self::Future {
        Box::pin(call(self.0.clone(), request))
    }
}

async fn call(
    http: reqwest::Client,
    request: openidconnect::HttpRequest,
) -> Result<openidconnect::HttpResponse, IdpError> {
    let (parts, body) = request.into_parts();
    let resp = http
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await
        .map_err(|e| IdpError(format!("identity provider unreachable: {e}")))?;
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| IdpError(format!("identity provider: {e}")))?;
    if bytes.len() > MAX_IDP_RESPONSE {
        return Err(IdpError("identity provider answer too large".into()));
    }
    let mut out = http::Response::new(bytes.to_vec());
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    Ok(out)
}

impl Sso {
    pub(crate) fn new(settings: &SsoSettings) -> Result<Sso, GatewayError> {
        let tls = moat_upstream::tls::client_config(settings.ca_file.as_deref())?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(IDP_TIMEOUT)
            // The OAuth spec forbids following redirects here: a redirect could carry the code away.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| GatewayError::Internal(format!("single sign-on HTTP client: {e}")))?;
        Ok(Sso {
            settings: settings.clone(),
            http: IdpHttp(http),
            metadata: OnceCell::new(),
        })
    }

    async fn client(
        &self,
    ) -> Result<
        CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
        GatewayError,
    > {
        let metadata = self
            .metadata
            .get_or_try_init(|| async {
                let issuer = IssuerUrl::new(self.settings.issuer.clone()).map_err(bad_config)?;
                CoreProviderMetadata::discover_async(issuer, &self.http)
                    .await
                    .map_err(|e| idp_failure(&format!("discovery: {e}")))
            })
            .await?
            .clone();
        let redirect = RedirectUrl::new(self.settings.redirect_url.clone()).map_err(bad_config)?;
        Ok(CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.settings.client_id.clone()),
            Some(ClientSecret::new(self.settings.client_secret.clone())),
        )
        .set_redirect_uri(redirect))
    }

    /// The strongest role the ID token's roles claim maps to.
    fn role_of(&self, claims: &serde_json::Value) -> Option<Role> {
        let values: Vec<&str> = match &claims[&self.settings.roles_claim] {
            serde_json::Value::Array(items) => items.iter().filter_map(|v| v.as_str()).collect(),
            serde_json::Value::String(s) => s.split_whitespace().collect(),
            _ => Vec::new(),
        };
        Role::strongest(
            self.settings
                .roles
                .iter()
                .filter(|(value, _)| values.contains(&value.as_str()))
                .map(|(_, role)| role.clone()),
        )
    }
}

fn bad_config(e: impl std::fmt::Display) -> GatewayError {
    GatewayError::Internal(format!("single sign-on configuration: {e}"))
}

fn idp_failure(what: &str) -> GatewayError {
    tracing::warn!(error = %what, "single sign-on failed");
    GatewayError::BadGateway(format!("single sign-on failed: {what}"))
}

/// The verified ID token's payload as JSON, for the claims `openidconnect`'s core types do not model
/// (the roles claim). Called only after the token's signature and claims were verified.
fn payload_of(jwt: &str) -> Option<serde_json::Value> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn sso_of(gw: &Gateway) -> Result<&Sso, GatewayError> {
    gw.console
        .sso
        .as_ref()
        .ok_or_else(|| GatewayError::NotFound("single sign-on is not configured ([admin.sso])".into()))
}

/// `GET /ui/login/sso`: off to the identity provider.
pub(crate) async fn start(State(gw): State<Arc<Gateway>>) -> Response {
    let run = async {
        let sso = sso_of(&gw)?;
        let client = sso.client().await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for scope in &sso.settings.scopes {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.url();
        let cookie = gw.console.sessions.start_pending(
            state.secret(),
            Pending {
                pkce_verifier: verifier.secret().clone(),
                nonce: nonce.secret().clone(),
                started: Instant::now(),
            },
        );
        let mut resp = StatusCode::SEE_OTHER.into_response();
        let h = resp.headers_mut();
        h.insert(
            header::LOCATION,
            HeaderValue::from_str(url.as_str()).map_err(|e| GatewayError::Internal(e.to_string()))?,
        );
        h.insert(
            header::SET_COOKIE,
            HeaderValue::from_str(&cookie).map_err(|e| GatewayError::Internal(e.to_string()))?,
        );
        Ok::<_, GatewayError>(resp)
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

#[derive(Debug, Deserialize)]
pub(crate) struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// A small page for the browser (the console is a page, not an API client, at this point).
fn page(status: StatusCode, title: &str, text: &str, set_cookies: &[String], go_on: bool) -> Response {
    // A same-site navigation from this page carries the new `SameSite=Strict` cookie, which the
    // cross-site redirect from the provider would not.
    let refresh = if go_on {
        "<meta http-equiv=\"refresh\" content=\"0;url=/ui/\">"
    } else {
        ""
    };
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title>{refresh}\
         <link rel=\"stylesheet\" href=\"/ui/app.css\"></head><body class=\"notice\"><main><h1>{title}</h1>\
         <p>{text}</p><p><a href=\"/ui/\">Back to the console</a></p></main></body></html>"
    );
    let mut resp = (status, Html(body)).into_response();
    for c in set_cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    super::assets::secure_headers(resp.headers_mut());
    resp
}

/// `GET /ui/callback?code&state`: back from the identity provider.
pub(crate) async fn callback(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Query(q): Query<Callback>,
) -> Response {
    let clear = gw.console.sessions.clear_login_cookie();
    let refuse = |status, text: &str| {
        page(
            status,
            "Sign-in failed",
            text,
            std::slice::from_ref(&clear),
            false,
        )
    };
    let Ok(sso) = sso_of(&gw) else {
        return refuse(StatusCode::NOT_FOUND, "Single sign-on is not configured.");
    };
    if let Some(e) = &q.error {
        tracing::info!(error = %e, "identity provider refused the sign-in");
        return refuse(
            StatusCode::FORBIDDEN,
            "The identity provider did not sign you in.",
        );
    }
    let (Some(code), Some(state)) = (q.code, q.state) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "The identity provider's answer is incomplete.",
        );
    };
    let Some(pending) = gw.console.sessions.take_pending(&headers, &state, Instant::now()) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "This sign-in was not started here, or took too long. Start again.",
        );
    };
    let operator = match redeem(sso, code, pending).await {
        Ok(Some(op)) => op,
        Ok(None) => {
            return refuse(
                StatusCode::FORBIDDEN,
                "Your account has no role in moat. Ask an administrator to map one of your groups.",
            )
        }
        Err(e) => {
            tracing::warn!(error = %e, "single sign-on failed");
            return refuse(
                StatusCode::BAD_GATEWAY,
                "The sign-in could not be completed. Try again.",
            );
        }
    };
    match super::login::start_session(&gw, operator, "single sign-on") {
        Ok((cookie, _)) => page(
            StatusCode::OK,
            "Signed in",
            "Opening the console…",
            &[cookie, clear],
            true,
        ),
        Err(e) => e.into_response(),
    }
}

/// Redeems the code and verifies the ID token; `None` when the person maps to no role.
async fn redeem(sso: &Sso, code: String, pending: Pending) -> Result<Option<Operator>, GatewayError> {
    let client = sso.client().await?;
    let token = client
        .exchange_code(AuthorizationCode::new(code))
        .map_err(bad_config)?
        .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier))
        .request_async(&sso.http)
        .await
        .map_err(|e| idp_failure(&format!("code exchange: {e}")))?;
    let id_token = token
        .id_token()
        .ok_or_else(|| idp_failure("no ID token in the answer"))?;
    let claims = id_token
        .claims(&client.id_token_verifier(), &Nonce::new(pending.nonce))
        .map_err(|e| idp_failure(&format!("ID token: {e}")))?;
    let payload = payload_of(&id_token.to_string()).ok_or_else(|| idp_failure("ID token payload"))?;
    let who = claims
        .email()
        .map(|e| e.as_str().to_string())
        .or_else(|| claims.preferred_username().map(|u| u.as_str().to_string()))
        .unwrap_or_else(|| claims.subject().as_str().to_string());
    Ok(sso.role_of(&payload).map(|role| Operator {
        actor: format!("sso:{who}"),
        role,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sso(roles: &[(&str, &str)]) -> Sso {
        Sso::new(&SsoSettings {
            issuer: "https://idp.example".into(),
            client_id: "moatd".into(),
            client_secret: "s".into(),
            redirect_url: "https://moat.example/ui/callback".into(),
            roles_claim: "groups".into(),
            roles: roles
                .iter()
                .map(|(v, r)| (v.to_string(), Role::parse(r, None).unwrap()))
                .collect(),
            scopes: vec![],
            ca_file: None,
        })
        .unwrap()
    }

    #[test]
    fn the_roles_claim_maps_to_the_strongest_role() {
        let s = sso(&[
            ("admins", "admin"),
            ("leads", "team_admin:research"),
            ("all", "viewer"),
        ]);
        let claims = |v: serde_json::Value| serde_json::json!({ "groups": v });
        assert_eq!(
            s.role_of(&claims(serde_json::json!(["all", "leads"]))),
            Some(Role::TeamAdmin {
                team: "research".into()
            })
        );
        assert_eq!(
            s.role_of(&claims(serde_json::json!(["all", "admins"]))),
            Some(Role::Admin)
        );
        assert_eq!(
            s.role_of(&claims(serde_json::json!("all other"))),
            Some(Role::Viewer)
        );
        assert_eq!(s.role_of(&claims(serde_json::json!(["nobody"]))), None);
        assert_eq!(s.role_of(&serde_json::json!({})), None);
    }

    #[test]
    fn a_jwt_payload_is_read_back() {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"groups":["a"]}"#);
        assert_eq!(payload_of(&format!("h.{payload}.s")).unwrap()["groups"][0], "a");
        assert!(payload_of("garbage").is_none());
    }
}
