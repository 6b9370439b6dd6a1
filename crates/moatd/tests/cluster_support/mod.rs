//! A moatd cluster for tests: real PostgreSQL and Valkey servers started for the test, the testkit
//! emulator as the provider, and real `moatd` processes as nodes, all sharing one server secret.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use moat_testkit::{Emulator, EmulatorOptions, Postgres, Valkey};
use serde_json::{json, Value};

use crate::common::{client, Daemon};

pub const ADMIN: &str = "admin-test-key-0123456789";
pub const SECRET: &str = "cluster test secret";

/// $0.0001 per token, prompt and completion: about $0.011 per `costly_request`.
pub const PRICE_PER_MILLION: f64 = 100.0;

pub struct Cluster {
    pub pg: Postgres,
    pub valkey: Valkey,
    pub emu: Emulator,
    pub dir: tempfile::TempDir,
    /// Extra lines for `[cluster]`.
    cluster_extra: String,
    /// Keep the audit log in PostgreSQL (off: no audit log).
    pub audit: bool,
}

/// ~400 characters of prompt and a 10-word answer: about 110 tokens, $0.011 actual, $0.017 reserved.
pub fn costly_request() -> Value {
    costly_request_with(json!({"content": "one two three four five six seven eight nine ten"}))
}

pub fn costly_request_with(emulate: Value) -> Value {
    json!({
        "model": "emu/tiny",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "lorem ipsum dolor sit amet ".repeat(15)}],
        "emulate": emulate
    })
}

/// The most one `costly_request` can reserve, in nano-dollars: (body bytes / 3 + 3 + 10) tokens.
pub fn one_estimate() -> u64 {
    let body_len = serde_json::to_vec(&costly_request()).unwrap().len() as u64;
    (body_len.div_ceil(3) + 3 + 10) * 100_000
}

impl Cluster {
    pub async fn start(cluster_extra: &str) -> Cluster {
        let pg = tokio::task::spawn_blocking(|| Postgres::start().unwrap())
            .await
            .unwrap();
        let valkey = Valkey::start().unwrap();
        // The provider reports each answer's cost at the same price moatd is configured with, so
        // what moatd settles is what a $1 budget must cover.
        let models = json!([{"id": "tiny", "object": "model", "created": 1, "owned_by": "emu",
            "pricing": {"prompt": "0.0001", "completion": "0.0001"}}]);
        let emu = Emulator::start(EmulatorOptions {
            models: Some(models),
            ..Default::default()
        })
        .await
        .unwrap();
        Cluster {
            pg,
            valkey,
            emu,
            dir: tempfile::tempdir().unwrap(),
            cluster_extra: cluster_extra.to_string(),
            audit: false,
        }
    }

    /// The config file of node `name`.
    pub fn config(&self, name: &str) -> PathBuf {
        let path = self.dir.path().join(format!("{name}.toml"));
        let text = format!(
            "[server]\nadmin_keys = [\"{ADMIN}\"]\n\
             [[providers]]\nname = \"emu\"\nkind = \"openai\"\nbase_url = \"{}\"\nretry_base_ms = 10\n\
             health_check = false\nprices = {{ \"*\" = [{PRICE_PER_MILLION}, {PRICE_PER_MILLION}] }}\n\
             [store]\nurl = \"{}\"\n\
             [cluster]\nurl = \"{}\"\nnode_id = \"{name}\"\ntimeout_ms = 2000\n{}\n\
             [audit]\n{}\n",
            self.emu.base_url(),
            self.pg.url(),
            self.valkey.url(),
            self.cluster_extra,
            if self.audit {
                format!("url = \"{}\"\ncheckpoint_every = 5", self.pg.url())
            } else {
                "enabled = false".to_string()
            }
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Starts node `name` (a real moatd process) on a free port.
    pub async fn node(&self, name: &str) -> Daemon {
        let config = self.config(name);
        tokio::task::spawn_blocking(move || {
            Daemon::start(
                &["--listen", "127.0.0.1:0", "--config", config.to_str().unwrap()],
                &[("MOAT_SECRET", SECRET), ("MOAT_LOG", "info")],
            )
        })
        .await
        .unwrap()
    }

    /// Chat requests the provider received.
    pub fn upstream_requests(&self) -> usize {
        self.emu
            .requests()
            .iter()
            .filter(|r| r.path.ends_with("/chat/completions"))
            .count()
    }

    /// Usage rows in PostgreSQL for a key: (rows, distinct request ids, total cost in nano-dollars).
    pub fn usage_of_key(&self, key_id: &str) -> (u64, u64, u64) {
        self.usage_where(&format!("key_id = '{key_id}'"))
    }

    pub fn usage_of_team(&self, team_id: &str) -> (u64, u64, u64) {
        self.usage_where(&format!("team_id = '{team_id}'"))
    }

    fn usage_where(&self, cond: &str) -> (u64, u64, u64) {
        let out = self
            .pg
            .psql(
                "postgres",
                &format!(
                    "SELECT COUNT(*), COUNT(DISTINCT request_id), COALESCE(SUM(cost_nanos), 0) FROM usage WHERE {cond}"
                ),
            )
            .unwrap();
        let v: Vec<u64> = out.split('|').map(|x| x.parse().unwrap()).collect();
        (v[0], v[1], v[2])
    }

    /// Waits until PostgreSQL holds `rows` usage rows for the key (writers batch for milliseconds).
    pub fn wait_for_rows(&self, key_id: &str, rows: u64, within: Duration) -> (u64, u64, u64) {
        let deadline = Instant::now() + within;
        loop {
            let got = self.usage_of_key(key_id);
            if got.0 >= rows || Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// POSTs an admin call to a node and returns `data`.
pub async fn admin_post(node: &Daemon, path: &str, body: Value) -> Value {
    let resp = client()
        .post(node.url(path))
        .bearer_auth(ADMIN)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let v: Value = resp.json().await.unwrap();
    assert!(status.is_success(), "{path}: {status} {v}");
    v["data"].clone()
}

/// What a burst of requests got.
#[derive(Debug, Default)]
pub struct Burst {
    pub ok: usize,
    pub budget_refused: usize,
    pub unavailable: usize,
    pub other: Vec<u16>,
    /// Sum of `usage.cost` the provider reported for the answered requests, in nano-dollars.
    pub reported_cost: u64,
}

/// Sends `n` `costly_request`s at once, spread over `nodes` round-robin, each with its node's key.
pub async fn burst(targets: &[(String, String)], n: usize, body: Value) -> Burst {
    let http = client();
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (url, key) = targets[i % targets.len()].clone();
            let http = http.clone();
            let body = body.clone();
            tokio::spawn(async move {
                http.post(format!("{url}/v1/chat/completions"))
                    .bearer_auth(key)
                    .json(&body)
                    .send()
                    .await
            })
        })
        .collect();
    let mut b = Burst::default();
    for t in tasks {
        let resp = t.await.unwrap().unwrap();
        match resp.status().as_u16() {
            200 => {
                b.ok += 1;
                let v: Value = resp.json().await.unwrap();
                b.reported_cost += cost_nanos(&v);
            }
            402 => b.budget_refused += 1,
            503 => {
                let v: Value = resp.json().await.unwrap();
                assert_eq!(v["error"]["code"], "limits_unavailable", "{v}");
                b.unavailable += 1;
            }
            other => b.other.push(other),
        }
    }
    b
}

/// The request's cost as moatd settles it: the provider's `usage.cost` when given, else tokens at
/// the configured price.
pub fn cost_nanos(v: &Value) -> u64 {
    if let Some(c) = v["usage"]["cost"].as_f64() {
        return moat_policy_usd(c);
    }
    let tokens =
        v["usage"]["prompt_tokens"].as_u64().unwrap() + v["usage"]["completion_tokens"].as_u64().unwrap();
    tokens * 100_000
}

fn moat_policy_usd(usd: f64) -> u64 {
    (usd * 1e9).ceil() as u64
}

/// Start of today's budget window (UTC midnight), as the spend keys name it.
pub fn today() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    now - now.rem_euclid(86_400)
}

/// Statuses seen by a steady load, in order.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    pub statuses: Vec<u16>,
    /// Connection errors (a node killed mid-request).
    pub errors: usize,
}

impl Seen {
    pub fn count(&self, status: u16) -> usize {
        self.statuses.iter().filter(|s| **s == status).count()
    }
}

/// Keeps `concurrency` requests in flight against the targets until `stop` is set.
pub fn steady_load(
    targets: Vec<(String, String)>,
    concurrency: usize,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<Seen> {
    tokio::spawn(async move {
        let http = client();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Seen::default()));
        let workers: Vec<_> = (0..concurrency)
            .map(|w| {
                let (http, stop, seen, targets) = (http.clone(), stop.clone(), seen.clone(), targets.clone());
                tokio::spawn(async move {
                    let mut i = w;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let (url, key) = &targets[i % targets.len()];
                        i += 1;
                        let sent = http
                            .post(format!("{url}/v1/chat/completions"))
                            .bearer_auth(key)
                            .json(&costly_request())
                            .send()
                            .await;
                        let status = sent.map(|r| r.status().as_u16());
                        {
                            let mut s = seen.lock().unwrap();
                            match status {
                                Ok(code) => s.statuses.push(code),
                                Err(_) => s.errors += 1,
                            }
                        }
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                })
            })
            .collect();
        for w in workers {
            w.await.unwrap();
        }
        let s = seen.lock().unwrap().clone();
        s
    })
}

/// `GET /ready` of a node: (status, body).
pub async fn ready(node: &Daemon) -> (u16, Value) {
    let r = client().get(node.url("/ready")).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

/// Waits (up to `within`) until `check` holds for the node's `/ready`.
pub async fn ready_until(node: &Daemon, within: Duration, check: impl Fn(u16, &Value) -> bool) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let (s, v) = ready(node).await;
        if check(s, &v) {
            return v;
        }
        assert!(Instant::now() < deadline, "/ready never got there: {s} {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
