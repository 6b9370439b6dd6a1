//! The server secret and what it protects: virtual keys are stored only as HMAC-SHA-256 under it, and
//! provider credentials are sealed with ChaCha20-Poly1305 under a key derived from it.
//!
//! The secret comes from `MOAT_SECRET` or from a file created on first start with mode 0600. A secret
//! file that group or others can read is refused, as ssh refuses such a private key.

use std::path::Path;

use base64::Engine;
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// What went wrong loading the secret or sealing data.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secret file {path}: {message}")]
    File { path: String, message: String },
    #[error("secret file {0} is readable by group or others; run: chmod 600 {0}")]
    Permissions(String),
    #[error("no randomness available from the OS: {0}")]
    Random(String),
    #[error("a stored provider credential could not be decrypted (wrong MOAT_SECRET, or tampered data)")]
    Decrypt,
}

/// 32 secret bytes. Debug output never shows them.
#[derive(Clone)]
pub struct ServerSecret([u8; 32]);

impl std::fmt::Debug for ServerSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerSecret(..)")
    }
}

fn random<const N: usize>() -> Result<[u8; N], SecretError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| SecretError::Random(e.to_string()))?;
    Ok(buf)
}

impl ServerSecret {
    /// From any text (e.g. `MOAT_SECRET`): hashed to 32 bytes, so any length works.
    pub fn from_text(text: &str) -> ServerSecret {
        ServerSecret(Sha256::digest(text.trim().as_bytes()).into())
    }

    /// Reads the secret file, creating it (0600, 32 random bytes, hex) if it does not exist.
    pub fn load_or_create(path: &Path) -> Result<ServerSecret, SecretError> {
        let label = path.display().to_string();
        let fail = |e: std::io::Error| SecretError::File {
            path: label.clone(),
            message: e.to_string(),
        };
        match std::fs::metadata(path) {
            Ok(meta) => {
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    if meta.permissions().mode() & 0o077 != 0 {
                        return Err(SecretError::Permissions(label));
                    }
                }
                #[cfg(not(unix))]
                let _ = meta;
                let text = std::fs::read_to_string(path).map_err(fail)?;
                if text.trim().len() < 32 {
                    return Err(SecretError::File {
                        path: label,
                        message: "too short (want 32+ characters)".into(),
                    });
                }
                Ok(ServerSecret::from_text(&text))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                moat_fs::create_parent(path).map_err(fail)?;
                let bytes: [u8; 32] = random()?;
                let text: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                moat_fs::write_new(path, format!("{text}\n").as_bytes()).map_err(fail)?;
                tracing::info!(path = %label, "created a new server secret");
                Ok(ServerSecret::from_text(&text))
            }
            Err(e) => Err(fail(e)),
        }
    }

    /// HMAC-SHA-256 keyed with the secret. HMAC zero-pads keys to the hash's 64-byte block, so building
    /// it from the padded block is the same function, and infallible.
    fn mac(&self) -> Hmac<Sha256> {
        let mut block = [0u8; 64];
        block[..32].copy_from_slice(&self.0);
        <Hmac<Sha256> as KeyInit>::new(hmac::digest::generic_array::GenericArray::from_slice(&block))
    }

    /// The keyed hash a virtual key is stored and looked up by.
    pub fn hash_key(&self, key: &str) -> [u8; 32] {
        let mut mac = self.mac();
        mac.update(b"moat virtual key v1\0");
        mac.update(key.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The value a tenant's requests carry in the provider's cache-partition field: HMAC of the
    /// tenant id (and of the client's own value, namespaced under the tenant, when it sent one),
    /// truncated to 128 bits and base64url-encoded (22 characters). The provider learns neither the
    /// tenant nor the client's value, and without the secret nobody can link a value to a tenant.
    pub fn cache_partition(&self, tenant: &str, client: Option<(&str, &str)>) -> String {
        let mut mac = self.mac();
        mac.update(b"moat cache partition v1\0");
        mac.update(&(tenant.len() as u64).to_be_bytes());
        mac.update(tenant.as_bytes());
        if let Some((field, value)) = client {
            mac.update(&(field.len() as u64).to_be_bytes());
            mac.update(field.as_bytes());
            mac.update(&(value.len() as u64).to_be_bytes());
            mac.update(value.as_bytes());
        }
        let digest: [u8; 32] = mac.finalize().into_bytes().into();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..16])
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        // A separate key for encryption, so the HMAC key and the AEAD key are never the same bytes.
        let mut mac = self.mac();
        mac.update(b"moat provider credential encryption v1");
        let key: [u8; 32] = mac.finalize().into_bytes().into();
        ChaCha20Poly1305::new(&key.into())
    }

    /// Seals a provider credential; the provider name is bound as associated data, so a sealed key
    /// cannot be moved to another provider's row.
    pub fn seal(&self, provider: &str, plaintext: &str) -> Result<(Vec<u8>, Vec<u8>), SecretError> {
        let nonce: [u8; 12] = random()?;
        let ct = self
            .cipher()
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: provider.as_bytes(),
                },
            )
            .map_err(|_| SecretError::Decrypt)?;
        Ok((nonce.to_vec(), ct))
    }

    /// The key conversation state is sealed with: derived apart from the credential key, so one
    /// kind of sealed data can never be opened as the other.
    fn state_cipher(&self) -> ChaCha20Poly1305 {
        let mut mac = self.mac();
        mac.update(b"moat conversation state encryption v1");
        let key: [u8; 32] = mac.finalize().into_bytes().into();
        ChaCha20Poly1305::new(&key.into())
    }

    /// Seals stored conversation state; `bound` (the tenant and response id) is associated data, so a
    /// sealed turn moved to another tenant's or another id's row no longer opens.
    pub fn seal_state(&self, bound: &str, plaintext: &[u8]) -> Result<(Vec<u8>, Vec<u8>), SecretError> {
        let nonce: [u8; 12] = random()?;
        let ct = self
            .state_cipher()
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: bound.as_bytes(),
                },
            )
            .map_err(|_| SecretError::Decrypt)?;
        Ok((nonce.to_vec(), ct))
    }

    /// Opens what [`ServerSecret::seal_state`] sealed under the same `bound`.
    pub fn open_state(&self, bound: &str, nonce: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>, SecretError> {
        if nonce.len() != 12 {
            return Err(SecretError::Decrypt);
        }
        self.state_cipher()
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: bound.as_bytes(),
                },
            )
            .map_err(|_| SecretError::Decrypt)
    }

    /// Opens what [`ServerSecret::seal`] sealed.
    pub fn open(&self, provider: &str, nonce: &[u8], ciphertext: &[u8]) -> Result<String, SecretError> {
        if nonce.len() != 12 {
            return Err(SecretError::Decrypt);
        }
        let pt = self
            .cipher()
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: provider.as_bytes(),
                },
            )
            .map_err(|_| SecretError::Decrypt)?;
        String::from_utf8(pt).map_err(|_| SecretError::Decrypt)
    }
}

/// A fresh virtual key: `moat-` and 256 random bits in URL-safe base64.
pub fn new_virtual_key() -> Result<String, SecretError> {
    let bytes: [u8; 32] = random()?;
    Ok(format!(
        "moat-{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

/// A short random id (keys, teams): not secret, just unique.
pub fn new_id(kind: &str) -> Result<String, SecretError> {
    let bytes: [u8; 6] = random()?;
    Ok(format!(
        "{kind}_{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    ))
}

/// A fresh Responses API id: `resp_` and 192 random bits in hex. Unguessable, though a guess would
/// not help: stored turns are looked up by id *and* tenant.
pub fn new_response_id() -> Result<String, SecretError> {
    let bytes: [u8; 24] = random()?;
    Ok(format!(
        "resp_{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    ))
}

/// The non-secret start of a key shown in listings (`moat-AbCdEfGh`).
pub fn display_prefix(key: &str) -> String {
    key.chars().take(13).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data/secret");
        let a = ServerSecret::load_or_create(&path).unwrap();
        let b = ServerSecret::load_or_create(&path).unwrap();
        assert_eq!(a.hash_key("moat-x"), b.hash_key("moat-x"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert!(matches!(
                ServerSecret::load_or_create(&path),
                Err(SecretError::Permissions(_))
            ));
        }
    }

    #[test]
    fn sealing_binds_the_provider_and_the_secret() {
        let s = ServerSecret::from_text("one");
        let (nonce, ct) = s.seal("openrouter", "sk-or-123").unwrap();
        assert!(!String::from_utf8_lossy(&ct).contains("sk-or-123"));
        assert_eq!(s.open("openrouter", &nonce, &ct).unwrap(), "sk-or-123");
        assert!(s.open("other", &nonce, &ct).is_err());
        assert!(ServerSecret::from_text("two")
            .open("openrouter", &nonce, &ct)
            .is_err());
    }

    #[test]
    fn sealed_state_binds_tenant_and_id_and_never_opens_as_a_credential() {
        let s = ServerSecret::from_text("one");
        let (nonce, ct) = s.seal_state("team:a\0resp_1", b"the conversation").unwrap();
        assert!(!String::from_utf8_lossy(&ct).contains("conversation"));
        assert_eq!(
            s.open_state("team:a\0resp_1", &nonce, &ct).unwrap(),
            b"the conversation"
        );
        assert!(s.open_state("team:b\0resp_1", &nonce, &ct).is_err());
        assert!(s.open_state("team:a\0resp_2", &nonce, &ct).is_err());
        assert!(s.open("team:a\0resp_1", &nonce, &ct).is_err());
        assert!(ServerSecret::from_text("two")
            .open_state("team:a\0resp_1", &nonce, &ct)
            .is_err());
    }

    #[test]
    fn cache_partitions_differ_per_tenant_secret_and_client_value() {
        let s = ServerSecret::from_text("one");
        let a = s.cache_partition("team:t1", None);
        assert_eq!(a.len(), 22, "{a}");
        assert!(a
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(a, s.cache_partition("team:t1", None), "stable");
        assert_ne!(a, s.cache_partition("team:t2", None));
        assert_ne!(a, ServerSecret::from_text("two").cache_partition("team:t1", None));
        let with_client = s.cache_partition("team:t1", Some(("user", "alice")));
        assert_ne!(with_client, a);
        assert_ne!(with_client, s.cache_partition("team:t2", Some(("user", "alice"))));
        assert_ne!(
            with_client,
            s.cache_partition("team:t1", Some(("cache_salt", "alice")))
        );
        assert!(!with_client.contains("alice"));
        // Length prefixes keep the parts apart: moving a byte between tenant and value changes the tag.
        assert_ne!(
            s.cache_partition("ab", Some(("user", "c"))),
            s.cache_partition("a", Some(("user", "bc")))
        );
    }

    #[test]
    fn keys_look_right_and_hash_differently_per_secret() {
        let k = new_virtual_key().unwrap();
        assert!(k.starts_with("moat-") && k.len() == 5 + 43, "{k}");
        assert_ne!(k, new_virtual_key().unwrap());
        assert_ne!(
            ServerSecret::from_text("a").hash_key(&k),
            ServerSecret::from_text("b").hash_key(&k)
        );
        assert_eq!(display_prefix(&k).len(), 13);
        assert!(format!("{:?}", ServerSecret::from_text("a")) == "ServerSecret(..)");
    }
}
