//! A Google service account → OAuth access tokens for Gemini on Vertex AI (or the Gemini API).
//!
//! The service-account JSON key file (what `GOOGLE_APPLICATION_CREDENTIALS` names) holds the
//! account's email, an RSA private key and the token endpoint (`token_uri`). moatd signs a JWT
//! (RS256, by `jsonwebtoken`) asserting the account and the `cloud-platform` scope for Google's
//! token audience, and exchanges it at `token_uri` for an access token (RFC 7523's JWT bearer grant), cached until shortly before it
//! expires.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::{parse_token, CredentialError, Token, TokenClient, TokenSource};

/// The scope Vertex AI (and the Gemini API with OAuth) accepts.
pub const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The audience Google requires in the assertion, whatever `token_uri` the request is posted to.
const AUDIENCE: &str = "https://oauth2.googleapis.com/token";
/// Google caps an assertion's lifetime at an hour.
const ASSERTION_LIFETIME: u64 = 3600;

#[derive(Deserialize)]
struct KeyFile {
    #[serde(rename = "type")]
    kind: Option<String>,
    client_email: String,
    private_key: String,
    #[serde(default)]
    private_key_id: Option<String>,
    token_uri: String,
    #[serde(default)]
    project_id: Option<String>,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
}

/// A loaded service account.
#[derive(Clone)]
pub struct ServiceAccount {
    pub client_email: String,
    pub token_uri: String,
    pub project_id: Option<String>,
    key_id: Option<String>,
    key: jsonwebtoken::EncodingKey,
    path: PathBuf,
    client: Option<TokenClient>,
}

impl fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("client_email", &self.client_email)
            .field("token_uri", &self.token_uri)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl ServiceAccount {
    /// Reads and checks a key file. Errors name the file and the member, never the key.
    pub fn from_file(path: &Path) -> Result<ServiceAccount, CredentialError> {
        let text = std::fs::read(path)
            .map_err(|e| CredentialError(format!("reading {}: {}", path.display(), e.kind())))?;
        Self::from_json(&text, path)
    }

    fn from_json(text: &[u8], path: &Path) -> Result<ServiceAccount, CredentialError> {
        let file: KeyFile = serde_json::from_slice(text).map_err(|e| {
            CredentialError(format!(
                "{} is not a service-account key file (line {}, column {})",
                path.display(),
                e.line(),
                e.column()
            ))
        })?;
        if file.kind.as_deref().is_some_and(|k| k != "service_account") {
            return Err(CredentialError(format!(
                "{}: `type` is not \"service_account\" (user credentials are not supported)",
                path.display()
            )));
        }
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(file.private_key.as_bytes()).map_err(|_| {
            CredentialError(format!(
                "{}: `private_key` is not an RSA private key in PEM",
                path.display()
            ))
        })?;
        if reqwest::Url::parse(&file.token_uri).is_err() {
            return Err(CredentialError(format!(
                "{}: `token_uri` is not a URL",
                path.display()
            )));
        }
        Ok(ServiceAccount {
            client_email: file.client_email,
            token_uri: file.token_uri,
            project_id: file.project_id,
            key_id: file.private_key_id,
            key,
            path: path.to_owned(),
            client: None,
        })
    }

    /// Attaches the client that reaches the token endpoint.
    pub fn with_client(mut self, client: TokenClient) -> Self {
        self.client = Some(client);
        self
    }

    /// The signed assertion for `now` (Unix seconds).
    fn assertion(&self, now: u64) -> Result<String, CredentialError> {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = self.key_id.clone();
        let claims = Claims {
            iss: &self.client_email,
            scope: SCOPE,
            aud: AUDIENCE,
            iat: now,
            exp: now + ASSERTION_LIFETIME,
        };
        jsonwebtoken::encode(&header, &claims, &self.key).map_err(|_| {
            CredentialError(format!(
                "{}: signing the token request failed",
                self.path.display()
            ))
        })
    }

    async fn fetch_token(&self) -> Result<Token, CredentialError> {
        let client = match &self.client {
            Some(c) => c.clone(),
            None => TokenClient::new(None)?,
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let assertion = self.assertion(now)?;
        let body = client
            .post_form(
                &self.token_uri,
                &[("grant_type", GRANT_TYPE), ("assertion", &assertion)],
            )
            .await?;
        parse_token(&body, Instant::now())
    }
}

impl TokenSource for ServiceAccount {
    fn fetch(&self) -> BoxFuture<'_, Result<Token, CredentialError>> {
        Box::pin(self.fetch_token())
    }

    fn describe(&self) -> String {
        format!(
            "Google service account {} from {}, tokens from {}",
            self.client_email,
            self.path.display(),
            self.token_uri
        )
    }
}
