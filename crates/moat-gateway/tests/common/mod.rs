//! Shared test helpers: a gateway on an ephemeral loopback port, a client, and small readers.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::time::Duration;

use std::sync::Arc;

use moat_gateway::config::Config;
use moat_gateway::secret::ServerSecret;
use moat_gateway::{server, Gateway};
use moat_store::{SqliteStore, Store};
use tokio::sync::oneshot;

pub struct TestGateway {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl TestGateway {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The Prometheus text of `GET /metrics` (no admin keys in these gateways).
    #[allow(dead_code)] // not every test binary reads metrics
    pub async fn metrics(&self) -> String {
        client()
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// POSTs `body` to `/v1/chat/completions`, with `key` as the bearer key when given.
    pub async fn chat(&self, key: Option<&str>, body: &serde_json::Value) -> reqwest::Response {
        let req = client().post(self.url("/v1/chat/completions")).json(body);
        let req = match key {
            Some(k) => req.bearer_auth(k),
            None => req,
        };
        req.send().await.unwrap()
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.abort();
    }
}

/// The server secret every test gateway uses.
pub fn secret() -> ServerSecret {
    ServerSecret::from_text("moat test secret")
}

/// Starts a gateway from TOML text on 127.0.0.1:0 (the file's `listen` is ignored), on a fresh
/// in-memory store.
pub async fn gateway(toml: &str) -> TestGateway {
    gateway_with_store(toml, Arc::new(SqliteStore::open_memory().unwrap())).await
}

/// Starts a gateway on a given store (to share it with the test, or to restart on the same data).
pub async fn gateway_with_store(toml: &str, store: Arc<dyn Store>) -> TestGateway {
    let config = Config::from_toml(toml, "test").expect("valid test config");
    let gw = Gateway::with_store(&config, store, secret()).expect("gateway");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = server::serve(listener, gw, async {
            let _ = stopped.await;
        })
        .await;
    });
    TestGateway {
        addr,
        stop: Some(stop),
        task,
    }
}

/// An HTTP client with the ring provider (reqwest is built without a default TLS provider).
pub fn client() -> reqwest::Client {
    let tls = moat_upstream::tls::client_config(None).unwrap();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .no_proxy()
        .build()
        .unwrap()
}

/// A provider block pointing at `base_url`, with fast retries so tests stay quick, and without
/// periodic health checks, whose requests would add to what tests count at the emulator
/// (tests/health.rs turns them on).
pub fn provider(name: &str, base_url: &str) -> String {
    format!(
        "[[providers]]\nname = \"{name}\"\nkind = \"openai\"\nbase_url = \"{base_url}\"\nretry_base_ms = 10\nhealth_check = false\n"
    )
}

/// Waits until `cond` holds, checking every 20 ms, for at most `limit`.
pub async fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cond()
}

/// Parses an SSE body into its `data:` payloads (a minimal reader for assertions).
pub fn data_events(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter_map(|ev| {
            let lines: Vec<&str> = ev.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
            (!lines.is_empty()).then(|| lines.join("\n"))
        })
        .collect()
}

/// The concatenated `choices[0].delta.content` of a chat stream.
pub fn streamed_text(body: &str) -> String {
    data_events(body)
        .iter()
        .filter(|d| d.as_str() != "[DONE]")
        .filter_map(|d| serde_json::from_str::<serde_json::Value>(d).ok())
        .filter_map(|v| v["choices"][0]["delta"]["content"].as_str().map(str::to_string))
        .collect()
}

pub async fn error_of(resp: reqwest::Response) -> (u16, serde_json::Value) {
    let status = resp.status().as_u16();
    let body: serde_json::Value = resp.json().await.expect("error body is JSON");
    let err = &body["error"];
    assert!(err.is_object(), "OpenAI error shape: {body}");
    for key in ["message", "type", "code", "param"] {
        assert!(err.get(key).is_some(), "error body lacks `{key}`: {body}");
    }
    (status, body)
}
