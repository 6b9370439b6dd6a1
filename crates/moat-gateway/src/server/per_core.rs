//! Thread-per-core serving: one current-thread tokio runtime per core, each with its own listener on
//! the same address (`SO_REUSEPORT`, so the kernel spreads connections across cores) and its own
//! upstream connection pools ([`moat_upstream::worker`]). A request then runs start to finish on one
//! thread, with no wake-ups between worker threads: the cost the profile in docs/BENCHMARKS.md named
//! first, and the way nginx's workers run.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::gateway::Gateway;

/// Binds `workers` listeners on `addr` with `SO_REUSEPORT`. Port 0 binds the first listener to a
/// free port and the others to the same one.
pub fn bind_per_core(addr: SocketAddr, workers: usize) -> std::io::Result<Vec<std::net::TcpListener>> {
    let mut addr = addr;
    let mut listeners = Vec::with_capacity(workers);
    for _ in 0..workers.max(1) {
        let socket = match addr {
            SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
            SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
        };
        socket.set_reuseaddr(true)?;
        socket.set_reuseport(true)?;
        socket.bind(addr)?;
        addr = socket.local_addr()?;
        let listener = socket.listen(1024)?;
        listeners.push(listener.into_std()?);
    }
    Ok(listeners)
}

/// Serves `gateway` on `listeners` (from [`bind_per_core`]), one thread and one current-thread
/// runtime each, until `shutdown` completes; then every core drains as [`super::serve`] does.
/// Call [`moat_upstream::worker::set_count`] with the number of listeners before building the
/// gateway, so each core gets its own upstream pools.
pub async fn serve_per_core(
    listeners: Vec<std::net::TcpListener>,
    gateway: Arc<Gateway>,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let (stop, stopped) = watch::channel(false);
    let cores = listeners.len();
    // Each core reports when it stops; one that stops early (say, its runtime failed) stops them all.
    let (finished, mut results) = mpsc::channel(cores.max(1));
    for (index, listener) in listeners.into_iter().enumerate() {
        let gateway = gateway.clone();
        let mut stopped = stopped.clone();
        let finished = finished.clone();
        std::thread::Builder::new()
            .name(format!("moatd-core-{index}"))
            .spawn(move || {
                moat_upstream::worker::enter(index);
                let served = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .and_then(|runtime| {
                        runtime.block_on(async move {
                            let listener = TcpListener::from_std(listener)?;
                            let shutdown = async move {
                                let _ = stopped.wait_for(|s| *s).await;
                            };
                            super::serve(listener, gateway, shutdown).await
                        })
                    });
                let _ = finished.blocking_send(served);
            })?;
    }
    drop(finished);
    let mut first_error = None;
    let mut ended = 0;
    tokio::select! {
        () = shutdown => {}
        early = results.recv() => {
            ended += 1;
            let e = match early {
                Some(Err(e)) => e,
                _ => std::io::Error::other("a serving core stopped before shutdown"),
            };
            tracing::error!(error = %e, "a serving core stopped; shutting down");
            first_error = Some(e);
        }
    }
    let _ = stop.send(true);
    while ended < cores {
        match results.recv().await {
            Some(Ok(())) => {}
            Some(Err(e)) => {
                first_error.get_or_insert(e);
            }
            // A thread that panicked dropped its sender without a word.
            None => break,
        }
        ended += 1;
    }
    first_error.map_or(Ok(()), Err)
}
