//! The HTTP side of the client: one blocking `ureq` agent per endpoint, with rustls that always
//! verifies (system roots honouring `SSL_CERT_FILE`/`SSL_CERT_DIR`, Mozilla's roots when the system
//! has none, plus `--cacert` files), the proxy the environment asks for, no redirects (a redirect
//! would carry the key somewhere the user did not name), and failures classified by [`reason`].

pub mod proxy;
pub mod reason;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};

use crate::cli::Common;
use crate::config::{ConfigFile, Endpoint};
use crate::keys::{self, ApiKey, KeySource};
use crate::paths::Env;
use crate::Error;

/// Responses larger than this are refused (OpenRouter's full model list is a few MiB).
const MAX_BODY: u64 = 64 * 1024 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// The trust anchors for one run, and where they came from (for `moat doctor`).
#[derive(Debug, Clone, Default)]
pub struct Trust {
    system: Vec<CertificateDer<'static>>,
    extra: Vec<CertificateDer<'static>>,
    /// The system store was empty, so Mozilla's roots (compiled in) are used instead.
    pub webpki_fallback: bool,
    /// Problems reading the system store that did not stop it from loading.
    pub warnings: Vec<String>,
    pub extra_files: Vec<PathBuf>,
}

impl Trust {
    /// Loads the system's roots and the extra PEM files. An extra file that cannot be read or holds
    /// no certificate is an error: the user asked to trust something specific.
    pub fn load(extra_files: &[PathBuf]) -> Result<Trust, Error> {
        let native = rustls_native_certs::load_native_certs();
        let warnings = native.errors.iter().map(|e| e.to_string()).collect();
        let mut extra = Vec::new();
        for path in extra_files {
            let certs: Vec<_> = CertificateDer::pem_file_iter(path)
                .map_err(|e| Error::usage(format!("cannot read CA file {}: {e}", path.display())))?
                .collect::<Result<_, _>>()
                .map_err(|e| Error::usage(format!("CA file {}: {e}", path.display())))?;
            if certs.is_empty() {
                return Err(Error::usage(format!(
                    "CA file {} holds no certificate",
                    path.display()
                )));
            }
            extra.extend(certs);
        }
        Ok(Trust {
            webpki_fallback: native.certs.is_empty(),
            system: native.certs,
            extra,
            warnings,
            extra_files: extra_files.to_vec(),
        })
    }

    pub fn system_count(&self) -> usize {
        self.system.len()
    }

    pub fn extra_count(&self) -> usize {
        self.extra.len()
    }

    /// A rustls root store with every anchor, for the direct handshake of `moat doctor`.
    pub fn root_store(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add_parsable_certificates(self.system.iter().chain(&self.extra).cloned());
        if self.webpki_fallback {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        roots
    }

    fn ureq_roots(&self) -> RootCerts {
        // ureq takes either certificates or Mozilla's anchors, not both; with no system store and
        // extra files, the extra files alone are trusted, which is what such a user asked for.
        if self.webpki_fallback && self.extra.is_empty() {
            return RootCerts::WebPki;
        }
        let all = self.system.iter().chain(&self.extra);
        RootCerts::new_with_certs(
            &all.map(|c| Certificate::from_der(c.as_ref()).to_owned())
                .collect::<Vec<_>>(),
        )
    }
}

/// A client for one endpoint, carrying the key (if any) on every request.
pub struct Client {
    agent: ureq::Agent,
    pub endpoint: Endpoint,
    key: Option<ApiKey>,
}

/// A response whose status was not an error, body not yet read.
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub body: ureq::Body,
}

impl Client {
    /// Builds the agent. Roots are loaded only for https endpoints: a loopback Ollama needs none.
    pub fn new(env: &Env, endpoint: Endpoint, key: Option<ApiKey>) -> Result<Client, Error> {
        let mut tls = TlsConfig::builder().provider(TlsProvider::Rustls);
        if endpoint.https {
            let trust = Trust::load(&endpoint.cacert)?;
            tls = tls
                .root_certs(trust.ureq_roots())
                .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()));
        }
        let proxy = match proxy::choose(env, endpoint.https, &endpoint.host) {
            Some(choice) => Some(
                ureq::Proxy::new(&choice.url)
                    .map_err(|_| Error::usage(format!("{} is not a usable proxy URL", choice.var)))?,
            ),
            None => None,
        };
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .user_agent(concat!("moat/", env!("CARGO_PKG_VERSION")))
            .tls_config(tls.build())
            .proxy(proxy)
            .build();
        Ok(Client {
            agent: config.into(),
            endpoint,
            key,
        })
    }

    /// The client for the selected profile, with its key; also returns the profile's name and where
    /// the key came from (for `moat doctor`).
    pub fn for_profile(env: &Env, common: &Common) -> Result<(Client, String, KeySource), Error> {
        let config = ConfigFile::load(env)?;
        let (name, profile) = config.select(common.profile.as_deref())?;
        let endpoint = Endpoint::resolve(&profile, common)?;
        let (key, source) = keys::find(env, &name, &profile)?;
        Ok((Client::new(env, endpoint, key)?, name, source))
    }

    fn fail(&self, e: ureq::Error) -> Error {
        reason::from_ureq(e, &self.endpoint.host, self.endpoint.port)
    }

    /// `POST base+path` with a JSON body. Error statuses become [`Error::Api`] with the server's message.
    pub fn post_json(&self, path: &str, body: &[u8]) -> Result<Reply, Error> {
        let mut request = self
            .agent
            .post(self.endpoint.url(path))
            .header("content-type", "application/json")
            .header("accept", "text/event-stream, application/json");
        if let Some(key) = &self.key {
            request = request.header("authorization", key.bearer());
        }
        let response = request.send(body).map_err(|e| self.fail(e))?;
        self.check(response, path)
    }

    /// `GET base+path`, whole body.
    pub fn get(&self, path: &str) -> Result<Vec<u8>, Error> {
        let mut request = self
            .agent
            .get(self.endpoint.url(path))
            .header("accept", "application/json");
        if let Some(key) = &self.key {
            request = request.header("authorization", key.bearer());
        }
        let response = request.call().map_err(|e| self.fail(e))?;
        let reply = self.check(response, path)?;
        self.read_all(reply.body)
    }

    pub fn read_all(&self, mut body: ureq::Body) -> Result<Vec<u8>, Error> {
        body.with_config()
            .limit(MAX_BODY)
            .read_to_vec()
            .map_err(|e| self.fail(e))
    }

    fn check(&self, response: http_response::Response, path: &str) -> Result<Reply, Error> {
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.into_body();
        if (200..300).contains(&status) {
            return Ok(Reply {
                status,
                content_type,
                body,
            });
        }
        if let Some(to) = location.filter(|_| (300..400).contains(&status)) {
            return Err(Error::Network(format!(
                "{} redirects to {to}; use that as --base-url",
                self.endpoint.url(path)
            )));
        }
        let bytes = body
            .into_with_config()
            .limit(64 * 1024)
            .read_to_vec()
            .unwrap_or_default();
        Err(Error::Api {
            context: format!("{} {path}", self.endpoint.host),
            message: crate::answer::error_message(status, &bytes),
        })
    }
}

/// ureq's response type, named once.
mod http_response {
    pub type Response = ureq::http::Response<ureq::Body>;
}
