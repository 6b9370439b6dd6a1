//! The [`Operator`] extractor: every admin route names it, so none can forget the check. An operator
//! is an admin key (`[server] admin_keys`: full admins; `[[admin.keys]]`: their role) or a console
//! session; a session's state-changing requests must carry its CSRF token and come from this origin.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::FromRequestParts;
use http::request::Parts;
use http::Method;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::session::{csrf_ok, same_origin};
use crate::auth::presented_key;
use crate::config::RoleKey;
use crate::gateway::Gateway;
use crate::roles::{Operator, Role};
use crate::GatewayError;

/// `[[admin.keys]]`, kept as SHA-256 digests and compared in constant time.
pub(crate) struct RoleKeys {
    keys: Vec<([u8; 32], String, Role)>,
}

impl std::fmt::Debug for RoleKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoleKeys")
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl RoleKeys {
    pub(crate) fn new(keys: &[RoleKey]) -> RoleKeys {
        RoleKeys {
            keys: keys
                .iter()
                .map(|k| {
                    (
                        Sha256::digest(k.key.as_bytes()).into(),
                        k.name.clone(),
                        k.role.clone(),
                    )
                })
                .collect(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The operator a presented key stands for. Every entry is compared, so timing tells nothing.
    fn find(&self, key: &str) -> Option<Operator> {
        let d: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        let mut found = None;
        for (known, name, role) in &self.keys {
            if bool::from(known.ct_eq(&d)) {
                found = Some(Operator {
                    actor: format!("key:{name}"),
                    role: role.clone(),
                });
            }
        }
        found
    }
}

/// How audit records name a `[server] admin_keys` key: a short fingerprint, never the key.
fn admin_key_actor(key: &str) -> String {
    let d = Sha256::digest(key.as_bytes());
    let hex: String = d.iter().take(4).map(|b| format!("{b:02x}")).collect();
    format!("admin-key:{hex}")
}

/// The operator behind an admin key, if the key is one.
pub(crate) fn by_key(gw: &Gateway, key: &str) -> Option<Operator> {
    if gw.identities.is_admin_key(key) {
        return Some(Operator {
            actor: admin_key_actor(key),
            role: Role::Admin,
        });
    }
    gw.console.role_keys.find(key)
}

/// Authenticates an admin request: a presented admin key, else the session cookie (with its CSRF
/// token for anything but reads).
pub(crate) fn authenticate(gw: &Gateway, parts: &Parts) -> Result<Operator, GatewayError> {
    if let Some(key) = presented_key(&parts.headers) {
        return by_key(gw, key).ok_or(GatewayError::Unauthorized);
    }
    let session = gw
        .console
        .sessions
        .find(&parts.headers, Instant::now())
        .ok_or(GatewayError::Unauthorized)?;
    let reading = matches!(parts.method, Method::GET | Method::HEAD);
    let vouched = csrf_ok(&parts.headers, &session) && same_origin(&parts.headers);
    if !(reading || vouched) {
        return Err(GatewayError::Forbidden {
            message: "missing or wrong CSRF token: reload the console".into(),
            code: crate::error::Refused::CsrfFailed,
        });
    }
    Ok(session.operator)
}

impl FromRequestParts<Arc<Gateway>> for Operator {
    type Rejection = GatewayError;

    async fn from_request_parts(parts: &mut Parts, gw: &Arc<Gateway>) -> Result<Self, Self::Rejection> {
        authenticate(gw, parts)
    }
}

impl From<crate::roles::Refused> for GatewayError {
    fn from(r: crate::roles::Refused) -> Self {
        GatewayError::Forbidden {
            message: r.0,
            code: crate::error::Refused::RoleForbidden,
        }
    }
}
