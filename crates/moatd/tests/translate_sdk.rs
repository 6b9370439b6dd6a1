//! Real SDKs across wire translation, through a real moatd process: the `anthropic` Python SDK against
//! moatd's `POST /v1/messages` in front of an OpenAI-compatible upstream, and the `openai` SDK against
//! moatd in front of an Anthropic-wire upstream. Both SDKs are installed by `scripts/test.sh`; without
//! them these tests fail, they do not skip.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;

use common::*;
use moat_testkit::{Emulator, EmulatorOptions};
use serde_json::Value;

/// Runs a check script from tests/python with `env`, asserting it passes.
async fn run_script(name: &str, env: Vec<(&'static str, String)>, done_marker: &str) {
    let script = format!("{}/../../tests/python/{name}", env!("CARGO_MANIFEST_DIR"));
    let python = std::env::var("MOAT_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = tokio::task::spawn_blocking(move || Command::new(python).arg(script).envs(env).output())
        .await
        .unwrap()
        .expect("python3 runs (scripts/test.sh installs the SDKs)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "SDK check failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains(done_marker), "{stdout}");
}

fn daemon(config: &str) -> (tempfile::TempDir, Daemon) {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(&dir, config);
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
    (dir, daemon)
}

#[tokio::test(flavor = "multi_thread")]
async fn anthropic_python_sdk_through_v1_messages_to_an_openai_upstream() {
    let emu = Emulator::start(EmulatorOptions {
        api_key: Some("sk-emu-provider".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let (_dir, daemon) = daemon(&format!(
        "[server]\napi_keys = [\"moat-sdk-test\"]\n[[providers]]\nname = \"emu\"\nkind = \"openai\"\nbase_url = \"{}\"\napi_key = \"sk-emu-provider\"\nmax_retries = 0\n",
        emu.base_url()
    ));
    run_script(
        "anthropic_sdk_check.py",
        vec![
            ("GATEWAY_ROOT", daemon.url("")),
            ("GATEWAY_KEY", "moat-sdk-test".into()),
        ],
        "anthropic SDK checks passed",
    )
    .await;
    // What reached the OpenAI upstream was OpenAI's wire: the tool result as a `tool` message
    // answering the call the model made.
    let followup: Value = emu
        .requests()
        .iter()
        .filter_map(|r| r.json())
        .find(|b| {
            b["messages"]
                .as_array()
                .is_some_and(|m| m.iter().any(|m| m["role"] == "tool"))
        })
        .expect("the tool result was forwarded");
    let messages = followup["messages"].as_array().unwrap();
    let call_id = messages[1]["tool_calls"][0]["id"].as_str().unwrap();
    assert_eq!(messages[1]["tool_calls"][0]["function"]["name"], "get_weather");
    assert_eq!(messages[2]["role"], "tool");
    assert_eq!(messages[2]["tool_call_id"], call_id);
    assert_eq!(messages[2]["content"], "rainy, 12 degrees");
    assert_eq!(messages[3]["content"], "so, an umbrella?");
    assert!(emu
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .all(|r| r.path == "/v1/chat/completions"));
    daemon.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn openai_python_sdk_through_moatd_to_an_anthropic_upstream() {
    let emu = Emulator::start(EmulatorOptions {
        api_key: Some("sk-ant-emu".into()),
        models: Some(serde_json::json!([{"id": "claude-test"}])),
        ..Default::default()
    })
    .await
    .unwrap();
    let (_dir, daemon) = daemon(&format!(
        "[server]\napi_keys = [\"moat-sdk-test\"]\n[[providers]]\nname = \"claude\"\nkind = \"anthropic\"\nbase_url = \"{}\"\napi_key = \"sk-ant-emu\"\nmax_retries = 0\n",
        emu.base_url()
    ));
    run_script(
        "openai_to_anthropic_check.py",
        vec![
            ("GATEWAY_URL", daemon.url("/v1")),
            ("GATEWAY_KEY", "moat-sdk-test".into()),
        ],
        "openai SDK via Anthropic checks passed",
    )
    .await;
    // Every request reached the upstream in Anthropic's wire, with its headers.
    let posts: Vec<_> = emu
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert!(!posts.is_empty());
    for r in &posts {
        assert_eq!(r.path, "/v1/messages");
        assert_eq!(r.headers["x-api-key"], "sk-ant-emu");
        assert_eq!(r.headers["anthropic-version"], "2023-06-01");
    }
    let followup = posts
        .iter()
        .filter_map(|r| r.json())
        .find(|b| b["messages"].to_string().contains("tool_result"))
        .expect("the tool result was forwarded");
    let turns = followup["messages"].as_array().unwrap();
    assert_eq!(turns[1]["content"][0]["type"], "tool_use");
    assert_eq!(turns[2]["content"][0]["type"], "tool_result");
    assert_eq!(
        turns[2]["content"][0]["tool_use_id"],
        turns[1]["content"][0]["id"]
    );
    daemon.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_wire_emulators_satisfy_the_official_clients() {
    let anthropic = Emulator::start(EmulatorOptions {
        api_key: Some("sk-ant-emu".into()),
        models: Some(serde_json::json!([{"id": "claude-test"}])),
        ..Default::default()
    })
    .await
    .unwrap();
    let ollama = Emulator::start(EmulatorOptions {
        models: Some(serde_json::json!([{"id": "llama3.2:latest"}])),
        ..Default::default()
    })
    .await
    .unwrap();
    let root = |e: &Emulator| e.base_url().trim_end_matches("/v1").to_owned();
    run_script(
        "emulator_wire_check.py",
        vec![
            ("ANTHROPIC_ROOT", root(&anthropic)),
            ("ANTHROPIC_KEY", "sk-ant-emu".into()),
            ("OLLAMA_ROOT", root(&ollama)),
        ],
        "emulator wire checks passed",
    )
    .await;
}
