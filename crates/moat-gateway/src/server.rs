//! The socket side: accepting connections (HTTP/1.1 and HTTP/2, over TLS when configured), the
//! connection limit, handshake and header time-outs, and graceful shutdown. Everything about requests
//! lives in the router.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

use crate::gateway::{router, Gateway};

mod per_core;

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
    let limits = gateway.server.clone();
    let tls = match &limits.tls {
        Some((cert, key)) => Some(tokio_rustls::TlsAcceptor::from(
            load_tls(cert, key).map_err(std::io::Error::other)?,
        )),
        None => None,
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
        .header_read_timeout(limits.header_read_timeout)
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
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
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
        let service = TowerToHyperService::new(WithPeer {
            inner: app.clone(),
            peer,
        });
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let tls = tls.clone();
        let handshake_timeout = limits.header_read_timeout;
        tokio::spawn(async move {
            let result = match tls {
                None => serve_io(&builder, watcher, stream, service).await,
                Some(acceptor) => {
                    match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(tls_stream)) => serve_io(&builder, watcher, tls_stream, service).await,
                        Ok(Err(e)) => Err(format!("TLS handshake failed: {e}").into()),
                        Err(_) => Err("TLS handshake timed out".into()),
                    }
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(SHUTDOWN_GRACE) => {
            tracing::warn!("shutdown grace period over; closing remaining connections");
        }
    }
    Ok(())
}

type ServiceFor = TowerToHyperService<WithPeer>;

/// The router, with the client's address put into each request (as axum's `ConnectInfo`) for the
/// audit record.
#[derive(Clone)]
struct WithPeer {
    inner: axum::Router,
    peer: std::net::SocketAddr,
}

impl tower::Service<http::Request<hyper::body::Incoming>> for WithPeer {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = <axum::Router as tower::Service<http::Request<hyper::body::Incoming>>>::Future;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        <axum::Router as tower::Service<http::Request<hyper::body::Incoming>>>::poll_ready(
            &mut self.inner,
            cx,
        )
    }

    fn call(&mut self, mut req: http::Request<hyper::body::Incoming>) -> Self::Future {
        req.extensions_mut().insert(axum::extract::ConnectInfo(self.peer));
        self.inner.call(req)
    }
}

/// Serves one connection (plain or TLS) until it closes or shutdown drains it.
async fn serve_io<I>(
    builder: &auto::Builder<TokioExecutor>,
    watcher: hyper_util::server::graceful::Watcher,
    io: I,
    service: ServiceFor,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    watcher.watch(conn.into_owned()).await
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
