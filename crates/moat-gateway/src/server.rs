//! The socket side: accepting connections (HTTP/1.1 and HTTP/2, over TLS when configured), the
//! connection limit and graceful shutdown. Each connection's deadlines (headers, idle, writes) live in
//! [`conn`]; everything about requests lives in the router.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::gateway::{router, Gateway};

mod conn;
mod per_core;

use conn::{Accepted, ConnLimits};
pub use per_core::{bind_per_core, serve_per_core};

/// Largest request head (request line plus headers) accepted over HTTP/1.1, and the header-list
/// limit over HTTP/2. Larger gets 431 from hyper; LLM requests carry their weight in the body.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// How long in-flight requests get to finish after shutdown begins (streams can be long; we do not
/// wait for them forever).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Loads a certificate chain and private key (PEM) into a rustls server config offering HTTP/2 and
/// HTTP/1.1. Errors name the file and never include key material.
pub fn load_tls(cert: &std::path::Path, key: &std::path::Path) -> Result<Arc<rustls::ServerConfig>, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("{}: no certificates", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("certificate and key do not match or are unusable: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves `gateway` on `listener` until `shutdown` completes, then stops accepting and lets open
/// requests finish (up to [`SHUTDOWN_GRACE`]).
pub async fn serve(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let settings = gateway.server.clone();
    let tls = match &settings.tls {
        Some((cert, key)) => Some(tokio_rustls::TlsAcceptor::from(
            load_tls(cert, key).map_err(std::io::Error::other)?,
        )),
        None => None,
    };
    let limits = ConnLimits {
        header_read: settings.header_read_timeout,
        write: settings.write_timeout,
    };
    // Health checks run as long as the gateway serves.
    let _checks = crate::health::spawn_checks(&gateway.health);
    // Like the health checks, the key watch runs once per process (on core 0), not once per core.
    let _keys = KeyWatch::spawn(gateway.clone());
    let app = router(gateway.clone());
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout)
        .max_buf_size(MAX_HEADER_BYTES)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_HEADER_BYTES as u32)
        .max_concurrent_streams(256)
        .keep_alive_interval(Some(Duration::from_secs(30)));
    let builder = Arc::new(builder);
    // One limit for the whole gateway, however many cores serve it.
    let permits = gateway.connections.clone();
    // Connections watch `draining`; each holds a clone of `open`, so `closed` ends when all are gone.
    let (draining, drain) = watch::channel(false);
    let (open, mut closed) = mpsc::channel::<()>(1);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Running out of file descriptors and similar are transient: wait, then go on.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let accepted = Accepted::new(limits);
        let service = accepted.service(app.clone(), peer);
        let builder = builder.clone();
        let drain = drain.clone();
        let tls = tls.clone();
        let open = open.clone();
        tokio::spawn(async move {
            let result = match tls {
                None => accepted.serve(&builder, stream, service, drain).await,
                Some(acceptor) => {
                    // The handshake counts against the same deadline as the headers that follow.
                    let deadline = accepted.header_deadline();
                    match tokio::time::timeout_at(deadline, acceptor.accept(stream)).await {
                        Ok(Ok(tls_stream)) => accepted.serve(&builder, tls_stream, service, drain).await,
                        Ok(Err(e)) => Err(format!("TLS handshake failed: {e}").into()),
                        Err(_) => Err("TLS handshake not finished before the header deadline".into()),
                    }
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(permit);
            drop(open);
        });
    }
    drop(listener);
    let _ = draining.send(true);
    drop(open);
    tokio::select! {
        _ = closed.recv() => {}
        () = tokio::time::sleep(SHUTDOWN_GRACE) => {
            tracing::warn!("shutdown grace period over; closing remaining connections");
        }
    }
    // Settlements are sent by the core that served the request; let them land before its runtime
    // (and the tasks sending them) goes away.
    gateway.limits.drain().await;
    Ok(())
}

/// Reloads the key table in the background whenever the store's keys version moves (a shared store
/// learns of changes from notifications and polling), so revocations take effect on this node
/// without waiting for a request to notice, and no request pays for the reload.
struct KeyWatch(tokio::task::JoinHandle<()>);

impl KeyWatch {
    const EVERY: Duration = Duration::from_millis(100);

    /// Starts the watch on core 0 only (see [`per_core`]); other cores get `None`.
    fn spawn(gateway: Arc<Gateway>) -> Option<KeyWatch> {
        if moat_upstream::worker::current() != 0 {
            return None;
        }
        Some(KeyWatch(tokio::spawn(async move {
            loop {
                tokio::time::sleep(Self::EVERY).await;
                let gw = gateway.clone();
                let refreshed =
                    tokio::task::spawn_blocking(move || gw.identities.refresh(crate::ledger::now())).await;
                if let Ok(Err(e)) = refreshed {
                    tracing::debug!(error = %e, "key table not refreshed");
                }
            }
        })))
    }
}

impl Drop for KeyWatch {
    fn drop(&mut self) {
        self.0.abort();
    }
}
