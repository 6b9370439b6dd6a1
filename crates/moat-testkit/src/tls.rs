//! A throwaway certificate authority for tests: it issues server identities and builds the rustls
//! configurations on both sides, so TLS in tests is verified TLS, never an "accept anything" switch.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::Error;

/// ALPN protocols offered by both sides, h2 first so clients that can speak HTTP/2 do.
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// A certificate authority made fresh for one test run; its key never leaves memory.
///
/// ```
/// # fn main() -> Result<(), moat_testkit::Error> {
/// let ca = moat_testkit::TestCa::new("moat test CA")?;
/// let identity = ca.issue(&["localhost", "127.0.0.1"])?;
/// assert!(ca.cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
/// assert_eq!(identity.cert_chain().len(), 2);
/// # Ok(()) }
/// ```
pub struct TestCa {
    /// Kept whole because rcgen signs leaves with the issuer's parameters, not just its DER.
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl TestCa {
    /// Makes a self-signed CA whose common name is `name`.
    pub fn new(name: &str) -> Result<TestCa, Error> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = distinguished_name(name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        Ok(TestCa { cert, key })
    }

    /// The CA certificate in PEM, as a client's `ca_file` expects it.
    pub fn cert_pem(&self) -> String {
        self.cert.pem()
    }

    /// The CA certificate in DER, for building a root store in code.
    pub fn cert_der(&self) -> CertificateDer<'static> {
        self.cert.der().clone()
    }

    /// Writes [`TestCa::cert_pem`] to `path`, e.g. for a config's CA bundle or `SSL_CERT_FILE`.
    pub fn write_cert_pem(&self, path: &Path) -> Result<(), Error> {
        fs::write(path, self.cert_pem())
            .map_err(|e| Error::io(format!("writing CA certificate to {}", path.display()), e))
    }

    /// Issues a server certificate for `names`; entries that parse as IP addresses become IP SANs,
    /// the rest DNS SANs. The first name is also the subject's common name.
    pub fn issue(&self, names: &[&str]) -> Result<ServerIdentity, Error> {
        let sans: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(sans)?;
        params.distinguished_name = distinguished_name(names.first().copied().unwrap_or("moat test server"));
        params.is_ca = IsCa::NoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate()?;
        let leaf = params.signed_by(&key, &self.cert, &self.key)?;
        Ok(ServerIdentity {
            chain: vec![leaf.der().clone(), self.cert_der()],
            chain_pem: format!("{}{}", leaf.pem(), self.cert.pem()),
            key_der: key.serialize_der(),
            key_pem: key.serialize_pem(),
        })
    }

    /// A root store holding only this CA.
    pub fn root_store(&self) -> Result<RootCertStore, Error> {
        let mut roots = RootCertStore::empty();
        roots.add(self.cert_der())?;
        Ok(roots)
    }

    /// A rustls client configuration (ring provider) that trusts only this CA and offers h2 and
    /// http/1.1 by ALPN; hand it to `reqwest::ClientBuilder::tls_backend_preconfigured`.
    pub fn client_config(&self) -> Result<ClientConfig, Error> {
        let mut config =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()?
                .with_root_certificates(self.root_store()?)
                .with_no_client_auth();
        config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
        Ok(config)
    }
}

fn distinguished_name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

/// A server's certificate chain (leaf first, then the CA) and its private key.
#[derive(Clone)]
pub struct ServerIdentity {
    chain: Vec<CertificateDer<'static>>,
    /// PEM forms are kept so a server configured by file (moatd) can be given the same identity.
    chain_pem: String,
    key_der: Vec<u8>,
    key_pem: String,
}

impl std::fmt::Debug for ServerIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key is a test key, but keys stay out of debug output on principle.
        f.debug_struct("ServerIdentity")
            .field("chain_len", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl ServerIdentity {
    /// Leaf certificate first, then the issuing CA.
    pub fn cert_chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// The leaf's private key (PKCS#8).
    pub fn private_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()))
    }

    /// The chain in PEM (leaf, then CA).
    pub fn cert_chain_pem(&self) -> &str {
        &self.chain_pem
    }

    /// The private key in PKCS#8 PEM.
    pub fn private_key_pem(&self) -> &str {
        &self.key_pem
    }

    /// Writes the chain and the key as PEM files, for servers configured by path.
    pub fn write_pem(&self, cert_path: &Path, key_path: &Path) -> Result<(), Error> {
        fs::write(cert_path, &self.chain_pem)
            .map_err(|e| Error::io(format!("writing certificate chain to {}", cert_path.display()), e))?;
        fs::write(key_path, &self.key_pem)
            .map_err(|e| Error::io(format!("writing private key to {}", key_path.display()), e))
    }

    /// A rustls server configuration (ring provider) presenting this identity, offering h2 and
    /// http/1.1 by ALPN.
    pub fn server_config(&self) -> Result<ServerConfig, Error> {
        let mut config =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()?
                .with_no_client_auth()
                .with_single_cert(self.chain.clone(), self.private_key())?;
        config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_identity_builds_both_configs() {
        let ca = TestCa::new("unit CA").unwrap();
        let id = ca.issue(&["localhost", "127.0.0.1", "::1"]).unwrap();
        let server = id.server_config().unwrap();
        assert_eq!(server.alpn_protocols, vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
        let client = ca.client_config().unwrap();
        assert_eq!(client.alpn_protocols.len(), 2);
        assert!(id.cert_chain_pem().matches("BEGIN CERTIFICATE").count() == 2);
        assert!(id.private_key_pem().contains("BEGIN PRIVATE KEY"));
    }

    #[test]
    fn writes_pem_files() {
        let dir = std::env::temp_dir().join(format!("moat-testkit-tls-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let ca = TestCa::new("unit CA").unwrap();
        ca.write_cert_pem(&dir.join("ca.pem")).unwrap();
        let id = ca.issue(&["localhost"]).unwrap();
        id.write_pem(&dir.join("cert.pem"), &dir.join("key.pem")).unwrap();
        let written = fs::read_to_string(dir.join("ca.pem")).unwrap();
        assert_eq!(written, ca.cert_pem());
        fs::remove_dir_all(&dir).unwrap();
    }
}
