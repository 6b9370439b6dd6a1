//! Per-provider settings that some kinds need beyond `base_url` and `api_key`: Azure's API version,
//! Bedrock's region, Vertex AI's project and location, and where each cloud's credential comes from.
//! Each kind says which it accepts ([`super::Kind`]); any other is a configuration error.

use std::path::PathBuf;

use crate::credentials::EntraSecret;

/// The options of one provider entry, as the gateway's config resolved them.
#[derive(Debug, Clone, Default)]
pub struct AdapterOptions {
    /// Azure OpenAI's `api-version` query parameter.
    pub api_version: Option<String>,
    /// Bedrock's AWS region; Vertex AI's location.
    pub region: Option<String>,
    /// Vertex AI's Google Cloud project (Gemini on Vertex instead of the Gemini API).
    pub project: Option<String>,
    /// Azure: Entra ID client credentials.
    pub entra: Option<EntraOptions>,
    /// Gemini/Vertex: a service-account key file.
    pub service_account_file: Option<PathBuf>,
    /// Bedrock: the AWS profile to read keys from (skips the environment).
    pub aws_profile: Option<String>,
}

/// `entra = { tenant_id, client_id, client_secret | client_secret_file | federated_token_file,
/// authority }`.
#[derive(Debug, Clone)]
pub struct EntraOptions {
    pub tenant_id: String,
    pub client_id: String,
    pub secret: EntraSecret,
    pub authority: Option<String>,
}

impl AdapterOptions {
    /// The config names of the options that are set.
    pub fn set(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        let mut add = |on: bool, name| {
            if on {
                out.push(name);
            }
        };
        add(self.api_version.is_some(), "api_version");
        add(self.region.is_some(), "region");
        add(self.project.is_some(), "project");
        add(self.entra.is_some(), "entra");
        add(self.service_account_file.is_some(), "service_account_file");
        add(self.aws_profile.is_some(), "aws_profile");
        out
    }
}

/// What building a provider's per-request credential may look at.
pub struct AuthContext<'a> {
    /// Whether the entry has an `api_key` (then the key is the credential).
    pub api_key: bool,
    /// The environment (the process's in moatd, a map in tests).
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// The user's home directory (`~/.aws/credentials`).
    pub home: Option<PathBuf>,
    /// The provider's extra trust anchors, also used for its token endpoint.
    pub ca_file: Option<PathBuf>,
}
