//! One provider's HTTP client: connection pooling (HTTP/1.1 and HTTP/2), verified TLS, the provider's
//! credential, time-outs for connect and first byte, and retries with back-off on the same target.

use std::path::PathBuf;
use std::time::Duration;
use tracing::Instrument;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use moat_policy::retry::{RetryDecision, RetryPolicy};

use crate::{AuthStyle, Phase, UpstreamError};

/// How long each phase of an upstream exchange may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP connect plus TLS handshake.
    pub connect: Duration,
    /// Request sent → response headers. Generous by default: a non-streamed completion only answers
    /// once the whole text is generated.
    pub first_byte: Duration,
    /// Longest silence between two body pieces. Providers send keep-alive comments while thinking, so a
    /// longer silence means a stuck stream.
    pub idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            first_byte: Duration::from_secs(300),
            idle: Duration::from_secs(120),
        }
    }
}

/// Everything needed to talk to one provider.
#[derive(Debug, Clone)]
pub struct UpstreamSettings {
    /// The provider's configured name, used in error messages and logs.
    pub name: String,
    /// Base URL without a trailing slash, e.g. `https://openrouter.ai/api/v1`.
    pub base_url: String,
    /// Sent as `Authorization: Bearer …` (or as [`AuthStyle`] says); marked sensitive so no debug
    /// output shows it.
    pub api_key: Option<String>,
    /// How the key is presented: the provider kind's choice (`ProviderAdapter::auth_style`).
    pub auth_style: AuthStyle,
    /// Extra trust anchors for this provider only.
    pub ca_file: Option<PathBuf>,
    pub timeouts: Timeouts,
    pub retry: RetryPolicy,
    /// Largest non-streamed response body accepted (a bound on memory per request).
    pub max_response_bytes: usize,
    /// Largest single SSE event (or NDJSON line, for a translated wire) of a streamed answer; a longer
    /// one ends the stream with an error event (a bound on memory per stream).
    pub max_event_bytes: usize,
    /// Send no request through an HTTP(S) proxy from the environment. Set for loopback providers so a
    /// proxy meant for the internet never sees local traffic.
    pub no_proxy: bool,
    /// A credential computed per request (OAuth bearer tokens, SigV4 signatures), applied after the
    /// static headers; `None` for providers with a plain key.
    pub request_auth: Option<std::sync::Arc<dyn crate::credentials::RequestAuth>>,
}

impl UpstreamSettings {
    /// Settings with defaults for everything but the name and URL.
    pub fn new(name: impl Into<String>, base_url: impl Into<String>) -> Self {
        let base_url: String = base_url.into();
        UpstreamSettings {
            name: name.into(),
            base_url: base_url.trim_end_matches('/').to_string(),
            api_key: None,
            auth_style: AuthStyle::Bearer,
            ca_file: None,
            timeouts: Timeouts::default(),
            retry: RetryPolicy::default(),
            max_response_bytes: 64 * 1024 * 1024,
            max_event_bytes: moat_wire::sse::DEFAULT_MAX_EVENT,
            no_proxy: false,
            request_auth: None,
        }
    }
}

/// A provider endpoint with its own connection pools: one per worker (see [`crate::worker`]), so a
/// thread-per-core server never drives a connection from another core.
#[derive(Debug, Clone)]
pub struct Upstream {
    settings: UpstreamSettings,
    clients: std::sync::Arc<[reqwest::Client]>,
    /// Credential and protocol headers sent with every request.
    auth: Vec<(HeaderName, HeaderValue)>,
    /// `base_url + path` already parsed, per path: a provider is called on a handful of paths, and
    /// parsing the URL again for every request showed up in profiles.
    urls: std::sync::Arc<std::sync::RwLock<Vec<(String, reqwest::Url)>>>,
}

impl Upstream {
    /// Builds the client. Fails on a bad CA file or an API key that cannot be a header value.
    pub fn new(settings: UpstreamSettings) -> Result<Upstream, UpstreamError> {
        let tls = crate::tls::client_config(settings.ca_file.as_deref())?;
        let clients = (0..crate::worker::count())
            .map(|_| client(&settings, tls.clone()))
            .collect::<Result<_, _>>()?;
        let mut auth = Vec::new();
        if let Some(key) = &settings.api_key {
            auth.push(credential_header(&settings, key)?);
        }
        auth.extend(settings.auth_style.protocol_headers());
        Ok(Upstream {
            settings,
            clients,
            auth,
            urls: Default::default(),
        })
    }

    /// The current worker's pool.
    fn client(&self) -> &reqwest::Client {
        let i = crate::worker::current() % self.clients.len().max(1);
        &self.clients[i]
    }

    /// The header carrying `key` the way this provider wants it (for a team's own key, sent in
    /// `extra_headers`, which then replaces the configured one).
    pub fn credential_header(&self, key: &str) -> Result<(HeaderName, HeaderValue), UpstreamError> {
        credential_header(&self.settings, key)
    }

    /// The parsed URL for `path`, from the cache when it has been seen before.
    fn url(&self, path: &str) -> Result<reqwest::Url, UpstreamError> {
        if let Ok(urls) = self.urls.read() {
            if let Some((_, url)) = urls.iter().find(|(p, _)| p == path) {
                return Ok(url.clone());
            }
        }
        let text = format!("{}{}", self.settings.base_url, path);
        let url = reqwest::Url::parse(&text).map_err(|e| {
            UpstreamError::Config(format!(
                "provider `{}`: bad URL {text:?}: {e}",
                self.settings.name
            ))
        })?;
        // Bounded: only a few distinct paths exist, but never let a caller grow this without limit.
        if let Ok(mut urls) = self.urls.write() {
            if urls.len() < 16 && !urls.iter().any(|(p, _)| p == path) {
                urls.push((path.to_owned(), url.clone()));
            }
        }
        Ok(url)
    }

    /// Every credential a request carries: the provider's key, a team's key sent in its place
    /// (`extra_headers`), and a credential computed for this request (`signed`: an OAuth token, a
    /// SigV4 authorization and session token).
    fn credentials<'a>(
        &'a self,
        extra_headers: &'a HeaderMap,
        signed: &'a [(HeaderName, HeaderValue)],
    ) -> Vec<&'a str> {
        let mut out: Vec<&str> = self.settings.api_key.iter().map(String::as_str).collect();
        let (own_header, _) = self.settings.auth_style.credential("");
        let carries = |name: &HeaderName| {
            name == http::header::AUTHORIZATION
                || *name == own_header
                || name.as_str() == "x-api-key"
                || name.as_str().contains("token")
        };
        let extra = extra_headers.iter().filter(|(n, _)| carries(n));
        let computed = signed.iter().filter(|(n, _)| carries(n)).map(|(n, v)| (n, v));
        for (_, value) in extra.chain(computed) {
            if let Ok(text) = value.to_str() {
                out.push(text.trim());
                if let Some(token) = text.strip_prefix("Bearer ") {
                    out.push(token.trim());
                }
            }
        }
        out
    }

    /// This provider's settings.
    pub fn settings(&self) -> &UpstreamSettings {
        &self.settings
    }

    /// One attempt: POST `body` (or GET when `body` is `None`) to `base_url + path`. Returns the
    /// response once its headers are in and its status is 2xx; a non-2xx status becomes
    /// [`UpstreamError::Status`] with the (bounded) body read.
    pub async fn send(
        &self,
        path: &str,
        body: Option<Bytes>,
        stream: bool,
        extra_headers: &HeaderMap,
    ) -> Result<reqwest::Response, UpstreamError> {
        let url = self.url(path)?;
        let signed = self.request_auth(&url, body.as_deref(), extra_headers).await?;
        let mut req = match body {
            Some(body) => self
                .client()
                .post(url)
                .header(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )
                .body(body),
            None => self.client().get(url),
        };
        let accept = if stream {
            "text/event-stream"
        } else {
            "application/json"
        };
        req = req.header(http::header::ACCEPT, HeaderValue::from_static(accept));
        for (name, value) in extra_headers {
            req = req.header(name, value.clone());
        }
        // A caller-supplied credential (a team's own key, in the header `credential_header` built
        // for this provider) replaces the provider's shared one.
        for (name, value) in self.auth.iter().filter(|(n, _)| !extra_headers.contains_key(n)) {
            req = req.header(name, value.clone());
        }
        for (name, value) in &signed {
            req = req.header(name, value.clone());
        }
        let first_byte = self.settings.timeouts.first_byte;
        let resp = match tokio::time::timeout(first_byte, req.send()).await {
            Err(_) => {
                return Err(UpstreamError::Timeout {
                    provider: self.settings.name.clone(),
                    phase: Phase::FirstByte,
                    after: first_byte,
                })
            }
            Ok(Err(e)) => {
                return Err(UpstreamError::from_transport(
                    &self.settings.name,
                    &e,
                    self.settings.timeouts.connect,
                ))
            }
            Ok(Ok(resp)) => resp,
        };
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let retry_after = resp
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(parse_retry_after);
        // Error bodies are small; cap them anyway so a hostile upstream cannot make us buffer much.
        let body = crate::relay::read_capped(resp, &self.settings, 64 * 1024)
            .await
            .unwrap_or_default();
        // A provider may quote the credential it was sent (a 401 echoing the `Authorization` header):
        // that body goes on to moatd's client and into logs, so the credential comes out first.
        let body = scrub_credentials(body, &self.credentials(extra_headers, &signed));
        Err(UpstreamError::Status {
            provider: self.settings.name.clone(),
            status: status.as_u16(),
            body,
            retry_after,
        })
    }

    /// The per-request credential's headers (none without one, or when the caller brought its own
    /// `Authorization`, a team's key). A credential that cannot be produced fails the attempt.
    async fn request_auth(
        &self,
        url: &reqwest::Url,
        body: Option<&[u8]>,
        extra_headers: &HeaderMap,
    ) -> Result<Vec<(HeaderName, HeaderValue)>, UpstreamError> {
        let Some(auth) = &self.settings.request_auth else {
            return Ok(Vec::new());
        };
        // A caller's own credential (a team's key) replaces the provider's, in either header.
        let (own_header, _) = self.settings.auth_style.credential("");
        if extra_headers.contains_key(http::header::AUTHORIZATION) || extra_headers.contains_key(&own_header)
        {
            return Ok(Vec::new());
        }
        let json = [(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )];
        let input = crate::credentials::SignInput {
            method: if body.is_some() { "POST" } else { "GET" },
            url,
            headers: if body.is_some() { &json } else { &[] },
            body: body.unwrap_or_default(),
        };
        auth.authorize(input)
            .await
            .map_err(|e| UpstreamError::Credential {
                provider: self.settings.name.clone(),
                detail: e.0,
            })
    }

    /// [`Upstream::send`] with retries on retryable failures, waiting as the retry policy says (and as
    /// the provider's `Retry-After` asks, within bounds). Returns the last error when attempts run out.
    pub async fn send_with_retries(
        &self,
        path: &str,
        body: Option<Bytes>,
        stream: bool,
        extra_headers: &HeaderMap,
    ) -> Result<reqwest::Response, UpstreamError> {
        let mut attempt = 0u32;
        loop {
            // One span per HTTP try, a child of whatever span the caller runs this in.
            let span = tracing::info_span!(
                target: "moat::request",
                "http try",
                otel.name = format!("POST {path}"),
                otel.kind = "client",
                otel.status_code = tracing::field::Empty,
                moat.try = attempt,
                http.response.status_code = tracing::field::Empty,
                error.type = tracing::field::Empty,
            );
            let sent = self
                .send(path, body.clone(), stream, extra_headers)
                .instrument(span.clone())
                .await;
            match &sent {
                Ok(resp) => span.record("http.response.status_code", resp.status().as_u16()),
                Err(err) => {
                    if let UpstreamError::Status { status, .. } = err {
                        span.record("http.response.status_code", status);
                    }
                    span.record("error.type", err.error_type());
                    span.record("otel.status_code", "ERROR")
                }
            };
            match sent {
                Ok(resp) => return Ok(resp),
                Err(err) if err.is_retryable() => {
                    match self
                        .settings
                        .retry
                        .decide(attempt, err.retry_after(), cheap_random())
                    {
                        RetryDecision::RetryAfter(wait) => {
                            metrics::counter!("moat_upstream_retries_total", "provider" => self.settings.name.clone())
                                .increment(1);
                            tracing::debug!(provider = %self.settings.name, attempt, ?wait, error = %err, "retrying");
                            tokio::time::sleep(wait).await;
                            attempt += 1;
                        }
                        RetryDecision::NextTarget => return Err(err),
                    }
                }
                Err(err) => return Err(err),
            }
        }
    }
}

/// Replaces every occurrence of each credential in `body` (as sent, and JSON-escaped with `\/`) with
/// `[REDACTED]`. Credentials shorter than 4 bytes are left alone: replacing them would garble the
/// body and they protect nothing.
pub fn scrub_credentials(body: Bytes, credentials: &[&str]) -> Bytes {
    let mut out: Option<Vec<u8>> = None;
    for credential in credentials.iter().filter(|c| c.len() >= 4) {
        let escaped = credential.replace('/', "\\/");
        for form in [credential.as_bytes(), escaped.as_bytes()] {
            let current = out.as_deref().unwrap_or(&body);
            if memchr::memmem::find(current, form).is_none() {
                continue;
            }
            let mut next = Vec::with_capacity(current.len());
            let mut at = 0;
            for i in memchr::memmem::find_iter(current, form) {
                if i < at {
                    continue;
                }
                next.extend_from_slice(&current[at..i]);
                next.extend_from_slice(b"[REDACTED]");
                at = i + form.len();
            }
            next.extend_from_slice(&current[at..]);
            out = Some(next);
        }
    }
    out.map_or(body, Bytes::from)
}

/// `key` as the credential header of `settings.auth_style`, marked sensitive.
/// One connection pool for `settings`.
fn client(settings: &UpstreamSettings, tls: rustls::ClientConfig) -> Result<reqwest::Client, UpstreamError> {
    let mut builder = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .connect_timeout(settings.timeouts.connect)
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_nodelay(true)
        .http2_adaptive_window(true)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("moatd/", env!("CARGO_PKG_VERSION")));
    if settings.no_proxy {
        builder = builder.no_proxy();
    }
    builder
        .build()
        .map_err(|e| UpstreamError::Config(format!("provider `{}`: HTTP client: {e}", settings.name)))
}

fn credential_header(
    settings: &UpstreamSettings,
    key: &str,
) -> Result<(HeaderName, HeaderValue), UpstreamError> {
    let (name, text) = settings.auth_style.credential(key);
    let mut value = HeaderValue::from_str(&text).map_err(|_| {
        UpstreamError::Config(format!(
            "provider `{}`: api_key contains characters not allowed in a header",
            settings.name
        ))
    })?;
    value.set_sensitive(true);
    Ok((name, value))
}

/// Headers a client may send that providers act on and that carry no credential (OpenRouter's app
/// attribution). Everything else from the client, above all its `Authorization`, stays with us.
pub const FORWARDED_HEADERS: [HeaderName; 2] = [
    HeaderName::from_static("http-referer"),
    HeaderName::from_static("x-title"),
];

/// `Retry-After` as delta-seconds. (HTTP-dates are rare from LLM providers and are ignored, which
/// falls back to our own back-off.)
fn parse_retry_after(value: &HeaderValue) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    text.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
}

/// Jitter source: not cryptographic, just different per call so retrying clients spread out.
fn cheap_random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        assert_eq!(
            parse_retry_after(&HeaderValue::from_static("3")),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            parse_retry_after(&HeaderValue::from_static("0.5")),
            Some(Duration::from_millis(500))
        );
        assert_eq!(
            parse_retry_after(&HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT")),
            None
        );
        assert_eq!(parse_retry_after(&HeaderValue::from_static("-1")), None);
    }

    #[test]
    fn trailing_slash_is_trimmed() {
        assert_eq!(UpstreamSettings::new("x", "http://h/v1/").base_url, "http://h/v1");
    }

    #[test]
    fn credentials_are_scrubbed_from_error_bodies() {
        let body = Bytes::from_static(br#"{"error":{"message":"bad header: Bearer sk-prov/abc123 (team sk-team-9)","x":"sk-prov\/abc123"}}"#);
        let out = scrub_credentials(body, &["sk-prov/abc123", "sk-team-9", "ab"]);
        let text = String::from_utf8(out.to_vec()).unwrap();
        assert_eq!(
            text,
            r#"{"error":{"message":"bad header: Bearer [REDACTED] (team [REDACTED])","x":"[REDACTED]"}}"#
        );
        let clean = Bytes::from_static(b"nothing to see");
        assert_eq!(scrub_credentials(clean.clone(), &["sk-prov/abc123"]), clean);
    }

    #[test]
    fn a_key_with_a_newline_is_refused_without_echoing_it() {
        let mut s = UpstreamSettings::new("x", "http://127.0.0.1:1/v1");
        s.api_key = Some("sk-secret\nvalue".into());
        let err = Upstream::new(s).unwrap_err().to_string();
        assert!(!err.contains("sk-secret"), "{err}");
    }

    #[test]
    fn a_teams_credential_takes_the_providers_header_style() {
        let bearer = Upstream::new(UpstreamSettings::new("x", "http://127.0.0.1:1/v1")).unwrap();
        let (name, value) = bearer.credential_header("sk-team").unwrap();
        assert_eq!(
            (name.as_str(), value.to_str().unwrap()),
            ("authorization", "Bearer sk-team")
        );
        assert!(value.is_sensitive());
        let mut s = UpstreamSettings::new("a", "http://127.0.0.1:1/v1");
        s.auth_style = AuthStyle::Anthropic;
        let anthropic = Upstream::new(s).unwrap();
        let (name, value) = anthropic.credential_header("sk-ant").unwrap();
        assert_eq!((name.as_str(), value.to_str().unwrap()), ("x-api-key", "sk-ant"));
        assert!(anthropic.credential_header("bad\nkey").is_err());
    }
}
