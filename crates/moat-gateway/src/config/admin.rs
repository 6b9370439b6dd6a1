//! `[admin]`: who may use the admin API and the console besides `[server] admin_keys` (full admins):
//! admin keys with a narrower role, single sign-on through an OpenID provider, and how long console
//! sessions last. As written, and as validated.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;
use crate::roles::Role;

/// The section as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSection {
    /// How long a console session lasts after login, in seconds (default 28 800 = 8 hours).
    pub session_ttl_secs: Option<u64>,
    /// Admin keys with a role: `[[admin.keys]] name, key, role, team`.
    #[serde(default)]
    pub keys: Vec<AdminKeySection>,
    /// OpenID Connect sign-in for the console.
    pub sso: Option<SsoSection>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminKeySection {
    /// Names the key in audit records (`key:NAME`).
    pub name: String,
    /// The key itself, usually `${VAR}`.
    pub key: String,
    /// `admin`, `team_admin` or `viewer`.
    pub role: String,
    /// The team a `team_admin` key manages.
    pub team: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SsoSection {
    /// The OpenID provider's issuer URL (discovery is at `{issuer}/.well-known/openid-configuration`).
    pub issuer: String,
    pub client_id: String,
    /// A file holding the client secret (read at start), or...
    pub client_secret_file: Option<PathBuf>,
    /// ...an environment variable holding it. One of the two is required.
    pub client_secret_env: Option<String>,
    /// This gateway's callback as registered at the provider: `https://HOST/ui/callback`.
    pub redirect_url: String,
    /// The ID-token claim that lists the person's roles or groups (default `groups`).
    pub roles_claim: Option<String>,
    /// Claim value → role: `"moat-admins" = "admin"`, `"research-leads" = "team_admin:research"`,
    /// `"auditors" = "viewer"`. A person with no mapped value cannot log in.
    #[serde(default)]
    pub roles: BTreeMap<String, String>,
    /// Scopes asked for besides `openid` (default `["email", "profile"]`).
    pub scopes: Option<Vec<String>>,
    /// Extra trust anchors (PEM) for the provider's TLS certificate.
    pub ca_file: Option<PathBuf>,
}

/// A role-bearing admin key.
#[derive(Clone)]
pub struct RoleKey {
    pub name: String,
    pub key: String,
    pub role: Role,
}

impl std::fmt::Debug for RoleKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoleKey")
            .field("name", &self.name)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// Validated single sign-on settings.
#[derive(Clone)]
pub struct SsoSettings {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    pub redirect_url: String,
    pub roles_claim: String,
    pub roles: Vec<(String, Role)>,
    pub scopes: Vec<String>,
    pub ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for SsoSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SsoSettings")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("redirect_url", &self.redirect_url)
            .finish_non_exhaustive()
    }
}

/// The validated section.
#[derive(Debug, Clone)]
pub struct AdminSettings {
    pub session_ttl: Duration,
    pub keys: Vec<RoleKey>,
    pub sso: Option<SsoSettings>,
    /// Session cookies carry `Secure` unless the gateway serves plain HTTP on loopback.
    pub secure_cookies: bool,
}

impl Default for AdminSettings {
    fn default() -> Self {
        AdminSettings {
            session_ttl: Duration::from_secs(8 * 3600),
            keys: Vec::new(),
            sso: None,
            secure_cookies: false,
        }
    }
}

fn invalid(path: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Parse {
        path: path.to_string(),
        message: message.into(),
    }
}

impl AdminSection {
    /// Checks the section; `expand` resolves `${VAR}` references, `env` reads a variable by name.
    pub(crate) fn resolve(
        &self,
        expand: &dyn Fn(&str, &str) -> Result<String, ConfigError>,
        env: &dyn Fn(&str) -> Option<String>,
        secure_cookies: bool,
    ) -> Result<AdminSettings, ConfigError> {
        if self.session_ttl_secs == Some(0) {
            return Err(ConfigError::Zero {
                field: "admin.session_ttl_secs".into(),
            });
        }
        let mut keys = Vec::new();
        for (i, k) in self.keys.iter().enumerate() {
            let at = format!("admin.keys[{i}]");
            let key = expand(&k.key, &format!("{at}.key"))?;
            if key.trim().is_empty() {
                return Err(invalid(&at, "empty key"));
            }
            if k.name.trim().is_empty() || k.name.len() > 64 {
                return Err(invalid(&at, "name must be 1-64 characters"));
            }
            let role = Role::parse(&k.role, k.team.as_deref()).map_err(|m| invalid(&at, m))?;
            keys.push(RoleKey {
                name: k.name.clone(),
                key,
                role,
            });
        }
        let sso = match &self.sso {
            None => None,
            Some(s) => Some(s.resolve(env)?),
        };
        Ok(AdminSettings {
            session_ttl: Duration::from_secs(self.session_ttl_secs.unwrap_or(8 * 3600)),
            keys,
            sso,
            secure_cookies,
        })
    }
}

impl SsoSection {
    fn resolve(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<SsoSettings, ConfigError> {
        let at = "admin.sso";
        let client_secret = match (&self.client_secret_file, &self.client_secret_env) {
            (Some(path), None) => std::fs::read_to_string(path)
                .map_err(|e| invalid(at, format!("client_secret_file {}: {e}", path.display())))?
                .trim()
                .to_string(),
            (None, Some(var)) => env(var)
                .ok_or_else(|| invalid(at, format!("client_secret_env: {var} is not set")))?
                .trim()
                .to_string(),
            _ => return Err(invalid(at, "set one of client_secret_file or client_secret_env")),
        };
        if client_secret.is_empty() {
            return Err(invalid(at, "the client secret is empty"));
        }
        for (field, url) in [("issuer", &self.issuer), ("redirect_url", &self.redirect_url)] {
            let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
                .iter()
                .any(|p| url.starts_with(p));
            if !url.starts_with("https://") && !loopback {
                return Err(invalid(
                    &format!("{at}.{field}"),
                    format!("{url:?}: https:// is required (http:// only on loopback)"),
                ));
            }
        }
        if self.roles.is_empty() {
            return Err(invalid(
                &format!("{at}.roles"),
                "map at least one claim value to a role",
            ));
        }
        let mut roles = Vec::new();
        for (value, role) in &self.roles {
            let role = Role::parse(role, None).map_err(|m| invalid(&format!("{at}.roles.{value}"), m))?;
            roles.push((value.clone(), role));
        }
        Ok(SsoSettings {
            // As written: the provider's metadata must name exactly this issuer.
            issuer: self.issuer.clone(),
            client_id: self.client_id.clone(),
            client_secret,
            redirect_url: self.redirect_url.clone(),
            roles_claim: self.roles_claim.clone().unwrap_or_else(|| "groups".into()),
            roles,
            scopes: self
                .scopes
                .clone()
                .unwrap_or_else(|| vec!["email".into(), "profile".into()]),
            ca_file: self.ca_file.clone(),
        })
    }
}
