//! Credentials that are more than a fixed header: OAuth bearer tokens fetched and refreshed before
//! they expire (Azure's Entra ID client credentials, a Google service account's signed JWT), and
//! AWS SigV4 signatures computed over each request (Bedrock).
//!
//! A provider with such a credential carries one [`RequestAuth`] in its settings; the client asks
//! it for the headers of every attempt, just before sending. Secrets never appear in errors, logs
//! or [`RequestAuth::describe`], which says only where the credential comes from (for
//! `moatd check-config`).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use http::{HeaderName, HeaderValue};

mod aws;
mod entra;
mod google;
mod sigv4;

pub use aws::{AwsCredentialSource, AwsCredentials};
pub use entra::{EntraCredentials, EntraSecret};
pub use google::ServiceAccount;
pub use sigv4::SigV4;

/// What an authenticator sees of one request.
#[derive(Debug)]
pub struct SignInput<'a> {
    pub method: &'a str,
    pub url: &'a reqwest::Url,
    /// Headers that will be sent and must be covered by a signature (content type, …).
    pub headers: &'a [(HeaderName, HeaderValue)],
    pub body: &'a [u8],
}

/// A credential that produces headers per request.
pub trait RequestAuth: Send + Sync + fmt::Debug {
    /// The headers that authenticate this request (a bearer token, or a signature and its date).
    fn authorize<'a>(
        &'a self,
        request: SignInput<'a>,
    ) -> BoxFuture<'a, Result<Vec<(HeaderName, HeaderValue)>, CredentialError>>;

    /// Where the credential comes from, for `check-config`; never the secret itself.
    fn describe(&self) -> String;
}

/// Why a credential could not be produced. Messages name files, variables and endpoints, never a
/// secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CredentialError(pub String);

/// Where token endpoints are reached from: TLS settings and limits shared by every token fetch.
#[derive(Debug, Clone)]
pub struct TokenClient {
    client: reqwest::Client,
}

/// The largest token-endpoint answer read (tokens are a few KB).
const MAX_TOKEN_RESPONSE: usize = 64 * 1024;
/// How long one token fetch may take in all.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(30);

impl TokenClient {
    /// A client that verifies TLS like the provider's own (`ca_file` adds trust anchors).
    pub fn new(ca_file: Option<&std::path::Path>) -> Result<TokenClient, CredentialError> {
        let tls = crate::tls::client_config(ca_file).map_err(|e| CredentialError(e.to_string()))?;
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(TOKEN_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("moatd/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CredentialError(format!("token client: {e}")))?;
        Ok(TokenClient { client })
    }

    /// POSTs a form to `url` and returns the body of a 2xx answer (bounded). Error answers are
    /// reported by status and the endpoint's own error code, never by echoing the request.
    pub(crate) async fn post_form(
        &self,
        url: &str,
        form: &[(&str, &str)],
    ) -> Result<Vec<u8>, CredentialError> {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let resp = self
            .client
            .post(url)
            .header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(http::header::ACCEPT, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| CredentialError(format!("token endpoint {}: {}", host_of(url), transport(&e))))?;
        let status = resp.status();
        let mut bytes = Vec::new();
        let mut resp = resp;
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| CredentialError(format!("token endpoint {}: {}", host_of(url), transport(&e))))?
        {
            if bytes.len() + chunk.len() > MAX_TOKEN_RESPONSE {
                return Err(CredentialError(format!(
                    "token endpoint {}: answer larger than {MAX_TOKEN_RESPONSE} bytes",
                    host_of(url)
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            return Err(CredentialError(format!(
                "token endpoint {} refused the credential ({status}{})",
                host_of(url),
                oauth_error(&bytes).map(|e| format!(": {e}")).unwrap_or_default()
            )));
        }
        Ok(bytes)
    }
}

fn transport(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "unreachable"
    } else {
        "the exchange failed"
    }
}

/// Scheme and host of a URL, for messages (never its query).
fn host_of(url: &str) -> String {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(|h| format!("{}://{h}", u.scheme())))
        .unwrap_or_else(|| "(unparseable URL)".to_owned())
}

/// An OAuth error answer's `error` code (`invalid_client`, …), which names the problem without
/// echoing anything secret; descriptions are left out because some endpoints quote the request.
fn oauth_error(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let code = v.get("error")?.as_str()?;
    code.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_')
        .then(|| code.to_owned())
}

/// An access token and when it stops being usable.
#[derive(Clone)]
pub struct Token {
    pub value: String,
    pub expires: Instant,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

/// How long before its expiry a token is replaced: requests in flight never carry one that dies
/// on the way, and a slow token endpoint has minutes to answer.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// Reads an OAuth token answer (`{"access_token","expires_in","token_type"}`).
pub(crate) fn parse_token(body: &[u8], now: Instant) -> Result<Token, CredentialError> {
    let v: serde_json::Value = serde_json::from_slice(body)
        .map_err(|_| CredentialError("token endpoint sent something other than JSON".into()))?;
    let value = v
        .get("access_token")
        .and_then(serde_json::Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| CredentialError("token endpoint's answer has no access_token".into()))?;
    // Some endpoints send the lifetime as a string.
    let secs = match v.get("expires_in") {
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.parse().ok(),
        _ => None,
    }
    .unwrap_or(3600);
    Ok(Token {
        value: value.to_owned(),
        expires: now + Duration::from_secs(secs),
    })
}

/// A token cached until [`REFRESH_MARGIN`] before it expires, fetched by one caller at a time (the
/// others wait for it rather than stampeding the token endpoint).
#[derive(Debug, Default)]
pub(crate) struct TokenCache {
    token: tokio::sync::Mutex<Option<Token>>,
}

impl TokenCache {
    pub(crate) async fn get<F>(&self, fetch: F) -> Result<String, CredentialError>
    where
        F: std::future::Future<Output = Result<Token, CredentialError>>,
    {
        let mut slot = self.token.lock().await;
        let now = Instant::now();
        if let Some(t) = slot.as_ref() {
            if t.expires > now + REFRESH_MARGIN.min(lifetime_tenth(t, now)) {
                return Ok(t.value.clone());
            }
        }
        let token = fetch.await?;
        let value = token.value.clone();
        *slot = Some(token);
        Ok(value)
    }
}

/// A short-lived token (under an hour) is refreshed when a tenth of its life is left at most, so a
/// five-minute token is not refreshed on every request.
fn lifetime_tenth(t: &Token, now: Instant) -> Duration {
    t.expires.saturating_duration_since(now) / 10
}

/// `Authorization: Bearer <token>`, marked sensitive.
pub(crate) fn bearer(token: &str) -> Result<(HeaderName, HeaderValue), CredentialError> {
    let mut v = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| CredentialError("the access token has characters not allowed in a header".into()))?;
    v.set_sensitive(true);
    Ok((http::header::AUTHORIZATION, v))
}

/// A bearer-token credential: a token source plus its cache.
#[derive(Debug)]
pub struct OAuth<S> {
    source: S,
    cache: TokenCache,
}

/// Something that can fetch a fresh access token.
pub trait TokenSource: Send + Sync + fmt::Debug {
    fn fetch(&self) -> BoxFuture<'_, Result<Token, CredentialError>>;
    fn describe(&self) -> String;
}

impl<S: TokenSource> OAuth<S> {
    pub fn new(source: S) -> Arc<Self> {
        Arc::new(OAuth {
            source,
            cache: TokenCache::default(),
        })
    }
}

impl<S: TokenSource> RequestAuth for OAuth<S> {
    fn authorize<'a>(
        &'a self,
        _request: SignInput<'a>,
    ) -> BoxFuture<'a, Result<Vec<(HeaderName, HeaderValue)>, CredentialError>> {
        Box::pin(async move {
            let token = self.cache.get(self.source.fetch()).await?;
            Ok(vec![bearer(&token)?])
        })
    }

    fn describe(&self) -> String {
        self.source.describe()
    }
}
