//! The open-loop load generator. A pacing thread releases requests at fixed instants (1/rate apart)
//! whether or not earlier ones have finished; a fixed set of keep-alive connections carries them.
//! Latency runs from each request's *scheduled* instant to the end of its response body, so time a
//! request spent waiting for a free connection, or for a late pacer, counts against the server
//! (this is what corrects coordinated omission).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use hdrhistogram::Histogram;
use hyper::StatusCode;
use tokio::sync::{mpsc, Mutex};

use crate::client::{Connection, Target};

/// Give up on one request after this long and count it as a transport error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Highest latency the histograms hold (µs); larger values are clamped to it.
const MAX_MICROS: u64 = 60_000_000;

/// What one load phase does.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    pub target: Target,
    pub body: Bytes,
    /// Requests per second.
    pub rate: u32,
    /// Load applied before measuring, so pools, caches and branch predictors are warm.
    pub warmup: Duration,
    /// The measured window that follows the warm-up.
    pub duration: Duration,
    pub connections: usize,
    /// Requests scheduled while this many are outstanding are dropped and counted as overload.
    pub max_in_flight: usize,
}

/// Failures in the measured window, by kind.
#[derive(Debug, Clone, Copy, Default)]
pub struct Errors {
    /// A complete response with a status other than 200.
    pub status: u64,
    /// Connect, write, read or time-out failures.
    pub transport: u64,
    /// Requests never sent because too many were already outstanding.
    pub overload: u64,
}

impl Errors {
    pub fn total(&self) -> u64 {
        self.status + self.transport + self.overload
    }
}

/// What one load phase measured (warm-up requests excluded).
#[derive(Debug)]
pub struct LoadResult {
    /// Scheduled instant → full response, successful requests only, in µs.
    pub latency: Histogram<u64>,
    /// Scheduled instant → first response body bytes, successful requests only, in µs.
    pub ttfb: Histogram<u64>,
    /// Scheduled instant → the moment a connection started sending, in µs: the generator's own lateness
    /// plus any wait for a free connection.
    pub lag: Histogram<u64>,
    pub ok: u64,
    pub errors: Errors,
    /// Successful responses per second over the measured window.
    pub achieved_rate: f64,
}

/// One scheduled request.
struct Job {
    at: Instant,
    measured: bool,
}

/// Counters shared between the pacer and the workers.
struct Shared {
    in_flight: AtomicUsize,
    overload: AtomicU64,
}

/// Runs one phase on the current runtime and returns once every scheduled request has finished.
pub async fn run(spec: &LoadSpec) -> anyhow::Result<LoadResult> {
    anyhow::ensure!(spec.rate > 0, "the rate must be positive");
    anyhow::ensure!(spec.connections > 0, "at least one connection is needed");
    // Connections are opened before the clock starts: connection set-up is not what we measure.
    let mut conns = Vec::with_capacity(spec.connections);
    for _ in 0..spec.connections {
        conns.push(Connection::open(spec.target.addr).await?);
    }

    let (tx, rx) = mpsc::unbounded_channel::<Job>();
    let rx = Arc::new(Mutex::new(rx));
    let shared = Arc::new(Shared {
        in_flight: AtomicUsize::new(0),
        overload: AtomicU64::new(0),
    });
    let start = Instant::now() + Duration::from_millis(20);
    let measure_start = start + spec.warmup;

    let mut workers = Vec::with_capacity(conns.len());
    for conn in conns {
        let worker = Worker {
            conn: Some(conn),
            target: spec.target.clone(),
            body: spec.body.clone(),
            rx: rx.clone(),
            shared: shared.clone(),
            tally: Tally::new()?,
        };
        workers.push(tokio::spawn(worker.run()));
    }

    let pacer = {
        let shared = shared.clone();
        let total = u64::from(spec.rate) * (spec.warmup + spec.duration).as_micros() as u64 / 1_000_000;
        let pace = Pace {
            start,
            measure_start,
            rate: spec.rate,
            total,
            max_in_flight: spec.max_in_flight,
        };
        std::thread::Builder::new()
            .name("moat-bench-pacer".into())
            .spawn(move || pace.run(&tx, &shared))
            .context("starting the pacing thread")?
    };

    let mut total = Tally::new()?;
    for worker in workers {
        let tally = worker.await.context("a load worker failed")?;
        total.merge(&tally)?;
    }
    pacer
        .join()
        .map_err(|_| anyhow::anyhow!("the pacing thread panicked"))?;

    // Normally the measured window itself; longer when responses trail behind the schedule.
    let window = total
        .last_done
        .map_or(spec.duration, |end| end.saturating_duration_since(measure_start))
        .max(spec.duration);
    let achieved_rate = if window.is_zero() {
        0.0
    } else {
        total.ok as f64 / window.as_secs_f64()
    };
    Ok(LoadResult {
        latency: total.latency,
        ttfb: total.ttfb,
        lag: total.lag,
        ok: total.ok,
        errors: Errors {
            status: total.status,
            transport: total.transport,
            overload: shared.overload.load(Ordering::Relaxed),
        },
        achieved_rate,
    })
}

/// The pacer: a plain OS thread, because tokio's timer wheel has millisecond granularity and would
/// release requests in bursts at 5,000/s.
struct Pace {
    start: Instant,
    measure_start: Instant,
    rate: u32,
    total: u64,
    max_in_flight: usize,
}

impl Pace {
    fn run(self, tx: &mpsc::UnboundedSender<Job>, shared: &Shared) {
        tighten_timer_slack();
        let rate = u128::from(self.rate);
        for i in 0..self.total {
            let offset = Duration::from_nanos((u128::from(i) * 1_000_000_000 / rate) as u64);
            let at = self.start + offset;
            let now = Instant::now();
            if at > now {
                std::thread::sleep(at - now);
            }
            let measured = at >= self.measure_start;
            if shared.in_flight.load(Ordering::Relaxed) >= self.max_in_flight {
                if measured {
                    shared.overload.fetch_add(1, Ordering::Relaxed);
                }
                continue;
            }
            shared.in_flight.fetch_add(1, Ordering::Relaxed);
            if tx.send(Job { at, measured }).is_err() {
                return;
            }
        }
    }
}

/// Asks Linux to wake this thread's sleeps on time instead of up to 50 µs late (the default timer
/// slack), through /proc so no unsafe code is needed. Best effort: without it the pacer is only later,
/// and its lateness is measured either way.
fn tighten_timer_slack() {
    let Ok(link) = std::fs::read_link("/proc/thread-self") else {
        return;
    };
    // The link reads "PID/task/TID"; the per-thread setting lives at /proc/TID/timerslack_ns.
    if let Some(tid) = link.file_name() {
        let path = std::path::Path::new("/proc").join(tid).join("timerslack_ns");
        let _ = std::fs::write(path, "1");
    }
}

/// Per-worker results, merged at the end so the hot path shares nothing.
struct Tally {
    latency: Histogram<u64>,
    ttfb: Histogram<u64>,
    lag: Histogram<u64>,
    ok: u64,
    status: u64,
    transport: u64,
    last_done: Option<Instant>,
}

impl Tally {
    fn new() -> anyhow::Result<Tally> {
        Ok(Tally {
            latency: new_histogram()?,
            ttfb: new_histogram()?,
            lag: new_histogram()?,
            ok: 0,
            status: 0,
            transport: 0,
            last_done: None,
        })
    }

    fn merge(&mut self, other: &Tally) -> anyhow::Result<()> {
        self.latency.add(&other.latency).context("merging histograms")?;
        self.ttfb.add(&other.ttfb).context("merging histograms")?;
        self.lag.add(&other.lag).context("merging histograms")?;
        self.ok += other.ok;
        self.status += other.status;
        self.transport += other.transport;
        self.last_done = self.last_done.max(other.last_done);
        Ok(())
    }
}

/// A histogram in microseconds with three significant digits.
pub fn new_histogram() -> anyhow::Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, MAX_MICROS, 3).context("creating a histogram")
}

fn micros(d: Duration) -> u64 {
    (d.as_micros() as u64).clamp(1, MAX_MICROS)
}

/// One connection's loop: take the next scheduled request, send it, record how long it took.
struct Worker {
    conn: Option<Connection>,
    target: Target,
    body: Bytes,
    rx: Arc<Mutex<mpsc::UnboundedReceiver<Job>>>,
    shared: Arc<Shared>,
    tally: Tally,
}

impl Worker {
    async fn run(mut self) -> Tally {
        loop {
            // The lock is fair, so idle workers take jobs in turn and jobs leave in schedule order.
            let job = { self.rx.lock().await.recv().await };
            let Some(job) = job else { break };
            let sent = Instant::now();
            let outcome = tokio::time::timeout(REQUEST_TIMEOUT, self.send()).await;
            let done = Instant::now();
            self.shared.in_flight.fetch_sub(1, Ordering::Relaxed);
            if !job.measured {
                continue;
            }
            self.tally
                .lag
                .saturating_record(micros(sent.saturating_duration_since(job.at)));
            match outcome {
                Ok(Ok((StatusCode::OK, first_byte))) => {
                    self.tally.ok += 1;
                    self.tally
                        .ttfb
                        .saturating_record(micros(first_byte.saturating_duration_since(job.at)));
                    self.tally
                        .latency
                        .saturating_record(micros(done.saturating_duration_since(job.at)));
                    self.tally.last_done = self.tally.last_done.max(Some(done));
                }
                Ok(Ok(_)) => self.tally.status += 1,
                Ok(Err(_)) | Err(_) => self.tally.transport += 1,
            }
        }
        self.tally
    }

    /// Sends on the current connection, replacing it first if the peer closed it. A failed or timed
    /// out request leaves no connection behind, so the next one starts clean.
    async fn send(&mut self) -> anyhow::Result<(StatusCode, Instant)> {
        let mut conn = match self.conn.take() {
            Some(c) if !c.is_closed() => c,
            _ => Connection::open(self.target.addr).await?,
        };
        let answer = conn.post(&self.target, self.body.clone()).await?;
        self.conn = Some(conn);
        Ok(answer)
    }
}
