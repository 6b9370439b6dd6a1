//! Turning transport failures into one line a person can act on: which TLS check failed (unknown
//! issuer, expired, name mismatch), or why the connection did not happen.

use rustls::{CertificateError, Error as TlsError};

use crate::Error;

/// The reason a certificate or handshake was refused, in words.
pub fn tls_reason(e: &TlsError, host: &str) -> String {
    match e {
        TlsError::InvalidCertificate(cert) => match cert {
            CertificateError::UnknownIssuer => {
                "certificate not trusted (unknown issuer); if this is your own CA, pass --cacert FILE \
                 or set SSL_CERT_FILE"
                    .to_owned()
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "certificate expired".to_owned()
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "certificate not valid yet (check the clock)".to_owned()
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!("certificate name mismatch (not valid for {host})")
            }
            CertificateError::Revoked => "certificate revoked".to_owned(),
            CertificateError::BadSignature => "certificate has a bad signature".to_owned(),
            other => format!("certificate refused ({other:?})"),
        },
        TlsError::AlertReceived(alert) => format!("the server refused the handshake ({alert:?})"),
        other => other.to_string(),
    }
}

/// The rustls error inside an I/O error, where rustls's stream adapters put it.
pub fn tls_in_io(e: &std::io::Error) -> Option<&TlsError> {
    e.get_ref()?.downcast_ref::<TlsError>()
}

/// One failure of the HTTP client, classified.
pub fn from_ureq(e: ureq::Error, host: &str, port: u16) -> Error {
    let tls = |reason: String| Error::Tls {
        host: host.to_owned(),
        reason,
    };
    match e {
        ureq::Error::Rustls(t) => tls(tls_reason(&t, host)),
        ureq::Error::Io(io) => match tls_in_io(&io) {
            Some(t) => tls(tls_reason(t, host)),
            None => Error::Network(io_reason(&io, host, port)),
        },
        ureq::Error::Tls(what) => tls(what.to_owned()),
        ureq::Error::HostNotFound => Error::Network(format!("cannot resolve host {host}")),
        ureq::Error::Timeout(which) => Error::Network(format!("{host}:{port} timed out ({which})")),
        ureq::Error::ConnectionFailed => Error::Network(format!("cannot connect to {host}:{port}")),
        ureq::Error::ConnectProxyFailed(why) => Error::Network(format!("the proxy refused: {why}")),
        ureq::Error::InvalidProxyUrl => Error::usage("the proxy URL in the environment is invalid"),
        ureq::Error::TooManyRedirects | ureq::Error::RedirectFailed => {
            Error::Network(format!("{host} redirected; use the final URL as --base-url"))
        }
        other => Error::Network(format!("request to {host}:{port} failed: {other}")),
    }
}

fn io_reason(e: &std::io::Error, host: &str, port: u16) -> String {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::ConnectionRefused => format!("connection refused by {host}:{port}"),
        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::UnexpectedEof => {
            format!("{host}:{port} closed the connection")
        }
        ErrorKind::TimedOut => format!("{host}:{port} timed out"),
        _ => format!("{host}:{port}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons() {
        let unknown = TlsError::InvalidCertificate(CertificateError::UnknownIssuer);
        assert!(tls_reason(&unknown, "h").starts_with("certificate not trusted (unknown issuer)"));
        let name = TlsError::InvalidCertificate(CertificateError::NotValidForName);
        assert_eq!(
            tls_reason(&name, "h"),
            "certificate name mismatch (not valid for h)"
        );
        let expired = TlsError::InvalidCertificate(CertificateError::Expired);
        assert_eq!(tls_reason(&expired, "h"), "certificate expired");
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, unknown);
        let e = from_ureq(ureq::Error::Io(io), "h", 1);
        assert!(matches!(e, Error::Tls { .. }), "{e:?}");
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(
            from_ureq(ureq::Error::Io(refused), "h", 1).to_string(),
            "connection refused by h:1"
        );
    }
}
