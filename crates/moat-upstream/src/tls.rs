//! TLS for upstream connections: rustls, always verifying, with the system's trust store (or the
//! webpki roots when the system has none) plus an optional per-provider CA file.
//!
//! There is deliberately no switch that turns verification off. A provider with a private CA gets a
//! `ca_file`; everything else must chain to a trusted root.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

use crate::UpstreamError;

/// The base trust store, loaded once per process: reading the system store costs milliseconds and every
/// provider shares it. Honours `SSL_CERT_FILE` / `SSL_CERT_DIR` (via rustls-native-certs).
fn base_roots() -> &'static RootCertStore {
    static ROOTS: OnceLock<RootCertStore> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let mut roots = RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        for cert in native.certs {
            // A malformed certificate in the system store is skipped, as curl and browsers do.
            let _ = roots.add(cert);
        }
        if roots.is_empty() {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        roots
    })
}

/// Reads every certificate from a PEM file, refusing a file that holds none (almost always a mistake,
/// e.g. a key file given by accident).
pub fn load_pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, UpstreamError> {
    let bad = |detail: String| UpstreamError::Config(format!("ca_file {}: {detail}", path.display()));
    let iter = CertificateDer::pem_file_iter(path).map_err(|e| bad(e.to_string()))?;
    let certs: Vec<_> = iter.collect::<Result<_, _>>().map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no PEM certificates found".to_string()));
    }
    Ok(certs)
}

/// Builds the rustls client config for one provider: base roots plus the provider's own CA file.
/// ALPN offers HTTP/2 first, then HTTP/1.1.
pub fn client_config(extra_ca: Option<&Path>) -> Result<ClientConfig, UpstreamError> {
    let mut roots = base_roots().clone();
    if let Some(path) = extra_ca {
        for cert in load_pem_certs(path)? {
            roots
                .add(cert)
                .map_err(|e| UpstreamError::Config(format!("ca_file {}: {e}", path.display())))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| UpstreamError::Config(format!("TLS set-up: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Turns a rustls error into the short reason a person can act on.
pub fn describe(err: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    match err {
        rustls::Error::InvalidCertificate(cert) => match cert {
            C::UnknownIssuer => "certificate not trusted (unknown issuer)".to_string(),
            C::Expired | C::ExpiredContext { .. } => "certificate expired".to_string(),
            C::NotValidYet | C::NotValidYetContext { .. } => "certificate not valid yet".to_string(),
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                "certificate name mismatch (not valid for this host)".to_string()
            }
            C::Revoked => "certificate revoked".to_string(),
            C::BadSignature => "certificate has a bad signature".to_string(),
            other => format!("invalid certificate ({other:?})"),
        },
        rustls::Error::AlertReceived(alert) => format!("TLS alert from server: {alert:?}"),
        other => format!("TLS handshake failed: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let err = client_config(Some(&path)).unwrap_err().to_string();
        assert!(err.contains("no PEM certificates"), "{err}");
        let missing = client_config(Some(&dir.path().join("missing.pem")))
            .unwrap_err()
            .to_string();
        assert!(missing.contains("missing.pem"), "{missing}");
    }

    #[test]
    fn reasons_are_readable() {
        let e = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        assert_eq!(describe(&e), "certificate not trusted (unknown issuer)");
        let e = rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName);
        assert!(describe(&e).contains("name mismatch"));
    }
}
