//! Provider health and failover through a real gateway on loopback: health checks, circuit breakers,
//! `/ready`, and traffic moving between two emulated providers of one route while one dies and
//! comes back on the same port.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use moat_testkit::{Emulator, EmulatorOptions};
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;

const LIVENESS: Duration = Duration::from_secs(20);

async fn emulator() -> Emulator {
    Emulator::start(EmulatorOptions::default()).await.unwrap()
}

/// A provider block with fast retries plus `extra` keys; health checks stay on unless `extra` says
/// otherwise (the shared `provider` helper turns them off).
fn provider_with(name: &str, base_url: &str, extra: &str) -> String {
    format!(
        "[[providers]]\nname = \"{name}\"\nkind = \"openai\"\nbase_url = \"{base_url}\"\nretry_base_ms = 10\n{extra}\n"
    )
}

fn route(alias: &str, targets: &[&str]) -> String {
    let list: Vec<String> = targets.iter().map(|t| format!("\"{t}\"")).collect();
    format!("[[models]]\nname = \"{alias}\"\nroute = [{}]\n", list.join(", "))
}

async fn ready(gw: &TestGateway) -> (u16, Value) {
    let resp = client().get(gw.url("/ready")).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

fn provider_state<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no provider {name} in {report}"))
}

/// Polls `/ready` until provider `name` is in `state`; panics with the last report otherwise.
async fn wait_for_state(gw: &TestGateway, name: &str, state: &str) -> Value {
    let deadline = tokio::time::Instant::now() + LIVENESS;
    loop {
        let (_, report) = ready(gw).await;
        if provider_state(&report, name)["state"] == state {
            return report;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("provider {name} never became {state}: {report}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// One request of the load: who answered, the status, and whether the answer was whole.
#[derive(Debug, Clone)]
struct Outcome {
    provider: String,
    status: u16,
    stream: bool,
    /// Non-streamed: a parseable completion. Streamed: ended with `[DONE]`.
    complete: bool,
}

async fn one_request(gw_url: &str, alias: &str, n: usize) -> Outcome {
    let stream = n % 2 == 1;
    let body = json!({"model": alias, "stream": stream,
        "messages": [{"role": "user", "content": format!("request {n}")}]});
    let resp = client()
        .post(format!("{gw_url}/v1/chat/completions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let provider = resp
        .headers()
        .get("x-moat-provider")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let text = resp.text().await.unwrap_or_default();
    let complete = if stream {
        data_events(&text).last().is_some_and(|d| d == "[DONE]")
            && streamed_text(&text).contains(&format!("request {n}"))
    } else {
        serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["choices"][0]["message"]["content"].as_str().map(str::to_string))
            .is_some_and(|c| c.contains(&format!("request {n}")))
    };
    Outcome {
        provider,
        status,
        stream,
        complete,
    }
}

/// Continuous load from `workers` clients until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    outcomes: Arc<Mutex<Vec<Outcome>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(gw: &TestGateway, alias: &str, workers: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let outcomes = Arc::new(Mutex::new(Vec::new()));
        let tasks = (0..workers)
            .map(|w| {
                let (stop, outcomes) = (stop.clone(), outcomes.clone());
                let (url, alias) = (gw.url(""), alias.to_string());
                tokio::spawn(async move {
                    let mut n = w;
                    while !stop.load(Ordering::SeqCst) {
                        let outcome = one_request(&url, &alias, n).await;
                        outcomes.lock().unwrap().push(outcome);
                        n += workers;
                    }
                })
            })
            .collect();
        Load {
            stop,
            outcomes,
            tasks,
        }
    }

    fn snapshot(&self) -> Vec<Outcome> {
        self.outcomes.lock().unwrap().clone()
    }

    async fn wait_for(&self, what: &str, cond: impl Fn(&[Outcome]) -> bool) {
        let deadline = tokio::time::Instant::now() + LIVENESS;
        while !cond(&self.snapshot()) {
            if tokio::time::Instant::now() > deadline {
                panic!("load never reached: {what}; outcomes: {:?}", self.snapshot());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn finish(self) -> Vec<Outcome> {
        self.stop.store(true, Ordering::SeqCst);
        for task in self.tasks {
            task.await.unwrap();
        }
        let outcomes = self.outcomes.lock().unwrap().clone();
        outcomes
    }
}

/// Every request succeeded; a stream may only have broken after it began (status 200 already sent),
/// and a whole answer is always whole.
fn assert_all_served(outcomes: &[Outcome], phase: &str) {
    assert!(!outcomes.is_empty(), "{phase}: no requests ran");
    for o in outcomes {
        assert_eq!(o.status, 200, "{phase}: a request failed: {o:?}");
        assert!(
            o.complete || o.stream,
            "{phase}: a whole answer was not whole: {o:?}"
        );
    }
}

/// Holds a dead provider's port: accepts connections, records each request line, and hangs up
/// without answering. Lets the test see what the gateway still sends to a provider that is down.
struct DeadPort {
    lines: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl DeadPort {
    async fn bind(addr: SocketAddr) -> DeadPort {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut tcp, _)) = listener.accept().await else {
                    continue;
                };
                let sink = sink.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 2048];
                    let mut got = 0;
                    while got < buf.len() {
                        match tcp.read(&mut buf[got..]).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => got += n,
                        }
                        if buf[..got].windows(2).any(|w| w == b"\r\n") {
                            break;
                        }
                    }
                    let text = String::from_utf8_lossy(&buf[..got]);
                    sink.lock()
                        .unwrap()
                        .push(text.lines().next().unwrap_or("").to_string());
                });
            }
        });
        DeadPort { lines, task }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    fn clear(&self) {
        self.lines.lock().unwrap().clear();
    }

    async fn close(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_fails_over_while_a_provider_is_down_and_returns_when_it_is_back() {
    let a = emulator().await;
    let b = emulator().await;
    let a_addr = a.addr();
    // Checks every 200 ms; a cool-down far longer than the test, so only health checks (not
    // half-open probe requests) can bring `fo-a` back.
    let tuning = "health_check_interval_ms = 200\nbreaker_cooldown_ms = 600000";
    let toml = format!(
        "{}{}{}",
        provider_with("fo-a", &a.base_url(), tuning),
        provider_with("fo-b", &b.base_url(), tuning),
        route("pair", &["fo-a/tiny", "fo-b/tiny"])
    );
    let gw = gateway(&toml).await;
    let (status, report) = ready(&gw).await;
    assert_eq!(
        (status, report["status"].as_str()),
        (200, Some("ready")),
        "{report}"
    );

    // 1. Both up: the first target takes everything.
    let load = Load::start(&gw, "pair", 2);
    load.wait_for("10 answers", |o| o.len() >= 10).await;

    // 2. Kill `fo-a` under load; hold its port so we can see what still reaches it.
    a.shutdown().await;
    let dead = DeadPort::bind(a_addr).await;
    let report = wait_for_state(&gw, "fo-a", "unhealthy").await;
    assert_eq!(report["status"], "degraded", "{report}");
    assert!(
        report["providers"][0]["last_error"].as_str().is_some(),
        "{report}"
    );
    assert_eq!(
        ready(&gw).await.0,
        200,
        "one usable provider is enough to be ready"
    );
    let before = load.finish().await;
    assert_all_served(&before, "while fo-a went down");
    assert!(before.iter().any(|o| o.provider == "fo-a"), "{before:?}");

    // 3. While it is down, requests go straight to `fo-b`: not one reaches the dead port, while the
    // health checks keep knocking.
    dead.clear();
    let load = Load::start(&gw, "pair", 2);
    load.wait_for("30 answers", |o| o.len() >= 30).await;
    let down = load.finish().await;
    assert_all_served(&down, "while fo-a was down");
    assert!(
        down.iter().all(|o| o.provider == "fo-b" && o.complete),
        "{down:?}"
    );
    assert!(
        eventually(LIVENESS, || dead
            .lines()
            .iter()
            .any(|l| l == "GET /v1/models HTTP/1.1"))
        .await,
        "health checks stopped: {:?}",
        dead.lines()
    );
    assert!(
        !dead.lines().iter().any(|l| l.starts_with("POST")),
        "a request was sent to the dead provider: {:?}",
        dead.lines()
    );
    let b_before = b.requests().len();

    // 4. Restart `fo-a` on the same port under load: the next good check puts it back first.
    let load = Load::start(&gw, "pair", 2);
    load.wait_for("5 answers", |o| o.len() >= 5).await;
    dead.close().await;
    let a = Emulator::start_on(a_addr, EmulatorOptions::default())
        .await
        .unwrap();
    wait_for_state(&gw, "fo-a", "healthy").await;
    load.wait_for("fo-a answering again", |o| {
        o.iter().rev().take(4).filter(|o| o.provider == "fo-a").count() == 4
    })
    .await;
    let after = load.finish().await;
    assert_all_served(&after, "while fo-a came back");
    assert!(!a.requests().is_empty());
    assert!(b.requests().len() > b_before);
    let (status, report) = ready(&gw).await;
    assert_eq!(
        (status, report["status"].as_str()),
        (200, Some("ready")),
        "{report}"
    );
}

#[tokio::test]
async fn request_failures_open_the_breaker_and_a_probe_closes_it() {
    let a = emulator().await;
    let b = emulator().await;
    let breaker = "health_check = false\nmax_retries = 0\nbreaker_failures = 2\nbreaker_cooldown_ms = 300";
    let toml = format!(
        "{}{}{}",
        provider_with("brk-a", &a.base_url(), breaker),
        provider_with("brk-b", &b.base_url(), "health_check = false"),
        route("pair", &["brk-a/tiny", "brk-b/tiny"])
    );
    let gw = gateway(&toml).await;
    let failing = json!({"model": "brk-a/tiny", "messages": [{"role": "user", "content": "hi"}],
        "emulate": {"status": 503}});
    for _ in 0..2 {
        assert_eq!(gw.chat(None, &failing).await.status(), 503);
    }
    let (status, report) = ready(&gw).await;
    assert_eq!(status, 200);
    assert_eq!(report["status"], "degraded");
    let a_report = provider_state(&report, "brk-a");
    assert_eq!(a_report["state"], "unhealthy");
    assert_eq!(a_report["health_check"], false);
    assert_eq!(a_report["consecutive_failures"], 2);
    assert_eq!(a_report["last_error"], "provider `brk-a` answered 503");

    let metrics = gw.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l == "moat_provider_state{provider=\"brk-a\",state=\"unhealthy\"} 1"),
        "{metrics}"
    );

    // Open: the alias skips `brk-a` without touching it.
    let a_seen = a.requests().len();
    let ok = json!({"model": "pair", "messages": [{"role": "user", "content": "hi"}]});
    let resp = gw.chat(None, &ok).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-moat-provider"], "brk-b");
    assert_eq!(a.requests().len(), a_seen);

    // After the cool-down one request probes `brk-a`; its success closes the breaker.
    let deadline = tokio::time::Instant::now() + LIVENESS;
    while !provider_state(&ready(&gw).await.1, "brk-a")["usable"]
        .as_bool()
        .unwrap()
    {
        assert!(tokio::time::Instant::now() < deadline, "cool-down never ended");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let resp = gw.chat(None, &ok).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-moat-provider"], "brk-a");
    let report = ready(&gw).await.1;
    assert_eq!(provider_state(&report, "brk-a")["state"], "healthy");
    assert_eq!(report["status"], "ready");
    let metrics = gw.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l == "moat_provider_state{provider=\"brk-a\",state=\"healthy\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn streams_the_provider_breaks_midway_open_its_breaker() {
    let a = emulator().await;
    let b = emulator().await;
    let breaker = "health_check = false\nmax_retries = 0\nbreaker_failures = 2\nbreaker_cooldown_ms = 60000";
    let toml = format!(
        "{}{}{}",
        provider_with("mid-a", &a.base_url(), breaker),
        provider_with("mid-b", &b.base_url(), "health_check = false"),
        route("pair", &["mid-a/tiny", "mid-b/tiny"])
    );
    let gw = gateway(&toml).await;
    // Each stream starts (200 and some chunks reach the client), then the provider drops it.
    let broken = json!({"model": "mid-a/tiny", "stream": true,
        "messages": [{"role": "user", "content": "one two three four"}],
        "emulate": {"reset_after_chunks": 2}});
    for _ in 0..2 {
        let resp = gw.chat(None, &broken).await;
        assert_eq!(resp.status(), 200);
        let _ = resp.bytes().await;
    }
    // The stream outcome is recorded when the relay ends, just after the client saw the end.
    let deadline = tokio::time::Instant::now() + LIVENESS;
    loop {
        let report = ready(&gw).await.1;
        if provider_state(&report, "mid-a")["state"] == "unhealthy" {
            assert!(provider_state(&report, "mid-a")["last_error"].is_string());
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "breaker never opened: {report}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seen = a.requests().len();
    let ok = json!({"model": "pair", "messages": [{"role": "user", "content": "hi"}]});
    let resp = gw.chat(None, &ok).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-moat-provider"], "mid-b");
    assert_eq!(a.requests().len(), seen);
}

#[tokio::test]
async fn when_every_target_is_out_all_are_still_tried() {
    let a = emulator().await;
    let b = emulator().await;
    let b_addr = b.addr();
    let opts = "health_check = false\nmax_retries = 0\nbreaker_failures = 1\nbreaker_cooldown_ms = 600000";
    let toml = format!(
        "{}{}{}",
        provider_with("all-a", &a.base_url(), opts),
        provider_with("all-b", &b.base_url(), opts),
        route("pair", &["all-a/tiny", "all-b/tiny"])
    );
    let gw = gateway(&toml).await;
    a.shutdown().await;
    b.shutdown().await;
    let body = json!({"model": "pair", "messages": [{"role": "user", "content": "hi"}]});
    let (status, err) = error_of(gw.chat(None, &body).await).await;
    assert_eq!(status, 502, "{err}");
    let (status, report) = ready(&gw).await;
    assert_eq!(
        (status, report["status"].as_str()),
        (503, Some("unavailable")),
        "{report}"
    );
    assert_eq!(provider_state(&report, "all-a")["state"], "unhealthy");
    assert_eq!(provider_state(&report, "all-b")["state"], "unhealthy");

    // Both breakers are open for ten minutes, yet `all-b` is back: trying every target anyway
    // finds it, where failing fast would refuse requests a provider could serve.
    let b = Emulator::start_on(b_addr, EmulatorOptions::default())
        .await
        .unwrap();
    let resp = gw.chat(None, &body).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-moat-provider"], "all-b");
    assert_eq!(b.requests().len(), 1);
    let report = ready(&gw).await.1;
    assert_eq!(provider_state(&report, "all-b")["state"], "healthy");
    assert_eq!(report["status"], "degraded");
}

#[tokio::test]
async fn ready_without_providers_is_503() {
    let gw = gateway("").await;
    let (status, report) = ready(&gw).await;
    assert_eq!(status, 503);
    assert_eq!(report, json!({"status": "unavailable", "providers": []}));
    let health = client().get(gw.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200, "liveness does not depend on providers");
}

#[tokio::test]
async fn a_failing_health_endpoint_takes_a_provider_out_and_check_config_explains_it() {
    // `health_path` points at a path the emulator does not serve: 404, so the check fails while
    // real requests would work. That is the operator's statement that the provider is not ready.
    let a = emulator().await;
    let b = emulator().await;
    let toml = format!(
        "{}{}{}",
        provider_with(
            "hp-a",
            &a.base_url(),
            "health_path = \"/not-here\"\nhealth_check_interval_ms = 100"
        ),
        provider_with("hp-b", &b.base_url(), ""),
        route("pair", &["hp-a/tiny", "hp-b/tiny"])
    );
    let report = wait_for_state(&gateway(&toml).await, "hp-a", "unhealthy").await;
    let err = provider_state(&report, "hp-a")["last_error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        err.starts_with("health check: provider `hp-a` answered 404"),
        "{err}"
    );
    assert!(provider_state(&report, "hp-a")["last_check"].is_string());
    assert!(
        eventually(LIVENESS, || a.requests().iter().any(|r| r.path == "/not-here")).await,
        "{:?}",
        a.requests().iter().map(|r| r.path.clone()).collect::<Vec<_>>()
    );
    let explained =
        moat_gateway::config::explain(&moat_gateway::config::Config::from_toml(&toml, "t").unwrap());
    assert!(
        explained.contains(&format!(
            "health checks: GET {}/not-here every 100ms; out of routing after 3 failures in a row, for 10s",
            a.base_url().trim_end_matches("/v1")
        )),
        "{explained}"
    );
}
