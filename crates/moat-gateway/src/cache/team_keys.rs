//! Per-team provider credentials ("bring your own key"): a team may store its own key for a
//! provider, and its requests to that provider then carry it instead of the provider's shared one.
//! Where a provider offers no cache-partition control, separate credentials are the only isolation
//! of its prompt cache (CacheProbe, 2026).
//!
//! The keys are sealed in the store like provider keys, with the team and provider bound as
//! associated data, and reloaded whenever the store's `keys_version` moves (storing one bumps it),
//! so `moatd teams set-key` takes effect on the team's next request.

use std::collections::HashMap;
use std::sync::RwLock;

use http::HeaderMap;
use moat_store::Store;
use moat_upstream::Upstream;

use crate::identity::Principal;
use crate::secret::ServerSecret;
use crate::GatewayError;

/// The associated data a team's credential is sealed under: it cannot be moved to another team or
/// provider.
pub fn sealing_label(team_id: &str, provider: &str) -> String {
    format!("team {team_id} provider {provider}")
}

#[derive(Debug, Default)]
struct Loaded {
    version: i64,
    /// `None`: stored but cannot be opened (wrong secret or tampered); the team's requests to that
    /// provider are refused rather than silently sent with the shared key.
    by_team: HashMap<(String, String), Option<String>>,
}

/// Every team's opened credentials (the keys; each provider sends them in its own header style).
#[derive(Debug)]
pub(crate) struct TeamKeys {
    loaded: RwLock<Loaded>,
}

impl TeamKeys {
    pub(crate) fn new() -> TeamKeys {
        TeamKeys {
            loaded: RwLock::new(Loaded {
                version: -1,
                by_team: HashMap::new(),
            }),
        }
    }

    /// Reloads when `version` (the store's `keys_version` as the request's authentication just read
    /// it) differs from the one loaded, so a team member's request costs no second store read.
    fn refresh(&self, store: &dyn Store, secret: &ServerSecret, version: i64) -> Result<(), GatewayError> {
        if self.loaded.read().map(|l| l.version == version).unwrap_or(false) {
            return Ok(());
        }
        let mut by_team = HashMap::new();
        for s in store.team_provider_secrets()? {
            let label = sealing_label(&s.team_id, &s.provider);
            let value = secret.open(&label, &s.nonce, &s.ciphertext).ok();
            if value.is_none() {
                tracing::error!(team = %s.team_id, provider = %s.provider, "a team's provider key cannot be opened; its requests to that provider are refused");
            }
            by_team.insert((s.team_id, s.provider), value);
        }
        if let Ok(mut l) = self.loaded.write() {
            *l = Loaded { version, by_team };
        }
        Ok(())
    }

    /// The headers to send to `provider` for this caller: `forwarded` plus the team's own credential
    /// header when its team stored one (the upstream client then leaves out the shared key).
    pub(crate) fn headers(
        &self,
        store: &dyn Store,
        secret: &ServerSecret,
        principal: &Principal,
        keys_version: i64,
        upstream: &Upstream,
        forwarded: &HeaderMap,
    ) -> Result<Option<HeaderMap>, GatewayError> {
        let provider = upstream.settings().name.as_str();
        let Principal::Virtual(key) = principal else {
            return Ok(None);
        };
        let Some(team) = &key.team_id else {
            return Ok(None);
        };
        self.refresh(store, secret, keys_version)?;
        let found = self
            .loaded
            .read()
            .ok()
            .and_then(|l| l.by_team.get(&(team.clone(), provider.to_string())).cloned());
        match found {
            None => Ok(None),
            Some(None) => Err(GatewayError::Internal(format!(
                "the team's own key for provider `{provider}` cannot be decrypted"
            ))),
            Some(Some(key)) => {
                let (name, value) = upstream.credential_header(&key).map_err(|_| {
                    GatewayError::Internal(format!(
                        "the team's own key for provider `{provider}` is not a valid header value"
                    ))
                })?;
                let mut headers = forwarded.clone();
                headers.insert(name, value);
                Ok(Some(headers))
            }
        }
    }
}
