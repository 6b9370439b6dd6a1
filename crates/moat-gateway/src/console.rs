//! The admin console at `/ui`, served by moatd itself: embedded assets, login with an admin key or
//! single sign-on (OpenID Connect), and the sessions behind both. The page uses the same admin API
//! as the CLI (`/admin/...`); this module only adds what a browser needs on top.

mod assets;
mod login;
pub(crate) mod operator;
pub(crate) mod session;
mod sso;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;

use crate::config::AdminSettings;
use crate::gateway::Gateway;
use crate::GatewayError;

/// The console's state: sessions, role-bearing admin keys, and the OpenID client when configured.
#[derive(Debug)]
pub(crate) struct Console {
    pub(crate) sessions: session::Sessions,
    pub(crate) role_keys: operator::RoleKeys,
    sso: Option<sso::Sso>,
    /// The last "verify now" result, shown until the next one.
    last_verification: std::sync::Mutex<Option<serde_json::Value>>,
}

impl Console {
    pub(crate) fn new(settings: &AdminSettings) -> Result<Console, GatewayError> {
        Ok(Console {
            sessions: session::Sessions::new(settings.session_ttl, settings.secure_cookies),
            role_keys: operator::RoleKeys::new(&settings.keys),
            sso: settings.sso.as_ref().map(sso::Sso::new).transpose()?,
            last_verification: std::sync::Mutex::new(None),
        })
    }

    pub(crate) fn last_verification(&self) -> Option<serde_json::Value> {
        self.last_verification
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn remember_verification(&self, report: serde_json::Value) {
        *self
            .last_verification
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(report);
    }

    /// True when anyone at all can log in (an admin key or single sign-on is configured).
    pub(crate) fn has_operators(&self, gw: &Gateway) -> bool {
        gw.identities.has_admin_keys() || !self.role_keys.is_empty() || self.sso.is_some()
    }
}

pub(crate) use assets::index;

/// `/ui/...`.
pub(crate) fn routes() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/", get(assets::index))
        .route("/app.js", get(assets::script))
        .route("/pages.js", get(assets::pages))
        .route("/chart.js", get(assets::chart))
        .route("/app.css", get(assets::style))
        .route("/icon.svg", get(assets::icon))
        .route("/config", get(login::config))
        .route("/session", get(login::session))
        .route("/login", post(login::with_key))
        .route("/logout", post(login::logout))
        .route("/login/sso", get(sso::start))
        .route("/callback", get(sso::callback))
}
