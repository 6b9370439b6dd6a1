//! Console sessions: a random token in an `HttpOnly; SameSite=Strict` cookie (`Secure` unless the
//! gateway serves plain HTTP on loopback), kept in memory only as its SHA-256, with an expiry and a
//! CSRF token that every state-changing request must echo in `x-csrf-token`. Bounded: at most
//! [`MAX_SESSIONS`] live sessions and [`MAX_PENDING`] unfinished single sign-ons.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine;
use http::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::roles::Operator;

pub(crate) const COOKIE: &str = "moat_session";
/// The cookie binding an unfinished single sign-on to the browser that started it.
pub(crate) const LOGIN_COOKIE: &str = "moat_login";
/// Live sessions at most; the one closest to expiring makes room for a new login.
pub const MAX_SESSIONS: usize = 10_000;
/// Single sign-ons started and not finished, at most; the oldest makes room.
pub const MAX_PENDING: usize = 1_000;
/// How long a person has at their identity provider before the sign-on must start again.
pub const PENDING_TTL: Duration = Duration::from_secs(600);

/// A random 256-bit token, URL-safe base64.
pub(crate) fn random_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A cookie's value from the request's `Cookie` headers.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A logged-in operator.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) operator: Operator,
    pub(crate) csrf: String,
    pub(crate) expires: Instant,
}

/// An unfinished single sign-on: what the callback needs to finish it.
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) pkce_verifier: String,
    pub(crate) nonce: String,
    pub(crate) started: Instant,
}

#[derive(Debug)]
pub(crate) struct Sessions {
    ttl: Duration,
    secure: bool,
    live: Mutex<HashMap<[u8; 32], Session>>,
    pending: Mutex<HashMap<String, Pending>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Sessions {
    pub(crate) fn new(ttl: Duration, secure: bool) -> Sessions {
        Sessions {
            ttl,
            secure,
            live: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
        }
    }

    /// Starts a session; returns the `Set-Cookie` value and the session.
    pub(crate) fn create(
        &self,
        operator: Operator,
        now: Instant,
    ) -> Result<(String, Session), getrandom::Error> {
        let token = random_token()?;
        let session = Session {
            operator,
            csrf: random_token()?,
            expires: now + self.ttl,
        };
        let mut live = lock(&self.live);
        live.retain(|_, s| s.expires > now);
        if live.len() >= MAX_SESSIONS {
            if let Some(k) = live.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| *k) {
                live.remove(&k);
            }
        }
        live.insert(digest(&token), session.clone());
        let cookie = self.cookie_value(COOKIE, &token, "/", self.ttl.as_secs(), "Strict");
        Ok((cookie, session))
    }

    /// The live session named by the request's cookie, if any (an expired one is removed).
    pub(crate) fn find(&self, headers: &HeaderMap, now: Instant) -> Option<Session> {
        let token = cookie(headers, COOKIE)?;
        let key = digest(token);
        let mut live = lock(&self.live);
        match live.get(&key) {
            Some(s) if s.expires > now => Some(s.clone()),
            Some(_) => {
                live.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Ends the request's session; returns the `Set-Cookie` value that clears the cookie.
    pub(crate) fn end(&self, headers: &HeaderMap) -> String {
        if let Some(token) = cookie(headers, COOKIE) {
            lock(&self.live).remove(&digest(token));
        }
        self.cookie_value(COOKIE, "", "/", 0, "Strict")
    }

    /// Remembers a single sign-on started under `state`; returns the `Set-Cookie` value binding it to
    /// this browser. `Lax`, because the provider sends the browser back with a cross-site redirect.
    pub(crate) fn start_pending(&self, state: &str, pending: Pending) -> String {
        let mut map = lock(&self.pending);
        let now = pending.started;
        map.retain(|_, p| now.duration_since(p.started) < PENDING_TTL);
        if map.len() >= MAX_PENDING {
            if let Some(k) = map.iter().min_by_key(|(_, p)| p.started).map(|(k, _)| k.clone()) {
                map.remove(&k);
            }
        }
        map.insert(state.to_string(), pending);
        self.cookie_value(LOGIN_COOKIE, state, "/ui", PENDING_TTL.as_secs(), "Lax")
    }

    /// Takes the single sign-on the callback's `state` names, if this browser started it and it is
    /// recent.
    pub(crate) fn take_pending(&self, headers: &HeaderMap, state: &str, now: Instant) -> Option<Pending> {
        let bound = cookie(headers, LOGIN_COOKIE)?;
        if !bool::from(bound.as_bytes().ct_eq(state.as_bytes())) {
            return None;
        }
        let pending = lock(&self.pending).remove(state)?;
        (now.duration_since(pending.started) < PENDING_TTL).then_some(pending)
    }

    pub(crate) fn clear_login_cookie(&self) -> String {
        self.cookie_value(LOGIN_COOKIE, "", "/ui", 0, "Lax")
    }

    fn cookie_value(&self, name: &str, value: &str, path: &str, max_age: u64, same_site: &str) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite={same_site}{secure}")
    }
}

/// True when the request carries the session's CSRF token.
pub(crate) fn csrf_ok(headers: &HeaderMap, session: &Session) -> bool {
    headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| bool::from(t.as_bytes().ct_eq(session.csrf.as_bytes())))
}

/// False when a browser says the request comes from another origin (`Origin` not this `Host`, or
/// `Sec-Fetch-Site: cross-site`). Requests without those headers (scripts, the CLI) pass.
pub(crate) fn same_origin(headers: &HeaderMap) -> bool {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if text("sec-fetch-site").is_some_and(|s| s == "cross-site" || s == "same-site") {
        return false;
    }
    match (text("origin"), text("host")) {
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_some_and(|(_, rest)| rest.trim_end_matches('/') == host),
        (Some(_), None) => false,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roles::Role;

    fn op() -> Operator {
        Operator {
            actor: "key:ops".into(),
            role: Role::Viewer,
        }
    }

    fn with_cookie(set_cookie: &str) -> HeaderMap {
        let pair = set_cookie.split(';').next().unwrap();
        let mut h = HeaderMap::new();
        h.insert(http::header::COOKIE, format!("other=1; {pair}").parse().unwrap());
        h
    }

    #[test]
    fn a_session_is_found_by_its_cookie_until_it_expires_or_ends() {
        let s = Sessions::new(Duration::from_secs(60), true);
        let now = Instant::now();
        let (set, session) = s.create(op(), now).unwrap();
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Secure"));
        let h = with_cookie(&set);
        assert_eq!(s.find(&h, now).unwrap().operator, op());
        assert!(s.find(&h, now + Duration::from_secs(61)).is_none(), "expired");
        let (set, _) = s.create(op(), now).unwrap();
        let h = with_cookie(&set);
        assert!(s.end(&h).contains("Max-Age=0"));
        assert!(s.find(&h, now).is_none(), "ended");
        let mut csrf = HeaderMap::new();
        csrf.insert("x-csrf-token", session.csrf.parse().unwrap());
        assert!(csrf_ok(&csrf, &session));
        assert!(!csrf_ok(&HeaderMap::new(), &session));
    }

    #[test]
    fn loopback_cookies_are_not_secure_and_sessions_are_bounded() {
        let s = Sessions::new(Duration::from_secs(60), false);
        let now = Instant::now();
        let (set, _) = s.create(op(), now).unwrap();
        assert!(!set.contains("Secure"));
        for _ in 0..MAX_SESSIONS + 5 {
            s.create(op(), now).unwrap();
        }
        assert_eq!(lock(&s.live).len(), MAX_SESSIONS);
    }

    #[test]
    fn a_sign_on_finishes_only_in_the_browser_that_started_it() {
        let s = Sessions::new(Duration::from_secs(60), false);
        let now = Instant::now();
        let pending = || Pending {
            pkce_verifier: "v".into(),
            nonce: "n".into(),
            started: now,
        };
        let set = s.start_pending("state-1", pending());
        assert!(set.contains("SameSite=Lax"));
        assert!(
            s.take_pending(&HeaderMap::new(), "state-1", now).is_none(),
            "no cookie"
        );
        let h = with_cookie(&set);
        assert!(s.take_pending(&h, "state-2", now).is_none(), "another state");
        assert!(s.take_pending(&h, "state-1", now).is_some());
        assert!(s.take_pending(&h, "state-1", now).is_none(), "used once");
        let set = s.start_pending("state-3", pending());
        assert!(
            s.take_pending(&with_cookie(&set), "state-3", now + PENDING_TTL)
                .is_none(),
            "too late"
        );
    }

    #[test]
    fn cross_origin_browser_requests_are_told_apart() {
        let h = |pairs: &[(&str, &str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.insert(
                    http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    v.parse().unwrap(),
                );
            }
            m
        };
        assert!(same_origin(&h(&[])));
        assert!(same_origin(&h(&[
            ("origin", "http://127.0.0.1:7400"),
            ("host", "127.0.0.1:7400")
        ])));
        assert!(!same_origin(&h(&[
            ("origin", "https://evil.example"),
            ("host", "127.0.0.1:7400")
        ])));
        assert!(!same_origin(&h(&[("sec-fetch-site", "cross-site")])));
    }
}
