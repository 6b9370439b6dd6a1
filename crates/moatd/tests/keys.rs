//! Virtual keys through the real binary: `moatd keys` commands on the same data directory as a running
//! `moatd`, revocation seen by the next request, no permanent hold after a crash, and no key or
//! provider secret in logs or error bodies.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use moat_testkit::{Emulator, EmulatorOptions};
use serde_json::{json, Value};

async fn priced_emulator(api_key: Option<&str>) -> Emulator {
    let models =
        json!([{"id": "tiny", "object": "model", "pricing": {"prompt": "0.0001", "completion": "0.0001"}}]);
    Emulator::start(EmulatorOptions {
        models: Some(models),
        api_key: api_key.map(str::to_string),
        ..Default::default()
    })
    .await
    .unwrap()
}

fn config(dir: &std::path::Path, emu: &Emulator) -> std::path::PathBuf {
    let path = dir.join("moatd.toml");
    std::fs::write(
        &path,
        format!(
            "[[providers]]\nname = \"emu\"\nkind = \"openai\"\nbase_url = \"{}\"\n",
            emu.base_url()
        ),
    )
    .unwrap();
    path
}

fn chat(stream: bool) -> Value {
    json!({"model": "emu/tiny", "stream": stream, "max_tokens": 10,
           "messages": [{"role": "user", "content": "PROMPT-MARKER tell me"}]})
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_keys_work_against_a_running_gateway_and_revoke_at_once() {
    let emu = priced_emulator(None).await;
    let data = tempfile::tempdir().unwrap();
    let cfg = config(data.path(), &emu);
    let cfg = cfg.to_str().unwrap();
    let (key, err, ok) = moatd_cmd(
        data.path(),
        &[
            "keys", "create", "--config", cfg, "--name", "alice", "--budget", "5/day",
        ],
        None,
    );
    assert!(ok, "{err}");
    let key = key.trim().to_string();
    assert!(
        key.starts_with("moat-") && err.contains("shown only now"),
        "{err}"
    );
    let daemon = Daemon::start_in(
        data.path(),
        &["serve", "--config", cfg, "--listen", "127.0.0.1:0"],
        &[],
    );
    let http = client();
    let r = http
        .post(daemon.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&chat(false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (list, _, ok) = moatd_cmd(data.path(), &["keys", "list", "--config", cfg, "--json"], None);
    assert!(ok);
    let list: Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list[0]["name"], "alice");
    assert_ne!(list[0]["spend"], "$0", "spend is visible: {list}");
    assert!(!list.to_string().contains(&key));
    let (_, err, ok) = moatd_cmd(data.path(), &["keys", "revoke", "--config", cfg, "alice"], None);
    assert!(ok, "{err}");
    let r = http
        .post(daemon.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&chat(false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "the very next request after `moatd keys revoke`");
    let (report, _, ok) = moatd_cmd(
        data.path(),
        &["usage", "--config", cfg, "--by", "model", "--csv"],
        None,
    );
    assert!(
        ok && report.starts_with("model,requests") && report.contains("emu/tiny,1,"),
        "{report}"
    );
    daemon.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_between_reserve_and_settle_leaves_no_hold() {
    let emu = priced_emulator(None).await;
    let data = tempfile::tempdir().unwrap();
    let cfg = config(data.path(), &emu);
    let cfg = cfg.to_str().unwrap();
    // The budget fits one request's reservation at a time.
    let (key, err, ok) = moatd_cmd(
        data.path(),
        &[
            "keys", "create", "--config", cfg, "--name", "one", "--budget", "0.01",
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
    let http = client();
    let mut long = chat(true);
    long["emulate"] = json!({"pause_after_chunks": 1, "pause_ms": 60000});
    let resp = http
        .post(daemon.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&long)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "reserved and streaming");
    let second = http
        .post(daemon.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&chat(false))
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), 402, "the first request's hold blocks a second");
    daemon.crash();
    drop(resp);
    let daemon = Daemon::start_in(
        data.path(),
        &["serve", "--config", cfg, "--listen", "127.0.0.1:0"],
        &[],
    );
    let r = http
        .post(daemon.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&chat(false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "after the crash the hold is gone");
    daemon.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_and_provider_secrets_never_reach_logs_or_error_bodies() {
    let emu = priced_emulator(Some("sk-provider-SECRET-77")).await;
    let data = tempfile::tempdir().unwrap();
    let cfg = config(data.path(), &emu);
    let cfg = cfg.to_str().unwrap();
    let (_, err, ok) = moatd_cmd(
        data.path(),
        &["providers", "set-key", "--config", cfg, "emu"],
        Some("sk-provider-SECRET-77\n"),
    );
    assert!(ok, "{err}");
    let (key, _, _) = moatd_cmd(
        data.path(),
        &["keys", "create", "--config", cfg, "--name", "k", "--rpm", "2"],
        None,
    );
    let key = key.trim().to_string();
    let db = std::fs::read(data.path().join("moat/moatd.db")).unwrap();
    for needle in [key.as_bytes(), b"sk-provider-SECRET-77".as_slice()] {
        assert!(
            !db.windows(needle.len()).any(|w| w == needle),
            "secret stored in the clear"
        );
    }
    let daemon = Daemon::start_in(
        data.path(),
        &["serve", "--config", cfg, "--listen", "127.0.0.1:0"],
        &[("MOAT_LOG", "trace")],
    );
    let http = client();
    let mut bodies = String::new();
    for (k, body) in [
        (key.as_str(), chat(false)),
        (key.as_str(), chat(true)),
        (key.as_str(), chat(false)),
        ("moat-wrong-key-SECRET", chat(false)),
    ] {
        let r = http
            .post(daemon.url("/v1/chat/completions"))
            .bearer_auth(k)
            .json(&body)
            .send()
            .await
            .unwrap();
        bodies.push_str(&r.text().await.unwrap());
    }
    assert!(
        bodies.contains("rate_limit_exceeded") && bodies.contains("invalid_api_key"),
        "{bodies}"
    );
    assert!(
        bodies.contains("You said"),
        "the stored provider key was used: {bodies}"
    );
    let log = daemon.stop();
    for secret in [&key[5..], "SECRET-77", "wrong-key-SECRET", "PROMPT-MARKER"] {
        assert!(!log.contains(secret), "log leaked {secret}");
        assert!(
            secret == "PROMPT-MARKER" || !bodies.contains(secret),
            "error body leaked {secret}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_and_admin_actions_are_in_a_verifiable_audit_log() {
    let emu = priced_emulator(None).await;
    let data = tempfile::tempdir().unwrap();
    let cfg = config(data.path(), &emu);
    let cfg = cfg.to_str().unwrap();
    let (key, err, ok) = moatd_cmd(
        data.path(),
        &[
            "keys", "create", "--config", cfg, "--name", "audited", "--budget", "1/day",
        ],
        None,
    );
    assert!(ok, "{err}");
    let key = key.trim().to_string();
    let (_, err, ok) = moatd_cmd(
        data.path(),
        &["keys", "limits", "--config", cfg, "audited", "--budget", "2/day"],
        None,
    );
    assert!(ok, "{err}");
    let daemon = Daemon::start_in(
        data.path(),
        &["serve", "--config", cfg, "--listen", "127.0.0.1:0"],
        &[],
    );
    let http = client();
    let r = http
        .post(daemon.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&chat(false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = http
        .post(daemon.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&chat(true))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("[DONE]"));
    let r = http
        .post(daemon.url("/v1/chat/completions"))
        .bearer_auth("moat-unknown")
        .json(&chat(false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    daemon.stop();
    let (_, err, ok) = moatd_cmd(data.path(), &["keys", "revoke", "--config", cfg, "audited"], None);
    assert!(ok, "{err}");
    let (out, err, ok) = moatd_cmd(data.path(), &["audit", "verify", "--config", cfg], None);
    assert!(ok, "verify: {out} {err}");
    let (export, err, ok) = moatd_cmd(
        data.path(),
        &["audit", "export", "--config", cfg, "--since", "2000-01-01"],
        None,
    );
    assert!(ok, "{err}");
    let records: Vec<Value> = export.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let text = export.clone();
    for action in ["key.create", "key.limits", "key.revoke"] {
        assert!(text.contains(action), "{action} recorded: {export}");
    }
    let requests: Vec<&Value> = records
        .iter()
        .filter(|r| r.to_string().contains("/v1/chat/completions"))
        .collect();
    assert_eq!(requests.len(), 3, "{export}");
    assert!(
        text.contains("\"status\":401") && text.contains("\"provider\":\"emu\""),
        "{export}"
    );
    assert!(
        text.contains(&key[..13]) && !text.contains(&key[13..]),
        "the prefix, never the key"
    );
    assert!(
        !text.contains("PROMPT-MARKER"),
        "no bodies unless [audit] bodies = true"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_leaked_key_is_revoked_and_rotated_by_pasting_it_whole() {
    let emu = priced_emulator(None).await;
    let data = tempfile::tempdir().unwrap();
    let cfg = config(data.path(), &emu);
    let cfg = cfg.to_str().unwrap();
    let create = |name: &str| {
        let (key, err, ok) = moatd_cmd(
            data.path(),
            &["keys", "create", "--config", cfg, "--name", name],
            None,
        );
        assert!(ok, "{err}");
        key.trim().to_string()
    };
    let (leaked, other) = (create("leaked"), create("other"));
    let daemon = Daemon::start_in(
        data.path(),
        &["serve", "--config", cfg, "--listen", "127.0.0.1:0"],
        &[],
    );
    let http = client();
    let status = |key: String| {
        let req = http
            .post(daemon.url("/v1/chat/completions"))
            .bearer_auth(key)
            .json(&chat(false));
        async move { req.send().await.unwrap().status().as_u16() }
    };
    // Rotating by the whole key gives a new secret; the pasted one stops working.
    let (rotated, err, ok) = moatd_cmd(data.path(), &["keys", "rotate", "--config", cfg, &other], None);
    assert!(ok, "{err}");
    assert!(!err.contains(&other), "the whole key is never echoed: {err}");
    let rotated = rotated.trim().to_string();
    assert_eq!(status(other.clone()).await, 401);
    assert_eq!(status(rotated.clone()).await, 200);
    // Revoking by the whole key (pasted with its newline) refuses the next request with it.
    assert_eq!(status(leaked.clone()).await, 200);
    let pasted = format!("{leaked}\n");
    let (_, err, ok) = moatd_cmd(data.path(), &["keys", "revoke", "--config", cfg, &pasted], None);
    assert!(ok, "{err}");
    assert!(!err.contains(&leaked), "{err}");
    assert_eq!(status(leaked.clone()).await, 401);
    assert_eq!(status(rotated).await, 200, "only the pasted key is revoked");
    // A whole key that is no key is "not found", without repeating it.
    let unknown = "moat-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let (_, err, ok) = moatd_cmd(data.path(), &["keys", "revoke", "--config", cfg, unknown], None);
    assert!(
        !ok && err.contains("not found") && !err.contains(unknown),
        "{err}"
    );
    daemon.stop();
}
