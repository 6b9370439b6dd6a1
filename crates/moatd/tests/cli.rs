//! The `moatd` binary end to end: flags, `check-config`, zero-config discovery, the loopback rule, and
//! logs that never carry keys or prompts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;

use common::*;

use moat_testkit::{Emulator, EmulatorOptions};
use serde_json::{json, Value};

#[test]
fn check_config_explains_a_valid_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        &dir,
        "[[providers]]\nname = \"local\"\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:8080/v1\"\nlocal = true\n[[models]]\nname = \"fast\"\nroute = [\"local/tiny\"]\n",
    );
    let out = Command::new(MOATD)
        .arg("check-config")
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("OK") && text.contains("local: kind=openai") && text.contains("fast -> local/tiny"),
        "{text}"
    );
}

#[test]
fn check_config_rejects_mistakes_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(&dir, "[server]\napi_keyz = [\"x\"]\n");
    let out = Command::new(MOATD)
        .arg("check-config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.starts_with("moatd: ") && err.contains("api_keyz"), "{err}");
    let out = Command::new(MOATD)
        .arg("check-config")
        .arg(dir.path().join("missing.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8(out.stderr).unwrap().contains("missing.toml"));
}

#[test]
fn refuses_an_open_non_loopback_listener() {
    let out = Command::new(MOATD)
        .args(["serve", "--listen", "0.0.0.0:0"])
        .env_remove("OPENROUTER_API_KEY")
        .env("MOAT_LLAMACPP_URL", "http://127.0.0.1:9")
        .env("MOAT_OLLAMA_URL", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8(out.stderr).unwrap().contains("insecure_open"));
}

#[test]
fn help_shows_examples() {
    let out = Command::new(MOATD).arg("--help").output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("Examples:") && text.contains("check-config"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn zero_config_finds_a_local_server() {
    let emu = Emulator::start(EmulatorOptions::default()).await.unwrap();
    let root = format!("http://{}", emu.addr());
    let daemon = Daemon::start(
        &["--listen", "127.0.0.1:0"],
        &[
            ("MOAT_LLAMACPP_URL", root.as_str()),
            ("MOAT_OLLAMA_URL", "http://127.0.0.1:9"),
        ],
    );
    let list: Value = client()
        .get(daemon.url("/v1/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert!(ids.contains(&"llamacpp/tiny"), "{ids:?}");
    let answer: Value = client()
        .post(daemon.url("/v1/chat/completions"))
        .json(&json!({"model": "llamacpp/tiny", "messages": [{"role": "user", "content": "zero config"}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        answer["choices"][0]["message"]["content"],
        "You said: zero config"
    );
    let log = daemon.stop();
    assert!(log.contains("provider `llamacpp` found"), "{log}");
    assert!(log.contains("no ollama server"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_never_contain_keys_or_prompts() {
    let emu = Emulator::start(EmulatorOptions {
        api_key: Some("sk-provider-SECRET-1".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        &dir,
        &format!(
            "[server]\napi_keys = [\"${{TEST_CLIENT_KEY}}\"]\n[[providers]]\nname = \"emu\"\nkind = \"openai\"\nbase_url = \"{}\"\napi_key = \"${{TEST_PROVIDER_KEY}}\"\n",
            emu.base_url()
        ),
    );
    let daemon = Daemon::start(
        &[
            "serve",
            "--config",
            path.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
        &[
            ("MOAT_LOG", "trace"),
            ("TEST_CLIENT_KEY", "moat-client-SECRET-2"),
            ("TEST_PROVIDER_KEY", "sk-provider-SECRET-1"),
        ],
    );
    let http = client();
    for stream in [false, true] {
        let resp = http
            .post(daemon.url("/v1/chat/completions"))
            .bearer_auth("moat-client-SECRET-2")
            .json(&json!({"model": "emu/tiny", "stream": stream, "messages": [{"role": "user", "content": "PROMPT-MARKER-42"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let _ = resp.text().await.unwrap();
    }
    let resp = http
        .post(daemon.url("/v1/chat/completions"))
        .bearer_auth("wrong-SECRET-3")
        .json(&json!({"model": "emu/tiny", "messages": [{"role": "user", "content": "PROMPT-MARKER-42"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let log = daemon.stop();
    assert!(log.len() > 1000, "trace logging was on: {log}");
    for secret in ["SECRET-1", "SECRET-2", "SECRET-3", "PROMPT-MARKER-42", "You said"] {
        assert!(!log.contains(secret), "log leaked {secret}:\n{log}");
    }
}
