//! The per-provider options of the enterprise clouds (Azure's API version and Entra ID, Bedrock's
//! region and AWS profile, Vertex AI's project and service account), resolved into the provider's
//! adapter and its per-request credential. Which kind takes which option is the adapter registry's
//! business; this only reads and expands what the file says.

use std::path::PathBuf;
use std::sync::Arc;

use moat_upstream::adapter::{AdapterOptions, AuthContext, EntraOptions, ProviderAdapter};
use moat_upstream::credentials::{EntraSecret, RequestAuth};

use super::file::ProviderSection;
use super::resolve::{expand, ConfigError};

/// The provider's adapter, built with its options (an option its kind does not take is an error).
pub(super) fn adapter(
    p: &ProviderSection,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Arc<dyn ProviderAdapter>, ConfigError> {
    let name = &p.name;
    let err = |message: String| ConfigError::Upstream {
        name: name.clone(),
        message,
    };
    let entra = match &p.entra {
        None => None,
        Some(e) => {
            let secret =
                match (&e.client_secret, &e.client_secret_file, &e.federated_token_file) {
                    (Some(s), None, None) => EntraSecret::ClientSecret(expand(
                        s,
                        &format!("providers.{name}.entra.client_secret"),
                        env,
                    )?),
                    (None, Some(f), None) => EntraSecret::ClientSecretFile(f.clone()),
                    (None, None, Some(f)) => EntraSecret::FederatedTokenFile(f.clone()),
                    _ => return Err(err(
                        "entra: give exactly one of client_secret, client_secret_file, federated_token_file"
                            .into(),
                    )),
                };
            Some(EntraOptions {
                tenant_id: e.tenant_id.clone(),
                client_id: e.client_id.clone(),
                secret,
                authority: e.authority.clone(),
            })
        }
    };
    let options = AdapterOptions {
        api_version: p.api_version.clone(),
        region: p.region.clone(),
        project: p.project.clone(),
        entra,
        service_account_file: p.service_account_file.clone(),
        aws_profile: p.aws_profile.clone(),
    };
    p.kind.kind().adapter_with(&options).map_err(err)
}

/// The provider's per-request credential (none when `api_key` is the credential) and a sentence
/// saying where its credential comes from, for `check-config` (never the secret).
pub(super) fn credential(
    p: &ProviderSection,
    adapter: &dyn ProviderAdapter,
    api_key: bool,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Option<Arc<dyn RequestAuth>>, String), ConfigError> {
    let ctx = AuthContext {
        api_key,
        env,
        home: env("HOME").map(PathBuf::from),
        ca_file: p.ca_file.clone(),
    };
    let auth = adapter.request_auth(&ctx).map_err(|e| ConfigError::Upstream {
        name: p.name.clone(),
        message: e.0,
    })?;
    let described = match (&auth, api_key) {
        (Some(a), _) => a.describe(),
        (None, true) => format!("api_key, sent as {}", adapter.auth_style().describe()),
        (None, false) => "none (no api_key)".to_owned(),
    };
    Ok((auth, described))
}
