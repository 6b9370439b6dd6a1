//! Microsoft Entra ID (Azure AD) client credentials → bearer tokens for Azure OpenAI.
//!
//! The OAuth 2.0 client-credentials grant against `{authority}/{tenant}/oauth2/v2.0/token` with
//! the scope `https://cognitiveservices.azure.com/.default`, proving the client with a secret (given
//! in config, or read from a file) or with a federated token file (workload identity, as AKS
//! mounts it). The same settings can come from the environment variables Azure's own SDKs read:
//! `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET` or `AZURE_FEDERATED_TOKEN_FILE`, and
//! `AZURE_AUTHORITY_HOST`.

use std::fmt;
use std::path::PathBuf;
use std::time::Instant;

use futures_util::future::BoxFuture;

use super::{parse_token, CredentialError, Token, TokenClient, TokenSource};

/// Entra's public cloud; sovereign clouds (and tests) set another authority.
pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";
/// The scope of a token for Azure OpenAI (Azure AI services).
pub const SCOPE: &str = "https://cognitiveservices.azure.com/.default";

/// How the client proves who it is.
#[derive(Clone, PartialEq, Eq)]
pub enum EntraSecret {
    /// A client secret.
    ClientSecret(String),
    /// A file holding the client secret (re-read at every token fetch, so rotation needs no restart).
    ClientSecretFile(PathBuf),
    /// A file holding a federated identity token (workload identity), re-read at every fetch.
    FederatedTokenFile(PathBuf),
}

impl fmt::Debug for EntraSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EntraSecret::ClientSecret(_) => f.write_str("ClientSecret(…)"),
            EntraSecret::ClientSecretFile(p) => write!(f, "ClientSecretFile({})", p.display()),
            EntraSecret::FederatedTokenFile(p) => write!(f, "FederatedTokenFile({})", p.display()),
        }
    }
}

/// Client credentials for one Entra application.
#[derive(Debug, Clone)]
pub struct EntraCredentials {
    pub tenant_id: String,
    pub client_id: String,
    pub secret: EntraSecret,
    /// `https://login.microsoftonline.com` unless a sovereign cloud (or a test) says otherwise.
    pub authority: String,
    /// Where these settings came from, for `describe`.
    pub origin: &'static str,
    client: Option<TokenClient>,
}

impl EntraCredentials {
    pub fn new(tenant_id: String, client_id: String, secret: EntraSecret, authority: Option<String>) -> Self {
        EntraCredentials {
            tenant_id,
            client_id,
            secret,
            authority: authority.unwrap_or_else(|| DEFAULT_AUTHORITY.to_owned()),
            origin: "config",
            client: None,
        }
    }

    /// From Azure's SDK environment variables, through `var` (the process environment in moatd,
    /// a map in tests). `None` when `AZURE_TENANT_ID` or `AZURE_CLIENT_ID` is unset or neither a
    /// secret nor a federated token file is given.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Option<Self> {
        let tenant = var("AZURE_TENANT_ID").filter(|v| !v.is_empty())?;
        let client = var("AZURE_CLIENT_ID").filter(|v| !v.is_empty())?;
        let secret = match var("AZURE_CLIENT_SECRET").filter(|v| !v.is_empty()) {
            Some(s) => EntraSecret::ClientSecret(s),
            None => EntraSecret::FederatedTokenFile(PathBuf::from(
                var("AZURE_FEDERATED_TOKEN_FILE").filter(|v| !v.is_empty())?,
            )),
        };
        let mut c = EntraCredentials::new(tenant, client, secret, var("AZURE_AUTHORITY_HOST"));
        c.origin = "environment (AZURE_TENANT_ID, AZURE_CLIENT_ID, …)";
        Some(c)
    }

    /// Attaches the client that reaches the token endpoint (the provider's TLS settings).
    pub fn with_client(mut self, client: TokenClient) -> Self {
        self.client = Some(client);
        self
    }

    fn token_url(&self) -> String {
        format!(
            "{}/{}/oauth2/v2.0/token",
            self.authority.trim_end_matches('/'),
            self.tenant_id
        )
    }

    async fn fetch_token(&self) -> Result<Token, CredentialError> {
        let client = match &self.client {
            Some(c) => c.clone(),
            None => TokenClient::new(None)?,
        };
        let (name, proof) = match &self.secret {
            EntraSecret::ClientSecret(s) => ("client_secret", s.clone()),
            EntraSecret::ClientSecretFile(p) => ("client_secret", read_trimmed(p)?),
            EntraSecret::FederatedTokenFile(p) => ("client_assertion", read_trimmed(p)?),
        };
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_id", self.client_id.as_str()),
            ("scope", SCOPE),
            (name, proof.as_str()),
        ];
        if name == "client_assertion" {
            form.push((
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ));
        }
        let body = client.post_form(&self.token_url(), &form).await?;
        parse_token(&body, Instant::now())
    }
}

/// A secret file's contents without surrounding whitespace; errors name the file, not the content.
pub(crate) fn read_trimmed(path: &std::path::Path) -> Result<String, CredentialError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CredentialError(format!("reading {}: {}", path.display(), e.kind())))?;
    let text = text.trim();
    if text.is_empty() {
        return Err(CredentialError(format!("{} is empty", path.display())));
    }
    Ok(text.to_owned())
}

impl TokenSource for EntraCredentials {
    fn fetch(&self) -> BoxFuture<'_, Result<Token, CredentialError>> {
        Box::pin(self.fetch_token())
    }

    fn describe(&self) -> String {
        let proof = match &self.secret {
            EntraSecret::ClientSecret(_) => "a client secret".to_owned(),
            EntraSecret::ClientSecretFile(p) => format!("a client secret read from {}", p.display()),
            EntraSecret::FederatedTokenFile(p) => format!("a federated token read from {}", p.display()),
        };
        format!(
            "Entra ID client credentials from {} (tenant {}, client {}, {proof}), tokens from {}",
            self.origin, self.tenant_id, self.client_id, self.authority
        )
    }
}
