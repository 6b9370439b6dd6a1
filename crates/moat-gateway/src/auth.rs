//! Reading the key a client presents, and checking static keys (`[server] api_keys`, `admin_keys`).
//! Static keys are kept only as SHA-256 digests and compared in constant time, so neither a memory
//! dump of the key list nor response timing tells an attacker how close a guess was.

use http::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The key in `Authorization: Bearer <key>` (OpenAI and OpenRouter clients) or `x-api-key`
/// (Anthropic clients), if any. The scheme is matched case-insensitively (RFC 7235: `BEARER` and
/// `bearer` are `Bearer`), and any run of spaces or tabs may separate it from the key.
pub fn presented_key(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
        .or_else(|| {
            headers
                .get("x-api-key")
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        })
        .filter(|k| !k.is_empty())
}

/// The token of a `Bearer` credential, whatever the case of the scheme.
fn bearer_token(value: &str) -> Option<&str> {
    let value = value.trim_start();
    let (scheme, rest) = value.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case("bearer") || !rest.starts_with([' ', '\t']) {
        return None;
    }
    Some(rest.trim())
}

/// A set of static keys.
#[derive(Clone)]
pub struct StaticKeys {
    digests: Vec<[u8; 32]>,
}

impl std::fmt::Debug for StaticKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticKeys")
            .field("keys", &self.digests.len())
            .finish()
    }
}

fn digest(key: &[u8]) -> [u8; 32] {
    Sha256::digest(key).into()
}

impl StaticKeys {
    pub fn new(keys: &[String]) -> Self {
        StaticKeys {
            digests: keys.iter().map(|k| digest(k.as_bytes())).collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    /// True when `key` is one of the set. Every key is compared, so timing does not reveal which.
    /// With no static keys configured (the usual case with virtual keys) nothing is hashed: that
    /// there are none is the config's, not a secret.
    pub fn matches(&self, key: &str) -> bool {
        if self.digests.is_empty() {
            return false;
        }
        let d = digest(key.as_bytes());
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
    fn bearer_and_x_api_key_are_read() {
        assert_eq!(presented_key(&headers("authorization", "Bearer k2")), Some("k2"));
        assert_eq!(presented_key(&headers("x-api-key", "k1")), Some("k1"));
        assert_eq!(presented_key(&headers("authorization", "k1")), None);
        assert_eq!(presented_key(&headers("authorization", "Bearer ")), None);
        assert_eq!(presented_key(&headers("authorization", "Bearerk2")), None);
        assert_eq!(presented_key(&headers("authorization", "Basic k2")), None);
        assert_eq!(presented_key(&HeaderMap::new()), None);
    }

    #[test]
    fn the_scheme_is_case_insensitive() {
        for value in [
            "BEARER k2",
            "bearer k2",
            "BeArEr k2",
            "Bearer \tk2 ",
            "  Bearer k2",
        ] {
            assert_eq!(
                presented_key(&headers("authorization", value)),
                Some("k2"),
                "{value:?}"
            );
        }
    }

    #[test]
    fn matching() {
        let a = StaticKeys::new(&["k1".into(), "k2".into()]);
        assert!(a.matches("k2") && !a.matches("k3") && !a.matches(""));
        assert!(StaticKeys::new(&[]).is_empty());
    }

    #[test]
    fn debug_shows_no_key_material() {
        let a = StaticKeys::new(&["secret-key".into()]);
        assert_eq!(format!("{a:?}"), "StaticKeys { keys: 1 }");
    }
}
