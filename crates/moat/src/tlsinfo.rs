//! For `moat doctor`: a direct TLS handshake with the endpoint (rustls, verifying against the same
//! roots as every request) that reports the protocol version, cipher suite, ALPN and the certificate
//! chain the server presented — also when verification fails, which is when the chain matters most.

use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::net::reason::tls_reason;
use crate::Error;

const TIMEOUT: Duration = Duration::from_secs(10);

/// What the handshake showed.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsReport {
    pub version: String,
    pub cipher: String,
    pub alpn: Option<String>,
    pub chain: Vec<CertInfo>,
    /// `Err(reason)` when the server's certificate was refused.
    pub verified: Result<(), String>,
}

/// One certificate of the chain, as a person reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct CertInfo {
    pub subject: String,
    pub issuer: String,
    /// `YYYY-MM-DD` (UTC).
    pub not_after: String,
    pub expired: bool,
}

/// Records the chain the server presents, then lets the real WebPKI verifier decide.
#[derive(Debug)]
struct Recording {
    inner: Arc<WebPkiServerVerifier>,
    seen: Mutex<Vec<CertificateDer<'static>>>,
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        *seen = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|c| c.clone().into_owned())
            .collect();
        drop(seen);
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Connects to `host:port` and performs a verifying handshake.
pub fn probe(host: &str, port: u16, roots: RootCertStore) -> Result<TlsReport, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| Error::usage(format!("no usable trust anchors: {e}")))?;
    let recorder = Arc::new(Recording {
        inner,
        seen: Mutex::default(),
    });
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::usage(format!("TLS set-up: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(recorder.clone())
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let name = ServerName::try_from(host.to_owned())
        .map_err(|_| Error::usage(format!("'{host}' is not a valid server name")))?;
    let mut conn = ClientConnection::new(Arc::new(config), name)
        .map_err(|e| Error::usage(format!("TLS set-up: {e}")))?;

    let addr = (host, port)
        .to_socket_addrs()
        .map_err(|e| Error::Network(format!("cannot resolve {host}: {e}")))?
        .next()
        .ok_or_else(|| Error::Network(format!("cannot resolve {host}")))?;
    let mut tcp = TcpStream::connect_timeout(&addr, TIMEOUT)
        .map_err(|e| Error::Network(format!("cannot connect to {host}:{port}: {e}")))?;
    let _ = tcp.set_read_timeout(Some(TIMEOUT));
    let _ = tcp.set_write_timeout(Some(TIMEOUT));

    let mut verified = Ok(());
    while conn.is_handshaking() {
        if let Err(e) = conn.complete_io(&mut tcp) {
            verified = Err(match crate::net::reason::tls_in_io(&e) {
                Some(tls) => tls_reason(tls, host),
                None => format!("handshake failed: {e}"),
            });
            break;
        }
    }
    let chain = recorder
        .seen
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .map(|c| describe(c))
        .collect();
    let report = TlsReport {
        version: conn
            .protocol_version()
            .map(|v| format!("{v:?}"))
            .unwrap_or_else(|| "-".into()),
        cipher: conn
            .negotiated_cipher_suite()
            .map(|s| format!("{:?}", s.suite()))
            .unwrap_or_else(|| "-".into()),
        alpn: conn
            .alpn_protocol()
            .map(|p| String::from_utf8_lossy(p).into_owned()),
        chain,
        verified,
    };
    if report.verified.is_ok() {
        conn.send_close_notify();
        let _ = conn.complete_io(&mut tcp);
        let _ = tcp.flush();
    }
    Ok(report)
}

/// Subject, issuer and expiry of a DER certificate; unparseable ones are said to be so.
pub fn describe(der: &CertificateDer<'_>) -> CertInfo {
    match x509_parser::parse_x509_certificate(der.as_ref()) {
        Ok((_, cert)) => {
            let not_after = cert.validity().not_after.timestamp();
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or_default();
            CertInfo {
                subject: cert.subject().to_string(),
                issuer: cert.issuer().to_string(),
                not_after: date(not_after),
                expired: not_after < now,
            }
        }
        Err(e) => CertInfo {
            subject: format!("(unparseable certificate: {e})"),
            issuer: "-".into(),
            not_after: "-".into(),
            expired: false,
        },
    }
}

/// Unix seconds as a UTC `YYYY-MM-DD`.
pub fn date(unix: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(unix) {
        Ok(t) => format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day()),
        Err(_) => format!("(out of range: {unix})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(951_782_400), "2000-02-29");
        assert_eq!(date(1_767_225_599), "2025-12-31");
        assert_eq!(date(-86_400), "1969-12-31");
    }

    #[test]
    fn describes_garbage() {
        let info = describe(&CertificateDer::from(vec![1, 2, 3]));
        assert!(info.subject.starts_with("(unparseable"));
    }
}
