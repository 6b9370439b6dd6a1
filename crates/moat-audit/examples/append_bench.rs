//! What the audit log costs a request: appends paced at a target rate (default 5,000/s, for 5 s), then
//! flat out. Prints the rate reached, the latency of `append()` as the request path sees it (p50, p99,
//! max), CPU time per record for the whole process (the writer thread's hashing, signing and SQLite
//! work included), and bytes on disk per record.
//!
//! `cargo run --release -p moat-audit --example append_bench [RATE [SECONDS]]`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use moat_audit::{AuditLog, AuditSettings, PolicyDecision, RequestRecord};

/// A typical request record: a streamed chat completion through OpenRouter with one privacy finding.
fn record(n: u64) -> RequestRecord {
    RequestRecord {
        ts_ms: moat_audit::now_ms(),
        request_id: format!("req_{n:016x}"),
        key_prefix: Some("moat-Qm9hdC1l".into()),
        key_id: Some("key_3f2a9c1b0d4e".into()),
        team: Some("research".into()),
        client_addr: Some("10.1.2.3:53122".into()),
        endpoint: "/v1/chat/completions".into(),
        model_requested: "openrouter/anthropic/claude-sonnet-4".into(),
        provider: Some("openrouter".into()),
        model_used: Some("anthropic/claude-sonnet-4".into()),
        policy: vec![PolicyDecision {
            rule: "email".into(),
            action: "redact".into(),
            count: 1,
        }],
        prompt_tokens: 1_234,
        completion_tokens: 567,
        cost_nanos: 12_345_678,
        status: 200,
        latency_us: 2_345_678,
        bodies: None,
    }
}

/// User + system CPU time from a /proc stat file (Linux); None elsewhere.
fn cpu_of(stat_file: &std::path::Path) -> Option<Duration> {
    let stat = std::fs::read_to_string(stat_file).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on every Linux configuration in practice.
    Some(Duration::from_millis(ticks * 10))
}

/// CPU time of the whole process and of the audit writer thread.
fn cpu_time() -> Option<(Duration, Duration)> {
    let process = cpu_of(std::path::Path::new("/proc/self/stat"))?;
    let writer = std::fs::read_dir("/proc/self/task")
        .ok()?
        .flatten()
        .find_map(|t| {
            let comm = std::fs::read_to_string(t.path().join("comm")).ok()?;
            comm.starts_with("moat-audit-wri")
                .then(|| cpu_of(&t.path().join("stat")))?
        })?;
    Some((process, writer))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let rate: u64 = args.next().map_or(5_000, |a| a.parse().expect("RATE"));
    let secs: u64 = args.next().map_or(5, |a| a.parse().expect("SECONDS"));
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let url = format!("sqlite://{}", db.display());
    let key = dir.path().join("audit_signing_key");
    let settings = AuditSettings::default();
    println!(
        "settings: checkpoint every {} records or {:?}, queue {}, batch {}, synchronous=FULL; {}",
        settings.checkpoint_every,
        settings.checkpoint_interval,
        settings.queue_capacity,
        settings.max_batch,
        dir.path().display()
    );

    // Paced: one append every 1/rate s, as a gateway at that request rate would.
    let log = AuditLog::open(&url, &key, settings.clone()).unwrap();
    let total = rate * secs;
    let interval = Duration::from_nanos(1_000_000_000 / rate.max(1));
    let mut lat = Vec::with_capacity(total as usize);
    std::thread::sleep(Duration::from_millis(100));
    let cpu0 = cpu_time();
    let start = Instant::now();
    for n in 0..total {
        let due = start + interval * n as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let r = record(n);
        let t = Instant::now();
        log.append_request(r).unwrap();
        lat.push(t.elapsed());
    }
    log.flush().unwrap();
    let elapsed = start.elapsed();
    let cpu = cpu0
        .zip(cpu_time())
        .map(|(a, b)| (b.0.saturating_sub(a.0), b.1.saturating_sub(a.1)));
    let stats = log.stats();
    drop(log);
    let bytes = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
    lat.sort();
    println!(
        "paced {rate}/s: {total} records in {:.2} s = {:.0} records/s committed; {} checkpoints, {} blocked, {} dropped",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64(),
        stats.checkpoints,
        stats.blocked,
        stats.dropped
    );
    println!(
        "append() latency: p50 {:.2} µs, p99 {:.2} µs, max {:.0} µs",
        percentile(&lat, 0.50).as_secs_f64() * 1e6,
        percentile(&lat, 0.99).as_secs_f64() * 1e6,
        lat.last().copied().unwrap_or_default().as_secs_f64() * 1e6
    );
    if let Some((process, writer)) = cpu {
        let per = |d: Duration| d.as_secs_f64() * 1e6 / total as f64;
        let core = |d: Duration| d.as_secs_f64() / elapsed.as_secs_f64() * 100.0;
        println!(
            "CPU: writer thread {:.1} µs per record = {:.1}% of one core at {rate}/s \
             (whole process incl. this pacing loop: {:.1} µs, {:.1}%)",
            per(writer),
            core(writer),
            per(process),
            core(process)
        );
    }
    println!(
        "disk: {} bytes for {total} records = {} bytes per record (records, checkpoints, SQLite overhead)",
        bytes,
        bytes / total.max(1)
    );

    // Flat out: how far above the target rate the writer can go.
    let db2 = dir.path().join("audit2.db");
    let log = AuditLog::open(&format!("sqlite://{}", db2.display()), &key, settings).unwrap();
    let n = 200_000u64;
    let start = Instant::now();
    for i in 0..n {
        log.append_request(record(i)).unwrap();
    }
    log.flush().unwrap();
    let elapsed = start.elapsed();
    println!(
        "flat out: {n} records in {:.2} s = {:.0} records/s (appends blocked on a full queue {} times)",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        log.stats().blocked
    );
}
