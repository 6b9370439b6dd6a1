//! One client connection from accept to close, with the deadlines that keep a silent or stalled client
//! from holding a connection slot (and, through its requests, an upstream connection and a budget
//! hold) for longer than the configured time-outs:
//!
//! - **Headers**: the first request's headers must be complete within `header_read_timeout` of the
//!   accept, TLS handshake and HTTP version detection included (hyper's own header time-out starts
//!   only once it reads a request head, after both). Then, with no request in flight, the next
//!   request must start within the same time, or the connection is closed (hyper bounds HTTP/1.1
//!   keep-alive that way; this also bounds idle HTTP/2 connections).
//! - **Writes**: a response body that has handed out bytes and has not been asked for more within
//!   `write_timeout` belongs to a client that stopped reading (a full socket buffer over HTTP/1.1, a
//!   closed flow-control window over HTTP/2). The connection is dropped, which drops its responses:
//!   the relay cancels the provider's work and the budget hold is settled.
//!
//! A watchdog per connection sleeps until the earliest of these deadlines, so an active connection
//! costs one timer, not a timer per chunk.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tokio::time::Instant;

/// The two client-side time-outs a connection lives by.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnLimits {
    /// Accept to complete headers, and idle (no request in flight) to the next request.
    pub(crate) header_read: Duration,
    /// Longest a response may wait for the client to take bytes it was handed.
    pub(crate) write: Duration,
}

/// What a connection's watchdog reads: updated by its requests and their response bodies.
struct Activity {
    origin: Instant,
    /// Requests seen so far (headers complete).
    requests: AtomicU64,
    /// Requests whose response body has not ended (or been dropped) yet.
    in_flight: AtomicUsize,
    /// Milliseconds since `origin` when `in_flight` last fell to zero.
    idle_since: AtomicU64,
    /// The clocks of live response bodies (dead ones are pruned by the watchdog).
    bodies: Mutex<Vec<Weak<BodyClock>>>,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            origin: Instant::now(),
            requests: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            bodies: Mutex::new(Vec::new()),
        }
    }

    fn now_ms(&self) -> u64 {
        ms(self.origin.elapsed())
    }

    fn at(&self, ms: u64) -> Instant {
        self.origin + Duration::from_millis(ms)
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// When a response body last handed out bytes without being asked for more since (ms since the
/// connection's origin, plus one; zero while it is not waiting for the client).
#[derive(Default)]
struct BodyClock {
    owed_since: AtomicU64,
}

/// Counts a request in flight until its response body ends or is dropped.
struct InFlight {
    activity: Arc<Activity>,
}

impl InFlight {
    fn start(activity: Arc<Activity>) -> InFlight {
        activity.requests.fetch_add(1, Ordering::Relaxed);
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight { activity }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.activity.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            let now = self.activity.now_ms();
            self.activity.idle_since.store(now, Ordering::Release);
        }
    }
}

/// A response body that keeps its request counted in flight and notes when it waits for the client.
struct Watched {
    inner: Body,
    clock: Arc<BodyClock>,
    origin: Instant,
    _in_flight: InFlight,
}

impl http_body::Body for Watched {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        self.clock.owed_since.store(0, Ordering::Relaxed);
        let polled = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(_))) = &polled {
            // Handed out: until the next poll, any wait is the client's.
            let since = ms(self.origin.elapsed()).saturating_add(1);
            self.clock.owed_since.store(since, Ordering::Relaxed);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The router, with the client's address put into each request (as axum's `ConnectInfo`) for the
/// audit record, and each response body watched for this connection's deadlines.
#[derive(Clone)]
pub(crate) struct WithPeer {
    inner: axum::Router,
    peer: std::net::SocketAddr,
    activity: Arc<Activity>,
}

type Incoming = http::Request<hyper::body::Incoming>;

impl tower::Service<Incoming> for WithPeer {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = futures_util::future::BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        <axum::Router as tower::Service<Incoming>>::poll_ready(&mut self.inner, cx)
    }

    fn call(&mut self, mut req: Incoming) -> Self::Future {
        req.extensions_mut().insert(axum::extract::ConnectInfo(self.peer));
        let in_flight = InFlight::start(self.activity.clone());
        let clock = Arc::new(BodyClock::default());
        self.activity
            .bodies
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::downgrade(&clock));
        let origin = self.activity.origin;
        let response = self.inner.call(req);
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|inner| {
                Body::new(Watched {
                    inner,
                    clock,
                    origin,
                    _in_flight: in_flight,
                })
            }))
        })
    }
}

/// A connection about to be served: the per-connection state exists from the accept on, so the
/// header deadline counts the TLS handshake too.
pub(crate) struct Accepted {
    activity: Arc<Activity>,
    limits: ConnLimits,
}

impl Accepted {
    pub(crate) fn new(limits: ConnLimits) -> Accepted {
        Accepted {
            activity: Arc::new(Activity::new()),
            limits,
        }
    }

    /// When the first request's headers must be complete.
    pub(crate) fn header_deadline(&self) -> Instant {
        self.activity.origin + self.limits.header_read
    }

    pub(crate) fn service(&self, app: axum::Router, peer: std::net::SocketAddr) -> WithPeer {
        WithPeer {
            inner: app,
            peer,
            activity: self.activity.clone(),
        }
    }

    /// Serves the connection until it closes, the watchdog ends it, or shutdown drains it.
    pub(crate) async fn serve<I>(
        self,
        builder: &auto::Builder<TokioExecutor>,
        io: I,
        service: WithPeer,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), BoxError>
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let conn =
            builder.serve_connection_with_upgrades(TokioIo::new(io), TowerToHyperService::new(service));
        tokio::pin!(conn);
        // Set once the connection was asked to close because it sat idle: it then gets one more
        // `header_read` to finish writing before it is dropped.
        let mut closing_since: Option<u64> = None;
        let mut draining = *shutdown.borrow();
        if draining {
            conn.as_mut().graceful_shutdown();
        }
        loop {
            let wake = self.next_check(closing_since.is_none() && !draining, closing_since);
            tokio::select! {
                result = conn.as_mut() => return result,
                changed = shutdown.changed(), if !draining => {
                    if changed.is_err() || *shutdown.borrow() {
                        draining = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
                () = tokio::time::sleep_until(wake) => match self.verdict(closing_since) {
                    Verdict::Fine => {}
                    Verdict::Close if closing_since.is_none() && !draining => {
                        closing_since = Some(self.activity.now_ms());
                        conn.as_mut().graceful_shutdown();
                    }
                    Verdict::Close => {}
                    Verdict::Drop(why) => return Err(why.into()),
                },
            }
        }
    }

    /// Live response bodies' clocks, pruning those whose bodies are gone.
    fn clocks(&self) -> Vec<Arc<BodyClock>> {
        let mut bodies = self
            .activity
            .bodies
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        bodies.retain(|w| w.strong_count() > 0);
        bodies.iter().filter_map(Weak::upgrade).collect()
    }

    /// The earliest moment a deadline could pass; nothing can expire before it. `idle_matters` is
    /// false once the connection is closing anyway.
    fn next_check(&self, idle_matters: bool, closing_since: Option<u64>) -> Instant {
        let a = &self.activity;
        let (header, write) = (ms(self.limits.header_read), ms(self.limits.write));
        let now = a.now_ms();
        // A body that starts waiting for the client from now on cannot time out sooner than this.
        let mut next = now.saturating_add(write.max(header));
        if a.requests.load(Ordering::Relaxed) == 0 {
            next = next.min(header);
        }
        for clock in self.clocks() {
            let owed = clock.owed_since.load(Ordering::Relaxed);
            if owed != 0 {
                next = next.min((owed - 1).saturating_add(write));
            }
        }
        if idle_matters && a.in_flight.load(Ordering::Acquire) == 0 {
            next = next.min(a.idle_since.load(Ordering::Acquire).saturating_add(header));
        }
        if let Some(since) = closing_since {
            next = next.min(since.saturating_add(header));
        }
        // Never spin on a deadline that is due: the verdict acts on it at once.
        a.at(next.max(now.saturating_add(1)))
    }

    fn verdict(&self, closing_since: Option<u64>) -> Verdict {
        let a = &self.activity;
        let (header, write) = (ms(self.limits.header_read), ms(self.limits.write));
        let now = a.now_ms();
        if a.requests.load(Ordering::Relaxed) == 0 && now >= header {
            return Verdict::Drop(format!(
                "no complete request headers within {:?} of connecting",
                self.limits.header_read
            ));
        }
        for clock in self.clocks() {
            let owed = clock.owed_since.load(Ordering::Relaxed);
            if owed != 0 && now >= (owed - 1).saturating_add(write) {
                return Verdict::Drop(format!(
                    "the client took none of the response for {:?}",
                    self.limits.write
                ));
            }
        }
        if let Some(since) = closing_since {
            if now >= since.saturating_add(header) {
                return Verdict::Drop("the idle connection did not close in time".into());
            }
        }
        let idle = a.in_flight.load(Ordering::Acquire) == 0
            && now >= a.idle_since.load(Ordering::Acquire).saturating_add(header);
        if idle {
            return Verdict::Close;
        }
        Verdict::Fine
    }
}

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What the watchdog decided at a deadline.
enum Verdict {
    Fine,
    /// Idle too long: close gracefully (HTTP/2 GOAWAY; HTTP/1.1 closes once no response is open).
    Close,
    /// Drop the connection now, and with it its open responses.
    Drop(String),
}
