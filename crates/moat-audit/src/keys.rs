//! The checkpoint signing key: an Ed25519 key made on first start and kept in a file only its owner
//! can read, and the exact bytes a checkpoint signature covers.

use std::path::Path;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

use crate::AuditError;

/// Separates checkpoint signatures from anything else this key could ever sign.
const CHECKPOINT_DOMAIN: &[u8] = b"moat-audit-checkpoint-v1\0";

/// The signed message: domain, then `seq` (u64 big-endian), then the record's 32-byte hash.
pub(crate) fn checkpoint_message(seq: u64, hash: &[u8; 32]) -> Vec<u8> {
    let mut m = Vec::with_capacity(CHECKPOINT_DOMAIN.len() + 8 + 32);
    m.extend_from_slice(CHECKPOINT_DOMAIN);
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(hash);
    m
}

pub(crate) fn sign_checkpoint(key: &SigningKey, seq: u64, hash: &[u8; 32]) -> [u8; 64] {
    key.sign(&checkpoint_message(seq, hash)).to_bytes()
}

/// True when `signature` is `public_key`'s signature over (seq, hash).
pub(crate) fn checkpoint_signature_ok(
    public_key: &[u8],
    seq: u64,
    hash: &[u8; 32],
    signature: &[u8],
) -> bool {
    let Ok(pk) = <[u8; 32]>::try_from(public_key) else {
        return false;
    };
    let Ok(sig) = <[u8; 64]>::try_from(signature) else {
        return false;
    };
    let Ok(vk) = VerifyingKey::from_bytes(&pk) else {
        return false;
    };
    vk.verify(&checkpoint_message(seq, hash), &Signature::from_bytes(&sig))
        .is_ok()
}

fn key_error(path: &Path, message: impl ToString) -> AuditError {
    AuditError::Key {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

/// Refuses a key file that group or others can read, as ssh refuses such a private key: anyone who
/// can read it can sign checkpoints for a rewritten log.
fn check_private(path: &Path, meta: &std::fs::Metadata) -> Result<(), AuditError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(AuditError::KeyPermissions(path.display().to_string()));
        }
    }
    #[cfg(not(unix))]
    let _ = (path, meta);
    Ok(())
}

fn read_key(path: &Path) -> Result<SigningKey, AuditError> {
    let meta = std::fs::metadata(path).map_err(|e| key_error(path, e))?;
    check_private(path, &meta)?;
    let text = std::fs::read_to_string(path).map_err(|e| key_error(path, e))?;
    let bytes = hex::decode(text.trim()).map_err(|_| key_error(path, "not a hex-encoded key"))?;
    let seed =
        <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| key_error(path, "not a 32-byte Ed25519 key"))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Reads the signing key, creating it (32 random bytes, hex, mode 0600) if the file does not exist.
/// The new key is written to a temporary file and hard-linked into place, so two processes starting
/// at once (the gateway and a `moatd keys` command) end up with the same complete key.
pub(crate) fn load_or_create(path: &Path) -> Result<SigningKey, AuditError> {
    match std::fs::metadata(path) {
        Ok(_) => return read_key(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(key_error(path, e)),
    }
    moat_fs::create_parent(path).map_err(|e| key_error(path, e))?;
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| key_error(path, format!("no randomness: {e}")))?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let text = format!("{}\n", hex::encode(seed));
    moat_fs::write_new(&tmp, text.as_bytes()).map_err(|e| key_error(&tmp, e))?;
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            tracing::info!(path = %path.display(), "created the audit signing key");
            Ok(SigningKey::from_bytes(&seed))
        }
        // Another process won the race: use its key.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_key(path),
        Err(e) => Err(key_error(path, e)),
    }
}

/// The public half of the key in `key_file`, for verifying without opening the log for writing.
/// Refuses a key file others can read, like opening the log does.
pub fn public_key_of(key_file: &Path) -> Result<[u8; 32], AuditError> {
    Ok(read_key(key_file)?.verifying_key().to_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_created_private_reused_and_refused_when_readable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/audit_signing_key");
        let a = load_or_create(&path).unwrap();
        let b = load_or_create(&path).unwrap();
        assert_eq!(a.to_bytes(), b.to_bytes());
        assert_eq!(public_key_of(&path).unwrap(), a.verifying_key().to_bytes());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
            assert!(matches!(
                load_or_create(&path),
                Err(AuditError::KeyPermissions(_))
            ));
            assert!(matches!(public_key_of(&path), Err(AuditError::KeyPermissions(_))));
        }
    }

    #[test]
    fn signatures_bind_seq_and_hash() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let pk = key.verifying_key().to_bytes();
        let sig = sign_checkpoint(&key, 10, &[1; 32]);
        assert!(checkpoint_signature_ok(&pk, 10, &[1; 32], &sig));
        assert!(!checkpoint_signature_ok(&pk, 11, &[1; 32], &sig));
        assert!(!checkpoint_signature_ok(&pk, 10, &[2; 32], &sig));
        let other = SigningKey::from_bytes(&[8; 32]).verifying_key().to_bytes();
        assert!(!checkpoint_signature_ok(&other, 10, &[1; 32], &sig));
        assert!(!checkpoint_signature_ok(&pk, 10, &[1; 32], &sig[..63]));
    }
}
