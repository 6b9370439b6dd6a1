//! The whole request, through a real `moatd` process and the real `openai` Python SDK
//! (tests/python/whole_request_check.py): secrets anywhere in a request are refused, metered streams
//! carry usage only when the client asked for it, and provider keys quoted in upstream errors are
//! scrubbed. Here: what reached the provider, and what moatd logged.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;

use common::*;
use moat_testkit::{Emulator, EmulatorOptions};
use serde_json::json;

const PROVIDER_KEY: &str = "sk-provider-Rk9mQ2vX7pL4nB8wZ3cY";

#[tokio::test(flavor = "multi_thread")]
async fn the_openai_sdk_sees_privacy_metering_and_errors_over_the_whole_request() {
    let models = json!([{"id": "tiny", "object": "model", "created": 1, "owned_by": "emu", "context_length": 4096,
        "pricing": {"prompt": "0.000001", "completion": "0.000001"}}]);
    let emu = Emulator::start(EmulatorOptions {
        models: Some(models),
        ..Default::default()
    })
    .await
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    let cfg = data.path().join("moatd.toml");
    std::fs::write(
        &cfg,
        format!(
            "[privacy]\nsecrets = \"block\"\n[[providers]]\nname = \"emu\"\nkind = \"openai\"\nbase_url = \"{}\"\napi_key = \"{PROVIDER_KEY}\"\nmax_retries = 0\nhealth_check = false\n",
            emu.base_url()
        ),
    )
    .unwrap();
    let cfg = cfg.to_str().unwrap();
    let (key, err, ok) = moatd_cmd(
        data.path(),
        &[
            "keys", "create", "--config", cfg, "--name", "sdk", "--budget", "5/day",
        ],
        None,
    );
    assert!(ok, "{err}");
    let daemon = Daemon::start_in(
        data.path(),
        &["serve", "--config", cfg, "--listen", "127.0.0.1:0"],
        &[("MOAT_LOG", "trace")],
    );
    let script = format!(
        "{}/../../tests/python/whole_request_check.py",
        env!("CARGO_MANIFEST_DIR")
    );
    let python = std::env::var("MOAT_PYTHON").unwrap_or_else(|_| "python3".into());
    let env = [
        ("GATEWAY_URL", daemon.url("/v1")),
        ("GATEWAY_KEY", key.trim().to_string()),
        ("PROVIDER_KEY", PROVIDER_KEY.to_string()),
        ("MODEL", "emu/tiny".to_string()),
    ];
    let out = tokio::task::spawn_blocking(move || Command::new(python).arg(script).envs(env).output())
        .await
        .unwrap()
        .expect("python3 runs (scripts/test.sh installs the SDK)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "SDK check failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("whole-request checks passed"), "{stdout}");

    let received: String = emu
        .requests()
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    assert!(
        !received.contains("Q3EGRTPRZ5J4"),
        "a secret reached the provider"
    );
    let streams: Vec<serde_json::Value> = emu
        .requests()
        .iter()
        .filter_map(|r| r.json())
        .filter(|b| b["stream"] == true)
        .collect();
    assert_eq!(streams.len(), 3);
    assert!(
        streams
            .iter()
            .all(|b| b["stream_options"]["include_usage"] == true),
        "a metered stream always asks the provider for usage"
    );
    let log = daemon.stop();
    assert!(
        !log.contains(PROVIDER_KEY) && !log.contains(&PROVIDER_KEY[8..]),
        "the provider key is logged"
    );
    assert!(!log.contains("Q3EGRTPRZ5J4"), "a secret is logged");
}

/// The budget over every output a request can ask for, through a real moatd process: 50 concurrent
/// requests of `n: 10` at a provider that bills every output never spend past the budget plus one
/// request's estimate (read back through the key's own `GET /api/v1/key`).
#[tokio::test(flavor = "multi_thread")]
async fn fifty_concurrent_n_10_requests_stay_within_the_budget_in_a_real_moatd() {
    let models = json!([{"id": "tiny", "object": "model", "created": 1, "owned_by": "emu", "context_length": 4096,
        "pricing": {"prompt": "0.0001", "completion": "0.0001"}}]);
    let emu = Emulator::start(EmulatorOptions {
        models: Some(models),
        ..Default::default()
    })
    .await
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    let cfg = data.path().join("moatd.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[providers]]\nname = \"emu\"\nkind = \"openai\"\nbase_url = \"{}\"\nmax_retries = 0\nhealth_check = false\n",
            emu.base_url()
        ),
    )
    .unwrap();
    let cfg = cfg.to_str().unwrap();
    let (key, err, ok) = moatd_cmd(
        data.path(),
        &[
            "keys", "create", "--config", cfg, "--name", "burst", "--budget", "0.1/day",
        ],
        None,
    );
    assert!(ok, "{err}");
    let key = key.trim().to_string();
    let daemon = Daemon::start_in(
        data.path(),
        &["serve", "--config", cfg, "--listen", "127.0.0.1:0"],
        &[],
    );
    let body = json!({"model": "emu/tiny", "n": 10, "max_tokens": 10,
        "messages": [{"role": "user", "content": "hi"}],
        "emulate": {"content": "a b c d e f g h i j"}});
    let http = client();
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let req = http
                .post(daemon.url("/v1/chat/completions"))
                .bearer_auth(&key)
                .json(&body);
            tokio::spawn(async move { req.send().await.unwrap().status().as_u16() })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    let ok = statuses.iter().filter(|s| **s == 200).count();
    assert!(
        ok >= 1 && statuses.iter().all(|s| *s == 200 || *s == 402),
        "{statuses:?}"
    );
    assert!(ok < 50, "the budget refused some: {statuses:?}");
    // Settlements land in the background: read the spend until it stops moving.
    let mut spent = -1.0;
    for _ in 0..50 {
        let info: serde_json::Value = http
            .get(daemon.url("/api/v1/key"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let now = info["data"]["usage"].as_f64().unwrap();
        if now == spent {
            break;
        }
        spent = now;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // One request's estimate: (body bytes / 3 + 3) prompt tokens and 10 × 10 output tokens.
    let bytes = serde_json::to_vec(&body).unwrap().len() as f64;
    let estimate = ((bytes / 3.0).ceil() + 3.0 + 100.0) * 0.0001;
    assert!(
        spent > 0.0 && spent <= 0.1 + estimate,
        "spent ${spent} of $0.1 (+ ${estimate}), {ok} answered"
    );
    daemon.stop();
}
