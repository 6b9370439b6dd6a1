//! Fault injection against the real `moatd` binary: broken providers (silence before the headers and
//! mid-stream, resets, garbage, a gigabyte, no blank lines, one byte at a time) and hostile clients
//! (never reading, reading slowly, leaving mid-stream), all at once.
//!
//! For every case: the client gets a clean error (or, for a provider that is only slow, the right
//! answer) within the case's configured time-out plus [`SLACK`]; no budget hold outlives it
//! (`moat_budget_holds_open` returns to zero); moatd's resident memory stays within [`RSS_BOUND`]
//! of what it used before; and canary clients are served throughout. Time-outs are configured small
//! so "within the time-out" means seconds; the slack only separates "late" from "never".
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../common/mod.rs"]
mod common;

mod client;
mod upstream;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use moat_testkit::{Emulator, EmulatorOptions, RawScript, RawUpstream};
use serde_json::{json, Value};

/// Added to a case's configured time-out before it counts as hanging.
pub const SLACK: Duration = Duration::from_secs(30);

/// The provider time-outs every fault provider is configured with (first byte, and idle mid-stream).
pub const PROVIDER_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a client may leave a response unread (`server.write_timeout_ms`).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// The most moatd's resident memory may grow over its idle level while the faults run. Each open
/// stream holds at most one event (`max_event_bytes`, 1 MiB here) plus socket buffers, so a dozen
/// concurrent hostile streams — one of them a gigabyte, one never read — stay well inside this.
pub const RSS_BOUND_MIB: u64 = 96;

/// A boxed case: its name and what it checks.
pub type Case = (
    &'static str,
    Pin<Box<dyn Future<Output = Result<(), String>> + Send>>,
);

/// One moatd with every fault provider configured, an emulator, and an admin key.
pub struct World {
    pub daemon: Daemon,
    pub emu: Emulator,
    _raw: Vec<RawUpstream>,
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl World {
    pub async fn start() -> World {
        let models = json!([{"id": "tiny", "object": "model", "pricing": {"prompt": "0.000001", "completion": "0.000001"}}]);
        let emu = Emulator::start(EmulatorOptions {
            models: Some(models),
            ..Default::default()
        })
        .await
        .unwrap();
        let mut raw = Vec::new();
        let mut providers = String::new();
        let provider = |name: &str, kind: &str, url: &str| {
            format!(
                "[[providers]]\nname = \"{name}\"\nkind = \"{kind}\"\nbase_url = \"{url}\"\nmax_retries = 0\nhealth_check = false\nbreaker_failures = 1000\nfirst_byte_timeout_ms = {t}\nidle_timeout_ms = {t}\nprices = {{ \"*\" = [1.0, 1.0] }}\n",
                t = PROVIDER_TIMEOUT.as_millis()
            )
        };
        providers.push_str(&provider("emu", "openai", &emu.base_url()));
        providers.push_str(&provider("claude", "anthropic", &emu.base_url()));
        let root = emu.base_url().trim_end_matches("/v1").to_owned();
        providers.push_str(&provider("llama", "ollama", &root));
        for (name, script) in [
            ("silent", RawScript::Silent),
            ("garbage", RawScript::Garbage(4096)),
            ("reset", RawScript::Reset),
            ("slowhead", RawScript::SlowHead(Duration::from_millis(100))),
        ] {
            let up = RawUpstream::start(script).await.unwrap();
            providers.push_str(&provider(name, "openai", &up.base_url()));
            raw.push(up);
        }
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            "[server]\nadmin_keys = [\"adm\"]\napi_keys = [\"canary\"]\nheader_read_timeout_ms = 2000\nwrite_timeout_ms = {}\nbody_read_timeout_ms = 2000\n{providers}[audit]\nenabled = false\n",
            WRITE_TIMEOUT.as_millis()
        );
        let path = write_config(&dir, &config);
        let daemon = Daemon::start(
            &[
                "serve",
                "--config",
                path.to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
            ],
            &[],
        );
        World {
            daemon,
            emu,
            _raw: raw,
            http: client(),
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        self.daemon.url(path)
    }

    /// A fresh virtual key with a budget, so every case's request takes (and must give back) a hold.
    pub async fn key(&self, name: &str) -> String {
        let r = self
            .http
            .post(self.url("/admin/keys"))
            .bearer_auth("adm")
            .json(&json!({"name": name, "budget": "1000"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        let v: Value = r.json().await.unwrap();
        v["data"]["key"].as_str().unwrap().to_owned()
    }

    /// `moat_budget_holds_open` as moatd reports it.
    pub async fn holds_open(&self) -> f64 {
        let text = self
            .http
            .get(self.url("/metrics"))
            .bearer_auth("adm")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("moat_budget_holds_open "))
            .map_or(0.0, |v| v.trim().parse().unwrap())
    }

    /// moatd's resident set size in KiB, from `/proc`.
    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.daemon.pid())
    }
}

pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A chat body for `model`, streamed or not, with an `emulate` directive.
pub fn chat(model: &str, stream: bool, emulate: Value) -> Value {
    json!({"model": model, "stream": stream, "max_tokens": 50,
           "messages": [{"role": "user", "content": "fault injection"}], "emulate": emulate})
}

/// Checks that ran alongside the cases: the canary's successes and failures, and the highest RSS.
pub struct Watch {
    stop: Arc<AtomicBool>,
    served: Arc<AtomicUsize>,
    failures: Arc<std::sync::Mutex<Vec<String>>>,
    peak_kib: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Watch {
    /// Starts a canary (a plain chat request and `/health`, again and again, each within `SLACK`)
    /// and an RSS sampler.
    pub fn start(world: &World) -> Watch {
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicUsize::new(0));
        let failures = Arc::new(std::sync::Mutex::new(Vec::new()));
        let peak_kib = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        let (http, chat_url, health_url) = (
            world.http.clone(),
            world.url("/v1/chat/completions"),
            world.url("/health"),
        );
        let (s, ok, bad) = (stop.clone(), served.clone(), failures.clone());
        tasks.push(tokio::spawn(async move {
            while !s.load(Ordering::SeqCst) {
                let body = json!({"model": "emu/tiny", "messages": [{"role": "user", "content": "canary"}]});
                let chat = http.post(&chat_url).bearer_auth("canary").json(&body).send();
                match tokio::time::timeout(SLACK, chat).await {
                    Ok(Ok(r)) if r.status() == 200 => {}
                    other => bad.lock().unwrap().push(format!("canary chat: {other:?}")),
                }
                match tokio::time::timeout(SLACK, http.get(&health_url).send()).await {
                    Ok(Ok(r)) if r.status() == 200 => {}
                    other => bad.lock().unwrap().push(format!("canary health: {other:?}")),
                }
                ok.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }));
        let (s, peak, pid) = (stop.clone(), peak_kib.clone(), world.daemon.pid());
        tasks.push(tokio::spawn(async move {
            while !s.load(Ordering::SeqCst) {
                peak.fetch_max(rss_kib(pid), Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
        Watch {
            stop,
            served,
            failures,
            peak_kib,
            tasks,
        }
    }

    /// Stops the watchers; returns (canary rounds served, canary failures, peak RSS in KiB).
    pub async fn finish(self) -> (usize, Vec<String>, u64) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.tasks {
            let _ = t.await;
        }
        let failures = self.failures.lock().unwrap().clone();
        (
            self.served.load(Ordering::SeqCst),
            failures,
            self.peak_kib.load(Ordering::SeqCst),
        )
    }
}

/// Runs `cases` concurrently while the canary and the RSS sampler watch, then checks everything the
/// module docs promise.
pub async fn run(world: &World, cases: Vec<Case>) {
    // Warm up (first requests allocate pools and caches) before taking the idle level.
    for _ in 0..3 {
        let r = world
            .http
            .post(world.url("/v1/chat/completions"))
            .bearer_auth("canary")
            .json(&chat("emu/tiny", true, json!({})))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
    }
    let idle_kib = world.rss_kib();
    let watch = Watch::start(world);
    let names: Vec<&str> = cases.iter().map(|(n, _)| *n).collect();
    let results = futures_util::future::join_all(cases.into_iter().map(|(_, f)| f)).await;
    let holds = {
        let mut holds = world.holds_open().await;
        let deadline = tokio::time::Instant::now() + SLACK;
        while holds != 0.0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
            holds = world.holds_open().await;
        }
        holds
    };
    let (served, canary_failures, peak_kib) = watch.finish().await;
    let failed: Vec<String> = names
        .iter()
        .zip(&results)
        .filter_map(|(n, r)| r.as_ref().err().map(|e| format!("{n}: {e}")))
        .collect();
    let grew_mib = peak_kib.saturating_sub(idle_kib) / 1024;
    eprintln!(
        "faults: {} cases, canary rounds {served}, RSS idle {} MiB, peak {} MiB (+{grew_mib} MiB)",
        names.len(),
        idle_kib / 1024,
        peak_kib / 1024
    );
    assert!(failed.is_empty(), "failed cases:\n{}", failed.join("\n"));
    assert!(
        canary_failures.is_empty(),
        "other clients were not served: {canary_failures:?}"
    );
    assert!(served > 0, "the canary never completed a round");
    assert_eq!(holds, 0.0, "budget holds left open after every case ended");
    assert!(
        grew_mib <= RSS_BOUND_MIB,
        "RSS grew {grew_mib} MiB over idle (bound {RSS_BOUND_MIB} MiB)"
    );
}

/// Fails unless `fut` finishes within `limit` plus [`SLACK`].
pub async fn within<T>(limit: Duration, what: &str, fut: impl Future<Output = T>) -> Result<T, String> {
    tokio::time::timeout(limit + SLACK, fut)
        .await
        .map_err(|_| format!("{what}: not finished within {limit:?} + {SLACK:?}"))
}

/// The `data:` payloads of an SSE text.
pub fn data_events(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter_map(|ev| {
            let lines: Vec<&str> = ev.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
            (!lines.is_empty()).then(|| lines.join("\n"))
        })
        .collect()
}

/// Checks that an OpenAI stream's text ends with one clean error event carrying `code`: whole
/// events only, the error last.
pub fn ends_with_error_event(body: &str, code: &str) -> Result<(), String> {
    if !body.ends_with("\n\n") {
        return Err(format!(
            "stream does not end on an event boundary: …{}",
            tail(body)
        ));
    }
    let last = data_events(body).pop().unwrap_or_default();
    let v: Value =
        serde_json::from_str(&last).map_err(|e| format!("last event is not JSON ({e}): {}", tail(&last)))?;
    if v["error"]["code"] != code {
        return Err(format!("last event is not a `{code}` error: {}", tail(&last)));
    }
    Ok(())
}

pub fn tail(s: &str) -> String {
    let start = s.len().saturating_sub(300);
    let start = (start..=s.len())
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(s.len());
    s[start..].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn broken_providers_get_clean_errors_and_cost_nothing_after() {
    let world = World::start().await;
    let cases = upstream::cases(&world).await;
    run(&world, cases).await;
    world.daemon.log();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_clients_are_cut_off_without_harm_to_others() {
    let world = World::start().await;
    let cases = client::cases(&world).await;
    run(&world, cases).await;
}
