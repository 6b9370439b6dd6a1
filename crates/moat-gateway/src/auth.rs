//! Client authentication for now: static bearer keys from `[server] api_keys`. Keys are kept only as
//! SHA-256 digests and compared in constant time, so neither memory dumps of the key list nor response
//! timing tell an attacker how close a guess was.

use http::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The keys a client may present. Empty means open access (only allowed on loopback, or with
/// `insecure_open`; the config step enforces that).
#[derive(Clone)]
pub struct Authenticator {
    digests: Vec<[u8; 32]>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("keys", &self.digests.len())
            .finish()
    }
}

fn digest(key: &[u8]) -> [u8; 32] {
    Sha256::digest(key).into()
}

impl Authenticator {
    /// Builds from the configured keys.
    pub fn new(keys: &[String]) -> Self {
        Authenticator {
            digests: keys.iter().map(|k| digest(k.as_bytes())).collect(),
        }
    }

    /// True when no key is required.
    pub fn is_open(&self) -> bool {
        self.digests.is_empty()
    }

    /// Checks `Authorization: Bearer <key>` (OpenAI and OpenRouter clients) or `x-api-key` (Anthropic
    /// clients). Every configured key is compared, so timing does not reveal which one matched.
    pub fn check(&self, headers: &HeaderMap) -> bool {
        if self.is_open() {
            return true;
        }
        let presented = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .or_else(|| {
                headers
                    .get("x-api-key")
                    .and_then(|v| v.to_str().ok())
                    .map(str::trim)
            });
        let Some(presented) = presented.filter(|k| !k.is_empty()) else {
            return false;
        };
        let d = digest(presented.as_bytes());
        let mut ok = subtle::Choice::from(0u8);
        for known in &self.digests {
            ok |= known.ct_eq(&d);
        }
        ok.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(name: &str, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
        h
    }

    #[test]
    fn bearer_and_x_api_key_are_accepted() {
        let a = Authenticator::new(&["k1".into(), "k2".into()]);
        assert!(a.check(&headers("authorization", "Bearer k2")));
        assert!(a.check(&headers("x-api-key", "k1")));
        assert!(!a.check(&headers("authorization", "Bearer k3")));
        assert!(!a.check(&headers("authorization", "k1")));
        assert!(!a.check(&headers("authorization", "Bearer ")));
        assert!(!a.check(&HeaderMap::new()));
    }

    #[test]
    fn open_when_no_keys() {
        assert!(Authenticator::new(&[]).check(&HeaderMap::new()));
    }

    #[test]
    fn debug_shows_no_key_material() {
        let a = Authenticator::new(&["secret-key".into()]);
        assert_eq!(format!("{a:?}"), "Authenticator { keys: 1 }");
    }
}
