//! The socket side of the emulator: binding, TLS, HTTP/1.1 and HTTP/2 on every connection, shared
//! state, and shutdown. Everything about *what* is answered lives in the handler.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::conn::auto;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::stream::StreamCounters;
use crate::{handler, wire, Error, ServerIdentity};

/// A TLS handshake that has not finished by then is abandoned.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How an emulator behaves for its whole life; each request can add its own `emulate` directive.
#[derive(Debug, Clone, Default)]
pub struct EmulatorOptions {
    /// Serve HTTPS with this identity (ALPN h2 and http/1.1); `None` serves plain HTTP (and h2c).
    pub tls: Option<ServerIdentity>,
    /// When set, every request must carry `Authorization: Bearer <key>` or gets a 401.
    pub api_key: Option<String>,
    /// Replaces the `data` array of `GET /models` (and the price table used for `usage.cost`).
    pub models: Option<Value>,
    /// Replaces the `data` object of OpenRouter's `GET /api/v1/key` (e.g. `{"limit": 5,
    /// "limit_reset": "daily"}`); its `usage` is filled in with the spend so far when absent.
    /// `None` reports a key without any limit.
    pub key_report: Option<Value>,
    /// Simulate a provider prefix cache whose hits answer sooner (see [`crate::PrefixCacheOptions`]).
    pub prefix_cache: Option<crate::PrefixCacheOptions>,
    /// Refuse (400) any request member the wire does not define, as strict servers do (see
    /// `strict.rs` for the lists).
    pub strict: bool,
    /// Azure: the Entra application whose client credentials the token endpoint accepts; its tokens
    /// are then accepted as `Authorization: Bearer` on the Azure OpenAI routes.
    pub entra: Option<crate::cloud::EntraApp>,
    /// Gemini/Vertex: the service account (client email) whose signed JWTs `POST /token` exchanges
    /// for tokens (see [`crate::cloud::service_account_json`]).
    pub google_account: Option<String>,
    /// Bedrock: the keys (and web-identity role) SigV4 signatures are verified against.
    pub aws: Option<crate::cloud::AwsAccount>,
    /// Lifetime of issued tokens and temporary keys (default an hour).
    pub token_lifetime_secs: Option<u64>,
}

/// One request as the emulator received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    /// The path without the query string, e.g. `/v1/chat/completions`.
    pub path: String,
    pub version: http::Version,
    pub headers: http::HeaderMap,
    pub body: bytes::Bytes,
}

impl RecordedRequest {
    /// The body parsed as JSON, if it is JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// State every connection of one emulator shares.
pub(crate) struct Shared {
    pub(crate) api_key: Option<String>,
    pub(crate) models: Value,
    pub(crate) key_report: Option<Value>,
    pub(crate) streams: Arc<StreamCounters>,
    /// `None` for a standalone server: nobody could read the log, and a benchmark would grow it forever.
    requests: Option<Mutex<Vec<RecordedRequest>>>,
    /// Requests seen per directive text, for `times`.
    directive_hits: Mutex<HashMap<String, u64>>,
    next_id: AtomicU64,
    /// Dollars reported in `usage.cost` so far, for the OpenRouter key report.
    spent: Mutex<f64>,
    pub(crate) prefix_cache: Option<crate::prefix_cache::PrefixCache>,
    pub(crate) strict: bool,
    pub(crate) entra: Option<crate::cloud::EntraApp>,
    pub(crate) google: Option<String>,
    /// This emulator's own `/token` URL, the audience a service account's JWT must name.
    pub(crate) google_token_uri: Option<String>,
    pub(crate) aws: Option<crate::cloud::AwsAccount>,
    pub(crate) token_lifetime: Duration,
    pub(crate) issued: crate::cloud::Issued,
    /// The directive for requests that carry none (set by the test while the emulator runs).
    default_directive: Mutex<Option<Value>>,
}

impl Shared {
    fn new(opts: &EmulatorOptions, record: bool, origin: Option<String>) -> Shared {
        Shared {
            entra: opts.entra.clone(),
            google: opts.google_account.clone(),
            google_token_uri: origin.map(|o| format!("{o}/token")),
            aws: opts.aws.clone(),
            token_lifetime: Duration::from_secs(opts.token_lifetime_secs.unwrap_or(3600)),
            issued: crate::cloud::Issued::default(),
            default_directive: Mutex::default(),
            api_key: opts.api_key.clone(),
            models: opts.models.clone().unwrap_or_else(wire::default_models),
            key_report: opts.key_report.clone(),
            streams: Arc::default(),
            requests: record.then(Mutex::default),
            directive_hits: Mutex::default(),
            next_id: AtomicU64::new(1),
            spent: Mutex::new(0.0),
            prefix_cache: opts
                .prefix_cache
                .clone()
                .map(crate::prefix_cache::PrefixCache::new),
            strict: opts.strict,
        }
    }

    pub(crate) fn record(&self, request: RecordedRequest) {
        if let Some(log) = &self.requests {
            log.lock().unwrap_or_else(PoisonError::into_inner).push(request);
        }
    }

    pub(crate) fn set_default_directive(&self, directive: Option<Value>) {
        *self
            .default_directive
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = directive;
    }

    /// The request's own `emulate` directive, or the emulator's default when it has none.
    pub(crate) fn directive_for(&self, request: &Value) -> Result<crate::directive::Directive, String> {
        if request.get("emulate").is_some() {
            return crate::directive::Directive::from_request(request);
        }
        let default = self
            .default_directive
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match default {
            Some(d) => crate::directive::Directive::from_request(&serde_json::json!({ "emulate": d })),
            None => Ok(crate::directive::Directive::default()),
        }
    }

    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Counts this request against its directive and says whether it is still one of the first `times`.
    pub(crate) fn should_fail(&self, key: &str, times: Option<u64>) -> bool {
        let mut hits = self.directive_hits.lock().unwrap_or_else(PoisonError::into_inner);
        let seen = hits.entry(key.to_owned()).or_insert(0);
        *seen += 1;
        times.is_none_or(|limit| *seen <= limit)
    }

    pub(crate) fn add_spend(&self, dollars: f64) {
        *self.spent.lock().unwrap_or_else(PoisonError::into_inner) += dollars;
    }

    pub(crate) fn spent(&self) -> f64 {
        *self.spent.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running emulator on `127.0.0.1` and a port of the system's choosing; stops when dropped.
pub struct Emulator {
    addr: SocketAddr,
    tls: bool,
    shared: Arc<Shared>,
    /// Flipping this (or dropping it) tells the accept loop and every connection to stop.
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Emulator {
    /// Binds `127.0.0.1:0` and starts serving in the background.
    pub async fn start(opts: EmulatorOptions) -> Result<Emulator, Error> {
        Emulator::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), opts).await
    }

    /// Binds `addr` and starts serving in the background. With the address of an emulator that was
    /// [`Emulator::shutdown`], this brings "the same provider" back, as a restarted server would
    /// (failover tests). Its request log and counters start empty.
    pub async fn start_on(addr: SocketAddr, opts: EmulatorOptions) -> Result<Emulator, Error> {
        let listener = bind(addr).await?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::io("reading the bound address", e))?;
        let acceptor = acceptor(&opts)?;
        let origin = match opts.tls {
            Some(_) => format!("https://localhost:{}", addr.port()),
            None => format!("http://127.0.0.1:{}", addr.port()),
        };
        let shared = Arc::new(Shared::new(&opts, true, Some(origin)));
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, acceptor, shared.clone(), stopped));
        Ok(Emulator {
            addr,
            tls: opts.tls.is_some(),
            shared,
            stop,
            task,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The OpenAI-style base URL, ending in `/v1`. With TLS the host is `localhost`, the name a
    /// [`crate::TestCa::issue`]d certificate is expected to carry.
    pub fn base_url(&self) -> String {
        match self.tls {
            true => format!("https://localhost:{}/v1", self.addr.port()),
            false => format!("http://127.0.0.1:{}/v1", self.addr.port()),
        }
    }

    /// The server's root (`http://127.0.0.1:PORT`), where the cloud wires live (`/openai/…`,
    /// `/v1beta/…`, `/model/…`) and their token endpoints (`/token`, `/{tenant}/oauth2/v2.0/token`, `/`).
    pub fn origin(&self) -> String {
        self.base_url().trim_end_matches("/v1").to_owned()
    }

    /// Sets the directive for requests that carry no `emulate` member (for wires whose requests
    /// cannot carry one, and for changing a running provider's behaviour: slow, failing, recovered).
    /// `None` restores normal behaviour.
    pub fn set_directive(&self, directive: Option<Value>) {
        self.shared.set_default_directive(directive);
    }

    /// Tokens and temporary keys issued by the emulated identity services so far.
    pub fn tokens_issued(&self) -> u64 {
        self.shared.issued.token_requests.load(Ordering::SeqCst)
    }

    /// The same server under OpenRouter's prefix, ending in `/api/v1`.
    pub fn openrouter_base_url(&self) -> String {
        let base = self.base_url();
        format!("{}/api/v1", base.trim_end_matches("/v1"))
    }

    /// Every request received so far, in the order their bodies finished arriving.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        match &self.shared.requests {
            Some(log) => log.lock().unwrap_or_else(PoisonError::into_inner).clone(),
            None => Vec::new(),
        }
    }

    /// Streams whose body was dropped before `[DONE]`: the client (or a gateway) went away.
    pub fn cancelled_streams(&self) -> usize {
        self.shared.streams.cancelled.load(Ordering::SeqCst)
    }

    /// Streams that sent `[DONE]`. Streams ended on purpose by `error_after_chunks` or
    /// `reset_after_chunks` count as neither completed nor cancelled.
    pub fn completed_streams(&self) -> usize {
        self.shared.streams.completed.load(Ordering::SeqCst)
    }

    /// Stops accepting, drops every connection (hanging requests included) and waits for the accept
    /// loop to end.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        let _ = (&mut self.task).await;
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        self.task.abort();
    }
}

/// Serves on `listener` until `shutdown` resolves; for a benchmark running the emulator as its own
/// process. Requests are not recorded here, since nobody could read them.
pub async fn serve(
    listener: TcpListener,
    opts: EmulatorOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let acceptor = acceptor(&opts)?;
    let shared = Arc::new(Shared::new(&opts, false, None));
    let (stop, stopped) = watch::channel(false);
    tokio::select! {
        () = accept_loop(listener, acceptor, shared, stopped) => {}
        () = shutdown => {}
    }
    let _ = stop.send(true);
    Ok(())
}

/// Binds `listen` and serves until the process ends.
pub async fn serve_forever(opts: EmulatorOptions, listen: SocketAddr) -> Result<(), Error> {
    let listener = bind(listen).await?;
    serve(listener, opts, std::future::pending()).await
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| Error::io(format!("binding {addr}"), e))
}

fn acceptor(opts: &EmulatorOptions) -> Result<Option<TlsAcceptor>, Error> {
    match &opts.tls {
        Some(identity) => Ok(Some(TlsAcceptor::from(Arc::new(identity.server_config()?)))),
        None => Ok(None),
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                // Out of descriptors or an aborted handshake: keep serving the others.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            () = stop_requested(&mut stopped) => return,
        };
        let _ = tcp.set_nodelay(true);
        tokio::spawn(connection(tcp, acceptor.clone(), shared.clone(), stopped.clone()));
    }
}

async fn connection(
    tcp: TcpStream,
    acceptor: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
) {
    let exec = StopExecutor {
        stopped: stopped.clone(),
    };
    let serving = async move {
        match acceptor {
            Some(acceptor) => {
                if let Ok(Ok(tls)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    serve_http(tls, shared, exec).await;
                }
            }
            None => serve_http(tcp, shared, exec).await,
        }
    };
    tokio::select! {
        () = serving => {}
        () = stop_requested(&mut stopped) => {}
    }
}

/// Resolves once the emulator is told to stop or its handle is gone.
async fn stop_requested(stopped: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not `Send`; drop it before any other await.
    let _ = stopped.wait_for(|stop| *stop).await.map(|_| ());
}

/// HTTP/1.1 or HTTP/2 on one connection, whichever the client speaks first.
async fn serve_http<I>(io: I, shared: Arc<Shared>, exec: StopExecutor)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request| {
        let shared = shared.clone();
        async move { Ok::<_, Infallible>(handler::handle(shared, request).await) }
    });
    let mut builder = auto::Builder::new(exec);
    // A provider that takes every stream a client opens on one HTTP/2 connection (hyper's default is
    // 200, past which a client such as moatd's queues), so load tests measure moatd, not this limit.
    builder.http2().max_concurrent_streams(100_000);
    // Errors here are the client hanging up or an emulated reset: nothing to report.
    let _ = builder.serve_connection(TokioIo::new(io), service).await;
}

/// Runs hyper's HTTP/2 stream tasks, ending them when the emulator stops so no request outlives it.
#[derive(Clone)]
struct StopExecutor {
    stopped: watch::Receiver<bool>,
}

impl<F> hyper::rt::Executor<F> for StopExecutor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        let mut stopped = self.stopped.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = future => {}
                () = stop_requested(&mut stopped) => {}
            }
        });
    }
}
